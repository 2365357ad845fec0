//! What the worker's tests share: a real manager on a devnet with fake proofs.

#![allow(dead_code, reason = "each test file uses part of the support")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The manager's persistent store `persist-1`, in its home.
pub(crate) fn persist_store(home: &tempfile::TempDir) -> std::path::PathBuf {
    home.path().join("persist-1")
}

/// A devnet, a manager home and the manager serving it; dropped together.
pub(crate) struct ManagerOnDevnet {
    /// The manager.
    pub(crate) manager: manager::RunningManager,
    /// Its home (the SQLite file).
    pub(crate) home: tempfile::TempDir,
    /// The chain.
    pub(crate) devnet: devnet::RunningDevnet,
}

/// The manager settings the tests seal with: messages count as landed after one epoch
/// and batches go out at `threshold` sectors or after a second.
pub(crate) fn quick_batches(threshold: u32) -> String {
    format!(
        r#"
[Miners.Commitment]
Confidence = 1
[Miners.Commitment.Pre]
Batch = {{ Threshold = {threshold}, MaxWait = "1s", CheckInterval = "200ms" }}
[Miners.Commitment.Prove]
Batch = {{ Threshold = {threshold}, MaxWait = "1s", CheckInterval = "200ms" }}
[Miners.Sealing]
SeedConfidence = 1
"#
    )
}

/// Starts a devnet making a block every `block_time` (zero: only when asked) and a
/// manager for miner 1000 on it, with `extra` appended to the manager's configuration.
pub(crate) async fn manager_on_devnet(block_time: Duration, extra: &str) -> ManagerOnDevnet {
    let devnet = devnet::start(
        devnet::DevnetConfig {
            block_time,
            proofs: devnet::ProofMode::Fake,
            ..devnet::DevnetConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("start a devnet");
    let home = tempfile::tempdir().expect("a home");
    let persist = persist_store(&home);
    std::fs::create_dir_all(&persist).expect("a persistent store");
    let text = format!(
        r#"
[Common]
Listen = "127.0.0.1:0"
[Common.API]
Chain = "{chain}"
[[Common.PersistStores]]
Name = "persist-1"
Path = "{persist}"
[[Miners]]
Actor = 1000
{extra}
"#,
        chain = devnet.connection_string(Some(&devnet.admin_token)),
        persist = persist.display(),
    );
    let config = manager::config::ManagerConfig::parse(Path::new("sector-manager.toml"), &text)
        .expect("a manager configuration");
    let manager = manager::start(manager::StartOptions {
        home: home.path().to_owned(),
        config,
        proof_check: manager::ProofCheck::Fake,
        commit_tick: Duration::from_millis(200),
    })
    .await
    .expect("start a manager");
    ManagerOnDevnet {
        manager,
        home,
        devnet,
    }
}

/// Kills the daemon when the test ends, however it ends.
pub(crate) struct Daemon(Child);

impl Daemon {
    /// `kill -TERM` and wait: the daemon stops as on an operator's request.
    pub(crate) fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }

    /// `kill -9`: the daemon gets no chance to save anything.
    pub(crate) fn kill_hard(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A worker's files for a manager: a directory holding the sealing stores and the
/// configuration.
pub(crate) struct WorkerFiles {
    /// The directory (the stores, the configuration, the worker's records and logs).
    pub(crate) directory: tempfile::TempDir,
    /// The configuration file.
    pub(crate) config: std::path::PathBuf,
}

impl ManagerOnDevnet {
    /// Files for a worker of this manager: `threads` sealing stores and a configuration
    /// that signs in with a read/write token, serves its admin API on `port` and ends
    /// with `extra` (more TOML sections, or nothing).
    pub(crate) fn worker_files(&self, threads: usize, port: u16, extra: &str) -> WorkerFiles {
        let token = self.manager.issue_token(&[
            chain_client::auth::Permission::Read,
            chain_client::auth::Permission::Write,
        ]);
        let directory = tempfile::tempdir().expect("a directory");
        let config = write_worker_config(
            directory.path(),
            &self.manager.url(),
            &token,
            &persist_store(&self.home),
            threads,
            port,
        );
        if !extra.is_empty() {
            let mut text = std::fs::read_to_string(&config).expect("the configuration");
            text.push_str(extra);
            std::fs::write(&config, text).expect("add to the configuration");
        }
        WorkerFiles { directory, config }
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Writes a worker configuration with `threads` sealing stores under `directory`.
pub(crate) fn write_worker_config(
    directory: &Path,
    manager_url: &str,
    token: &str,
    persist: &Path,
    threads: usize,
    port: u16,
) -> std::path::PathBuf {
    let mut text = format!(
        r#"
[worker]
name = "test-worker"
ping_interval = "1s"
[worker.rpc_server]
host = "127.0.0.1"
port = {port}

[sector_manager]
rpc_client.addr = "{manager_url}"
token = "{token}"

[sealing]
allowed_miners = [1000]
allowed_sizes = ["2KiB"]
max_retries = 50
recover_interval = "300ms"
rpc_polling_interval = "300ms"
seal_interval = "100ms"

[[attached]]
name = "persist-1"
location = "{persist}"
"#,
        persist = persist.display()
    );
    for thread in 0..threads {
        let location = directory.join(format!("store-{thread}"));
        storage_alloc::sealing_store::initialise_sealing_store(&location).expect("a sealing store");
        text.push_str(&format!(
            "\n[[sealing_thread]]\nlocation = \"{}\"\n",
            location.display()
        ));
    }
    let path = directory.join("worker.toml");
    std::fs::write(&path, text).expect("write the worker configuration");
    path
}

pub(crate) fn start_daemon(config: &Path, environment: &[(&str, String)]) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .expect("a log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealing-worker"));
    command
        .args(["daemon", "--fake-proofs", "-c"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    for (name, value) in environment {
        command.env(name, value);
    }
    Daemon(command.spawn().expect("start the worker daemon"))
}

/// The head and body of `GET path` from `address` (`host:port`), over a plain
/// connection.
pub(crate) fn http_request(address: &str, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("connect for a GET");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the GET");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_owned(), body.to_owned())
}

/// The body of `GET path` from `address`, which must answer 200.
pub(crate) fn http_get(address: &str, path: &str) -> String {
    let (head, body) = http_request(address, path);
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body
}

pub(crate) fn worker_cli(config: &Path, arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
        .arg("worker")
        .arg("-c")
        .arg(config)
        .args(arguments)
        .output()
        .expect("run the worker CLI")
}

pub(crate) async fn finalized_sectors(started: &ManagerOnDevnet, up_to: u64) -> Vec<u64> {
    let mut finalized = Vec::new();
    for number in 0..=up_to {
        if let Ok(row) = started
            .manager
            .manager
            .known_sector(sealer_api::types::SectorId {
                miner: 1000,
                number,
            })
            .await
            && row.phase == manager::db::Phase::Finalized
        {
            finalized.push(number);
        }
    }
    finalized
}

/// The daemon's log (its standard error, appended across restarts).
pub(crate) fn log_of(config: &Path) -> String {
    std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
}
