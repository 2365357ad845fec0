//! Messages to the miner actor, built with the actors' own parameter types, and the CIDs
//! Lotus gives messages.
//!
//! Parameters are CBOR made by fil_actor_miner_state's types for the current actors
//! version (v18), so they are byte for byte what the actor decodes. The builders return an
//! unsigned [`Message`] with zero gas and nonce, as `MpoolPushMessage` expects: the node
//! estimates gas, picks the nonce and signs.

use ::cid::Cid;
use fil_actor_miner_state::v18 as miner;
use fvm_ipld_bitfield::BitField;
use fvm_ipld_encoding::{DAG_CBOR, RawBytes};
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use fvm_shared::piece::PaddedPieceSize;
use fvm_shared::randomness::Randomness;
use fvm_shared::sector::{RegisteredAggregateProof, RegisteredSealProof, RegisteredUpdateProof};
use multihash_codetable::{Code, MultihashDigest as _};

use crate::types::{BlockHeader, PoStProof, SectorPreCommitInfo, Signature};

/// The CID Lotus computes for an unsigned message: DAG-CBOR, blake2b-256.
pub fn message_cid(message: &Message) -> Cid {
    cbor_cid(message)
}

/// The CID of a signed message: the message's own for a BLS signature (BLS signatures
/// are aggregated per block), otherwise that of the `[message, signature]` envelope.
pub fn signed_message_cid(message: &Message, signature: &Signature) -> Cid {
    if signature.signature_type == Signature::BLS {
        return message_cid(message);
    }
    cbor_cid(&(message, RawBytes::new(signature_bytes(signature))))
}

/// The DAG-CBOR bytes of a signature as blocks carry it: the type byte, then the data.
fn signature_bytes(signature: &Signature) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(signature.data.len() + 1);
    bytes.push(signature.signature_type);
    bytes.extend_from_slice(&signature.data);
    bytes
}

