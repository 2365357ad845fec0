//! A sealing thread: one sealing store, one sector at a time, driven through the sector
//! machine by performing each action it asks for.
//!
//! The loop is the machine's (see `sector_fsm::machine`): ask for the next action, do it,
//! feed the outcome back as an event, save the record durably, report the transition to
//! the manager, repeat. The record is saved before the next action starts, so a worker
//! killed at any moment resumes each thread at the step in flight and never redoes a
//! step whose result was recorded. A thread waiting for a processor slot holds only its
//! place in the compute pool's queue; the PC1 ticket is drawn once the PC1 slot is held.
//!
//! Operator commands (pause, resume, abort) arrive on a channel and are taken between
//! steps and during every wait; a running processor task is never interrupted (its
//! result is recorded, then the pause takes effect), as in damocles.
//!
//! Each call, stage, persist and finalize is a span of the sector's trace: the manager
//! made the sector's trace context at allocation and hands it out with
//! `Venus.SectorTraceContext`; the calls made inside a span carry it on to the manager.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealer_api::types as api;
use sector_fsm::types::{AllocatedSector, SectorId};
use sector_fsm::{
    Action, Ending, Event, Failure, FailureLevel, Outcome, PersistFiles, Plan, RetryPolicy, Sector,
    StageTask, State, Step, Timestamp, WaitReason,
};
use serde::Serialize;
use storage_alloc::{ReplicaKind, SealingStoreLayout};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use crate::compute::{ComputePool, StageSlot};
use crate::config::{
    AttachedStore, HotThreadConfig, Layer, Sealing, SealingOverrides, layered_sealing,
};
use crate::manager_client::ManagerClient;
use crate::record_store::RecordStore;

/// What an operator asks of a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadCommand {
    /// Pause after the step in flight.
    Pause,
    /// Resume a paused thread, in its current state or in `Some(state)` of its path.
    Resume(Option<State>),
    /// Drop the sector, reporting `reason` to the manager.
    Abort(String),
}

/// A command and where its answer goes: `Err` says why the machine refused it.
pub type CommandRequest = (ThreadCommand, oneshot::Sender<Result<(), String>>);

/// What a thread is doing, for `WorkerList`, `WorkerPing` and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state")]
pub enum Activity {
    /// Between sectors, or asking for one.
    Idle,
    /// Running a manager call, a processor task or a file move.
    Running {
        /// Since when (Unix milliseconds).
        since: u64,
        /// What.
        doing: String,
    },
    /// Waiting for a processor slot, the chain, or a retry.
    Waiting {
        /// Since when (Unix milliseconds).
        since: u64,
        /// For what.
        waiting_for: String,
    },
    /// Waiting for an operator.
    Paused {
        /// Since when (Unix milliseconds).
        since: u64,
    },
}

/// A thread's status as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadStatus {
    /// The thread's index in the configuration (0-based, as damocles numbers them).
    pub index: usize,
    /// Its sealing store.
    pub location: PathBuf,
    /// Its plan.
    pub plan: Plan,
    /// The sector it seals, once allocated.
    pub sector: Option<SectorId>,
    /// The sector's state.
    pub state: State,
    /// What the thread does now.
    pub activity: Activity,
    /// The last failure of the current sector, if any.
    pub last_error: Option<String>,
    /// Sectors this thread finished since the worker started.
    pub finished: u64,
    /// Sectors this thread aborted since the worker started.
    pub aborted: u64,
}

/// A thread's status, shared with the admin API.
pub type SharedStatus = Arc<Mutex<ThreadStatus>>;

/// Everything one sealing thread needs.
pub struct SealingThread {
    /// Its index in the configuration.
    pub index: usize,
    /// The worker's instance name, sent with every report.
    pub worker_name: String,
    /// Its sealing store.
    pub layout: SealingStoreLayout,
    /// Its configured plan (a hot `config.toml` may replace it for the next sector).
    pub plan: Plan,
    /// The layers under the hot file: the manager's defaults, `[sealing]`, the thread's.
    pub layers: Vec<(Layer, SealingOverrides)>,
    /// The manager.
    pub client: Arc<ManagerClient>,
    /// The worker's compute pool.
    pub pool: ComputePool,
    /// The worker's `[[attached]]` persistent stores.
    pub attached: Vec<AttachedStore>,
    /// Where its status is published.
    pub status: SharedStatus,
}

