//! The `sector-manager` binary: the daemon, its embedded devnet, configuration and
//! tokens, and the operator's `util` commands (tables for people, `--json` for scripts).

#![allow(
    clippy::print_stdout,
    reason = "a command-line entry point prints its results"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chain_client::auth::Permission;
use chain_client::transport::HttpTransport;
use chain_client::{Endpoint, LotusClient};
use clap::{Parser, Subcommand};
use manager::config::{DEFAULT_CONFIG, ManagerConfig};
use manager::rpc::admin;
use manager::{ProofCheck, StartOptions};
use serde_json::{Value, json};

/// The sector manager of a sealcluster.
#[derive(Parser, Debug)]
#[command(name = "sector-manager", version, about)]
struct Cli {
    /// The home directory: configuration, SQLite database, API address and token.
    #[arg(
        long,
        global = true,
        env = "SECTOR_MANAGER_HOME",
        default_value = "~/.sector-manager"
    )]
    home: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Start a devnet chain with one miner and run the manager against it.
    Devnet {
        /// Where the manager's API listens.
        #[arg(long, default_value = "127.0.0.1:1789")]
        listen: SocketAddr,
        /// Where the devnet's Lotus API listens.
        #[arg(long, default_value = "127.0.0.1:1234")]
        chain_listen: SocketAddr,
        /// Seconds per block.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        block_time: Duration,
        /// Accept the fake proof backend's proofs instead of real ones.
        #[arg(long)]
        fake_proofs: bool,
    },
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// API tokens.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Operator commands against a running manager.
    #[command(subcommand)]
    Util(UtilCommand),
}

