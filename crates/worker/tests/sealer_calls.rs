//! The manager side of the `sealer` plan, end to end: the real sector machine drives a
//! committed-capacity 2KiB sector through a real manager on a devnet making blocks, with
//! every manager call made by `worker::calls` and the stage results made by the fake
//! proof backend (which the manager and the devnet accept in fake-proof mode). The sector
//! ends finalized, active on chain.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sector_fsm::types::{Blob, Bytes32, OpaqueOutput, PieceInfo, PreCommitOutput, Ticket};
use sector_fsm::{Action, Event, Plan, RetryPolicy, Sector, StageTask, Timestamp};
use worker::config::{Layer, SealingOverrides, layered_sealing};
use worker::manager_client::ManagerClient;

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis();
    Timestamp::from_unix_millis(u64::try_from(millis).expect("milliseconds fit"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cc_sector_goes_through_every_manager_call_of_the_sealer_plan() {
    let started =
        support::manager_on_devnet(Duration::from_millis(100), &support::quick_batches(1)).await;
    let token = started.manager.issue_token(&[
        chain_client::auth::Permission::Read,
        chain_client::auth::Permission::Write,
    ]);
    let client = ManagerClient::connect(
        &worker::config::SectorManagerSection {
            rpc_client: worker::config::RpcClient {
                addr: started.manager.url(),
                headers: Default::default(),
            },
            piece_token: None,
            token: Some(token),
        },
        Duration::from_secs(10),
    )
    .expect("a client");
    let thread_settings = SealingOverrides {
        allowed_miners: Some(vec![1000]),
        allowed_sizes: Some(vec![storage_alloc::SectorSize::Size2KiB]),
        rpc_polling_interval: Some(Duration::from_millis(200)),
        recover_interval: Some(Duration::from_millis(200)),
        ..SealingOverrides::default()
    };
    let sealing = layered_sealing(&[(Layer::Thread, &thread_settings)]).sealing;
    let cc_comm_d =
        manager::sealer::cc_comm_d(fvm_shared::sector::RegisteredSealProof::StackedDRG2KiBV1P1)
            .expect("the CC CommD");
    let persist = support::persist_store(&started.home);
    let policy = RetryPolicy {
        max_retries: 100,
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        resubmit_delay: Duration::from_millis(200),
    };
    let mut sector = Sector::new(Plan::Sealer);
    let mut calls = std::collections::BTreeMap::<String, usize>::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the sector did not finish: {:?}",
            sector.state()
        );
        let action = sector.next_action(now()).expect("an action");
        let event = match action {
            Action::Call(call) => {
                *calls.entry(call.method().to_owned()).or_default() += 1;
                worker::calls::perform(&client, &call, &sealing).await
            }
            Action::Advance(event) => event,
            Action::WaitUntil(until) => {
                let wait = until.saturating_duration_since(now());
                tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                continue;
            }
            Action::AwaitOperator { failure, .. } => panic!("the sector paused: {failure:?}"),
            Action::Run(task) => match task {
                StageTask::AddPieces { .. } => Event::AddPiece(vec![PieceInfo {
                    commitment: Bytes32(cc_comm_d),
                    padded_size: 2048,
                }]),
                StageTask::TreeD { .. } => Event::BuildTreeD,
                StageTask::Pc1 {
                    sector: allocated, ..
                } => {
                    // A driver asks for the ticket while it holds the PC1 slot; at the
                    // chain's first epochs the manager has none yet, which is temporary.
                    match client
                        .assign_ticket(sealer_api::types::SectorId {
                            miner: allocated.id.miner,
                            number: allocated.id.number,
                        })
                        .await
                    {
                        Err(error) => {
                            *calls
                                .entry("ticket refused for now".to_owned())
                                .or_default() += 1;
                            Event::Failed(sector_fsm::Failure::new(
                                error.failure_level(),
                                error.to_string(),
                            ))
                        }
                        Ok(ticket) => Event::Pc1 {
                            ticket: Ticket {
                                randomness: Bytes32(
                                    ticket.ticket.0.as_slice().try_into().expect("32 bytes"),
                                ),
                                epoch: ticket.epoch,
                            },
                            output: OpaqueOutput(serde_json::json!("fake pc1")),
                        },
                    }
                }
                StageTask::Pc2 {
                    sector: allocated, ..
                } => {
                    let mut comm_r = [0u8; 32];
                    comm_r[..8].copy_from_slice(&allocated.id.number.to_le_bytes());
                    comm_r[31] = 0x0c;
                    Event::Pc2(PreCommitOutput {
                        comm_r: Bytes32(comm_r),
                        comm_d: Bytes32(cc_comm_d),
                    })
                }
                StageTask::C1 { .. } => Event::C1(OpaqueOutput(serde_json::json!("fake c1"))),
                StageTask::C2 { .. } => {
                    let data = sector.data();
                    let allocated = data.allocated.expect("allocated");
                    let pre = data.pre_commit.as_ref().expect("a precommit");
                    let seal = proofs::SealToVerify {
                        registered_proof: proofs::api::RegisteredSealProof::try_from(
                            fvm_shared::sector::RegisteredSealProof::StackedDRG2KiBV1P1,
                        )
                        .expect("a seal proof"),
                        comm_r: pre.comm_r.0,
                        comm_d: pre.comm_d.0,
                        prover_id: proofs::tasks::prover_id_of(allocated.id.miner),
                        sector_id: proofs::api::SectorId::from(allocated.id.number),
                        ticket: data.ticket.expect("a ticket").randomness.0,
                        seed: data.seed.expect("a seed").randomness.0,
                        proof: Vec::new(),
                    };
                    Event::C2(Blob(proofs::FakeProofs::seal_proof(&seal)))
                }
                other => panic!("the sealer plan asked for {other:?}"),
            },
            Action::Persist {
                sector: allocated, ..
            } => {
                let store = client
                    .store_reserve_space(
                        sealer_api::types::SectorId {
                            miner: allocated.id.miner,
                            number: allocated.id.number,
                        },
                        4096,
                        &[],
                    )
                    .await
                    .expect("a reservation")
                    .expect("a store with room");
                for file in storage_alloc::persisted_files(
                    allocated.id,
                    storage_alloc::SectorSize::Size2KiB,
                    storage_alloc::ReplicaKind::Sealed,
                ) {
                    let path = persist.join(file);
                    std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
                    std::fs::write(&path, b"stand-in").expect("a file");
                }
                Event::Persist(store.name)
            }
            Action::Finalize(_) => {
                let allocated = sector.data().allocated.expect("allocated");
                client
                    .report_finalized(sealer_api::types::SectorId {
                        miner: allocated.id.miner,
                        number: allocated.id.number,
                    })
                    .await
                    .expect("finalized");
                break;
            }
        };
        sector
            .handle(event, now(), &policy)
            .expect("a step the machine takes");
    }
    let allocated = sector.data().allocated.expect("allocated");
    let row = started
        .manager
        .manager
        .known_sector(sealer_api::types::SectorId {
            miner: 1000,
            number: allocated.id.number,
        })
        .await
        .expect("the manager's record");
    assert_eq!(row.phase, manager::db::Phase::Finalized);
    for method in [
        "Venus.AllocateSector",
        "Venus.AcquireDeals",
        "Venus.SubmitPreCommit",
        "Venus.PollPreCommitState",
        "Venus.SubmitPersistedEx",
        "Venus.WaitSeed",
        "Venus.SubmitProof",
        "Venus.PollProofState",
    ] {
        assert!(
            calls.contains_key(method),
            "{method} was never called: {calls:?}"
        );
    }
    started.manager.stop().await;
}
