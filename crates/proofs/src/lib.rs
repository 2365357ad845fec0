//! The proofs adapter: filecoin-proofs-api behind the reference's task JSON.
//!
//! Everything the rest of sealcluster knows about proofs passes through here: the task
//! and output shapes of each stage ([`tasks`], the same JSON damocles processors speak),
//! the backends that run them ([`backend`]: real proofs, or a fake for orchestration
//! tests that is never the default), and the Groth parameters for test sector sizes,
//! made locally ([`params`]). The built-in processors (`sealing-worker processor
//! <stage>`) are [`backend::ProofBackend`]s served with `proc_sched::serve_stage`.

pub mod backend;
pub mod params;
pub mod pieces;
pub mod tasks;

pub use backend::{FakeProofs, FakeProofsConfig, ProofBackend, RealProofs, SealToVerify};

/// filecoin-proofs-api itself, for callers that need its types (commitments, ids).
pub use filecoin_proofs_api as api;
