//! Sector sizes, and the byte counts and file names that storage planning derives from them.
//!
//! Only the sizes the proofs library has parameters for are accepted: each has its own
//! number of SDR layers and its own shape of `tree-r-last`, and both decide how much disk a
//! sector needs and which files must be kept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A sector size the proofs library supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectorSize {
    /// 2 KiB, for tests.
    Size2KiB,
    /// 8 MiB, for tests.
    Size8MiB,
    /// 512 MiB, for tests.
    Size512MiB,
    /// 32 GiB, mainnet.
    Size32GiB,
    /// 64 GiB, mainnet.
    Size64GiB,
}

impl SectorSize {
    /// Every supported size, smallest first.
    pub const ALL: [SectorSize; 5] = [
        SectorSize::Size2KiB,
        SectorSize::Size8MiB,
        SectorSize::Size512MiB,
        SectorSize::Size32GiB,
        SectorSize::Size64GiB,
    ];

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            SectorSize::Size2KiB => 2 * KIB,
            SectorSize::Size8MiB => 8 * MIB,
            SectorSize::Size512MiB => 512 * MIB,
            SectorSize::Size32GiB => 32 * GIB,
            SectorSize::Size64GiB => 64 * GIB,
        }
    }

    /// The size as operators write it in configuration, for example `32GiB`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SectorSize::Size2KiB => "2KiB",
            SectorSize::Size8MiB => "8MiB",
            SectorSize::Size512MiB => "512MiB",
            SectorSize::Size32GiB => "32GiB",
            SectorSize::Size64GiB => "64GiB",
        }
    }

    /// The supported size with exactly this many bytes, if there is one.
    pub fn from_bytes(bytes: u64) -> Option<SectorSize> {
        SectorSize::ALL
            .into_iter()
            .find(|size| size.bytes() == bytes)
    }

    /// How many SDR layers PC1 writes for this size (the proofs library's production
    /// parameters: 2 for the test sizes, 11 for mainnet sizes).
    pub const fn sdr_layers(self) -> u64 {
        match self {
            SectorSize::Size2KiB | SectorSize::Size8MiB | SectorSize::Size512MiB => 2,
            SectorSize::Size32GiB | SectorSize::Size64GiB => 11,
        }
    }

    /// How many files `tree-r-last` is split into. The test sizes keep one file named
    /// `sc-02-data-tree-r-last.dat`; 32 GiB keeps 8 and 64 GiB keeps 16, numbered from 0.
    pub const fn tree_r_last_files(self) -> u32 {
        match self {
            SectorSize::Size2KiB | SectorSize::Size8MiB | SectorSize::Size512MiB => 1,
            SectorSize::Size32GiB => 8,
            SectorSize::Size64GiB => 16,
        }
    }

    /// The cache file names (inside `cache/<sector>/` or `update-cache/<sector>/`) that a
    /// persistent store must keep for proving: the `tree-r-last` files, `p_aux` and `t_aux`.
    /// Tree-c, tree-d and the layers are not kept.
    pub fn persisted_cache_file_names(self) -> Vec<String> {
        let shards = self.tree_r_last_files();
        let mut names: Vec<String> = if shards == 1 {
            vec!["sc-02-data-tree-r-last.dat".to_owned()]
        } else {
            (0..shards)
                .map(|shard| format!("sc-02-data-tree-r-last-{shard}.dat"))
                .collect()
        };
        names.push("p_aux".to_owned());
        names.push("t_aux".to_owned());
        names
    }

    /// An estimate of the scratch space one sector needs in its sealing store at the peak of
    /// sealing, in bytes: the staged data and the replica (one sector each), the SDR layers
    /// (one sector each), tree-d (two sectors), tree-c (an 8-ary tree over one sector of
    /// leaves, 8/7 of a sector) and tree-r-last (the same shape; mainnet sizes discard its
    /// two lowest rows, keeping 1/64 of it). For 32 GiB this is about 517 GiB, the figure
    /// operators usually round to 520 GB.
    pub const fn sealing_scratch_bytes(self) -> u64 {
        let sector = self.bytes();
        let eight_ary_tree = sector / 7 * 8;
        let tree_r_last = match self {
            SectorSize::Size2KiB | SectorSize::Size8MiB | SectorSize::Size512MiB => eight_ary_tree,
            SectorSize::Size32GiB | SectorSize::Size64GiB => eight_ary_tree / 64,
        };
        sector * (2 + self.sdr_layers() + 2) + eight_ary_tree + tree_r_last
    }

    /// The bytes a sealing thread asks a persistent store to reserve before moving a sealed
    /// sector there, as the reference computes it: twice the sector below 32 GiB (the small
    /// trees are relatively large), otherwise the sector plus 2 %.
    pub const fn persist_reservation_bytes(self) -> u64 {
        let sector = self.bytes();
        if sector < 32 * GIB {
            2 * sector
        } else {
            sector + sector / 50
        }
    }
}

