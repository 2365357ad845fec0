//! Sealing stores, persistent-store selection and crash-safe file moves (skeleton).
//!
//! This crate will own the on-disk side of storage: initialising and claiming a sealing
//! store with an advisory file lock held for a thread's life, planning how many sealing
//! stores fit on a disk, choosing a persistent store by weight and free space with durable
//! reservations, and moving a finished sector's files there with fsync and atomic renames.
//! It must never decide a sector's state: that is `sector-fsm`'s job.
//!
//! Nothing is implemented yet; issue 4 fills it. The crate exists now so the workspace
//! has its final shape and ARCHITECTURE.md can describe every boundary.
