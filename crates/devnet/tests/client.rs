//! The chain client against a running devnet, over real HTTP and WebSocket on loopback:
//! typed calls, token checks, `ChainNotify` through a reorganisation, and which failures
//! are retried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chain_client::head::{ChainEvent, HeadTracker};
use chain_client::rpc::{ChainError, ErrorKind, Transport};
use chain_client::transport::{HttpTransport, WebSocketTransport};
use chain_client::types::{HeadChangeType, TipSetKey};
use chain_client::{Endpoint, LotusClient, RetryPolicy};
use devnet::auth::Permission;
use devnet::{DevnetConfig, RunningDevnet};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a loopback address")
}

async fn manual_devnet() -> RunningDevnet {
    let config = DevnetConfig {
        block_time: Duration::ZERO,
        ..DevnetConfig::default()
    };
    devnet::start(config, loopback())
        .await
        .expect("start a devnet")
}

fn http_client(devnet: &RunningDevnet, token: Option<&str>) -> LotusClient<HttpTransport> {
    let endpoint = Endpoint::parse(&devnet.connection_string(token)).expect("an endpoint");
    LotusClient::new(HttpTransport::new(endpoint, TIMEOUT).expect("an HTTP transport"))
}

#[tokio::test]
async fn typed_calls_agree_over_http_and_websocket_and_tokens_are_checked() {
    let devnet = manual_devnet().await;
    for _ in 0..3 {
        devnet.produce();
    }
    let http = http_client(&devnet, Some(&devnet.admin_token));
    let endpoint =
        Endpoint::parse(&devnet.connection_string(Some(&devnet.admin_token))).expect("an endpoint");
    let websocket = LotusClient::new(
        WebSocketTransport::connect(&endpoint, TIMEOUT)
            .await
            .expect("connect"),
    );

    let head = http.chain_head().await.expect("the head over HTTP");
    assert_eq!(head.height, 3);
    assert_eq!(head, devnet.head());
    assert_eq!(
        websocket
            .chain_head()
            .await
            .expect("the head over WebSocket"),
        head
    );
    let one = http
        .chain_get_tipset_by_height(1, &TipSetKey::head())
        .await
        .expect("the tipset at 1");
    assert_eq!(one.height, 1);
    assert_eq!(
        http.chain_get_tipset(&one.key()).await.expect("by key"),
        one
    );
    let params = websocket
        .state_get_network_params()
        .await
        .expect("network params");
    assert_eq!(params.pre_commit_challenge_delay, 10);
    let entropy = [0x43, 0x00, 0xe8, 0x07];
    let over_http = http
        .state_get_randomness_from_tickets(5, 2, &entropy, &TipSetKey::head())
        .await
        .expect("ticket randomness");
    let over_websocket = websocket
        .state_get_randomness_from_tickets(5, 2, &entropy, &TipSetKey::head())
        .await
        .expect("ticket randomness");
    assert_eq!(over_http.len(), 32);
    assert_eq!(over_http, over_websocket);
    let future = http
        .state_get_randomness_from_beacon(6, 10, &entropy, &TipSetKey::head())
        .await
        .expect_err("randomness from the future");
    assert_eq!(future.kind, ErrorKind::Method);
    assert!(
        future
            .message
            .contains("cannot draw randomness from the future"),
        "{future}"
    );

    // Tokens: none reads; a read token cannot administer; a forged one is refused.
    let anonymous = http_client(&devnet, None);
    assert_eq!(
        anonymous.chain_head().await.expect("anonymous read").height,
        3
    );
    let reader = http_client(&devnet, Some(&devnet.issue_token(&[Permission::Read])));
    let refused = reader
        .call("Filecoin.AuthNew", vec![serde_json::json!(["read"])])
        .await
        .expect_err("a read token cannot make tokens");
    assert_eq!(refused.kind, ErrorKind::Permission);
    assert!(
        refused
            .message
            .contains("missing permission to invoke 'AuthNew' (need 'admin')"),
        "{refused}"
    );
    let granted = http
        .auth_verify(&devnet.issue_token(&[Permission::Read, Permission::Sign]))
        .await
        .expect("verify");
    assert_eq!(granted, ["read", "sign"]);
    let forged = http_client(
        &devnet,
        Some("eyJhbGciOiJIUzI1NiJ9.eyJBbGxvdyI6WyJhZG1pbiJdfQ.AAAA"),
    );
    let refused = forged.chain_head().await.expect_err("a forged token");
    assert_eq!(refused.kind, ErrorKind::Permission);
    let forged_endpoint =
        Endpoint::parse(&devnet.connection_string(Some("not.a.token"))).expect("an endpoint");
    let refused = WebSocketTransport::connect(&forged_endpoint, TIMEOUT)
        .await
        .expect_err("refused at the handshake");
    assert_eq!(refused.kind, ErrorKind::Permission);

    // ChainNotify is a channel method: over HTTP the node says so.
    let over_http = http
        .call("Filecoin.ChainNotify", vec![])
        .await
        .expect_err("not over HTTP");
    assert_eq!(
        (over_http.kind, over_http.code),
        (ErrorKind::Method, Some(-32601))
    );
}

