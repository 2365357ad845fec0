//! The plans a sealing thread can run, each a different path through the sector states.

use crate::names::named_enum;

/// A name that is not one of the plans.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan {name:?}: expected one of sealer, snapup, rebuild, unseal, wdpost")]
pub struct UnknownPlan {
    /// The name that was given.
    pub name: String,
}

named_enum! {
    /// What a sealing thread does with its sealing store, as `plan = "…"` in the worker's
    /// configuration.
    pub enum Plan (unknown: UnknownPlan) {
        /// Seal new sectors, CC or with deals, through PreCommit and ProveCommit.
        Sealer => "sealer",
        /// Encode deals into existing CC sectors (SnapDeals).
        SnapUp => "snapup",
        /// Seal a lost sector again from its ticket and pieces.
        Rebuild => "rebuild",
        /// Recover a piece's original data from a sealed sector.
        Unseal => "unseal",
        /// Generate window PoSt for jobs handed out by the manager.
        WindowPost => "wdpost",
    }
}
