//! The states a sector can be in, named as the reference names them.

use crate::names::named_enum;

/// A name that is not one of the states.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {name:?}; the states are: {}", State::ALL.iter().map(|state| state.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownState {
    /// The name that was given.
    pub name: String,
}

named_enum! {
    /// Where a sector stands. One enum serves every plan; each plan's table says which
    /// states it uses. The names are the reference's, so `ReportState`, the admin API and
    /// `resume --state` keep working with existing tooling.
    pub enum State (unknown: UnknownState) {
        /// Nothing allocated yet.
        Empty => "Empty",
        /// The manager allocated a sector (or a job) to this thread.
        Allocated => "Allocated",
        /// Deals are known (possibly none: a CC sector).
        DealsAcquired => "DealsAcquired",
        /// Pieces are written into the staged sector file.
        PieceAdded => "PieceAdded",
        /// The data tree (tree-d) is built.
        TreeDBuilt => "TreeDBuilt",
        /// Ready for PC1; the ticket is drawn when the PC1 slot is taken.
        TicketAssigned => "TicketAssigned",
        /// PC1 finished and its output is recorded.
        Pc1Done => "PC1Done",
        /// PC2 finished and its output is recorded.
        Pc2Done => "PC2Done",
        /// PC2 finished for a synthetic-PoRep proof type; synthetic proofs come next.
        SyntheticPoRepNeeded => "SyntheticPoRepNeeded",
        /// The manager accepted the PreCommit.
        PreCommitSubmitted => "PCSubmitted",
        /// The PreCommit landed on chain.
        PreCommitLanded => "PCLanded",
        /// Sector files are in a persistent store.
        Persisted => "Persisted",
        /// The manager knows which persistent store holds the files.
        PersistanceSubmitted => "PersistanceSubmitted",
        /// The interactive seed is drawn.
        SeedAssigned => "SeedAssigned",
        /// C1 finished and its output is recorded.
        C1Done => "C1Done",
        /// C2 finished and the proof is recorded.
        C2Done => "C2Done",
        /// The manager accepted the proof.
        ProofSubmitted => "ProofSubmitted",
        /// Done: the plan completed. Terminal.
        Finished => "Finished",
        /// Given up: the sector is dropped. Terminal.
        Aborted => "Aborted",
        /// New data is encoded into the replica (snap-up).
        SnapEncoded => "SnapEncoded",
        /// The replica-update proof is generated.
        SnapProved => "SnapProved",
        /// The rebuilt replica passed its integrity check.
        SealedChecked => "SealedChecked",
        /// The upgrade's pieces are staged again (rebuild of a snapped sector).
        SnapPieceAdded => "SnapPieceAdded",
        /// The upgrade's tree-d is built again (rebuild of a snapped sector).
        SnapTreeDBuilt => "SnapTreeDBuilt",
        /// The rebuild's upgrade steps are done (or skipped).
        SnapDone => "SnapDone",
        /// The requested piece is unsealed.
        Unsealed => "Unsealed",
        /// A window PoSt is generated (or failed) and waits to be handed back.
        Generated => "Generated",
    }
}

impl State {
    /// A terminal state absorbs every event: the sector's story is over.
    pub const fn is_terminal(self) -> bool {
        matches!(self, State::Finished | State::Aborted)
    }
}
