//! Property tests of the scheduler's accounting over random plans and random sequences of
//! submissions, endings, cancellations and the passing of time.
//!
//! After every step the test recounts everything from the list of running grants (never
//! from the scheduler's own counters) and checks: no stage runs more than its limit, no
//! processor more than its slots, no named lock is over-taken, tasks of a stage start in
//! arrival order, staggered starts keep their interval unless the previous task ended,
//! and no waiting task could have started (the scheduler never idles a free slot).

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::time::Duration;

use proc_sched::{Grant, ProcessorLimits, Scheduler, SchedulerLimits, TaskTicket};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use sector_fsm::{Stage, Timestamp};

const STAGES: [Stage; 3] = [Stage::Pc1, Stage::Pc2, Stage::C2];
const LOCKS: [&str; 2] = ["gpu", "nvme"];

#[derive(Clone, Debug)]
enum Step {
    Submit(Stage),
    FinishRunning(usize),
    CancelWaiting(usize),
    Advance(u64),
}

fn limits_strategy() -> impl Strategy<Value = SchedulerLimits> {
    let processor = (0usize..4, subsequence(vec!["gpu", "gpu", "nvme"], 0..=2)).prop_map(
        |(concurrent, locks)| ProcessorLimits {
            concurrent: NonZeroUsize::new(concurrent),
            locks: locks.into_iter().map(str::to_owned).collect(),
        },
    );
    let per_stage = (
        proptest::option::of(1usize..4),
        proptest::option::weighted(0.3, 1u64..5),
        proptest::collection::vec(processor, 0..3),
    );
    (
        proptest::collection::vec(per_stage, 3),
        0usize..3,
        1usize..3,
    )
        .prop_map(|(stages, gpu_units, nvme_units)| {
            let mut limits = SchedulerLimits::default();
            limits.named_locks.insert("gpu".to_owned(), gpu_units);
            limits.named_locks.insert("nvme".to_owned(), nvme_units);
            for (stage, (concurrency, staggered, processors)) in STAGES.into_iter().zip(stages) {
                if let Some(concurrency) = concurrency {
                    limits.stage_concurrency.insert(stage, concurrency);
                }
                if let Some(seconds) = staggered {
                    limits.staggered.insert(stage, Duration::from_secs(seconds));
                }
                if !processors.is_empty() {
                    limits.processors.insert(stage, processors);
                }
            }
            limits
        })
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => select(STAGES.to_vec()).prop_map(Step::Submit),
        3 => any::<usize>().prop_map(Step::FinishRunning),
        1 => any::<usize>().prop_map(Step::CancelWaiting),
        2 => (0u64..4).prop_map(Step::Advance),
    ]
}

/// What the test remembers on its own, to judge the scheduler by.
#[derive(Default)]
struct Observer {
    running: BTreeMap<TaskTicket, Grant>,
    last_granted_per_stage: BTreeMap<Stage, TaskTicket>,
    /// Per stage: the last start and whether its task has ended since.
    last_start: BTreeMap<Stage, (Grant, bool)>,
}

impl Observer {
    fn record(&mut self, limits: &SchedulerLimits, grant: &Grant) {
        if let Some(previous) = self.last_granted_per_stage.get(&grant.stage) {
            assert!(
                *previous < grant.ticket,
                "{} started {:?} after the younger {:?}",
                grant.stage,
                grant.ticket,
                previous
            );
        }
        self.last_granted_per_stage
            .insert(grant.stage, grant.ticket);
        if let (Some(interval), Some((previous, ended))) = (
            limits.staggered.get(&grant.stage),
            self.last_start.get(&grant.stage),
        ) {
            let spacing = grant
                .started_at
                .saturating_duration_since(previous.started_at);
            assert!(
                spacing >= *interval || *ended,
                "{} started twice within {spacing:?} (interval {interval:?}) while the first still ran",
                grant.stage
            );
        }
        self.last_start.insert(grant.stage, (grant.clone(), false));
        self.running.insert(grant.ticket, grant.clone());
    }

    fn ended(&mut self, ticket: TaskTicket) {
        if let Some(grant) = self.running.remove(&ticket)
            && let Some((last, ended)) = self.last_start.get_mut(&grant.stage)
            && last.ticket == ticket
        {
            *ended = true;
        }
    }

    fn stage_count(&self, stage: Stage) -> usize {
        self.running
            .values()
            .filter(|grant| grant.stage == stage)
            .count()
    }

    fn processor_count(&self, stage: Stage, index: usize) -> usize {
        self.running
            .values()
            .filter(|grant| grant.stage == stage && grant.processor == index)
            .count()
    }

    fn lock_count(&self, limits: &SchedulerLimits, lock: &str) -> usize {
        self.running
            .values()
            .map(|grant| {
                limits.processors_of(grant.stage)[grant.processor]
                    .locks
                    .iter()
                    .filter(|name| name.as_str() == lock)
                    .count()
            })
            .sum()
    }

