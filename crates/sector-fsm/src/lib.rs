//! The pure state machine of a sector, for every plan a sealing thread runs.
//!
//! This crate decides; it never acts. It performs no I/O, reads no clock (time is an
//! argument), spawns nothing and depends on no async runtime; `clippy.toml` bans the
//! ways to break that. A driver (the worker's sealing thread) feeds it events and the
//! current [`Timestamp`], persists the [`SectorRecord`] it keeps, and performs the
//! [`Action`]s it asks for. See [`machine`] for the loop.
//!
//! Defects of the reference fixed by design:
//! - a step's output is carried by its event and recorded by the same transition that
//!   moves the state, so finished work survives a crash or pause;
//! - the record names states and plans and carries a format version;
//! - failure handling is a pure policy whose retry counter resets on progress and whose
//!   backoff grows and is capped;
//! - operator jumps are validated against the plan and the record;
//! - every [`Step`] names the event that caused it.

pub mod action;
mod damocles;
pub mod event;
pub mod failure;
pub mod machine;
mod names;
pub mod plan;
pub mod record;
pub mod replies;
pub mod state;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod types;

pub use action::{
    Action, Ending, ManagerCall, NoAction, PersistFiles, Stage, StageTask, UnknownStage,
};
pub use event::{Event, EventKind, WaitReason};
pub use failure::{Failure, FailureDecision, FailureLevel, RetryPolicy};
pub use machine::{JumpError, Outcome, Rejection, Sector, Step};
pub use plan::Plan;
pub use record::{CURRENT_FORMAT_VERSION, DecodeError, SectorRecord};
pub use state::State;
pub use time::Timestamp;
