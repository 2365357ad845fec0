//! WindowPoSt and WinningPoSt, decoupled from sealing.
//!
//! [`deadline`] is the pure core: where a proving period stands, when a deadline's proof
//! is started and submitted, what it covers after the file checks, how partitions are
//! split into messages and which recoveries to declare. The [`runner`] that carries
//! those decisions out against a chain node and a prover is built on it. [`winning`]
//! answers block producers' winning PoSt requests with the runner's checked proof path.

pub mod deadline;
pub mod runner;
pub mod winning;
