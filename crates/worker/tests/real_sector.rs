//! A 2KiB sector sealed for real through the built-in processors, each a child process
//! (`sealing-worker processor <stage>`), then once more with the Python relay example
//! standing in for PC1; the proof must verify with the real verifier. The sealed sector
//! is then unsealed and proven with window and winning PoSt, whole and split into
//! vanilla proofs and SNARK; a committed-capacity sector takes new data by snap deals.
//! The same pipeline with `--fake-proofs` checks that the fake backend keeps the shapes
//! and that its proofs never pass the real verifier.
//!
//! The 2KiB parameters (about 1.8 GB, some 20 minutes to make) are made once into the
//! machine's parameter cache (`FIL_PROOFS_PARAMETER_CACHE`, which `.cargo/config.toml`
//! points at filecoin-proofs' default) by `sealing-worker params generate` and reused by
//! every later run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proc_sched::{ExternalProcessor, ProcessorCommand};
use proofs::FakeProofs;
use proofs::api::RegisteredUpdateProof;
use proofs::api::{RegisteredSealProof, SectorId};
use proofs::backend::{
    SealToVerify, UpdateToVerify, verify_real_post, verify_real_seal, verify_real_update,
};
use proofs::tasks::prover_id_of;
use proofs::tasks::{PostOutput, PostTask, PostVanillaOutput, SnapEncodeOutput};
use serde_json::{Value, json};

const MINER: u64 = 1000;
const SECTOR_NUMBER: u64 = 7;
const TICKET: [u8; 32] = [1; 32];
const SEED: [u8; 32] = [2; 32];
const POST_SEED: [u8; 32] = [9; 32];
/// The bytes of the deal-like piece sealed into the sector; the rest of the sector's
/// 2,032 unpadded bytes are zeros.
const PAYLOAD_BYTES: usize = 1000;

fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES)
        .map(|index| (index * 7 % 251) as u8)
        .collect()
}

fn worker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sealing-worker"))
}

fn parameter_cache() -> PathBuf {
    std::env::var_os("FIL_PROOFS_PARAMETER_CACHE").map_or_else(
        || "/var/tmp/filecoin-proof-parameters".into(),
        PathBuf::from,
    )
}

/// Makes the 2KiB parameters unless an earlier run did. The tests of this file share one
/// generation: the second to ask waits for the first.
fn ensure_parameters() {
    static GENERATED: std::sync::Once = std::sync::Once::new();
    GENERATED.call_once(generate_parameters);
}

fn generate_parameters() {
    let started = Instant::now();
    let output = std::process::Command::new(worker_binary())
        .args(["params", "generate", "--sector-size", "2KiB"])
        .env("FIL_PROOFS_PARAMETER_CACHE", parameter_cache())
        .output()
        .expect("run sealing-worker params generate");
    assert!(
        output.status.success(),
        "params generate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "2KiB parameters ready in {:.0} s:\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout)
    );
}

fn built_in(stage: &str, fake: bool) -> ProcessorCommand {
    let mut args: Vec<OsString> = vec!["processor".into(), stage.into()];
    if fake {
        args.push("--fake-proofs".into());
    }
    ProcessorCommand {
        args,
        envs: vec![(
            "FIL_PROOFS_PARAMETER_CACHE".into(),
            parameter_cache().into(),
        )],
        ..ProcessorCommand::new(stage, worker_binary())
    }
}

fn python_relay_for(stage: &str) -> ProcessorCommand {
    let relay =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/processors/relay.py");
    ProcessorCommand {
        args: vec![
            relay.into(),
            stage.into(),
            worker_binary().into(),
            "processor".into(),
            stage.into(),
        ],
        envs: vec![(
            "FIL_PROOFS_PARAMETER_CACHE".into(),
            parameter_cache().into(),
        )],
        ..ProcessorCommand::new(stage, "python3")
    }
}

