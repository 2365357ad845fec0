//! The processor scheduler: who runs which stage where, within enforced budgets.
//!
//! A worker plans its compute with `[[processors.<stage>]]`: each entry is a child
//! process with a slice of the machine (CPUs, GPUs, memory) and a number of slots, and
//! stages of different sectors share those slots. This crate holds the pure accounting
//! that decides which waiting task starts on which processor ([`accounting`]), the
//! external-processor protocol ([`protocol`]) with both of its ends: the daemon's side
//! that runs and supervises a child ([`child`]) and the processor's side
//! ([`consumer`]), the enforcement of each processor's CPU, GPU and memory budget
//! ([`budget`]), and the `[processors]` configuration with its start-up checks
//! ([`config`]).

pub mod accounting;
pub mod budget;
pub mod child;
pub mod config;
pub mod consumer;
pub mod protocol;

pub use accounting::{
    Grant, ProcessorLimits, Scheduler, SchedulerLimits, StageFigures, TaskOutcome, TaskTicket,
    UnknownTicket, WaitReason,
};
pub use budget::{CgroupSupport, CpuSet, LaunchSpec};
pub use child::{
    ChildState, ExternalProcessor, Health, ProcessError, ProcessorCommand, SpawnError,
};
pub use consumer::serve_stage;
pub use protocol::{EMPTY_STAGE, Request, Response, ready_line};
