//! Persistent stores: where sealed sectors live once sealing is done, and how they are found.
//!
//! A persistent store is a directory (usually a network mount shared by the workers, the
//! manager and the PoSt machines) with the lotus layout: `sealed/`, `cache/`, `update/`,
//! `update-cache/`. Stores are configured one by one or discovered by scanning for the
//! `sectorstore.json` that lotus, curio and damocles write at a store's root, so an
//! operator's existing stores are picked up unchanged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// The name of the file that marks a directory as a store (lotus's `MetaFile`).
pub const SECTORSTORE_FILE_NAME: &str = "sectorstore.json";

/// One persistent store, as the manager's configuration or a `sectorstore.json` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistStoreConfig {
    /// The store's unique name; workers and the sector record refer to the store by it.
    pub name: String,
    /// The store's root directory, as every host that uses it sees it.
    pub path: PathBuf,
    /// The relative share of new sectors the store receives; 0 counts as 1.
    pub weight: u64,
    /// A read-only store serves proofs but receives no new sectors.
    pub read_only: bool,
    /// When not empty, only these miner actor ids may place sectors here.
    pub allow_miners: Vec<u64>,
    /// These miner actor ids may never place sectors here; denial wins over allowance.
    pub deny_miners: Vec<u64>,
}

impl PersistStoreConfig {
    /// A writable store with weight 1 and no miner policy.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> PersistStoreConfig {
        PersistStoreConfig {
            name: name.into(),
            path: path.into(),
            weight: 1,
            read_only: false,
            allow_miners: Vec::new(),
            deny_miners: Vec::new(),
        }
    }

    /// Whether the store's miner policy lets `miner` place sectors here.
    pub fn admits_miner(&self, miner: u64) -> bool {
        !self.deny_miners.contains(&miner)
            && (self.allow_miners.is_empty() || self.allow_miners.contains(&miner))
    }

    /// The weight used in the random choice: never zero, so every store can be chosen.
    pub fn effective_weight(&self) -> u64 {
        self.weight.max(1)
    }
}

/// Why scanning for `sectorstore.json` stores failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistStoreScanError {
    /// A scan pattern is not a valid glob.
    #[error(
        "scan pattern {pattern:?} is not a valid glob: {source}; fix it in the persist-store scan list"
    )]
    BadPattern {
        /// The pattern as configured.
        pattern: String,
        /// What the glob parser said.
        #[source]
        source: glob::PatternError,
    },
    /// A matched directory could not be read.
    #[error("could not read {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A `sectorstore.json` is not valid.
    #[error("{} is not a valid sectorstore.json (line {line}, column {column}): {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A `sectorstore.json` names no store.
    #[error("{} has neither a \"Name\" nor an \"ID\"; add a \"Name\" that is unique among your stores", path.display())]
    Unnamed {
        /// The file.
        path: PathBuf,
    },
    /// Two stores have the same name.
    #[error("two persistent stores are named {name:?} ({} and {}); names must be unique, so rename one", first.display(), second.display())]
    DuplicateName {
        /// The name.
        name: String,
        /// The first store's path.
        first: PathBuf,
        /// The second store's path.
        second: PathBuf,
    },
}

/// The keys of `sectorstore.json` this crate reads. Lotus writes `ID`, `Weight`,
/// `CanSeal` and `CanStore` (and miner lists of `f0…` addresses); damocles adds `Name`,
/// `ReadOnly` and numeric miner lists. Other keys are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SectorstoreJson {
    #[serde(rename = "ID")]
    id: Option<String>,
    name: Option<String>,
    weight: Option<u64>,
    read_only: Option<bool>,
    can_store: Option<bool>,
    #[serde(deserialize_with = "miner_list")]
    allow_miners: Vec<u64>,
    #[serde(deserialize_with = "miner_list")]
    deny_miners: Vec<u64>,
}

/// Reads a list of miners written as numbers (`1000`) or addresses (`"t01000"`,
/// `"f01000"`, `"1000"`); `null` is an empty list.
fn miner_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Miner {
        Number(u64),
        Text(String),
    }
    let entries: Option<Vec<Miner>> = Option::deserialize(deserializer)?;
    entries
        .unwrap_or_default()
        .into_iter()
        .map(|entry| match entry {
            Miner::Number(number) => Ok(number),
            Miner::Text(text) => parse_miner(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a miner id; write it as 1000 or \"f01000\""
                ))
            }),
        })
        .collect()
}

