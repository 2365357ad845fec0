//! WindowPoSt and WinningPoSt, decoupled from sealing (skeleton).
//!
//! This crate will own the pure deadline logic (proving periods, challenge and open
//! epochs, partition batching, recovery declarations) and the runners that generate,
//! verify and submit proofs, deployable on a host of their own.
//!
//! Nothing is implemented yet; issue 8 fills it.
