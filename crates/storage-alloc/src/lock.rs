//! An exclusive advisory lock on a file, held for as long as a guard lives.
//!
//! This is the one place that knows how locks are taken: std's `File::try_lock`, which is
//! `flock(LOCK_EX | LOCK_NB)` on Linux. An flock belongs to the open file, so a second
//! claim fails whether it comes from another process or from another thread of the same
//! one, and the kernel drops the lock when its holder exits, however it exits. The holder
//! writes its pid into the file so that a refused claimant can say who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ExclusiveFileLock {
    file: File,
    path: PathBuf,
}

impl ExclusiveFileLock {
    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this guard's file is still the one at its path (it is not if somebody
    /// deleted or replaced the file, which would let a second process lock a new file).
    pub fn still_guards_its_path(&self) -> std::io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let held = self.file.metadata()?;
        match std::fs::metadata(&self.path) {
            Ok(current) => Ok(current.dev() == held.dev() && current.ino() == held.ino()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another open file (in this process or another) holds the lock.
    #[error("{} is locked by {}", path.display(), describe_holder(*holder_pid))]
    Busy {
        /// The file that is locked.
        path: PathBuf,
        /// The pid the holder wrote into the file, if it had written one yet.
        holder_pid: Option<u32>,
    },
    /// The file could not be opened or locked.
    #[error("could not lock {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// How an error message names a lock's holder.
pub fn describe_holder(holder_pid: Option<u32>) -> String {
    match holder_pid {
        Some(pid) => format!("process {pid}"),
        None => "another process (which had not yet written its pid)".to_owned(),
    }
}

/// Takes the exclusive lock on `path` without waiting, creating the file if it is
/// missing, and writes this process's pid into it.
pub fn try_lock_exclusive(path: &Path) -> Result<ExclusiveFileLock, LockError> {
    let io_error = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    // Not truncated on open: the current holder's pid must survive a refused claim.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder locks first and writes its pid just after, so a claim that
            // loses a close race may look before the pid is there; it waits a moment
            // (at most 50 ms) so the error can name the holder.
            let mut holder_pid = read_holder_pid(&mut file);
            for _ in 0..10 {
                if holder_pid.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                holder_pid = read_holder_pid(&mut file);
            }
            return Err(LockError::Busy {
                path: path.to_owned(),
                holder_pid,
            });
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(io_error(source)),
    }
    file.set_len(0).map_err(io_error)?;
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    writeln!(file, "{}", std::process::id()).map_err(io_error)?;
    file.sync_data().map_err(io_error)?;
    Ok(ExclusiveFileLock {
        file,
        path: path.to_owned(),
    })
}

/// The pid written by the lock's holder. A holder may not have written it yet (it locks,
/// then writes), so an unreadable or empty file means "unknown", not an error.
fn read_holder_pid(file: &mut File) -> Option<u32> {
    let mut contents = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut contents).ok()?;
    contents.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_in_the_same_process_names_the_holder() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join(".holder");
        let held = try_lock_exclusive(&path).expect("the first claim succeeds");
        let refused = try_lock_exclusive(&path).expect_err("the second claim is refused");
        match &refused {
            LockError::Busy { holder_pid, .. } => {
                assert_eq!(*holder_pid, Some(std::process::id()));
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(
            refused
                .to_string()
                .contains(&format!("process {}", std::process::id())),
            "{refused}"
        );
        assert!(held.still_guards_its_path().expect("stat the lock file"));
        drop(held);
        let again = try_lock_exclusive(&path).expect("a released lock can be taken again");
        drop(again);
    }

    #[test]
    fn deleting_the_file_is_noticed() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join(".holder");
        let held = try_lock_exclusive(&path).expect("claim");
        std::fs::remove_file(&path).expect("delete the lock file");
        assert!(!held.still_guards_its_path().expect("stat"));
    }
}
