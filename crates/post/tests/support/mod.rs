//! What the window PoSt test and the proof-ratio benchmark share: real 2KiB sectors of
//! miner t01000 sealed into a persistent store as workers lay it out, and the PoSt
//! parameters they need.

#![allow(dead_code, reason = "each user takes the helpers it needs")]

use std::path::{Path, PathBuf};

use proofs::{ProofBackend as _, RealProofs};
use serde_json::json;

/// The miner the sectors belong to.
pub(crate) const MINER: u64 = 1000;

/// Makes the 2KiB PoSt parameters that are missing from the cache.
pub(crate) fn make_post_parameters() {
    worker::params::generate_missing_of(proofs::params::TestSectorSize::Size2KiB, |circuit| {
        matches!(circuit, proofs::params::Circuit::PoSt(_))
    })
    .expect("the 2KiB PoSt parameters");
}

/// The sealed replica of sector `number` in `store`.
pub(crate) fn sealed_file(store: &Path, number: u64) -> PathBuf {
    store.join("sealed").join(format!("s-t0{MINER}-{number}"))
}

/// The cache directory of sector `number` in `store`.
pub(crate) fn cache_directory(store: &Path, number: u64) -> PathBuf {
    store.join("cache").join(format!("s-t0{MINER}-{number}"))
}

/// Seals a real 2KiB committed-capacity sector into `store` (PC1 and PC2; no proof of
/// replication) and returns its CommR.
pub(crate) fn seal(store: &Path, number: u64) -> [u8; 32] {
    let run = |stage: &str, task: serde_json::Value| {
        RealProofs::default()
            .run(stage, task)
            .unwrap_or_else(|error| panic!("{stage} of sector {number}: {error}"))
    };
    for directory in ["staging", "cache", "sealed"] {
        std::fs::create_dir_all(store.join(directory)).expect("a store directory");
    }
    let staged = store.join("staging").join(format!("s-t0{MINER}-{number}"));
    let (cache, sealed) = (cache_directory(store, number), sealed_file(store, number));
    let pieces = run(
        "add_pieces",
        json!({"seal_proof_type": "StackedDrg2KiBV1_1", "staged_filepath": staged,
               "pieces": [{"piece_file": "pledge", "payload_size": 0, "piece_size": 2048}]}),
    );
    let ticket = [number as u8; 32];
    let pc1 = run(
        "pc1",
        json!({"registered_proof": "StackedDrg2KiBV1_1", "cache_path": cache, "in_path": staged,
               "out_path": sealed, "prover_id": proofs::tasks::prover_id_of(MINER),
               "sector_id": number, "ticket": ticket, "piece_infos": pieces}),
    );
    let pc2 = run(
        "pc2",
        json!({"pc1out": pc1, "cache_dir": cache, "sealed_file": sealed}),
    );
    serde_json::from_value(pc2["comm_r"].clone()).expect("comm_r")
}