/// Parses `1000`, `t01000` or `f01000` into the actor id 1000.
pub fn parse_miner(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("t0")
        .or_else(|| text.strip_prefix("f0"))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads the `sectorstore.json` of the store rooted at `directory`.
pub fn read_sectorstore_json(
    directory: &Path,
) -> Result<PersistStoreConfig, PersistStoreScanError> {
    let path = directory.join(SECTORSTORE_FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| PersistStoreScanError::Io {
        path: path.clone(),
        source,
    })?;
    let parsed: SectorstoreJson =
        serde_json::from_str(&text).map_err(|error| PersistStoreScanError::Invalid {
            path: path.clone(),
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        })?;
    let name = parsed
        .name
        .filter(|name| !name.trim().is_empty())
        .or(parsed.id.filter(|id| !id.trim().is_empty()))
        .ok_or(PersistStoreScanError::Unnamed { path })?;
    Ok(PersistStoreConfig {
        name,
        path: directory.to_owned(),
        weight: parsed.weight.unwrap_or(1),
        read_only: parsed.read_only.unwrap_or(false) || parsed.can_store == Some(false),
        allow_miners: parsed.allow_miners,
        deny_miners: parsed.deny_miners,
    })
}

/// Finds the stores under `patterns`: every matched directory that holds a
/// `sectorstore.json`. Matches without one are skipped, as the reference does; a broken
/// `sectorstore.json` is an error, never a silently missing store. Names must be unique
/// among the scanned stores and `configured` ones.
pub fn scan_persist_stores(
    patterns: &[String],
    configured: &[PersistStoreConfig],
) -> Result<Vec<PersistStoreConfig>, PersistStoreScanError> {
    let mut found: Vec<PersistStoreConfig> = Vec::new();
    let mut seen_directories = BTreeSet::new();
    for pattern in patterns {
        let matches = glob::glob(pattern).map_err(|source| PersistStoreScanError::BadPattern {
            pattern: pattern.clone(),
            source,
        })?;
        for entry in matches {
            let directory = entry.map_err(|error| PersistStoreScanError::Io {
                path: error.path().to_owned(),
                source: error.into(),
            })?;
            if !directory.join(SECTORSTORE_FILE_NAME).is_file()
                || !seen_directories.insert(directory.clone())
            {
                continue;
            }
            found.push(read_sectorstore_json(&directory)?);
        }
    }
    let mut all: Vec<&PersistStoreConfig> = configured.iter().collect();
    all.extend(found.iter());
    for (index, store) in all.iter().enumerate() {
        if let Some(earlier) = all[..index].iter().find(|other| other.name == store.name) {
            return Err(PersistStoreScanError::DuplicateName {
                name: store.name.clone(),
                first: earlier.path.clone(),
                second: store.path.clone(),
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_store(root: &Path, name: &str, json: &str) -> PathBuf {
        let directory = root.join(name);
        std::fs::create_dir_all(&directory).expect("create store directory");
        std::fs::write(directory.join(SECTORSTORE_FILE_NAME), json).expect("write json");
        directory
    }

    #[test]
    fn lotus_and_damocles_files_are_both_read() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let lotus = write_store(
            root.path(),
            "lotus",
            r#"{"ID":"5f1c-aa","Weight":10,"CanSeal":false,"CanStore":true,"MaxStorage":0,
               "AllowMiners":["f01000"],"DenyMiners":null}"#,
        );
        let damocles = write_store(
            root.path(),
            "damocles",
            r#"{"ID":"x","Name":"nas-2","Path":"/ignored","Strict":false,"ReadOnly":true,
               "Weight":0,"AllowMiners":[],"DenyMiners":[1001, "t01002"],"PluginName":"","Meta":{}}"#,
        );
        std::fs::create_dir_all(root.path().join("not-a-store")).expect("create");
        let pattern = format!("{}/*", root.path().display());
        let mut stores = scan_persist_stores(&[pattern], &[]).expect("scan");
        stores.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(stores.len(), 2);
        assert_eq!(stores[0].name, "5f1c-aa");
        assert_eq!(stores[0].path, lotus);
        assert_eq!(stores[0].weight, 10);
        assert!(!stores[0].read_only);
        assert_eq!(stores[0].allow_miners, [1000]);
        assert_eq!(stores[1].name, "nas-2");
        assert_eq!(
            stores[1].path, damocles,
            "the path is where the file was found"
        );
        assert!(stores[1].read_only);
        assert_eq!(stores[1].effective_weight(), 1);
        assert_eq!(stores[1].deny_miners, [1001, 1002]);
    }

    #[test]
    fn a_store_that_cannot_store_is_read_only() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let directory = write_store(root.path(), "a", r#"{"ID":"seal-only","CanStore":false}"#);
        assert!(read_sectorstore_json(&directory).expect("read").read_only);
    }

    #[test]
    fn broken_files_and_duplicate_names_are_errors_that_say_where() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        write_store(
            root.path(),
            "a",
            "{\n  \"Name\": \"one\",\n  \"Weight\": -3\n}",
        );
        let pattern = format!("{}/*", root.path().display());
        let error = scan_persist_stores(std::slice::from_ref(&pattern), &[])
            .expect_err("a negative weight is invalid");
        let message = error.to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("a/sectorstore.json"), "{message}");

        write_store(root.path(), "a", r#"{"Name":"one"}"#);
        let configured = [PersistStoreConfig::new("one", "/mnt/elsewhere")];
        let error = scan_persist_stores(&[pattern], &configured).expect_err("duplicate");
        assert!(
            error
                .to_string()
                .contains("two persistent stores are named \"one\"")
        );

        let error = scan_persist_stores(&["[".to_owned()], &[]).expect_err("bad glob");
        assert!(matches!(error, PersistStoreScanError::BadPattern { .. }));
    }

    #[test]
    fn miner_policy_denial_wins_and_an_empty_allow_list_allows_all() {
        let mut store = PersistStoreConfig::new("s", "/s");
        assert!(store.admits_miner(7));
        store.allow_miners = vec![7, 8];
        store.deny_miners = vec![8];
        assert!(store.admits_miner(7));
        assert!(!store.admits_miner(8));
        assert!(!store.admits_miner(9));
        assert_eq!(parse_miner("f01000"), Some(1000));
        assert_eq!(parse_miner("t0"), None);
        assert_eq!(parse_miner("f1abc"), None);
    }
}
