//! The `sealing-worker` binary: the worker daemon, its admin CLI, the built-in
//! processors the daemon starts, and the operator's tools (plans, sealing stores,
//! processors, parameters, `config check`).

#![allow(
    clippy::print_stdout,
    reason = "a command-line tool prints its results"
)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sector_fsm::Plan;
use std::ffi::OsString;
use std::path::PathBuf;
use storage_alloc::SectorSize;

/// A sealcluster sealing worker.
#[derive(Parser, Debug)]
#[command(name = "sealing-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect the plans a sealing thread can run.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Prepare sealing stores and check that a plan fits its disks.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Check a worker configuration's `[processors]` section against this machine.
    Processors {
        #[command(subcommand)]
        command: ProcessorsCommand,
    },
    /// Run a processor confined to its budget (used by the daemon, not by hand):
    /// `launch [--cpus LIST] [--join CGROUP]... -- PROGRAM [ARGUMENTS...]`.
    #[command(hide = true)]
    Launch {
        /// The launcher's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        arguments: Vec<OsString>,
    },
    /// Make or check proof parameters for test sector sizes.
    Params {
        #[command(subcommand)]
        command: ParamsCommand,
    },
    /// Run a built-in processor for a stage (started by the daemon, or named in a
    /// `[[processors.<stage>]]` entry).
    Processor {
        /// add_pieces, tree_d, pc1, pc2, c1 or c2.
        stage: String,
        /// Answer with deterministic fake proofs instead of real ones; for orchestration
        /// tests and devnets only (configured by SEALCLUSTER_FAKE_PROOFS).
        #[arg(long)]
        fake_proofs: bool,
    },
    /// Read and check a worker configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the worker daemon: its sealing threads, processors and admin API.
    Daemon {
        /// The worker's configuration file.
        #[arg(short, long, env = "DAMOCLES_WORKER_CONFIG")]
        config: PathBuf,
        /// Run the built-in processors with the fake proof backend (orchestration tests
        /// and devnets with `--fake-proofs` only; never for a real chain).
        #[arg(long)]
        fake_proofs: bool,
    },
    /// Ask a running worker about its sealing threads, or pause, resume or abort one.
    Worker {
        /// The worker's configuration file (for its admin address and token).
        #[arg(short, long, env = "DAMOCLES_WORKER_CONFIG")]
        config: Option<PathBuf>,
        /// The admin API's address (`host:port`), instead of the configuration's.
        #[arg(short = 'H', long, env = "DAMOCLES_WORKER_HOST")]
        host: Option<String>,
        /// The admin token, instead of the one the daemon wrote beside its configuration.
        #[arg(long, env = worker::daemon::ADMIN_TOKEN_ENVIRONMENT)]
        token: Option<String>,
        #[command(subcommand)]
        command: WorkerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum WorkerCommand {
    /// Every sealing thread: its sector, state, activity and last error.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Only threads whose sector is in this state.
        #[arg(long)]
        state: Option<String>,
    },
    /// Pause a thread after its step in flight.
    Pause {
        /// The thread's index (as `list` shows it).
        #[arg(short, long)]
        index: usize,
    },
    /// Resume a paused thread, in its state or in an earlier state of its path.
    Resume {
        /// The thread's index.
        #[arg(short, long)]
        index: usize,
        /// The state to resume in.
        #[arg(short, long)]
        state: Option<String>,
    },
    /// Drop a thread's sector (reported to the manager as aborted).
    Abort {
        /// The thread's index.
        #[arg(short, long)]
        index: usize,
        /// Why.
        #[arg(long, default_value = "aborted by an operator")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print each sealing thread's settings and where each comes from (built-in, the
    /// manager, `[sealing]`, the thread, its hot `config.toml`), the storage plan and the
    /// compute plan; exits with an error when something cannot run here.
    Check {
        /// The worker's configuration file.
        #[arg(short, long, env = "DAMOCLES_WORKER_CONFIG")]
        config: PathBuf,
        /// Do not ask the manager for its sealing defaults.
        #[arg(long)]
        offline: bool,
        /// Plan the sealing stores for this sector size instead of each thread's
        /// largest allowed size.
        #[arg(long)]
        sector_size: Option<SectorSize>,
    },
}

#[derive(Subcommand, Debug)]
enum ParamsCommand {
    /// Make the missing Groth parameters and verifying keys of a test sector size into
    /// FIL_PROOFS_PARAMETER_CACHE (default /var/tmp/filecoin-proof-parameters).
    Generate {
        /// 2KiB, 8MiB or 512MiB.
        #[arg(long)]
        sector_size: proofs::params::TestSectorSize,
    },
    /// Say which parameter files of a test sector size are missing.
    Check {
        /// 2KiB, 8MiB or 512MiB.
        #[arg(long)]
        sector_size: proofs::params::TestSectorSize,
    },
}

#[derive(Subcommand, Debug)]
enum ProcessorsCommand {
    /// Read the `[processors]` section of a worker configuration file, check it against
    /// this machine's CPUs, GPUs and memory, and say how budgets would be enforced.
    Check {
        /// The worker's configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Lay out sealing stores (`meta/`, `data/...`, `.holder`) at each location; safe to
    /// repeat, and existing files are kept.
    SealingInit {
        /// A `[[sealing_thread]]` location; repeat for several.
        #[arg(short, long = "location", required = true)]
        locations: Vec<PathBuf>,
    },
    /// Check that one sealing store per location fits on its disk for a sector size.
    CheckPlan {
        /// 2KiB, 8MiB, 512MiB, 32GiB or 64GiB.
        #[arg(long)]
        sector_size: SectorSize,
        /// A `[[sealing_thread]]` location; repeat for several.
        #[arg(short, long = "location", required = true)]
        locations: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PlanCommand {
    /// Print a plan's transition table.
    Show {
        /// sealer, snapup, rebuild, unseal or wdpost.
        plan: Plan,
    },
    /// Walk a new sector through a plan with simulated successful steps.
    Walk {
        /// sealer, snapup, rebuild, unseal or wdpost.
        plan: Plan,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plan {
            command: PlanCommand::Show { plan },
        } => {
            print!("{}", sector_fsm::table::render(plan));
        }
        Command::Plan {
            command: PlanCommand::Walk { plan },
        } => {
            let transcript = worker::walk::walk(plan)
                .with_context(|| format!("walk a sector through plan {plan}"))?;
            print!("{transcript}");
        }
        Command::Store {
            command: StoreCommand::SealingInit { locations },
        } => print!("{}", worker::store::sealing_init(&locations)?),
        Command::Store {
            command:
                StoreCommand::CheckPlan {
                    sector_size,
                    locations,
                },
        } => print!("{}", worker::store::check_plan(sector_size, &locations)?),
        Command::Processors {
            command: ProcessorsCommand::Check { config },
        } => print!("{}", worker::processors::check_file(&config)?),
        Command::Launch { arguments } => {
            let spec = proc_sched::budget::LaunchSpec::from_arguments(&arguments)
                .map_err(anyhow::Error::msg)
                .context("read the launcher's arguments")?;
            // Returns only if the processor could not be started.
            return Err(proc_sched::budget::exec_launch(&spec)).context("launch a processor");
        }
        Command::Params {
            command: ParamsCommand::Generate { sector_size },
        } => print!("{}", worker::params::generate_missing(sector_size)?),
        Command::Params {
            command: ParamsCommand::Check { sector_size },
        } => print!("{}", worker::params::check(sector_size)?),
        Command::Processor { stage, fake_proofs } => {
            worker::processors::serve_built_in(&stage, fake_proofs)?;
        }
        Command::Config {
            command:
                ConfigCommand::Check {
                    config,
                    offline,
                    sector_size,
                },
        } => {
            let config = worker::config::WorkerConfig::load(&config)?;
            let manager = if offline {
                worker::config_check::ManagerDefaults {
                    layer: None,
                    note: "not asked (--offline); its defaults are left out below".to_owned(),
                }
            } else {
                ask_manager_for_defaults(&config)
            };
            let (report, passed) = worker::config_check::render(&config, &manager, sector_size);
            print!("{report}");
            if !passed {
                // Exiting skips destructors: the report must be out first.
                std::io::Write::flush(&mut std::io::stdout()).context("print the report")?;
                std::process::exit(1);
            }
        }
        Command::Daemon {
            config,
            fake_proofs,
        } => run_daemon(&config, fake_proofs)?,
        Command::Worker {
            config,
            host,
            token,
            command,
        } => worker_command(config.as_deref(), host, token, command)?,
    }
    Ok(())
}

/// Asks the configured manager for `Venus.SealingDefaults`; a manager that cannot be
/// reached is reported, not an error, so a configuration can be checked before the
/// manager runs.
fn ask_manager_for_defaults(
    config: &worker::config::WorkerConfig,
) -> worker::config_check::ManagerDefaults {
    let unanswered = |note: String| worker::config_check::ManagerDefaults { layer: None, note };
    let url = match config.sector_manager.rpc_url() {
        Ok(url) => url,
        Err(error) => return unanswered(error),
    };
    let asked = (|| -> anyhow::Result<sealer_api::types::SealingDefaults> {
        let client = worker::manager_client::ManagerClient::connect(
            &config.sector_manager,
            std::time::Duration::from_secs(5),
        )
        .map_err(anyhow::Error::msg)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start a runtime")?;
        Ok(runtime.block_on(client.sealing_defaults())?)
    })();
    match asked {
        Ok(defaults) => {
            let (layer, warnings) = worker::config::SealingOverrides::from_manager(&defaults);
            let mut note = format!("{url} serves {} sealing defaults", layer.set_keys().len());
            for warning in warnings {
                note.push_str("; ");
                note.push_str(&warning);
            }
            worker::config_check::ManagerDefaults {
                layer: Some(layer),
                note,
            }
        }
        Err(error) => unanswered(format!(
            "{url} could not be asked ({error:#}); its defaults are left out below"
        )),
    }
}

fn run_daemon(config_path: &std::path::Path, fake_proofs: bool) -> anyhow::Result<()> {
    // Traces go where `[telemetry]` says; a file that does not load is reported after
    // logging is up.
    let loaded = worker::config::WorkerConfig::load(config_path);
    let settings = match &loaded {
        Ok(config) => config.telemetry.settings(),
        Err(_) => telemetry::TelemetrySettings::resolve("sealing-worker", None, 1.0),
    };
    let _telemetry = telemetry::init(&settings, "info").context("start logging and tracing")?;
    let config = loaded?;
    let admin_token = worker::daemon::admin_token(config_path)?;
    let worker_executable =
        std::env::current_exe().context("find this executable for the built-in processors")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let interrupted = tokio::signal::ctrl_c();
            let terminated = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = interrupted => {}
                () = terminated => {}
            }
            let _ = stop_sender.send(true);
        });
        worker::daemon::run(
            config,
            worker::daemon::DaemonOptions {
                worker_executable,
                admin_token,
                fake_proofs,
            },
            stop,
        )
        .await
    })
}

