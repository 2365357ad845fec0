//! Where a sector's files live, in a sealing store and in a persistent store.
//!
//! The names are the reference's, so a sealing store or a persistent store written by
//! damocles-worker (or lotus) is read by sealcluster without renaming anything: sectors are
//! `s-t0<miner>-<number>`, and a persistent store mirrors the relative paths of a sealing
//! store's `data/` directory (`sealed/`, `cache/`, `update/`, `update-cache/`).

use std::path::{Path, PathBuf};

use sector_fsm::types::SectorId;

use crate::sector_size::SectorSize;

/// The directories under a sealing store's `data/`, created when it is initialised.
pub const SEALING_DATA_DIRECTORIES: [&str; 6] = [
    "unsealed",
    "prepared",
    "cache",
    "sealed",
    "update",
    "update-cache",
];

/// The paths inside one sealing store (one `[[sealing_thread]]` location).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingStoreLayout {
    location: PathBuf,
}

impl SealingStoreLayout {
    /// The layout of the store at `location`; nothing is read or created.
    pub fn new(location: impl Into<PathBuf>) -> SealingStoreLayout {
        SealingStoreLayout {
            location: location.into(),
        }
    }

    /// The store's root, as configured.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// The file whose presence marks an initialised store and whose advisory lock marks
    /// the store as claimed by a running sealing thread.
    pub fn holder_file(&self) -> PathBuf {
        self.location.join(".holder")
    }

    /// The directory for the thread's own metadata (the sector record).
    pub fn meta_directory(&self) -> PathBuf {
        self.location.join("meta")
    }

    /// The root of the sector data; persisted paths are relative to it.
    pub fn data_directory(&self) -> PathBuf {
        self.location.join("data")
    }

    /// The staged (padded) sector data that PC1 reads.
    pub fn unsealed_file(&self, sector: SectorId) -> PathBuf {
        self.data_directory()
            .join("unsealed")
            .join(sector.to_string())
    }

    /// Where tree-d is built (or linked from a static tree-d).
    pub fn prepared_directory(&self, sector: SectorId) -> PathBuf {
        self.data_directory()
            .join("prepared")
            .join(sector.to_string())
    }

    /// The sealing cache of a sector.
    pub fn cache_directory(&self, sector: SectorId) -> PathBuf {
        self.data_directory()
            .join(sector_cache_path(sector, ReplicaKind::Sealed))
    }

    /// The sealed replica of a sector.
    pub fn sealed_file(&self, sector: SectorId) -> PathBuf {
        self.data_directory()
            .join(replica_path(sector, ReplicaKind::Sealed))
    }

    /// The snap-up replica of a sector.
    pub fn update_file(&self, sector: SectorId) -> PathBuf {
        self.data_directory()
            .join(replica_path(sector, ReplicaKind::Updated))
    }

    /// The snap-up cache of a sector.
    pub fn update_cache_directory(&self, sector: SectorId) -> PathBuf {
        self.data_directory()
            .join(sector_cache_path(sector, ReplicaKind::Updated))
    }
}

/// Which replica of a sector is meant: the one sealed by PoRep, or the one re-encoded by
/// a snap-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicaKind {
    /// `sealed/<sector>` with `cache/<sector>/`.
    Sealed,
    /// `update/<sector>` with `update-cache/<sector>/`.
    Updated,
}

/// The replica's path relative to a store's data root.
pub fn replica_path(sector: SectorId, replica: ReplicaKind) -> PathBuf {
    let directory = match replica {
        ReplicaKind::Sealed => "sealed",
        ReplicaKind::Updated => "update",
    };
    Path::new(directory).join(sector.to_string())
}

/// The cache directory's path relative to a store's data root.
pub fn sector_cache_path(sector: SectorId, replica: ReplicaKind) -> PathBuf {
    let directory = match replica {
        ReplicaKind::Sealed => "cache",
        ReplicaKind::Updated => "update-cache",
    };
    Path::new(directory).join(sector.to_string())
}

/// The files a persistent store must hold for a sector to be proven, relative to the
/// store's root (and to a sealing store's `data/`): the replica first, then the cache
/// files of [`SectorSize::persisted_cache_file_names`].
pub fn persisted_files(sector: SectorId, size: SectorSize, replica: ReplicaKind) -> Vec<PathBuf> {
    let cache = sector_cache_path(sector, replica);
    let mut files = vec![replica_path(sector, replica)];
    files.extend(
        size.persisted_cache_file_names()
            .into_iter()
            .map(|name| cache.join(name)),
    );
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTOR: SectorId = SectorId {
        miner: 1000,
        number: 42,
    };

    #[test]
    fn paths_use_the_reference_names() {
        let layout = SealingStoreLayout::new("/nvme/store1");
        assert_eq!(layout.holder_file(), Path::new("/nvme/store1/.holder"));
        assert_eq!(
            layout.sealed_file(SECTOR),
            Path::new("/nvme/store1/data/sealed/s-t01000-42")
        );
        assert_eq!(
            layout.update_cache_directory(SECTOR),
            Path::new("/nvme/store1/data/update-cache/s-t01000-42")
        );
        assert_eq!(
            layout.unsealed_file(SECTOR),
            Path::new("/nvme/store1/data/unsealed/s-t01000-42")
        );
    }

    #[test]
    fn persisted_files_of_a_32_gib_snap_up() {
        let files = persisted_files(SECTOR, SectorSize::Size32GiB, ReplicaKind::Updated);
        let names: Vec<String> = files
            .iter()
            .map(|file| file.display().to_string())
            .collect();
        assert_eq!(names[0], "update/s-t01000-42");
        assert_eq!(
            names[1],
            "update-cache/s-t01000-42/sc-02-data-tree-r-last-0.dat"
        );
        assert_eq!(names[9], "update-cache/s-t01000-42/p_aux");
        assert_eq!(names[10], "update-cache/s-t01000-42/t_aux");
        assert_eq!(names.len(), 11);
    }
}
