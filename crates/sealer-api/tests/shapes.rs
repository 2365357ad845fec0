//! Each wire type against the JSON damocles writes and reads: the keys, the 32-number
//! arrays, base64, integer enums and `null`s, in both directions.

use sealer_api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `value` encodes to exactly `expected`, and `expected` decodes back to `value`.
fn same_both_ways<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
    expected: Value,
) {
    let encoded = serde_json::to_value(value).expect("encode");
    assert_eq!(encoded, expected, "encoding of {value:?}");
    let decoded: T = serde_json::from_value(expected).expect("decode");
    assert_eq!(&decoded, value);
}

#[test]
fn sector_ids_and_allocations_use_the_references_keys() {
    let id = SectorId {
        miner: 1000,
        number: 7,
    };
    assert_eq!(id.to_string(), "s-t01000-7");
    same_both_ways(
        &AllocatedSector { id, proof_type: 8 },
        json!({"ID": {"Miner": 1000, "Number": 7}, "ProofType": 8}),
    );
    let spec: AllocateSectorSpec =
        serde_json::from_value(json!({"AllowedMiners": [], "AllowedProofTypes": null}))
            .expect("a damocles spec");
    assert!(
        spec.allows_miner(5) && spec.allows_proof(3),
        "empty means any"
    );
    let spec: AllocateSectorSpec =
        serde_json::from_value(json!({"AllowedMiners": [1000]})).expect("a partial spec");
    assert!(spec.allows_miner(1000) && !spec.allows_miner(1001));
}

#[test]
fn commitments_are_number_arrays_and_byte_strings_base64() {
    let mut comm_r = [0u8; 32];
    comm_r[0] = 1;
    comm_r[31] = 255;
    let info = PreCommitOnChainInfo {
        comm_r,
        comm_d: [2; 32],
        ticket: Ticket {
            ticket: Base64Bytes(vec![0xff; 32]),
            epoch: -5,
        },
    };
    let mut expected_r = vec![json!(0); 32];
    expected_r[0] = json!(1);
    expected_r[31] = json!(255);
    same_both_ways(
        &info,
        json!({
            "CommR": expected_r,
            "CommD": vec![json!(2); 32],
            "Ticket": {"Ticket": "//////////////////////////////////////////8=", "Epoch": -5},
        }),
    );
    same_both_ways(
        &ProofOnChainInfo {
            proof: Base64Bytes(b"proof".to_vec()),
        },
        json!({"Proof": "cHJvb2Y="}),
    );
    let nil: ProofOnChainInfo = serde_json::from_value(json!({"Proof": null})).expect("nil bytes");
    assert!(nil.proof.0.is_empty());
    assert!(serde_json::from_value::<ProofOnChainInfo>(json!({"Proof": "not base64!"})).is_err());
}

#[test]
fn verdicts_and_chain_states_are_the_references_integers() {
    for (number, result) in [
        (1, SubmitResult::Accepted),
        (2, SubmitResult::DuplicateSubmit),
        (3, SubmitResult::MismatchedSubmission),
        (4, SubmitResult::Rejected),
        (5, SubmitResult::FilesMissed),
    ] {
        same_both_ways(
            &SubmitResponse {
                res: result,
                desc: None,
            },
            json!({"Res": number, "Desc": null}),
        );
    }
    for (number, state) in [
        (1, OnChainState::Pending),
        (2, OnChainState::Packed),
        (3, OnChainState::Landed),
        (4, OnChainState::NotFound),
        (5, OnChainState::Failed),
        (6, OnChainState::PermFailed),
        (7, OnChainState::ShouldAbort),
    ] {
        same_both_ways(
            &PollStateResponse {
                state,
                desc: Some("x".to_owned()),
            },
            json!({"State": number, "Desc": "x"}),
        );
    }
    assert!(serde_json::from_value::<SubmitResponse>(json!({"Res": 0})).is_err());
    assert!(serde_json::from_value::<PollStateResponse>(json!({"State": 8})).is_err());
}

