//! What the driver must do next for a sector, derived from its state and record alone.
//!
//! Actions borrow their inputs from the record, so a large C1 output is never copied to
//! describe the C2 that consumes it. Every action is safe to perform again after a crash:
//! the driver persists the transition before acting on it, and after a restart it simply
//! asks for the action of the persisted state again.

use crate::event::{Event, EventKind};
use crate::failure::Failure;
use crate::names::named_enum;
use crate::plan::Plan;
use crate::record::{PauseCause, SectorData, SectorRecord};
use crate::state::State;
use crate::time::Timestamp;
use crate::types::{
    AllocatedSector, Blob, DealPiece, OpaqueOutput, PieceInfo, PreCommitOutput, SealedReplica,
    Seed, SnapEncodeOutput, Ticket, UnsealRequest, WindowPostJob, WindowPostOutcome,
};

/// A name that is not one of the compute stages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown stage {name:?}: expected one of add_pieces, tree_d, pc1, pc2, synth_proof, c1, c2, snap_encode, snap_prove, unseal, transfer, window_post"
)]
pub struct UnknownStage {
    /// The name that was given.
    pub name: String,
}

named_enum! {
    /// A compute stage, named as the `[processors.<stage>]` and `limitation` keys name it.
    pub enum Stage (unknown: UnknownStage) {
        /// Write pieces into the staged sector file.
        AddPieces => "add_pieces",
        /// Build the data tree.
        TreeD => "tree_d",
        /// PreCommit phase 1 (SDR labelling).
        Pc1 => "pc1",
        /// PreCommit phase 2 (column and replica trees).
        Pc2 => "pc2",
        /// Synthetic PoRep proofs.
        SyntheticProof => "synth_proof",
        /// Commit phase 1 (vanilla proofs).
        C1 => "c1",
        /// Commit phase 2 (the SNARK).
        C2 => "c2",
        /// Encode new data into a replica.
        SnapEncode => "snap_encode",
        /// The vanilla proofs of a replica update.
        SnapVanilla => "snap_vanilla",
        /// Prove a replica update (the SNARK).
        SnapProve => "snap_prove",
        /// Recover a piece from a replica.
        Unseal => "unseal",
        /// Move files (here: deliver an unsealed piece).
        Transfer => "transfer",
        /// Generate a window PoSt.
        WindowPost => "window_post",
        /// Generate a winning PoSt.
        WinningPost => "winning_post",
        /// The vanilla half of a PoSt, where the replicas are.
        PostVanilla => "post_vanilla",
        /// The SNARK half of a PoSt, from vanilla proofs.
        PostSnark => "post_snark",
    }
}

