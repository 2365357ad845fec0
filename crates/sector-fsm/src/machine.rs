//! The sector state machine: feed it an event and the time, it answers the transition.
//!
//! The driver's loop is:
//! 1. ask [`Sector::next_action`] what to do, and do it (call the manager, run a stage,
//!    move files, or wait);
//! 2. feed the outcome back as an [`Event`] to [`Sector::handle`], which moves the state
//!    and records the step's output in the same change;
//! 3. persist [`Sector::record`] durably, report the [`Step`] to the manager, and loop.
//!
//! Because the output travels in the event and the record is written before the next
//! action starts, a crash loses at most the step in flight, never a finished one.

use crate::action::{Action, NoAction, paused_action, state_action};
use crate::event::{Event, EventKind};
use crate::failure::{Failure, FailureDecision, RetryPolicy};
use crate::plan::Plan;
use crate::record::{Pause, PauseCause, RetryState, SectorData, SectorRecord};
use crate::state::State;
use crate::table;
use crate::time::Timestamp;

/// What a handled event did to the sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sector moved along its plan (this is progress: the retry counter is reset).
    Advanced,
    /// Nothing changed but the time of the next attempt.
    Waiting {
        /// When to run the step again.
        until: Timestamp,
    },
    /// A temporary failure; the same step runs again after a backoff.
    RetryScheduled {
        /// Consecutive temporary failures, including this one.
        attempt: u32,
        /// When to run the step again.
        not_before: Timestamp,
    },
    /// The thread now waits for an operator.
    Paused,
    /// An operator resumed the sector in its current state.
    Resumed,
    /// An operator resumed the sector in another state.
    Jumped,
    /// The sector was dropped.
    Aborted,
}

/// One handled event: the transition to report and persist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The state before.
    pub from: State,
    /// The state after (equal to `from` when the event did not move the sector).
    pub to: State,
    /// The event that caused it.
    pub event: EventKind,
    /// The failure the event reported, if it was a failure.
    pub failure: Option<Failure>,
    /// What happened.
    pub outcome: Outcome,
}

/// An operator's jump that cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JumpError {
    /// The sector is already there.
    #[error("the sector is already in state {state}; resume without a state to retry it")]
    SameAsCurrent {
        /// The current state.
        state: State,
    },
    /// The plan never visits that state.
    #[error("state {state} is not part of plan {plan}; its states are: {valid}")]
    NotInPlan {
        /// The plan.
        plan: Plan,
        /// The requested state.
        state: State,
        /// The plan's states, comma-separated.
        valid: String,
    },
    /// Finishing must be earned by the plan's last step.
    #[error(
        "a sector cannot be jumped to Finished: only its plan's last step can finish it; \
         to drop it, resume it to Aborted"
    )]
    CannotJumpToFinished,
    /// Going back to Empty would forget what the manager allocated.
    #[error(
        "jumping to Empty would forget the sector the manager allocated; resume it to \
         Aborted to drop it and report why"
    )]
    WouldForgetAllocation,
    /// The state is not behind the sector.
    #[error(
        "cannot jump forward to {state}: a jump can only go back to a state this sector went \
         through ({path}), or to Aborted"
    )]
    NotOnPath {
        /// The requested state.
        state: State,
        /// The sector's path, comma-separated.
        path: String,
    },
    /// The target state needs an input the record does not have yet.
    #[error("cannot jump to {state}: {reason}")]
    MissingInput {
        /// The requested state.
        state: State,
        /// What is missing.
        reason: NoAction,
    },
}

/// An event the machine refuses; the record is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The sector is finished or aborted; nothing can change it.
    #[error("sector is {state}; event {event} is ignored")]
    Terminal {
        /// The terminal state.
        state: State,
        /// The refused event.
        event: EventKind,
    },
    /// The event does not answer the current state's action.
    #[error("a {plan} sector in {state} does not expect {event}; it expects: {expected}")]
    Unexpected {
        /// The plan.
        plan: Plan,
        /// The current state.
        state: State,
        /// The refused event.
        event: EventKind,
        /// The events it expects, comma-separated (none if it cannot proceed).
        expected: String,
    },
    /// Only resume and abort reach a paused sector.
    #[error("sector is paused in {state}; only resume or abort are accepted, not {event}")]
    Paused {
        /// The current state.
        state: State,
        /// The refused event.
        event: EventKind,
    },
    /// Pausing twice.
    #[error("sector is already paused")]
    AlreadyPaused,
    /// Resuming what is not paused.
    #[error("sector is not paused; pause it before resuming it to another state")]
    NotPaused,
    /// The requested jump is not valid.
    #[error(transparent)]
    Jump(#[from] JumpError),
}

