//! Moving a finished sector's files from a sealing store into a persistent store.
//!
//! The move is the last step before a sector is proven from shared storage, and the
//! local copy is the only copy until it is done, so the order of operations is the
//! whole point of this module:
//!
//! 1. Each file reaches the destination under a hidden temporary name in its final
//!    directory, by a hard link when both stores share a file system (and linking is
//!    allowed; the source's data is synced first) or by a copy that is synced and whose
//!    size is checked against the source.
//! 2. The temporary file is renamed to its final name and the directory is synced, so a
//!    file under its final name is always complete and durable.
//! 3. Only when every file is in place are the sources removed.
//!
//! If any step fails, the files this call put in place are removed again, the
//! temporary file is deleted, and the sources are untouched; the error says which file,
//! which step, and whether retrying can help. Running the same move again after a crash
//! at any point finishes it: a destination that is the source's own inode, or whose
//! source is already gone (sources go only after every destination is durable), is
//! recognised as already in place.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use sector_fsm::FailureLevel;

use crate::crashsafe::{
    create_directory_all_durably, parent_directory, remove_leftover, sync_directory,
    temporary_path_for,
};

/// What to do with the source files once every destination is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceDisposal {
    /// Remove them (a finished sector leaving its sealing store).
    Remove,
    /// Keep them (a copy, for example to a second store).
    Keep,
}

/// One move: the files of a sector, relative to both roots.
#[derive(Clone, Debug)]
pub struct MoveRequest<'a> {
    /// The sealing store's data root (`<location>/data`).
    pub source_root: &'a Path,
    /// The persistent store's root.
    pub destination_root: &'a Path,
    /// The files, relative to both roots (see [`crate::layout::persisted_files`]).
    pub files: &'a [PathBuf],
    /// Whether a hard link may be used when both roots share a file system. A link
    /// shares the inode, so it is only right when the source will be removed or never
    /// written again.
    pub allow_hard_link: bool,
    /// What happens to the sources after a successful move.
    pub source_disposal: SourceDisposal,
}

/// How a file reached its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveMethod {
    /// Hard-linked: same file system, no data copied.
    Linked,
    /// Copied, synced and size-checked.
    Copied,
    /// It was already there (a repeated move after a crash).
    AlreadyInPlace,
}

/// One file of a finished move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedFile {
    /// The file, relative to both roots.
    pub relative: PathBuf,
    /// How it got there.
    pub method: MoveMethod,
    /// Its size.
    pub bytes: u64,
}

/// What a finished move did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MoveReport {
    /// Every file, in the order of the request.
    pub files: Vec<MovedFile>,
}

impl MoveReport {
    /// The bytes copied (linked and already present files cost nothing).
    pub fn copied_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|file| file.method == MoveMethod::Copied)
            .map(|file| file.bytes)
            .sum()
    }
}

/// The step of a move that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveStep {
    /// The request named a path that is not a plain relative path.
    CheckPath,
    /// Reading the source's metadata or contents.
    ReadSource,
    /// Creating a destination directory.
    CreateDirectory,
    /// Writing the temporary copy or link.
    Write,
    /// The copy's size differs from the source's.
    VerifySize,
    /// Renaming into place and syncing the directory.
    Publish,
    /// Removing a source after the move.
    RemoveSource,
}

impl fmt::Display for MoveStep {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            MoveStep::CheckPath => "check the path of",
            MoveStep::ReadSource => "read the source of",
            MoveStep::CreateDirectory => "create the destination directory of",
            MoveStep::Write => "write",
            MoveStep::VerifySize => "verify the size of",
            MoveStep::Publish => "rename into place",
            MoveStep::RemoveSource => "remove the moved source of",
        })
    }
}

/// A move that did not finish. The sources are intact (unless the failure was in
/// removing them, after every destination was durable) and no partial file is left.
#[derive(Debug, thiserror::Error)]
#[error("could not {step} {} ({} failure): {source}", relative.display(), level_name(*level))]
pub struct MoveError {
    /// Whether retrying can help: [`FailureLevel::Temporary`] for a full disk or a
    /// network blip, [`FailureLevel::Permanent`] for a read-only store, missing source or
    /// denied permission, which need an operator.
    pub level: FailureLevel,
    /// The file, relative to both roots.
    pub relative: PathBuf,
    /// The step that failed.
    pub step: MoveStep,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

fn level_name(level: FailureLevel) -> &'static str {
    match level {
        FailureLevel::Temporary => "temporary",
        FailureLevel::Permanent => "permanent",
        FailureLevel::Critical => "critical",
        FailureLevel::Abort => "abort",
    }
}

