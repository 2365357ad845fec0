//! The on-disk side of sealing: sealing stores, persistent stores and crash-safe moves.
//!
//! A sealing thread owns one local sealing store and seals one sector there at a time
//! ([`sealing_store`], claimed with an advisory lock from [`lock`]); how many such stores
//! fit on a disk is planned and checked at start-up ([`capacity`]). A finished sector's
//! files move into a shared persistent store ([`persist_store`]) that the manager picks by
//! weight and free space, recording the space it promised in a ledger that survives
//! restarts ([`reservation`] decides, [`ledger_file`] keeps it durable). The move itself
//! ([`transfer`]) never shows a partially written file under its final name and removes
//! the local copy only once the persistent one is durable.
//!
//! This crate never decides a sector's state; that is `sector-fsm`'s job. Its errors say
//! which failure level they are, so the driver can feed the state machine directly.

pub mod capacity;
pub mod crashsafe;
pub mod layout;
pub mod ledger_file;
pub mod lock;
pub mod persist_store;
pub mod reservation;
pub mod sealing_store;
pub mod sector_size;
pub mod transfer;

pub use capacity::{
    FilesystemPlan, OversubscribedPlan, SealingStoreDemand, check_sealing_plan,
    sealing_stores_that_fit,
};
pub use layout::{ReplicaKind, SealingStoreLayout, persisted_files};
pub use ledger_file::{DurableReservationLedger, LedgerFileError, LedgerUpdateError};
pub use lock::{ExclusiveFileLock, LockError, try_lock_exclusive};
pub use persist_store::{PersistStoreConfig, PersistStoreScanError, scan_persist_stores};
pub use reservation::{
    NoStoreFits, Reservation, ReservationLedger, ReservationRequest, StoreRejection, StoreView,
};
pub use sealing_store::{
    ClaimedSealingStore, SealingStoreError, claim_sealing_store, initialise_sealing_store,
};
pub use sector_size::SectorSize;
pub use transfer::{
    MoveError, MoveMethod, MoveReport, MoveRequest, MoveStep, MovedFile, SourceDisposal,
    move_sector_files,
};
