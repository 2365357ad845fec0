//! Miner-actor messages: the CBOR parameters each builder makes equal fil_actor_miner_state's
//! own serialisation of the same values and decode as the actor decodes them; method
//! numbers are the actor's; CIDs equal those Lotus computes (a message from Lotus's API
//! docs and a mainnet block, both with their published CIDs).

use std::path::PathBuf;

use chain_client::message::{
    self, CommitProofs, NonInteractiveSector, PartitionProven, PartitionSectors, PieceActivation,
    SectorActivation, SectorUpdate, block_header_cid, message_cid, signed_message_cid,
};
use chain_client::types::{LotusMessage, PoStProof, SectorPreCommitInfo, Signature, TipSet};
use cid::Cid;
use fil_actor_miner_state::v18 as miner;
use fvm_ipld_bitfield::BitField;
use fvm_ipld_encoding::RawBytes;
use fvm_shared::address::Address;
use fvm_shared::commcid::{
    data_commitment_v1_to_cid, piece_commitment_v1_to_cid, replica_commitment_v1_to_cid,
};
use fvm_shared::econ::TokenAmount;
use fvm_shared::piece::PaddedPieceSize;
use fvm_shared::randomness::Randomness;
use fvm_shared::sector::{
    RegisteredAggregateProof, RegisteredPoStProof, RegisteredSealProof, RegisteredUpdateProof,
};

const MINER: u64 = 1000;
const WORKER: u64 = 1001;

fn sealed(seed: u8) -> Cid {
    replica_commitment_v1_to_cid(&[seed; 32]).expect("a sealed CID")
}

fn unsealed(seed: u8) -> Cid {
    data_commitment_v1_to_cid(&[seed; 32]).expect("an unsealed CID")
}

fn piece(seed: u8) -> Cid {
    piece_commitment_v1_to_cid(&[seed; 32]).expect("a piece CID")
}

fn bits(numbers: &[u64]) -> BitField {
    BitField::try_from_bits(numbers.iter().copied()).expect("a bitfield")
}

fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    fvm_ipld_encoding::to_vec(value).expect("encode")
}

/// The parts every builder's message shares.
fn assert_envelope(message: &fvm_shared::message::Message, method: u64, value: TokenAmount) {
    assert_eq!(message.to, Address::new_id(MINER));
    assert_eq!(message.from, Address::new_id(WORKER));
    assert_eq!(message.method_num, method);
    assert_eq!(message.value, value);
    assert_eq!(
        (message.sequence, message.gas_limit, message.version),
        (0, 0, 0)
    );
}

#[test]
fn pre_commit_batch_parameters_are_the_actors() {
    let sectors = vec![
        SectorPreCommitInfo {
            seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
            sector_number: 7,
            sealed_cid: sealed(1),
            seal_rand_epoch: 100,
            deal_ids: vec![],
            expiration: 600_000,
            unsealed_cid: None,
        },
        SectorPreCommitInfo {
            seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
            sector_number: 8,
            sealed_cid: sealed(2),
            seal_rand_epoch: 101,
            deal_ids: vec![5432],
            expiration: 600_001,
            unsealed_cid: Some(unsealed(3)),
        },
    ];
    let sent = message::pre_commit_sector_batch2(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &sectors,
        TokenAmount::from_atto(123),
    )
    .expect("a precommit message");
    assert_envelope(&sent, 28, TokenAmount::from_atto(123));
    let expected = miner::PreCommitSectorBatchParams2 {
        sectors: vec![
            miner::SectorPreCommitInfo {
                seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
                sector_number: 7,
                sealed_cid: sealed(1),
                seal_rand_epoch: 100,
                deal_ids: vec![],
                expiration: 600_000,
                unsealed_cid: miner::CompactCommD::empty(),
            },
            miner::SectorPreCommitInfo {
                seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
                sector_number: 8,
                sealed_cid: sealed(2),
                seal_rand_epoch: 101,
                deal_ids: vec![5432],
                expiration: 600_001,
                unsealed_cid: miner::CompactCommD::of(unsealed(3)),
            },
        ],
    };
    assert_eq!(sent.params.to_vec(), cbor(&expected));
    let decoded: miner::PreCommitSectorBatchParams2 =
        fvm_ipld_encoding::from_slice(&sent.params).expect("the actor decodes it");
    assert_eq!(decoded, expected);
    assert!(
        message::pre_commit_sector_batch2(
            Address::new_id(MINER),
            Address::new_id(WORKER),
            &[],
            TokenAmount::default()
        )
        .is_err(),
        "an empty batch is refused"
    );
}

