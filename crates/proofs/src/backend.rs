//! The two proof backends behind the built-in processors: real proofs, and a fake for
//! orchestration tests.
//!
//! A backend takes a stage's task as JSON and answers its output as JSON, which is the
//! processor protocol's own currency and keeps the sector state machine free of proof
//! types. [`RealProofs`] runs filecoin-proofs-api. [`FakeProofs`] answers at once (or
//! after a configured delay) with deterministic outputs of the same shapes, writes small
//! stand-in files where the real steps write files, and fails on request; it exists so
//! that the scheduling, persistence and recovery of a whole cluster can be tested in
//! seconds. It is never the default: a processor uses it only when started with
//! `--fake-proofs`, and its proofs verify only with [`FakeProofs::verify_seal`], never with
//! the real verifier.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use filecoin_proofs_api::post::{
    generate_fallback_sector_challenges, generate_single_vanilla_proof,
    generate_single_window_post_with_vanilla, generate_window_post,
    generate_window_post_with_vanilla, generate_winning_post, generate_winning_post_with_vanilla,
    verify_window_post, verify_winning_post,
};
use filecoin_proofs_api::seal::{
    add_piece, generate_synth_proofs, get_unsealed_range, seal_commit_phase1, seal_commit_phase2,
    seal_pre_commit_phase1, seal_pre_commit_phase2, verify_seal,
};
use filecoin_proofs_api::update::{
    empty_sector_update_encode_into, generate_empty_sector_update_proof_with_vanilla,
    generate_partition_proofs, verify_empty_sector_update_proof,
};
use filecoin_proofs_api::{
    Commitment, PaddedBytesAmount, PartitionProofBytes, PieceInfo, PoStType, PrivateReplicaInfo,
    ProverId, PublicReplicaInfo, RegisteredPoStProof, RegisteredSealProof, RegisteredUpdateProof,
    SectorId, StorageProofsError, Ticket, UnpaddedByteIndex, UnpaddedBytesAmount,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::tasks::{
    AddPiecesTask, C1Task, C2Task, Pc1Task, Pc2Task, PieceSource, PostOutput, PostReplica,
    PostSnarkTask, PostTask, PostVanillaOutput, PostVanillaTask, SnapEncodeOutput, SnapEncodeTask,
    SnapProveTask, SnapVanillaTask, SynthProofTask, TreeDTask, UnsealTask, VanillaPostProof,
};

/// The stages the built-in processors serve.
pub const BUILT_IN_STAGES: [&str; 15] = [
    "add_pieces",
    "tree_d",
    "pc1",
    "pc2",
    "synth_proof",
    "c1",
    "c2",
    "snap_encode",
    "snap_vanilla",
    "snap_prove",
    "unseal",
    "window_post",
    "winning_post",
    "post_vanilla",
    "post_snark",
];

/// Runs one stage's task. A contract for every backend: the output has the shape the
/// reference gives that stage, the same task gives an equivalent output, and an error is
/// a message fit for an operator.
pub trait ProofBackend: Send + Sync {
    /// Runs `task` of `stage` and returns its output.
    fn run(&self, stage: &str, task: Value) -> Result<Value, String>;
}

fn decode<T: serde::de::DeserializeOwned>(stage: &str, task: Value) -> Result<T, String> {
    serde_json::from_value(task).map_err(|error| format!("the {stage} task is not valid: {error}"))
}

fn encode<T: Serialize>(output: &T) -> Result<Value, String> {
    serde_json::to_value(output).map_err(|error| format!("could not encode the output: {error}"))
}

fn unknown_stage(stage: &str) -> String {
    format!(
        "the built-in processors serve {}; {stage:?} needs a processor of its own",
        BUILT_IN_STAGES.join(", ")
    )
}

/// filecoin-proofs-api, for real.
#[derive(Clone, Debug, Default)]
pub struct RealProofs {
    /// The token sent to the market when a piece URL redirects there.
    pub piece_fetcher_token: Option<String>,
}

impl RealProofs {
    /// Real proofs, with the piece-fetcher token from `PIECE_FETCHER_TOKEN` if it is set.
    pub fn from_environment() -> RealProofs {
        RealProofs {
            piece_fetcher_token: std::env::var(crate::pieces::PIECE_FETCHER_TOKEN_ENVIRONMENT).ok(),
        }
    }
}

impl ProofBackend for RealProofs {
    fn run(&self, stage: &str, task: Value) -> Result<Value, String> {
        match stage {
            "add_pieces" => encode(
                &add_pieces(decode(stage, task)?, self.piece_fetcher_token.as_deref())
                    .map_err(show)?,
            ),
            "tree_d" => encode(&tree_d(decode(stage, task)?).map_err(show)?),
            "pc1" => {
                let task: Pc1Task = decode(stage, task)?;
                prepare_pc1(&task).map_err(show)?;
                encode(
                    &seal_pre_commit_phase1(
                        task.registered_proof,
                        &task.cache_path,
                        &task.in_path,
                        &task.out_path,
                        task.prover_id,
                        task.sector_id,
                        task.ticket,
                        &task.piece_infos,
                    )
                    .map_err(show)?,
                )
            }
            "pc2" => {
                let task: Pc2Task = decode(stage, task)?;
                encode(
                    &seal_pre_commit_phase2(task.pc1out, &task.cache_dir, &task.sealed_file)
                        .map_err(show)?,
                )
            }
            "c1" => {
                let task: C1Task = decode(stage, task)?;
                encode(
                    &seal_commit_phase1(
                        &task.cache_path,
                        &task.replica_path,
                        task.prover_id,
                        task.sector_id,
                        task.ticket,
                        task.seed,
                        task.pre_commit,
                        &task.piece_infos,
                    )
                    .map_err(show)?,
                )
            }
            "c2" => {
                let task: C2Task = decode(stage, task)?;
                encode(
                    &seal_commit_phase2(task.c1out, task.prover_id, task.sector_id)
                        .map_err(show)?,
                )
            }
            "synth_proof" => {
                let task: SynthProofTask = decode(stage, task)?;
                generate_synth_proofs(
                    &task.cache_path,
                    &task.replica_path,
                    task.prover_id,
                    task.sector_id,
                    task.ticket,
                    task.pre_commit,
                    &task.piece_infos,
                )
                .map_err(show)?;
                Ok(json!(true))
            }
            "snap_encode" => encode(&snap_encode(decode(stage, task)?).map_err(show)?),
            "snap_vanilla" => {
                let task: SnapVanillaTask = decode(stage, task)?;
                let proofs = generate_partition_proofs(
                    task.registered_proof,
                    task.comm_r_old,
                    task.comm_r_new,
                    task.comm_d_new,
                    &task.sector_path,
                    &task.sector_cache_path,
                    &task.replica_path,
                    &task.replica_cache_path,
                )
                .map_err(show)?;
                encode(&proofs.into_iter().map(|proof| proof.0).collect::<Vec<_>>())
            }
            "snap_prove" => {
                let task: SnapProveTask = decode(stage, task)?;
                let proof = generate_empty_sector_update_proof_with_vanilla(
                    task.registered_proof,
                    task.vanilla_proofs
                        .into_iter()
                        .map(PartitionProofBytes)
                        .collect(),
                    task.comm_r_old,
                    task.comm_r_new,
                    task.comm_d_new,
                )
                .map_err(show)?;
                encode(&proof.0)
            }
            "unseal" => encode(&unseal(decode(stage, task)?).map_err(show)?),
            "window_post" | "winning_post" => {
                encode(&post(stage, decode(stage, task)?).map_err(show)?)
            }
            "post_vanilla" => encode(&post_vanilla(decode(stage, task)?).map_err(show)?),
            "post_snark" => encode(&post_snark(decode(stage, task)?).map_err(show)?),
            other => Err(unknown_stage(other)),
        }
    }
}

/// Encodes new data into a sealed sector. The new replica must exist at the sector's size
/// and the new cache directory must exist; both are made here when missing.
fn snap_encode(task: SnapEncodeTask) -> anyhow::Result<SnapEncodeOutput> {
    let sector_size = u64::from(task.registered_proof.sector_size());
    std::fs::create_dir_all(&task.new_cache_path)
        .with_context(|| format!("create {}", task.new_cache_path.display()))?;
    if let Some(parent) = task.new_replica_path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let replica = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&task.new_replica_path)
        .with_context(|| format!("create {}", task.new_replica_path.display()))?;
    replica
        .set_len(sector_size)
        .with_context(|| format!("size {}", task.new_replica_path.display()))?;
    let encoded = empty_sector_update_encode_into(
        task.registered_proof,
        &task.new_replica_path,
        &task.new_cache_path,
        &task.sector_path,
        &task.sector_cache_path,
        &task.staged_data_path,
        &task.piece_infos,
    )?;
    Ok(SnapEncodeOutput {
        comm_r_new: encoded.comm_r_new,
        comm_r_last_new: encoded.comm_r_last_new,
        comm_d_new: encoded.comm_d_new,
    })
}

