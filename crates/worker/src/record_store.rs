//! A sealing thread's sector record, kept on its own sealing store (`meta/sector.json`)
//! so the record travels with the files it describes.
//!
//! The contract the thread relies on: [`RecordStore::save`] returns only once the new
//! record is on disk (written beside, synced, renamed over the old one, directory
//! synced), so after a crash [`RecordStore::load`] finds either the old record or the new
//! one, never a mix; the thread saves a transition before it acts on it. A record that
//! cannot be read is an error naming the file and is left in place for an operator: it
//! is never replaced by a new sector.

use std::path::{Path, PathBuf};

use sector_fsm::SectorRecord;
use storage_alloc::SealingStoreLayout;

/// The record's file name in the store's `meta/` directory.
pub const RECORD_FILE: &str = "sector.json";

/// A record that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordStoreError {
    /// The file system failed.
    #[error("{action} the sector record {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file exists but is not a record this worker can read.
    #[error(
        "the sector record {path} cannot be read ({reason}); it is left as it is: inspect it, \
         then move it away to let the thread take a new sector"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Where one sealing store keeps its sector's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordStore {
    path: PathBuf,
}

impl RecordStore {
    /// The record of the sealing store laid out as `layout`.
    pub fn of(layout: &SealingStoreLayout) -> RecordStore {
        RecordStore {
            path: layout.meta_directory().join(RECORD_FILE),
        }
    }

    /// The record's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record, or `None` when the store holds no sector.
    pub fn load(&self) -> Result<Option<SectorRecord>, RecordStoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RecordStoreError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        SectorRecord::decode(&bytes)
            .map(Some)
            .map_err(|error| RecordStoreError::Unreadable {
                path: self.path.clone(),
                reason: error.to_string(),
            })
    }

    /// Replaces the record durably; see the module's contract.
    pub fn save(&self, record: &SectorRecord) -> Result<(), RecordStoreError> {
        storage_alloc::crashsafe::write_file_durably(&self.path, &record.encode()).map_err(
            |source| RecordStoreError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            },
        )
    }

    /// Removes the record once its sector is over (finalized or aborted); safe to repeat.
    pub fn discard(&self) -> Result<(), RecordStoreError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(RecordStoreError::Io {
                    action: "remove",
                    path: self.path.clone(),
                    source,
                });
            }
        }
        storage_alloc::crashsafe::sync_directory(storage_alloc::crashsafe::parent_directory(
            &self.path,
        ))
        .map_err(|source| RecordStoreError::Io {
            action: "sync the directory of",
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sector_fsm::{Event, Plan, Sector, Timestamp};

    fn store() -> (tempfile::TempDir, RecordStore) {
        let directory = tempfile::tempdir().expect("a directory");
        let layout = storage_alloc::sealing_store::initialise_sealing_store(directory.path())
            .expect("a sealing store");
        (directory, RecordStore::of(&layout))
    }

    #[test]
    fn a_saved_record_is_loaded_as_it_was_and_discarding_is_repeatable() {
        let (_directory, records) = store();
        assert!(records.load().expect("an empty store").is_none());
        let mut sector = Sector::new(Plan::Sealer);
        records.save(sector.record()).expect("save");
        assert_eq!(
            records.load().expect("load").as_ref(),
            Some(sector.record())
        );
        let first = sector.record().clone();
        // A later transition replaces it.
        let _ = sector.handle(
            Event::Pause,
            Timestamp::from_unix_millis(5),
            &sector_fsm::RetryPolicy::default(),
        );
        assert_ne!(sector.record(), &first, "the pause changed the record");
        records.save(sector.record()).expect("save again");
        assert_eq!(
            records.load().expect("load").as_ref(),
            Some(sector.record())
        );
        records.discard().expect("discard");
        records.discard().expect("discard again");
        assert!(records.load().expect("an empty store").is_none());
    }

    #[test]
    fn an_unreadable_record_is_an_error_and_stays_in_place() {
        let (_directory, records) = store();
        std::fs::write(records.path(), b"{\"format_version\": 99").expect("write");
        let error = records.load().expect_err("unreadable");
        assert!(
            matches!(error, RecordStoreError::Unreadable { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("sector.json"), "{error}");
        assert!(records.path().exists(), "left for the operator");
    }

    #[test]
    fn a_write_interrupted_before_its_rename_leaves_the_old_record() {
        let (_directory, records) = store();
        let sector = Sector::new(Plan::Sealer);
        records.save(sector.record()).expect("save");
        // What a crash between writing the temporary file and renaming it leaves behind.
        let temporary = storage_alloc::crashsafe::temporary_path_for(records.path());
        std::fs::write(&temporary, b"half a rec").expect("a torn temporary file");
        assert_eq!(
            records.load().expect("load").as_ref(),
            Some(sector.record())
        );
        // The next save replaces both.
        records.save(sector.record()).expect("save");
        assert_eq!(
            records.load().expect("load").as_ref(),
            Some(sector.record())
        );
    }
}