fn worker_command(
    config: Option<&std::path::Path>,
    host: Option<String>,
    token: Option<String>,
    command: WorkerCommand,
) -> anyhow::Result<()> {
    let loaded = config.map(worker::config::WorkerConfig::load).transpose()?;
    let address = match (host, &loaded) {
        (Some(host), _) => host,
        (None, Some(config)) => format!(
            "{}:{}",
            match config.worker.rpc_server.host.as_deref() {
                None | Some("0.0.0.0") => "127.0.0.1",
                Some(host) => host,
            },
            config
                .worker
                .rpc_server
                .port
                .unwrap_or(worker::config::DEFAULT_WORKER_PORT)
        ),
        (None, None) => format!("127.0.0.1:{}", worker::config::DEFAULT_WORKER_PORT),
    };
    let token = match (token, config) {
        (Some(token), _) => token,
        (None, Some(config)) => worker::daemon::read_admin_token(config)?,
        (None, None) => anyhow::bail!(
            "the admin API needs its token: give -c <the worker's config file> (the daemon \
             wrote the token beside it) or --token"
        ),
    };
    let (method, params) = match &command {
        WorkerCommand::List { .. } => (worker::admin_api::method::WORKER_LIST, vec![]),
        WorkerCommand::Pause { index } => (
            worker::admin_api::method::WORKER_PAUSE,
            vec![serde_json::json!(index)],
        ),
        WorkerCommand::Resume { index, state } => (
            worker::admin_api::method::WORKER_RESUME,
            vec![serde_json::json!(index), serde_json::json!(state)],
        ),
        WorkerCommand::Abort { index, reason } => (
            worker::admin_api::method::WORKER_ABORT,
            vec![serde_json::json!(index), serde_json::json!(reason)],
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let answer = runtime
        .block_on(worker::admin_api::call(&address, &token, method, params))
        .with_context(|| format!("call {method} on the worker at {address}"))?;
    match command {
        WorkerCommand::List { json, state } => {
            let threads: Vec<serde_json::Value> = answer
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|thread| {
                    state
                        .as_deref()
                        .is_none_or(|state| thread["job_state"].as_str() == Some(state))
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(threads));
            } else {
                print!("{}", worker::admin_api::render_list(&threads));
            }
        }
        WorkerCommand::Pause { index } => report_command(&answer, "pause", index)?,
        WorkerCommand::Resume { index, .. } => report_command(&answer, "resume", index)?,
        WorkerCommand::Abort { index, .. } => report_command(&answer, "abort", index)?,
    }
    Ok(())
}

fn report_command(answer: &serde_json::Value, what: &str, index: usize) -> anyhow::Result<()> {
    if answer.as_bool() == Some(true) {
        println!("thread {index}: {what} taken");
        Ok(())
    } else {
        anyhow::bail!(
            "thread {index} did not take the {what}: the sector's state does not allow it \
             (the worker's log says why)"
        )
    }
}