/// The DAG-CBOR encoding of a block header: the 16-element array Lotus hashes.
pub fn block_header_cbor(header: &BlockHeader) -> Vec<u8> {
    use fvm_ipld_encoding::BytesSer;
    use fvm_shared::bigint::bigint_ser::BigIntSer;
    let ticket = header
        .ticket
        .as_ref()
        .map(|ticket| (BytesSer(&ticket.vrf_proof),));
    let election = header
        .election_proof
        .as_ref()
        .map(|proof| (proof.win_count, BytesSer(&proof.vrf_proof)));
    let beacons: Vec<(u64, BytesSer<'_>)> = header
        .beacon_entries
        .iter()
        .map(|entry| (entry.round, BytesSer(&entry.data)))
        .collect();
    let posts: Vec<(i64, BytesSer<'_>)> = header
        .win_post_proof
        .iter()
        .map(|proof| (i64::from(proof.post_proof), BytesSer(&proof.proof_bytes)))
        .collect();
    let aggregate = header.bls_aggregate.as_ref().map(signature_bytes);
    let block_signature = header.block_sig.as_ref().map(signature_bytes);
    let fields = (
        header.miner,
        ticket,
        election,
        beacons,
        posts,
        &header.parents,
        BigIntSer(&header.parent_weight),
        header.height,
        header.parent_state_root,
        header.parent_message_receipts,
        header.messages,
        aggregate.as_deref().map(BytesSer),
        header.timestamp,
        block_signature.as_deref().map(BytesSer),
        header.fork_signaling,
        &header.parent_base_fee,
    );
    // Encoding in-memory values cannot fail: every field has a CBOR form.
    fvm_ipld_encoding::to_vec(&fields).unwrap_or_default()
}

/// The CID Lotus computes for a block header.
pub fn block_header_cid(header: &BlockHeader) -> Cid {
    Cid::new_v1(
        DAG_CBOR,
        Code::Blake2b256.digest(&block_header_cbor(header)),
    )
}

fn cbor_cid<T: serde::Serialize>(value: &T) -> Cid {
    // Encoding an in-memory message cannot fail: every field has a CBOR form.
    let bytes = fvm_ipld_encoding::to_vec(value).unwrap_or_default();
    Cid::new_v1(DAG_CBOR, Code::Blake2b256.digest(&bytes))
}

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The parameters could not be encoded.
    #[error("could not encode the {method} parameters: {message}")]
    Encoding {
        /// The method.
        method: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The request is not one the actor would accept.
    #[error("{0}")]
    Invalid(String),
}

fn encode<T: serde::Serialize>(method: &'static str, params: &T) -> Result<RawBytes, MessageError> {
    RawBytes::serialize(params).map_err(|error| MessageError::Encoding {
        method,
        message: error.to_string(),
    })
}

fn unsigned(
    miner: Address,
    from: Address,
    value: TokenAmount,
    method: miner::Method,
    params: RawBytes,
) -> Message {
    Message {
        version: 0,
        from,
        to: miner,
        sequence: 0,
        value,
        method_num: method as u64,
        params,
        gas_limit: 0,
        gas_fee_cap: TokenAmount::default(),
        gas_premium: TokenAmount::default(),
    }
}

/// The miner actor's method numbers this client sends.
pub mod method {
    use super::miner::Method;

    /// `SubmitWindowedPoSt`.
    pub const SUBMIT_WINDOWED_POST: u64 = Method::SubmitWindowedPoSt as u64;
    /// `TerminateSectors`.
    pub const TERMINATE_SECTORS: u64 = Method::TerminateSectors as u64;
    /// `DeclareFaultsRecovered`.
    pub const DECLARE_FAULTS_RECOVERED: u64 = Method::DeclareFaultsRecovered as u64;
    /// `PreCommitSectorBatch2`.
    pub const PRE_COMMIT_SECTOR_BATCH2: u64 = Method::PreCommitSectorBatch2 as u64;
    /// `ProveCommitSectors3`.
    pub const PROVE_COMMIT_SECTORS3: u64 = Method::ProveCommitSectors3 as u64;
    /// `ProveReplicaUpdates3`.
    pub const PROVE_REPLICA_UPDATES3: u64 = Method::ProveReplicaUpdates3 as u64;
    /// `ProveCommitSectorsNI`.
    pub const PROVE_COMMIT_SECTORS_NI: u64 = Method::ProveCommitSectorsNI as u64;
}

/// `PreCommitSectorBatch2`: precommit sectors; `deposit` is sent along for whatever the
/// miner's available balance does not cover.
pub fn pre_commit_sector_batch2(
    miner_address: Address,
    from: Address,
    sectors: &[SectorPreCommitInfo],
    deposit: TokenAmount,
) -> Result<Message, MessageError> {
    if sectors.is_empty() {
        return Err(MessageError::Invalid(
            "a precommit batch needs at least one sector".to_owned(),
        ));
    }
    let params = pre_commit_params(sectors);
    Ok(unsigned(
        miner_address,
        from,
        deposit,
        miner::Method::PreCommitSectorBatch2,
        encode("PreCommitSectorBatch2", &params)?,
    ))
}

/// The actor's parameters for a precommit batch.
pub fn pre_commit_params(sectors: &[SectorPreCommitInfo]) -> miner::PreCommitSectorBatchParams2 {
    miner::PreCommitSectorBatchParams2 {
        sectors: sectors
            .iter()
            .map(|sector| miner::SectorPreCommitInfo {
                seal_proof: sector.seal_proof,
                sector_number: sector.sector_number,
                sealed_cid: sector.sealed_cid,
                seal_rand_epoch: sector.seal_rand_epoch,
                deal_ids: sector.deal_ids.clone(),
                expiration: sector.expiration,
                unsealed_cid: miner::CompactCommD::new(sector.unsealed_cid),
            })
            .collect(),
    }
}

/// A piece to activate in a sector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceActivation {
    /// The piece commitment.
    pub piece_cid: Cid,
    /// Its padded size.
    pub padded_size: u64,
    /// The verified allocation it claims: (client actor id, allocation id).
    pub verified_allocation: Option<(u64, u64)>,
    /// Actors to notify, with their payloads (the market: CBOR of the deal id).
    pub notify: Vec<(Address, Vec<u8>)>,
}

/// A sector to activate and its pieces (none for committed capacity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorActivation {
    /// The sector number.
    pub sector_number: u64,
    /// Its pieces, in order.
    pub pieces: Vec<PieceActivation>,
}