/// The facts a snap-deals update proof is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateToVerify {
    /// The update proof.
    pub registered_proof: RegisteredUpdateProof,
    /// The replica commitment before the update.
    pub comm_r_old: Commitment,
    /// The replica commitment after it.
    pub comm_r_new: Commitment,
    /// The new data commitment.
    pub comm_d_new: Commitment,
    /// The proof bytes.
    pub proof: Vec<u8>,
}

/// Checks a real snap-deals update proof with the real verifier.
pub fn verify_real_update(update: &UpdateToVerify) -> Result<bool, String> {
    verify_empty_sector_update_proof(
        update.registered_proof,
        &update.proof,
        update.comm_r_old,
        update.comm_r_new,
        update.comm_d_new,
    )
    .map_err(show)
}

/// The replicas whose files are gone; they cannot be proven.
fn missing_replicas(replicas: &[PostReplica]) -> Vec<u64> {
    replicas
        .iter()
        .filter(|replica| !replica.sealed_file.is_file() || !replica.cache_dir.is_dir())
        .map(|replica| u64::from(replica.sector_id))
        .collect()
}

/// Makes each sector's vanilla proof for the challenges the seed gives it. A sector that
/// cannot be read or proven is reported as a fault and the others are still proven, so
/// one bad disk costs its own sectors only.
fn post_vanilla(task: PostVanillaTask) -> anyhow::Result<PostVanillaOutput> {
    use base64::Engine as _;
    if task.replicas.is_empty() {
        bail!("a PoSt needs at least one sector");
    }
    let prover_id = crate::tasks::prover_id_of(task.miner_id);
    let sectors: Vec<SectorId> = task
        .replicas
        .iter()
        .map(|replica| replica.sector_id)
        .collect();
    let challenges =
        generate_fallback_sector_challenges(task.proof_type, &task.seed, &sectors, prover_id)?;
    let mut output = PostVanillaOutput::default();
    let missing = missing_replicas(&task.replicas);
    for replica in &task.replicas {
        let sector = u64::from(replica.sector_id);
        if missing.contains(&sector) {
            output.faults.push(sector);
            continue;
        }
        let Some(sector_challenges) = challenges.get(&replica.sector_id) else {
            bail!("filecoin-proofs gave no challenges for sector {sector}");
        };
        let info = PrivateReplicaInfo::new(
            task.proof_type,
            replica.comm_r,
            replica.cache_dir.clone(),
            replica.sealed_file.clone(),
        );
        match generate_single_vanilla_proof(
            task.proof_type,
            replica.sector_id,
            &info,
            sector_challenges,
        ) {
            Ok(proof) => output.vanilla_proofs.push(VanillaPostProof {
                sector_id: sector,
                proof: base64::engine::general_purpose::STANDARD.encode(proof),
            }),
            Err(error) => {
                // Standard error is the processor's log, passed through to the worker's.
                eprintln!("sector {sector} cannot be proven and is reported as faulty: {error:#}");
                output.faults.push(sector);
            }
        }
    }
    Ok(output)
}

