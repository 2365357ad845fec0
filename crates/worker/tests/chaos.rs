//! Crash safety of the sealing threads: `sealing-worker daemon` (fake proofs, three
//! threads) is killed with SIGKILL at random moments and started again, over and over,
//! until the manager has finalized 30 sectors. Every sector must complete, and no step
//! whose result the worker recorded may run again: the fake processors log when each
//! run starts, the daemon logs each transition once it is saved, and a run of a stage
//! that starts after the worker recorded that stage's result for the sector fails the
//! test. (A run that ended but was not yet recorded when the worker died may run
//! again; those reruns are counted and printed. A kill between the save and its log
//! line loses the line, not the step: the sector's next step bounds when it was saved.)

#![allow(
    clippy::print_stdout,
    reason = "the test prints its kill schedule's seed and what it counted"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const SECTORS: usize = 30;

/// The sealing threads of the worker under test.
const THREADS: usize = 3;

/// Each stage, the event that records its result, and the state that event leads to
/// (the `from` of the sector's next recorded step).
const STAGE_EVENTS: [(&str, &str, &str); 6] = [
    ("add_pieces", "AddPiece", "PieceAdded"),
    ("tree_d", "BuildTreeD", "TreeDBuilt"),
    ("pc1", "PC1", "PC1Done"),
    ("pc2", "PC2", "PC2Done"),
    ("c1", "C1", "C1Done"),
    ("c2", "C2", "C2Done"),
];

/// A small deterministic generator, seeded from the clock and printed, so a failing
/// schedule of kills can be replayed by fixing the seed.
struct Lcg(u64);

impl Lcg {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// `key=value` from a log line's fields.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split_whitespace().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sectors_complete_and_no_recorded_step_runs_again_when_the_worker_is_killed() {
    let started =
        support::manager_on_devnet(Duration::from_millis(100), &support::quick_batches(3)).await;
    let support::WorkerFiles { directory, config } =
        started.worker_files(THREADS, support::free_port(), "");
    let run_log = directory.path().join("runs.jsonl");
    let fake = serde_json::json!({
        "delays_ms": {"add_pieces": 60, "tree_d": 60, "pc1": 300, "pc2": 200, "c1": 60, "c2": 250},
        "run_log": run_log,
    });
    let environment = [("SEALCLUSTER_FAKE_PROOFS", fake.to_string())];
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as u64;
    println!("kill schedule seed: {seed}");
    let mut random = Lcg(seed);

    let deadline = Instant::now() + Duration::from_secs(400);
    let mut kills = 0u32;
    let mut daemon = support::start_daemon(&config, &environment);
    let finalized = loop {
        let finalized = support::finalized_sectors(&started, 80).await;
        if finalized.len() >= SECTORS {
            break finalized;
        }
        assert!(
            Instant::now() < deadline,
            "only {} sectors finalized after {kills} kills; the worker's log:\n{}",
            finalized.len(),
            support::log_of(&config)
        );
        // Run for 0.2 to 2.5 s, then die without warning and start again.
        tokio::time::sleep(Duration::from_millis(200 + random.next_below(2300))).await;
        daemon.kill_hard();
        kills += 1;
        daemon = support::start_daemon(&config, &environment);
    };
    daemon.kill_hard();
    assert!(
        kills >= 10,
        "only {kills} kills happened; the test proves little"
    );

    // When the worker recorded each step, per sector: by the step's event and by the
    // state it left.
    let log = support::log_of(&config);
    let mut recorded_event: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut recorded_leaving: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in log.lines().filter(|line| line.contains(" recorded ")) {
        let (Some(sector), Some(event), Some(from), Some(unix_ms)) = (
            field(line, "sector"),
            field(line, "event"),
            field(line, "from"),
            field(line, "unix_ms").and_then(|text| text.parse::<u64>().ok()),
        ) else {
            continue;
        };
        recorded_event
            .entry((sector.to_owned(), event.to_owned()))
            .or_insert(unix_ms);
        recorded_leaving
            .entry((sector.to_owned(), from.to_owned()))
            .or_insert(unix_ms);
    }
    // The worker logs a step after saving it, so a kill between the two loses the line
    // while the step stays recorded. The sector's next step was then recorded after it:
    // its line is a later bound of when this stage's result was saved, which keeps the
    // check below sound (it can only miss a rerun inside that gap, never invent one).
    let mut lines_lost_to_kills = Vec::new();
    let mut recorded = recorded_event.clone();
    let sectors: BTreeSet<String> = recorded_leaving
        .keys()
        .map(|(sector, _)| sector.clone())
        .collect();
    for sector in &sectors {
        for (_, event, leads_to) in STAGE_EVENTS {
            let key = (sector.clone(), event.to_owned());
            if recorded.contains_key(&key) {
                continue;
            }
            if let Some(next) = recorded_leaving.get(&(sector.clone(), leads_to.to_owned())) {
                lines_lost_to_kills.push(format!("{event} of {sector}"));
                recorded.insert(key, *next);
            }
        }
    }
    // The check is only as good as this evidence: every finalized sector must have each
    // stage's result recorded in the log (its own line or the next step's), or a changed
    // log format would pass; and a kill can lose at most one line per thread.
    for number in &finalized {
        for (_, event, _) in STAGE_EVENTS {
            assert!(
                recorded.contains_key(&(format!("s-t01000-{number}"), event.to_owned())),
                "the worker's log has no recorded {event} for s-t01000-{number}, nor the step after it"
            );
        }
    }
    assert!(
        lines_lost_to_kills.len() <= kills as usize * THREADS,
        "{} recorded steps have no line of their own after {kills} kills of {THREADS} threads: {}",
        lines_lost_to_kills.len(),
        lines_lost_to_kills.join(", ")
    );
    let runs = std::fs::read_to_string(&run_log).expect("the processors' run log");
    let mut completed: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut violations = Vec::new();
    for line in runs.lines() {
        let run: Value = serde_json::from_str(line).expect("a run-log line");
        let (Some(stage), Some(sector), Some(unix_ms)) = (
            run["stage"].as_str(),
            run["sector"].as_str(),
            run["unix_ms"].as_u64(),
        ) else {
            continue;
        };
        let Some((_, event, _)) = STAGE_EVENTS.iter().find(|(name, _, _)| *name == stage) else {
            continue;
        };
        if run["phase"] == "start"
            && let Some(at) = recorded.get(&(sector.to_owned(), (*event).to_owned()))
            && unix_ms > *at
        {
            violations.push(format!(
                "{stage} of {sector} started at {unix_ms}, after its result was recorded at {at}"
            ));
        }
        if run["phase"] == "end" && run["ok"] == true {
            *completed
                .entry((sector.to_owned(), stage.to_owned()))
                .or_default() += 1;
        }
    }
    assert!(
        violations.is_empty(),
        "recorded steps ran again:\n{}",
        violations.join("\n")
    );

    let finalized_names: BTreeSet<String> = finalized
        .iter()
        .map(|number| format!("s-t01000-{number}"))
        .collect();
    for sector in &finalized_names {
        for (stage, _, _) in STAGE_EVENTS {
            assert!(
                completed.contains_key(&(sector.clone(), stage.to_owned())),
                "{sector} finalized without a completed {stage} run"
            );
        }
    }
    let reruns: u32 = completed.values().map(|count| count - 1).sum();
    println!(
        "{} sectors finalized across {kills} kills; {} completed runs, {reruns} of them \
         reruns of a result the worker died before recording; {} recorded steps whose log \
         line a kill took",
        finalized.len(),
        completed.values().sum::<u32>(),
        lines_lost_to_kills.len()
    );
    started.manager.stop().await;
}