fn unix_millis() -> u64 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    u64::try_from(millis).unwrap_or(u64::MAX)
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(unix_millis())
}

/// The sector's trace context, asked of the manager once per sector.
#[derive(Debug, Default)]
struct SectorTrace {
    asked: bool,
    traceparent: Option<String>,
}

/// What an event says of the step that produced it, for its span.
fn outcome_of(event: &Event) -> &'static str {
    match event {
        Event::Failed(_) => "failed",
        _ => "ok",
    }
}

fn wire_id(id: SectorId) -> api::SectorId {
    api::SectorId {
        miner: id.miner,
        number: id.number,
    }
}

/// The retry policy a thread with `sealing` follows.
pub fn retry_policy(sealing: &Sealing) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    RetryPolicy {
        max_retries: sealing.max_retries,
        first_backoff: sealing.recover_interval,
        max_backoff: defaults.max_backoff.max(sealing.recover_interval),
        resubmit_delay: sealing.recover_interval,
    }
}

/// How a thread's loop ended.
#[derive(Debug, thiserror::Error)]
pub enum ThreadError {
    /// The sector record could not be read; an operator must look at it.
    #[error("thread {index} ({location}): {message}")]
    Record {
        /// The thread.
        index: usize,
        /// Its sealing store.
        location: String,
        /// What is wrong.
        message: String,
    },
}

/// What the inner loop of one sector ended with.
enum SectorEnd {
    /// The sector is over; the thread takes the next one.
    Done,
    /// The worker is stopping.
    Stop,
}

impl SealingThread {
    fn set_activity(&self, activity: Activity) {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .activity = activity;
    }