/// A sector and its state machine, around the record that persists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sector {
    record: SectorRecord,
}

impl Sector {
    /// A new, empty sector of `plan`.
    pub fn new(plan: Plan) -> Self {
        Sector {
            record: SectorRecord::new(plan),
        }
    }

    /// Resumes a sector from its persisted record.
    pub fn from_record(record: SectorRecord) -> Self {
        Sector { record }
    }

    /// The record to persist after every handled event.
    pub fn record(&self) -> &SectorRecord {
        &self.record
    }

    /// Gives the record back, for example to store it.
    pub fn into_record(self) -> SectorRecord {
        self.record
    }

    /// The plan.
    pub fn plan(&self) -> Plan {
        self.record.plan
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.record.state
    }

    /// Whether the thread waits for an operator.
    pub fn is_paused(&self) -> bool {
        self.record.pause.is_some()
    }

    /// What the sector has learned so far.
    pub fn data(&self) -> &SectorData {
        &self.record.data
    }

    /// What the driver must do at `now`. Terminal sectors finalize; paused ones wait for
    /// an operator; a sector in backoff waits; otherwise the current state's action.
    pub fn next_action(&self, now: Timestamp) -> Result<Action<'_>, NoAction> {
        if !self.record.state.is_terminal() {
            if let Some(paused) = paused_action(&self.record) {
                return Ok(paused);
            }
            if let Some(not_before) = self.record.retry.not_before
                && now < not_before
            {
                return Ok(Action::WaitUntil(not_before));
            }
        }
        state_action(&self.record)
    }

    /// Applies `event` at `now`. On success the record holds the new state together with
    /// whatever the event carried; on rejection the record is unchanged.
    pub fn handle(
        &mut self,
        event: Event,
        now: Timestamp,
        policy: &RetryPolicy,
    ) -> Result<Step, Rejection> {
        let from = self.record.state;
        let kind = event.kind();
        if from.is_terminal() {
            return Err(Rejection::Terminal {
                state: from,
                event: kind,
            });
        }
        if self.record.pause.is_some() {
            return match event {
                Event::Resume(target) => self.resume(target),
                Event::Abort(reason) => Ok(self.abort(reason, kind, None)),
                Event::Pause => Err(Rejection::AlreadyPaused),
                _ => Err(Rejection::Paused {
                    state: from,
                    event: kind,
                }),
            };
        }
        match event {
            Event::Wait { retry_after, .. } => {
                let until = now.saturating_add(retry_after);
                self.record.retry.not_before = Some(until);
                Ok(self.stay(kind, None, Outcome::Waiting { until }))
            }
            Event::Failed(failure) => Ok(self.fail(failure, now, policy)),
            Event::Abort(reason) => Ok(self.abort(reason, kind, None)),
            Event::Pause => {
                self.record.pause = Some(Pause {
                    since: now,
                    cause: PauseCause::Operator,
                });
                Ok(self.stay(kind, None, Outcome::Paused))
            }
            Event::Resume(_) => Err(Rejection::NotPaused),
            plan_event => self.advance(plan_event, now, policy),
        }
    }

    /// Validates an operator's jump of this sector to `target` without making it.
    ///
    /// A sector may jump back to a state on its path (to redo work, say `TreeDBuilt` to
    /// draw a fresh ticket after one expired), or to `Aborted` to drop it. Jumping forward
    /// would skip steps whose outputs later states need, jumping to `Empty` would forget a
    /// sector the manager allocated, and only the plan's last step may finish a sector.
    pub fn check_jump(&self, target: State) -> Result<(), JumpError> {
        let plan = self.record.plan;
        if target == self.record.state {
            return Err(JumpError::SameAsCurrent { state: target });
        }
        if !table::plan_uses(plan, target) {
            return Err(JumpError::NotInPlan {
                plan,
                state: target,
                valid: names(&table::states(plan)),
            });
        }
        match target {
            State::Aborted => return Ok(()),
            State::Finished => return Err(JumpError::CannotJumpToFinished),
            State::Empty => return Err(JumpError::WouldForgetAllocation),
            _ => {}
        }
        if !self.record.path.contains(&target) {
            return Err(JumpError::NotOnPath {
                state: target,
                path: names(&self.record.path),
            });
        }
        let mut jumped = self.record.clone();
        jumped.state = target;
        state_action(&jumped)
            .map(|_| ())
            .map_err(|reason| JumpError::MissingInput {
                state: target,
                reason,
            })
    }

    fn resume(&mut self, target: Option<State>) -> Result<Step, Rejection> {
        let from = self.record.state;
        let outcome = match target {
            None => Outcome::Resumed,
            Some(target) => {
                self.check_jump(target)?;
                if target == State::Aborted {
                    return Ok(self.abort(
                        "aborted by an operator".to_owned(),
                        EventKind::Resume,
                        None,
                    ));
                }
                self.record.state = target;
                self.record.previous_state = Some(from);
                walk_path(&mut self.record.path, target);
                Outcome::Jumped
            }
        };
        // A resumed sector gets a fresh retry budget: the operator has looked at it.
        self.record.pause = None;
        self.record.retry = RetryState::default();
        self.record.last_event = Some(EventKind::Resume);
        Ok(Step {
            from,
            to: self.record.state,
            event: EventKind::Resume,
            failure: None,
            outcome,
        })
    }

    fn fail(&mut self, failure: Failure, now: Timestamp, policy: &RetryPolicy) -> Step {
        let attempts_so_far = self.record.retry.consecutive_temporary_failures;
        match policy.decide(self.record.plan, attempts_so_far, failure.level, now) {
            FailureDecision::RetryAt {
                attempt,
                not_before,
            } => {
                self.record.retry = RetryState {
                    consecutive_temporary_failures: attempt,
                    not_before: Some(not_before),
                };
                self.stay(
                    EventKind::Failed,
                    Some(failure),
                    Outcome::RetryScheduled {
                        attempt,
                        not_before,
                    },
                )
            }
            FailureDecision::Pause => {
                self.record.pause = Some(Pause {
                    since: now,
                    cause: PauseCause::Failure {
                        failure: failure.clone(),
                    },
                });
                self.stay(EventKind::Failed, Some(failure), Outcome::Paused)
            }
            FailureDecision::Abort => {
                let reason = failure.message.clone();
                self.abort(reason, EventKind::Failed, Some(failure))
            }
        }
    }

    fn abort(&mut self, reason: String, event: EventKind, failure: Option<Failure>) -> Step {
        let from = self.record.state;
        self.record.state = State::Aborted;
        self.record.previous_state = Some(from);
        walk_path(&mut self.record.path, State::Aborted);
        self.record.last_event = Some(event);
        self.record.abort_reason = Some(reason);
        self.record.pause = None;
        self.record.retry = RetryState::default();
        Step {
            from,
            to: State::Aborted,
            event,
            failure,
            outcome: Outcome::Aborted,
        }
    }

    fn stay(&mut self, event: EventKind, failure: Option<Failure>, outcome: Outcome) -> Step {
        self.record.last_event = Some(event);
        let state = self.record.state;
        Step {
            from: state,
            to: state,
            event,
            failure,
            outcome,
        }
    }

    fn advance(
        &mut self,
        event: Event,
        now: Timestamp,
        policy: &RetryPolicy,
    ) -> Result<Step, Rejection> {
        let plan = self.record.plan;
        let from = self.record.state;
        let kind = event.kind();
        let expected = match state_action(&self.record) {
            Ok(action) => action.answers(),
            Err(_) => Vec::new(),
        };
        let to = table::next_state(plan, from, kind)
            .filter(|_| expected.contains(&kind))
            .ok_or_else(|| Rejection::Unexpected {
                plan,
                state: from,
                event: kind,
                expected: names(&expected),
            })?;
        // Progress resets the retry budget; a resubmission waits a little before it runs.
        self.record.retry = RetryState::default();
        if matches!(
            kind,
            EventKind::ReSubmitPreCommit | EventKind::ReSubmitProof
        ) {
            self.record.retry.not_before = Some(now.saturating_add(policy.resubmit_delay));
        }
        record_output(&mut self.record.data, plan, from, event);
        self.record.state = to;
        self.record.previous_state = Some(from);
        self.record.last_event = Some(kind);
        walk_path(&mut self.record.path, to);
        Ok(Step {
            from,
            to,
            event: kind,
            failure: None,
            outcome: Outcome::Advanced,
        })
    }
}

