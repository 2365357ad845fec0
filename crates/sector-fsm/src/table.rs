//! The transition table of each plan: which event moves a sector from which state to which.
//!
//! Only the plan events are listed here. The control events (wait, failure, abort, pause,
//! resume) are valid in every non-terminal state and are handled by the machine itself.

use crate::event::EventKind;
use crate::plan::Plan;
use crate::state::State;

/// One row of a plan's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state the sector is in.
    pub from: State,
    /// The event that arrives.
    pub event: EventKind,
    /// The state it moves to.
    pub to: State,
}

const fn row(from: State, event: EventKind, to: State) -> Transition {
    Transition { from, event, to }
}

use EventKind as E;
use State as S;

const SEALER: &[Transition] = &[
    row(S::Empty, E::Allocate, S::Allocated),
    row(S::Allocated, E::AcquireDeals, S::DealsAcquired),
    row(S::DealsAcquired, E::AddPiece, S::PieceAdded),
    row(S::PieceAdded, E::BuildTreeD, S::TreeDBuilt),
    row(S::TreeDBuilt, E::AssignTicket, S::TicketAssigned),
    row(S::TicketAssigned, E::Pc1, S::Pc1Done),
    row(S::Pc1Done, E::Pc2, S::Pc2Done),
    row(
        S::Pc1Done,
        E::Pc2NeedSyntheticProof,
        S::SyntheticPoRepNeeded,
    ),
    row(S::SyntheticPoRepNeeded, E::SyntheticPoRep, S::Pc2Done),
    row(S::Pc2Done, E::SubmitPreCommit, S::PreCommitSubmitted),
    row(S::PreCommitSubmitted, E::CheckPreCommit, S::PreCommitLanded),
    row(S::PreCommitSubmitted, E::ReSubmitPreCommit, S::Pc2Done),
    row(S::PreCommitLanded, E::Persist, S::Persisted),
    row(S::Persisted, E::SubmitPersistance, S::PersistanceSubmitted),
    row(S::PersistanceSubmitted, E::AssignSeed, S::SeedAssigned),
    row(S::SeedAssigned, E::C1, S::C1Done),
    row(S::C1Done, E::C2, S::C2Done),
    row(S::C2Done, E::SubmitProof, S::ProofSubmitted),
    row(S::ProofSubmitted, E::Finish, S::Finished),
    row(S::ProofSubmitted, E::ReSubmitProof, S::C2Done),
];

const SNAP_UP: &[Transition] = &[
    row(S::Empty, E::AllocatedSnapUpSector, S::Allocated),
    row(S::Allocated, E::AddPiece, S::PieceAdded),
    row(S::PieceAdded, E::BuildTreeD, S::TreeDBuilt),
    row(S::TreeDBuilt, E::SnapEncode, S::SnapEncoded),
    row(S::SnapEncoded, E::SnapProve, S::SnapProved),
    row(S::SnapProved, E::Persist, S::Persisted),
    row(S::Persisted, E::Finish, S::Finished),
    row(S::Persisted, E::RePersist, S::SnapProved),
];

const REBUILD: &[Transition] = &[
    row(S::Empty, E::AllocatedRebuildSector, S::Allocated),
    row(S::Allocated, E::AddPiece, S::PieceAdded),
    row(S::PieceAdded, E::BuildTreeD, S::TreeDBuilt),
    row(S::TreeDBuilt, E::Pc1, S::Pc1Done),
    row(S::Pc1Done, E::Pc2, S::Pc2Done),
    row(
        S::Pc1Done,
        E::Pc2NeedSyntheticProof,
        S::SyntheticPoRepNeeded,
    ),
    row(S::SyntheticPoRepNeeded, E::SyntheticPoRep, S::Pc2Done),
    row(S::Pc2Done, E::CheckSealed, S::SealedChecked),
    row(S::SealedChecked, E::SkipSnap, S::SnapDone),
    row(S::SealedChecked, E::AddPiece, S::SnapPieceAdded),
    row(S::SnapPieceAdded, E::BuildTreeD, S::SnapTreeDBuilt),
    row(S::SnapTreeDBuilt, E::SnapEncode, S::SnapEncoded),
    row(S::SnapEncoded, E::SnapProve, S::SnapDone),
    row(S::SnapDone, E::Persist, S::Persisted),
    row(S::Persisted, E::SubmitPersistance, S::Finished),
];

