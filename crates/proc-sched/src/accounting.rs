//! Who may run which stage on which processor, decided from counters alone.
//!
//! This is the pure core of the scheduler: it holds the limits of a worker's plan (stage
//! concurrency, staggered starts, named locks, each processor's own concurrency) and the
//! tasks that wait or run, and answers which waiting tasks may start now. It reads no
//! clock (time is an argument), spawns nothing and waits for nothing; the driver turns
//! its grants into requests to processors and reports back when each task ends.
//!
//! The rules, in the order a waiting task meets them:
//!
//! 1. Tasks of one stage start in arrival order: while the oldest waiting task of a
//!    stage cannot start, no younger one of that stage does.
//! 2. A stage runs at most `limitation.concurrent` tasks at once.
//! 3. A staggered stage starts a task only `interval` after its previous start, or as soon
//!    as that previous task has ended.
//! 4. A task runs on one of its stage's processors that has a free slot (fewer tasks than
//!    its `concurrent`) and whose named locks all have a free unit; among those, the one
//!    with the most free slots (an unbounded processor counts 64, as the reference does),
//!    then the lowest index. Its locks are taken together with the slot and released
//!    together with it.
//!
//! Tasks are considered in arrival order across all stages, so when a named lock frees
//! up, the oldest task that can use it gets it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::NonZeroUsize;
use std::time::Duration;

use sector_fsm::{Stage, Timestamp};

/// The free-slot count the reference assumes for a processor without `concurrent`.
pub const UNBOUNDED_PROCESSOR_SLOTS: usize = 64;

/// One processor of a stage as the accounting sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorLimits {
    /// How many tasks it runs at once; `None` is unbounded.
    pub concurrent: Option<NonZeroUsize>,
    /// The named locks (from `ext_locks`) it takes one unit of while it runs a task.
    pub locks: Vec<String>,
}

/// The limits of a worker's plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerLimits {
    /// `limitation.concurrent`: the most tasks of a stage running at once.
    pub stage_concurrency: BTreeMap<Stage, usize>,
    /// `limitation.staggered`: the least time between two starts of a stage.
    pub staggered: BTreeMap<Stage, Duration>,
    /// `ext_locks`: each named lock's number of units.
    pub named_locks: BTreeMap<String, usize>,
    /// `[[processors.<stage>]]`: a stage without an entry has one built-in processor
    /// without limits of its own.
    pub processors: BTreeMap<Stage, Vec<ProcessorLimits>>,
}

impl SchedulerLimits {
    /// The processors of `stage`, with the implicit built-in one when none is configured.
    pub fn processors_of(&self, stage: Stage) -> &[ProcessorLimits] {
        const BUILT_IN: &[ProcessorLimits] = &[ProcessorLimits {
            concurrent: None,
            locks: Vec::new(),
        }];
        match self.processors.get(&stage) {
            Some(processors) if !processors.is_empty() => processors,
            _ => BUILT_IN,
        }
    }
}

/// A task known to the scheduler, numbered in arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskTicket(pub u64);

/// Permission for a task to run now on one processor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The task.
    pub ticket: TaskTicket,
    /// Its stage.
    pub stage: Stage,
    /// The index of the processor among its stage's processors.
    pub processor: usize,
    /// When it was granted.
    pub started_at: Timestamp,
    /// How long it waited.
    pub waited: Duration,
}

/// A ticket the scheduler does not know (already ended, or never issued).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("task {0:?} is neither waiting nor running")]
pub struct UnknownTicket(pub TaskTicket);

/// How a running task ended, for the per-stage figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// It produced its output.
    Succeeded,
    /// It failed (an error, a crash, a timeout).
    Failed,
    /// Its caller gave it up.
    Cancelled,
}

/// A stage's running totals and current load, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageFigures {
    /// Tasks submitted so far.
    pub submitted: u64,
    /// Tasks started so far.
    pub started: u64,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed.
    pub failed: u64,
    /// Tasks cancelled while waiting or running.
    pub cancelled: u64,
    /// Tasks waiting now.
    pub waiting: u64,
    /// Tasks running now (busy slots).
    pub running: u64,
    /// The total time started tasks spent waiting.
    pub total_wait: Duration,
    /// The total time ended tasks spent running.
    pub total_run: Duration,
}

/// Why the oldest waiting task of a stage cannot start, for operators and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The stage runs `limitation.concurrent` tasks already.
    StageLimit,
    /// The stage's previous start is more recent than its staggered interval.
    Staggered {
        /// When the interval ends.
        until: Timestamp,
    },
    /// Every processor of the stage is full or waits for a named lock.
    NoFreeProcessor,
}

