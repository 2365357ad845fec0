//! The worker's compute pool: every stage's processors behind `proc-sched`'s pure
//! scheduler, shared by all sealing threads.
//!
//! A thread asks [`ComputePool::run`] for a stage and waits in the scheduler's queue
//! holding nothing else: no processor, no lock, no slot of another stage. The scheduler
//! decides when and on which processor the task runs (stage limits, staggered starts,
//! named locks, each processor's slots); this module only carries its decisions out.
//! So with more sealing stores than PC1 slots, every PC1 slot is handed to the next
//! waiting sector the moment it frees.
//!
//! The contract: a task that was waiting when its caller stopped waiting (the future
//! was dropped) leaves the queue; one that was running is recorded as cancelled when it
//! ends; either way its slot is free for the next task.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proc_sched::{
    ExternalProcessor, Grant, ProcessError, Scheduler, SchedulerLimits, StageFigures, TaskOutcome,
    TaskTicket,
};
use sector_fsm::{FailureLevel, Stage, Timestamp};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// Why a stage did not produce its output.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// No processor serves the stage (a configuration that `config check` refuses).
    #[error("no processor serves the {0} stage")]
    NoProcessor(String),
    /// The processor failed or did not answer.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The pool stopped while the task waited.
    #[error("the compute pool stopped")]
    Stopped,
}

impl ComputeError {
    /// How a sealing thread treats the failure (see [`ProcessError::level`]).
    pub fn level(&self) -> FailureLevel {
        match self {
            ComputeError::NoProcessor(_) => FailureLevel::Permanent,
            ComputeError::Process(error) => error.level(),
            ComputeError::Stopped => FailureLevel::Temporary,
        }
    }
}

/// One stage's processors and how long a task may run on each.
pub struct StageProcessors {
    /// The processors, in the order of the stage's `[[processors.<stage>]]` entries (the
    /// scheduler's processor indices).
    pub processors: Vec<ExternalProcessor>,
    /// Per processor: the longest a task may run (`None`: no limit).
    pub timeouts: Vec<Option<Duration>>,
}

struct PoolState {
    scheduler: Scheduler,
    /// Tasks waiting for their grant, by ticket.
    waiting: HashMap<TaskTicket, oneshot::Sender<Grant>>,
}

struct Shared {
    state: Mutex<PoolState>,
    stages: BTreeMap<Stage, StageProcessors>,
    /// Wakes the timer of staggered starts when the next start time may have changed.
    rescheduled: Notify,
}

/// The pool; cheap to clone.
#[derive(Clone)]
pub struct ComputePool {
    shared: Arc<Shared>,
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    Timestamp::from_unix_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, PoolState> {
        // The state stays consistent between statements; a panic elsewhere holding the
        // lock does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts whatever the scheduler allows now and tells the timer of staggered starts
    /// that the next start time may have changed.
    fn dispatch(&self) {
        self.start_what_can_start();
        self.rescheduled.notify_one();
    }

    /// Starts whatever the scheduler allows now, handing each grant to its waiter; a
    /// waiter that is gone gives its grant straight back. (The timer calls this one: it
    /// must not wake itself.)
    fn start_what_can_start(&self) {
        let mut state = self.state();
        loop {
            let grants = state.scheduler.schedule(now());
            if grants.is_empty() {
                break;
            }
            let mut returned = false;
            for grant in grants {
                let ticket = grant.ticket;
                let delivered = match state.waiting.remove(&ticket) {
                    Some(waiter) => waiter.send(grant).is_ok(),
                    None => false,
                };
                if !delivered {
                    let _ = state
                        .scheduler
                        .finish(ticket, now(), TaskOutcome::Cancelled);
                    returned = true;
                }
            }
            if !returned {
                break;
            }
        }
    }
}

/// Ends a task's place in the scheduler when it is dropped: waiting or running, with
/// the outcome set last.
struct TicketGuard {
    shared: Arc<Shared>,
    ticket: TaskTicket,
    outcome: TaskOutcome,
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            state.waiting.remove(&self.ticket);
            let _ = state.scheduler.finish(self.ticket, now(), self.outcome);
        }
        self.shared.dispatch();
    }
}

