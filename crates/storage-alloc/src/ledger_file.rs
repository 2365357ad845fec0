//! The reservation ledger kept in a file, so reservations survive a manager restart.
//!
//! The file is JSON (small: one entry per sector being finished) and is replaced
//! atomically and durably on every change, so a crash leaves either the ledger before a
//! change or the one after it. A lock file next to it keeps a second manager (a second
//! daemon started by mistake on the same home directory) from keeping a ledger of its
//! own that the first would overwrite.

use std::path::{Path, PathBuf};

use crate::crashsafe::write_file_durably;
use crate::lock::{ExclusiveFileLock, LockError, try_lock_exclusive};
use crate::persist_store::PersistStoreConfig;
use crate::reservation::{
    NoStoreFits, Reservation, ReservationLedger, ReservationRequest, StoreView,
};

/// Why the ledger file could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerFileError {
    /// Another process holds the ledger.
    #[error(
        "the reservation ledger is in use: {0}; is another sector-manager running with the same home directory?"
    )]
    InUse(#[source] LockError),
    /// The file is not a valid ledger.
    #[error("{} is not a valid reservation ledger (line {line}, column {column}): {message}; restore it from a backup, or move it away to start with no reservations", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The file system refused.
    #[error("could not {action} the reservation ledger {}", path.display())]
    Io {
        /// What was being done, as a verb phrase.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// Why a change to the ledger did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LedgerUpdateError<E> {
    /// The change itself was refused; nothing was written.
    #[error(transparent)]
    Refused(E),
    /// The change could not be made durable; the ledger in memory and on disk is as it
    /// was before.
    #[error(transparent)]
    NotWritten(#[from] LedgerFileError),
}

/// A reservation ledger backed by a file this process has locked.
#[derive(Debug)]
pub struct DurableReservationLedger {
    path: PathBuf,
    ledger: ReservationLedger,
    _lock: ExclusiveFileLock,
}

/// The lock file that guards the ledger at `path`.
pub fn lock_path_for(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

impl DurableReservationLedger {
    /// Locks and reads the ledger at `path`; a missing file is an empty ledger (the file
    /// is written on the first change).
    pub fn open(path: &Path) -> Result<DurableReservationLedger, LedgerFileError> {
        let lock = try_lock_exclusive(&lock_path_for(path)).map_err(|error| match error {
            LockError::Io { path, source } => LedgerFileError::Io {
                action: "lock",
                path,
                source,
            },
            busy @ LockError::Busy { .. } => LedgerFileError::InUse(busy),
        })?;
        let ledger = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|error| LedgerFileError::Corrupt {
                path: path.to_owned(),
                line: error.line(),
                column: error.column(),
                message: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => ReservationLedger::new(),
            Err(source) => {
                return Err(LedgerFileError::Io {
                    action: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(DurableReservationLedger {
            path: path.to_owned(),
            ledger,
            _lock: lock,
        })
    }

    /// The ledger as it is on disk.
    pub fn ledger(&self) -> &ReservationLedger {
        &self.ledger
    }

    /// Applies `change` to a copy of the ledger, writes the copy durably, and only then
    /// makes it the ledger in memory: the caller never acts on a change that a crash
    /// could take back.
    pub fn update<T, E>(
        &mut self,
        change: impl FnOnce(&mut ReservationLedger) -> Result<T, E>,
    ) -> Result<T, LedgerUpdateError<E>> {
        let mut changed = self.ledger.clone();
        let answer = change(&mut changed).map_err(LedgerUpdateError::Refused)?;
        if changed != self.ledger {
            let encoded =
                serde_json::to_vec_pretty(&changed).map_err(|error| LedgerFileError::Io {
                    action: "encode",
                    path: self.path.clone(),
                    source: std::io::Error::other(error),
                })?;
            write_file_durably(&self.path, &encoded).map_err(|source| LedgerFileError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            })?;
            self.ledger = changed;
        }
        Ok(answer)
    }

    /// [`ReservationLedger::reserve`], made durable before it is answered.
    pub fn reserve(
        &mut self,
        request: &ReservationRequest,
        stores: &[StoreView],
        random: u64,
    ) -> Result<Reservation, LedgerUpdateError<NoStoreFits>> {
        self.update(|ledger| ledger.reserve(request, stores, random))
    }

    /// [`ReservationLedger::release`], made durable before it is answered.
    pub fn release(
        &mut self,
        sector: sector_fsm::types::SectorId,
    ) -> Result<Option<Reservation>, LedgerFileError> {
        self.update(|ledger| Ok::<_, std::convert::Infallible>(ledger.release(sector)))
            .map_err(|error| match error {
                LedgerUpdateError::NotWritten(error) => error,
                LedgerUpdateError::Refused(never) => match never {},
            })
    }
}

/// Measures each configured store's free space for a reservation.
pub fn measure_stores(stores: &[PersistStoreConfig]) -> Vec<StoreView> {
    stores
        .iter()
        .map(|config| StoreView {
            config: config.clone(),
            free_bytes: crate::capacity::free_bytes(&config.path)
                .map_err(|error| format!("could not measure {}: {error}", config.path.display())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sector_fsm::Timestamp;
    use sector_fsm::types::SectorId;

    fn request(number: u64) -> ReservationRequest {
        ReservationRequest {
            sector: SectorId {
                miner: 1000,
                number,
            },
            bytes: 10,
            candidates: None,
            requested_by: "worker-1".to_owned(),
            now: Timestamp::from_unix_millis(1_700_000_000_000),
        }
    }

    fn stores() -> Vec<StoreView> {
        ["a", "b", "c"]
            .into_iter()
            .map(|name| StoreView {
                config: PersistStoreConfig::new(name, format!("/mnt/{name}")),
                free_bytes: Ok(100),
            })
            .collect()
    }

    #[test]
    fn reservations_survive_a_restart_and_releases_too() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join("reservations.json");
        let (first, second) = {
            let mut ledger = DurableReservationLedger::open(&path).expect("open");
            let first = ledger
                .reserve(&request(1), &stores(), 1)
                .expect("reserve 1");
            let second = ledger
                .reserve(&request(2), &stores(), 2)
                .expect("reserve 2");
            (first, second)
        };
        let mut reopened = DurableReservationLedger::open(&path).expect("reopen");
        assert_eq!(reopened.ledger().reservation_of(first.sector), Some(&first));
        assert_eq!(
            reopened.ledger().reservation_of(second.sector),
            Some(&second)
        );
        // Asked again after the restart, the same sector gets the same store whatever
        // the random number.
        let again = reopened.reserve(&request(1), &stores(), 99).expect("again");
        assert_eq!(again, first);
        assert_eq!(
            reopened.release(first.sector).expect("release"),
            Some(first.clone())
        );
        assert_eq!(reopened.release(first.sector).expect("release again"), None);
        drop(reopened);
        let last = DurableReservationLedger::open(&path).expect("open a third time");
        assert_eq!(last.ledger().reservation_of(first.sector), None);
        assert_eq!(last.ledger().reservations().count(), 1);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_it() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join("reservations.json");
        let _held = DurableReservationLedger::open(&path).expect("open");
        let error = DurableReservationLedger::open(&path).expect_err("second open");
        let message = error.to_string();
        assert!(
            message.contains("is another sector-manager running"),
            "{message}"
        );
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_that_says_where_and_what_to_do() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join("reservations.json");
        std::fs::write(
            &path,
            "{\"format_version\": 1,\n \"reservations\": [ {\"sector\": 3} ]}",
        )
        .expect("write");
        let error = DurableReservationLedger::open(&path).expect_err("corrupt");
        let message = error.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("restore it from a backup"), "{message}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"format_version\": 1,\n \"reservations\": [ {\"sector\": 3} ]}",
            "a corrupt ledger is left for the operator, never overwritten"
        );
    }

    #[test]
    fn a_refused_reservation_writes_nothing() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join("reservations.json");
        let mut ledger = DurableReservationLedger::open(&path).expect("open");
        let too_big = ReservationRequest {
            bytes: 1000,
            ..request(1)
        };
        let error = ledger.reserve(&too_big, &stores(), 0).expect_err("too big");
        assert!(matches!(error, LedgerUpdateError::Refused(_)));
        assert!(!path.exists(), "nothing was written");
    }
}