#[derive(Clone, Debug)]
struct WaitingTask {
    ticket: TaskTicket,
    stage: Stage,
    arrived: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct LastStart {
    at: Timestamp,
    ticket: TaskTicket,
}

/// The scheduler's state: the limits, the waiting queue and the running tasks.
#[derive(Clone, Debug)]
pub struct Scheduler {
    limits: SchedulerLimits,
    next_ticket: u64,
    waiting: VecDeque<WaitingTask>,
    running: BTreeMap<TaskTicket, Grant>,
    running_per_stage: BTreeMap<Stage, usize>,
    load_per_processor: BTreeMap<(Stage, usize), usize>,
    held_locks: BTreeMap<String, usize>,
    last_start: BTreeMap<Stage, LastStart>,
    figures: BTreeMap<Stage, StageFigures>,
}

impl Scheduler {
    /// A scheduler with nothing waiting or running.
    pub fn new(limits: SchedulerLimits) -> Scheduler {
        Scheduler {
            limits,
            next_ticket: 1,
            waiting: VecDeque::new(),
            running: BTreeMap::new(),
            running_per_stage: BTreeMap::new(),
            load_per_processor: BTreeMap::new(),
            held_locks: BTreeMap::new(),
            last_start: BTreeMap::new(),
            figures: BTreeMap::new(),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &SchedulerLimits {
        &self.limits
    }

    /// Queues a task of `stage` that arrived at `now` and returns its ticket. Nothing
    /// starts until [`Scheduler::schedule`] is called.
    pub fn submit(&mut self, stage: Stage, now: Timestamp) -> TaskTicket {
        let ticket = TaskTicket(self.next_ticket);
        self.next_ticket += 1;
        self.waiting.push_back(WaitingTask {
            ticket,
            stage,
            arrived: now,
        });
        let figures = self.figures.entry(stage).or_default();
        figures.submitted += 1;
        figures.waiting += 1;
        ticket
    }

    /// Starts every waiting task the rules allow at `now`, in arrival order, and returns
    /// their grants.
    pub fn schedule(&mut self, now: Timestamp) -> Vec<Grant> {
        let mut grants = Vec::new();
        let mut blocked_stages = BTreeSet::new();
        let mut index = 0;
        while index < self.waiting.len() {
            let task = self.waiting[index].clone();
            if blocked_stages.contains(&task.stage) {
                index += 1;
                continue;
            }
            match self.placement(task.stage, now) {
                Ok(processor) => {
                    self.waiting.remove(index);
                    let grant = Grant {
                        ticket: task.ticket,
                        stage: task.stage,
                        processor,
                        started_at: now,
                        waited: now.saturating_duration_since(task.arrived),
                    };
                    self.take(&grant);
                    grants.push(grant);
                }
                Err(_) => {
                    blocked_stages.insert(task.stage);
                    index += 1;
                }
            }
        }
        grants
    }

    /// Where a task of `stage` would run if it started at `now`, or why it cannot.
    fn placement(&self, stage: Stage, now: Timestamp) -> Result<usize, WaitReason> {
        if let Some(&limit) = self.limits.stage_concurrency.get(&stage)
            && self.running_per_stage.get(&stage).copied().unwrap_or(0) >= limit
        {
            return Err(WaitReason::StageLimit);
        }
        if let (Some(interval), Some(last)) = (
            self.limits.staggered.get(&stage),
            self.last_start.get(&stage),
        ) {
            let until = last.at.saturating_add(*interval);
            if now < until && self.running.contains_key(&last.ticket) {
                return Err(WaitReason::Staggered { until });
            }
        }
        let mut best: Option<(usize, usize)> = None;
        for (index, processor) in self.limits.processors_of(stage).iter().enumerate() {
            let load = self
                .load_per_processor
                .get(&(stage, index))
                .copied()
                .unwrap_or(0);
            let capacity = processor
                .concurrent
                .map_or(UNBOUNDED_PROCESSOR_SLOTS, NonZeroUsize::get);
            let free = capacity.saturating_sub(load);
            let slot_free = processor.concurrent.is_none_or(|limit| load < limit.get());
            if !slot_free || !self.locks_available(&processor.locks) {
                continue;
            }
            if best.is_none_or(|(_, best_free)| free > best_free) {
                best = Some((index, free));
            }
        }
        best.map(|(index, _)| index)
            .ok_or(WaitReason::NoFreeProcessor)
    }

    fn locks_available(&self, locks: &[String]) -> bool {
        // A processor that names one lock twice takes two units of it.
        let mut wanted: BTreeMap<&str, usize> = BTreeMap::new();
        for name in locks {
            *wanted.entry(name.as_str()).or_default() += 1;
        }
        wanted.into_iter().all(|(name, count)| {
            let capacity = self.limits.named_locks.get(name).copied().unwrap_or(0);
            let held = self.held_locks.get(name).copied().unwrap_or(0);
            held + count <= capacity
        })
    }

    fn take(&mut self, grant: &Grant) {
        *self.running_per_stage.entry(grant.stage).or_default() += 1;
        *self
            .load_per_processor
            .entry((grant.stage, grant.processor))
            .or_default() += 1;
        for name in &self.limits.processors_of(grant.stage)[grant.processor].locks {
            *self.held_locks.entry(name.clone()).or_default() += 1;
        }
        self.last_start.insert(
            grant.stage,
            LastStart {
                at: grant.started_at,
                ticket: grant.ticket,
            },
        );
        self.running.insert(grant.ticket, grant.clone());
        let figures = self.figures.entry(grant.stage).or_default();
        figures.started += 1;
        figures.waiting = figures.waiting.saturating_sub(1);
        figures.running += 1;
        figures.total_wait += grant.waited;
    }

    /// Records that a running task ended at `now` with `outcome` and frees its slot, its
    /// locks and its stage's token; or forgets a waiting task that is no longer wanted
    /// (counted as cancelled). Call [`Scheduler::schedule`] afterwards to start whoever
    /// can now.
    pub fn finish(
        &mut self,
        ticket: TaskTicket,
        now: Timestamp,
        outcome: TaskOutcome,
    ) -> Result<(), UnknownTicket> {
        if let Some(position) = self.waiting.iter().position(|task| task.ticket == ticket) {
            if let Some(task) = self.waiting.remove(position) {
                let figures = self.figures.entry(task.stage).or_default();
                figures.waiting = figures.waiting.saturating_sub(1);
                figures.cancelled += 1;
            }
            return Ok(());
        }
        let grant = self.running.remove(&ticket).ok_or(UnknownTicket(ticket))?;
        decrement(&mut self.running_per_stage, &grant.stage);
        decrement(
            &mut self.load_per_processor,
            &(grant.stage, grant.processor),
        );
        for name in &self.limits.processors_of(grant.stage)[grant.processor].locks {
            decrement(&mut self.held_locks, name);
        }
        let figures = self.figures.entry(grant.stage).or_default();
        figures.running = figures.running.saturating_sub(1);
        figures.total_run += now.saturating_duration_since(grant.started_at);
        match outcome {
            TaskOutcome::Succeeded => figures.succeeded += 1,
            TaskOutcome::Failed => figures.failed += 1,
            TaskOutcome::Cancelled => figures.cancelled += 1,
        }
        Ok(())
    }

    /// Each stage's figures so far.
    pub fn figures(&self) -> &BTreeMap<Stage, StageFigures> {
        &self.figures
    }

    /// The earliest time at which a staggered stage's interval ends while a task of that
    /// stage waits: the driver calls [`Scheduler::schedule`] again then.
    pub fn next_wakeup(&self, now: Timestamp) -> Option<Timestamp> {
        self.blocked_stages(now)
            .into_values()
            .filter_map(|reason| match reason {
                WaitReason::Staggered { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// For each stage with waiting tasks, why its oldest one waits at `now`.
    pub fn blocked_stages(&self, now: Timestamp) -> BTreeMap<Stage, WaitReason> {
        let mut reasons = BTreeMap::new();
        for task in &self.waiting {
            if reasons.contains_key(&task.stage) {
                continue;
            }
            // A waiting task whose placement succeeds was merely not scheduled yet.
            if let Err(reason) = self.placement(task.stage, now) {
                reasons.insert(task.stage, reason);
            }
        }
        reasons
    }

    /// The running tasks, by ticket.
    pub fn running(&self) -> impl Iterator<Item = &Grant> {
        self.running.values()
    }

    /// The waiting tasks in arrival order: ticket, stage and arrival time.
    pub fn waiting(&self) -> impl Iterator<Item = (TaskTicket, Stage, Timestamp)> + '_ {
        self.waiting
            .iter()
            .map(|task| (task.ticket, task.stage, task.arrived))
    }

    /// How many tasks of `stage` run now.
    pub fn running_in_stage(&self, stage: Stage) -> usize {
        self.running_per_stage.get(&stage).copied().unwrap_or(0)
    }

    /// How many tasks the processor `index` of `stage` runs now.
    pub fn processor_load(&self, stage: Stage, index: usize) -> usize {
        self.load_per_processor
            .get(&(stage, index))
            .copied()
            .unwrap_or(0)
    }

    /// How many units of the named lock are held now.
    pub fn held_units(&self, lock: &str) -> usize {
        self.held_locks.get(lock).copied().unwrap_or(0)
    }
}

fn decrement<K: Ord>(counters: &mut BTreeMap<K, usize>, key: &K) {
    if let Some(count) = counters.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counters.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1000)
    }

    fn slots(concurrent: usize, locks: &[&str]) -> ProcessorLimits {
        ProcessorLimits {
            concurrent: NonZeroUsize::new(concurrent),
            locks: locks.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    #[test]
    fn more_sealing_stores_than_pc1_slots_keep_pc1_busy_in_arrival_order() {
        let mut limits = SchedulerLimits::default();
        limits.processors.insert(Stage::Pc1, vec![slots(2, &[])]);
        let mut scheduler = Scheduler::new(limits);
        let tickets: Vec<_> = (0..5)
            .map(|_| scheduler.submit(Stage::Pc1, at(0)))
            .collect();
        let first: Vec<_> = scheduler
            .schedule(at(0))
            .iter()
            .map(|grant| grant.ticket)
            .collect();
        assert_eq!(first, tickets[..2]);
        scheduler
            .finish(tickets[1], at(10), TaskOutcome::Succeeded)
            .expect("running");
        let next = scheduler.schedule(at(10));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].ticket, tickets[2]);
        assert_eq!(next[0].waited, Duration::from_secs(10));
    }

    #[test]
    fn a_staggered_stage_waits_its_interval_unless_the_previous_task_ended() {
        let mut limits = SchedulerLimits::default();
        limits.staggered.insert(Stage::Pc1, Duration::from_secs(30));
        let mut scheduler = Scheduler::new(limits);
        let first = scheduler.submit(Stage::Pc1, at(0));
        let second = scheduler.submit(Stage::Pc1, at(0));
        let third = scheduler.submit(Stage::Pc1, at(0));
        assert_eq!(scheduler.schedule(at(0)).len(), 1);
        assert!(scheduler.schedule(at(29)).is_empty());
        assert_eq!(scheduler.next_wakeup(at(29)), Some(at(30)));
        assert_eq!(scheduler.schedule(at(30))[0].ticket, second);
        scheduler
            .finish(second, at(31), TaskOutcome::Succeeded)
            .expect("running");
        assert_eq!(
            scheduler.schedule(at(31))[0].ticket,
            third,
            "the previous start ended"
        );
        scheduler
            .finish(first, at(40), TaskOutcome::Failed)
            .expect("running");
    }

    #[test]
    fn named_locks_are_shared_across_stages_and_go_to_the_oldest_task() {
        let mut limits = SchedulerLimits::default();
        limits.named_locks.insert("gpu".to_owned(), 1);
        limits
            .processors
            .insert(Stage::Pc2, vec![slots(1, &["gpu"])]);
        limits
            .processors
            .insert(Stage::C2, vec![slots(1, &["gpu"])]);
        let mut scheduler = Scheduler::new(limits);
        let pc2 = scheduler.submit(Stage::Pc2, at(0));
        let c2 = scheduler.submit(Stage::C2, at(1));
        let pc2_again = scheduler.submit(Stage::Pc2, at(2));
        assert_eq!(scheduler.schedule(at(2))[0].ticket, pc2);
        assert_eq!(scheduler.held_units("gpu"), 1);
        scheduler
            .finish(pc2, at(3), TaskOutcome::Succeeded)
            .expect("running");
        let grants = scheduler.schedule(at(3));
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].ticket, c2, "the C2 arrived before the second PC2");
        assert_eq!(
            scheduler.blocked_stages(at(3)).get(&Stage::Pc2),
            Some(&WaitReason::NoFreeProcessor)
        );
        scheduler
            .finish(c2, at(4), TaskOutcome::Succeeded)
            .expect("running");
        assert_eq!(scheduler.schedule(at(4))[0].ticket, pc2_again);
    }

    #[test]
    fn the_processor_with_the_most_free_slots_is_chosen() {
        let mut limits = SchedulerLimits::default();
        limits
            .processors
            .insert(Stage::C2, vec![slots(1, &[]), slots(3, &[])]);
        let mut scheduler = Scheduler::new(limits);
        for _ in 0..4 {
            scheduler.submit(Stage::C2, at(0));
        }
        let processors: Vec<usize> = scheduler
            .schedule(at(0))
            .iter()
            .map(|grant| grant.processor)
            .collect();
        // Free slots 1 and 3: the second gets tasks until both have one free, then ties
        // go to the lower index.
        assert_eq!(processors, [1, 1, 0, 1]);
        assert!(
            scheduler
                .finish(TaskTicket(99), at(0), TaskOutcome::Failed)
                .is_err()
        );
    }
}
