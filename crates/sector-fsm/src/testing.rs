//! Invariant checks and an event replayer, shared by the property tests and the fuzz target.
//!
//! Compiled only with the `testing` feature. Keeping the fuzz target's logic here means the
//! ordinary test suite runs it too, so the fuzz target cannot silently rot.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::event::{Event, EventKind};
use crate::failure::RetryPolicy;
use crate::machine::{Outcome, Sector, Step};
use crate::plan::Plan;
use crate::record::SectorRecord;
use crate::state::State;
use crate::table;
use crate::time::Timestamp;

/// An invariant that does not hold, with the evidence.
#[derive(Debug, thiserror::Error)]
#[error("invariant violated: {0}")]
pub struct Violation(pub String);

macro_rules! ensure {
    ($condition:expr, $($format:tt)+) => {
        if !$condition {
            return Err(Violation(format!($($format)+)));
        }
    };
}

/// A short retry policy so generated sequences reach exhaustion quickly.
pub fn test_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        first_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(60),
        resubmit_delay: Duration::from_secs(30),
    }
}

/// Checks every invariant of `sector` at `now`:
/// - its state belongs to its plan;
/// - a terminal state absorbs every event and leaves the record unchanged;
/// - from a non-terminal state, `Finished` and `Aborted` are reachable in the plan;
/// - abort is accepted from every non-terminal state, paused or not;
/// - the record survives encoding and decoding unchanged;
/// - the machine can always say what to do next.
pub fn check_invariants(sector: &Sector, now: Timestamp) -> Result<(), Violation> {
    let plan = sector.plan();
    let state = sector.state();
    let policy = test_policy();
    ensure!(
        table::plan_uses(plan, state),
        "{plan} sector is in {state}, which the plan does not use"
    );

    if state.is_terminal() {
        for event in sample_events() {
            let mut probe = sector.clone();
            let result = probe.handle(event.clone(), now, &policy);
            ensure!(
                result.is_err(),
                "terminal {state} accepted {:?}",
                event.kind()
            );
            ensure!(
                probe == *sector,
                "terminal {state} changed on {:?}",
                event.kind()
            );
        }
    } else {
        let reachable = table::reachable_from(plan, state);
        ensure!(
            reachable.contains(&State::Finished),
            "Finished unreachable from {plan}/{state}"
        );
        ensure!(
            reachable.contains(&State::Aborted),
            "Aborted unreachable from {plan}/{state}"
        );
        let mut probe = sector.clone();
        let step = probe.handle(Event::Abort("invariant probe".to_owned()), now, &policy);
        ensure!(
            matches!(step, Ok(ref step) if step.to == State::Aborted)
                && probe.state() == State::Aborted,
            "abort refused in {plan}/{state}: {step:?}"
        );
    }

    let encoded = sector.record().encode();
    match SectorRecord::decode(&encoded) {
        Ok(decoded) => ensure!(
            decoded == *sector.record(),
            "record changed through encode and decode:\n{:?}\n{:?}",
            sector.record(),
            decoded
        ),
        Err(error) => return Err(Violation(format!("record does not decode: {error}"))),
    }

    if let Err(error) = sector.next_action(now) {
        return Err(Violation(format!("no action in {plan}/{state}: {error}")));
    }
    Ok(())
}

/// One event of each control kind, used to probe terminal states.
fn sample_events() -> Vec<Event> {
    vec![
        Event::Abort("probe".to_owned()),
        Event::Pause,
        Event::Resume(None),
        Event::Resume(Some(State::Empty)),
        Event::Finish,
        Event::BuildTreeD,
    ]
}

/// The plan event kinds the table accepts from `sector`'s current state.
pub fn next_event_kinds(sector: &Sector) -> Vec<EventKind> {
    table::transitions(sector.plan())
        .iter()
        .filter(|transition| transition.from == sector.state())
        .map(|transition| transition.event)
        .collect()
}