impl ComputePool {
    /// A pool enforcing `limits` over `stages`' processors. Starts the timer of
    /// staggered starts on the current runtime; it ends with the last clone of the pool.
    pub fn new(limits: SchedulerLimits, stages: BTreeMap<Stage, StageProcessors>) -> ComputePool {
        let shared = Arc::new(Shared {
            state: Mutex::new(PoolState {
                scheduler: Scheduler::new(limits),
                waiting: HashMap::new(),
            }),
            stages,
            rescheduled: Notify::new(),
        });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                let next = shared.state().scheduler.next_wakeup(now());
                // At least a few milliseconds, so a start time the scheduler still refuses
                // can never make this loop spin.
                let wait = next.map(|at| {
                    at.saturating_duration_since(now())
                        .max(Duration::from_millis(5))
                });
                // Hold the pool only weakly while sleeping, so dropping it ends this task.
                let notified = {
                    let shared = Arc::clone(&shared);
                    async move { shared.rescheduled.notified().await }
                };
                drop(shared);
                match wait {
                    Some(wait) => {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = notified => {}
                        }
                    }
                    None => {
                        tokio::select! {
                            () = notified => {}
                            // Check now and then whether the pool is still there.
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
                if let Some(shared) = weak.upgrade() {
                    shared.start_what_can_start();
                }
            }
        });
        ComputePool { shared }
    }

    /// Runs `task` on a processor of `stage` when the scheduler allows, and returns the
    /// processor's output; see the module's contract for a caller that stops waiting.
    pub async fn run(&self, stage: Stage, task: &Value) -> Result<Value, ComputeError> {
        self.acquire(stage).await?.run(task).await
    }

    /// Waits until the scheduler gives `stage` a processor slot and returns it, for a
    /// caller that must prepare its task only once it holds the slot (PC1 draws its
    /// ticket then, so the ticket is as fresh as it can be). Dropping the slot unused
    /// gives it back.
    pub async fn acquire(&self, stage: Stage) -> Result<StageSlot, ComputeError> {
        if !self.shared.stages.contains_key(&stage) {
            return Err(ComputeError::NoProcessor(stage.as_str().to_owned()));
        }
        let (sender, granted) = oneshot::channel();
        let ticket = {
            let mut state = self.shared.state();
            let ticket = state.scheduler.submit(stage, now());
            state.waiting.insert(ticket, sender);
            ticket
        };
        let guard = TicketGuard {
            shared: Arc::clone(&self.shared),
            ticket,
            outcome: TaskOutcome::Cancelled,
        };
        self.shared.dispatch();
        let grant = granted.await.map_err(|_| ComputeError::Stopped)?;
        Ok(StageSlot {
            stage,
            processor: grant.processor,
            guard,
        })
    }

    /// Each stage's figures so far (tasks, waits, busy time).
    pub fn figures(&self) -> BTreeMap<Stage, StageFigures> {
        self.shared.state().scheduler.figures().clone()
    }
}

/// A processor slot of one stage, held from the scheduler's grant until the task ends or
/// the slot is dropped.
pub struct StageSlot {
    stage: Stage,
    processor: usize,
    guard: TicketGuard,
}

impl StageSlot {
    /// Runs `task` on the slot's processor and gives the slot back.
    pub async fn run(mut self, task: &Value) -> Result<Value, ComputeError> {
        let shared = Arc::clone(&self.guard.shared);
        let stage_processors = shared
            .stages
            .get(&self.stage)
            .ok_or_else(|| ComputeError::NoProcessor(self.stage.as_str().to_owned()))?;
        let Some(processor) = stage_processors.processors.get(self.processor) else {
            self.guard.outcome = TaskOutcome::Failed;
            return Err(ComputeError::NoProcessor(self.stage.as_str().to_owned()));
        };
        let timeout = stage_processors
            .timeouts
            .get(self.processor)
            .copied()
            .flatten();
        let answer = processor.process(task, timeout).await;
        self.guard.outcome = if answer.is_ok() {
            TaskOutcome::Succeeded
        } else {
            TaskOutcome::Failed
        };
        Ok(answer?)
    }
}