/// A computation to run through the processor scheduler, with its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageTask<'a> {
    /// Stage the pieces; an empty list seals a CC sector. Answers `AddPiece`.
    AddPieces {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The pieces to write.
        deals: &'a [DealPiece],
    },
    /// Build tree-d over the staged pieces. Answers `BuildTreeD`.
    TreeD {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The staged pieces.
        pieces: &'a [PieceInfo],
        /// A CC sector may link the precomputed static tree-d instead.
        committed_capacity: bool,
    },
    /// PC1. With no ticket, the driver draws one from the manager once the PC1 slot is
    /// taken, so the ticket is as fresh as possible. Answers `PC1` with the ticket used.
    Pc1 {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The ticket to seal with, if fixed (rebuild); `None` draws a fresh one.
        ticket: Option<&'a Ticket>,
        /// The staged pieces.
        pieces: &'a [PieceInfo],
    },
    /// PC2. Answers `PC2` or `PC2NeedSyntheticProof`.
    Pc2 {
        /// The sector.
        sector: &'a AllocatedSector,
        /// PC1's output.
        pc1_output: &'a OpaqueOutput,
    },
    /// Synthetic PoRep proofs. Answers `SyntheticPoRep`.
    SyntheticProof {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The ticket sealed with.
        ticket: &'a Ticket,
        /// PC2's output.
        pre_commit: &'a PreCommitOutput,
        /// The staged pieces.
        pieces: &'a [PieceInfo],
    },
    /// C1 with the interactive seed. Answers `C1`.
    C1 {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The ticket sealed with.
        ticket: &'a Ticket,
        /// The seed.
        seed: &'a Seed,
        /// PC2's output.
        pre_commit: &'a PreCommitOutput,
        /// The staged pieces.
        pieces: &'a [PieceInfo],
    },
    /// A rebuild's integrity check: C1 with the ticket as seed. Answers `CheckSealed`.
    CheckSealed {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The ticket sealed with, also used as the seed.
        ticket: &'a Ticket,
        /// PC2's output.
        pre_commit: &'a PreCommitOutput,
        /// The staged pieces.
        pieces: &'a [PieceInfo],
    },
    /// C2. Answers `C2`.
    C2 {
        /// The sector.
        sector: &'a AllocatedSector,
        /// C1's output.
        c1_output: &'a OpaqueOutput,
    },
    /// Encode new data into a replica. Answers `SnapEncode`.
    SnapEncode {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The replica to encode into: a persistent store's copy (snap-up), or `None` for
        /// the replica just rebuilt in the sealing store.
        replica: Option<&'a SealedReplica>,
        /// The new data's staged pieces.
        pieces: &'a [PieceInfo],
    },
    /// Prove the replica update. Answers `SnapProve`.
    SnapProve {
        /// The sector.
        sector: &'a AllocatedSector,
        /// CommR of the replica before the update.
        comm_r_old: &'a crate::types::Commitment,
        /// The encoding's output.
        encoded: &'a SnapEncodeOutput,
    },
    /// Unseal a piece. Answers `Unsealed`.
    Unseal {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The ticket it was sealed with.
        ticket: &'a Ticket,
        /// The piece.
        request: &'a UnsealRequest,
    },
    /// Deliver the unsealed piece where the manager says, then tell it. Answers
    /// `UploadPieceDone`.
    UploadUnsealed {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The piece.
        request: &'a UnsealRequest,
    },
    /// Generate a window PoSt. Answers `Generate`; a processor failure is an outcome
    /// to hand back to the manager, not a failure of the thread.
    WindowPost {
        /// The job.
        job: &'a WindowPostJob,
    },
}

impl StageTask<'_> {
    /// The processor stage this task runs on.
    pub fn stage(&self) -> Stage {
        match self {
            StageTask::AddPieces { .. } => Stage::AddPieces,
            StageTask::TreeD { .. } => Stage::TreeD,
            StageTask::Pc1 { .. } => Stage::Pc1,
            StageTask::Pc2 { .. } => Stage::Pc2,
            StageTask::SyntheticProof { .. } => Stage::SyntheticProof,
            StageTask::C1 { .. } | StageTask::CheckSealed { .. } => Stage::C1,
            StageTask::C2 { .. } => Stage::C2,
            StageTask::SnapEncode { .. } => Stage::SnapEncode,
            StageTask::SnapProve { .. } => Stage::SnapProve,
            StageTask::Unseal { .. } => Stage::Unseal,
            StageTask::UploadUnsealed { .. } => Stage::Transfer,
            StageTask::WindowPost { .. } => Stage::WindowPost,
        }
    }
}