    /// Whether a task of `stage` could start at `now`, judged from the observer's own
    /// records.
    fn could_start(&self, limits: &SchedulerLimits, stage: Stage, now: Timestamp) -> bool {
        if limits
            .stage_concurrency
            .get(&stage)
            .is_some_and(|limit| self.stage_count(stage) >= *limit)
        {
            return false;
        }
        if let (Some(interval), Some((last, ended))) =
            (limits.staggered.get(&stage), self.last_start.get(&stage))
            && !ended
            && now.saturating_duration_since(last.started_at) < *interval
        {
            return false;
        }
        limits
            .processors_of(stage)
            .iter()
            .enumerate()
            .any(|(index, processor)| {
                let slot_free = processor
                    .concurrent
                    .is_none_or(|limit| self.processor_count(stage, index) < limit.get());
                let locks_free = LOCKS.iter().all(|lock| {
                    let wanted = processor
                        .locks
                        .iter()
                        .filter(|name| name.as_str() == *lock)
                        .count();
                    wanted == 0
                        || self.lock_count(limits, lock) + wanted <= limits.named_locks[*lock]
                });
                slot_free && locks_free
            })
    }

    fn check(&self, limits: &SchedulerLimits, scheduler: &Scheduler, now: Timestamp) {
        let reported: BTreeSet<TaskTicket> =
            scheduler.running().map(|grant| grant.ticket).collect();
        let known: BTreeSet<TaskTicket> = self.running.keys().copied().collect();
        assert_eq!(reported, known, "running tasks");
        for stage in STAGES {
            if let Some(limit) = limits.stage_concurrency.get(&stage) {
                assert!(
                    self.stage_count(stage) <= *limit,
                    "{stage} runs over its limit"
                );
            }
            for (index, processor) in limits.processors_of(stage).iter().enumerate() {
                if let Some(slots) = processor.concurrent {
                    assert!(
                        self.processor_count(stage, index) <= slots.get(),
                        "{stage} processor {index} over its slots"
                    );
                }
            }
        }
        for lock in LOCKS {
            assert!(
                self.lock_count(limits, lock) <= limits.named_locks[lock],
                "lock {lock} is over-taken"
            );
            assert_eq!(
                self.lock_count(limits, lock),
                scheduler.held_units(lock),
                "lock {lock} accounting"
            );
        }
        for (stage, figures) in scheduler.figures() {
            assert_eq!(
                figures.running,
                self.stage_count(*stage) as u64,
                "{stage} busy slots"
            );
            let waiting = scheduler
                .waiting()
                .filter(|(_, waiting_stage, _)| waiting_stage == stage)
                .count();
            assert_eq!(figures.waiting, waiting as u64, "{stage} waiting");
            assert_eq!(
                figures.submitted,
                figures.waiting
                    + figures.running
                    + figures.succeeded
                    + figures.failed
                    + figures.cancelled,
                "{stage}: every submitted task is waiting, running or ended"
            );
        }
        let mut seen_stages = BTreeSet::new();
        for (_, stage, _) in scheduler.waiting() {
            if seen_stages.insert(stage) {
                assert!(
                    !self.could_start(limits, stage, now),
                    "the oldest waiting {stage} task could start at {now} but was left waiting"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/accounting.txt"),
        )),
        .. ProptestConfig::default()
    })]

    #[test]
    fn limits_order_and_staggering_hold_and_no_slot_idles(
        limits in limits_strategy(),
        steps in proptest::collection::vec(step_strategy(), 1..120),
    ) {
        let mut scheduler = Scheduler::new(limits.clone());
        let mut observer = Observer::default();
        let mut now = Timestamp::from_unix_millis(1_700_000_000_000);
        for step in steps {
            match step {
                Step::Submit(stage) => {
                    scheduler.submit(stage, now);
                }
                Step::FinishRunning(pick) => {
                    let running: Vec<TaskTicket> = observer.running.keys().copied().collect();
                    if !running.is_empty() {
                        let ticket = running[pick % running.len()];
                        scheduler.finish(ticket, now, proc_sched::accounting::TaskOutcome::Succeeded).expect("a running task can end");
                        observer.ended(ticket);
                    }
                }
                Step::CancelWaiting(pick) => {
                    let waiting: Vec<TaskTicket> = scheduler.waiting().map(|(ticket, _, _)| ticket).collect();
                    if !waiting.is_empty() {
                        scheduler.finish(waiting[pick % waiting.len()], now, proc_sched::accounting::TaskOutcome::Cancelled).expect("a waiting task can be cancelled");
                    }
                }
                Step::Advance(seconds) => now = now.saturating_add(Duration::from_secs(seconds)),
            }
            for grant in scheduler.schedule(now) {
                prop_assert_eq!(grant.started_at, now);
                observer.record(&limits, &grant);
            }
            observer.check(&limits, &scheduler, now);
        }
    }
}
