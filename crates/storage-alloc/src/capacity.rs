//! How many sealing stores fit on a disk, and refusing a plan that oversubscribes one.
//!
//! Each `[[sealing_thread]]` draws a region on a disk that must hold one sector's scratch
//! files. Threads whose regions do not fit start fine and fail hours later, mid-PC1, with
//! a full disk; the check here refuses such a plan at start-up instead. The arithmetic is
//! pure ([`check_sealing_plan`]); [`probe_filesystems`] gathers its inputs from the disks.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many sealing stores needing `bytes_per_store` each fit in `capacity_bytes`.
/// The seed's example: 2000 GB of disk and 520 GB per sector give 3.
pub fn sealing_stores_that_fit(capacity_bytes: u64, bytes_per_store: NonZeroU64) -> u64 {
    capacity_bytes / bytes_per_store.get()
}

/// One planned sealing store and the scratch space it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingStoreDemand {
    /// The store's location.
    pub location: PathBuf,
    /// The scratch bytes it needs at the peak of sealing.
    pub bytes: u64,
}

/// One file system, the space sealing stores may use on it, and the stores planned there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesystemPlan {
    /// How the file system is named in errors: its device number and a path on it.
    pub label: String,
    /// The bytes the stores may use: what is free now plus what the planned stores already
    /// occupy (a restarted worker's stores hold their sectors' files).
    pub capacity_bytes: u64,
    /// The stores planned on this file system.
    pub demands: Vec<SealingStoreDemand>,
}

impl FilesystemPlan {
    /// The scratch bytes all planned stores need together.
    pub fn required_bytes(&self) -> u128 {
        self.demands
            .iter()
            .map(|demand| u128::from(demand.bytes))
            .sum()
    }
}

/// A file system whose planned sealing stores need more than it can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OversubscribedFilesystem {
    /// The file system's label.
    pub label: String,
    /// The bytes available to the stores.
    pub capacity_bytes: u64,
    /// The bytes the stores need together.
    pub required_bytes: u128,
    /// The planned locations.
    pub locations: Vec<PathBuf>,
    /// How many of those stores would fit (when they all need the same).
    pub stores_that_fit: u64,
}

/// A sealing plan that does not fit its disks; names every disk that is too small.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct OversubscribedPlan {
    /// Every oversubscribed file system.
    pub filesystems: Vec<OversubscribedFilesystem>,
}

impl fmt::Display for OversubscribedPlan {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "the sealing plan oversubscribes its disks:")?;
        for filesystem in &self.filesystems {
            let locations: Vec<String> = filesystem
                .locations
                .iter()
                .map(|location| location.display().to_string())
                .collect();
            write!(
                formatter,
                " {} has {} for sealing but its {} sealing stores ({}) need {}; only {} fit there, so remove {} [[sealing_thread]] entries on this disk or free space on it.",
                filesystem.label,
                human_bytes(u128::from(filesystem.capacity_bytes)),
                filesystem.locations.len(),
                locations.join(", "),
                human_bytes(filesystem.required_bytes),
                filesystem.stores_that_fit,
                (filesystem.locations.len() as u64).saturating_sub(filesystem.stores_that_fit),
            )?;
        }
        Ok(())
    }
}

/// Accepts a plan when, on every file system, the planned stores need no more than the
/// capacity; otherwise names every file system that is too small.
pub fn check_sealing_plan(filesystems: &[FilesystemPlan]) -> Result<(), OversubscribedPlan> {
    let oversubscribed: Vec<OversubscribedFilesystem> = filesystems
        .iter()
        .filter(|filesystem| filesystem.required_bytes() > u128::from(filesystem.capacity_bytes))
        .map(|filesystem| {
            let mut sizes: Vec<u64> = filesystem
                .demands
                .iter()
                .map(|demand| demand.bytes)
                .collect();
            sizes.sort_unstable();
            // With mixed sizes, count the smallest first: the most stores that could fit.
            let mut remaining = filesystem.capacity_bytes;
            let mut stores_that_fit = 0;
            for size in sizes {
                if size > remaining {
                    break;
                }
                remaining -= size;
                stores_that_fit += 1;
            }
            OversubscribedFilesystem {
                label: filesystem.label.clone(),
                capacity_bytes: filesystem.capacity_bytes,
                required_bytes: filesystem.required_bytes(),
                locations: filesystem
                    .demands
                    .iter()
                    .map(|demand| demand.location.clone())
                    .collect(),
                stores_that_fit,
            }
        })
        .collect();
    if oversubscribed.is_empty() {
        Ok(())
    } else {
        Err(OversubscribedPlan {
            filesystems: oversubscribed,
        })
    }
}

/// Bytes as an operator reads them, in GiB with one decimal above a GiB.
pub fn human_bytes(bytes: u128) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    let value = bytes as f64;
    if value >= GIB {
        format!("{:.1} GiB", value / GIB)
    } else if value >= MIB {
        format!("{:.1} MiB", value / MIB)
    } else {
        format!("{bytes} B")
    }
}