#[test]
fn prove_commit_parameters_are_the_actors_for_single_and_aggregated_proofs() {
    let activations = vec![
        SectorActivation {
            sector_number: 7,
            pieces: vec![],
        },
        SectorActivation {
            sector_number: 8,
            pieces: vec![PieceActivation {
                piece_cid: piece(4),
                padded_size: 2048,
                verified_allocation: Some((1500, 9)),
                notify: vec![(Address::new_id(5), vec![0x19, 0x15, 0x38])],
            }],
        },
    ];
    let manifests = vec![
        miner::SectorActivationManifest {
            sector_number: 7,
            pieces: vec![],
        },
        miner::SectorActivationManifest {
            sector_number: 8,
            pieces: vec![miner::PieceActivationManifest {
                cid: piece(4),
                size: PaddedPieceSize(2048),
                verified_allocation_key: Some(miner::VerifiedAllocationKey {
                    client: 1500,
                    id: 9,
                }),
                notify: vec![miner::DataActivationNotification {
                    address: Address::new_id(5),
                    payload: RawBytes::new(vec![0x19, 0x15, 0x38]),
                }],
            }],
        },
    ];
    let single = message::prove_commit_sectors3(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &activations,
        &CommitProofs::PerSector(vec![vec![1; 192], vec![2; 192]]),
        TokenAmount::from_atto(77),
    )
    .expect("a commit with one proof per sector");
    assert_envelope(&single, 34, TokenAmount::from_atto(77));
    let expected = miner::ProveCommitSectors3Params {
        sector_activations: manifests.clone(),
        sector_proofs: vec![RawBytes::new(vec![1; 192]), RawBytes::new(vec![2; 192])],
        aggregate_proof: RawBytes::default(),
        aggregate_proof_type: None,
        require_activation_success: true,
        require_notification_success: true,
    };
    assert_eq!(single.params.to_vec(), cbor(&expected));
    let decoded: miner::ProveCommitSectors3Params =
        fvm_ipld_encoding::from_slice(&single.params).expect("the actor decodes it");
    assert_eq!(decoded, expected);

    let aggregated = message::prove_commit_sectors3(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &activations,
        &CommitProofs::Aggregate(vec![3; 1000]),
        TokenAmount::default(),
    )
    .expect("an aggregated commit");
    let expected = miner::ProveCommitSectors3Params {
        sector_activations: manifests,
        sector_proofs: vec![],
        aggregate_proof: RawBytes::new(vec![3; 1000]),
        aggregate_proof_type: Some(RegisteredAggregateProof::SnarkPackV2),
        require_activation_success: true,
        require_notification_success: true,
    };
    assert_eq!(aggregated.params.to_vec(), cbor(&expected));

    let mismatched = message::prove_commit_sectors3(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &activations,
        &CommitProofs::PerSector(vec![vec![1; 192]]),
        TokenAmount::default(),
    );
    assert!(mismatched.is_err(), "two sectors need two proofs");
}

#[test]
fn window_post_fault_recovery_and_termination_parameters_are_the_actors() {
    let post = message::submit_windowed_post(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        3,
        &[PartitionProven {
            index: 0,
            skipped: bits(&[9]),
        }],
        &[PoStProof {
            post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1,
            proof_bytes: vec![5; 192],
        }],
        1234,
        &[6; 32],
    )
    .expect("a window PoSt");
    assert_envelope(&post, 5, TokenAmount::default());
    let expected = miner::SubmitWindowedPoStParams {
        deadline: 3,
        partitions: vec![miner::PoStPartition {
            index: 0,
            skipped: bits(&[9]),
        }],
        proofs: vec![fvm_shared::sector::PoStProof {
            post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1,
            proof_bytes: vec![5; 192],
        }],
        chain_commit_epoch: 1234,
        chain_commit_rand: Randomness(vec![6; 32]),
    };
    assert_eq!(post.params.to_vec(), cbor(&expected));
    fvm_ipld_encoding::from_slice::<miner::SubmitWindowedPoStParams>(&post.params)
        .expect("the actor decodes it");

    let partitions = [
        PartitionSectors {
            deadline: 3,
            partition: 0,
            sectors: bits(&[7, 8]),
        },
        PartitionSectors {
            deadline: 4,
            partition: 1,
            sectors: bits(&[100]),
        },
    ];
    let recovered = message::declare_faults_recovered(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &partitions,
    )
    .expect("a recovery declaration");
    assert_envelope(&recovered, 11, TokenAmount::default());
    let expected = miner::DeclareFaultsRecoveredParams {
        recoveries: partitions
            .iter()
            .map(|entry| miner::RecoveryDeclaration {
                deadline: entry.deadline,
                partition: entry.partition,
                sectors: entry.sectors.clone(),
            })
            .collect(),
    };
    assert_eq!(recovered.params.to_vec(), cbor(&expected));

    let terminated =
        message::terminate_sectors(Address::new_id(MINER), Address::new_id(WORKER), &partitions)
            .expect("a termination");
    assert_envelope(&terminated, 9, TokenAmount::default());
    let expected = miner::TerminateSectorsParams {
        terminations: partitions
            .iter()
            .map(|entry| miner::TerminationDeclaration {
                deadline: entry.deadline,
                partition: entry.partition,
                sectors: entry.sectors.clone(),
            })
            .collect(),
    };
    assert_eq!(terminated.params.to_vec(), cbor(&expected));
    fvm_ipld_encoding::from_slice::<miner::TerminateSectorsParams>(&terminated.params)
        .expect("the actor decodes it");
}

