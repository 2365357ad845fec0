//! A Lotus full-node JSON-RPC client (skeleton).
//!
//! This crate will own every conversation with the chain: head changes, randomness,
//! miner state, gas estimation and message submission, against a real Lotus node or the
//! devnet chain. Only the manager and the poster may depend on it; workers never talk to
//! the chain.
//!
//! Nothing is implemented yet; issue 5 fills it.