/// Moves along the path to `state`: back to it if it is already on the path, else onward.
fn walk_path(path: &mut Vec<State>, state: State) {
    match path.iter().position(|visited| *visited == state) {
        Some(index) => path.truncate(index + 1),
        None => path.push(state),
    }
}

/// Names, comma-separated, for error messages.
fn names<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "nothing".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes what a plan event carries into the record. Each field has exactly one writer.
fn record_output(data: &mut SectorData, plan: Plan, from: State, event: Event) {
    match event {
        Event::Allocate(sector) => data.allocated = Some(sector),
        Event::AllocatedSnapUpSector(allocation) => {
            data.allocated = Some(allocation.sector);
            data.deals = Some(allocation.deals);
            data.sealed_replica = Some(allocation.replica);
        }
        Event::AllocatedRebuildSector(allocation) => {
            data.allocated = Some(allocation.sector);
            data.ticket = Some(allocation.ticket);
            data.deals = Some(allocation.deals);
            data.upgraded_from_comm_r = allocation.upgraded_from_comm_r;
        }
        Event::AllocatedUnsealSector(allocation) => {
            data.allocated = Some(allocation.sector);
            data.ticket = Some(allocation.ticket);
            data.unseal_request = Some(allocation.request);
        }
        Event::AllocatedWindowPostJob(job) => data.window_post_job = Some(job),
        Event::AcquireDeals(deals) => data.deals = Some(deals),
        Event::AddPiece(pieces) if plan == Plan::Rebuild && from == State::SealedChecked => {
            data.snap_pieces = Some(pieces);
        }
        Event::AddPiece(pieces) => data.pieces = Some(pieces),
        // PC1 must draw a fresh ticket: a stale one can expire before PreCommit lands.
        Event::AssignTicket => data.ticket = None,
        Event::Pc1 { ticket, output } => {
            data.ticket = Some(ticket);
            data.pc1_output = Some(output);
        }
        Event::Pc2(output) | Event::Pc2NeedSyntheticProof(output) => {
            data.pre_commit = Some(output);
        }
        Event::SubmitPreCommit => data.pre_commit_submitted = true,
        Event::Persist(instance) => data.persisted_instance = Some(instance),
        // The manager cannot see the files where they were put: choose a store again.
        Event::RePersist => data.persisted_instance = None,
        Event::AssignSeed(seed) => data.seed = Some(seed),
        Event::C1(output) => data.c1_output = Some(output),
        Event::C2(proof) => data.proof = Some(proof),
        Event::SubmitProof => data.proof_submitted = true,
        Event::SnapEncode(output) => data.snap_encode = Some(output),
        Event::SnapProve(proof) => data.snap_proof = Some(proof),
        Event::Unsealed(bytes) => data.unsealed_bytes = Some(bytes),
        Event::Generate(outcome) => data.window_post_outcome = Some(outcome),
        Event::BuildTreeD
        | Event::SyntheticPoRep
        | Event::CheckPreCommit
        | Event::ReSubmitPreCommit
        | Event::SubmitPersistance
        | Event::ReSubmitProof
        | Event::Finish
        | Event::CheckSealed
        | Event::SkipSnap
        | Event::UploadPieceDone => {}
        Event::Wait { .. }
        | Event::Failed(_)
        | Event::Abort(_)
        | Event::Pause
        | Event::Resume(_) => {}
    }
}
