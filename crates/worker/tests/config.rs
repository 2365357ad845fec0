//! The worker's configuration file: a damocles-style file is read as it is, deprecated
//! sections are warned about, mistakes are refused with their place and the nearest key,
//! and `config check` shows each thread's settings with the layer each value came from,
//! including the defaults a real manager serves.

mod support;

use std::path::Path;
use std::process::Command;

use worker::config::{ConfigError, HotThreadConfig, WorkerConfig};

/// A worker file as a damocles operator writes it (every section the reference knows,
/// one deprecated section), with `{store}` for a directory of the test.
const OPERATOR_FILE: &str = r#"
[worker]
name = "worker-01"
rpc_server.host = "0.0.0.0"
rpc_server.port = 17890
ping_interval = "30s"
ScanPersistStores = []

[metrics]
enable = false

[sector_manager]
rpc_client.addr = "{manager}"
rpc_client.headers = { X-Test = "1" }
piece_token = "piece"

[sealing]
allowed_miners = [1000]
allowed_sizes = ["2KiB"]
max_retries = 7
seal_interval = "10s"

[[sealing_thread]]
location = "{store}/t1"

[[sealing_thread]]
location = "{store}/t2"
sealing.max_retries = 9
sealing.rpc_polling_interval = "5s"

[[sealing_thread]]
plan = "wdpost"

[[attached]]
name = "persist-1"
location = "{store}/persist"

[remote_store]
name = "old"
location = "/mnt/old"

[processors.limitation.concurrent]
pc1 = 1
"#;

fn write_file(directory: &Path, manager: &str, text: &str) -> std::path::PathBuf {
    let path = directory.join("damocles-worker.toml");
    std::fs::write(
        &path,
        text.replace("{store}", &directory.display().to_string())
            .replace("{manager}", manager),
    )
    .expect("write the file");
    path
}

fn invalid(text: &str) -> (usize, usize, String) {
    let directory = tempfile::tempdir().expect("a directory");
    let path = write_file(directory.path(), "/ip4/127.0.0.1/tcp/1789", text);
    match WorkerConfig::load(&path) {
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected an invalid file, got {other:?}"),
    }
}

#[test]
fn an_operators_file_is_read_with_a_warning_for_the_deprecated_section() {
    let directory = tempfile::tempdir().expect("a directory");
    let path = write_file(directory.path(), "/ip4/10.0.0.2/tcp/1789", OPERATOR_FILE);
    let config = WorkerConfig::load(&path).expect("a valid file");
    assert_eq!(config.sealing_threads.len(), 3);
    assert_eq!(config.sealing_threads[1].sealing.max_retries, Some(9));
    assert_eq!(config.worker.name.as_deref(), Some("worker-01"));
    assert_eq!(config.attached[0].name(), "persist-1");
    assert_eq!(
        config.sector_manager.rpc_url().expect("a URL"),
        "http://10.0.0.2:1789/rpc/v0"
    );
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    let warning = config.warnings[0].to_string();
    assert!(
        warning.contains("damocles-worker.toml:38:1:")
            && warning.contains("[remote_store] is ignored"),
        "{warning}"
    );
}

#[test]
fn mistakes_are_refused_with_their_place_and_the_nearest_key() {
    let (line, column, message) =
        invalid(&OPERATOR_FILE.replace("sealing.max_retries = 9", "sealing.max_retires = 9"));
    assert_eq!((line, column), (28, 9), "{message}");
    assert!(message.contains("did you mean `max_retries`?"), "{message}");

    let (line, _, message) =
        invalid(&OPERATOR_FILE.replace("[[sealing_thread]]\nplan", "[[sealing_threads]]\nplan"));
    assert_eq!(line, 31, "{message}");
    assert!(
        message.contains("did you mean `sealing_thread`?"),
        "{message}"
    );

    let (_, _, message) = invalid(
        &OPERATOR_FILE.replace("seal_interval = \"10s\"", "seal_interval = \"10 parsecs\""),
    );
    assert!(message.contains("is not a duration"), "{message}");

    let (line, _, message) =
        invalid(&OPERATOR_FILE.replace("location = \"{store}/t2\"", "location = \"{store}/t1\""));
    assert_eq!(line, 26, "{message}");
    assert!(message.contains("share the location"), "{message}");

    let (line, _, message) = invalid(&OPERATOR_FILE.replace("location = \"{store}/t1\"\n", ""));
    assert_eq!(line, 23, "{message}");
    assert!(message.contains("has no location"), "{message}");

    let (_, _, message) = invalid(&OPERATOR_FILE.replace("plan = \"wdpost\"", "plan = \"sealr\""));
    assert!(message.contains("unknown plan"), "{message}");
}

#[test]
fn manager_addresses_are_read_as_damocles_reads_them() {
    let url = |address: &str| {
        let text = OPERATOR_FILE
            .replace("{manager}", address)
            .replace("{store}", "/tmp");
        WorkerConfig::parse(Path::new("w.toml"), &text)
            .map(|config| config.sector_manager.rpc_url().expect("a URL"))
    };
    assert_eq!(
        url("/ip4/10.0.0.2/tcp/1789/http").expect("valid"),
        "http://10.0.0.2:1789/rpc/v0"
    );
    assert_eq!(
        url("/dns/manager/tcp/1789").expect("valid"),
        "http://manager:1789/rpc/v0"
    );
    assert_eq!(
        url("http://manager:1789").expect("valid"),
        "http://manager:1789/rpc/v0"
    );
    assert_eq!(
        url("http://manager:1789/rpc/v0").expect("valid"),
        "http://manager:1789/rpc/v0"
    );
    assert!(matches!(
        url("/ip4/10.0.0.2/udp/1789"),
        Err(ConfigError::Invalid { .. })
    ));
}