/// The proofs of a commit: one per sector, or one aggregate for all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitProofs {
    /// One proof per sector, in the order of the activations.
    PerSector(Vec<Vec<u8>>),
    /// One SnarkPackV2 aggregate of every sector's proof.
    Aggregate(Vec<u8>),
}

fn piece_manifests(pieces: &[PieceActivation]) -> Vec<miner::PieceActivationManifest> {
    pieces
        .iter()
        .map(|piece| miner::PieceActivationManifest {
            cid: piece.piece_cid,
            size: PaddedPieceSize(piece.padded_size),
            verified_allocation_key: piece
                .verified_allocation
                .map(|(client, id)| miner::VerifiedAllocationKey { client, id }),
            notify: piece
                .notify
                .iter()
                .map(|(address, payload)| miner::DataActivationNotification {
                    address: *address,
                    payload: RawBytes::new(payload.clone()),
                })
                .collect(),
        })
        .collect()
}

/// The actor's parameters for a commit.
pub fn prove_commit_params(
    activations: &[SectorActivation],
    proofs: &CommitProofs,
) -> Result<miner::ProveCommitSectors3Params, MessageError> {
    if activations.is_empty() {
        return Err(MessageError::Invalid(
            "a commit needs at least one sector".to_owned(),
        ));
    }
    let (sector_proofs, aggregate_proof, aggregate_proof_type) = match proofs {
        CommitProofs::PerSector(proofs) => {
            if proofs.len() != activations.len() {
                return Err(MessageError::Invalid(format!(
                    "{} sectors but {} proofs; a commit without aggregation needs one proof per sector",
                    activations.len(),
                    proofs.len()
                )));
            }
            (
                proofs
                    .iter()
                    .map(|proof| RawBytes::new(proof.clone()))
                    .collect(),
                RawBytes::default(),
                None,
            )
        }
        CommitProofs::Aggregate(proof) => (
            Vec::new(),
            RawBytes::new(proof.clone()),
            Some(RegisteredAggregateProof::SnarkPackV2),
        ),
    };
    Ok(miner::ProveCommitSectors3Params {
        sector_activations: activations
            .iter()
            .map(|activation| miner::SectorActivationManifest {
                sector_number: activation.sector_number,
                pieces: piece_manifests(&activation.pieces),
            })
            .collect(),
        sector_proofs,
        aggregate_proof,
        aggregate_proof_type,
        require_activation_success: true,
        require_notification_success: true,
    })
}

/// `ProveCommitSectors3`: prove sectors, one proof each or aggregated; `pledge` is sent
/// along for whatever the miner's available balance does not cover.
pub fn prove_commit_sectors3(
    miner_address: Address,
    from: Address,
    activations: &[SectorActivation],
    proofs: &CommitProofs,
    pledge: TokenAmount,
) -> Result<Message, MessageError> {
    let params = prove_commit_params(activations, proofs)?;
    Ok(unsigned(
        miner_address,
        from,
        pledge,
        miner::Method::ProveCommitSectors3,
        encode("ProveCommitSectors3", &params)?,
    ))
}

/// One partition proven by a window PoSt, with the sectors it skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionProven {
    /// The partition's index in its deadline.
    pub index: u64,
    /// Sectors not proven that were not already declared faulty.
    pub skipped: BitField,
}

/// The actor's parameters for a window PoSt.
pub fn submit_windowed_post_params(
    deadline: u64,
    partitions: &[PartitionProven],
    proofs: &[PoStProof],
    chain_commit_epoch: ChainEpoch,
    chain_commit_randomness: &[u8],
) -> miner::SubmitWindowedPoStParams {
    miner::SubmitWindowedPoStParams {
        deadline,
        partitions: partitions
            .iter()
            .map(|partition| miner::PoStPartition {
                index: partition.index,
                skipped: partition.skipped.clone(),
            })
            .collect(),
        proofs: proofs
            .iter()
            .map(|proof| fvm_shared::sector::PoStProof {
                post_proof: proof.post_proof,
                proof_bytes: proof.proof_bytes.clone(),
            })
            .collect(),
        chain_commit_epoch,
        chain_commit_rand: Randomness(chain_commit_randomness.to_vec()),
    }
}

