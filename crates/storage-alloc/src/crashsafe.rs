//! Writing files so that a crash leaves either the old contents or the new, never a mix.
//!
//! A rename is atomic but not durable until the directory holding it is synced, and a
//! file's data is not durable until the file is synced; every helper here does both, in
//! the order that makes the final name appear only once its contents are on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Makes the entries of `directory` (creations, renames, removals) durable.
pub fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

/// The directory that holds `path`, for syncing after a rename into it.
pub fn parent_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The name of the temporary file a durable write of `path` goes through: hidden, in the
/// same directory (so the rename stays on one filesystem), and fixed, so a retry after a
/// crash replaces a leftover instead of adding another.
pub fn temporary_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_directory(path).join(format!(".{name}.sealcluster-partial"))
}

/// Creates `directory` and any missing parents, and makes each new entry durable.
pub fn create_directory_all_durably(directory: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(directory);
    while let Some(path) = cursor {
        if path.as_os_str().is_empty() || path.is_dir() {
            break;
        }
        missing.push(path);
        cursor = path.parent();
    }
    for path in missing.into_iter().rev() {
        match std::fs::create_dir(path) {
            Ok(()) => sync_directory(parent_directory(path))?,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically and durably: the contents go to a temporary
/// file that is synced, renamed over `path`, and the directory is synced. On failure the
/// temporary file is removed and `path` keeps its old contents.
pub fn write_file_durably(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = temporary_path_for(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        sync_directory(parent_directory(path))
    })();
    if result.is_err() {
        remove_leftover(&temporary);
    }
    result
}

/// Removes a temporary file after a failure. The failure itself is what the caller
/// reports; a leftover that cannot be removed is logged here, where it is handled.
pub(crate) fn remove_leftover(temporary: &Path) {
    match std::fs::remove_file(temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(
            path = %temporary.display(),
            "could not remove a partial file after a failed write: {error}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durable_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join("ledger.json");
        write_file_durably(&path, b"first, and longer").expect("first write");
        write_file_durably(&path, b"second").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read back"), b"second");
        let names: Vec<_> = std::fs::read_dir(directory.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["ledger.json"]);
    }

    #[test]
    fn nested_directories_are_created() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let nested = directory.path().join("a/b/c");
        create_directory_all_durably(&nested).expect("create");
        assert!(nested.is_dir());
        create_directory_all_durably(&nested).expect("creating again is fine");
    }
}