    fn publish(&self, sector: &Sector) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.plan = sector.plan();
        status.sector = sector.data().allocated.map(|allocated| allocated.id);
        status.state = sector.state();
    }

    /// Keeps the thread's last error: set by a failed step, cleared by progress.
    fn note_step(&self, step: &Step) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(failure) = &step.failure {
            status.last_error = Some(format!("{}: {}", failure.level.as_str(), failure.message));
        } else if matches!(
            step.outcome,
            Outcome::Advanced | Outcome::Resumed | Outcome::Jumped
        ) {
            status.last_error = None;
        }
    }

    fn location(&self) -> &Path {
        self.layout.location()
    }

    /// The settings for the next sector: the layers, then the hot `config.toml` read now.
    /// A hot file that does not read is logged and ignored (the thread keeps sealing with
    /// the layers below it rather than stopping).
    fn current_settings(&self) -> (Plan, Sealing) {
        let hot = match HotThreadConfig::load(self.location()) {
            Ok(hot) => hot,
            Err(error) => {
                tracing::warn!(
                    thread = self.index,
                    "ignoring the hot configuration: {error}"
                );
                None
            }
        };
        let mut layers: Vec<(Layer, &SealingOverrides)> = self
            .layers
            .iter()
            .map(|(layer, overrides)| (*layer, overrides))
            .collect();
        let plan = match hot.as_ref().and_then(|hot| hot.plan) {
            Some(Plan::Sealer) | None => self.plan,
            Some(other) => {
                tracing::warn!(
                    thread = self.index,
                    "ignoring plan {other} in the hot configuration: this worker runs only the sealer plan"
                );
                self.plan
            }
        };
        if let Some(hot) = &hot {
            layers.push((Layer::HotFile, &hot.sealing));
        }
        (plan, layered_sealing(&layers).sealing)
    }

    /// Runs the thread until `stop` turns true. Returns an error only for a sector
    /// record that cannot be read, which needs an operator; every other failure is the
    /// machine's to handle.
    pub async fn run(
        self,
        mut commands: mpsc::Receiver<CommandRequest>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ThreadError> {
        let records = RecordStore::of(&self.layout);
        loop {
            let (plan, sealing) = self.current_settings();
            let record = records.load().map_err(|error| ThreadError::Record {
                index: self.index,
                location: self.location().display().to_string(),
                message: error.to_string(),
            })?;
            let sector = match record {
                Some(record) => {
                    tracing::info!(
                        thread = self.index,
                        state = %record.state,
                        "resuming the sector recorded in the sealing store"
                    );
                    Sector::from_record(record)
                }
                None => Sector::new(plan),
            };
            match self
                .seal_one(sector, &sealing, &records, &mut commands, &mut stop)
                .await
            {
                SectorEnd::Stop => return Ok(()),
                SectorEnd::Done => {
                    self.set_activity(Activity::Idle);
                    if wait_or_stop(&mut stop, sealing.seal_interval).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn seal_one(
        &self,
        mut sector: Sector,
        sealing: &Sealing,
        records: &RecordStore,
        commands: &mut mpsc::Receiver<CommandRequest>,
        stop: &mut watch::Receiver<bool>,
    ) -> SectorEnd {
        let policy = retry_policy(sealing);
        let mut pending: Option<CommandRequest> = None;
        let mut trace = SectorTrace::default();
        self.publish(&sector);
        loop {
            if *stop.borrow() {
                return SectorEnd::Stop;
            }
            if let Some(request) = pending.take() {
                self.take_command(&mut sector, request, &policy, records)
                    .await;
            }
            while let Ok(request) = commands.try_recv() {
                self.take_command(&mut sector, request, &policy, records)
                    .await;
            }
            let action = match sector.next_action(now()) {
                Ok(action) => action,
                Err(no_action) => {
                    // Only a damaged record has no action: wait for an operator's abort.
                    let failure = Failure::new(
                        FailureLevel::Critical,
                        format!("the sector record allows no action: {no_action}"),
                    );
                    tracing::error!(thread = self.index, "{}", failure.message);
                    self.status
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .last_error = Some(failure.message.clone());
                    self.set_activity(Activity::Paused {
                        since: unix_millis(),
                    });
                    match next_command(commands, stop, None).await {
                        Some(request) => {
                            self.take_command(&mut sector, request, &policy, records)
                                .await;
                            continue;
                        }
                        None => return SectorEnd::Stop,
                    }
                }
            };
            let event = match action {
                Action::Advance(event) => event,
                Action::WaitUntil(until) => {
                    self.set_activity(Activity::Waiting {
                        since: unix_millis(),
                        waiting_for: format!("the next attempt of {}", sector.state()),
                    });
                    let wait = until.saturating_duration_since(now());
                    match next_command(commands, stop, Some(wait)).await {
                        Some(request) => {
                            self.take_command(&mut sector, request, &policy, records)
                                .await;
                        }
                        None if *stop.borrow() => return SectorEnd::Stop,
                        None => {}
                    }
                    continue;
                }
                Action::AwaitOperator { since, .. } => {
                    self.set_activity(Activity::Paused {
                        since: since.as_unix_millis(),
                    });
                    match next_command(commands, stop, None).await {
                        Some(request) => {
                            self.take_command(&mut sector, request, &policy, records)
                                .await;
                            continue;
                        }
                        None => return SectorEnd::Stop,
                    }
                }
                Action::Finalize(ending) => {
                    let ending = match ending {
                        Ending::Finished => None,
                        Ending::Aborted { reason } => Some(reason.to_owned()),
                    };
                    self.ask_trace(&sector, &mut trace).await;
                    let span = self.step_span(&sector, "finalize", None, &trace);
                    let end = self
                        .finalize(&sector, ending, sealing, records, stop)
                        .instrument(span.clone())
                        .await;
                    span.record(
                        "outcome",
                        match end {
                            SectorEnd::Done => "ok",
                            SectorEnd::Stop => "stopped",
                        },
                    );
                    return end;
                }
                Action::Call(call) => {
                    self.set_activity(Activity::Running {
                        since: unix_millis(),
                        doing: call.method().to_owned(),
                    });
                    self.ask_trace(&sector, &mut trace).await;
                    let span = self.step_span(&sector, call.method(), None, &trace);
                    let event = crate::calls::perform(&self.client, &call, sealing)
                        .instrument(span.clone())
                        .await;
                    span.record("outcome", outcome_of(&event));
                    event
                }
                Action::Run(task) => {
                    // Wait for the slot holding nothing else: an operator command that
                    // arrives meanwhile takes the sector out of the queue, and a stop
                    // ends the wait (the step runs again at the next start).
                    let stage = task.stage();
                    self.set_activity(Activity::Waiting {
                        since: unix_millis(),
                        waiting_for: format!("a {} slot", stage.as_str()),
                    });
                    let queued = std::time::Instant::now();
                    let acquired = tokio::select! {
                        acquired = self.pool.acquire(stage) => acquired,
                        Some(request) = commands.recv() => {
                            pending = Some(request);
                            continue;
                        }
                        _ = stop.changed() => return SectorEnd::Stop,
                    };
                    match acquired {
                        Ok(slot) => {
                            self.ask_trace(&sector, &mut trace).await;
                            let span = self.step_span(
                                &sector,
                                stage.as_str(),
                                Some(stage.as_str()),
                                &trace,
                            );
                            // A stop abandons the task: its result was not recorded, so
                            // it runs again at the next start.
                            telemetry::metrics::histogram!(
                                "sealcluster_stage_queue_wait_seconds",
                                "stage" => stage.as_str()
                            )
                            .record(queued.elapsed().as_secs_f64());
                            let running = std::time::Instant::now();
                            let event = tokio::select! {
                                event = self.run_stage(&task, slot).instrument(span.clone()) => event,
                                _ = stop.changed() => return SectorEnd::Stop,
                            };
                            span.record("outcome", outcome_of(&event));
                            telemetry::metrics::histogram!(
                                "sealcluster_stage_duration_seconds",
                                "stage" => stage.as_str(),
                                "outcome" => outcome_of(&event)
                            )
                            .record(running.elapsed().as_secs_f64());
                            event
                        }
                        Err(error) => Event::Failed(Failure::new(error.level(), error.to_string())),
                    }
                }
                Action::Persist {
                    sector: allocated,
                    files,
                } => {
                    let allocated = *allocated;
                    self.ask_trace(&sector, &mut trace).await;
                    let span = self.step_span(&sector, "persist", None, &trace);
                    let event = self
                        .persist(allocated, files, sealing)
                        .instrument(span.clone())
                        .await;
                    span.record("outcome", outcome_of(&event));
                    event
                }
            };
            self.take_step(&mut sector, event, &policy, records).await;
        }
    }

    /// Learns the sector's trace context from the manager, once the sector is allocated
    /// and only when this process exports traces. A manager without the method (a
    /// damocles manager) leaves the sector's spans in a trace of their own.
    async fn ask_trace(&self, sector: &Sector, trace: &mut SectorTrace) {
        if trace.asked || !telemetry::is_exporting() {
            return;
        }
        let Some(allocated) = sector.data().allocated else {
            return;
        };
        trace.asked = true;
        let argument = serde_json::to_value(wire_id(allocated.id)).unwrap_or_default();
        match self
            .client
            .raw_call("Venus.SectorTraceContext", vec![argument])
            .await
        {
            Ok(serde_json::Value::String(traceparent)) => trace.traceparent = Some(traceparent),
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(thread = self.index, %error, "no trace context for the sector");
            }
        }
    }

    /// The span of one step of `sector`: `what` names it (a method, a stage, `persist`,
    /// `finalize`), a child of the sector's trace when its context is known.
    fn step_span(
        &self,
        sector: &Sector,
        what: &str,
        stage: Option<&str>,
        trace: &SectorTrace,
    ) -> tracing::Span {
        let id = sector.data().allocated.map(|allocated| allocated.id);
        let span = tracing::info_span!(
            "step",
            otel.name = what,
            miner = id.map(|id| id.miner),
            number = id.map(|id| id.number),
            state = %sector.state(),
            stage,
            worker = %self.worker_name,
            thread = self.index,
            outcome = tracing::field::Empty,
        );
        if let Some(traceparent) = &trace.traceparent {
            telemetry::set_parent(&span, traceparent);
        }
        span
    }

    /// Feeds `event` to the machine, saves the record, and reports the transition.
    async fn take_step(
        &self,
        sector: &mut Sector,
        event: Event,
        policy: &RetryPolicy,
        records: &RecordStore,
    ) {
        let step = match sector.handle(event, now(), policy) {
            Ok(step) => step,
            Err(rejection) => {
                // The driver gave the machine an event its action does not answer: a
                // defect of this worker. Pause the sector with the reason rather than
                // loop on it.
                let failure = Failure::new(
                    FailureLevel::Critical,
                    format!("the machine refused the worker's event: {rejection}"),
                );
                tracing::error!(thread = self.index, "{}", failure.message);
                match sector.handle(Event::Failed(failure), now(), policy) {
                    Ok(step) => step,
                    Err(_) => return,
                }
            }
        };
        self.save(sector, records).await;
        if let Some(allocated) = sector.data().allocated {
            // After the save: from here on this step is never run again for the sector.
            // A "not yet" answer of a poll is recorded too, but only worth a debug line.
            if matches!(step.outcome, Outcome::Waiting { .. }) {
                tracing::debug!(thread = self.index, sector = %allocated.id, event = %step.event, from = %step.from, "recorded a wait");
            } else {
                tracing::info!(
                    thread = self.index,
                    sector = %allocated.id,
                    event = %step.event,
                    from = %step.from,
                    to = %step.to,
                    unix_ms = unix_millis(),
                    "recorded"
                );
            }
        }
        self.publish(sector);
        self.note_step(&step);
        self.report(sector, &step, policy, records).await;
    }

    /// Saves the record; retries until it is on disk, because acting on a transition
    /// that is not saved could redo finished work after a crash.
    async fn save(&self, sector: &Sector, records: &RecordStore) {
        let mut attempt = 0u32;
        loop {
            let record = sector.record().clone();
            let store = records.clone();
            let saved = tokio::task::spawn_blocking(move || store.save(&record)).await;
            match saved {
                Ok(Ok(())) => return,
                Ok(Err(error)) => {
                    attempt += 1;
                    tracing::error!(
                        thread = self.index,
                        attempt,
                        "could not save the sector record, retrying: {error}"
                    );
                }
                Err(error) => {
                    attempt += 1;
                    tracing::error!(thread = self.index, "the record writer failed: {error}");
                }
            }
            self.status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .last_error = Some("the sector record cannot be saved; see the log".to_owned());
            tokio::time::sleep(Duration::from_secs(u64::from(attempt.min(30)))).await;
        }
    }

    /// `Venus.ReportState` for a transition of an allocated sector. A failed report is
    /// logged and the sector goes on (the manager learns the state from the next one). An
    /// answer saying the manager aborted or finalized the sector aborts it here.
    async fn report(
        &self,
        sector: &mut Sector,
        step: &Step,
        policy: &RetryPolicy,
        records: &RecordStore,
    ) {
        let Some(allocated) = sector.data().allocated else {
            return;
        };
        let request = api::ReportStateRequest {
            worker: api::WorkerIdentity {
                instance: self.worker_name.clone(),
                location: self.location().display().to_string(),
            },
            state_change: api::StateChange {
                prev: step.from.to_string(),
                next: step.to.to_string(),
                event: step.event.to_string(),
            },
            failure: step.failure.as_ref().map(|failure| api::ReportedFailure {
                level: failure.level.as_str().to_owned(),
                desc: failure.message.clone(),
            }),
        };
        let answer = match self
            .client
            .report_state(wire_id(allocated.id), &request)
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(thread = self.index, sector = %allocated.id, "could not report the state: {error}");
                return;
            }
        };
        if sector.state().is_terminal() {
            return;
        }
        let reason = match (answer.abort_reason, answer.finalized) {
            (Some(reason), _) => reason,
            (None, true) => "the manager has finalized this sector".to_owned(),
            (None, false) => return,
        };
        tracing::warn!(thread = self.index, sector = %allocated.id, "the manager ended the sector: {reason}");
        if let Ok(step) = sector.handle(Event::Abort(reason), now(), policy) {
            self.save(sector, records).await;
            self.publish(sector);
            tracing::info!(thread = self.index, from = %step.from, to = %step.to, "sector aborted");
        }
    }

    /// Takes an operator's command and sends the answer back to whoever asked.
    async fn take_command(
        &self,
        sector: &mut Sector,
        (command, reply): CommandRequest,
        policy: &RetryPolicy,
        records: &RecordStore,
    ) {
        let answer = self.apply_command(sector, command, policy, records).await;
        let _ = reply.send(answer);
    }

    async fn apply_command(
        &self,
        sector: &mut Sector,
        command: ThreadCommand,
        policy: &RetryPolicy,
        records: &RecordStore,
    ) -> Result<(), String> {
        let event = match command {
            ThreadCommand::Pause => Event::Pause,
            ThreadCommand::Resume(target) => Event::Resume(target),
            ThreadCommand::Abort(reason) => Event::Abort(reason),
        };
        let step = sector
            .handle(event, now(), policy)
            .map_err(|rejection| rejection.to_string())?;
        self.save(sector, records).await;
        self.publish(sector);
        self.note_step(&step);
        tracing::info!(thread = self.index, event = %step.event, from = %step.from, to = %step.to, "operator command taken");
        self.report(sector, &step, policy, records).await;
        Ok(())
    }

    /// Runs one compute stage on the slot it holds, drawing the PC1 ticket first (as
    /// late as it can be).
    async fn run_stage(&self, task: &StageTask<'_>, slot: StageSlot) -> Event {
        let stage = task.stage();
        let ticket = match task {
            StageTask::Pc1 {
                sector,
                ticket: None,
                ..
            } => match crate::calls::assign_ticket(&self.client, sector).await {
                Ok(ticket) => Some(ticket),
                Err(failure) => return Event::Failed(failure),
            },
            StageTask::Pc1 {
                ticket: Some(ticket),
                ..
            } => Some(**ticket),
            _ => None,
        };
        let (_, processor_task) =
            match crate::stages::processor_task(task, &self.layout, ticket.as_ref()) {
                Ok(prepared) => prepared,
                Err(failure) => return Event::Failed(failure),
            };
        self.set_activity(Activity::Running {
            since: unix_millis(),
            doing: stage.as_str().to_owned(),
        });
        match slot.run(&processor_task).await {
            Ok(output) => crate::stages::output_event(task, ticket.as_ref(), output),
            Err(error) => Event::Failed(Failure::new(
                error.level(),
                format!("{}: {error}", stage.as_str()),
            )),
        }
    }

    /// Moves the sector's files to a persistent store the manager chooses among this
    /// worker's attached stores.
    async fn persist(
        &self,
        sector: AllocatedSector,
        files: PersistFiles,
        sealing: &Sealing,
    ) -> Event {
        self.set_activity(Activity::Running {
            since: unix_millis(),
            doing: "persist".to_owned(),
        });
        let Some((_, size)) = crate::stages::seal_proof_name(sector.proof_type.0) else {
            return Event::Failed(Failure::new(
                FailureLevel::Permanent,
                format!(
                    "seal proof {} is not sealed by this worker",
                    sector.proof_type.0
                ),
            ));
        };
        let replica = match files {
            PersistFiles::Sealed => ReplicaKind::Sealed,
            PersistFiles::Update => ReplicaKind::Updated,
        };
        let relative = storage_alloc::persisted_files(sector.id, size, replica);
        let data = self.layout.data_directory();
        let bytes: u64 = relative
            .iter()
            .filter_map(|file| std::fs::metadata(data.join(file)).ok())
            .map(|metadata| metadata.len())
            .sum();
        let candidates: Vec<String> = self
            .attached
            .iter()
            .filter(|store| !store.readonly)
            .map(AttachedStore::name)
            .collect();
        let store = match self
            .client
            .store_reserve_space(wire_id(sector.id), bytes, &candidates)
            .await
        {
            Ok(Some(store)) => store,
            Ok(None) => {
                return Event::Wait {
                    reason: WaitReason::NoStoreSpace,
                    retry_after: sealing.recover_interval,
                };
            }
            Err(error) => {
                return Event::Failed(Failure::new(error.failure_level(), error.to_string()));
            }
        };
        let destination = match self
            .attached
            .iter()
            .find(|attached| attached.name() == store.name)
        {
            Some(attached) => attached.location.clone(),
            // A store this worker has not attached, but whose path exists here (the
            // manager's own machine, or the same mount everywhere).
            None if Path::new(&store.path).is_dir() => PathBuf::from(&store.path),
            None => {
                return Event::Failed(Failure::new(
                    FailureLevel::Permanent,
                    format!(
                        "the manager chose the persistent store {:?} ({}), which this worker has \
                         not attached and cannot see; add an [[attached]] entry with name = {:?} \
                         and its local location",
                        store.name, store.path, store.name
                    ),
                ));
            }
        };
        let moved = tokio::task::spawn_blocking(move || {
            storage_alloc::transfer::move_sector_files(&storage_alloc::transfer::MoveRequest {
                source_root: &data,
                destination_root: &destination,
                files: &relative,
                allow_hard_link: true,
                source_disposal: storage_alloc::transfer::SourceDisposal::Keep,
            })
        })
        .await;
        match moved {
            Ok(Ok(report)) => {
                tracing::info!(thread = self.index, sector = %sector.id, store = %store.name, copied = report.copied_bytes(), "persisted");
                Event::Persist(store.name)
            }
            Ok(Err(error)) => Event::Failed(Failure::new(error.level, error.to_string())),
            Err(error) => Event::Failed(Failure::new(
                FailureLevel::Temporary,
                format!("the file mover failed: {error}"),
            )),
        }
    }

    /// Tells the manager how the sector ended, clears the sealing store and discards the
    /// record. Each part is safe to repeat, so a crash in the middle finalizes again.
    async fn finalize(
        &self,
        sector: &Sector,
        abort_reason: Option<String>,
        sealing: &Sealing,
        records: &RecordStore,
        stop: &mut watch::Receiver<bool>,
    ) -> SectorEnd {
        self.set_activity(Activity::Running {
            since: unix_millis(),
            doing: "finalize".to_owned(),
        });
        if let Some(allocated) = sector.data().allocated {
            let id = wire_id(allocated.id);
            loop {
                let reported = match &abort_reason {
                    None => self.client.report_finalized(id).await,
                    Some(reason) => self.client.report_aborted(id, reason).await,
                };
                match reported {
                    Ok(()) => break,
                    Err(error) if error.failure_level() == FailureLevel::Temporary => {
                        tracing::warn!(thread = self.index, sector = %allocated.id, "could not report the sector's end, retrying: {error}");
                        if wait_or_stop(stop, sealing.recover_interval).await {
                            return SectorEnd::Stop;
                        }
                    }
                    Err(error) => {
                        // The manager does not know the sector or refuses the report:
                        // nothing the worker can change; the local end stands.
                        tracing::warn!(thread = self.index, sector = %allocated.id, "the manager refused the sector's end report: {error}");
                        break;
                    }
                }
            }
            let layout = self.layout.clone();
            let cleared =
                tokio::task::spawn_blocking(move || clear_sector_files(&layout, allocated.id))
                    .await;
            if let Ok(Err(error)) | Err(error) = cleared.map_err(std::io::Error::other) {
                tracing::warn!(thread = self.index, sector = %allocated.id, "could not clear the sealing store: {error}");
            }
        }
        loop {
            match records.discard() {
                Ok(()) => break,
                Err(error) => {
                    tracing::error!(
                        thread = self.index,
                        "could not discard the sector record: {error}"
                    );
                    if wait_or_stop(stop, sealing.recover_interval).await {
                        return SectorEnd::Stop;
                    }
                }
            }
        }
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match abort_reason {
            None => status.finished += 1,
            Some(reason) => {
                status.aborted += 1;
                tracing::warn!(thread = self.index, "sector aborted: {reason}");
            }
        }
        status.sector = None;
        status.state = State::Empty;
        status.last_error = None;
        if let Some(allocated) = sector.data().allocated {
            tracing::info!(thread = self.index, sector = %allocated.id, "sector finalized");
        }
        SectorEnd::Done
    }
}

/// Removes a sector's files from a sealing store; files already gone are fine.
pub fn clear_sector_files(layout: &SealingStoreLayout, sector: SectorId) -> std::io::Result<()> {
    for file in [
        layout.unsealed_file(sector),
        layout.sealed_file(sector),
        layout.update_file(sector),
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    for directory in [
        layout.cache_directory(sector),
        layout.update_cache_directory(sector),
        layout.prepared_directory(sector),
    ] {
        match std::fs::remove_dir_all(&directory) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Sleeps `duration`; true when the worker is stopping.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// The next operator command, waiting at most `wait` (forever if `None`); `None` when
/// the wait ended, or the worker is stopping.
async fn next_command(
    commands: &mut mpsc::Receiver<CommandRequest>,
    stop: &mut watch::Receiver<bool>,
    wait: Option<Duration>,
) -> Option<CommandRequest> {
    if *stop.borrow() {
        return None;
    }
    let sleep = async {
        match wait {
            Some(wait) => tokio::time::sleep(wait).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        command = commands.recv() => command,
        () = sleep => None,
        _ = stop.changed() => None,
    }
}

/// The summary `WorkerPing` carries for `statuses`.
pub fn summarize(statuses: &[ThreadStatus]) -> api::WorkerSummary {
    let mut summary = api::WorkerSummary {
        threads: statuses.len() as u64,
        ..api::WorkerSummary::default()
    };
    for status in statuses {
        if status.sector.is_none() {
            summary.empty += 1;
        }
        match status.activity {
            Activity::Paused { .. } => summary.paused += 1,
            Activity::Running { .. } => summary.running += 1,
            Activity::Waiting { .. } => summary.waiting += 1,
            Activity::Idle => {}
        }
        if status.last_error.is_some() {
            summary.errors += 1;
        }
    }
    summary
}
