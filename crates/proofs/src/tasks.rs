//! The task and output JSON of each sealing stage, as damocles-worker writes them.
//!
//! Field names and encodings are the reference's (snake_case fields, proof types as
//! strings like `"StackedDrg2KiBV1_1"`, 32-byte values as arrays of numbers, the phase
//! outputs as filecoin-proofs-api's own serde forms), so a processor written for damocles
//! understands sealcluster's requests and the other way round. `c1` is not a processor
//! stage in damocles (it runs inside its worker); its task is sealcluster's own.

use std::path::PathBuf;

use filecoin_proofs_api::seal::{
    SealCommitPhase1Output, SealPreCommitPhase1Output, SealPreCommitPhase2Output,
};
use filecoin_proofs_api::{
    ChallengeSeed, Commitment, PieceInfo, ProverId, RegisteredPoStProof, RegisteredSealProof,
    RegisteredUpdateProof, SectorId, Ticket,
};
use serde::{Deserialize, Serialize};

/// Where a piece's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PieceSource {
    /// Fetched over HTTP.
    Url(String),
    /// A file on this machine.
    Local(PathBuf),
    /// Zeros (a committed-capacity filler).
    Pledge,
}

/// One piece to stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceToStage {
    /// Where its bytes come from.
    pub piece_file: PieceSource,
    /// How many bytes of data it has (the rest of the piece is zeros).
    pub payload_size: u64,
    /// Its padded size in the sector (a power of two).
    pub piece_size: u64,
}

/// `add_pieces`: write pieces into the staged file. Output: `[PieceInfo]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddPiecesTask {
    /// The seal proof (and so the sector size).
    pub seal_proof_type: RegisteredSealProof,
    /// The pieces, in order.
    pub pieces: Vec<PieceToStage>,
    /// The staged (unsealed) file to write.
    pub staged_filepath: PathBuf,
}

/// `tree_d`: prepare the data tree. Output: `true`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TreeDTask {
    /// The seal proof.
    pub registered_proof: RegisteredSealProof,
    /// The staged file.
    pub staged_file: PathBuf,
    /// The sector's cache directory.
    pub cache_dir: PathBuf,
}

/// `pc1`. Output: filecoin-proofs-api's `SealPreCommitPhase1Output`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pc1Task {
    /// The seal proof.
    pub registered_proof: RegisteredSealProof,
    /// The sector's cache directory.
    pub cache_path: PathBuf,
    /// The staged file.
    pub in_path: PathBuf,
    /// The sealed file to produce.
    pub out_path: PathBuf,
    /// The prover (miner) id.
    pub prover_id: ProverId,
    /// The sector number.
    pub sector_id: SectorId,
    /// The ticket from the chain.
    pub ticket: Ticket,
    /// The staged pieces.
    pub piece_infos: Vec<PieceInfo>,
}

/// `pc2`. Output: `SealPreCommitPhase2Output` (`{registered_proof, comm_r, comm_d}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pc2Task {
    /// PC1's output.
    pub pc1out: SealPreCommitPhase1Output,
    /// The sector's cache directory.
    pub cache_dir: PathBuf,
    /// The sealed file.
    pub sealed_file: PathBuf,
}

/// `c1` (sealcluster's): the vanilla proofs. Output: `SealCommitPhase1Output`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct C1Task {
    /// The sector's cache directory.
    pub cache_path: PathBuf,
    /// The sealed file.
    pub replica_path: PathBuf,
    /// The prover (miner) id.
    pub prover_id: ProverId,
    /// The sector number.
    pub sector_id: SectorId,
    /// The ticket sealed with.
    pub ticket: Ticket,
    /// The interactive seed from the chain.
    pub seed: Ticket,
    /// PC2's output.
    pub pre_commit: SealPreCommitPhase2Output,
    /// The staged pieces.
    pub piece_infos: Vec<PieceInfo>,
}

/// `synth_proof` (sealcluster's): the synthetic PoRep proofs, made once after PC2 for a
/// proof type with the synthetic feature, so C1 needs no sealing layers later. Output:
/// `true`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SynthProofTask {
    /// The sector's cache directory.
    pub cache_path: PathBuf,
    /// The sealed file.
    pub replica_path: PathBuf,
    /// The prover (miner) id.
    pub prover_id: ProverId,
    /// The sector number.
    pub sector_id: SectorId,
    /// The ticket sealed with.
    pub ticket: Ticket,
    /// PC2's output.
    pub pre_commit: SealPreCommitPhase2Output,
    /// The staged pieces.
    pub piece_infos: Vec<PieceInfo>,
}

