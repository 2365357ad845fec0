//! The sealing worker (early): command-line tools over the sector state machine and the
//! worker configuration.
//!
//! The sealing threads and the admin API arrive with issue 7. What exists now is what an
//! operator can already use: printing a plan's transition table and walking a sector
//! through a plan with simulated, always-successful steps, to see which manager calls and
//! stages a sector goes through, in which order; preparing sealing stores and checking
//! that a plan of them fits its disks; checking a `[processors]` section against the
//! machine; and reading a whole worker configuration (`config check`), with each
//! thread's settings and the layer each comes from.

pub mod admin_api;
pub mod calls;
pub mod compute;
pub mod config;
pub mod config_check;
pub mod daemon;
pub mod manager_client;
pub mod params;
pub mod processors;
pub mod record_store;
pub mod sealing_thread;
pub mod stages;
pub mod store;
pub mod walk;
