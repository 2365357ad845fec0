//! A devnet with a directory survives a restart (chain, messages, tokens, nonces), and
//! its injected faults happen as the plan says: lost messages, late inclusion, out of
//! gas, reorganisations every N epochs, and HTTP failures the client sees as transport
//! failures.

use std::net::SocketAddr;
use std::time::Duration;

use chain_client::rpc::ErrorKind;
use chain_client::transport::HttpTransport;
use chain_client::types::TipSetKey;
use chain_client::{Endpoint, LotusClient, RetryPolicy};
use devnet::faults::FaultPlan;
use devnet::{DevnetConfig, RunningDevnet};
use fvm_shared::address::Address;
use fvm_shared::message::Message;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn start(config: DevnetConfig) -> RunningDevnet {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("a loopback address");
    devnet::start(
        DevnetConfig {
            block_time: Duration::ZERO,
            ..config
        },
        listen,
    )
    .await
    .expect("start a devnet")
}

fn client(devnet: &RunningDevnet) -> LotusClient<HttpTransport> {
    let endpoint =
        Endpoint::parse(&devnet.connection_string(Some(&devnet.admin_token))).expect("an endpoint");
    LotusClient::new(HttpTransport::new(endpoint, TIMEOUT).expect("a transport"))
}

fn send(value: u64) -> Message {
    Message {
        version: 0,
        from: Address::new_id(100),
        to: Address::new_id(1000),
        sequence: 0,
        value: fvm_shared::econ::TokenAmount::from_atto(value),
        method_num: 0,
        params: Default::default(),
        gas_limit: 0,
        gas_fee_cap: Default::default(),
        gas_premium: Default::default(),
    }
}

#[tokio::test]
async fn a_devnet_with_a_directory_continues_its_chain_after_a_restart() {
    let directory = tempfile::tempdir().expect("a directory");
    let config = DevnetConfig {
        directory: Some(directory.path().to_path_buf()),
        ..DevnetConfig::default()
    };
    let devnet = start(config.clone()).await;
    let first = client(&devnet)
        .mpool_push_message(&send(1), None)
        .await
        .expect("push");
    for _ in 0..4 {
        devnet.produce();
    }
    let head = devnet.head();
    let token = devnet.admin_token.clone();
    let found = client(&devnet)
        .state_search_msg(&TipSetKey::head(), &first.cid(), -1, true)
        .await
        .expect("search")
        .expect("executed");
    drop(devnet);

    let restarted = start(config).await;
    assert_eq!(restarted.head(), head, "the same chain");
    let endpoint =
        Endpoint::parse(&restarted.connection_string(Some(&token))).expect("an endpoint");
    let old_token = LotusClient::new(HttpTransport::new(endpoint, TIMEOUT).expect("a transport"));
    let again = old_token
        .state_search_msg(&TipSetKey::head(), &first.cid(), -1, true)
        .await
        .expect("a token from before the restart still works")
        .expect("the message is still executed");
    assert_eq!(again, found);
    let second = old_token
        .mpool_push_message(&send(2), None)
        .await
        .expect("push");
    assert_eq!(second.message.sequence, 1, "nonces continue");
    restarted.produce();
    assert_eq!(restarted.head().height, head.height + 1);
}

