//! The compute pool with real processor processes (a small Python processor that
//! sleeps and logs when each task starts and ends): a stage's slots are shared by every
//! caller and never exceeded, a caller that stops waiting gives its place up, and
//! staggered starts are kept apart by the pool's own timer.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proc_sched::{ExternalProcessor, ProcessorCommand, ProcessorLimits, SchedulerLimits};
use sector_fsm::Stage;
use serde_json::json;
use worker::compute::{ComputePool, StageProcessors};

const SLEEPER: &str = r#"
import json, sys, threading, time

lock = threading.Lock()

def handle(request):
    task = request["task"]
    with open(task["log"], "a") as log:
        log.write(f"start {task['name']} {time.monotonic()}\n")
    time.sleep(task["sleep_ms"] / 1000)
    with open(task["log"], "a") as log:
        log.write(f"end {task['name']} {time.monotonic()}\n")
    with lock:
        sys.stdout.write(json.dumps({"id": request["id"], "err_msg": None, "output": task["name"]}) + "\n")
        sys.stdout.flush()

print("pc1 processor ready", flush=True)
for line in sys.stdin:
    if line.strip():
        threading.Thread(target=handle, args=(json.loads(line),), daemon=True).start()
"#;

async fn pool(
    directory: &Path,
    processors: usize,
    concurrent: usize,
    staggered: Option<Duration>,
) -> ComputePool {
    let script = directory.join("sleeper.py");
    std::fs::write(&script, SLEEPER).expect("write the processor");
    let mut started = Vec::new();
    for _ in 0..processors {
        started.push(
            ExternalProcessor::start(ProcessorCommand {
                args: vec![script.clone().into()],
                ..ProcessorCommand::new("pc1", "python3")
            })
            .await
            .expect("start the processor"),
        );
    }
    let limits = SchedulerLimits {
        processors: BTreeMap::from([(
            Stage::Pc1,
            vec![
                ProcessorLimits {
                    concurrent: NonZeroUsize::new(concurrent),
                    locks: Vec::new(),
                };
                processors
            ],
        )]),
        staggered: staggered
            .map(|interval| BTreeMap::from([(Stage::Pc1, interval)]))
            .unwrap_or_default(),
        ..SchedulerLimits::default()
    };
    ComputePool::new(
        limits,
        BTreeMap::from([(
            Stage::Pc1,
            StageProcessors {
                timeouts: vec![None; processors],
                processors: started,
            },
        )]),
    )
}

/// (name, start, end) of every task the processors ran, in start order.
fn runs(log: &Path) -> Vec<(String, f64, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut starts = BTreeMap::new();
    let mut runs = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let time: f64 = parts[2].parse().expect("a time");
        match parts[0] {
            "start" => {
                starts.insert(parts[1].to_owned(), time);
            }
            _ => runs.push((parts[1].to_owned(), starts[parts[1]], time)),
        }
    }
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    runs
}

fn task(log: &PathBuf, name: &str, sleep_ms: u64) -> serde_json::Value {
    json!({"log": log, "name": name, "sleep_ms": sleep_ms})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_callers_share_one_slot_one_at_a_time_and_all_finish() {
    let directory = tempfile::tempdir().expect("a directory");
    let log = directory.path().join("runs.log");
    let pool = pool(directory.path(), 1, 1, None).await;
    let started = Instant::now();
    let callers: Vec<_> = (0..4)
        .map(|index| {
            let pool = pool.clone();
            let task = task(&log, &format!("sector-{index}"), 150);
            tokio::spawn(async move { pool.run(Stage::Pc1, &task).await })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller").expect("a result");
    }
    assert!(started.elapsed() >= Duration::from_millis(600));
    let runs = runs(&log);
    assert_eq!(runs.len(), 4);
    for pair in runs.windows(2) {
        assert!(
            pair[1].1 >= pair[0].2,
            "two tasks overlapped on one slot: {runs:?}"
        );
    }
    let figures = &pool.figures()[&Stage::Pc1];
    assert_eq!(
        (figures.succeeded, figures.running, figures.waiting),
        (4, 0, 0)
    );
    assert!(
        figures.total_run >= Duration::from_millis(600),
        "{figures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_gives_its_place_up() {
    let directory = tempfile::tempdir().expect("a directory");
    let log = directory.path().join("runs.log");
    let pool = pool(directory.path(), 1, 1, None).await;
    let first = {
        let pool = pool.clone();
        let task = task(&log, "first", 300);
        tokio::spawn(async move { pool.run(Stage::Pc1, &task).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The second gives up while the first holds the slot.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        pool.run(Stage::Pc1, &task(&log, "second", 10)),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the second task could not have started yet"
    );
    let third = pool
        .run(Stage::Pc1, &task(&log, "third", 10))
        .await
        .expect("the third runs");
    assert_eq!(third, json!("third"));
    first.await.expect("a caller").expect("the first runs");
    let names: Vec<String> = runs(&log).into_iter().map(|run| run.0).collect();
    assert_eq!(names, ["first", "third"]);
    let figures = &pool.figures()[&Stage::Pc1];
    assert_eq!((figures.succeeded, figures.cancelled), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staggered_starts_are_kept_apart_and_the_pools_timer_starts_the_next() {
    let directory = tempfile::tempdir().expect("a directory");
    let log = directory.path().join("runs.log");
    let pool = pool(directory.path(), 2, 1, Some(Duration::from_millis(400))).await;
    let callers: Vec<_> = (0..2)
        .map(|index| {
            let pool = pool.clone();
            let task = task(&log, &format!("sector-{index}"), 1000);
            tokio::spawn(async move { pool.run(Stage::Pc1, &task).await })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller").expect("a result");
    }
    let runs = runs(&log);
    assert_eq!(runs.len(), 2);
    // The interval's end started the second, not the first one's release (which would
    // also let it start, as damocles does).
    assert!(
        runs[1].1 < runs[0].2,
        "the second waited for the first to end: {runs:?}"
    );
    assert!(
        runs[1].1 - runs[0].1 >= 0.39,
        "the second start came {:.3} s after the first",
        runs[1].1 - runs[0].1
    );
}