/// `c2`: the SNARK. Output: `SealCommitPhase2Output` (`{proof}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct C2Task {
    /// C1's output.
    pub c1out: SealCommitPhase1Output,
    /// The prover (miner) id.
    pub prover_id: ProverId,
    /// The sector number.
    pub sector_id: SectorId,
    /// The miner actor id (the reference sends it; the proof does not use it).
    pub miner_id: u64,
}

/// `unseal`: recover a range of a sector's original data. Output: the bytes written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnsealTask {
    /// The seal proof.
    pub registered_proof: RegisteredSealProof,
    /// The prover (miner) id.
    pub prover_id: ProverId,
    /// The sector number.
    pub sector_id: SectorId,
    /// The data commitment.
    pub comm_d: Commitment,
    /// The ticket sealed with.
    pub ticket: Ticket,
    /// The sector's cache directory.
    pub cache_dir: PathBuf,
    /// The sealed replica.
    pub sealed_file: PathBuf,
    /// Where to write the unsealed bytes.
    pub unsealed_output: PathBuf,
    /// The first unpadded byte to recover.
    pub offset: u64,
    /// How many unpadded bytes to recover.
    pub num_bytes: u64,
}

/// `snap_encode` (snap deals): encode new data into a sealed committed-capacity sector,
/// making a new replica and cache beside the old ones. Output: [`SnapEncodeOutput`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapEncodeTask {
    /// The update proof (and so the sector size).
    pub registered_proof: RegisteredUpdateProof,
    /// The new replica to write (`update/<sector>`).
    pub new_replica_path: PathBuf,
    /// The new cache directory (`update-cache/<sector>`).
    pub new_cache_path: PathBuf,
    /// The sealed replica of the committed-capacity sector (the sector key).
    pub sector_path: PathBuf,
    /// Its cache directory (with `p_aux` and `t_aux`).
    pub sector_cache_path: PathBuf,
    /// The staged file holding the new data, as `add_pieces` writes it.
    pub staged_data_path: PathBuf,
    /// The staged pieces.
    pub piece_infos: Vec<PieceInfo>,
}

/// What `snap_encode` answers: the updated sector's commitments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapEncodeOutput {
    /// The new replica commitment.
    pub comm_r_new: Commitment,
    /// The root of the new replica's tree-r-last.
    pub comm_r_last_new: Commitment,
    /// The new data commitment.
    pub comm_d_new: Commitment,
}

/// `snap_vanilla` (sealcluster's; damocles makes these inside its worker): the vanilla
/// partition proofs of an update, made where the replicas are. Output: one byte array per
/// partition, the `vannilla_proofs` of [`SnapProveTask`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapVanillaTask {
    /// The update proof.
    pub registered_proof: RegisteredUpdateProof,
    /// The replica commitment before the update.
    pub comm_r_old: Commitment,
    /// The replica commitment after it.
    pub comm_r_new: Commitment,
    /// The new data commitment.
    pub comm_d_new: Commitment,
    /// The sealed replica of the committed-capacity sector (the sector key).
    pub sector_path: PathBuf,
    /// Its cache directory.
    pub sector_cache_path: PathBuf,
    /// The new replica.
    pub replica_path: PathBuf,
    /// The new cache directory.
    pub replica_cache_path: PathBuf,
}

/// `snap_prove`: the SNARK of an update from its vanilla proofs. Output: the proof bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapProveTask {
    /// The update proof.
    pub registered_proof: RegisteredUpdateProof,
    /// The vanilla partition proofs. The reference spells the field `vannilla_proofs`;
    /// that spelling is written, and both are read.
    #[serde(rename = "vannilla_proofs", alias = "vanilla_proofs")]
    pub vanilla_proofs: Vec<Vec<u8>>,
    /// The replica commitment before the update.
    pub comm_r_old: Commitment,
    /// The replica commitment after it.
    pub comm_r_new: Commitment,
    /// The new data commitment.
    pub comm_d_new: Commitment,
}

/// One sector a PoSt proves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostReplica {
    /// The sector number.
    pub sector_id: SectorId,
    /// Its replica commitment.
    pub comm_r: Commitment,
    /// Its cache directory.
    pub cache_dir: PathBuf,
    /// Its sealed replica.
    pub sealed_file: PathBuf,
}

