//! The worker's manager client against a real manager: answers decode into the API's
//! types, and each kind of failure is told apart (unknown sector, refused token,
//! unreachable manager), because each makes a sealing thread do something different.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use sealer_api::types::{
    AllocateSectorSpec, PreCommitOnChainInfo, ReportStateRequest, SectorId, StateChange,
    SubmitResult, WorkerIdentity, WorkerInfo, WorkerSummary,
};
use sector_fsm::FailureLevel;
use worker::config::{RpcClient, SectorManagerSection};
use worker::manager_client::{ManagerClient, ManagerErrorKind};

fn section(
    address: &str,
    token: Option<String>,
    headers: BTreeMap<String, String>,
) -> SectorManagerSection {
    SectorManagerSection {
        rpc_client: RpcClient {
            addr: address.to_owned(),
            headers,
        },
        piece_token: None,
        token,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealing_threads_calls_reach_a_real_manager_and_failures_are_told_apart() {
    let started =
        support::manager_on_devnet(Duration::ZERO, "[Common.WorkerSealing]\nmax_retries = 4\n")
            .await;
    let address = format!("/ip4/127.0.0.1/tcp/{}", started.manager.address.port());
    let token = started.manager.issue_token(&[
        chain_client::auth::Permission::Read,
        chain_client::auth::Permission::Write,
    ]);
    let client = ManagerClient::connect(
        &section(&address, Some(token.clone()), BTreeMap::new()),
        Duration::from_secs(10),
    )
    .expect("a client");

    let defaults = client.sealing_defaults().await.expect("the defaults");
    assert_eq!(defaults.max_retries, Some(4));
    let allocated = client
        .allocate_sector(&AllocateSectorSpec {
            allowed_miners: Some(vec![1000]),
            allowed_proof_types: None,
        })
        .await
        .expect("an allocation")
        .expect("a sector");
    assert_eq!(allocated.id.miner, 1000);
    let none = client
        .allocate_sector(&AllocateSectorSpec {
            allowed_miners: Some(vec![2000]),
            allowed_proof_types: None,
        })
        .await
        .expect("an answer");
    assert_eq!(
        none, None,
        "no sector for a miner the manager does not serve"
    );
    for _ in 0..5 {
        started.devnet.produce();
    }
    let ticket = client.assign_ticket(allocated.id).await.expect("a ticket");
    assert_eq!(ticket.ticket.0.len(), 32);
    let report = ReportStateRequest {
        worker: WorkerIdentity {
            instance: "worker-01".to_owned(),
            location: "/store/t1".to_owned(),
        },
        state_change: StateChange {
            prev: "Empty".to_owned(),
            next: "Allocated".to_owned(),
            event: "Event::Allocate".to_owned(),
        },
        failure: None,
    };
    let state = client
        .report_state(allocated.id, &report)
        .await
        .expect("a report");
    assert!(!state.finalized);
    // A precommit whose CommD is not the committed-capacity one does not match what the
    // manager expects, and the answer says why.
    let answer = client
        .submit_pre_commit(
            &allocated,
            &PreCommitOnChainInfo {
                comm_r: [1; 32],
                comm_d: [2; 32],
                ticket: ticket.clone(),
            },
            false,
        )
        .await
        .expect("an answer");
    assert_eq!(answer.res, SubmitResult::MismatchedSubmission, "{answer:?}");
    assert!(answer.desc.is_some());
    client
        .worker_ping(&WorkerInfo {
            name: "worker-01".to_owned(),
            dest: "127.0.0.1:17890".to_owned(),
            version: "test".to_owned(),
            summary: WorkerSummary::default(),
        })
        .await
        .expect("a ping");
    let store = client
        .store_basic_info("persist-1")
        .await
        .expect("an answer")
        .expect("the store");
    assert_eq!(store.name, "persist-1");

    // A sector the manager never allocated: the thread must abort it, not retry.
    let unknown = client
        .poll_pre_commit_state(SectorId {
            miner: 1000,
            number: 999_999,
        })
        .await
        .expect_err("an unknown sector");
    assert_eq!(unknown.kind, ManagerErrorKind::SectorNotFound, "{unknown}");
    assert_eq!(unknown.failure_level(), FailureLevel::Abort);

    // The token travels in rpc_client.headers just as well: the headers are sent.
    let by_header = ManagerClient::connect(
        &section(
            &address,
            None,
            BTreeMap::from([("Authorization".to_owned(), format!("Bearer {token}"))]),
        ),
        Duration::from_secs(10),
    )
    .expect("a client");
    by_header
        .sealing_defaults()
        .await
        .expect("accepted by header");

    // A read-only token cannot allocate: refused, which pauses for an operator.
    let reader = ManagerClient::connect(
        &section(
            &address,
            Some(
                started
                    .manager
                    .issue_token(&[chain_client::auth::Permission::Read]),
            ),
            BTreeMap::new(),
        ),
        Duration::from_secs(10),
    )
    .expect("a client");
    let refused = reader
        .allocate_sector(&AllocateSectorSpec::default())
        .await
        .expect_err("refused");
    assert_eq!(refused.kind, ManagerErrorKind::Refused, "{refused}");
    assert_eq!(refused.failure_level(), FailureLevel::Permanent);

    // A forged token: HTTP 401, also refused.
    let forged = ManagerClient::connect(
        &section(&address, Some(format!("{token}x")), BTreeMap::new()),
        Duration::from_secs(10),
    )
    .expect("a client");
    let refused = forged.sealing_defaults().await.expect_err("refused");
    assert_eq!(refused.kind, ManagerErrorKind::Refused, "{refused}");

    started.manager.stop().await;
    // Nobody listens any more: unreachable, which is retried.
    let gone = client.sealing_defaults().await.expect_err("unreachable");
    assert_eq!(gone.kind, ManagerErrorKind::Unreachable, "{gone}");
    assert_eq!(gone.failure_level(), FailureLevel::Temporary);
}