/// The failure level of an I/O error met while moving files. A full disk or quota can
/// be freed (or another store chosen) and network file systems recover, so those are
/// temporary; a read-only file system, denied permission or a missing file will not
/// change without an operator, so those are permanent. Anything unknown is retried.
pub fn classify_io_error(error: &io::Error) -> FailureLevel {
    use io::ErrorKind;
    match error.kind() {
        ErrorKind::ReadOnlyFilesystem
        | ErrorKind::PermissionDenied
        | ErrorKind::NotFound
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::InvalidInput
        | ErrorKind::InvalidFilename => FailureLevel::Permanent,
        _ => FailureLevel::Temporary,
    }
}

/// Moves the files of `request` and reports how each got there; see the module docs for
/// the guarantees.
pub fn move_sector_files(request: &MoveRequest<'_>) -> Result<MoveReport, MoveError> {
    for relative in request.files {
        check_relative_path(relative)?;
    }
    let mut report = MoveReport::default();
    for relative in request.files {
        match move_one_file(request, relative) {
            Ok(moved) => report.files.push(moved),
            Err(error) => {
                roll_back(request.destination_root, &report);
                return Err(error);
            }
        }
    }
    if request.source_disposal == SourceDisposal::Remove {
        remove_sources(request)?;
    }
    Ok(report)
}

fn check_relative_path(relative: &Path) -> Result<(), MoveError> {
    let plain = relative.components().count() > 0
        && relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    if plain {
        return Ok(());
    }
    Err(MoveError {
        level: FailureLevel::Permanent,
        relative: relative.to_owned(),
        step: MoveStep::CheckPath,
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            "a sector file must be a relative path without `..`",
        ),
    })
}

fn failure(relative: &Path, step: MoveStep) -> impl FnOnce(io::Error) -> MoveError + '_ {
    move |source| MoveError {
        level: classify_io_error(&source),
        relative: relative.to_owned(),
        step,
        source,
    }
}

fn move_one_file(request: &MoveRequest<'_>, relative: &Path) -> Result<MovedFile, MoveError> {
    let source = request.source_root.join(relative);
    let destination = request.destination_root.join(relative);
    let source_metadata = match std::fs::symlink_metadata(&source) {
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(failure(relative, MoveStep::ReadSource)(error)),
    };
    let destination_metadata = match std::fs::metadata(&destination) {
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(failure(relative, MoveStep::Write)(error)),
    };
    let already_in_place = |bytes| MovedFile {
        relative: relative.to_owned(),
        method: MoveMethod::AlreadyInPlace,
        bytes,
    };
    let source_metadata = match (source_metadata, &destination_metadata) {
        (Some(source_metadata), Some(existing))
            if existing.dev() == source_metadata.dev()
                && existing.ino() == source_metadata.ino() =>
        {
            return Ok(already_in_place(existing.len()));
        }
        // The sources are removed only after every destination is durable, so a missing
        // source with a present destination is a move that crashed while cleaning up.
        (None, Some(existing)) => return Ok(already_in_place(existing.len())),
        (None, None) => {
            return Err(failure(relative, MoveStep::ReadSource)(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} does not exist", source.display()),
            )));
        }
        (Some(source_metadata), _) => source_metadata,
    };

    let directory = parent_directory(&destination);
    create_directory_all_durably(directory)
        .map_err(failure(relative, MoveStep::CreateDirectory))?;
    let temporary = temporary_path_for(&destination);
    let result =
        place_under_temporary_name(request, relative, &source, &source_metadata, &temporary)
            .and_then(|method| {
                std::fs::rename(&temporary, &destination)
                    .and_then(|()| sync_directory(directory))
                    .map_err(failure(relative, MoveStep::Publish))?;
                Ok(method)
            });
    match result {
        Ok(method) => Ok(MovedFile {
            relative: relative.to_owned(),
            method,
            bytes: source_metadata.len(),
        }),
        Err(error) => {
            remove_leftover(&temporary);
            if error.step == MoveStep::Publish {
                // The rename may have happened before the directory sync failed; a file
                // not known to be durable must not stay under its final name.
                remove_leftover(&destination);
            }
            Err(error)
        }
    }
}

