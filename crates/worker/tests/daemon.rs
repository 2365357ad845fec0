//! The worker daemon as an operator runs it: `sealing-worker daemon` as a real process
//! with its built-in processors (fake proof backend), sealing against a real manager on
//! a devnet making blocks. Two threads seal sectors until the manager has finalized at
//! least four (each proven on chain) and it has pinged the manager; the admin CLI lists
//! the threads, pauses one, refuses a wrong token, and resumes it. Both daemons answer
//! `/metrics`; the worker's `[metrics]` port serves nothing else.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_seals_sectors_and_obeys_its_admin_commands() {
    let started =
        support::manager_on_devnet(Duration::from_millis(150), &support::quick_batches(2)).await;
    let port = support::free_port();
    // Damocles' `[metrics]`: a port that serves only `/metrics`.
    let metrics_port = support::free_port();
    let support::WorkerFiles {
        directory: _directory,
        config,
    } = started.worker_files(
        2,
        port,
        &format!("\n[metrics]\nenable = true\nhttp_listen = \"127.0.0.1:{metrics_port}\"\n"),
    );
    let _daemon = support::start_daemon(&config, &[]);

    let deadline = Instant::now() + Duration::from_secs(120);
    let finalized = loop {
        let finalized = support::finalized_sectors(&started, 12).await;
        if finalized.len() >= 4 {
            break finalized;
        }
        assert!(
            Instant::now() < deadline,
            "only {finalized:?} finalized in time; the worker's log:\n{}",
            support::log_of(&config)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Every finalized sector's files are in the persistent store.
    for number in &finalized {
        let sealed =
            support::persist_store(&started.home).join(format!("sealed/s-t01000-{number}"));
        assert!(sealed.exists(), "{} is missing", sealed.display());
    }

    // The worker pings the manager with where to reach it and its threads' summary.
    let workers = started
        .manager
        .manager
        .db
        .workers()
        .await
        .expect("the pings");
    let pinged = workers
        .iter()
        .find(|worker| worker.name == "test-worker")
        .expect("a ping from the worker");
    assert_eq!(pinged.dest, format!("127.0.0.1:{port}"));
    let summary: serde_json::Value = serde_json::from_str(&pinged.summary).expect("a summary");
    assert_eq!(summary["Threads"], 2, "{summary}");

    let listed = support::worker_cli(&config, &["list"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        table.contains("store-0") && table.contains("store-1"),
        "{table}"
    );

    let paused = support::worker_cli(&config, &["pause", "-i", "0"]);
    assert!(paused.status.success(), "{paused:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = support::worker_cli(&config, &["list", "--json"]);
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

    // Prometheus figures from both daemons, without a token.
    let worker_metrics = support::http_get(&format!("127.0.0.1:{port}"), "/metrics");
    for expected in [
        "sealcluster_stage_duration_seconds_bucket{stage=\"pc1\",outcome=\"ok\",le=\"+Inf\"}",
        "sealcluster_stage_queue_wait_seconds_count{stage=\"c2\"}",
        "sealcluster_stage_tasks_total{stage=\"pc2\",result=\"succeeded\"}",
        "sealcluster_stage_running{stage=\"pc1\"}",
        "sealcluster_threads{state=\"Paused\"} 1",
    ] {
        assert!(
            worker_metrics.contains(expected),
            "no {expected} in:\n{worker_metrics}"
        );
    }
    let scraped = support::http_get(&format!("127.0.0.1:{metrics_port}"), "/metrics");
    assert!(
        scraped.contains("sealcluster_stage_duration_seconds_bucket"),
        "{scraped}"
    );
    let (status, _) = support::http_request(&format!("127.0.0.1:{metrics_port}"), "/");
    assert!(
        status.starts_with("HTTP/1.1 404"),
        "the metrics port serves only /metrics: {status}"
    );
    let manager_metrics = support::http_get(&started.manager.address.to_string(), "/metrics");
    let finalized_count = manager_metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("sealcluster_sectors{miner=\"1000\",phase=\"finalized\"} ")
        })
        .and_then(|count| count.trim().parse::<f64>().ok())
        .unwrap_or_default();
    assert!(finalized_count >= 4.0, "{manager_metrics}");
    for expected in [
        "sealcluster_rpc_requests_total{method=\"Venus.SubmitProof\",outcome=\"ok\"}",
        "sealcluster_rpc_duration_seconds_bucket{method=\"Venus.AllocateSector\"",
        "sealcluster_store_free_bytes{store=\"persist-1\"}",
        "sealcluster_store_reserved_bytes{store=\"persist-1\"}",
        "sealcluster_messages{state=",
    ] {
        assert!(
            manager_metrics.contains(expected),
            "no {expected} in:\n{manager_metrics}"
        );
    }

    let resumed = support::worker_cli(&config, &["resume", "-i", "0"]);
    assert!(resumed.status.success(), "{resumed:?}");
    let listed = support::worker_cli(&config, &["list", "--json"]);
    let threads: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("the list as JSON");
    assert_ne!(threads[0]["thread_state"]["state"], "Paused", "{threads}");
    started.manager.stop().await;
}