/// `window_post` and `winning_post`. Output: [`PostOutput`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostTask {
    /// The miner actor id.
    pub miner_id: u64,
    /// The PoSt proof type.
    pub proof_type: RegisteredPoStProof,
    /// The sectors to prove.
    pub replicas: Vec<PostReplica>,
    /// The challenge randomness.
    pub seed: ChallengeSeed,
}

/// A PoSt's output: the proofs (base64), or the sectors found faulty (and no proofs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostOutput {
    /// One proof per partition, base64.
    pub proofs: Vec<String>,
    /// The sectors that could not be proven.
    pub faults: Vec<u64>,
}

/// `post_vanilla` (sealcluster's): the vanilla PoSt proofs of some sectors, made on the
/// machine that can read them, so the SNARK ([`PostSnarkTask`]) can run on another (a GPU
/// machine that holds no replicas). Output: [`PostVanillaOutput`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostVanillaTask {
    /// The miner actor id.
    pub miner_id: u64,
    /// The PoSt proof type.
    pub proof_type: RegisteredPoStProof,
    /// The sectors to prove. For a window PoSt, one partition's sectors (or all); for a
    /// winning PoSt, the sectors the chain's challenge selected.
    pub replicas: Vec<PostReplica>,
    /// The challenge randomness.
    pub seed: ChallengeSeed,
}

/// One sector's vanilla PoSt proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VanillaPostProof {
    /// The sector number.
    pub sector_id: u64,
    /// The proof, base64.
    pub proof: String,
}

/// What `post_vanilla` answers: a proof for each provable sector, and the sectors that
/// could not be proven (missing or damaged files).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostVanillaOutput {
    /// The proofs, in the order of the task's replicas.
    pub vanilla_proofs: Vec<VanillaPostProof>,
    /// The sectors that could not be proven.
    pub faults: Vec<u64>,
}

/// `post_snark` (sealcluster's): a window or winning PoSt SNARK from vanilla proofs. Output:
/// [`PostOutput`] (proofs only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostSnarkTask {
    /// The miner actor id.
    pub miner_id: u64,
    /// The PoSt proof type.
    pub proof_type: RegisteredPoStProof,
    /// The challenge randomness.
    pub seed: ChallengeSeed,
    /// The vanilla proofs, as `post_vanilla` made them.
    pub vanilla_proofs: Vec<VanillaPostProof>,
    /// For a window PoSt, prove just this partition (the vanilla proofs are its
    /// sectors'); absent, prove every partition.
    #[serde(default)]
    pub partition_index: Option<usize>,
}

/// The prover id of a miner actor: its id as a little-endian number in 32 bytes, as lotus
/// computes it from an `f0` address.
pub fn prover_id_of(miner: u64) -> ProverId {
    let mut prover_id = [0u8; 32];
    // The actor id as an unsigned LEB128 varint, which is what lotus puts in the id.
    let mut value = miner;
    let mut index = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            prover_id[index] = byte;
            break;
        }
        prover_id[index] = byte | 0x80;
        index += 1;
    }
    prover_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_sources_are_written_as_damocles_writes_them() {
        let pieces = vec![
            PieceToStage {
                piece_file: PieceSource::Url("http://market/piecestore/baga".to_owned()),
                payload_size: 100,
                piece_size: 128,
            },
            PieceToStage {
                piece_file: PieceSource::Local("/data/piece".into()),
                payload_size: 1,
                piece_size: 128,
            },
            PieceToStage {
                piece_file: PieceSource::Pledge,
                payload_size: 0,
                piece_size: 1024,
            },
        ];
        let json = serde_json::to_string(&pieces).expect("encode");
        assert_eq!(
            json,
            r#"[{"piece_file":{"url":"http://market/piecestore/baga"},"payload_size":100,"piece_size":128},{"piece_file":{"local":"/data/piece"},"payload_size":1,"piece_size":128},{"piece_file":"pledge","payload_size":0,"piece_size":1024}]"#
        );
        let task: TreeDTask = serde_json::from_str(
            r#"{"registered_proof":"StackedDrg2KiBV1_1","staged_file":"/s","cache_dir":"/c"}"#,
        )
        .expect("decode");
        assert_eq!(
            task.registered_proof,
            RegisteredSealProof::StackedDrg2KiBV1_1
        );
    }

    #[test]
    fn prover_ids_match_lotus() {
        // f01000 → 0xe8 0x07, the LEB128 bytes of 1000.
        assert_eq!(&prover_id_of(1000)[..3], &[0xe8, 0x07, 0x00]);
        assert_eq!(&prover_id_of(5)[..2], &[5, 0]);
    }
}
