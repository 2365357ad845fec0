//! The worker daemon as an operator runs it: `sealing-worker daemon` as a real process
//! with its built-in processors (fake proof backend), sealing against a real manager on
//! a devnet making blocks. Two threads seal sectors until the manager has finalized at
//! least four (each proven on chain); the admin CLI lists the threads, pauses one,
//! refuses a wrong token, and resumes it.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MANAGER_EXTRA: &str = r#"
[Miners.Commitment]
Confidence = 1
[Miners.Commitment.Pre]
Batch = { Threshold = 2, MaxWait = "1s", CheckInterval = "200ms" }
[Miners.Commitment.Prove]
Batch = { Threshold = 2, MaxWait = "1s", CheckInterval = "200ms" }
[Miners.Sealing]
SeedConfidence = 1
"#;

/// Kills the daemon when the test ends, however it ends.
pub(crate) struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

pub(crate) fn worker_cli(config: &Path, arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
        .arg("worker")
        .arg("-c")
        .arg(config)
        .args(arguments)
        .output()
        .expect("run the worker CLI")
}

pub(crate) async fn finalized_sectors(started: &support::ManagerOnDevnet, up_to: u64) -> Vec<u64> {
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

fn log_of(config: &Path) -> String {
    std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_seals_sectors_and_obeys_its_admin_commands() {
    let started = support::manager_on_devnet(Duration::from_millis(150), MANAGER_EXTRA).await;
    let token = started.manager.issue_token(&[
        chain_client::auth::Permission::Read,
        chain_client::auth::Permission::Write,
    ]);
    let directory = tempfile::tempdir().expect("a directory");
    let port = free_port();
    let config = write_worker_config(
        directory.path(),
        &started.manager.url(),
        &token,
        &support::persist_store(&started.home),
        2,
        port,
    );
    let _daemon = start_daemon(&config, &[]);

    let deadline = Instant::now() + Duration::from_secs(120);
    let finalized = loop {
        let finalized = finalized_sectors(&started, 12).await;
        if finalized.len() >= 4 {
            break finalized;
        }
        assert!(
            Instant::now() < deadline,
            "only {finalized:?} finalized in time; the worker's log:\n{}",
            log_of(&config)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(finalized.len() >= 4, "{finalized:?}");
    // Every finalized sector's files are in the persistent store.
    for number in &finalized {
        let sealed =
            support::persist_store(&started.home).join(format!("sealed/s-t01000-{number}"));
        assert!(sealed.exists(), "{} is missing", sealed.display());
    }

    let listed = worker_cli(&config, &["list"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        table.contains("store-0") && table.contains("store-1"),
        "{table}"
    );

    let paused = worker_cli(&config, &["pause", "-i", "0"]);
    assert!(paused.status.success(), "{paused:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = worker_cli(&config, &["list", "--json"]);
        let threads: serde_json::Value =
            serde_json::from_slice(&listed.stdout).expect("the list as JSON");
        if threads[0]["thread_state"]["state"] == "Paused" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "thread 0 never paused: {threads}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let refused = Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
        .args([
            "worker",
            "-H",
            &format!("127.0.0.1:{port}"),
            "--token",
            "wrong",
            "list",
        ])
        .output()
        .expect("run the worker CLI");
    assert!(!refused.status.success(), "a wrong token was accepted");

    let resumed = worker_cli(&config, &["resume", "-i", "0"]);
    assert!(resumed.status.success(), "{resumed:?}");
    let listed = worker_cli(&config, &["list", "--json"]);
    let threads: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("the list as JSON");
    assert_ne!(threads[0]["thread_state"]["state"], "Paused", "{threads}");
    started.manager.stop().await;
}
