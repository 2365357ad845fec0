//! Everything that can happen to a sector, carrying the output of the step that caused it.
//!
//! A step's output travels inside its event, so recording the output and moving the state
//! are one transition: a crash or pause right after a long PC1, PC2 or C2 cannot lose it.

use std::time::Duration;

use crate::failure::Failure;
use crate::names::named_enum;
use crate::state::State;
use crate::types::{
    AllocatedSector, Blob, DealPiece, OpaqueOutput, PieceInfo, PreCommitOutput, RebuildAllocation,
    Seed, SnapEncodeOutput, SnapUpAllocation, Ticket, UnsealAllocation, WindowPostJob,
    WindowPostOutcome,
};

/// A name that is not one of the event kinds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {name:?}")]
pub struct UnknownEventKind {
    /// The name that was given.
    pub name: String,
}

/// Why a step answered "not yet".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The manager has no sector or job for this thread right now.
    NothingToAllocate,
    /// Deals are required (`disable_cc`) and none are available yet.
    NoDeals,
    /// A chain message is still pending.
    ChainPending,
    /// The seed epoch has not been reached yet.
    SeedNotReady,
    /// No persistent store has room for the sector yet.
    NoStoreSpace,
}

/// An input to the machine: a step's result, a failure, or an operator's or the manager's
/// decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub enum Event {
    /// The manager allocated a new sector (`sealer`).
    Allocate(AllocatedSector),
    /// The manager allocated a CC sector to upgrade with deals (`snapup`).
    AllocatedSnapUpSector(SnapUpAllocation),
    /// The manager allocated a sector to rebuild (`rebuild`).
    AllocatedRebuildSector(RebuildAllocation),
    /// The manager allocated a piece to unseal (`unseal`).
    AllocatedUnsealSector(UnsealAllocation),
    /// The manager handed out a window-PoSt job (`wdpost`).
    AllocatedWindowPostJob(WindowPostJob),
    /// The deals for the sector are known; an empty list means a CC sector.
    AcquireDeals(Vec<DealPiece>),
    /// The pieces are written into the staged file.
    AddPiece(Vec<PieceInfo>),
    /// Tree-d is built.
    BuildTreeD,
    /// Move on to PC1, forgetting any earlier ticket so PC1 draws a fresh one.
    AssignTicket,
    /// PC1 finished with this ticket and output.
    Pc1 {
        /// The ticket PC1 sealed with.
        ticket: Ticket,
        /// PC1's output, kept for PC2.
        output: OpaqueOutput,
    },
    /// PC2 finished.
    Pc2(PreCommitOutput),
    /// PC2 finished, and the proof type needs synthetic proofs before C1.
    Pc2NeedSyntheticProof(PreCommitOutput),
    /// Synthetic proofs are generated.
    SyntheticPoRep,
    /// The manager accepted the PreCommit.
    SubmitPreCommit,
    /// The PreCommit landed on chain.
    CheckPreCommit,
    /// The PreCommit message failed on chain; submit it again.
    ReSubmitPreCommit,
    /// Sector files are moved into this persistent store.
    Persist(String),
    /// The manager recorded the persistent store.
    SubmitPersistance,
    /// The interactive seed is drawn.
    AssignSeed(Seed),
    /// C1 finished.
    C1(OpaqueOutput),
    /// C2 finished with this proof.
    C2(Blob),
    /// The manager accepted the proof.
    SubmitProof,
    /// The ProveCommit failed on chain; submit the proof again.
    ReSubmitProof,
    /// The plan's last step succeeded.
    Finish,
    /// The new data is encoded into the replica.
    SnapEncode(SnapEncodeOutput),
    /// The replica-update proof is generated.
    SnapProve(Blob),
    /// The manager could not find the persisted update files; persist again.
    RePersist,
    /// The rebuilt replica passed its integrity check.
    CheckSealed,
    /// A rebuilt sector was never upgraded: skip the upgrade steps.
    SkipSnap,
    /// The piece is unsealed; this many bytes were written.
    Unsealed(u64),
    /// The unsealed piece is delivered.
    UploadPieceDone,
    /// The window PoSt is generated, or failed.
    Generate(WindowPostOutcome),
    /// The step answered "not yet": run it again after the delay.
    Wait {
        /// Why nothing happened.
        reason: WaitReason,
        /// When to try again.
        retry_after: Duration,
    },
    /// The step failed.
    Failed(Failure),
    /// Drop the sector (the manager, an operator or a failure decided so).
    Abort(String),
    /// An operator paused the sector's thread.
    Pause,
    /// An operator resumed the sector, optionally jumping to a named state.
    Resume(Option<State>),
}