/// Makes the PoSt SNARK from vanilla proofs.
fn post_snark(task: PostSnarkTask) -> anyhow::Result<PostOutput> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut vanilla = Vec::with_capacity(task.vanilla_proofs.len());
    for proof in &task.vanilla_proofs {
        vanilla.push(engine.decode(&proof.proof).with_context(|| {
            format!(
                "decode the vanilla proof of sector {} (base64)",
                proof.sector_id
            )
        })?);
    }
    let prover_id = crate::tasks::prover_id_of(task.miner_id);
    let proofs: Vec<Vec<u8>> = match (task.proof_type.typ(), task.partition_index) {
        (PoStType::Window, Some(partition)) => vec![
            generate_single_window_post_with_vanilla(
                task.proof_type,
                &task.seed,
                prover_id,
                &vanilla,
                partition,
            )?
            .0,
        ],
        (PoStType::Window, None) => {
            generate_window_post_with_vanilla(task.proof_type, &task.seed, prover_id, &vanilla)?
                .into_iter()
                .map(|(_, proof)| proof)
                .collect()
        }
        (PoStType::Winning, None) => {
            generate_winning_post_with_vanilla(task.proof_type, &task.seed, prover_id, &vanilla)?
                .into_iter()
                .map(|(_, proof)| proof)
                .collect()
        }
        (PoStType::Winning, Some(_)) => {
            bail!("a winning PoSt has one partition; leave partition_index out")
        }
    };
    Ok(PostOutput {
        proofs: proofs
            .into_iter()
            .map(|proof| engine.encode(proof))
            .collect(),
        faults: Vec::new(),
    })
}

fn unseal(task: UnsealTask) -> anyhow::Result<u64> {
    if let Some(parent) = task.unsealed_output.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let written = get_unsealed_range(
        task.registered_proof,
        &task.cache_dir,
        &task.sealed_file,
        &task.unsealed_output,
        task.prover_id,
        task.sector_id,
        task.comm_d,
        task.ticket,
        UnpaddedByteIndex(task.offset),
        UnpaddedBytesAmount(task.num_bytes),
    )?;
    Ok(u64::from(written))
}