#[test]
fn snap_and_non_interactive_parameters_are_the_actors() {
    let update = SectorUpdate {
        sector_number: 7,
        deadline: 2,
        partition: 0,
        new_sealed_cid: sealed(8),
        pieces: vec![PieceActivation {
            piece_cid: piece(9),
            padded_size: 2048,
            verified_allocation: None,
            notify: vec![],
        }],
    };
    let sent = message::prove_replica_updates3(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        std::slice::from_ref(&update),
        &[vec![4; 192]],
        RegisteredUpdateProof::StackedDRG2KiBV1,
        TokenAmount::default(),
    )
    .expect("a snap update");
    assert_envelope(&sent, 35, TokenAmount::default());
    let expected = miner::ProveReplicaUpdates3Params {
        sector_updates: vec![miner::SectorUpdateManifest {
            sector: 7,
            deadline: 2,
            partition: 0,
            new_sealed_cid: sealed(8),
            pieces: vec![miner::PieceActivationManifest {
                cid: piece(9),
                size: PaddedPieceSize(2048),
                verified_allocation_key: None,
                notify: vec![],
            }],
        }],
        sector_proofs: vec![RawBytes::new(vec![4; 192])],
        aggregate_proof: RawBytes::default(),
        update_proofs_type: RegisteredUpdateProof::StackedDRG2KiBV1,
        aggregate_proof_type: None,
        require_activation_success: true,
        require_notification_success: true,
    };
    assert_eq!(sent.params.to_vec(), cbor(&expected));

    let sector = NonInteractiveSector {
        sealing_number: 7,
        sealer_id: MINER,
        sealed_cid: sealed(5),
        sector_number: 7,
        seal_rand_epoch: 90,
        expiration: 600_000,
    };
    let sent = message::prove_commit_sectors_ni(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &[sector],
        &[6; 500],
        RegisteredSealProof::StackedDRG2KiBV1P2_Feat_NiPoRep,
        12,
        TokenAmount::from_atto(5),
    )
    .expect("an NI-PoRep commit");
    assert_envelope(&sent, 36, TokenAmount::from_atto(5));
    let expected = miner::ProveCommitSectorsNIParams {
        sectors: vec![miner::SectorNIActivationInfo {
            sealing_number: 7,
            sealer_id: MINER,
            sealed_cid: sealed(5),
            sector_number: 7,
            seal_rand_epoch: 90,
            expiration: 600_000,
        }],
        aggregate_proof: RawBytes::new(vec![6; 500]),
        seal_proof_type: RegisteredSealProof::StackedDRG2KiBV1P2_Feat_NiPoRep,
        aggregate_proof_type: RegisteredAggregateProof::SnarkPackV2,
        proving_deadline: 12,
        require_activation_success: true,
    };
    assert_eq!(sent.params.to_vec(), cbor(&expected));
    let decoded: miner::ProveCommitSectorsNIParams =
        fvm_ipld_encoding::from_slice(&sent.params).expect("the actor decodes it");
    assert_eq!(decoded, expected);
}

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/lotus")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("a fixture")
}

#[test]
fn message_and_block_cids_are_the_ones_lotus_computes() {
    // Lotus's API docs print this message with the CID Lotus computed for it.
    let documented = fixture("ChainGetMessage.json")["result"].clone();
    let message: LotusMessage = serde_json::from_value(documented.clone()).expect("a message");
    let expected: Cid = documented["CID"]["/"]
        .as_str()
        .expect("a CID")
        .parse()
        .expect("a CID");
    assert_eq!(message_cid(&message.0), expected);
    assert_eq!(
        expected.to_string(),
        "bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s"
    );

    // A BLS-signed message is known by its message's CID; any other by its envelope's.
    let bls = Signature {
        signature_type: Signature::BLS,
        data: vec![1; 96],
    };
    assert_eq!(signed_message_cid(&message.0, &bls), expected);
    let secp = Signature {
        signature_type: Signature::SECP256K1,
        data: vec![1; 65],
    };
    let envelope = signed_message_cid(&message.0, &secp);
    assert_ne!(envelope, expected);
    assert_eq!(envelope.codec(), fvm_ipld_encoding::DAG_CBOR);

    // A real mainnet block (height 4863283) hashes to its published CID.
    let head: TipSet =
        serde_json::from_value(fixture("ChainHead.json")["result"].clone()).expect("a tipset");
    assert_eq!(head.blocks.len(), 1);
    assert_eq!(block_header_cid(&head.blocks[0]), head.cids[0]);

    // The miner messages' CIDs come from the same function, over their own bytes.
    let precommit = message::pre_commit_sector_batch2(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        &[SectorPreCommitInfo {
            seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
            sector_number: 7,
            sealed_cid: sealed(1),
            seal_rand_epoch: 100,
            deal_ids: vec![],
            expiration: 600_000,
            unsealed_cid: None,
        }],
        TokenAmount::default(),
    )
    .expect("a precommit");
    let json = serde_json::to_value(LotusMessage(precommit.clone())).expect("encode");
    assert_eq!(
        json["CID"]["/"].as_str(),
        Some(message_cid(&precommit).to_string().as_str())
    );
    assert_eq!(json["Method"], 28);
}
