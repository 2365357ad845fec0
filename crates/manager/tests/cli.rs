//! The `sector-manager` command line against a running manager: configuration files
//! and their errors, tokens, and the `util` commands as tables and as JSON.

mod support;

use std::process::{Command, Output};

use serde_json::{Value, json};
use support::Harness;

fn sector_manager(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sector-manager"))
        .args(arguments)
        .env_remove("SECTOR_MANAGER_TOKEN")
        .env_remove("SECTOR_MANAGER_HOME")
        .output()
        .expect("run sector-manager")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "sector-manager failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn config_init_writes_a_valid_file_and_check_names_the_line_of_a_mistake() {
    let home = tempfile::tempdir().expect("a home");
    let home_text = home.path().to_str().expect("a UTF-8 path");
    let written = stdout(&sector_manager(&["--home", home_text, "config", "init"]));
    assert!(written.contains("sector-manager.toml"), "{written}");
    let again = sector_manager(&["--home", home_text, "config", "init"]);
    assert!(
        !again.status.success(),
        "init does not overwrite without --force"
    );
    stdout(&sector_manager(&["--home", home_text, "config", "check"]));

    let path = home.path().join("sector-manager.toml");
    let mut text = std::fs::read_to_string(&path).expect("the file");
    text.push_str("\n[[Miners]]\nActor = 1000\n[Miners.Sector]\nMaxNumbr = 10\n");
    std::fs::write(&path, text.as_bytes()).expect("write the mistake");
    let line = text
        .lines()
        .position(|line| line.starts_with("MaxNumbr"))
        .expect("the line")
        + 1;
    let checked = sector_manager(&["--home", home_text, "config", "check"]);
    assert!(!checked.status.success());
    let error = String::from_utf8_lossy(&checked.stderr);
    assert!(
        error.contains(&format!("sector-manager.toml:{line}:1:")) && error.contains("MaxNumber"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn util_commands_show_and_change_sectors_stores_and_the_chain() {
    let harness = Harness::start(support::Database::Sqlite).await;
    let api = &harness.api;
    for _ in 0..2 {
        api.call("Venus.AllocateSector", json!([{"AllowedMiners": [1000]}]))
            .await;
    }
    let admin = harness.token(&["admin"]);
    let read = harness.token(&["read"]);
    let url = harness.manager.as_ref().expect("a manager").url();
    let home = harness
        .home
        .path()
        .to_str()
        .expect("a UTF-8 path")
        .to_owned();
    let run = |token: &str, arguments: &[&str]| {
        let mut all = vec!["--home", home.as_str(), "util"];
        all.extend_from_slice(arguments);
        all.extend_from_slice(&["--api", url.as_str(), "--token", token]);
        sector_manager(&all)
    };
    let json_of =
        |output: Output| -> Value { serde_json::from_str(&stdout(&output)).expect("JSON") };

    let listed = json_of(run(&read, &["sectors", "list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["Progress"], json!("allocated"));
    let table = stdout(&run(&read, &["sectors", "list"]));
    assert!(
        table.starts_with("SECTOR") && table.contains("s-t01000-2"),
        "{table}"
    );

    // A worker's reports leave the sector's history: each state change and each failure,
    // once however often a worker repeats itself.
    let report = |prev: &str, next: &str, failure: Value| {
        json!([{"Miner": 1000, "Number": 2}, {
            "Worker": {"Instance": "worker-7", "Location": "/nvme/store-3"},
            "StateChange": {"Prev": prev, "Next": next, "Event": "Event::Step"},
            "Failure": failure}])
    };
    let temporary = json!({"Level": "Temporary", "Desc": "the PC1 processor exited"});
    for params in [
        report("Allocated", "PC1Done", Value::Null),
        report("Allocated", "PC1Done", Value::Null),
        report("PC1Done", "PC1Done", temporary.clone()),
        report("PC1Done", "PC1Done", temporary.clone()),
        report("PC1Done", "PC2Done", Value::Null),
    ] {
        api.call("Venus.ReportState", params).await;
    }
    let history = |state: &Value| -> Vec<(String, String)> {
        state["Events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|event| {
                (
                    event["Kind"].as_str().expect("a kind").to_owned(),
                    event["Detail"].as_str().expect("a detail").to_owned(),
                )
            })
            .collect()
    };
    // Reports are written together every half second.
    let mut events = Vec::new();
    for _ in 0..50 {
        events = history(&json_of(run(&read, &["sectors", "state", "1000", "2"])));
        if events.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let expected = [
        ("allocated", ""),
        (
            "worker state",
            "Allocated -> PC1Done on Event::Step (worker worker-7)",
        ),
        (
            "worker failure",
            "Temporary: the PC1 processor exited (PC1Done -> PC1Done on Event::Step, worker worker-7)",
        ),
        (
            "worker state",
            "PC1Done -> PC2Done on Event::Step (worker worker-7)",
        ),
    ]
    .map(|(kind, detail)| (kind.to_owned(), detail.to_owned()));
    assert_eq!(events, expected, "the sector's history");

    // Abort needs admin; with it the sector is aborted and listed so; restore undoes it.
    let refused = run(
        &read,
        &["sectors", "abort", "1000", "1", "--reason", "bad disk"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("missing permission"));
    assert_eq!(
        json_of(run(
            &admin,
            &["sectors", "abort", "1000", "1", "--reason", "bad disk"]
        )),
        json!(true)
    );
    let aborted = json_of(run(
        &read,
        &["sectors", "list", "--phase", "aborted", "--json"],
    ));
    assert_eq!(
        aborted[0]["AbortReason"],
        json!("aborted by an operator: bad disk"),
        "{aborted}"
    );
    assert_eq!(
        json_of(run(&admin, &["sectors", "restore", "1000", "1"])),
        json!(true)
    );
    let state = json_of(run(&read, &["sectors", "state", "1000", "1"]));
    let kinds: Vec<&str> = state["Events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["Kind"].as_str().expect("a kind"))
        .collect();
    assert_eq!(kinds, ["allocated", "aborted", "restored"], "{state}");
    let resend = run(&admin, &["sectors", "resend-pre", "1000", "1"]);
    assert!(String::from_utf8_lossy(&resend.stderr).contains("no precommit to send again"));

    let stores = stdout(&run(&read, &["storage", "list"]));
    assert!(stores.contains("persist-1"), "{stores}");
    assert_eq!(
        json_of(run(&admin, &["storage", "release-reserved", "1000", "1"])),
        json!(false)
    );
    let head = json_of(run(&read, &["chain", "head"]));
    assert!(
        head["Height"].as_i64().is_some_and(|height| height >= 3),
        "{head}"
    );
    // A token made from the database's secret by the command works against the daemon;
    // a read token made so cannot abort.
    std::fs::write(
        harness.home.path().join("sector-manager.toml"),
        "[Common.DB]\nURL = \"sqlite://manager.db\"\n",
    )
    .expect("a configuration naming the manager's database");
    let made = stdout(&sector_manager(&[
        "--home",
        &home,
        "auth",
        "create-token",
        "--perm",
        "read",
    ]));
    let made = made.trim();
    assert_eq!(
        json_of(run(made, &["sectors", "list", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(
        !run(made, &["sectors", "abort", "1000", "2"])
            .status
            .success()
    );
    let miner = json_of(run(&read, &["miner", "info", "1000"]));
    assert_eq!(miner["SectorSize"], json!(2048));
    assert_eq!(miner["LastAllocated"], json!(2));
    harness.stop().await;
}