/// Generates a window or winning PoSt. Sectors whose files are missing, or that the proof
/// finds faulty, are reported as faults with no proof, as the reference does, so the
/// caller can declare them and prove the rest.
fn post(stage: &str, task: PostTask) -> anyhow::Result<PostOutput> {
    use base64::Engine as _;
    let expected = if stage == "window_post" {
        PoStType::Window
    } else {
        PoStType::Winning
    };
    if task.proof_type.typ() != expected {
        bail!("{:?} is not a {stage} proof type", task.proof_type);
    }
    // A replica whose files are gone cannot be proven; like a sector the proof finds
    // faulty, it is reported so the caller can declare it and prove the rest.
    let missing = missing_replicas(&task.replicas);
    if !missing.is_empty() {
        return Ok(PostOutput {
            proofs: Vec::new(),
            faults: missing,
        });
    }
    let replicas: BTreeMap<SectorId, PrivateReplicaInfo> = task
        .replicas
        .iter()
        .map(|replica| {
            (
                replica.sector_id,
                PrivateReplicaInfo::new(
                    task.proof_type,
                    replica.comm_r,
                    replica.cache_dir.clone(),
                    replica.sealed_file.clone(),
                ),
            )
        })
        .collect();
    let prover_id = crate::tasks::prover_id_of(task.miner_id);
    let generated = match expected {
        PoStType::Window => generate_window_post(&task.seed, &replicas, prover_id),
        PoStType::Winning => generate_winning_post(&task.seed, &replicas, prover_id),
    };
    match generated {
        Ok(proofs) => Ok(PostOutput {
            proofs: proofs
                .into_iter()
                .map(|(_, proof)| base64::engine::general_purpose::STANDARD.encode(proof))
                .collect(),
            faults: Vec::new(),
        }),
        Err(error) => match error.downcast_ref::<StorageProofsError>() {
            Some(StorageProofsError::FaultySectors(sectors)) => Ok(PostOutput {
                proofs: Vec::new(),
                faults: sectors.iter().map(|sector| u64::from(*sector)).collect(),
            }),
            _ => Err(error),
        },
    }
}

/// Checks a window or winning PoSt output (its first proof) against the sectors'
/// commitments, with the real verifier.
pub fn verify_real_post(task: &PostTask, output: &PostOutput) -> Result<bool, String> {
    use base64::Engine as _;
    let Some(encoded) = output.proofs.first() else {
        return Ok(false);
    };
    let proof = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|error| format!("the proof is not base64: {error}"))?;
    let replicas: BTreeMap<SectorId, PublicReplicaInfo> = task
        .replicas
        .iter()
        .map(|replica| {
            (
                replica.sector_id,
                PublicReplicaInfo::new(task.proof_type, replica.comm_r),
            )
        })
        .collect();
    let prover_id = crate::tasks::prover_id_of(task.miner_id);
    match task.proof_type.typ() {
        PoStType::Window => verify_window_post(
            &task.seed,
            &[(task.proof_type, &proof)],
            &replicas,
            prover_id,
        ),
        PoStType::Winning => verify_winning_post(&task.seed, &proof, &replicas, prover_id),
    }
    .map_err(show)
}

fn show(error: anyhow::Error) -> String {
    format!("{error:#}")
}

/// Writes the pieces into the staged file: each piece's payload, then zeros to its size.
fn add_pieces(
    task: AddPiecesTask,
    piece_fetcher_token: Option<&str>,
) -> anyhow::Result<Vec<PieceInfo>> {
    if let Some(parent) = task.staged_filepath.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let mut target = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&task.staged_filepath)
        .with_context(|| format!("create the staged file {}", task.staged_filepath.display()))?;
    let mut lengths: Vec<UnpaddedBytesAmount> = Vec::new();
    let mut infos = Vec::new();
    for piece in task.pieces {
        let unpadded = UnpaddedBytesAmount::from(PaddedBytesAmount(piece.piece_size));
        if piece.payload_size > u64::from(unpadded) {
            bail!(
                "a piece of {} bytes holds at most {} bytes of payload, not {}",
                piece.piece_size,
                u64::from(unpadded),
                piece.payload_size
            );
        }
        let payload = crate::pieces::open_payload(
            &piece.piece_file,
            piece.payload_size,
            piece_fetcher_token,
        )?;
        let source = payload.chain(io::repeat(0)).take(u64::from(unpadded));
        let (info, _written) = add_piece(
            task.seal_proof_type,
            source,
            &mut target,
            unpadded,
            &lengths,
        )
        .context("add a piece")?;
        lengths.push(unpadded);
        infos.push(info);
    }
    target.sync_all().context("sync the staged file")?;
    Ok(infos)
}

/// Upstream PC1 builds the data tree itself, so this step checks that the staged file is
/// complete (one whole sector of fr32-padded data, as `add_pieces` writes it) and
/// prepares the cache directory.
fn tree_d(task: TreeDTask) -> anyhow::Result<bool> {
    let expected = u64::from(task.registered_proof.sector_size());
    let actual = std::fs::metadata(&task.staged_file)
        .with_context(|| format!("read {}", task.staged_file.display()))?
        .len();
    if actual != expected {
        bail!(
            "the staged file {} has {actual} bytes, but a sector of {:?} needs {expected}; stage the pieces again",
            task.staged_file.display(),
            task.registered_proof
        );
    }
    std::fs::create_dir_all(&task.cache_dir)
        .with_context(|| format!("create {}", task.cache_dir.display()))?;
    Ok(true)
}