#[derive(Subcommand, Debug)]
enum DaemonCommand {
    /// Serve workers: `<home>/sector-manager.toml` must exist (`config init` writes one).
    Run {
        /// Check submitted proofs with the fake backend (only for a devnet with fake proofs).
        #[arg(long)]
        fake_proofs: bool,
        /// Also prove the window PoSts of every miner whose `[Miners.PoSt]` is enabled.
        #[arg(long)]
        poster: bool,
        /// Only prove PoSts (a host of its own): no sealing, worker methods refused.
        #[arg(long, conflicts_with = "poster")]
        poster_only: bool,
        /// Also serve winning PoSts to block producers (`Venus.ComputeWinningPoSt`) for
        /// every miner whose `[Miners.Proof]` is enabled.
        #[arg(long)]
        miner: bool,
        /// With `--miner`: prove one sector of each miner at start, so the first round
        /// finds the parameters loaded and the stores read (`--warmup=false` skips it).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, requires = "miner")]
        warmup: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Write a commented default `sector-manager.toml` into the home directory.
    Init {
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check the configuration file and print where it is wrong.
    Check,
}

#[derive(Subcommand, Debug)]
enum AuthCommand {
    /// Print a new token.
    CreateToken {
        /// Permissions, comma-separated: read, write, sign, admin (admin implies all).
        #[arg(long, value_delimiter = ',', required = true)]
        perm: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct Connection {
    /// The manager's API URL (default: the address the daemon wrote into the home).
    #[arg(long, global = true)]
    api: Option<String>,
    /// A token (default: the admin token the daemon wrote into the home).
    #[arg(long, global = true, env = "SECTOR_MANAGER_TOKEN")]
    token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum UtilCommand {
    /// Sectors.
    Sectors {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: SectorsCommand,
    },
    /// Workers.
    Workers {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: WorkersCommand,
    },
    /// Persistent stores.
    Storage {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// The chain.
    Chain {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: ChainCommand,
    },
    /// Miners.
    Miner {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: MinerCommand,
    },
    /// Window PoSt (with `daemon run --poster`) and winning PoSt (with `--miner`).
    Proving {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: ProvingCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SectorsCommand {
    /// List sectors.
    List {
        /// Only sealing, finalized or aborted sectors.
        #[arg(long)]
        phase: Option<String>,
        /// Only this miner's.
        #[arg(long)]
        miner: Option<u64>,
    },
    /// Everything known about one sector: record, messages, history.
    State { miner: u64, number: u64 },
    /// Abort a sealing sector.
    Abort {
        miner: u64,
        number: u64,
        /// Why (recorded).
        #[arg(long, default_value = "no reason given")]
        reason: String,
    },
    /// Bring a finalized or aborted sector back to sealing.
    Restore { miner: u64, number: u64 },
    /// Queue the stored precommit again (after a failed message).
    ResendPre { miner: u64, number: u64 },
    /// Queue the stored proof again (after a failed message).
    ResendProve { miner: u64, number: u64 },
    /// Mark a sector finalized (its worker is gone, its files are persisted).
    Finalize { miner: u64, number: u64 },
}

#[derive(Subcommand, Debug)]
enum WorkersCommand {
    /// Workers that pinged, with their threads.
    List,
    /// Pause a worker's sealing thread.
    Pause {
        /// The worker's name.
        name: String,
        /// The thread's index.
        index: u64,
        /// The worker's admin token (a sealcluster worker's `sealing-worker-admin.token`;
        /// damocles workers need none).
        #[arg(long, env = "SEALING_WORKER_ADMIN_TOKEN")]
        worker_token: Option<String>,
    },
    /// Resume a worker's sealing thread, optionally in another state.
    Resume {
        /// The worker's name.
        name: String,
        /// The thread's index.
        index: u64,
        /// The state to resume in.
        #[arg(long)]
        state: Option<String>,
        /// The worker's admin token (as for `pause`).
        #[arg(long, env = "SEALING_WORKER_ADMIN_TOKEN")]
        worker_token: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum StorageCommand {
    /// Persistent stores with free and reserved space.
    List,
    /// Drop a sector's reservation.
    ReleaseReserved { miner: u64, number: u64 },
}

#[derive(Subcommand, Debug)]
enum ChainCommand {
    /// The chain's head.
    Head,
}

#[derive(Subcommand, Debug)]
enum ProvingCommand {
    /// The window PoSt deadlines of the latest proving periods: partitions, sectors
    /// proven and skipped, proof time, messages, landed epoch, outcome.
    Deadlines,
    /// A miner's current deadline and fault counts, from the chain.
    Info { actor: u64 },
    /// A miner's faulty sectors, with their deadline and partition.
    Faults { actor: u64 },
    /// Check the files of every live sector of one deadline now, as a window PoSt
    /// would read them (admin).
    Check { actor: u64, deadline: u64 },
    /// The winning PoSt services' latest rounds and warm-ups (with `daemon run --miner`):
    /// round, sectors, time taken and any error.
    Winning,
}

#[derive(Subcommand, Debug)]
enum MinerCommand {
    /// A miner's addresses, sector size and last allocated number.
    Info { actor: u64 },
}

fn home_directory(text: &str) -> PathBuf {
    match text.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map_or_else(
            || PathBuf::from(text),
            |home| PathBuf::from(home).join(rest),
        ),
        None => PathBuf::from(text),
    }
}

fn config_path(home: &Path) -> PathBuf {
    home.join("sector-manager.toml")
}

fn load_config(home: &Path) -> anyhow::Result<ManagerConfig> {
    let path = config_path(home);
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist; `sector-manager --home {} config init` writes a commented default",
            path.display(),
            home.display()
        );
    }
    Ok(ManagerConfig::load(&path)?)
}

/// Writes the API address and an admin token into the home, for `util` commands.
async fn wait_for_shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Whether the daemon proves window PoSts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poster {
    /// Sealing only.
    No,
    /// Sealing and window PoSt.
    Also,
    /// Window PoSt only.
    Only,
}

/// Whether the daemon serves winning PoSts, and whether it warms them up at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WinningPost {
    /// Not served.
    Off,
    /// Served for the miners whose `[Miners.Proof]` is enabled.
    On {
        /// Prove one sector per miner at start.
        warm_up: bool,
    },
}

async fn run_daemon(
    home: &Path,
    config: ManagerConfig,
    proof_check: ProofCheck,
    poster: Poster,
    winning: WinningPost,
) -> anyhow::Result<()> {
    let options = StartOptions {
        home: home.to_owned(),
        config,
        proof_check,
        commit_tick: Duration::from_secs(1),
    };
    let mut running = match poster {
        Poster::Only => {
            let running = manager::start_poster(options).await?;
            println!("a PoSt-only manager: worker methods are refused here");
            running
        }
        _ => manager::start(options).await?,
    };
    if poster == Poster::Also {
        let runners = running
            .start_window_post()
            .context("start the window PoSt runners")?;
        println!("proving the window PoSts of {runners} miner(s)");
    }
    if let WinningPost::On { warm_up } = winning {
        let services = running.start_winning_post(warm_up);
        println!("serving the winning PoSts of {services} miner(s)");
    }
    manager::write_connection_files(home, &running.url(), &running.issue_token(&Permission::ALL))?;
    println!("sector-manager is serving on {}", running.url());
    println!(
        "workers connect with [sector_manager] rpc_client.addr = \"/ip4/{}/tcp/{}/http\"",
        running.address.ip(),
        running.address.port()
    );
    wait_for_shutdown().await;
    println!("stopping");
    running.stop().await;
    Ok(())
}

fn permissions(names: &[String]) -> anyhow::Result<Vec<Permission>> {
    let mut granted = Vec::new();
    for name in names {
        match name.trim() {
            "read" => granted.push(Permission::Read),
            "write" => granted.extend([Permission::Read, Permission::Write]),
            "sign" => granted.extend([Permission::Read, Permission::Write, Permission::Sign]),
            "admin" => granted.extend(Permission::ALL),
            other => anyhow::bail!("{other:?} is not a permission; use read, write, sign or admin"),
        }
    }
    granted.sort();
    granted.dedup();
    Ok(granted)
}

async fn call(
    home: &Path,
    connection: &Connection,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let url = match &connection.api {
        Some(url) => url.clone(),
        None => std::fs::read_to_string(home.join("api")).with_context(|| {
            format!(
                "read {}/api (is the daemon running? pass --api otherwise)",
                home.display()
            )
        })?,
    };
    let token = match &connection.token {
        Some(token) => Some(token.clone()),
        None => std::fs::read_to_string(home.join("token")).ok(),
    };
    let text = match token {
        Some(token) => format!("{}:{}", token.trim(), url.trim()),
        None => url.trim().to_owned(),
    };
    let endpoint = Endpoint::parse(&text).map_err(|error| anyhow::anyhow!("{text:?}: {error}"))?;
    let client = LotusClient::new(HttpTransport::new(endpoint, Duration::from_secs(60))?);
    let params = match params {
        Value::Array(values) => values,
        other => vec![other],
    };
    client
        .call(method, params)
        .await
        .with_context(|| format!("call {method}"))
}

fn sector(miner: u64, number: u64) -> Value {
    json!({"Miner": miner, "Number": number})
}

fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!(
        "{}",
        line(headers.iter().map(|h| (*h).to_owned()).collect())
    );
    for row in rows {
        println!("{}", line(row));
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Prints an array of objects as a table: one row per object, one column per
/// `(header, key)`.
fn print_objects(value: &Value, columns: &[(&str, &str)]) {
    let rows = value
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|object| columns.iter().map(|(_, key)| text(&object[*key])).collect())
                .collect()
        })
        .unwrap_or_default();
    let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    print_table(&headers, rows);
}

/// Prints an answer as a table for people.
type TablePrinter = fn(&Value);

async fn util(home: &Path, command: UtilCommand) -> anyhow::Result<()> {
    let (connection, method, params, table): (Connection, &str, Value, Option<TablePrinter>) =
        match command {
            UtilCommand::Sectors {
                connection,
                command,
            } => match command {
                SectorsCommand::List { phase, miner } => (
                    connection,
                    admin::LIST_SECTORS,
                    json!([phase.unwrap_or_default(), miner]),
                    Some(|value: &Value| {
                        let rows = value
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|s| {
                                vec![
                                    format!(
                                        "s-t0{}-{}",
                                        text(&s["ID"]["Miner"]),
                                        text(&s["ID"]["Number"])
                                    ),
                                    text(&s["Phase"]),
                                    text(&s["Progress"]),
                                    text(&s["LatestState"]),
                                    text(&s["Worker"]),
                                    text(&s["AbortReason"]),
                                ]
                            })
                            .collect();
                        print_table(
                            &["SECTOR", "PHASE", "PROGRESS", "STATE", "WORKER", "ABORTED"],
                            rows,
                        );
                    }),
                ),
                SectorsCommand::State { miner, number } => (
                    connection,
                    admin::SECTOR_STATE,
                    json!([sector(miner, number)]),
                    None,
                ),
                SectorsCommand::Abort {
                    miner,
                    number,
                    reason,
                } => (
                    connection,
                    admin::ABORT_SECTOR,
                    json!([sector(miner, number), reason]),
                    None,
                ),
                SectorsCommand::Restore { miner, number } => (
                    connection,
                    admin::RESTORE_SECTOR,
                    json!([sector(miner, number), true]),
                    None,
                ),
                SectorsCommand::ResendPre { miner, number } => (
                    connection,
                    admin::RESEND_PRE_COMMIT,
                    json!([sector(miner, number)]),
                    None,
                ),
                SectorsCommand::ResendProve { miner, number } => (
                    connection,
                    admin::RESEND_PROOF,
                    json!([sector(miner, number)]),
                    None,
                ),
                SectorsCommand::Finalize { miner, number } => (
                    connection,
                    admin::FINALIZE_SECTOR,
                    json!([sector(miner, number)]),
                    None,
                ),
            },
            UtilCommand::Workers {
                connection,
                command,
            } => match command {
                WorkersCommand::List => (
                    connection,
                    admin::WORKER_PING_INFO_LIST,
                    json!([]),
                    Some(|value: &Value| {
                        let now = manager::sealer::unix_now();
                        let rows = value
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|w| {
                                let summary = &w["Info"]["Summary"];
                                vec![
                                    text(&w["Info"]["Name"]),
                                    text(&w["Info"]["Dest"]),
                                    text(&w["Info"]["Version"]),
                                    format!(
                                        "{}/{}/{}/{}/{}",
                                        text(&summary["Threads"]),
                                        text(&summary["Running"]),
                                        text(&summary["Waiting"]),
                                        text(&summary["Paused"]),
                                        text(&summary["Errors"])
                                    ),
                                    format!("{}s ago", now - w["LastPing"].as_i64().unwrap_or(now)),
                                ]
                            })
                            .collect();
                        print_table(
                            &[
                                "NAME",
                                "DEST",
                                "VERSION",
                                "THREADS/RUN/WAIT/PAUSED/ERR",
                                "LAST PING",
                            ],
                            rows,
                        );
                    }),
                ),
                WorkersCommand::Pause {
                    name,
                    index,
                    worker_token,
                } => {
                    return worker_call(
                        home,
                        &connection,
                        &name,
                        worker_token,
                        "VenusWorker.WorkerPause",
                        json!([index]),
                    )
                    .await;
                }
                WorkersCommand::Resume {
                    name,
                    index,
                    state,
                    worker_token,
                } => {
                    return worker_call(
                        home,
                        &connection,
                        &name,
                        worker_token,
                        "VenusWorker.WorkerResume",
                        json!([index, state]),
                    )
                    .await;
                }
            },
            UtilCommand::Storage {
                connection,
                command,
            } => match command {
                StorageCommand::List => (
                    connection,
                    admin::STORE_LIST,
                    json!([]),
                    Some(|value: &Value| {
                        let rows = value
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|s| {
                                vec![
                                    text(&s["Name"]),
                                    text(&s["Path"]),
                                    text(&s["Free"]),
                                    text(&s["Reserved"]),
                                    text(&s["ReservedBy"]),
                                    text(&s["ReadOnly"]),
                                    text(&s["Error"]),
                                ]
                            })
                            .collect();
                        print_table(
                            &[
                                "NAME",
                                "PATH",
                                "FREE",
                                "RESERVED",
                                "RESERVED BY",
                                "READ ONLY",
                                "ERROR",
                            ],
                            rows,
                        );
                    }),
                ),
                StorageCommand::ReleaseReserved { miner, number } => (
                    connection,
                    admin::STORE_RELEASE_RESERVED,
                    json!([sector(miner, number)]),
                    None,
                ),
            },
            UtilCommand::Chain {
                connection,
                command: ChainCommand::Head,
            } => (connection, admin::CHAIN_HEAD, json!([]), None),
            UtilCommand::Miner {
                connection,
                command: MinerCommand::Info { actor },
            } => (connection, admin::MINER_INFO, json!([actor]), None),
            UtilCommand::Proving {
                connection,
                command: ProvingCommand::Info { actor },
            } => (connection, admin::PROVING_INFO, json!([actor]), None),
            UtilCommand::Proving {
                connection,
                command: ProvingCommand::Faults { actor },
            } => (
                connection,
                admin::PROVING_FAULTS,
                json!([actor]),
                Some(|value: &Value| {
                    print_objects(
                        value,
                        &[
                            ("DEADLINE", "Deadline"),
                            ("PARTITION", "Partition"),
                            ("SECTOR", "Sector"),
                            ("RECOVERING", "Recovering"),
                        ],
                    );
                }),
            ),
            UtilCommand::Proving {
                connection,
                command: ProvingCommand::Check { actor, deadline },
            } => (
                connection,
                admin::PROVING_CHECK,
                json!([actor, deadline]),
                Some(|value: &Value| {
                    print_objects(
                        value,
                        &[
                            ("DEADLINE", "Deadline"),
                            ("PARTITION", "Partition"),
                            ("SECTOR", "Sector"),
                            ("OK", "Ok"),
                            ("REASON", "Reason"),
                        ],
                    );
                }),
            ),
            UtilCommand::Proving {
                connection,
                command: ProvingCommand::Winning,
            } => (
                connection,
                admin::PROVING_WINNING,
                json!([]),
                Some(|value: &Value| {
                    print_objects(
                        value,
                        &[
                            ("MINER", "Miner"),
                            ("ROUND", "Round"),
                            ("WARM-UP", "WarmUp"),
                            ("SECTORS", "Sectors"),
                            ("MS", "ElapsedMs"),
                            ("ERROR", "Error"),
                        ],
                    );
                }),
            ),
            UtilCommand::Proving {
                connection,
                command: ProvingCommand::Deadlines,
            } => (
                connection,
                admin::PROVING_DEADLINES,
                json!([]),
                Some(|value: &Value| {
                    print_objects(
                        value,
                        &[
                            ("MINER", "miner"),
                            ("PERIOD", "period_start"),
                            ("DEADLINE", "index"),
                            ("OPEN", "open"),
                            ("CLOSE", "close"),
                            ("OUTCOME", "outcome"),
                            ("PARTITIONS", "partitions"),
                            ("PROVEN", "sectors_proven"),
                            ("SKIPPED", "sectors_skipped"),
                            ("PROOF MS", "proof_milliseconds"),
                            ("LANDED", "landed_epoch"),
                            ("RECOVERED", "recoveries_declared"),
                            ("ERROR", "last_error"),
                        ],
                    );
                }),
            ),
        };
    let value = call(home, &connection, method, params).await?;
    match table {
        Some(print) if !connection.json => print(&value),
        _ => println!("{}", serde_json::to_string_pretty(&value)?),
    }
    Ok(())
}

/// Calls a worker's own RPC (`VenusWorker.*`) at the address it pinged with.
async fn worker_call(
    home: &Path,
    connection: &Connection,
    name: &str,
    worker_token: Option<String>,
    method: &str,
    params: Value,
) -> anyhow::Result<()> {
    let workers = call(home, connection, admin::WORKER_PING_INFO_LIST, json!([])).await?;
    let dest = workers
        .as_array()
        .and_then(|list| list.iter().find(|w| w["Info"]["Name"] == name))
        .and_then(|w| w["Info"]["Dest"].as_str().map(str::to_owned))
        .with_context(|| format!("no worker named {name:?} has pinged this manager"))?;
    let endpoint = manager::worker_admin_endpoint(&dest, worker_token);
    let client = LotusClient::new(HttpTransport::new(endpoint, Duration::from_secs(30))?);
    let params = params.as_array().cloned().unwrap_or_default();
    let answer = client
        .call(method, params)
        .await
        .with_context(|| format!("call {method} on {name} at {dest}"))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

async fn devnet(
    home: &Path,
    listen: SocketAddr,
    chain_listen: SocketAddr,
    block_time: Duration,
    fake_proofs: bool,
) -> anyhow::Result<()> {
    let chain_directory = home.join("devnet-chain");
    let running_chain = devnet::start(
        devnet::DevnetConfig {
            block_time,
            proofs: if fake_proofs {
                devnet::ProofMode::Fake
            } else {
                devnet::ProofMode::Real
            },
            directory: Some(chain_directory),
            ..devnet::DevnetConfig::default()
        },
        chain_listen,
    )
    .await
    .context("start the devnet chain")?;
    let miner = running_chain.state().config.miner_id;
    let mut config = manager::devnet_manager_config(home, miner)?;
    config.common.listen = listen;
    config.common.api.chain = running_chain.connection_string(Some(&running_chain.admin_token));
    println!(
        "devnet chain: FULLNODE_API_INFO={}",
        config.common.api.chain
    );
    run_daemon(
        home,
        config,
        if fake_proofs {
            ProofCheck::Fake
        } else {
            ProofCheck::Real
        },
        Poster::No,
        WinningPost::Off,
    )
    .await
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = home_directory(&cli.home);
    // The daemon exports traces as its configuration says; a configuration that does
    // not load is reported by the command itself, after logging is up.
    let settings = match &cli.command {
        Command::Daemon(_) => ManagerConfig::load(&config_path(&home))
            .ok()
            .map(|config| config.common.telemetry.settings()),
        _ => None,
    }
    .unwrap_or_else(|| telemetry::TelemetrySettings::resolve("sector-manager", None, 1.0));
    let _telemetry = telemetry::init(&settings, "info").context("start logging and tracing")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Daemon(DaemonCommand::Run {
                fake_proofs,
                poster,
                poster_only,
                miner,
                warmup,
            }) => {
                let config = load_config(&home)?;
                run_daemon(
                    &home,
                    config,
                    if fake_proofs {
                        ProofCheck::Fake
                    } else {
                        ProofCheck::Real
                    },
                    if poster_only {
                        Poster::Only
                    } else if poster {
                        Poster::Also
                    } else {
                        Poster::No
                    },
                    if miner {
                        WinningPost::On { warm_up: warmup }
                    } else {
                        WinningPost::Off
                    },
                )
                .await
            }
            Command::Devnet {
                listen,
                chain_listen,
                block_time,
                fake_proofs,
            } => devnet(&home, listen, chain_listen, block_time, fake_proofs).await,
            Command::Config(ConfigCommand::Init { force }) => {
                let path = config_path(&home);
                if path.exists() && !force {
                    anyhow::bail!("{} exists; pass --force to replace it", path.display());
                }
                std::fs::create_dir_all(&home)
                    .with_context(|| format!("create {}", home.display()))?;
                std::fs::write(&path, DEFAULT_CONFIG)
                    .with_context(|| format!("write {}", path.display()))?;
                println!("wrote {}", path.display());
                Ok(())
            }
            Command::Config(ConfigCommand::Check) => {
                load_config(&home)?;
                println!("{} is valid", config_path(&home).display());
                Ok(())
            }
            Command::Auth(AuthCommand::CreateToken { perm }) => {
                let config = load_config(&home)?;
                let token = manager::create_token(&config, &home, &permissions(&perm)?).await?;
                println!("{token}");
                Ok(())
            }
            Command::Util(command) => util(&home, command).await,
        }
    })
}