/// The next batch of head changes, which must come within the timeout.
async fn next_batch(
    changes: &mut chain_client::transport::HeadChanges,
) -> Vec<chain_client::types::HeadChange> {
    tokio::time::timeout(TIMEOUT, changes.next())
        .await
        .expect("a batch within the timeout")
        .expect("the channel is open")
        .expect("a readable batch")
}

#[tokio::test]
async fn chain_notify_reports_the_head_then_each_change_including_a_reorganisation() {
    let devnet = manual_devnet().await;
    for _ in 0..4 {
        devnet.produce();
    }
    let endpoint = Endpoint::parse(&devnet.connection_string(None)).expect("an endpoint");
    let transport = WebSocketTransport::connect(&endpoint, TIMEOUT)
        .await
        .expect("connect");
    let mut changes = transport.chain_notify().await.expect("subscribe");
    let mut tracker = HeadTracker::new(20);

    let first = next_batch(&mut changes).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].change, HeadChangeType::Current);
    assert_eq!(first[0].tipset, devnet.head());
    assert!(tracker.observe(&first).is_empty());

    let produced = devnet.produce();
    let batch = next_batch(&mut changes).await;
    assert_eq!(tracker.observe(&batch), vec![ChainEvent::Applied(produced)]);

    let before = devnet.head();
    let after = devnet.reorganise(2);
    let batch = next_batch(&mut changes).await;
    let events = tracker.observe(&batch);
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| match event {
            ChainEvent::Applied(_) => "apply",
            ChainEvent::Reverted(_) => "revert",
            ChainEvent::Gap { .. } => "gap",
        })
        .collect();
    assert_eq!(kinds, ["revert", "revert", "apply", "apply", "apply"]);
    assert_eq!(events[0], ChainEvent::Reverted(before));
    assert_eq!(tracker.head(), Some(&after));
    assert_eq!(after.height, 6);

    // Calls still work on the connection that carries the channel.
    let client = LotusClient::new(transport.clone());
    assert_eq!(client.chain_head().await.expect("the head"), after);
    drop(devnet);
    let ended = tokio::time::timeout(TIMEOUT, changes.next())
        .await
        .expect("the channel ends when the node goes");
    assert!(ended.is_none(), "{ended:?}");
}

/// Counts the calls that reach the real transport.
#[derive(Clone)]
struct Counting<T> {
    inner: T,
    calls: Arc<AtomicU32>,
}

impl<T: Transport> Transport for Counting<T> {
    fn call(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Value, ChainError>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(method, params)
    }
}

