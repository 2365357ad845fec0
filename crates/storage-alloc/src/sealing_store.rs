//! Initialising a sealing store and claiming it for one sealing thread.
//!
//! A sealing store holds exactly one sector's scratch files. Two threads sealing in the
//! same directory would overwrite each other's layers silently, so a thread must claim
//! its store before touching it and keep the claim for its whole life; the claim is an
//! advisory lock on `.holder` (see [`crate::lock`]), which the kernel drops if the worker
//! dies, so a crashed worker never leaves a store unusable.

use std::io;
use std::path::{Path, PathBuf};

use crate::crashsafe::create_directory_all_durably;
use crate::layout::{SEALING_DATA_DIRECTORIES, SealingStoreLayout};
use crate::lock::{ExclusiveFileLock, LockError, describe_holder, try_lock_exclusive};

/// Why a sealing store could not be initialised or claimed.
#[derive(Debug, thiserror::Error)]
pub enum SealingStoreError {
    /// The location has not been initialised.
    #[error(
        "sealing store {} is not initialised ({} is missing); run `sealing-worker store sealing-init --location {}` once before starting the worker",
        location.display(), missing.display(), location.display()
    )]
    NotInitialised {
        /// The store's location.
        location: PathBuf,
        /// The first missing file or directory.
        missing: PathBuf,
    },
    /// Another sealing thread, in this worker or another process, holds the store.
    #[error(
        "sealing store {} is already claimed by {}; every [[sealing_thread]] needs a location of its own, so check for the same location twice in this worker's config or another worker running on this machine",
        location.display(), describe_holder(*holder_pid)
    )]
    AlreadyClaimed {
        /// The store's location.
        location: PathBuf,
        /// The holder's pid, when it had written it.
        holder_pid: Option<u32>,
    },
    /// The file system refused.
    #[error("could not {action} sealing store {}", location.display())]
    Io {
        /// What was being done, as a verb phrase.
        action: &'static str,
        /// The store's location.
        location: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// Creates the directories and the `.holder` file of a sealing store at `location`,
/// creating missing parents. Initialising an initialised store changes nothing, and its
/// files are kept.
pub fn initialise_sealing_store(location: &Path) -> Result<SealingStoreLayout, SealingStoreError> {
    let layout = SealingStoreLayout::new(location);
    let io_error = |source| SealingStoreError::Io {
        action: "initialise",
        location: location.to_owned(),
        source,
    };
    create_directory_all_durably(&layout.meta_directory()).map_err(io_error)?;
    for directory in SEALING_DATA_DIRECTORIES {
        create_directory_all_durably(&layout.data_directory().join(directory)).map_err(io_error)?;
    }
    let holder = layout.holder_file();
    if !holder.exists() {
        crate::crashsafe::write_file_durably(&holder, b"").map_err(io_error)?;
    }
    Ok(layout)
}

/// A sealing store claimed by this thread; the claim lasts until it is dropped.
#[derive(Debug)]
pub struct ClaimedSealingStore {
    layout: SealingStoreLayout,
    lock: ExclusiveFileLock,
}

impl ClaimedSealingStore {
    /// The store's paths.
    pub fn layout(&self) -> &SealingStoreLayout {
        &self.layout
    }

    /// Whether the claim still guards the store: false if `.holder` was deleted or
    /// replaced under the running thread (then another process could claim it too).
    pub fn is_still_exclusive(&self) -> io::Result<bool> {
        self.lock.still_guards_its_path()
    }
}

/// Claims the initialised sealing store at `location` for the calling thread, without
/// waiting: a store another thread or process holds is refused with the holder's pid.
pub fn claim_sealing_store(location: &Path) -> Result<ClaimedSealingStore, SealingStoreError> {
    let layout = SealingStoreLayout::new(location);
    let mut required = vec![layout.holder_file(), layout.meta_directory()];
    required.extend(
        SEALING_DATA_DIRECTORIES
            .iter()
            .map(|directory| layout.data_directory().join(directory)),
    );
    if let Some(missing) = required.into_iter().find(|path| !path.exists()) {
        return Err(SealingStoreError::NotInitialised {
            location: location.to_owned(),
            missing,
        });
    }
    let lock = try_lock_exclusive(&layout.holder_file()).map_err(|error| match error {
        LockError::Busy { holder_pid, .. } => SealingStoreError::AlreadyClaimed {
            location: location.to_owned(),
            holder_pid,
        },
        LockError::Io { source, .. } => SealingStoreError::Io {
            action: "claim",
            location: location.to_owned(),
            source,
        },
    })?;
    Ok(ClaimedSealingStore { layout, lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uninitialised_store_is_refused_with_the_command_that_fixes_it() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let location = directory.path().join("store1");
        let error = claim_sealing_store(&location).expect_err("not initialised");
        let message = error.to_string();
        assert!(message.contains("store sealing-init"), "{message}");
        assert!(message.contains(".holder"), "{message}");
    }

    #[test]
    fn initialise_then_claim_then_refuse_a_second_claim() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let location = directory.path().join("nested/store1");
        let layout = initialise_sealing_store(&location).expect("initialise");
        for name in SEALING_DATA_DIRECTORIES {
            assert!(layout.data_directory().join(name).is_dir(), "{name}");
        }
        let claimed = claim_sealing_store(&location).expect("claim");
        assert!(claimed.is_still_exclusive().expect("stat"));
        let refused = claim_sealing_store(&location).expect_err("second claim");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        // Initialising a claimed store keeps the claim and the holder's pid.
        initialise_sealing_store(&location).expect("initialise again");
        assert!(claimed.is_still_exclusive().expect("stat"));
        drop(claimed);
        claim_sealing_store(&location).expect("claim after release");
    }
}