/// A call to the sector manager, with its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagerCall<'a> {
    /// `Venus.AllocateSector`. Answers `Allocate`, or `Wait` when nothing is available.
    AllocateSector,
    /// `Venus.AllocateSanpUpSector`. Answers `AllocatedSnapUpSector` or `Wait`.
    AllocateSnapUpSector,
    /// `Venus.AllocateRebuildSector`. Answers `AllocatedRebuildSector` or `Wait`.
    AllocateRebuildSector,
    /// `Venus.AllocateUnsealSector`. Answers `AllocatedUnsealSector` or `Wait`.
    AllocateUnsealSector,
    /// `Venus.WdPoStAllocateJobs`. Answers `Allocated` or `Wait`.
    AllocateWindowPostJob,
    /// `Venus.AcquireDeals` (or no call at all when deals are disabled: an empty list).
    /// Answers `AcquireDeals`, or `Wait` when deals are required and none are available.
    AcquireDeals {
        /// The sector.
        sector: &'a AllocatedSector,
    },
    /// `Venus.SubmitPreCommit`. Answers `SubmitPC`.
    SubmitPreCommit {
        /// The sector.
        sector: &'a AllocatedSector,
        /// PC2's output.
        pre_commit: &'a PreCommitOutput,
        /// The ticket sealed with.
        ticket: &'a Ticket,
        /// Ask the manager to replace an earlier submission.
        reset: bool,
    },
    /// `Venus.PollPreCommitState`. Answers `CheckPC`, `ReSubmitPC` or `Wait`.
    PollPreCommitState {
        /// The sector.
        sector: &'a AllocatedSector,
    },
    /// `Venus.SubmitPersistedEx`. Answers `SubmitPersistance` (sealer) or, for a rebuild,
    /// `SubmitPersistance` which finishes it.
    SubmitPersisted {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The persistent store holding the files.
        instance: &'a str,
        /// Whether the files are a snap-up's update files.
        is_upgrade: bool,
    },
    /// `Venus.WaitSeed`. Answers `AssignSeed`, or `Wait` until the seed epoch.
    WaitSeed {
        /// The sector.
        sector: &'a AllocatedSector,
    },
    /// `Venus.SubmitProof`. Answers `SubmitProof`.
    SubmitProof {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The proof.
        proof: &'a Blob,
        /// Ask the manager to replace an earlier submission.
        reset: bool,
    },
    /// `Venus.PollProofState`. Answers `Finish`, `ReSubmitProof` or `Wait`.
    PollProofState {
        /// The sector.
        sector: &'a AllocatedSector,
    },
    /// `Venus.SubmitSnapUpProof`. Answers `Finish`, or `RePersist` when the manager
    /// cannot see the files.
    SubmitSnapUpProof {
        /// The sector.
        sector: &'a AllocatedSector,
        /// The encoding's output (new CommR and CommD).
        encoded: &'a SnapEncodeOutput,
        /// The persistent store holding the update files.
        instance: &'a str,
        /// The deal pieces encoded.
        deals: &'a [DealPiece],
        /// The replica-update proof.
        proof: &'a Blob,
    },
    /// `Venus.WdPoStFinishJob`. Answers `Finish`.
    FinishWindowPostJob {
        /// The job.
        job: &'a WindowPostJob,
        /// Its outcome.
        outcome: &'a WindowPostOutcome,
    },
}

impl ManagerCall<'_> {
    /// The JSON-RPC method name, as the reference manager serves it.
    pub const fn method(&self) -> &'static str {
        match self {
            ManagerCall::AllocateSector => "Venus.AllocateSector",
            ManagerCall::AllocateSnapUpSector => "Venus.AllocateSanpUpSector",
            ManagerCall::AllocateRebuildSector => "Venus.AllocateRebuildSector",
            ManagerCall::AllocateUnsealSector => "Venus.AllocateUnsealSector",
            ManagerCall::AllocateWindowPostJob => "Venus.WdPoStAllocateJobs",
            ManagerCall::AcquireDeals { .. } => "Venus.AcquireDeals",
            ManagerCall::SubmitPreCommit { .. } => "Venus.SubmitPreCommit",
            ManagerCall::PollPreCommitState { .. } => "Venus.PollPreCommitState",
            ManagerCall::SubmitPersisted { .. } => "Venus.SubmitPersistedEx",
            ManagerCall::WaitSeed { .. } => "Venus.WaitSeed",
            ManagerCall::SubmitProof { .. } => "Venus.SubmitProof",
            ManagerCall::PollProofState { .. } => "Venus.PollProofState",
            ManagerCall::SubmitSnapUpProof { .. } => "Venus.SubmitSnapUpProof",
            ManagerCall::FinishWindowPostJob { .. } => "Venus.WdPoStFinishJob",
        }
    }
}

/// Which files go to a persistent store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistFiles {
    /// `sealed/<sector>` and its cache files.
    Sealed,
    /// `update/<sector>` and its cache files (a replica update).
    Update,
}

/// How a sector ended, for the driver's final report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending<'a> {
    /// The plan completed: `Venus.ReportFinalized` (or nothing for window-PoSt jobs, which
    /// the manager already knows are done).
    Finished,
    /// The sector was dropped: `Venus.ReportAborted` with the reason (or, for an unseal,
    /// `AchieveUnsealSector` with it, so the requester learns why).
    Aborted {
        /// Why.
        reason: &'a str,
    },
}

