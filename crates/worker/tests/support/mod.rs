//! What the worker's tests share: a real manager on a devnet with fake proofs.

#![allow(dead_code, reason = "each test file uses part of the support")]

use std::path::Path;
use std::time::Duration;

/// The manager's persistent store `persist-1`, in its home.
pub(crate) fn persist_store(home: &tempfile::TempDir) -> std::path::PathBuf {
    home.path().join("persist-1")
}

/// A devnet, a manager home and the manager serving it; dropped together.
pub(crate) struct ManagerOnDevnet {
    /// The manager.
    pub(crate) manager: manager::RunningManager,
    /// Its home (the SQLite file).
    pub(crate) home: tempfile::TempDir,
    /// The chain.
    pub(crate) devnet: devnet::RunningDevnet,
}

/// Starts a devnet making a block every `block_time` (zero: only when asked) and a
/// manager for miner 1000 on it, with `extra` appended to the manager's configuration.
pub(crate) async fn manager_on_devnet(block_time: Duration, extra: &str) -> ManagerOnDevnet {
    let devnet = devnet::start(
        devnet::DevnetConfig {
            block_time,
            proofs: devnet::ProofMode::Fake,
            ..devnet::DevnetConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("start a devnet");
    let home = tempfile::tempdir().expect("a home");
    let persist = persist_store(&home);
    std::fs::create_dir_all(&persist).expect("a persistent store");
    let text = format!(
        r#"
[Common]
Listen = "127.0.0.1:0"
[Common.API]
Chain = "{chain}"
[[Common.PersistStores]]
Name = "persist-1"
Path = "{persist}"
[[Miners]]
Actor = 1000
{extra}
"#,
        chain = devnet.connection_string(Some(&devnet.admin_token)),
        persist = persist.display(),
    );
    let config = manager::config::ManagerConfig::parse(Path::new("sector-manager.toml"), &text)
        .expect("a manager configuration");
    let manager = manager::start(manager::StartOptions {
        home: home.path().to_owned(),
        config,
        proof_check: manager::ProofCheck::Fake,
        commit_tick: Duration::from_millis(200),
    })
    .await
    .expect("start a manager");
    ManagerOnDevnet {
        manager,
        home,
        devnet,
    }
}