#[tokio::test]
async fn transport_failures_are_retried_and_method_failures_are_not() {
    let retry = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    };
    // Nothing listens on a port just released.
    let vacant = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("an address");
    let endpoint = Endpoint::parse(&format!("/ip4/127.0.0.1/tcp/{}/http", vacant.port()))
        .expect("an endpoint");
    let calls = Arc::new(AtomicU32::new(0));
    let unreachable = LotusClient::new(Counting {
        inner: HttpTransport::new(endpoint, TIMEOUT).expect("a transport"),
        calls: Arc::clone(&calls),
    })
    .with_retry(retry);
    let error = unreachable.chain_head().await.expect_err("nobody answers");
    assert_eq!(error.kind, ErrorKind::Transport);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "tried three times");

    let devnet = manual_devnet().await;
    let calls = Arc::new(AtomicU32::new(0));
    let endpoint = Endpoint::parse(&devnet.connection_string(None)).expect("an endpoint");
    let client = LotusClient::new(Counting {
        inner: HttpTransport::new(endpoint, TIMEOUT).expect("a transport"),
        calls: Arc::clone(&calls),
    })
    .with_retry(retry);
    let error = client
        .call("Filecoin.NoSuchMethod", vec![])
        .await
        .expect_err("no such method");
    assert_eq!((error.kind, error.code), (ErrorKind::Method, Some(-32601)));
    let error = client
        .chain_get_tipset_by_height(1, &TipSetKey::head())
        .await
        .expect_err("nothing at height 1 yet");
    assert_eq!(error.kind, ErrorKind::Method);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "method failures are not retried"
    );
}

#[tokio::test]
async fn a_reorganisation_reverts_an_executed_message_and_the_new_fork_executes_it_again() {
    use chain_client::watch::{MessageStatus, MessageWatch};

    let devnet = manual_devnet().await;
    for _ in 0..2 {
        devnet.produce();
    }
    let endpoint =
        Endpoint::parse(&devnet.connection_string(Some(&devnet.admin_token))).expect("an endpoint");
    let transport = WebSocketTransport::connect(&endpoint, TIMEOUT)
        .await
        .expect("connect");
    let client = LotusClient::new(transport.clone());
    let mut changes = transport.chain_notify().await.expect("subscribe");
    let mut tracker = HeadTracker::new(20);
    tracker.observe(&next_batch(&mut changes).await);

    // A plain send to the miner actor: any message would do.
    let unsigned = fvm_shared::message::Message {
        version: 0,
        from: fvm_shared::address::Address::new_id(100),
        to: fvm_shared::address::Address::new_id(1000),
        sequence: 0,
        value: Default::default(),
        method_num: 0,
        params: Default::default(),
        gas_limit: 0,
        gas_fee_cap: Default::default(),
        gas_premium: Default::default(),
    };
    let signed = client
        .mpool_push_message(&unsigned, None)
        .await
        .expect("push");
    let mut watch = MessageWatch::new(signed.cid());
    let mut reported = Vec::new();
    let mut follow =
        async |reported: &mut Vec<MessageStatus>,
               changes: &mut chain_client::transport::HeadChanges| {
            let batch = next_batch(changes).await;
            for event in tracker.observe(&batch) {
                reported.extend(watch.observe(&event));
            }
            if watch.needs_search() {
                let found = client
                    .state_search_msg(&TipSetKey::head(), watch.message(), -1, true)
                    .await
                    .expect("search");
                reported.extend(watch.searched(found));
            }
        };
    for _ in 0..3 {
        devnet.produce();
        follow(&mut reported, &mut changes).await;
    }
    let [MessageStatus::Executed(first)] = reported.as_slice() else {
        panic!("expected one execution, saw {reported:?}");
    };
    let first = first.clone();
    assert_eq!(first.receipt.exit_code, 0);

    // Revert past the tipset that executed it; the new fork includes and executes it again.
    let depth = (devnet.head().height - first.height + 2) as usize;
    devnet.reorganise(depth);
    follow(&mut reported, &mut changes).await;
    assert_eq!(reported.len(), 3, "{reported:?}");
    assert_eq!(
        reported[1],
        MessageStatus::Reverted {
            previous: first.clone()
        }
    );
    let MessageStatus::Executed(second) = &reported[2] else {
        panic!("expected a second execution, saw {reported:?}");
    };
    assert_ne!(
        second.tip_set, first.tip_set,
        "executed in a tipset of the new fork"
    );
    assert_eq!(second.message, signed.cid());
    let waited = client
        .state_wait_msg(&signed.cid(), 0, -1, true)
        .await
        .expect("StateWaitMsg agrees");
    assert_eq!(&waited, second);
}