/// What the driver must do for a sector now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Call the manager and feed back the event its answer maps to.
    Call(ManagerCall<'a>),
    /// Run a computation through the processor scheduler and feed back its event.
    Run(StageTask<'a>),
    /// Reserve a persistent store through the manager, move the files there durably and
    /// feed back `Persist` with the store's name.
    Persist {
        /// The sector.
        sector: &'a AllocatedSector,
        /// Which files.
        files: PersistFiles,
    },
    /// Nothing to do but move on: feed back this event.
    Advance(Event),
    /// Nothing to do until this time; then ask again.
    WaitUntil(Timestamp),
    /// The thread is paused until an operator resumes or aborts the sector.
    AwaitOperator {
        /// When it paused.
        since: Timestamp,
        /// The failure that paused it, if a failure did.
        failure: Option<&'a Failure>,
    },
    /// The sector's story is over: report the ending, clean the sealing store, and
    /// discard the record. Safe to repeat.
    Finalize(Ending<'a>),
}

impl Action<'_> {
    /// The plan events that answer this action. The machine accepts no other plan event,
    /// so a branch the record rules out (a rebuild that was never upgraded cannot take
    /// the upgrade path) cannot be taken by a stray event.
    pub fn answers(&self) -> Vec<EventKind> {
        use EventKind as E;
        match self {
            Action::Call(call) => match call {
                ManagerCall::AllocateSector => vec![E::Allocate],
                ManagerCall::AllocateSnapUpSector => vec![E::AllocatedSnapUpSector],
                ManagerCall::AllocateRebuildSector => vec![E::AllocatedRebuildSector],
                ManagerCall::AllocateUnsealSector => vec![E::AllocatedUnsealSector],
                ManagerCall::AllocateWindowPostJob => vec![E::AllocatedWindowPostJob],
                ManagerCall::AcquireDeals { .. } => vec![E::AcquireDeals],
                ManagerCall::SubmitPreCommit { .. } => vec![E::SubmitPreCommit],
                ManagerCall::PollPreCommitState { .. } => {
                    vec![E::CheckPreCommit, E::ReSubmitPreCommit]
                }
                ManagerCall::SubmitPersisted { .. } => vec![E::SubmitPersistance],
                ManagerCall::WaitSeed { .. } => vec![E::AssignSeed],
                ManagerCall::SubmitProof { .. } => vec![E::SubmitProof],
                ManagerCall::PollProofState { .. } => vec![E::Finish, E::ReSubmitProof],
                ManagerCall::SubmitSnapUpProof { .. } => vec![E::Finish, E::RePersist],
                ManagerCall::FinishWindowPostJob { .. } => vec![E::Finish],
            },
            Action::Run(task) => match task {
                StageTask::AddPieces { .. } => vec![E::AddPiece],
                StageTask::TreeD { .. } => vec![E::BuildTreeD],
                StageTask::Pc1 { .. } => vec![E::Pc1],
                StageTask::Pc2 { .. } => vec![E::Pc2, E::Pc2NeedSyntheticProof],
                StageTask::SyntheticProof { .. } => vec![E::SyntheticPoRep],
                StageTask::C1 { .. } => vec![E::C1],
                StageTask::CheckSealed { .. } => vec![E::CheckSealed],
                StageTask::C2 { .. } => vec![E::C2],
                StageTask::SnapEncode { .. } => vec![E::SnapEncode],
                StageTask::SnapProve { .. } => vec![E::SnapProve],
                StageTask::Unseal { .. } => vec![E::Unsealed],
                StageTask::UploadUnsealed { .. } => vec![E::UploadPieceDone],
                StageTask::WindowPost { .. } => vec![E::Generate],
            },
            Action::Persist { .. } => vec![E::Persist],
            Action::Advance(event) => vec![event.kind()],
            Action::WaitUntil(_) | Action::AwaitOperator { .. } | Action::Finalize(_) => Vec::new(),
        }
    }

    /// A one-line description for logs, tables and the `walk` command.
    pub fn describe(&self) -> String {
        match self {
            Action::Call(call) => format!("call {}", call.method()),
            Action::Run(task) => format!("run {}", task.stage().as_str()),
            Action::Persist {
                files: PersistFiles::Sealed,
                ..
            } => "persist sealed files".to_owned(),
            Action::Persist {
                files: PersistFiles::Update,
                ..
            } => "persist update files".to_owned(),
            Action::Advance(event) => format!("advance with {}", event.kind()),
            Action::WaitUntil(time) => format!("wait until {time}"),
            Action::AwaitOperator { .. } => "await operator".to_owned(),
            Action::Finalize(Ending::Finished) => "finalize as finished".to_owned(),
            Action::Finalize(Ending::Aborted { .. }) => "finalize as aborted".to_owned(),
        }
    }
}

/// The record does not allow any action: only a corrupted record could cause this, since
/// transitions always carry what the next state needs and operator jumps are refused when
/// the target state would lack an input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoAction {
    /// The state's action needs something the record does not have.
    #[error("{plan} sector in state {state} cannot proceed: its record has no {missing}")]
    MissingInput {
        /// The plan.
        plan: Plan,
        /// The state whose action needs the input.
        state: State,
        /// What is missing, in words.
        missing: &'static str,
    },
    /// The record's state is not one of its plan's states.
    #[error("state {state} is not part of plan {plan}")]
    StateNotInPlan {
        /// The plan.
        plan: Plan,
        /// The state.
        state: State,
    },
}

