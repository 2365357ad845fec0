//! The runner's proof of one partition against a direct filecoin-proofs-api call: two
//! real 2KiB sectors (one partition), the same challenge, timed over several rounds.
//!
//! `cargo bench -p post --bench proof_ratio` (`ROUNDS=…`). The runner's path is what a
//! deadline costs it: each sector's vanilla proof (the file check), the SNARK from the
//! vanilla proofs, and the local verification; the direct path is
//! `generate_window_post`, which makes the vanilla proofs inside. A measurement, not a
//! test: it asserts nothing about time.

#![allow(clippy::print_stdout, reason = "a benchmark prints what it measured")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofs::api::{RegisteredPoStProof, SectorId};
use proofs::tasks::PostReplica;
use proofs::{ProofBackend, RealProofs};

#[path = "../tests/support/mod.rs"]
mod support;

use support::{MINER, cache_directory, seal, sealed_file};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10);
    support::make_post_parameters();
    let store = tempfile::tempdir().expect("a store");
    let proof_type = RegisteredPoStProof::StackedDrgWindow2KiBV1_2;
    let replicas: Vec<PostReplica> = [1u64, 2]
        .iter()
        .map(|number| PostReplica {
            sector_id: SectorId::from(*number),
            comm_r: seal(store.path(), *number),
            cache_dir: cache_directory(store.path(), *number),
            sealed_file: sealed_file(store.path(), *number),
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let backend: Arc<dyn ProofBackend> = Arc::new(RealProofs::default());
    let prover_id = proofs::tasks::prover_id_of(MINER);
    let mut direct = Vec::new();
    let mut through_runner = Vec::new();
    // One warm-up of each, so both find the parameters in memory.
    for round in 0..=rounds {
        let mut seed = [round as u8; 32];
        seed[31] &= 0x3f;
        let private: BTreeMap<SectorId, proofs::api::PrivateReplicaInfo> = replicas
            .iter()
            .map(|replica| {
                (
                    replica.sector_id,
                    proofs::api::PrivateReplicaInfo::new(
                        proof_type,
                        replica.comm_r,
                        replica.cache_dir.clone(),
                        replica.sealed_file.clone(),
                    ),
                )
            })
            .collect();
        let started = Instant::now();
        let proof = proofs::api::post::generate_window_post(&seed, &private, prover_id)
            .expect("a direct window PoSt");
        let direct_time = started.elapsed();
        assert_eq!(proof.len(), 1, "one partition's proof");

        let started = Instant::now();
        let bytes = runtime.block_on(async {
            let (passed, checked) = post::runner::check_replicas(
                &backend,
                MINER,
                proof_type,
                seed,
                replicas.clone(),
                Duration::from_secs(60),
            )
            .await;
            assert_eq!(
                passed.len(),
                replicas.len(),
                "every sector passes its check"
            );
            post::runner::snark_and_verify(
                &backend,
                post::runner::PostVerifier::Real,
                MINER,
                proof_type,
                seed,
                checked.into_values().collect(),
            )
            .await
            .expect("a verified proof through the runner's path")
        });
        let runner_time = started.elapsed();
        assert!(!bytes.is_empty());
        if round > 0 {
            direct.push(direct_time);
            through_runner.push(runner_time);
        }
    }
    let (direct, through_runner) = (median(direct), median(through_runner));
    println!(
        "one partition (two 2KiB sectors), median of {rounds} rounds: direct generate_window_post {direct:?}, \
         the runner's checks + SNARK + verification {through_runner:?}: ratio {:.3}",
        through_runner.as_secs_f64() / direct.as_secs_f64()
    );
}