/// PC1 writes into the cache directory and copies the data into the sealed file, which
/// must exist.
fn prepare_pc1(task: &Pc1Task) -> anyhow::Result<()> {
    std::fs::create_dir_all(&task.cache_path)
        .with_context(|| format!("create {}", task.cache_path.display()))?;
    if let Some(parent) = task.out_path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&task.out_path)
        .with_context(|| format!("create the sealed file {}", task.out_path.display()))?;
    Ok(())
}

/// The facts a seal proof is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealToVerify {
    /// The seal proof.
    pub registered_proof: RegisteredSealProof,
    /// The replica commitment.
    pub comm_r: Commitment,
    /// The data commitment.
    pub comm_d: Commitment,
    /// The prover (miner) id.
    pub prover_id: ProverId,
    /// The sector number.
    pub sector_id: SectorId,
    /// The ticket.
    pub ticket: Ticket,
    /// The seed.
    pub seed: Ticket,
    /// The proof bytes.
    pub proof: Vec<u8>,
}

/// Checks a real seal proof with the real verifier.
pub fn verify_real_seal(seal: &SealToVerify) -> Result<bool, String> {
    verify_seal(
        seal.registered_proof,
        seal.comm_r,
        seal.comm_d,
        seal.prover_id,
        seal.sector_id,
        seal.ticket,
        seal.seed,
        &seal.proof,
    )
    .map_err(show)
}

/// How the fake backend behaves, from the JSON in `SEALCLUSTER_FAKE_PROOFS`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeProofsConfig {
    /// Milliseconds each stage takes.
    pub delays_ms: BTreeMap<String, u64>,
    /// Failures to inject.
    pub failures: Vec<FakeFailure>,
    /// A file to which every run appends a JSON line when it starts and when it ends
    /// (`unix_ms`, `stage`, `sector` as named in the task's paths, `phase`, `ok`), for
    /// tests that count how often each step ran.
    pub run_log: Option<std::path::PathBuf>,
}

/// One injected failure: the first `times` calls of `stage` (for `sector_id`, if given)
/// fail with `message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeFailure {
    /// The stage.
    pub stage: String,
    /// Only tasks for this sector number.
    #[serde(default)]
    pub sector_id: Option<u64>,
    /// How many calls fail before the stage succeeds again.
    pub times: u32,
    /// The error message.
    pub message: String,
}

/// The environment variable that configures [`FakeProofs`].
pub const FAKE_PROOFS_ENVIRONMENT: &str = "SEALCLUSTER_FAKE_PROOFS";

/// Deterministic stand-ins for proofs; see the module docs.
#[derive(Debug, Default)]
pub struct FakeProofs {
    config: FakeProofsConfig,
    /// Failures used so far, by index into `config.failures`.
    used: Mutex<BTreeMap<usize, u32>>,
}

impl FakeProofs {
    /// A fake backend with `config`.
    pub fn new(config: FakeProofsConfig) -> FakeProofs {
        FakeProofs {
            config,
            used: Mutex::new(BTreeMap::new()),
        }
    }

    /// A fake backend configured by [`FAKE_PROOFS_ENVIRONMENT`] (none set: no delays,
    /// no failures).
    pub fn from_environment() -> Result<FakeProofs, String> {
        match std::env::var(FAKE_PROOFS_ENVIRONMENT) {
            Ok(text) => serde_json::from_str(&text)
                .map(FakeProofs::new)
                .map_err(|error| format!("{FAKE_PROOFS_ENVIRONMENT} is not valid: {error}")),
            Err(_) => Ok(FakeProofs::default()),
        }
    }

    /// Whether `proof` is the fake proof of this sector; the real verifier rejects it.
    pub fn verify_seal(seal: &SealToVerify) -> bool {
        seal.proof == FakeProofs::seal_proof(seal)
    }

    /// The fake proof of `seal`'s sector (its `proof` field is ignored): what the fake
    /// `c2` answers for it, for simulated workers that skip the earlier stages.
    pub fn seal_proof(seal: &SealToVerify) -> Vec<u8> {
        let mut proof = fake_digest(&json!({
            "comm_r": seal.comm_r, "comm_d": seal.comm_d, "prover_id": seal.prover_id,
            "sector_id": seal.sector_id, "ticket": seal.ticket, "seed": seal.seed,
        }))
        .to_vec();
        proof.resize(192, 0xfa);
        proof
    }

    /// Whether `output` is the fake PoSt of `task` (a window or winning PoSt, by its
    /// proof type); the real verifier rejects it.
    pub fn verify_post(task: &PostTask, output: &PostOutput) -> bool {
        output.proofs.first() == Some(&fake_post_proof(post_stage(task.proof_type), task))
    }

    fn injected_failure(&self, stage: &str, task: &Value) -> Option<String> {
        let sector = task.get("sector_id").and_then(Value::as_u64);
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (index, failure) in self.config.failures.iter().enumerate() {
            let matches = failure.stage == stage
                && failure
                    .sector_id
                    .is_none_or(|wanted| Some(wanted) == sector);
            let count = used.entry(index).or_default();
            if matches && *count < failure.times {
                *count += 1;
                return Some(failure.message.clone());
            }
        }
        None
    }
}