#[test]
fn a_hot_file_is_read_and_checked_like_a_thread_body() {
    let directory = tempfile::tempdir().expect("a directory");
    assert_eq!(
        HotThreadConfig::load(directory.path()).expect("no file"),
        None
    );
    std::fs::write(
        directory.path().join("config.toml"),
        "plan = \"snapup\"\n[sealing]\nmax_retries = 2\n",
    )
    .expect("write");
    let hot = HotThreadConfig::load(directory.path())
        .expect("a valid file")
        .expect("a file");
    assert_eq!(hot.sealing.max_retries, Some(2));
    std::fs::write(directory.path().join("config.toml"), "location = \"/x\"\n").expect("write");
    match HotThreadConfig::load(directory.path()) {
        Err(ConfigError::Invalid {
            line: 1,
            column: 1,
            message,
            ..
        }) => {
            assert!(message.contains("unknown field `location`"), "{message}");
        }
        other => panic!("expected an invalid file, got {other:?}"),
    }
}

fn config_check(path: &Path, extra: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
        .args(["config", "check", "--config"])
        .arg(path)
        .args(extra)
        .output()
        .expect("run sealing-worker");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A real manager (on a devnet) serves its `[Common.WorkerSealing]`; `config check`
/// shows each thread's values with the layer they came from, the hot file of thread 1
/// on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_shows_every_layer_including_the_managers_defaults() {
    let started = support::manager_on_devnet(
        std::time::Duration::ZERO,
        r#"
[Common.WorkerSealing]
max_retries = 3
recover_interval = "2m"
rpc_polling_interval = "20s"
"#,
    )
    .await;
    let running = &started.manager;
    let token = running.issue_token(&[chain_client::auth::Permission::Read]);

    let directory = tempfile::tempdir().expect("a directory");
    for thread in ["t1", "t2"] {
        std::fs::create_dir_all(directory.path().join(thread)).expect("a store");
    }
    std::fs::write(
        directory.path().join("t1/config.toml"),
        "[sealing]\nseal_interval = \"1s\"\n",
    )
    .expect("a hot file");
    let text = OPERATOR_FILE.replace(
        "piece_token = \"piece\"",
        &format!("piece_token = \"piece\"\ntoken = \"{token}\""),
    );
    let path = write_file(
        directory.path(),
        &format!("/ip4/127.0.0.1/tcp/{}", running.address.port()),
        &text,
    );
    let (passed, report) = config_check(&path, &[]);
    assert!(passed, "{report}");
    assert!(report.contains("serves 3 sealing defaults"), "{report}");
    let thread = |number: usize| {
        let start = report
            .find(&format!("sealing thread {number}:"))
            .expect("the thread's block");
        let rest = &report[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    };
    let line = |block: &str, key: &str| {
        block
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{key} ")))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {key} in {block}"))
    };
    let one = thread(1);
    assert_eq!(line(&one, "max_retries"), "max_retries = 7 ([sealing])");
    assert_eq!(
        line(&one, "seal_interval"),
        "seal_interval = \"1s\" (hot config.toml)"
    );
    assert_eq!(
        line(&one, "recover_interval"),
        "recover_interval = \"2m\" (manager)"
    );
    assert_eq!(
        line(&one, "rpc_polling_interval"),
        "rpc_polling_interval = \"20s\" (manager)"
    );
    assert_eq!(
        line(&one, "verify_after_pc2"),
        "verify_after_pc2 = false (built-in)"
    );
    let two = thread(2);
    assert_eq!(line(&two, "max_retries"), "max_retries = 9 (thread)");
    assert_eq!(
        line(&two, "seal_interval"),
        "seal_interval = \"10s\" ([sealing])"
    );
    assert_eq!(
        line(&two, "rpc_polling_interval"),
        "rpc_polling_interval = \"5s\" (thread)"
    );
    assert!(report.contains("2 sealing stores of 2KiB"), "{report}");
    assert!(report.contains("compute plan"), "{report}");

    // Without a token the manager refuses; the check says so and goes on offline.
    let path = write_file(
        directory.path(),
        &format!("/ip4/127.0.0.1/tcp/{}", running.address.port()),
        OPERATOR_FILE,
    );
    let (passed, report) = config_check(&path, &[]);
    assert!(passed, "{report}");
    assert!(report.contains("could not be asked"), "{report}");
    assert!(!report.contains("(manager)"), "{report}");
    started.manager.stop().await;
}

#[test]
fn config_check_fails_when_the_storage_plan_does_not_fit() {
    let directory = tempfile::tempdir().expect("a directory");
    let path = write_file(directory.path(), "/ip4/127.0.0.1/tcp/1", OPERATOR_FILE);
    // 64GiB sectors need about 1 TiB of scratch space per sealing store.
    let (passed, report) = config_check(&path, &["--offline", "--sector-size", "64GiB"]);
    assert!(!passed, "{report}");
    assert!(report.contains("cannot run here"), "{report}");
    let (passed, report) = config_check(&path, &["--offline"]);
    assert!(passed, "{report}");
    assert!(report.contains("not asked (--offline)"), "{report}");
}