/// Puts the source's contents at `temporary`, durably, and says how.
fn place_under_temporary_name(
    request: &MoveRequest<'_>,
    relative: &Path,
    source: &Path,
    source_metadata: &std::fs::Metadata,
    temporary: &Path,
) -> Result<MoveMethod, MoveError> {
    remove_leftover(temporary);
    let destination_device = std::fs::metadata(parent_directory(temporary))
        .map_err(failure(relative, MoveStep::Write))?
        .dev();
    let can_link = request.allow_hard_link
        && source_metadata.file_type().is_file()
        && destination_device == source_metadata.dev();
    if can_link {
        // A link shares the source's data, which the sealing step may have left in the
        // page cache only; it must be on disk before the link can count as durable.
        File::open(source)
            .and_then(|file| file.sync_all())
            .map_err(failure(relative, MoveStep::ReadSource))?;
        match std::fs::hard_link(source, temporary) {
            Ok(()) => return Ok(MoveMethod::Linked),
            // Bind mounts and some network file systems report one device but refuse
            // links across them; a copy still works.
            Err(error)
                if error.kind() == io::ErrorKind::CrossesDevices
                    || error.kind() == io::ErrorKind::PermissionDenied
                    || error.kind() == io::ErrorKind::Unsupported => {}
            Err(error) => return Err(failure(relative, MoveStep::Write)(error)),
        }
    }
    copy_durably(relative, source, temporary)?;
    Ok(MoveMethod::Copied)
}

fn copy_durably(relative: &Path, source: &Path, temporary: &Path) -> Result<(), MoveError> {
    let mut reader = File::open(source).map_err(failure(relative, MoveStep::ReadSource))?;
    let expected = reader
        .metadata()
        .map_err(failure(relative, MoveStep::ReadSource))?
        .len();
    let mut writer = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temporary)
        .map_err(failure(relative, MoveStep::Write))?;
    let copied = io::copy(&mut reader, &mut writer).map_err(failure(relative, MoveStep::Write))?;
    writer
        .sync_all()
        .map_err(failure(relative, MoveStep::Write))?;
    let written = writer
        .metadata()
        .map_err(failure(relative, MoveStep::Write))?
        .len();
    if copied != expected || written != expected {
        return Err(MoveError {
            level: FailureLevel::Temporary,
            relative: relative.to_owned(),
            step: MoveStep::VerifySize,
            source: io::Error::other(format!(
                "the source has {expected} bytes but {copied} were copied and {written} are on disk; was the source changed during the move?"
            )),
        });
    }
    Ok(())
}

/// Removes the destinations this call put in place, after a later file failed, so a
/// failed move leaves the destination as it found it. Files that were already in place
/// stay: their sources may be gone.
fn roll_back(destination_root: &Path, report: &MoveReport) {
    for moved in report.files.iter().rev() {
        if moved.method == MoveMethod::AlreadyInPlace {
            continue;
        }
        let destination = destination_root.join(&moved.relative);
        remove_leftover(&destination);
        if let Err(error) = sync_directory(parent_directory(&destination)) {
            tracing::warn!(
                path = %destination.display(),
                "could not sync a directory after removing a file of a failed move: {error}"
            );
        }
    }
}