impl ProofBackend for FakeProofs {
    fn run(&self, stage: &str, task: Value) -> Result<Value, String> {
        let Some(log) = &self.config.run_log else {
            return self.run_stage(stage, task);
        };
        let sector = sector_named_in(&task);
        append_run_line(log, stage, sector.as_deref(), "start", None)?;
        let answer = self.run_stage(stage, task);
        append_run_line(log, stage, sector.as_deref(), "end", Some(answer.is_ok()))?;
        answer
    }
}

/// The first sector name (`s-t0<miner>-<number>`) in a task's text, as its paths carry it.
fn sector_named_in(task: &Value) -> Option<String> {
    let text = task.to_string();
    let start = text.find("s-t0")?;
    let name: String = text[start..]
        .chars()
        .take_while(|character| character.is_ascii_alphanumeric() || *character == '-')
        .collect();
    Some(name)
}

fn append_run_line(
    log: &Path,
    stage: &str,
    sector: Option<&str>,
    phase: &str,
    ok: Option<bool>,
) -> Result<(), String> {
    use std::io::Write as _;
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let mut line =
        json!({"unix_ms": unix_ms, "stage": stage, "sector": sector, "phase": phase, "ok": ok})
            .to_string();
    line.push('\n');
    // One write of one short line to a file opened for appending: lines of concurrent
    // processors never interleave.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .map_err(|error| format!("append to the run log {}: {error}", log.display()))
}