named_enum! {
    /// The name of an event, without its payload: what transition tables are keyed by and
    /// what `ReportState` reports as the cause of a transition.
    pub enum EventKind (unknown: UnknownEventKind) {
        /// See [`Event::Allocate`].
        Allocate => "Allocate",
        /// See [`Event::AllocatedSnapUpSector`].
        AllocatedSnapUpSector => "AllocatedSnapUpSector",
        /// See [`Event::AllocatedRebuildSector`].
        AllocatedRebuildSector => "AllocatedRebuildSector",
        /// See [`Event::AllocatedUnsealSector`].
        AllocatedUnsealSector => "AllocatedUnsealSector",
        /// See [`Event::AllocatedWindowPostJob`].
        AllocatedWindowPostJob => "Allocated",
        /// See [`Event::AcquireDeals`].
        AcquireDeals => "AcquireDeals",
        /// See [`Event::AddPiece`].
        AddPiece => "AddPiece",
        /// See [`Event::BuildTreeD`].
        BuildTreeD => "BuildTreeD",
        /// See [`Event::AssignTicket`].
        AssignTicket => "AssignTicket",
        /// See [`Event::Pc1`].
        Pc1 => "PC1",
        /// See [`Event::Pc2`].
        Pc2 => "PC2",
        /// See [`Event::Pc2NeedSyntheticProof`].
        Pc2NeedSyntheticProof => "PC2NeedSyntheticProof",
        /// See [`Event::SyntheticPoRep`].
        SyntheticPoRep => "SyntheticPoRep",
        /// See [`Event::SubmitPreCommit`].
        SubmitPreCommit => "SubmitPC",
        /// See [`Event::CheckPreCommit`].
        CheckPreCommit => "CheckPC",
        /// See [`Event::ReSubmitPreCommit`].
        ReSubmitPreCommit => "ReSubmitPC",
        /// See [`Event::Persist`].
        Persist => "Persist",
        /// See [`Event::SubmitPersistance`].
        SubmitPersistance => "SubmitPersistance",
        /// See [`Event::AssignSeed`].
        AssignSeed => "AssignSeed",
        /// See [`Event::C1`].
        C1 => "C1",
        /// See [`Event::C2`].
        C2 => "C2",
        /// See [`Event::SubmitProof`].
        SubmitProof => "SubmitProof",
        /// See [`Event::ReSubmitProof`].
        ReSubmitProof => "ReSubmitProof",
        /// See [`Event::Finish`].
        Finish => "Finish",
        /// See [`Event::SnapEncode`].
        SnapEncode => "SnapEncode",
        /// See [`Event::SnapProve`].
        SnapProve => "SnapProve",
        /// See [`Event::RePersist`].
        RePersist => "RePersist",
        /// See [`Event::CheckSealed`].
        CheckSealed => "CheckSealed",
        /// See [`Event::SkipSnap`].
        SkipSnap => "SkipSnap",
        /// See [`Event::Unsealed`].
        Unsealed => "Unsealed",
        /// See [`Event::UploadPieceDone`].
        UploadPieceDone => "UploadPieceDone",
        /// See [`Event::Generate`].
        Generate => "Generate",
        /// See [`Event::Wait`].
        Wait => "Wait",
        /// See [`Event::Failed`].
        Failed => "Failed",
        /// See [`Event::Abort`].
        Abort => "Abort",
        /// See [`Event::Pause`].
        Pause => "Pause",
        /// See [`Event::Resume`].
        Resume => "Resume",
    }
}

impl Event {
    /// The event's name without its payload.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Allocate(_) => EventKind::Allocate,
            Event::AllocatedSnapUpSector(_) => EventKind::AllocatedSnapUpSector,
            Event::AllocatedRebuildSector(_) => EventKind::AllocatedRebuildSector,
            Event::AllocatedUnsealSector(_) => EventKind::AllocatedUnsealSector,
            Event::AllocatedWindowPostJob(_) => EventKind::AllocatedWindowPostJob,
            Event::AcquireDeals(_) => EventKind::AcquireDeals,
            Event::AddPiece(_) => EventKind::AddPiece,
            Event::BuildTreeD => EventKind::BuildTreeD,
            Event::AssignTicket => EventKind::AssignTicket,
            Event::Pc1 { .. } => EventKind::Pc1,
            Event::Pc2(_) => EventKind::Pc2,
            Event::Pc2NeedSyntheticProof(_) => EventKind::Pc2NeedSyntheticProof,
            Event::SyntheticPoRep => EventKind::SyntheticPoRep,
            Event::SubmitPreCommit => EventKind::SubmitPreCommit,
            Event::CheckPreCommit => EventKind::CheckPreCommit,
            Event::ReSubmitPreCommit => EventKind::ReSubmitPreCommit,
            Event::Persist(_) => EventKind::Persist,
            Event::SubmitPersistance => EventKind::SubmitPersistance,
            Event::AssignSeed(_) => EventKind::AssignSeed,
            Event::C1(_) => EventKind::C1,
            Event::C2(_) => EventKind::C2,
            Event::SubmitProof => EventKind::SubmitProof,
            Event::ReSubmitProof => EventKind::ReSubmitProof,
            Event::Finish => EventKind::Finish,
            Event::SnapEncode(_) => EventKind::SnapEncode,
            Event::SnapProve(_) => EventKind::SnapProve,
            Event::RePersist => EventKind::RePersist,
            Event::CheckSealed => EventKind::CheckSealed,
            Event::SkipSnap => EventKind::SkipSnap,
            Event::Unsealed(_) => EventKind::Unsealed,
            Event::UploadPieceDone => EventKind::UploadPieceDone,
            Event::Generate(_) => EventKind::Generate,
            Event::Wait { .. } => EventKind::Wait,
            Event::Failed(_) => EventKind::Failed,
            Event::Abort(_) => EventKind::Abort,
            Event::Pause => EventKind::Pause,
            Event::Resume(_) => EventKind::Resume,
        }
    }
}

impl EventKind {
    /// Events that any non-terminal state accepts, handled by the machine itself rather
    /// than by a plan's table.
    pub const fn is_control(self) -> bool {
        matches!(
            self,
            EventKind::Wait
                | EventKind::Failed
                | EventKind::Abort
                | EventKind::Pause
                | EventKind::Resume
        )
    }
}
