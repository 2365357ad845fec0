//! The processor scheduler: per-stage slots with CPU, GPU and memory budgets (skeleton).
//!
//! This crate will own compute planning on a worker: the `[processors]` configuration,
//! the slots of each stage and their budgets, the queue of sealing threads waiting for a
//! slot, and the child processes (built-in or external) that run a stage. Its accounting
//! will be pure (time and inputs as arguments); spawning lives in a thin driver.
//!
//! Nothing is implemented yet; issue 3 fills it.
