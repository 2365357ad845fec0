//! `sealcluster devnet`: the whole sealing system on one machine, for development and
//! for a first look: the devnet chain, the sector manager and a sealing worker, sealing
//! real 2KiB committed-capacity sectors until they are active on chain.
//!
//! Each part is the production code (`devnet`, `manager::start`, `worker::daemon::run`
//! with its built-in processors as child processes); this binary only wires them
//! together in one home directory, makes the missing proof parameters first, and shows
//! progress. The worker's built-in processors run as `sealcluster processor <stage>`,
//! so the binary answers that hidden command too.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool prints its progress and results"
)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chain_client::auth::Permission;
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

/// The whole sealing system on one machine.
#[derive(Parser, Debug)]
#[command(name = "sealcluster", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the devnet chain, the sector manager and a sealing worker in one home, and
    /// seal committed-capacity 2KiB sectors with real proofs until they are active.
    Devnet {
        /// Where the chain, the manager's database and stores, and the worker's sealing
        /// stores live; a second run continues where the first stopped.
        #[arg(long, default_value = "~/.sealcluster/devnet")]
        home: String,
        /// How many sectors to see active on chain before stopping.
        #[arg(long, default_value_t = 2)]
        sectors: usize,
        /// Sealing threads (one sealing store each); the number of sectors by default.
        #[arg(long)]
        threads: Option<usize>,
        /// Seconds per block.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        block_time: Duration,
        /// Seal with the fake proof backend (no parameters needed; orchestration only).
        #[arg(long)]
        fake_proofs: bool,
        /// Keep sealing after the sectors are active, until interrupted.
        #[arg(long)]
        keep_running: bool,
    },
    /// A built-in processor, started by the worker (not by hand).
    #[command(hide = true)]
    Processor {
        /// The stage.
        stage: String,
        /// Use the fake proof backend.
        #[arg(long)]
        fake_proofs: bool,
    },
    /// The processor launcher, started by the worker (not by hand).
    #[command(hide = true)]
    Launch {
        /// The launcher's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        arguments: Vec<OsString>,
    },
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Processor { stage, fake_proofs } => {
            worker::processors::serve_built_in(&stage, fake_proofs)
        }
        Command::Launch { arguments } => {
            let spec = proc_sched::budget::LaunchSpec::from_arguments(&arguments)
                .map_err(anyhow::Error::msg)
                .context("read the launcher's arguments")?;
            // Returns only if the processor could not be started.
            Err(proc_sched::budget::exec_launch(&spec)).context("launch a processor")
        }
        Command::Devnet {
            home,
            sectors,
            threads,
            block_time,
            fake_proofs,
            keep_running,
        } => {
            let home = expand_home(&home);
            std::fs::create_dir_all(&home).with_context(|| format!("create {}", home.display()))?;
            let log_path = home.join("sealcluster.log");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("open {}", log_path.display()))?;
            // Traces go where the `OTEL_*` variables say (nowhere by default).
            let settings = telemetry::TelemetrySettings::resolve("sealcluster", None, 1.0);
            let _telemetry =
                telemetry::init_with_log(&settings, "info", std::sync::Mutex::new(log), false)
                    .context("start logging and tracing")?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("start the async runtime")?;
            runtime.block_on(devnet(DevnetRun {
                home,
                log_path,
                sectors: sectors.max(1),
                threads: threads.unwrap_or(sectors).max(1),
                block_time,
                fake_proofs,
                keep_running,
            }))
        }
    }
}

struct DevnetRun {
    home: PathBuf,
    log_path: PathBuf,
    sectors: usize,
    threads: usize,
    block_time: Duration,
    fake_proofs: bool,
    keep_running: bool,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr().context("find a free port")?.port())
}