/// The action for `record`'s current state, ignoring pause and backoff.
pub(crate) fn state_action(record: &SectorRecord) -> Result<Action<'_>, NoAction> {
    let plan = record.plan;
    let state = record.state;
    let data = &record.data;
    let need = Need { plan, state, data };
    use Plan as P;
    use State as S;
    Ok(match (plan, state) {
        (_, S::Finished) => Action::Finalize(Ending::Finished),
        (_, S::Aborted) => Action::Finalize(Ending::Aborted {
            reason: record.abort_reason.as_deref().unwrap_or("aborted"),
        }),

        (P::Sealer, S::Empty) => Action::Call(ManagerCall::AllocateSector),
        (P::Sealer, S::Allocated) => Action::Call(ManagerCall::AcquireDeals {
            sector: need.sector()?,
        }),
        (P::Sealer, S::DealsAcquired) => Action::Run(StageTask::AddPieces {
            sector: need.sector()?,
            deals: need.deals()?,
        }),
        (P::Sealer | P::Rebuild, S::PieceAdded) => Action::Run(StageTask::TreeD {
            sector: need.sector()?,
            pieces: need.pieces()?,
            committed_capacity: need.deals()?.iter().all(DealPiece::is_pledge)
                || plan == P::Rebuild && data.upgraded_from_comm_r.is_some(),
        }),
        (P::Sealer, S::TreeDBuilt) => Action::Advance(Event::AssignTicket),
        (P::Sealer, S::TicketAssigned) => Action::Run(StageTask::Pc1 {
            sector: need.sector()?,
            ticket: data.ticket.as_ref(),
            pieces: need.pieces()?,
        }),
        (P::Sealer | P::Rebuild, S::Pc1Done) => Action::Run(StageTask::Pc2 {
            sector: need.sector()?,
            pc1_output: need.pc1_output()?,
        }),
        (P::Sealer | P::Rebuild, S::SyntheticPoRepNeeded) => {
            Action::Run(StageTask::SyntheticProof {
                sector: need.sector()?,
                ticket: need.ticket()?,
                pre_commit: need.pre_commit()?,
                pieces: need.pieces()?,
            })
        }
        (P::Sealer, S::Pc2Done) => Action::Call(ManagerCall::SubmitPreCommit {
            sector: need.sector()?,
            pre_commit: need.pre_commit()?,
            ticket: need.ticket()?,
            reset: data.pre_commit_submitted,
        }),
        (P::Sealer, S::PreCommitSubmitted) => Action::Call(ManagerCall::PollPreCommitState {
            sector: need.sector()?,
        }),
        (P::Sealer, S::PreCommitLanded) => Action::Persist {
            sector: need.sector()?,
            files: PersistFiles::Sealed,
        },
        (P::Sealer, S::Persisted) => Action::Call(ManagerCall::SubmitPersisted {
            sector: need.sector()?,
            instance: need.persisted_instance()?,
            is_upgrade: false,
        }),
        (P::Sealer, S::PersistanceSubmitted) => Action::Call(ManagerCall::WaitSeed {
            sector: need.sector()?,
        }),
        (P::Sealer, S::SeedAssigned) => Action::Run(StageTask::C1 {
            sector: need.sector()?,
            ticket: need.ticket()?,
            seed: need.seed()?,
            pre_commit: need.pre_commit()?,
            pieces: need.pieces()?,
        }),
        (P::Sealer, S::C1Done) => Action::Run(StageTask::C2 {
            sector: need.sector()?,
            c1_output: need.c1_output()?,
        }),
        (P::Sealer, S::C2Done) => Action::Call(ManagerCall::SubmitProof {
            sector: need.sector()?,
            proof: need.proof()?,
            reset: data.proof_submitted,
        }),
        (P::Sealer, S::ProofSubmitted) => Action::Call(ManagerCall::PollProofState {
            sector: need.sector()?,
        }),

        (P::SnapUp, S::Empty) => Action::Call(ManagerCall::AllocateSnapUpSector),
        (P::SnapUp | P::Rebuild, S::Allocated) => Action::Run(StageTask::AddPieces {
            sector: need.sector()?,
            // A rebuild of an upgraded sector first re-seals the original CC sector; the
            // deals are staged again after the integrity check.
            deals: if plan == P::Rebuild && data.upgraded_from_comm_r.is_some() {
                &[]
            } else {
                need.deals()?
            },
        }),
        (P::SnapUp, S::PieceAdded) => Action::Run(StageTask::TreeD {
            sector: need.sector()?,
            pieces: need.pieces()?,
            committed_capacity: false,
        }),
        (P::SnapUp, S::TreeDBuilt) => Action::Run(StageTask::SnapEncode {
            sector: need.sector()?,
            replica: Some(need.sealed_replica()?),
            pieces: need.pieces()?,
        }),
        (P::SnapUp, S::SnapEncoded) => Action::Run(StageTask::SnapProve {
            sector: need.sector()?,
            comm_r_old: &need.sealed_replica()?.comm_r,
            encoded: need.snap_encode()?,
        }),
        (P::SnapUp, S::SnapProved) => Action::Persist {
            sector: need.sector()?,
            files: PersistFiles::Update,
        },
        (P::SnapUp, S::Persisted) => Action::Call(ManagerCall::SubmitSnapUpProof {
            sector: need.sector()?,
            encoded: need.snap_encode()?,
            instance: need.persisted_instance()?,
            deals: need.deals()?,
            proof: need.snap_proof()?,
        }),

        (P::Rebuild, S::Empty) => Action::Call(ManagerCall::AllocateRebuildSector),
        (P::Rebuild, S::TreeDBuilt) => Action::Run(StageTask::Pc1 {
            sector: need.sector()?,
            ticket: Some(need.ticket()?),
            pieces: need.pieces()?,
        }),
        (P::Rebuild, S::Pc2Done) => Action::Run(StageTask::CheckSealed {
            sector: need.sector()?,
            ticket: need.ticket()?,
            pre_commit: need.pre_commit()?,
            pieces: need.pieces()?,
        }),
        (P::Rebuild, S::SealedChecked) => {
            if data.upgraded_from_comm_r.is_some() {
                Action::Run(StageTask::AddPieces {
                    sector: need.sector()?,
                    deals: need.deals()?,
                })
            } else {
                Action::Advance(Event::SkipSnap)
            }
        }
        (P::Rebuild, S::SnapPieceAdded) => Action::Run(StageTask::TreeD {
            sector: need.sector()?,
            pieces: need.snap_pieces()?,
            committed_capacity: false,
        }),
        (P::Rebuild, S::SnapTreeDBuilt) => Action::Run(StageTask::SnapEncode {
            sector: need.sector()?,
            replica: None,
            pieces: need.snap_pieces()?,
        }),
        (P::Rebuild, S::SnapEncoded) => Action::Run(StageTask::SnapProve {
            sector: need.sector()?,
            comm_r_old: need.upgraded_from_comm_r()?,
            encoded: need.snap_encode()?,
        }),
        (P::Rebuild, S::SnapDone) => Action::Persist {
            sector: need.sector()?,
            files: if data.upgraded_from_comm_r.is_some() {
                PersistFiles::Update
            } else {
                PersistFiles::Sealed
            },
        },
        (P::Rebuild, S::Persisted) => Action::Call(ManagerCall::SubmitPersisted {
            sector: need.sector()?,
            instance: need.persisted_instance()?,
            is_upgrade: data.upgraded_from_comm_r.is_some(),
        }),

        (P::Unseal, S::Empty) => Action::Call(ManagerCall::AllocateUnsealSector),
        (P::Unseal, S::Allocated) => Action::Run(StageTask::Unseal {
            sector: need.sector()?,
            ticket: need.ticket()?,
            request: need.unseal_request()?,
        }),
        (P::Unseal, S::Unsealed) => Action::Run(StageTask::UploadUnsealed {
            sector: need.sector()?,
            request: need.unseal_request()?,
        }),

        (P::WindowPost, S::Empty) => Action::Call(ManagerCall::AllocateWindowPostJob),
        (P::WindowPost, S::Allocated) => Action::Run(StageTask::WindowPost {
            job: need.window_post_job()?,
        }),
        (P::WindowPost, S::Generated) => Action::Call(ManagerCall::FinishWindowPostJob {
            job: need.window_post_job()?,
            outcome: need.window_post_outcome()?,
        }),

        (_, _) => return Err(NoAction::StateNotInPlan { plan, state }),
    })
}