/// `SubmitWindowedPoSt`.
pub fn submit_windowed_post(
    miner_address: Address,
    from: Address,
    deadline: u64,
    partitions: &[PartitionProven],
    proofs: &[PoStProof],
    chain_commit_epoch: ChainEpoch,
    chain_commit_randomness: &[u8],
) -> Result<Message, MessageError> {
    if partitions.is_empty() || proofs.is_empty() {
        return Err(MessageError::Invalid(
            "a window PoSt needs at least one partition and one proof".to_owned(),
        ));
    }
    let params = submit_windowed_post_params(
        deadline,
        partitions,
        proofs,
        chain_commit_epoch,
        chain_commit_randomness,
    );
    Ok(unsigned(
        miner_address,
        from,
        TokenAmount::default(),
        miner::Method::SubmitWindowedPoSt,
        encode("SubmitWindowedPoSt", &params)?,
    ))
}

/// Sectors of one partition, as faults, recoveries and terminations name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSectors {
    /// The deadline.
    pub deadline: u64,
    /// The partition within it.
    pub partition: u64,
    /// The sectors.
    pub sectors: BitField,
}

/// The actor's parameters for declaring recoveries.
pub fn declare_faults_recovered_params(
    recoveries: &[PartitionSectors],
) -> miner::DeclareFaultsRecoveredParams {
    miner::DeclareFaultsRecoveredParams {
        recoveries: recoveries
            .iter()
            .map(|recovery| miner::RecoveryDeclaration {
                deadline: recovery.deadline,
                partition: recovery.partition,
                sectors: recovery.sectors.clone(),
            })
            .collect(),
    }
}

/// `DeclareFaultsRecovered`: sectors that were faulty can be proven again.
pub fn declare_faults_recovered(
    miner_address: Address,
    from: Address,
    recoveries: &[PartitionSectors],
) -> Result<Message, MessageError> {
    if recoveries.is_empty() {
        return Err(MessageError::Invalid("no recoveries to declare".to_owned()));
    }
    Ok(unsigned(
        miner_address,
        from,
        TokenAmount::default(),
        miner::Method::DeclareFaultsRecovered,
        encode(
            "DeclareFaultsRecovered",
            &declare_faults_recovered_params(recoveries),
        )?,
    ))
}

/// The actor's parameters for terminations.
pub fn terminate_sectors_params(
    terminations: &[PartitionSectors],
) -> miner::TerminateSectorsParams {
    miner::TerminateSectorsParams {
        terminations: terminations
            .iter()
            .map(|termination| miner::TerminationDeclaration {
                deadline: termination.deadline,
                partition: termination.partition,
                sectors: termination.sectors.clone(),
            })
            .collect(),
    }
}

/// `TerminateSectors`.
pub fn terminate_sectors(
    miner_address: Address,
    from: Address,
    terminations: &[PartitionSectors],
) -> Result<Message, MessageError> {
    if terminations.is_empty() {
        return Err(MessageError::Invalid("no sectors to terminate".to_owned()));
    }
    Ok(unsigned(
        miner_address,
        from,
        TokenAmount::default(),
        miner::Method::TerminateSectors,
        encode("TerminateSectors", &terminate_sectors_params(terminations))?,
    ))
}

/// A snap-deals update of one sector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorUpdate {
    /// The sector.
    pub sector_number: u64,
    /// Its deadline.
    pub deadline: u64,
    /// Its partition.
    pub partition: u64,
    /// The new replica commitment.
    pub new_sealed_cid: Cid,
    /// The pieces now in it.
    pub pieces: Vec<PieceActivation>,
}

