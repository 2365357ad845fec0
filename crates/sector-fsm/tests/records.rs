//! Persisted records: the current format is pinned by a golden file, every format ever
//! written keeps decoding, and bad versions get clear errors.

use expect_test::expect_file;
use sector_fsm::testing::test_policy;
use sector_fsm::types::{
    AllocatedSector, Bytes32, OpaqueOutput, PieceInfo, PreCommitOutput, SealProofType, SectorId,
    Ticket,
};
use sector_fsm::{DecodeError, Event, Plan, Sector, SectorRecord, State, Timestamp};

/// A 2KiB CC sealer sector of miner 1000, number 7, driven to `PC2Done`.
fn sealer_at_pc2_done() -> Sector {
    let now = Timestamp::from_unix_millis(1_764_000_000_000);
    let mut sector = Sector::new(Plan::Sealer);
    for event in [
        Event::Allocate(AllocatedSector {
            id: SectorId {
                miner: 1000,
                number: 7,
            },
            proof_type: SealProofType(5),
        }),
        Event::AcquireDeals(Vec::new()),
        Event::AddPiece(vec![PieceInfo {
            commitment: Bytes32([0xfc; 32]),
            padded_size: 2048,
        }]),
        Event::BuildTreeD,
        Event::AssignTicket,
        Event::Pc1 {
            ticket: Ticket {
                randomness: Bytes32([0x11; 32]),
                epoch: 1200,
            },
            output: OpaqueOutput(serde_json::json!({
                "registered_proof": "StackedDrg2KiBV1_1",
                "labels": {"StackedDrg2KiBV1": {"labels": [], "_h": null}},
                "config": {"id": "tree-d", "size": 127, "rows_to_discard": 0},
                "comm_d": [0, 1, 2]
            })),
        },
        Event::Pc2(PreCommitOutput {
            comm_r: Bytes32([0x22; 32]),
            comm_d: Bytes32([0x33; 32]),
        }),
    ] {
        sector
            .handle(event, now, &test_policy())
            .expect("the happy path is accepted");
    }
    assert_eq!(sector.state(), State::Pc2Done);
    sector
}

#[test]
fn the_current_format_is_pinned_by_a_golden_file() {
    // If this changes, the on-disk format changed: keep the old file, bump
    // `CURRENT_FORMAT_VERSION`, teach `decode` the old version, and add a new golden file.
    let encoded = String::from_utf8(sealer_at_pc2_done().record().encode()).expect("utf-8");
    expect_file!["records/v1-sealer-pc2done.json"].assert_eq(&encoded);
}

#[test]
fn format_1_records_decode() {
    let bytes = include_bytes!("records/v1-sealer-pc2done.json");
    let record = SectorRecord::decode(bytes).expect("a format 1 record decodes");
    assert_eq!(record, *sealer_at_pc2_done().record());
}