struct Sealed {
    comm_r: [u8; 32],
    comm_d: [u8; 32],
    proof: Vec<u8>,
    cache: PathBuf,
    sealed: PathBuf,
    staged: PathBuf,
}

fn bytes32(value: &Value) -> [u8; 32] {
    serde_json::from_value(value.clone()).expect("32 bytes")
}

/// One processor per stage, started up front.
struct Pipeline {
    processors: std::collections::BTreeMap<&'static str, ExternalProcessor>,
}

impl Pipeline {
    async fn start(
        stages: &[&'static str],
        command_for: impl Fn(&str) -> ProcessorCommand,
    ) -> Pipeline {
        let mut processors = std::collections::BTreeMap::new();
        for stage in stages {
            let processor = ExternalProcessor::start(command_for(stage))
                .await
                .unwrap_or_else(|error| panic!("start the {stage} processor: {error}"));
            processors.insert(*stage, processor);
        }
        Pipeline { processors }
    }

    /// Runs `task` on `stage`'s processor, which must succeed.
    async fn run(&self, stage: &str, task: Value) -> Value {
        let started = Instant::now();
        let output = self.processors[stage]
            .process(&task, Some(Duration::from_secs(600)))
            .await
            .unwrap_or_else(|error| panic!("{stage} failed: {error}"));
        eprintln!("{stage} took {:.2} s", started.elapsed().as_secs_f64());
        output
    }
}

/// Runs the sector through the stages, each on the processor `command_for` gives.
async fn seal(store: &Path, command_for: impl Fn(&str) -> ProcessorCommand) -> Sealed {
    let sector = format!("s-t0{MINER}-{SECTOR_NUMBER}");
    let staged = store.join("data/unsealed").join(&sector);
    let cache = store.join("data/cache").join(&sector);
    let sealed = store.join("data/sealed").join(&sector);
    let prover_id = prover_id_of(MINER);
    let pipeline = Pipeline::start(
        &["add_pieces", "tree_d", "pc1", "pc2", "c1", "c2"],
        command_for,
    )
    .await;
    let run = |stage: &'static str, task: Value| pipeline.run(stage, task);
    let piece_file = store.join("piece");
    std::fs::write(&piece_file, payload()).expect("write the piece");
    let pieces = run(
        "add_pieces",
        json!({
            "seal_proof_type": "StackedDrg2KiBV1_1",
            "pieces": [{"piece_file": {"local": piece_file}, "payload_size": PAYLOAD_BYTES, "piece_size": 2048}],
            "staged_filepath": staged,
        }),
    )
    .await;
    assert_eq!(
        run("tree_d", json!({"registered_proof": "StackedDrg2KiBV1_1", "staged_file": staged, "cache_dir": cache}))
            .await,
        json!(true)
    );
    let pc1 = run(
        "pc1",
        json!({
            "registered_proof": "StackedDrg2KiBV1_1", "cache_path": cache, "in_path": staged,
            "out_path": sealed, "prover_id": prover_id, "sector_id": SECTOR_NUMBER,
            "ticket": TICKET, "piece_infos": pieces,
        }),
    )
    .await;
    let pc2 = run(
        "pc2",
        json!({"pc1out": pc1, "cache_dir": cache, "sealed_file": sealed}),
    )
    .await;
    let c1 = run(
        "c1",
        json!({
            "cache_path": cache, "replica_path": sealed, "prover_id": prover_id,
            "sector_id": SECTOR_NUMBER, "ticket": TICKET, "seed": SEED, "pre_commit": pc2,
            "piece_infos": pieces,
        }),
    )
    .await;
    let c2 = run(
        "c2",
        json!({"c1out": c1, "prover_id": prover_id, "sector_id": SECTOR_NUMBER, "miner_id": MINER}),
    )
    .await;
    Sealed {
        comm_r: bytes32(&pc2["comm_r"]),
        comm_d: bytes32(&pc2["comm_d"]),
        proof: serde_json::from_value(c2["proof"].clone()).expect("proof bytes"),
        cache,
        sealed,
        staged,
    }
}

fn to_verify(sealed: &Sealed, seed: [u8; 32]) -> SealToVerify {
    SealToVerify {
        registered_proof: RegisteredSealProof::StackedDrg2KiBV1_1,
        comm_r: sealed.comm_r,
        comm_d: sealed.comm_d,
        prover_id: prover_id_of(MINER),
        sector_id: SectorId::from(SECTOR_NUMBER),
        ticket: TICKET,
        seed,
        proof: sealed.proof.clone(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start a tokio runtime")
}

#[test]
fn a_real_2kib_sector_is_sealed_through_built_in_processors_and_through_the_python_relay() {
    ensure_parameters();
    let runtime = runtime();
    for via_relay in [false, true] {
        let store = tempfile::tempdir().expect("create a sealing store");
        let sealed = runtime.block_on(seal(store.path(), |stage| {
            if via_relay && stage == "pc1" {
                python_relay_for(stage)
            } else {
                built_in(stage, false)
            }
        }));
        assert_eq!(sealed.proof.len(), 192, "one partition's Groth16 proof");
        assert_eq!(
            verify_real_seal(&to_verify(&sealed, SEED)),
            Ok(true),
            "the proof verifies"
        );
        assert_eq!(
            verify_real_seal(&to_verify(&sealed, [3; 32])),
            Ok(false),
            "the proof does not verify for another seed"
        );
        assert_eq!(
            std::fs::metadata(
                store
                    .path()
                    .join(format!("data/sealed/s-t0{MINER}-{SECTOR_NUMBER}"))
            )
            .expect("the sealed replica exists")
            .len(),
            2048
        );
        assert!(
            !FakeProofs::verify_seal(&to_verify(&sealed, SEED)),
            "a real proof is not a fake one"
        );
        if !via_relay {
            runtime.block_on(prove_and_unseal(store.path(), &sealed));
        }
    }
}

/// Unseals the sector and proves it with window and winning PoSt, through the built-in
/// processors, and checks the results with the real verifiers.
async fn prove_and_unseal(store: &Path, sealed: &Sealed) {
    let unsealer = ExternalProcessor::start(built_in("unseal", false))
        .await
        .expect("start unseal");
    let output = store.join("unsealed-copy");
    let task = json!({
        "registered_proof": "StackedDrg2KiBV1_1", "prover_id": prover_id_of(MINER),
        "sector_id": SECTOR_NUMBER, "comm_d": sealed.comm_d, "ticket": TICKET,
        "cache_dir": sealed.cache, "sealed_file": sealed.sealed, "unsealed_output": output,
        "offset": 0, "num_bytes": 2032,
    });
    let written = unsealer
        .process(&task, Some(Duration::from_secs(120)))
        .await
        .expect("unseal");
    assert_eq!(written, json!(2032));
    let unsealed = std::fs::read(&output).expect("read the unsealed copy");
    assert_eq!(unsealed.len(), 2032);
    assert_eq!(
        unsealed[..PAYLOAD_BYTES],
        payload()[..],
        "unsealing gives back the piece's data"
    );
    assert!(
        unsealed[PAYLOAD_BYTES..].iter().all(|byte| *byte == 0),
        "and zeros after it"
    );
    assert_eq!(
        std::fs::metadata(&sealed.staged)
            .expect("the staged file")
            .len(),
        2048,
        "the staged file holds the fr32-padded sector"
    );

    for (stage, proof_type) in [
        ("window_post", "StackedDrgWindow2KiBV1_2"),
        ("winning_post", "StackedDrgWinning2KiBV1"),
    ] {
        let prover = ExternalProcessor::start(built_in(stage, false))
            .await
            .expect("start a PoSt processor");
        let task_json = json!({
            "miner_id": MINER, "proof_type": proof_type, "seed": POST_SEED,
            "replicas": [{"sector_id": SECTOR_NUMBER, "comm_r": sealed.comm_r, "cache_dir": sealed.cache, "sealed_file": sealed.sealed}],
        });
        let started = Instant::now();
        let output = prover
            .process(&task_json, Some(Duration::from_secs(300)))
            .await
            .unwrap_or_else(|error| panic!("{stage} failed: {error}"));
        eprintln!("{stage} took {:.2} s", started.elapsed().as_secs_f64());
        let task: PostTask = serde_json::from_value(task_json).expect("a PoSt task");
        let output: PostOutput = serde_json::from_value(output).expect("a PoSt output");
        assert!(output.faults.is_empty(), "{stage}: {output:?}");
        assert_eq!(
            verify_real_post(&task, &output),
            Ok(true),
            "{stage} verifies"
        );
        let mut other_seed = task.clone();
        other_seed.seed = [8; 32];
        assert_eq!(
            verify_real_post(&other_seed, &output),
            Ok(false),
            "{stage} is bound to its seed"
        );
    }

    // A sector whose replica is gone is reported as a fault, not as an error.
    let prover = ExternalProcessor::start(built_in("window_post", false))
        .await
        .expect("start window PoSt");
    let missing = json!({
        "miner_id": MINER, "proof_type": "StackedDrgWindow2KiBV1_2", "seed": POST_SEED,
        "replicas": [{"sector_id": SECTOR_NUMBER, "comm_r": sealed.comm_r, "cache_dir": sealed.cache, "sealed_file": store.join("gone")}],
    });
    let answer = prover
        .process(&missing, Some(Duration::from_secs(300)))
        .await
        .expect("window PoSt answers");
    let output: PostOutput = serde_json::from_value(answer).expect("a PoSt output");
    assert_eq!(output.faults, [SECTOR_NUMBER], "{output:?}");
    assert!(output.proofs.is_empty());

    prove_with_vanilla_proofs(store, sealed).await;
}

/// The PoSt split in two, as for a SNARK on another machine: vanilla proofs where the
/// replicas are, then the SNARK from them. A second sector whose files are gone is a
/// fault and does not stop the first from being proven.
async fn prove_with_vanilla_proofs(store: &Path, sealed: &Sealed) {
    let pipeline = Pipeline::start(&["post_vanilla", "post_snark"], |stage| {
        built_in(stage, false)
    })
    .await;
    let lost_sector = SECTOR_NUMBER + 1;
    for (proof_type, partition_index) in [
        ("StackedDrgWindow2KiBV1_2", None),
        ("StackedDrgWindow2KiBV1_2", Some(0)),
        ("StackedDrgWinning2KiBV1", None),
    ] {
        let provable = json!({"sector_id": SECTOR_NUMBER, "comm_r": sealed.comm_r, "cache_dir": sealed.cache, "sealed_file": sealed.sealed});
        let lost = json!({"sector_id": lost_sector, "comm_r": sealed.comm_r, "cache_dir": sealed.cache, "sealed_file": store.join("gone")});
        let vanilla = pipeline
            .run(
                "post_vanilla",
                json!({"miner_id": MINER, "proof_type": proof_type, "seed": POST_SEED, "replicas": [provable, lost]}),
            )
            .await;
        let vanilla: PostVanillaOutput =
            serde_json::from_value(vanilla).expect("a vanilla PoSt output");
        assert_eq!(vanilla.faults, [lost_sector], "{proof_type}");
        assert_eq!(vanilla.vanilla_proofs.len(), 1, "{proof_type}");
        let mut snark = json!({
            "miner_id": MINER, "proof_type": proof_type, "seed": POST_SEED,
            "vanilla_proofs": vanilla.vanilla_proofs,
        });
        if let Some(partition) = partition_index {
            snark["partition_index"] = json!(partition);
        }
        let output: PostOutput =
            serde_json::from_value(pipeline.run("post_snark", snark).await).expect("a PoSt output");
        let task: PostTask = serde_json::from_value(json!({
            "miner_id": MINER, "proof_type": proof_type, "seed": POST_SEED, "replicas": [provable],
        }))
        .expect("a PoSt task");
        assert_eq!(
            verify_real_post(&task, &output),
            Ok(true),
            "{proof_type} (partition {partition_index:?}) from vanilla proofs verifies"
        );
        let mut other_seed = task.clone();
        other_seed.seed = [8; 32];
        assert_eq!(verify_real_post(&other_seed, &output), Ok(false));
    }
}

#[test]
fn a_committed_capacity_sector_takes_new_data_by_snap_deals_and_the_update_proof_verifies() {
    ensure_parameters();
    let runtime = runtime();
    let store = tempfile::tempdir().expect("create a sealing store");
    let path = |directory: &str| {
        store
            .path()
            .join(directory)
            .join(format!("s-t0{MINER}-{SECTOR_NUMBER}"))
    };
    let (staged, cache, sealed) = (path("unsealed"), path("cache"), path("sealed"));
    let (new_data, update, update_cache) = (
        path("unsealed-update"),
        path("update"),
        path("update-cache"),
    );
    runtime.block_on(async {
        let pipeline = Pipeline::start(
            &["add_pieces", "pc1", "pc2", "snap_encode", "snap_vanilla", "snap_prove"],
            |stage| built_in(stage, false),
        )
        .await;
        let run = |stage: &'static str, task: Value| pipeline.run(stage, task);
        // A committed-capacity sector: sealed with zeros only.
        let pledge = run(
            "add_pieces",
            json!({"seal_proof_type": "StackedDrg2KiBV1_1", "staged_filepath": staged,
                   "pieces": [{"piece_file": "pledge", "payload_size": 0, "piece_size": 2048}]}),
        )
        .await;
        let pc1 = run(
            "pc1",
            json!({"registered_proof": "StackedDrg2KiBV1_1", "cache_path": cache, "in_path": staged,
                   "out_path": sealed, "prover_id": prover_id_of(MINER), "sector_id": SECTOR_NUMBER,
                   "ticket": TICKET, "piece_infos": pledge}),
        )
        .await;
        let pc2 = run("pc2", json!({"pc1out": pc1, "cache_dir": cache, "sealed_file": sealed})).await;
        let comm_r_old = bytes32(&pc2["comm_r"]);
        let sealed_before = std::fs::read(&sealed).expect("read the sealed replica");

        // New data, staged as for sealing, then encoded into the sector.
        let piece_file = store.path().join("deal-piece");
        std::fs::write(&piece_file, payload()).expect("write the piece");
        let pieces = run(
            "add_pieces",
            json!({"seal_proof_type": "StackedDrg2KiBV1_1", "staged_filepath": new_data,
                   "pieces": [{"piece_file": {"local": piece_file}, "payload_size": PAYLOAD_BYTES, "piece_size": 2048}]}),
        )
        .await;
        let encoded: SnapEncodeOutput = serde_json::from_value(
            run(
                "snap_encode",
                json!({"registered_proof": "StackedDrg2KiBV1", "new_replica_path": update,
                       "new_cache_path": update_cache, "sector_path": sealed, "sector_cache_path": cache,
                       "staged_data_path": new_data, "piece_infos": pieces}),
            )
            .await,
        )
        .expect("a snap_encode output");
        assert_eq!(
            json!(encoded.comm_d_new),
            pieces[0]["commitment"],
            "one piece filling the sector: the data commitment is the piece's"
        );
        assert_ne!(encoded.comm_r_new, comm_r_old);
        let updated = std::fs::read(&update).expect("read the new replica");
        assert_eq!(updated.len(), 2048);
        assert_ne!(updated, sealed_before, "the new replica holds the new data");
        assert_eq!(
            std::fs::read(&sealed).expect("read the sealed replica"),
            sealed_before,
            "the sector key is left as it was"
        );

        let vanilla = run(
            "snap_vanilla",
            json!({"registered_proof": "StackedDrg2KiBV1", "comm_r_old": comm_r_old,
                   "comm_r_new": encoded.comm_r_new, "comm_d_new": encoded.comm_d_new,
                   "sector_path": sealed, "sector_cache_path": cache, "replica_path": update,
                   "replica_cache_path": update_cache}),
        )
        .await;
        // The field name is the reference's, misspelling included.
        let proof = run(
            "snap_prove",
            json!({"registered_proof": "StackedDrg2KiBV1", "vannilla_proofs": vanilla,
                   "comm_r_old": comm_r_old, "comm_r_new": encoded.comm_r_new,
                   "comm_d_new": encoded.comm_d_new}),
        )
        .await;
        let update_proof = UpdateToVerify {
            registered_proof: RegisteredUpdateProof::StackedDrg2KiBV1,
            comm_r_old,
            comm_r_new: encoded.comm_r_new,
            comm_d_new: encoded.comm_d_new,
            proof: serde_json::from_value(proof).expect("proof bytes"),
        };
        assert_eq!(verify_real_update(&update_proof), Ok(true), "the update proof verifies");
        let mut other_data = update_proof.clone();
        other_data.comm_d_new = bytes32(&pledge[0]["commitment"]);
        assert!(
            !matches!(verify_real_update(&other_data), Ok(true)),
            "and not for other data"
        );
    });
}

#[test]
fn the_fake_backend_keeps_the_shapes_and_its_proofs_fail_the_real_verifier() {
    ensure_parameters();
    let runtime = runtime();
    let store = tempfile::tempdir().expect("create a sealing store");
    let started = Instant::now();
    let sealed = runtime.block_on(seal(store.path(), |stage| built_in(stage, true)));
    eprintln!(
        "a fake sector took {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(FakeProofs::verify_seal(&to_verify(&sealed, SEED)));
    assert!(!FakeProofs::verify_seal(&to_verify(&sealed, [3; 32])));
    assert!(
        !matches!(verify_real_seal(&to_verify(&sealed, SEED)), Ok(true)),
        "the real verifier never accepts a fake proof"
    );
    for name in ["sc-02-data-tree-r-last.dat", "p_aux", "t_aux"] {
        assert!(
            store
                .path()
                .join(format!("data/cache/s-t0{MINER}-{SECTOR_NUMBER}/{name}"))
                .exists(),
            "{name}"
        );
    }
}

#[test]
fn a_synthetic_porep_sector_makes_its_synthetic_proofs_and_passes_c1() {
    let runtime = runtime();
    let store = tempfile::tempdir().expect("create a sealing store");
    let proof = "StackedDrg2KiBV1_1_Feat_SyntheticPoRep";
    runtime.block_on(async {
        let sector = format!("s-t0{MINER}-{SECTOR_NUMBER}");
        let staged = store.path().join("data/unsealed").join(&sector);
        let cache = store.path().join("data/cache").join(&sector);
        let sealed = store.path().join("data/sealed").join(&sector);
        let prover_id = prover_id_of(MINER);
        let pipeline = Pipeline::start(&["add_pieces", "pc1", "pc2", "synth_proof", "c1"], |stage| {
            built_in(stage, false)
        })
        .await;
        let run = |stage: &'static str, task: Value| pipeline.run(stage, task);
        let pieces = run(
            "add_pieces",
            json!({"seal_proof_type": proof, "staged_filepath": staged,
                   "pieces": [{"piece_file": "pledge", "payload_size": 0, "piece_size": 2048}]}),
        )
        .await;
        let pc1 = run(
            "pc1",
            json!({"registered_proof": proof, "cache_path": cache, "in_path": staged, "out_path": sealed,
                   "prover_id": prover_id, "sector_id": SECTOR_NUMBER, "ticket": TICKET, "piece_infos": pieces}),
        )
        .await;
        let pc2 = run("pc2", json!({"pc1out": pc1, "cache_dir": cache, "sealed_file": sealed})).await;
        assert_eq!(pc2["registered_proof"], json!(proof));
        let before: Vec<String> = file_names(&cache);
        let synthetic = run(
            "synth_proof",
            json!({"cache_path": cache, "replica_path": sealed, "prover_id": prover_id,
                   "sector_id": SECTOR_NUMBER, "ticket": TICKET, "pre_commit": pc2, "piece_infos": pieces}),
        )
        .await;
        assert_eq!(synthetic, json!(true));
        let made: Vec<String> = file_names(&cache).into_iter().filter(|name| !before.contains(name)).collect();
        assert!(!made.is_empty(), "the synthetic proofs are written to the cache");
        let c1 = run(
            "c1",
            json!({"cache_path": cache, "replica_path": sealed, "prover_id": prover_id,
                   "sector_id": SECTOR_NUMBER, "ticket": TICKET, "seed": SEED, "pre_commit": pc2,
                   "piece_infos": pieces}),
        )
        .await;
        assert_eq!(c1["registered_proof"], json!(proof), "C1 ran on the synthetic proofs");
    });
}

fn file_names(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory)
        .expect("list the cache")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn an_interrupted_parameter_generation_is_detected_and_its_files_made_again() {
    ensure_parameters();
    // A cache that links to the machine's files, except for the window PoSt circuit,
    // whose files were cut short by a generation that died.
    let cache = tempfile::tempdir().expect("create a parameter cache");
    let window = proofs::params::files(proofs::params::TestSectorSize::Size2KiB)
        .expect("list the parameter files")
        .into_iter()
        .find(|files| matches!(files.circuit, proofs::params::Circuit::PoSt(proof) if proof.typ() == proofs::api::PoStType::Window))
        .expect("the window PoSt circuit");
    let window_names: Vec<_> = [&window.params, &window.verifying_key]
        .iter()
        .map(|path| path.file_name().expect("a file name").to_owned())
        .collect();
    for entry in std::fs::read_dir(parameter_cache()).expect("list the parameter cache") {
        let entry = entry.expect("an entry");
        let name = entry.file_name();
        if window_names.contains(&name) {
            let complete = std::fs::read(entry.path()).expect("read a parameter file");
            std::fs::write(cache.path().join(&name), &complete[..complete.len() / 2])
                .expect("write half of it");
        } else if !name.to_string_lossy().starts_with('.') {
            std::os::unix::fs::symlink(entry.path(), cache.path().join(&name))
                .expect("link a parameter file");
        }
    }
    let marker_name = format!(".generating-{}", window_names[0].to_string_lossy());
    std::fs::write(cache.path().join(&marker_name), b"").expect("leave the marker");

    let params = |command: &str| {
        std::process::Command::new(worker_binary())
            .args(["params", command, "--sector-size", "2KiB"])
            .env("FIL_PROOFS_PARAMETER_CACHE", cache.path())
            .output()
            .expect("run sealing-worker params")
    };
    let checked = params("check");
    let report = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success(), "{report}");
    assert_eq!(
        report
            .matches("INCOMPLETE (an interrupted generation)")
            .count(),
        2,
        "{report}"
    );
    assert!(
        report.contains("2 parameter files for 2KiB are missing or incomplete"),
        "{report}"
    );

    let generated = params("generate");
    let report = String::from_utf8_lossy(&generated.stdout);
    assert!(
        generated.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    assert_eq!(
        report.matches("made: ").count(),
        1,
        "only the window PoSt circuit: {report}"
    );
    assert!(
        !cache.path().join(&marker_name).exists(),
        "the marker is gone"
    );
    for name in &window_names {
        assert_eq!(
            std::fs::metadata(cache.path().join(name))
                .expect("made again")
                .len(),
            std::fs::metadata(parameter_cache().join(name))
                .expect("the machine's")
                .len(),
            "{name:?} is whole again"
        );
    }
    assert!(params("check").status.success());
}