/// The actor's parameters for snap-deals updates, one proof per sector.
pub fn prove_replica_updates3_params(
    updates: &[SectorUpdate],
    proofs: &[Vec<u8>],
    update_proof_type: RegisteredUpdateProof,
) -> Result<miner::ProveReplicaUpdates3Params, MessageError> {
    if updates.is_empty() || updates.len() != proofs.len() {
        return Err(MessageError::Invalid(format!(
            "{} updates and {} proofs; each update needs its proof",
            updates.len(),
            proofs.len()
        )));
    }
    Ok(miner::ProveReplicaUpdates3Params {
        sector_updates: updates
            .iter()
            .map(|update| miner::SectorUpdateManifest {
                sector: update.sector_number,
                deadline: update.deadline,
                partition: update.partition,
                new_sealed_cid: update.new_sealed_cid,
                pieces: piece_manifests(&update.pieces),
            })
            .collect(),
        sector_proofs: proofs
            .iter()
            .map(|proof| RawBytes::new(proof.clone()))
            .collect(),
        aggregate_proof: RawBytes::default(),
        update_proofs_type: update_proof_type,
        aggregate_proof_type: None,
        require_activation_success: true,
        require_notification_success: true,
    })
}

/// `ProveReplicaUpdates3`.
pub fn prove_replica_updates3(
    miner_address: Address,
    from: Address,
    updates: &[SectorUpdate],
    proofs: &[Vec<u8>],
    update_proof_type: RegisteredUpdateProof,
    pledge: TokenAmount,
) -> Result<Message, MessageError> {
    let params = prove_replica_updates3_params(updates, proofs, update_proof_type)?;
    Ok(unsigned(
        miner_address,
        from,
        pledge,
        miner::Method::ProveReplicaUpdates3,
        encode("ProveReplicaUpdates3", &params)?,
    ))
}

/// A non-interactively sealed sector to activate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonInteractiveSector {
    /// The number it was sealed with.
    pub sealing_number: u64,
    /// The actor id it was sealed for (the receiving miner).
    pub sealer_id: u64,
    /// Its replica commitment.
    pub sealed_cid: Cid,
    /// The number it takes on chain.
    pub sector_number: u64,
    /// The epoch of its sealing randomness.
    pub seal_rand_epoch: ChainEpoch,
    /// When it is to expire.
    pub expiration: ChainEpoch,
}

/// The actor's parameters for non-interactive PoRep.
pub fn prove_commit_sectors_ni_params(
    sectors: &[NonInteractiveSector],
    aggregate_proof: &[u8],
    seal_proof_type: RegisteredSealProof,
    proving_deadline: u64,
) -> miner::ProveCommitSectorsNIParams {
    miner::ProveCommitSectorsNIParams {
        sectors: sectors
            .iter()
            .map(|sector| miner::SectorNIActivationInfo {
                sealing_number: sector.sealing_number,
                sealer_id: sector.sealer_id,
                sealed_cid: sector.sealed_cid,
                sector_number: sector.sector_number,
                seal_rand_epoch: sector.seal_rand_epoch,
                expiration: sector.expiration,
            })
            .collect(),
        aggregate_proof: RawBytes::new(aggregate_proof.to_vec()),
        seal_proof_type,
        aggregate_proof_type: RegisteredAggregateProof::SnarkPackV2,
        proving_deadline,
        require_activation_success: true,
    }
}

/// `ProveCommitSectorsNI`: activate non-interactively sealed (committed-capacity) sectors
/// with one aggregate proof.
pub fn prove_commit_sectors_ni(
    miner_address: Address,
    from: Address,
    sectors: &[NonInteractiveSector],
    aggregate_proof: &[u8],
    seal_proof_type: RegisteredSealProof,
    proving_deadline: u64,
    pledge: TokenAmount,
) -> Result<Message, MessageError> {
    if sectors.is_empty() {
        return Err(MessageError::Invalid("no sectors to activate".to_owned()));
    }
    let params =
        prove_commit_sectors_ni_params(sectors, aggregate_proof, seal_proof_type, proving_deadline);
    Ok(unsigned(
        miner_address,
        from,
        pledge,
        miner::Method::ProveCommitSectorsNI,
        encode("ProveCommitSectorsNI", &params)?,
    ))
}