/// Groups planned stores by the file system they are on and measures each one: its free
/// space (for unprivileged users, from statvfs) plus the space the planned stores already
/// occupy. A location that does not exist yet is measured on its nearest existing parent.
pub fn probe_filesystems(demands: &[SealingStoreDemand]) -> io::Result<Vec<FilesystemPlan>> {
    let mut by_device: BTreeMap<u64, FilesystemPlan> = BTreeMap::new();
    for demand in demands {
        let existing = nearest_existing_ancestor(&demand.location)?;
        let device = std::fs::metadata(&existing)?.dev();
        let occupied = if demand.location.exists() {
            allocated_bytes_under(&demand.location)?
        } else {
            0
        };
        let plan = match by_device.entry(device) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(FilesystemPlan {
                label: format!(
                    "the file system of {} (device {device})",
                    existing.display()
                ),
                capacity_bytes: free_bytes(&existing)?,
                demands: Vec::new(),
            }),
        };
        plan.capacity_bytes = plan.capacity_bytes.saturating_add(occupied);
        plan.demands.push(demand.clone());
    }
    Ok(by_device.into_values().collect())
}

/// The bytes an unprivileged process may still write on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let statistics = rustix::fs::statvfs(path)?;
    Ok(statistics.f_bavail.saturating_mul(statistics.f_frsize))
}

/// The bytes `path` and everything under it occupy on disk (allocated blocks, so sparse
/// files count what they really use). Symbolic links are not followed.
pub fn allocated_bytes_under(path: &Path) -> io::Result<u64> {
    let metadata = std::fs::symlink_metadata(path)?;
    let mut total = metadata.blocks().saturating_mul(512);
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            total = total.saturating_add(allocated_bytes_under(&entry?.path())?);
        }
    }
    Ok(total)
}

fn nearest_existing_ancestor(path: &Path) -> io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut cursor = absolute.as_path();
    loop {
        if cursor.exists() {
            return Ok(cursor.to_owned());
        }
        cursor = cursor.parent().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no part of {} exists", absolute.display()),
            )
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GB: u64 = 1_000_000_000;

    fn plan(capacity_bytes: u64, sizes: &[u64]) -> FilesystemPlan {
        FilesystemPlan {
            label: "disk".to_owned(),
            capacity_bytes,
            demands: sizes
                .iter()
                .enumerate()
                .map(|(index, bytes)| SealingStoreDemand {
                    location: PathBuf::from(format!("/nvme/store{index}")),
                    bytes: *bytes,
                })
                .collect(),
        }
    }

    #[test]
    fn the_seed_example_fits_three() {
        let per_sector = NonZeroU64::new(520 * GB).expect("non-zero");
        assert_eq!(sealing_stores_that_fit(2000 * GB, per_sector), 3);
        assert!(check_sealing_plan(&[plan(2000 * GB, &[520 * GB; 3])]).is_ok());
        let refused =
            check_sealing_plan(&[plan(2000 * GB, &[520 * GB; 4])]).expect_err("four do not fit");
        let message = refused.to_string();
        assert!(message.contains("only 3 fit"), "{message}");
        assert!(message.contains("remove 1 [[sealing_thread]]"), "{message}");
        assert!(message.contains("/nvme/store3"), "{message}");
    }

    proptest! {
        #[test]
        fn a_plan_is_refused_exactly_when_some_disk_is_too_small(
            disks in proptest::collection::vec(
                (0..5_000u64, proptest::collection::vec(1..1_000u64, 0..8)),
                1..4,
            )
        ) {
            let plans: Vec<FilesystemPlan> = disks
                .iter()
                .map(|(capacity, sizes)| plan(*capacity * GB, &sizes.iter().map(|size| size * GB).collect::<Vec<_>>()))
                .collect();
            let too_small: Vec<usize> = disks
                .iter()
                .enumerate()
                .filter(|(_, (capacity, sizes))| sizes.iter().sum::<u64>() > *capacity)
                .map(|(index, _)| index)
                .collect();
            match check_sealing_plan(&plans) {
                Ok(()) => prop_assert!(too_small.is_empty()),
                Err(refusal) => {
                    prop_assert_eq!(refusal.filesystems.len(), too_small.len());
                    for filesystem in &refusal.filesystems {
                        prop_assert!(filesystem.stores_that_fit < filesystem.locations.len() as u64);
                    }
                }
            }
        }
    }

    #[test]
    fn probing_groups_locations_on_one_file_system() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let existing = directory.path().join("store0");
        std::fs::create_dir(&existing).expect("create store0");
        std::fs::write(existing.join("sealed"), vec![7u8; 64 * 1024]).expect("write a file");
        let demands = [
            SealingStoreDemand {
                location: existing.clone(),
                bytes: 1,
            },
            SealingStoreDemand {
                location: directory.path().join("not/yet/store1"),
                bytes: 1,
            },
        ];
        let plans = probe_filesystems(&demands).expect("probe");
        assert_eq!(plans.len(), 1, "{plans:?}");
        assert_eq!(plans[0].demands.len(), 2);
        let free = free_bytes(directory.path()).expect("statvfs");
        assert!(
            plans[0].capacity_bytes >= free.saturating_sub(1024 * 1024) + 64 * 1024,
            "capacity {} should count the 64 KiB already in store0 on top of {free} free",
            plans[0].capacity_bytes
        );
    }
}
