//! An exclusive advisory lock on a file, held for as long as a guard lives.
//!
//! This is the one place that knows how locks are taken: std's `File::try_lock`, which is
//! `flock(LOCK_EX | LOCK_NB)` on Linux. An flock belongs to the open file, so a second
//! claim fails whether it comes from another process or from another thread of the same
//! one, and the kernel drops the lock when its holder exits, however it exits. The holder
//! writes its pid into the file so that a refused claimant can say who holds it, and
//! empties the file when it lets go; a refused claimant names only a live process.

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

impl Drop for ExclusiveFileLock {
    fn drop(&mut self) {
        // Empties the file before the lock goes with it, so that the next claimant's
        // rivals, who may look between its lock and its write, never read this pid. Best
        // effort: a pid left behind (a failed truncate, or a holder that was killed) names
        // a process that is gone, and readers check for that.
        let _ignored = self.file.set_len(0);
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
        /// The pid the holder wrote into the file, if it had written one yet and it names
        /// a process this one can see.
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
        None => {
            "another process (its pid not written yet, or of a process not visible here)".to_owned()
        }
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
/// then writes), so an unreadable or empty file means "unknown", not an error; so does the
/// pid of a process that is gone (a killed holder's, left in the file until the next
/// holder overwrites it).
fn read_holder_pid(file: &mut File) -> Option<u32> {
    let mut contents = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut contents).ok()?;
    let pid: u32 = contents.trim().parse().ok()?;
    process_is_alive(pid).then_some(pid)
}

/// Whether a process with this pid exists, as far as `/proc` tells; where there is no
/// `/proc`, every pid is taken to be alive.
fn process_is_alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    !proc_root.join("self").exists() || proc_root.join(pid.to_string()).exists()
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
    fn a_released_lock_leaves_no_pid_behind() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join(".holder");
        let held = try_lock_exclusive(&path).expect("claim");
        let written = std::fs::read_to_string(&path).expect("read the holder file");
        assert_eq!(written.trim(), std::process::id().to_string());
        drop(held);
        let left = std::fs::read_to_string(&path).expect("read the holder file");
        assert_eq!(left, "", "the released lock's pid stays in the file");
    }

    #[test]
    fn a_gone_process_is_never_named_as_the_holder() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join(".holder");
        // A pid that belongs to no process: the kernel hands out pids below `pid_max`.
        // (Not a reaped child's: starting a process here would fork while other tests
        // hold locks, and a forked child keeps them until it execs.)
        let gone_pid: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .expect("read pid_max")
            .trim()
            .parse()
            .expect("pid_max is a number");
        std::fs::write(&path, format!("{gone_pid}\n")).expect("leave a stale pid");
        // A rival has locked the file but not yet written its pid, as a winner of a
        // close race looks between its lock and its write.
        let rival = File::open(&path).expect("open the holder file");
        rival.try_lock().expect("the rival locks");
        match try_lock_exclusive(&path).expect_err("the file is locked") {
            LockError::Busy { holder_pid, .. } => assert_eq!(holder_pid, None),
            other => panic!("expected Busy, got {other:?}"),
        }
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