#[test]
fn a_record_from_a_newer_build_is_refused_with_advice() {
    let error = SectorRecord::decode(br#"{"format_version": 99}"#).expect_err("too new");
    assert!(matches!(error, DecodeError::TooNew { found: 99 }));
    assert!(error.to_string().contains("upgrade sealcluster"), "{error}");
}

#[test]
fn a_record_without_a_version_is_refused() {
    assert!(matches!(
        SectorRecord::decode(br#"{"state": "PC1Done"}"#),
        Err(DecodeError::NoVersion)
    ));
    assert!(matches!(
        SectorRecord::decode(b"not json"),
        Err(DecodeError::NotARecord(_))
    ));
    assert!(matches!(
        SectorRecord::decode(br#"{"format_version": 0}"#),
        Err(DecodeError::UnknownVersion { found: 0 })
    ));
}

#[test]
fn a_malformed_record_names_its_version_and_the_problem() {
    let error = SectorRecord::decode(br#"{"format_version": 1, "plan": "sealer", "state": 6}"#)
        .expect_err("a state stored as a number is not our format");
    let message = error.to_string();
    assert!(
        message.starts_with("sector record of format version 1 is malformed"),
        "{message}"
    );
}

#[test]
fn a_damocles_worker_cc_record_resumes_where_it_stopped() {
    // damocles-worker stores state index 7 for PC2Done, and its PC2 output as arrays.
    let bytes = include_bytes!("records/damocles-sealer-cc-pc2done.json");
    let record = SectorRecord::decode(bytes).expect("a damocles-worker record decodes");
    assert_eq!(record.format_version, sector_fsm::CURRENT_FORMAT_VERSION);
    assert_eq!((record.plan, record.state), (Plan::Sealer, State::Pc2Done));
    assert_eq!(record.previous_state, Some(State::Pc1Done));
    assert_eq!(
        record.retry.consecutive_temporary_failures, 0,
        "a fresh budget under our rules"
    );
    assert_eq!(
        record.data.deals,
        Some(Vec::new()),
        "a CC sector's absent deals become an empty list"
    );
    assert_eq!(
        record.data.ticket,
        Some(Ticket {
            randomness: Bytes32([0x11; 32]),
            epoch: 1200
        })
    );
    assert_eq!(
        record.data.pre_commit,
        Some(PreCommitOutput {
            comm_r: Bytes32([0x22; 32]),
            comm_d: Bytes32([0x33; 32])
        })
    );
    assert_eq!(record.path.last(), Some(&State::Pc2Done));
    assert!(
        record.path.contains(&State::TreeDBuilt),
        "jumping back to TreeDBuilt stays possible"
    );

    let sector = Sector::from_record(record);
    match sector
        .next_action(Timestamp::UNIX_EPOCH)
        .expect("an action")
    {
        sector_fsm::Action::Call(sector_fsm::ManagerCall::SubmitPreCommit {
            sector: allocated,
            reset,
            ..
        }) => {
            assert_eq!(
                allocated.id,
                SectorId {
                    miner: 1000,
                    number: 7
                }
            );
            assert!(!reset, "nothing was submitted yet");
        }
        other => panic!("expected the PreCommit submission, got {other:?}"),
    }
    // Once imported it is an ordinary record: it round-trips in our format.
    let again = SectorRecord::decode(&sector.record().encode()).expect("re-decodes");
    assert_eq!(again, *sector.record());
}

#[test]
fn a_damocles_worker_deal_record_keeps_its_deals_seed_and_submissions() {
    let bytes = include_bytes!("records/damocles-sealer-deals-seedassigned.json");
    let record = SectorRecord::decode(bytes).expect("a damocles-worker record decodes");
    assert_eq!(record.state, State::SeedAssigned);
    let deals = record.data.deals.as_ref().expect("deals");
    assert_eq!(deals.len(), 2);
    assert_eq!(deals[0].allocation_id, 42);
    assert!(!deals[0].is_pledge() && deals[1].is_pledge());
    assert_eq!(record.data.seed.map(|seed| seed.epoch), Some(1300));
    assert_eq!(
        record.data.persisted_instance.as_deref(),
        Some("persistent-store-1")
    );
    assert!(
        record.data.pre_commit_submitted,
        "past PCSubmitted, a new PreCommit must replace the old"
    );
    let sector = Sector::from_record(record);
    let action = sector
        .next_action(Timestamp::UNIX_EPOCH)
        .expect("an action");
    assert_eq!(action.describe(), "run c1");
}

#[test]
fn a_damocles_worker_record_that_cannot_resume_is_refused_with_the_reason() {
    // PC2Done without a PC2 output: the reference would have failed on it too.
    let text = std::str::from_utf8(include_bytes!("records/damocles-sealer-cc-pc2done.json"))
        .expect("utf-8");
    let mut value: serde_json::Value = serde_json::from_str(text).expect("json");
    value["phases"]["pc2out"] = serde_json::Value::Null;
    let error = SectorRecord::decode(value.to_string().as_bytes()).expect_err("cannot resume");
    assert!(error.to_string().contains("has no PC2 output"), "{error}");

    value["state"] = serde_json::json!(40);
    let error = SectorRecord::decode(value.to_string().as_bytes()).expect_err("no such state");
    assert!(error.to_string().contains("state index 40"), "{error}");
}