impl FakeProofs {
    fn run_stage(&self, stage: &str, task: Value) -> Result<Value, String> {
        if let Some(milliseconds) = self.config.delays_ms.get(stage) {
            std::thread::sleep(Duration::from_millis(*milliseconds));
        }
        if let Some(message) = self.injected_failure(stage, &task) {
            return Err(format!("{message} (injected by the fake proof backend)"));
        }
        match stage {
            "add_pieces" => {
                let task: AddPiecesTask = decode(stage, task)?;
                write_stand_in(
                    &task.staged_filepath,
                    u64::from(task.seal_proof_type.sector_size()).min(4096),
                )?;
                let infos: Vec<Value> = task
                    .pieces
                    .iter()
                    .map(|piece| {
                        // A pledge piece is zeros, whose commitment is known without
                        // hashing: it is the real one, so a committed-capacity sector's
                        // CommD is the one the chain expects even with fake proofs.
                        let commitment = match piece.piece_file {
                            PieceSource::Pledge if piece.piece_size.is_power_of_two() && piece.piece_size >= 128 => {
                                fvm_shared::piece::zero_piece_commitment(
                                    fvm_shared::piece::PaddedPieceSize(piece.piece_size),
                                )
                            }
                            _ => fake_digest(&json!(["piece", piece])),
                        };
                        json!({
                            "commitment": commitment,
                            "size": u64::from(UnpaddedBytesAmount::from(PaddedBytesAmount(piece.piece_size))),
                        })
                    })
                    .collect();
                Ok(Value::Array(infos))
            }
            "tree_d" => {
                let task: TreeDTask = decode(stage, task)?;
                std::fs::create_dir_all(&task.cache_dir).map_err(|error| error.to_string())?;
                Ok(json!(true))
            }
            "pc1" => Ok(json!({"fake_pc1": fake_digest(&task), "task": task})),
            "pc2" => {
                let task: Pc2FakeTask = decode(stage, task)?;
                let pc1 = task.pc1out.get("task").cloned().unwrap_or(Value::Null);
                let proof = pc1.get("registered_proof").cloned().unwrap_or(Value::Null);
                write_stand_in(&task.sealed_file, 2048)?;
                for name in ["sc-02-data-tree-r-last.dat", "p_aux", "t_aux"] {
                    write_stand_in(&task.cache_dir.join(name), 64)?;
                }
                // CommD is a function of the pieces alone, so it is computed for real
                // (cheap: it combines the pieces' commitments); only CommR is made up.
                let comm_d = fake_comm_d(&pc1)?;
                Ok(json!({
                    "registered_proof": proof,
                    "comm_r": fake_digest(&json!(["comm_r", pc1])),
                    "comm_d": comm_d,
                }))
            }
            "synth_proof" => Ok(json!(true)),
            "unseal" => {
                let task: UnsealTask = decode(stage, task)?;
                write_stand_in(&task.unsealed_output, task.num_bytes)?;
                Ok(json!(task.num_bytes))
            }
            "window_post" | "winning_post" => {
                let task: PostTask = decode(stage, task)?;
                let faults = missing_replicas(&task.replicas);
                let proofs = if faults.is_empty() {
                    vec![fake_post_proof(stage, &task)]
                } else {
                    Vec::new()
                };
                encode(&PostOutput { proofs, faults })
            }
            "snap_encode" => {
                let task: SnapEncodeTask = decode(stage, task)?;
                write_stand_in(&task.new_replica_path, 2048)?;
                std::fs::create_dir_all(&task.new_cache_path).map_err(|error| {
                    format!("create {}: {error}", task.new_cache_path.display())
                })?;
                let facts = json!([task.sector_path, task.piece_infos]);
                encode(&SnapEncodeOutput {
                    comm_r_new: fake_digest(&json!(["comm_r_new", facts])),
                    comm_r_last_new: fake_digest(&json!(["comm_r_last_new", facts])),
                    comm_d_new: fake_digest(&json!(["comm_d_new", facts])),
                })
            }
            "snap_vanilla" => {
                let task: SnapVanillaTask = decode(stage, task)?;
                let proof =
                    fake_digest(&json!([task.comm_r_old, task.comm_r_new, task.comm_d_new]));
                Ok(json!([proof]))
            }
            "snap_prove" => {
                let task: SnapProveTask = decode(stage, task)?;
                let mut proof = fake_digest(&json!([
                    task.comm_r_old,
                    task.comm_r_new,
                    task.comm_d_new,
                    task.vanilla_proofs
                ]))
                .to_vec();
                proof.resize(192, 0xfb);
                Ok(json!(proof))
            }
            "post_vanilla" => {
                use base64::Engine as _;
                let task: PostVanillaTask = decode(stage, task)?;
                let missing = missing_replicas(&task.replicas);
                let mut output = PostVanillaOutput::default();
                for replica in &task.replicas {
                    let sector = u64::from(replica.sector_id);
                    if missing.contains(&sector) {
                        output.faults.push(sector);
                    } else {
                        let digest = fake_digest(&json!([task.miner_id, task.seed, sector]));
                        output.vanilla_proofs.push(VanillaPostProof {
                            sector_id: sector,
                            proof: base64::engine::general_purpose::STANDARD.encode(digest),
                        });
                    }
                }
                encode(&output)
            }
            "post_snark" => {
                use base64::Engine as _;
                let task: PostSnarkTask = decode(stage, task)?;
                let sectors: Vec<u64> = task
                    .vanilla_proofs
                    .iter()
                    .map(|proof| proof.sector_id)
                    .collect();
                // The same proof a one-shot PoSt of these sectors gives, so a split PoSt
                // passes the same fake check.
                let stage = post_stage(task.proof_type);
                let digest = fake_digest(&json!([stage, task.miner_id, task.seed, sectors]));
                encode(&PostOutput {
                    proofs: vec![base64::engine::general_purpose::STANDARD.encode(digest)],
                    faults: Vec::new(),
                })
            }
            "c1" => Ok(json!({"fake_c1": fake_digest(&task), "task": task})),
            "c2" => {
                let c1 = task
                    .get("c1out")
                    .and_then(|c1| c1.get("task"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let pre_commit = c1.get("pre_commit").cloned().unwrap_or(Value::Null);
                let mut proof = fake_digest(&json!({
                    "comm_r": pre_commit.get("comm_r"), "comm_d": pre_commit.get("comm_d"),
                    "prover_id": c1.get("prover_id"), "sector_id": c1.get("sector_id"),
                    "ticket": c1.get("ticket"), "seed": c1.get("seed"),
                }))
                .to_vec();
                proof.resize(192, 0xfa);
                Ok(json!({ "proof": proof }))
            }
            other => Err(unknown_stage(other)),
        }
    }
}

#[derive(Deserialize)]
struct Pc2FakeTask {
    pc1out: Value,
    cache_dir: std::path::PathBuf,
    sealed_file: std::path::PathBuf,
}

fn write_stand_in(path: &Path, bytes: u64) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("create {}: {error}", parent.display()))?;
    }
    let contents: Vec<u8> = (0..bytes).map(|index| (index % 251) as u8).collect();
    std::fs::write(path, contents).map_err(|error| format!("write {}: {error}", path.display()))
}

/// The fake backend's PoSt proof of `task`, base64: a digest of the stage, the miner,
/// the seed and the sectors.
/// The one-shot stage that makes a PoSt of `proof_type`: `window_post` or `winning_post`.
pub fn post_stage(proof_type: RegisteredPoStProof) -> &'static str {
    match proof_type.typ() {
        PoStType::Window => "window_post",
        PoStType::Winning => "winning_post",
    }
}