fn remove_sources(request: &MoveRequest<'_>) -> Result<(), MoveError> {
    let mut directories = Vec::new();
    for relative in request.files {
        let source = request.source_root.join(relative);
        match std::fs::remove_file(&source) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(failure(relative, MoveStep::RemoveSource)(error)),
        }
        let directory = parent_directory(&source).to_owned();
        if !directories.contains(&directory) {
            directories.push(directory);
        }
    }
    for directory in directories {
        sync_directory(&directory).map_err(|source| MoveError {
            level: classify_io_error(&source),
            relative: directory.clone(),
            step: MoveStep::RemoveSource,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, contents: &[u8]) {
        let path = root.join(relative);
        std::fs::create_dir_all(parent_directory(&path)).expect("create parent");
        std::fs::write(path, contents).expect("write source");
    }

    fn names_under(root: &Path) -> Vec<String> {
        let mut names = Vec::new();
        let mut pending = vec![root.to_owned()];
        while let Some(directory) = pending.pop() {
            for entry in std::fs::read_dir(&directory).expect("list") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(root).expect("under root");
                    names.push(relative.display().to_string());
                }
            }
        }
        names.sort();
        names
    }

    fn files(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_same_file_system_move_links_and_a_repeat_finds_it_done() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let source = root.path().join("sealing/data");
        let destination = root.path().join("persist");
        write(&source, "sealed/s-t01-1", b"replica");
        write(&source, "cache/s-t01-1/p_aux", b"aux");
        let list = files(&["sealed/s-t01-1", "cache/s-t01-1/p_aux"]);
        let keep = MoveRequest {
            source_root: &source,
            destination_root: &destination,
            files: &list,
            allow_hard_link: true,
            source_disposal: SourceDisposal::Keep,
        };
        let report = move_sector_files(&keep).expect("move");
        assert!(
            report
                .files
                .iter()
                .all(|file| file.method == MoveMethod::Linked)
        );
        let again = move_sector_files(&MoveRequest {
            source_disposal: SourceDisposal::Remove,
            ..keep
        })
        .expect("repeat");
        assert!(
            again
                .files
                .iter()
                .all(|file| file.method == MoveMethod::AlreadyInPlace)
        );
        assert!(names_under(&source).is_empty(), "sources are removed");
        assert_eq!(
            names_under(&destination),
            ["cache/s-t01-1/p_aux", "sealed/s-t01-1"]
        );
        let repeat = move_sector_files(&keep).expect("a third time, sources gone");
        assert_eq!(repeat.copied_bytes(), 0);
    }

    #[test]
    fn a_copy_has_the_same_contents_and_no_temporary_is_left() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let source = root.path().join("sealing/data");
        let destination = root.path().join("persist");
        let replica: Vec<u8> = (0..200_000u32).map(|index| (index % 251) as u8).collect();
        write(&source, "sealed/s-t01-1", &replica);
        write(&source, "cache/s-t01-1/t_aux", b"t");
        // A stale destination from an earlier, different attempt is replaced.
        write(&destination, "sealed/s-t01-1", b"stale");
        let list = files(&["sealed/s-t01-1", "cache/s-t01-1/t_aux"]);
        let report = move_sector_files(&MoveRequest {
            source_root: &source,
            destination_root: &destination,
            files: &list,
            allow_hard_link: false,
            source_disposal: SourceDisposal::Remove,
        })
        .expect("move");
        assert_eq!(report.copied_bytes(), 200_001);
        assert_eq!(
            std::fs::read(destination.join("sealed/s-t01-1")).expect("read"),
            replica
        );
        assert_eq!(
            names_under(&destination),
            ["cache/s-t01-1/t_aux", "sealed/s-t01-1"]
        );
    }

    #[test]
    fn a_missing_source_fails_permanently_and_rolls_back_what_was_placed() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let source = root.path().join("sealing/data");
        let destination = root.path().join("persist");
        write(&source, "sealed/s-t01-1", b"replica");
        let list = files(&["sealed/s-t01-1", "cache/s-t01-1/p_aux"]);
        let error = move_sector_files(&MoveRequest {
            source_root: &source,
            destination_root: &destination,
            files: &list,
            allow_hard_link: false,
            source_disposal: SourceDisposal::Remove,
        })
        .expect_err("p_aux is missing");
        assert_eq!(error.level, FailureLevel::Permanent);
        assert_eq!(error.step, MoveStep::ReadSource);
        assert!(error.to_string().contains("cache/s-t01-1/p_aux"), "{error}");
        assert!(
            names_under(&destination).is_empty(),
            "the replica copy was rolled back"
        );
        assert_eq!(names_under(&source), ["sealed/s-t01-1"]);
    }

    #[test]
    fn paths_that_escape_the_roots_are_refused_before_anything_is_done() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        for bad in ["../outside", "/etc/passwd", "", "./sealed/x"] {
            let list = files(&[bad]);
            let error = move_sector_files(&MoveRequest {
                source_root: root.path(),
                destination_root: root.path(),
                files: &list,
                allow_hard_link: true,
                source_disposal: SourceDisposal::Remove,
            })
            .expect_err("refused");
            assert_eq!(error.step, MoveStep::CheckPath, "{bad}");
        }
    }
}
