//! The sealing worker (early): command-line tools over the sector state machine.
//!
//! The sealing threads, processors and admin API arrive with later issues (3 and 7).
//! What exists now is what an operator can already use: printing a plan's transition
//! table and walking a sector through a plan with simulated, always-successful steps, to
//! see which manager calls and stages a sector goes through, in which order; and
//! preparing sealing stores and checking that a plan of them fits its disks; and checking
//! a `[processors]` section against the machine.

pub mod params;
pub mod processors;
pub mod store;
pub mod walk;