/// The worker's configuration: `threads` sealing stores under `<home>/worker`, the
/// manager's persistent store attached.
fn write_worker_config(
    home: &Path,
    manager_url: &str,
    token: &str,
    persist: &Path,
    threads: usize,
    port: u16,
) -> anyhow::Result<PathBuf> {
    let directory = home.join("worker");
    let mut text = format!(
        "# Written by `sealcluster devnet` at every start.\n\
         [worker]\nname = \"devnet-worker\"\nping_interval = \"5s\"\n\n\
         [worker.rpc_server]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
         [sector_manager]\nrpc_client.addr = \"{manager_url}\"\ntoken = \"{token}\"\n\n\
         [sealing]\nallowed_sizes = [\"2KiB\"]\nmax_retries = 20\nrecover_interval = \"2s\"\n\
         rpc_polling_interval = \"1s\"\nseal_interval = \"1s\"\n\n\
         [[attached]]\nname = \"devnet-persist\"\nlocation = {persist:?}\n"
    );
    for thread in 0..threads {
        let location = directory.join(format!("sealing-store-{thread}"));
        storage_alloc::sealing_store::initialise_sealing_store(&location)
            .with_context(|| format!("prepare the sealing store {}", location.display()))?;
        text.push_str(&format!("\n[[sealing_thread]]\nlocation = {location:?}\n"));
    }
    let path = directory.join("worker.toml");
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// One thread's line: its sector, state and what it does.
fn thread_line(thread: &Value) -> String {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let activity = &thread["thread_state"];
    let doing = match (
        activity["state"].as_str(),
        activity.get("proc"),
        activity.get("for"),
    ) {
        (Some("Running"), Some(what), _) => format!("running {}", text(what)),
        (Some("Waiting"), _, Some(what)) => format!("waiting for {}", text(what)),
        (Some(state), _, _) => state.to_lowercase(),
        (None, _, _) => "-".to_owned(),
    };
    let elapsed = activity["elapsed"]
        .as_u64()
        .map_or_else(String::new, |seconds| format!(" {seconds}s"));
    let error = thread["last_error"]
        .as_str()
        .map_or_else(String::new, |error| format!("  last error: {error}"));
    format!(
        "thread {}: {:<14} {:<22} {doing}{elapsed}{error}",
        text(&thread["index"]),
        text(&thread["job_id"]),
        text(&thread["job_state"]),
    )
}

async fn devnet(run: DevnetRun) -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "sealcluster devnet in {} (log: {})",
        run.home.display(),
        run.log_path.display()
    );
    if !run.fake_proofs {
        println!(
            "checking the 2KiB PoRep parameters (made here when missing: several minutes, once)"
        );
        let report = tokio::task::spawn_blocking(|| {
            worker::params::generate_missing_of(
                proofs::params::TestSectorSize::Size2KiB,
                |circuit| matches!(circuit, proofs::params::Circuit::PoRep(_)),
            )
        })
        .await
        .context("make the proof parameters")??;
        print!("{report}");
    }

    let manager_home = run.home.join("manager");
    let chain = devnet::start(
        devnet::DevnetConfig {
            block_time: run.block_time,
            proofs: if run.fake_proofs {
                devnet::ProofMode::Fake
            } else {
                devnet::ProofMode::Real
            },
            directory: Some(manager_home.join("devnet-chain")),
            ..devnet::DevnetConfig::default()
        },
        "127.0.0.1:0".parse().context("an address")?,
    )
    .await
    .context("start the devnet chain")?;
    let miner = chain.state().config.miner_id;
    // The worker's admin token is made first, so the manager can pause and resume its
    // threads for the admin page.
    let worker_directory = run.home.join("worker");
    std::fs::create_dir_all(&worker_directory)
        .with_context(|| format!("create {}", worker_directory.display()))?;
    let admin_token = worker::daemon::admin_token(&worker_directory.join("worker.toml"))?;
    let mut config = manager::devnet_manager_config(&manager_home, miner)?;
    config.common.auth.worker_admin_token = admin_token.clone();
    config.common.listen = "127.0.0.1:0".parse().context("an address")?;
    config.common.api.chain = chain.connection_string(Some(&chain.admin_token));
    let running = manager::start(manager::StartOptions {
        home: manager_home.clone(),
        config,
        proof_check: if run.fake_proofs {
            manager::ProofCheck::Fake
        } else {
            manager::ProofCheck::Real
        },
        commit_tick: Duration::from_secs(1),
    })
    .await
    .context("start the sector manager")?;
    println!(
        "devnet chain at {} (miner t0{miner}), sector manager at {}",
        chain.address,
        running.url()
    );
    // `sector-manager --home <home>/manager util …` finds the manager through these; the
    // admin page signs in with either token.
    manager::write_connection_files(
        &manager_home,
        &running.url(),
        &running.issue_token(&Permission::ALL),
    )?;
    manager::write_private(
        &manager_home.join("read.token"),
        &running.issue_token(&[Permission::Read]),
    )?;
    println!(
        "admin page at http://{}/ (tokens: {} for admin, {} read-only)",
        running.address,
        manager_home.join("token").display(),
        manager_home.join("read.token").display()
    );

    let token = running.issue_token(&[Permission::Read, Permission::Write]);
    let admin_port = free_port()?;
    let worker_config_path = write_worker_config(
        &run.home,
        &running.url(),
        &token,
        &manager_home.join("persist"),
        run.threads,
        admin_port,
    )?;
    let worker_config = worker::config::WorkerConfig::load(&worker_config_path)?;
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let mut worker = tokio::spawn(worker::daemon::run(
        worker_config,
        worker::daemon::DaemonOptions {
            worker_executable: std::env::current_exe()
                .context("find this executable for the built-in processors")?,
            admin_token: admin_token.clone(),
            fake_proofs: run.fake_proofs,
        },
        stop,
    ));
    println!(
        "sealing worker with {} threads (config {}, admin API 127.0.0.1:{admin_port})",
        run.threads,
        worker_config_path.display()
    );

    let progress = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let header = progress.add(ProgressBar::new_spinner().with_style(style.clone()));
    header.enable_steady_tick(Duration::from_millis(200));
    let thread_bars: Vec<ProgressBar> = (0..run.threads)
        .map(|_| progress.add(ProgressBar::new_spinner().with_style(style.clone())))
        .collect();
    let admin_address = format!("127.0.0.1:{admin_port}");
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_states = vec![String::new(); run.threads];
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut active: BTreeSet<u64> = BTreeSet::new();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let outcome: anyhow::Result<()> = loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut interrupted => break Err(anyhow::anyhow!("interrupted")),
            ended = &mut worker => {
                break match ended {
                    Ok(Ok(())) => Err(anyhow::anyhow!("the worker stopped")),
                    Ok(Err(error)) => Err(error.context("run the sealing worker")),
                    Err(error) => Err(anyhow::anyhow!("the worker failed: {error}")),
                };
            }
        }
        if let Ok(Value::Array(threads)) = worker::admin_api::call(
            &admin_address,
            &admin_token,
            worker::admin_api::method::WORKER_LIST,
            Vec::new(),
        )
        .await
        {
            for ((bar, thread), shown) in thread_bars.iter().zip(&threads).zip(&mut last_states) {
                bar.set_message(thread_line(thread));
                // Without a terminal the bars are hidden: print each state change instead.
                let state = format!("{} {}", thread["job_id"], thread["job_state"]);
                if !on_terminal && *shown != state {
                    println!(
                        "[{:>4.0} s] {}",
                        started.elapsed().as_secs_f64(),
                        thread_line(thread)
                    );
                    *shown = state;
                }
                if let Some(number) = thread["job_id"]
                    .as_str()
                    .and_then(|job| job.rsplit('-').next())
                    .and_then(|number| number.parse::<u64>().ok())
                {
                    seen.insert(number);
                }
            }
        }
        // Done means active on chain and finalized by the worker (reported to the manager,
        // its files in the persistent store and its sealing store cleared).
        let on_chain: Vec<u64> = {
            let chain_state = chain.state().chain();
            let head = chain_state.head().key();
            chain_state
                .state(&head)
                .and_then(|world| world.miners.get(&miner))
                .map(|miner_actor| {
                    seen.iter()
                        .filter(|number| {
                            !active.contains(number) && miner_actor.sectors.contains_key(number)
                        })
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        };
        for number in on_chain {
            if let Ok(row) = running
                .manager
                .known_sector(sealer_api::types::SectorId { miner, number })
                .await
                && row.phase == manager::db::Phase::Finalized
            {
                active.insert(number);
            }
        }
        header.set_message(format!(
            "{} of {} sectors active on chain and finalized (height {}); done this run: {:?}",
            active.len(),
            run.sectors,
            chain.head().height,
            active
        ));
        if active.len() >= run.sectors && !run.keep_running {
            break Ok(());
        }
    };
    header.finish();
    for bar in &thread_bars {
        bar.finish();
    }
    let _ = stop_sender.send(true);
    if !worker.is_finished() {
        match tokio::time::timeout(Duration::from_secs(30), &mut worker).await {
            Ok(Ok(Err(error))) => tracing::error!("the worker stopped with an error: {error:#}"),
            Ok(_) => {}
            Err(_) => tracing::warn!("the worker did not stop within 30 s"),
        }
    }
    running.stop().await;
    drop(chain);
    outcome?;
    println!(
        "{} sectors active on the devnet chain (t0{miner}: {:?}) in {:.0} s",
        active.len(),
        active,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
