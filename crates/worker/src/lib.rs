//! The sealing worker: the daemon (sealing threads that pull work from the manager and
//! seal whole sectors on one machine, the compute pool their stages share, the admin
//! API) and the operator's tools around it (plans, sealing stores, processors,
//! parameters, `config check`).
//!
//! The daemon is `daemon::run`; one thread's loop is `sealing_thread`; everything else
//! is a part they use, each tested on its own against real components.

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
