//! The processor scheduler: who runs which stage where, within enforced budgets.
//!
//! A worker plans its compute with `[[processors.<stage>]]`: each entry is a child
//! process with a slice of the machine (CPUs, GPUs, memory) and a number of slots, and
//! stages of different sectors share those slots. This crate holds the pure accounting
//! that decides which waiting task starts on which processor ([`accounting`]); later
//! modules add the configuration, the processor protocol and the child processes.

pub mod accounting;

pub use accounting::{
    Grant, ProcessorLimits, Scheduler, SchedulerLimits, TaskTicket, UnknownTicket, WaitReason,
};