#[tokio::test]
async fn injected_message_faults_happen_as_planned() {
    // Every message lost.
    let lossy = start(DevnetConfig {
        faults: FaultPlan {
            drop_probability: 1.0,
            ..FaultPlan::default()
        },
        ..DevnetConfig::default()
    })
    .await;
    let lost = client(&lossy)
        .mpool_push_message(&send(1), None)
        .await
        .expect("accepted");
    for _ in 0..5 {
        lossy.produce();
    }
    assert_eq!(
        client(&lossy)
            .state_search_msg(&TipSetKey::head(), &lost.cid(), -1, true)
            .await
            .expect("search"),
        None,
        "a lost message is never executed"
    );
    assert_eq!(
        client(&lossy)
            .chain_get_message(&lost.cid())
            .await
            .expect("but it is known"),
        lost.message
    );

    // Every message out of gas.
    let starved = start(DevnetConfig {
        faults: FaultPlan {
            out_of_gas_probability: 1.0,
            ..FaultPlan::default()
        },
        ..DevnetConfig::default()
    })
    .await;
    let starving = client(&starved)
        .mpool_push_message(&send(1), None)
        .await
        .expect("accepted");
    starved.produce();
    starved.produce();
    let lookup = client(&starved)
        .state_search_msg(&TipSetKey::head(), &starving.cid(), -1, true)
        .await
        .expect("search")
        .expect("executed");
    assert_eq!(lookup.receipt.exit_code, 7, "SYS_OUT_OF_GAS");

    // Late inclusion: exactly as late as the plan draws for the message.
    let plan = FaultPlan {
        seed: 7,
        max_extra_inclusion_delay: 4,
        ..FaultPlan::default()
    };
    let slow = start(DevnetConfig {
        faults: plan.clone(),
        ..DevnetConfig::default()
    })
    .await;
    let pushed_at = slow.head().height;
    let late = client(&slow)
        .mpool_push_message(&send(1), None)
        .await
        .expect("accepted");
    let extra = plan.message_fate(&late.cid()).extra_delay;
    assert!(
        extra > 0,
        "this seed must delay the message for the test to mean anything"
    );
    for _ in 0..8 {
        slow.produce();
    }
    let lookup = client(&slow)
        .state_search_msg(&TipSetKey::head(), &late.cid(), -1, true)
        .await
        .expect("search")
        .expect("executed");
    // Included `1 + extra` epochs after it arrived, executed one epoch later.
    assert_eq!(
        lookup.height,
        pushed_at + 1 + extra + 1,
        "extra delay {extra}"
    );
}

#[tokio::test]
async fn planned_reorganisations_and_rpc_failures_happen() {
    let reorganising = start(DevnetConfig {
        faults: FaultPlan {
            reorg_every: Some(5),
            reorg_depth: 2,
            ..FaultPlan::default()
        },
        ..DevnetConfig::default()
    })
    .await;
    for _ in 0..4 {
        reorganising.produce();
    }
    let at_three = client(&reorganising)
        .chain_get_tipset_by_height(3, &TipSetKey::head())
        .await
        .expect("the tipset at 3");
    reorganising.produce();
    let replaced = client(&reorganising)
        .chain_get_tipset_by_height(3, &TipSetKey::head())
        .await
        .expect("the tipset at 3 after epoch 5");
    assert_ne!(
        replaced.key(),
        at_three.key(),
        "epoch 5 brought a reorganisation of depth 2"
    );
    assert_eq!(reorganising.head().height, 5);

    let failing = start(DevnetConfig {
        faults: FaultPlan {
            rpc_error_probability: 1.0,
            ..FaultPlan::default()
        },
        ..DevnetConfig::default()
    })
    .await;
    let retry = RetryPolicy {
        attempts: 2,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(5),
    };
    let error = client(&failing)
        .with_retry(retry)
        .chain_head()
        .await
        .expect_err("every call fails");
    assert_eq!(error.kind, ErrorKind::Transport, "{error}");
    assert!(error.message.contains("503"), "{error}");
}

#[tokio::test]
async fn the_command_prints_how_to_connect_and_makes_blocks() {
    use tokio::io::AsyncBufReadExt as _;
    let directory = tempfile::tempdir().expect("a directory");
    let plan = directory.path().join("faults.toml");
    std::fs::write(&plan, "seed = 3\nmax_rpc_latency_ms = 2\n").expect("write a fault plan");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sealcluster-devnet"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--block-time",
            "100ms",
            "--fake-proofs",
            "--directory",
        ])
        .arg(directory.path().join("chain"))
        .arg("--faults")
        .arg(&plan)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sealcluster-devnet");
    let stdout = child.stdout.take().expect("its output");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut connection = None;
    while let Some(line) = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .expect("output in time")
        .expect("a line")
    {
        if let Some(value) = line.strip_prefix("FULLNODE_API_INFO=") {
            connection = Some(value.to_owned());
            break;
        }
    }
    let connection = connection.expect("the connection string is printed");
    let endpoint = Endpoint::parse(&connection).expect("a connection string the client reads");
    assert!(endpoint.token.is_some());
    let client = LotusClient::new(HttpTransport::new(endpoint, TIMEOUT).expect("a transport"));
    // The head moves on by itself (waiting up to the timeout, not timing it).
    let first = client.chain_head().await.expect("the head").height;
    let waited = tokio::time::timeout(TIMEOUT, async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = client.chain_head().await.expect("the head").height;
            if now > first {
                return now;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "no block within {TIMEOUT:?} of {first}");
    assert!(
        directory.path().join("chain/devnet.json").exists(),
        "the chain is saved"
    );
    child.kill().await.expect("stop it");
}