fn fake_post_proof(stage: &str, task: &PostTask) -> String {
    use base64::Engine as _;
    let sectors: Vec<u64> = task
        .replicas
        .iter()
        .map(|replica| u64::from(replica.sector_id))
        .collect();
    let digest = fake_digest(&json!([stage, task.miner_id, task.seed, sectors]));
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// 32 bytes that depend on every byte of `value`'s JSON and form a valid field element;
/// deterministic, not cryptographic.
/// The data commitment of the pieces a fake PC1 task names, as the real PC2 computes it.
fn fake_comm_d(pc1_task: &Value) -> Result<[u8; 32], String> {
    let proof: RegisteredSealProof = serde_json::from_value(
        pc1_task
            .get("registered_proof")
            .cloned()
            .unwrap_or(Value::Null),
    )
    .map_err(|error| format!("pc2: the fake PC1 output names no seal proof: {error}"))?;
    let pieces: Vec<PieceInfo> =
        serde_json::from_value(pc1_task.get("piece_infos").cloned().unwrap_or(Value::Null))
            .map_err(|error| format!("pc2: the fake PC1 output names no pieces: {error}"))?;
    filecoin_proofs_api::seal::compute_comm_d(proof, &pieces)
        .map_err(|error| format!("pc2: compute CommD of the staged pieces: {error:#}"))
}

fn fake_digest(value: &Value) -> [u8; 32] {
    let text = value.to_string();
    let mut state = [
        0x243f_6a88_85a3_08d3u64,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    for (index, byte) in text.bytes().enumerate() {
        let lane = index % 4;
        state[lane] = mix(state[lane] ^ u64::from(byte) ^ ((index as u64) << 8));
    }
    let mut digest = [0u8; 32];
    for (lane, chunk) in digest.chunks_mut(8).enumerate() {
        let value = mix(state[lane] ^ state[(lane + 1) % 4]);
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    // Like a real commitment, a valid BLS12-381 field element (little-endian, below 2^254).
    digest[31] &= 0x3f;
    digest
}

fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEROS: [u8; 32] = [0; 32];

    #[test]
    fn a_fake_committed_capacity_sector_has_the_real_committed_capacity_comm_d() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let fake = FakeProofs::new(FakeProofsConfig::default());
        let staged = fake
            .run(
                "add_pieces",
                json!({
                    "seal_proof_type": "StackedDrg2KiBV1_1",
                    "pieces": [{"piece_file": "pledge", "payload_size": 2032, "piece_size": 2048}],
                    "staged_filepath": directory.path().join("unsealed"),
                }),
            )
            .expect("staged");
        let pc1 = fake
            .run(
                "pc1",
                json!({
                    "registered_proof": "StackedDrg2KiBV1_1", "cache_path": directory.path(),
                    "in_path": directory.path().join("unsealed"),
                    "out_path": directory.path().join("sealed"), "prover_id": ZEROS,
                    "sector_id": 1, "ticket": ZEROS, "piece_infos": staged,
                }),
            )
            .expect("pc1");
        let pc2 = fake
            .run(
                "pc2",
                json!({"pc1out": pc1, "cache_dir": directory.path(),
                       "sealed_file": directory.path().join("sealed")}),
            )
            .expect("pc2");
        let committed_capacity =
            filecoin_proofs_api::seal::compute_comm_d(RegisteredSealProof::StackedDrg2KiBV1_1, &[])
                .expect("the empty sector's CommD");
        assert_eq!(pc2.get("comm_d"), Some(&json!(committed_capacity)));
    }

    #[test]
    fn the_fake_backend_serves_every_built_in_stage_and_fails_on_request() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let fake = FakeProofs::new(FakeProofsConfig {
            delays_ms: BTreeMap::new(),
            failures: vec![FakeFailure {
                stage: "unseal".to_owned(),
                sector_id: Some(7),
                times: 1,
                message: "disk gone".to_owned(),
            }],
            run_log: None,
        });
        let unseal = json!({
            "registered_proof": "StackedDrg2KiBV1_1", "prover_id": ZEROS, "sector_id": 7,
            "comm_d": ZEROS, "ticket": ZEROS, "cache_dir": directory.path(),
            "sealed_file": directory.path().join("sealed"),
            "unsealed_output": directory.path().join("out"), "offset": 0, "num_bytes": 100,
        });
        let error = fake
            .run("unseal", unseal.clone())
            .expect_err("the first call fails");
        assert!(
            error.contains("disk gone (injected by the fake proof backend)"),
            "{error}"
        );
        assert_eq!(
            fake.run("unseal", unseal).expect("the second succeeds"),
            json!(100)
        );
        assert_eq!(
            std::fs::metadata(directory.path().join("out"))
                .expect("written")
                .len(),
            100
        );

        std::fs::write(directory.path().join("sealed"), b"x").expect("write a replica");
        let post = |sealed: &str| {
            json!({
                "miner_id": 1000, "proof_type": "StackedDrgWindow2KiBV1_2", "seed": ZEROS,
                "replicas": [{"sector_id": 7, "comm_r": ZEROS, "cache_dir": directory.path(),
                              "sealed_file": directory.path().join(sealed)}],
            })
        };
        let proven: PostOutput =
            serde_json::from_value(fake.run("window_post", post("sealed")).expect("proves"))
                .expect("a PoSt output");
        assert_eq!((proven.proofs.len(), proven.faults.len()), (1, 0));
        let faulty: PostOutput =
            serde_json::from_value(fake.run("window_post", post("gone")).expect("answers"))
                .expect("a PoSt output");
        assert_eq!(faulty.faults, [7]);
        for stage in BUILT_IN_STAGES {
            let error = fake.run(stage, json!({})).err().unwrap_or_default();
            assert!(
                !error.contains("needs a processor of its own"),
                "{stage}: {error}"
            );
        }
    }
}