impl fmt::Display for SectorSize {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A sector size that is not one of the supported ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sector size {given:?}: expected one of 2KiB, 8MiB, 512MiB, 32GiB, 64GiB")]
pub struct UnsupportedSectorSize {
    /// What was given.
    pub given: String,
}

impl FromStr for SectorSize {
    type Err = UnsupportedSectorSize;

    /// Accepts the configuration spelling (`32GiB`, case-insensitive) or a plain number of
    /// bytes (`34359738368`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let by_name = SectorSize::ALL
            .into_iter()
            .find(|size| size.as_str().eq_ignore_ascii_case(trimmed));
        let by_bytes = || trimmed.parse::<u64>().ok().and_then(SectorSize::from_bytes);
        by_name
            .or_else(by_bytes)
            .ok_or_else(|| UnsupportedSectorSize {
                given: text.to_owned(),
            })
    }
}

impl Serialize for SectorSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SectorSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_32_gib_sector_needs_about_520_gb_of_scratch() {
        let scratch = SectorSize::Size32GiB.sealing_scratch_bytes();
        let gib = scratch as f64 / GIB as f64;
        assert!((510.0..530.0).contains(&gib), "estimate was {gib} GiB");
        let ratio = SectorSize::Size64GiB.sealing_scratch_bytes() as f64 / scratch as f64;
        assert!(
            (ratio - 2.0).abs() < 1e-6,
            "64 GiB needs twice 32 GiB, not {ratio}x"
        );
    }

    #[test]
    fn names_and_byte_counts_parse() {
        for size in SectorSize::ALL {
            assert_eq!(size.as_str().parse::<SectorSize>(), Ok(size));
            assert_eq!(size.bytes().to_string().parse::<SectorSize>(), Ok(size));
        }
        assert_eq!("32gib".parse::<SectorSize>(), Ok(SectorSize::Size32GiB));
        let error = "16GiB"
            .parse::<SectorSize>()
            .expect_err("16 GiB is not a sector size");
        assert!(error.to_string().contains("16GiB"), "{error}");
    }

    #[test]
    fn cache_files_follow_the_tree_shape() {
        assert_eq!(
            SectorSize::Size2KiB.persisted_cache_file_names(),
            ["sc-02-data-tree-r-last.dat", "p_aux", "t_aux"]
        );
        let names_32 = SectorSize::Size32GiB.persisted_cache_file_names();
        assert_eq!(names_32.len(), 10);
        assert_eq!(names_32[0], "sc-02-data-tree-r-last-0.dat");
        assert_eq!(names_32[7], "sc-02-data-tree-r-last-7.dat");
        assert_eq!(SectorSize::Size64GiB.persisted_cache_file_names().len(), 18);
    }

    #[test]
    fn reservations_follow_the_reference_sizing() {
        assert_eq!(SectorSize::Size2KiB.persist_reservation_bytes(), 4 * KIB);
        assert_eq!(
            SectorSize::Size32GiB.persist_reservation_bytes(),
            32 * GIB + 32 * GIB / 50
        );
    }
}