/// Fetches a state's inputs from the record, naming what is missing.
struct Need<'a> {
    plan: Plan,
    state: State,
    data: &'a SectorData,
}

macro_rules! needs {
    ($( $method:ident -> $type:ty = $field:ident $(. $convert:ident())? , $words:literal; )+) => {
        impl<'a> Need<'a> {
            $(
                fn $method(&self) -> Result<$type, NoAction> {
                    self.data.$field.as_ref()$(.map(|value| value.$convert()))?.ok_or(NoAction::MissingInput {
                        plan: self.plan,
                        state: self.state,
                        missing: $words,
                    })
                }
            )+
        }
    };
}

needs! {
    sector -> &'a AllocatedSector = allocated, "allocated sector";
    deals -> &'a [DealPiece] = deals.as_slice(), "deals";
    pieces -> &'a [PieceInfo] = pieces.as_slice(), "staged pieces";
    ticket -> &'a Ticket = ticket, "ticket";
    pc1_output -> &'a OpaqueOutput = pc1_output, "PC1 output";
    pre_commit -> &'a PreCommitOutput = pre_commit, "PC2 output";
    persisted_instance -> &'a str = persisted_instance.as_str(), "persistent store";
    seed -> &'a Seed = seed, "seed";
    c1_output -> &'a OpaqueOutput = c1_output, "C1 output";
    proof -> &'a Blob = proof, "proof";
    sealed_replica -> &'a SealedReplica = sealed_replica, "replica to upgrade";
    upgraded_from_comm_r -> &'a crate::types::Commitment = upgraded_from_comm_r, "original CommR";
    snap_pieces -> &'a [PieceInfo] = snap_pieces.as_slice(), "staged upgrade pieces";
    snap_encode -> &'a SnapEncodeOutput = snap_encode, "snap encoding output";
    snap_proof -> &'a Blob = snap_proof, "replica-update proof";
    unseal_request -> &'a UnsealRequest = unseal_request, "unseal request";
    window_post_job -> &'a WindowPostJob = window_post_job, "window-PoSt job";
    window_post_outcome -> &'a WindowPostOutcome = window_post_outcome, "window-PoSt outcome";
}

/// The action for a paused sector.
pub(crate) fn paused_action(record: &SectorRecord) -> Option<Action<'_>> {
    record.pause.as_ref().map(|pause| Action::AwaitOperator {
        since: pause.since,
        failure: match &pause.cause {
            PauseCause::Operator => None,
            PauseCause::Failure { failure } => Some(failure),
        },
    })
}