/// Builds an event of `kind` with a payload drawn from `input`.
pub fn event_of_kind(kind: EventKind, input: &mut Unstructured<'_>) -> arbitrary::Result<Event> {
    use EventKind as K;
    Ok(match kind {
        K::Allocate => Event::Allocate(input.arbitrary()?),
        K::AllocatedSnapUpSector => Event::AllocatedSnapUpSector(input.arbitrary()?),
        K::AllocatedRebuildSector => Event::AllocatedRebuildSector(input.arbitrary()?),
        K::AllocatedUnsealSector => Event::AllocatedUnsealSector(input.arbitrary()?),
        K::AllocatedWindowPostJob => Event::AllocatedWindowPostJob(input.arbitrary()?),
        K::AcquireDeals => Event::AcquireDeals(input.arbitrary()?),
        K::AddPiece => Event::AddPiece(input.arbitrary()?),
        K::BuildTreeD => Event::BuildTreeD,
        K::AssignTicket => Event::AssignTicket,
        K::Pc1 => Event::Pc1 {
            ticket: input.arbitrary()?,
            output: input.arbitrary()?,
        },
        K::Pc2 => Event::Pc2(input.arbitrary()?),
        K::Pc2NeedSyntheticProof => Event::Pc2NeedSyntheticProof(input.arbitrary()?),
        K::SyntheticPoRep => Event::SyntheticPoRep,
        K::SubmitPreCommit => Event::SubmitPreCommit,
        K::CheckPreCommit => Event::CheckPreCommit,
        K::ReSubmitPreCommit => Event::ReSubmitPreCommit,
        K::Persist => Event::Persist(input.arbitrary()?),
        K::SubmitPersistance => Event::SubmitPersistance,
        K::AssignSeed => Event::AssignSeed(input.arbitrary()?),
        K::C1 => Event::C1(input.arbitrary()?),
        K::C2 => Event::C2(input.arbitrary()?),
        K::SubmitProof => Event::SubmitProof,
        K::ReSubmitProof => Event::ReSubmitProof,
        K::Finish => Event::Finish,
        K::SnapEncode => Event::SnapEncode(input.arbitrary()?),
        K::SnapProve => Event::SnapProve(input.arbitrary()?),
        K::RePersist => Event::RePersist,
        K::CheckSealed => Event::CheckSealed,
        K::SkipSnap => Event::SkipSnap,
        K::Unsealed => Event::Unsealed(input.arbitrary()?),
        K::UploadPieceDone => Event::UploadPieceDone,
        K::Generate => Event::Generate(input.arbitrary()?),
        K::Wait => Event::Wait {
            reason: input.arbitrary()?,
            retry_after: Duration::from_secs(u64::from(input.arbitrary::<u16>()?)),
        },
        K::Failed => Event::Failed(input.arbitrary()?),
        K::Abort => Event::Abort(input.arbitrary()?),
        K::Pause => Event::Pause,
        K::Resume => Event::Resume(input.arbitrary()?),
    })
}

/// One step of a fuzzed run.
#[derive(Clone, Debug, Arbitrary)]
pub enum FuzzStep {
    /// Any event at all, most of them invalid for the current state.
    Any(Event),
    /// One of the events the plan accepts now (chosen by index), with a drawn payload:
    /// this is what lets a fuzzer get deep into a plan.
    Plausible {
        /// Which of the accepted events.
        choice: u8,
        /// Bytes for the payload.
        payload: Vec<u8>,
    },
}

/// A fuzzed run: a plan, and steps each with the seconds that pass before it.
#[derive(Clone, Debug, Arbitrary)]
pub struct FuzzRun {
    /// The plan to run.
    pub plan: Plan,
    /// The steps, each with the seconds that pass before it.
    pub steps: Vec<(u16, FuzzStep)>,
}