#[tokio::test]
async fn the_devnet_serves_every_method_the_client_calls() {
    let missing: Vec<&&str> = chain_client::client::V1_METHODS
        .iter()
        .filter(|method| devnet::rpc::permission_of(method).is_none())
        .collect();
    assert!(missing.is_empty(), "the devnet does not serve {missing:?}");

    let devnet = manual_devnet().await;
    let client = http_client(&devnet, Some(&devnet.admin_token));
    let miner = fvm_shared::address::Address::new_id(1000);
    let worker = fvm_shared::address::Address::new_id(100);
    let power = client
        .state_miner_power(&miner, &TipSetKey::head())
        .await
        .expect("power");
    assert_eq!(power.miner_power.raw_byte_power, 0.into(), "no sectors yet");
    let key = client
        .state_account_key(&worker, &TipSetKey::head())
        .await
        .expect("a key address");
    assert_eq!(key.protocol(), fvm_shared::address::Protocol::BLS);
    assert!(
        client
            .wallet_has(&key)
            .await
            .expect("the wallet holds the worker's key")
    );
    let reader = http_client(&devnet, Some(&devnet.issue_token(&[Permission::Read])));
    assert_eq!(
        reader
            .wallet_has(&key)
            .await
            .expect_err("WalletHas needs write")
            .kind,
        ErrorKind::Permission
    );

    // A precommit whose ticket is from the future fails when called, and calling it
    // changes nothing.
    let bad = chain_client::message::pre_commit_sector_batch2(
        miner,
        worker,
        &[chain_client::types::SectorPreCommitInfo {
            seal_proof: fvm_shared::sector::RegisteredSealProof::StackedDRG2KiBV1P1,
            sector_number: 1,
            sealed_cid: fvm_shared::commcid::replica_commitment_v1_to_cid(&[1; 32]).expect("a CID"),
            seal_rand_epoch: 100,
            deal_ids: vec![],
            expiration: 1_000_000,
            unsealed_cid: None,
        }],
        Default::default(),
    )
    .expect("a message");
    let called = client
        .state_call(&bad, &TipSetKey::head())
        .await
        .expect("a call");
    assert_eq!(called.msg_rct.expect("a receipt").exit_code, 16);
    assert!(
        !client
            .state_miner_sector_allocated(&miner, 1, &TipSetKey::head())
            .await
            .expect("allocated?")
    );

    let signed = client
        .wallet_sign_message(&worker, &bad)
        .await
        .expect("signed");
    assert_eq!(
        signed.signature.signature_type,
        chain_client::types::Signature::BLS
    );
    let pushed = client.mpool_push(&signed).await.expect("pushed");
    assert_eq!(pushed, signed.cid());
    devnet.produce();
    let executed = devnet.produce();
    let receipts = client
        .chain_get_parent_receipts(&executed.cids[0])
        .await
        .expect("the receipts of the tipset's parent");
    assert_eq!(
        receipts
            .iter()
            .map(|receipt| receipt.exit_code)
            .collect::<Vec<_>>(),
        [16]
    );
    let actor = client
        .state_get_actor(&worker, &TipSetKey::head())
        .await
        .expect("the worker");
    assert!(actor.balance.is_positive());
}
