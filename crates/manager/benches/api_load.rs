//! The API under load: simulated workers drive sectors (10,000 by default) through a
//! `sector-manager` process on SQLite with fake proofs, against a devnet making a block every 50 ms,
//! and the benchmark reports calls per second and latency percentiles.
//!
//! `cargo bench -p manager --bench api_load` (`SECTORS=…`, `WORKERS=…` to change the
//! load, `DATABASE_URL=postgres://…` for PostgreSQL, `MANAGER_LOG=…` for the manager's
//! log filter). It is a measurement, not a test:
//! it asserts nothing about time.

#![allow(clippy::print_stdout, reason = "a benchmark prints what it measured")]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // The devnet stands in for a Lotus node, which is not on the generator's threads:
    // it runs on a runtime of its own, so the simulated workers never wait for a block
    // being made before they can read their answers.
    let devnet_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the devnet's runtime");
    let devnet = devnet_runtime.block_on(support::fake_devnet(Duration::from_millis(50)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(&devnet));
    drop(devnet);
}

async fn run(devnet: &devnet::RunningDevnet) {
    let sectors = setting("SECTORS", 10_000);
    let workers = setting("WORKERS", 400);
    let (home, persist) = support::home_with_store();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://manager.db".to_owned());
    // The manager runs as its own process, as in production, so its tasks do not share
    // a runtime with the simulated workers.
    let address = support::write_process_config(home.path(), devnet, &url, &persist, 128);
    // `MANAGER_LOG=manager::server=debug` logs every call's time inside the manager
    // (to `manager.log` in the home, which is kept when that is set).
    let manager_log = std::env::var("MANAGER_LOG").unwrap_or_else(|_| "warn".to_owned());
    let manager = support::spawn_manager_process(home.path(), &manager_log, &[]);
    let token = support::admin_token_of(home.path()).await;
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut client = support::RetryingClient::new(address, token);
    client.latencies = Some(Arc::clone(&latencies));
    client.pause = Duration::from_millis(50);
    let probe = Probe::start(address, client.token.clone());
    let started = Instant::now();
    let claimed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let client = client.clone();
            let persist = persist.clone();
            let claimed = Arc::clone(&claimed);
            tokio::spawn(async move {
                while claimed.fetch_add(1, Ordering::Relaxed) < sectors {
                    support::seal_one_sector(&client, &persist, Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    let mut last_report = Instant::now();
    for task in tasks {
        while !task.is_finished() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last_report.elapsed() > Duration::from_secs(10) {
                let done = latencies.lock().expect("latencies").len();
                println!("… {:?}: {done} calls answered", started.elapsed());
                last_report = Instant::now();
            }
        }
        task.await.expect("a simulated worker");
    }
    let elapsed = started.elapsed();
    let measured = latencies.lock().expect("latencies").clone();
    let mut by_method = std::collections::BTreeMap::<&str, Vec<Duration>>::new();
    for (method, latency) in &measured {
        by_method.entry(method).or_default().push(*latency);
    }
    let mut latencies: Vec<Duration> = measured.iter().map(|(_, latency)| *latency).collect();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    println!(
        "{sectors} sectors by {workers} simulated workers on {} in {elapsed:.1?}: {} calls, {:.0} calls/s; \
         latency p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    for (method, mut list) in by_method {
        list.sort_unstable();
        let p99 = list[((list.len() as f64 - 1.0) * 0.99).round() as usize];
        println!(
            "  {method:<28} {:>7} calls, p50 {:?}, p99 {p99:?}",
            list.len(),
            list[list.len() / 2]
        );
    }
    let mut probed = probe.finish();
    probed.sort_unstable();
    if !probed.is_empty() {
        let at = |p: f64| probed[((probed.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "  probe (one caller on its own thread, a ReportState every 10 ms): {} calls, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            probed.len(),
            at(0.5),
            at(0.9),
            at(0.99),
            probed[probed.len() - 1]
        );
    }
    drop(manager);
    if manager_log != "warn" {
        let kept = home.keep();
        println!("the manager's log: {}", kept.join("manager.log").display());
    }
}

/// One more caller on a thread and runtime of its own, calling at a steady pace while the
/// simulated workers run: the manager's latency as a caller that is never short of CPU
/// time in its own process sees it.
struct Probe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Duration>>,
}

impl Probe {
    fn start(address: std::net::SocketAddr, token: String) -> Probe {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the probe's runtime");
            runtime.block_on(async move {
                let client = support::RetryingClient::new(address, token);
                let allocated = client
                    .call(
                        "Venus.AllocateSector",
                        serde_json::json!([{"AllowedMiners": [1000], "AllowedProofTypes": [5]}]),
                    )
                    .await;
                let report = serde_json::json!([allocated["ID"], {"Worker": {"Instance": "probe", "Location": "/probe"},
                    "StateChange": {"Prev": "Empty", "Next": "Allocated", "Event": "Event::Probe"}, "Failure": null}]);
                let mut latencies = Vec::new();
                while !stopped.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    if client.call_once("Venus.ReportState", report.clone()).await.is_ok() {
                        latencies.push(began.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                latencies
            })
        });
        Probe { stop, thread }
    }

    fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