/// Replays `run` against a fresh sector, checking every invariant after every step and
/// that a rejected event leaves the sector unchanged.
pub fn replay(run: &FuzzRun) -> Result<(), Violation> {
    let policy = test_policy();
    let mut sector = Sector::new(run.plan);
    let mut now = Timestamp::from_unix_millis(1_700_000_000_000);
    check_invariants(&sector, now)?;
    for (seconds, step) in &run.steps {
        now = now.saturating_add(Duration::from_secs(u64::from(*seconds)));
        let event = match step {
            FuzzStep::Any(event) => event.clone(),
            FuzzStep::Plausible { choice, payload } => {
                let kinds = next_event_kinds(&sector);
                if kinds.is_empty() {
                    continue;
                }
                let kind = kinds[usize::from(*choice) % kinds.len()];
                match event_of_kind(kind, &mut Unstructured::new(payload)) {
                    Ok(event) => event,
                    Err(_) => continue,
                }
            }
        };
        let before = sector.clone();
        match sector.handle(event.clone(), now, &policy) {
            Ok(step) => {
                ensure!(
                    step.from == before.state(),
                    "step.from {} != {}",
                    step.from,
                    before.state()
                );
                ensure!(
                    step.to == sector.state(),
                    "step.to {} != {}",
                    step.to,
                    sector.state()
                );
                ensure!(
                    step.event == event.kind(),
                    "step names {} for {}",
                    step.event,
                    event.kind()
                );
                ensure!(
                    sector.record().last_event == Some(event.kind()),
                    "record's last event is {:?} after {}",
                    sector.record().last_event,
                    event.kind()
                );
                check_outcome(&before, &sector, &step, now)?;
            }
            Err(_) => ensure!(
                sector == before,
                "a rejected {} changed the sector",
                event.kind()
            ),
        }
        check_invariants(&sector, now)?;
    }
    Ok(())
}

/// The rules each kind of outcome must obey, checked against the sector before and after.
fn check_outcome(
    before: &Sector,
    after: &Sector,
    step: &Step,
    now: Timestamp,
) -> Result<(), Violation> {
    let failures_before = before.record().retry.consecutive_temporary_failures;
    let failures_after = after.record().retry.consecutive_temporary_failures;
    match step.outcome {
        Outcome::Advanced | Outcome::Resumed | Outcome::Jumped | Outcome::Aborted => {
            ensure!(
                failures_after == 0,
                "{:?} left {failures_after} failures counted",
                step.outcome
            );
            ensure!(
                !after.is_paused(),
                "{:?} left the sector paused",
                step.outcome
            );
        }
        Outcome::RetryScheduled {
            attempt,
            not_before,
        } => {
            ensure!(
                attempt == failures_before + 1,
                "retry {attempt} after {failures_before} failures"
            );
            ensure!(
                failures_after == attempt,
                "counter {failures_after} after retry {attempt}"
            );
            ensure!(
                not_before > now,
                "a retry is scheduled at {not_before}, not after {now}"
            );
            ensure!(step.from == step.to, "a retry moved the sector");
        }
        Outcome::Waiting { until } => {
            ensure!(until >= now, "waiting until {until}, before {now}");
            ensure!(
                failures_after == failures_before,
                "a wait changed the failure count"
            );
            ensure!(step.from == step.to, "a wait moved the sector");
        }
        Outcome::Paused => {
            ensure!(after.is_paused(), "a pause left the sector running");
            ensure!(step.from == step.to, "a pause moved the sector");
        }
    }
    match step.outcome {
        Outcome::Aborted => ensure!(
            after.state() == State::Aborted,
            "aborted into {}",
            after.state()
        ),
        Outcome::Advanced | Outcome::Jumped => {
            ensure!(
                step.from != step.to,
                "{:?} did not move the sector",
                step.outcome
            );
        }
        Outcome::Resumed => ensure!(step.from == step.to, "a plain resume moved the sector"),
        Outcome::RetryScheduled { .. } | Outcome::Waiting { .. } | Outcome::Paused => {}
    }
    Ok(())
}