#[test]
fn seeds_reports_pings_and_stores_have_the_references_shapes() {
    same_both_ways(
        &WaitSeedResponse {
            should_wait: true,
            delay: 180,
            seed: None,
        },
        json!({"ShouldWait": true, "Delay": 180, "Seed": null}),
    );
    same_both_ways(
        &WaitSeedResponse {
            should_wait: false,
            delay: 0,
            seed: Some(Seed {
                seed: Base64Bytes(vec![0; 2]),
                epoch: 160,
            }),
        },
        json!({"ShouldWait": false, "Delay": 0, "Seed": {"Seed": "AAA=", "Epoch": 160}}),
    );
    same_both_ways(
        &ReportStateRequest {
            worker: WorkerIdentity {
                instance: "worker-1".to_owned(),
                location: "/mnt/nvme/store0".to_owned(),
            },
            state_change: StateChange {
                prev: "PC1Done".to_owned(),
                next: "PC2Done".to_owned(),
                event: "Event::PC2(..)".to_owned(),
            },
            failure: None,
        },
        json!({"Worker": {"Instance": "worker-1", "Location": "/mnt/nvme/store0"},
               "StateChange": {"Prev": "PC1Done", "Next": "PC2Done", "Event": "Event::PC2(..)"},
               "Failure": null}),
    );
    same_both_ways(
        &SectorStateResponse {
            id: SectorId {
                miner: 1,
                number: 2,
            },
            finalized: false,
            abort_reason: Some("gone".to_owned()),
        },
        json!({"Id": {"Miner": 1, "Number": 2}, "Finalized": false, "AbortReason": "gone"}),
    );
    same_both_ways(
        &WorkerInfo {
            name: "w".to_owned(),
            dest: "10.0.0.2:17890".to_owned(),
            version: "v0.1.0".to_owned(),
            summary: WorkerSummary {
                threads: 4,
                empty: 1,
                paused: 0,
                running: 2,
                waiting: 1,
                errors: 0,
            },
        },
        json!({"Name": "w", "Dest": "10.0.0.2:17890", "Version": "v0.1.0",
               "Summary": {"Threads": 4, "Empty": 1, "Paused": 0, "Running": 2, "Waiting": 1, "Errors": 0}}),
    );
    same_both_ways(
        &StoreBasicInfo {
            name: "persist-1".to_owned(),
            path: "/mnt/persist1".to_owned(),
            strict: false,
            read_only: false,
            weight: 1,
            meta: None,
        },
        json!({"Name": "persist-1", "Path": "/mnt/persist1", "Strict": false, "ReadOnly": false,
               "Weight": 1, "Meta": null}),
    );
    same_both_ways(
        &SectorPiece {
            piece: PieceInfo {
                size: 2048,
                piece_cid: CidJson {
                    cid: "baga6ea4seaq".to_owned(),
                },
            },
            deal_info: PieceDealInfo {
                deal_id: 0,
                allocation_id: 9,
                payload_size: 2032,
                is_builtin_market: false,
            },
        },
        json!({"Piece": {"Size": 2048, "PieceCID": {"/": "baga6ea4seaq"}},
               "DealInfo": {"DealID": 0, "AllocationID": 9, "PayloadSize": 2032, "IsBuiltinMarket": false}}),
    );
}

#[test]
fn sealing_defaults_carry_only_what_the_operator_set_and_refuse_unknown_keys() {
    let defaults = SealingDefaults {
        max_retries: Some(7),
        seal_interval: Some("10s".to_owned()),
        ..SealingDefaults::default()
    };
    same_both_ways(&defaults, json!({"max_retries": 7, "seal_interval": "10s"}));
    assert!(serde_json::from_value::<SealingDefaults>(json!({"max_retry": 7})).is_err());
}
