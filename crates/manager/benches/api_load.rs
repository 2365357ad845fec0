//! The API under load: simulated workers drive sectors (10,000 by default) through a
//! `sector-manager` process on SQLite with fake proofs, against a devnet making a block every 50 ms,
//! and the benchmark reports calls per second and latency percentiles.
//!
//! In a cluster the workers and the chain node run on machines of their own; here they
//! share two cores with the manager. So that the manager and the devnet (which stands for
//! a Lotus node) are not short of CPU time because of the load generator, every thread of
//! the generator's runtime runs at a lower scheduling priority (nice 10, and `SCHED_IDLE`
//! unless `GENERATOR_POLICY=nice`); the manager
//! process, the devnet and one probe worker run at the normal one. The probe seals
//! sectors one after another on a thread of its own, with the same calls as the simulated
//! workers: its latencies are what one worker sees of a manager under the load of all the
//! others. The simulated workers' latencies are printed too; they include the time each
//! answer waits for its low-priority task to run again.
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

/// The scheduling priority of the load generator's threads.
const GENERATOR_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority (on Linux a nice value and a
/// scheduling policy belong to a thread). A failure only makes the measurement less fair
/// to the manager, so it is reported and the run goes on.
///
/// Unless `GENERATOR_POLICY=nice`, the thread is also put under `SCHED_IDLE` (with
/// util-linux's `chrt`, as this workspace has no unsafe code to call
/// `sched_setscheduler`): it then runs only on a core that nothing else wants, and a
/// manager or devnet thread that wakes takes the core at once instead of waiting for the
/// generator's time slice to end. That is the nearest this machine comes to workers on
/// machines of their own; the nice value alone still lets a generator thread hold a core
/// for its slice.
fn lower_this_threads_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), GENERATOR_NICE) {
        println!("could not lower the priority of thread {thread:?}: {error}");
    }
    if std::env::var("GENERATOR_POLICY").as_deref() == Ok("nice") {
        return;
    }
    let idle = std::process::Command::new("chrt")
        .args(["--idle", "--pid", "0", &thread.as_raw_nonzero().to_string()])
        .status();
    match idle {
        Ok(status) if status.success() => {}
        Ok(status) => println!("chrt could not make thread {thread:?} idle: {status}"),
        Err(error) => println!("could not run chrt for thread {thread:?}: {error}"),
    }
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
    // The simulated workers' tasks run on this runtime's threads, the low-priority ones;
    // `run` itself is polled on the main thread, which keeps the normal priority and so
    // passes it on to the probe's thread.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(lower_this_threads_priority)
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
    let probe = Probe::start(address, client.token.clone(), persist.clone());
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
    let probed = probe.finish();
    let measured = latencies.lock().expect("latencies").clone();
    let answered = measured.len() + probed.latencies.len();
    println!(
        "{sectors} sectors by {workers} simulated workers and the probe on {} in {elapsed:.1?}: {answered} calls answered, {:.0} calls/s",
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        answered as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "  the probe worker (normal priority, a thread of its own) sealed {} sectors, {:.1?} each at the median:",
        probed.sealed.len(),
        median(&probed.sealed),
    );
    print_latencies(&probed.latencies);
    println!("  the simulated workers (low priority, sharing two threads):");
    print_latencies(&measured);
    drop(manager);
    if manager_log != "warn" {
        let kept = home.keep();
        println!("the manager's log: {}", kept.join("manager.log").display());
    }
}

fn median(list: &[Duration]) -> Duration {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Prints the percentiles of every call and then of each method.
fn print_latencies(measured: &[(&'static str, Duration)]) {
    let mut all: Vec<Duration> = measured.iter().map(|(_, latency)| *latency).collect();
    all.sort_unstable();
    let Some(slowest) = all.last().copied() else {
        return;
    };
    let at = |list: &[Duration], p: f64| list[((list.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "    {} calls, p50 {:?}, p90 {:?}, p99 {:?}, max {slowest:?}",
        all.len(),
        at(&all, 0.5),
        at(&all, 0.9),
        at(&all, 0.99),
    );
    let mut by_method = std::collections::BTreeMap::<&str, Vec<Duration>>::new();
    for (method, latency) in measured {
        by_method.entry(method).or_default().push(*latency);
    }
    for (method, mut list) in by_method {
        list.sort_unstable();
        println!(
            "    {method:<28} {:>7} calls, p50 {:?}, p99 {:?}",
            list.len(),
            at(&list, 0.5),
            at(&list, 0.99),
        );
    }
}

/// What the probe worker measured.
#[derive(Default)]
struct Probed {
    /// Each call's method and latency.
    latencies: Vec<(&'static str, Duration)>,
    /// How long each of its sectors took from allocation to its finalize report.
    sealed: Vec<Duration>,
}

/// One more worker, on a thread and runtime of its own at the normal priority, sealing
/// sectors one after another with the simulated workers' calls while they run: the
/// manager's latency as a worker that is not short of CPU time sees it.
struct Probe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Probed>,
}

impl Probe {
    fn start(address: std::net::SocketAddr, token: String, persist: std::path::PathBuf) -> Probe {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the probe's runtime");
            runtime.block_on(async move {
                let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
                let mut client = support::RetryingClient::new(address, token);
                client.latencies = Some(Arc::clone(&latencies));
                client.pause = Duration::from_millis(50);
                let mut sealed = Vec::new();
                while !stopped.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    support::seal_one_sector(&client, &persist, Duration::from_millis(100)).await;
                    sealed.push(began.elapsed());
                }
                let latencies = latencies.lock().expect("the probe's latencies").clone();
                Probed { latencies, sealed }
            })
        });
        Probe { stop, thread }
    }

    fn finish(self) -> Probed {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