const UNSEAL: &[Transition] = &[
    row(S::Empty, E::AllocatedUnsealSector, S::Allocated),
    row(S::Allocated, E::Unsealed, S::Unsealed),
    row(S::Unsealed, E::UploadPieceDone, S::Finished),
];

const WINDOW_POST: &[Transition] = &[
    row(S::Empty, E::AllocatedWindowPostJob, S::Allocated),
    row(S::Allocated, E::Generate, S::Generated),
    row(S::Generated, E::Finish, S::Finished),
];

/// Every row of `plan`'s table, in the order of the plan's main path.
pub fn transitions(plan: Plan) -> &'static [Transition] {
    match plan {
        Plan::Sealer => SEALER,
        Plan::SnapUp => SNAP_UP,
        Plan::Rebuild => REBUILD,
        Plan::Unseal => UNSEAL,
        Plan::WindowPost => WINDOW_POST,
    }
}

/// Where `event` moves a sector of `plan` that is in `from`, if the table has that row.
pub fn next_state(plan: Plan, from: State, event: EventKind) -> Option<State> {
    transitions(plan)
        .iter()
        .find(|transition| transition.from == from && transition.event == event)
        .map(|transition| transition.to)
}

/// The states `plan` uses: every state named in its table, plus `Aborted`, which any
/// non-terminal state reaches through an abort.
pub fn states(plan: Plan) -> Vec<State> {
    State::ALL
        .iter()
        .copied()
        .filter(|state| {
            *state == State::Aborted
                || transitions(plan)
                    .iter()
                    .any(|transition| transition.from == *state || transition.to == *state)
        })
        .collect()
}

/// Whether `plan` uses `state`.
pub fn plan_uses(plan: Plan, state: State) -> bool {
    states(plan).contains(&state)
}

/// The states reachable from `from` in `plan`, following the table and the abort edge.
pub fn reachable_from(plan: Plan, from: State) -> Vec<State> {
    let mut seen = vec![from];
    let mut frontier = vec![from];
    while let Some(state) = frontier.pop() {
        let mut successors: Vec<State> = transitions(plan)
            .iter()
            .filter(|transition| transition.from == state)
            .map(|transition| transition.to)
            .collect();
        if !state.is_terminal() {
            successors.push(State::Aborted);
        }
        for successor in successors {
            if !seen.contains(&successor) {
                seen.push(successor);
                frontier.push(successor);
            }
        }
    }
    seen
}

/// The plan's full table as text: every row, then the control events every non-terminal
/// state accepts. Used by `sealing-worker plan show` and by the snapshot tests, so any
/// change to a plan shows up in review.
pub fn render(plan: Plan) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let width = transitions(plan)
        .iter()
        .map(|transition| transition.from.as_str().len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(text, "plan {plan}");
    for transition in transitions(plan) {
        let _ = writeln!(
            text,
            "  {:<width$} --{}--> {}",
            transition.from.as_str(),
            transition.event,
            transition.to
        );
    }
    let _ = writeln!(text, "  every non-terminal state:");
    let _ = writeln!(
        text,
        "    --Wait--> same state, step runs again after the delay"
    );
    let _ = writeln!(
        text,
        "    --Failed--> Temporary: same state after a capped, doubling backoff; \
         once retries are spent: {}",
        match plan {
            Plan::WindowPost => "Aborted",
            Plan::Sealer | Plan::SnapUp | Plan::Rebuild | Plan::Unseal => "paused",
        }
    );
    let _ = writeln!(
        text,
        "    --Failed--> Permanent or Critical: paused; Abort: Aborted"
    );
    let _ = writeln!(text, "    --Abort--> Aborted (also while paused)");
    let _ = writeln!(text, "    --Pause--> paused");
    let _ = writeln!(
        text,
        "    --Resume--> (paused only) unpaused, or a validated jump to a named state"
    );
    let _ = writeln!(text, "  terminal: Finished, Aborted (absorb every event)");
    text
}
