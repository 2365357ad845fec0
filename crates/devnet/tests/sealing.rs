//! A real 2KiB sector through the devnet, as the manager will drive it: ticket from the
//! chain, PC1 and PC2, precommit, the seed `PreCommitChallengeDelay` epochs later, C1
//! and C2, prove-commit verified by the devnet with the real verifier, and the sector
//! active in a deadline's partition. A second sector proven with the first one's proof
//! is refused.
//!
//! The 2KiB parameters are made once into the machine's parameter cache (as the worker's
//! real-sector test does) and reused.

use std::net::SocketAddr;
use std::time::Duration;

use chain_client::message::{self, CommitProofs, SectorActivation};
use chain_client::rpc::Transport;
use chain_client::transport::HttpTransport;
use chain_client::types::{MessageLookup, MessageSendSpec, SectorPreCommitInfo, TipSetKey};
use chain_client::{Endpoint, LotusClient};
use devnet::{DevnetConfig, ProofMode, RunningDevnet};
use fil_actors_shared::v18::BatchReturn;
use fvm_shared::address::Address;
use fvm_shared::commcid::replica_commitment_v1_to_cid;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::RegisteredSealProof;
use proofs::{ProofBackend as _, RealProofs};
use serde_json::{Value, json};

const MINER: u64 = 1000;
const WORKER: u64 = 100;
const TIMEOUT: Duration = Duration::from_secs(30);

async fn devnet() -> RunningDevnet {
    let config = DevnetConfig {
        block_time: Duration::ZERO,
        proofs: ProofMode::Real,
        ..DevnetConfig::default()
    };
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("a loopback address");
    devnet::start(config, listen).await.expect("start a devnet")
}

fn entropy() -> Vec<u8> {
    fvm_ipld_encoding::to_vec(&Address::new_id(MINER)).expect("the miner's CBOR")
}

/// Makes blocks until `cid` has been executed, and returns its lookup.
async fn produce_until_executed<T: Transport>(
    devnet: &RunningDevnet,
    client: &LotusClient<T>,
    cid: &cid::Cid,
) -> MessageLookup {
    for _ in 0..10 {
        devnet.produce();
        if let Some(found) = client
            .state_search_msg(&TipSetKey::head(), cid, -1, true)
            .await
            .expect("search")
        {
            return found;
        }
    }
    panic!("{cid} was not executed within ten blocks");
}

fn run(stage: &str, task: Value) -> Value {
    RealProofs::default()
        .run(stage, task)
        .unwrap_or_else(|error| panic!("{stage} failed: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_2kib_sector_is_precommitted_proven_and_active_on_the_devnet() {
    tokio::task::spawn_blocking(|| {
        worker::params::generate_missing(proofs::params::TestSectorSize::Size2KiB)
    })
    .await
    .expect("the parameter task")
    .expect("the 2KiB parameters");
    let devnet = devnet().await;
    let endpoint =
        Endpoint::parse(&devnet.connection_string(Some(&devnet.admin_token))).expect("an endpoint");
    let client = LotusClient::new(HttpTransport::new(endpoint, TIMEOUT).expect("a transport"));
    let miner = Address::new_id(MINER);
    let worker = Address::new_id(WORKER);
    for _ in 0..3 {
        devnet.produce();
    }

    // The ticket, and PC1/PC2 on a committed-capacity sector.
    let head = client.chain_head().await.expect("the head");
    let ticket_epoch = head.height - 1;
    let ticket: [u8; 32] = client
        .state_get_randomness_from_tickets(5, ticket_epoch, &entropy(), &head.key())
        .await
        .expect("the ticket")
        .try_into()
        .expect("32 bytes");
    let store = tempfile::tempdir().expect("a sealing store");
    let (staged, cache, sealed) = (
        store.path().join("staged"),
        store.path().join("cache"),
        store.path().join("sealed"),
    );
    let prover_id = proofs::tasks::prover_id_of(MINER);
    let pieces = run(
        "add_pieces",
        json!({"seal_proof_type": "StackedDrg2KiBV1_1", "staged_filepath": staged,
               "pieces": [{"piece_file": "pledge", "payload_size": 0, "piece_size": 2048}]}),
    );
    let pc1 = run(
        "pc1",
        json!({"registered_proof": "StackedDrg2KiBV1_1", "cache_path": cache, "in_path": staged, "out_path": sealed,
               "prover_id": prover_id, "sector_id": 7, "ticket": ticket, "piece_infos": pieces}),
    );
    let pc2 = run(
        "pc2",
        json!({"pc1out": pc1, "cache_dir": cache, "sealed_file": sealed}),
    );
    let comm_r: [u8; 32] = serde_json::from_value(pc2["comm_r"].clone()).expect("comm_r");
    let sealed_cid = replica_commitment_v1_to_cid(&comm_r).expect("a sealed CID");

    // Precommit sector 7, and sector 8 with the same replica (it will not prove).
    let precommit = |number: u64| SectorPreCommitInfo {
        seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
        sector_number: number,
        sealed_cid,
        seal_rand_epoch: ticket_epoch,
        deal_ids: vec![],
        expiration: 1_000_000,
        unsealed_cid: None,
    };
    let unsigned = message::pre_commit_sector_batch2(
        miner,
        worker,
        &[precommit(7), precommit(8)],
        TokenAmount::default(),
    )
    .expect("a precommit message");
    let spec = MessageSendSpec {
        max_fee: TokenAmount::default(),
        msg_uuid: "precommit-7-8".to_owned(),
        maximize_fee_cap: false,
    };
    let signed = client
        .mpool_push_message(&unsigned, Some(&spec))
        .await
        .expect("push the precommit");
    let again = client
        .mpool_push_message(&unsigned, Some(&spec))
        .await
        .expect("push it again");
    assert_eq!(
        again.cid(),
        signed.cid(),
        "the same MsgUuid returns the same message"
    );
    let landed = produce_until_executed(&devnet, &client, &signed.cid()).await;
    assert_eq!(landed.receipt.exit_code, 0, "{landed:?}");
    let on_chain = client
        .state_sector_pre_commit_info(&miner, 7, &TipSetKey::head())
        .await
        .expect("read the precommit")
        .expect("sector 7 is precommitted");
    assert_eq!(on_chain.info.sealed_cid, sealed_cid);
    assert!(
        client
            .state_miner_sector_allocated(&miner, 8, &TipSetKey::head())
            .await
            .expect("allocated?")
    );

    // The seed, once the challenge delay has passed.
    let delay = client
        .state_get_network_params()
        .await
        .expect("network params")
        .pre_commit_challenge_delay;
    let seed_epoch = on_chain.pre_commit_epoch + delay;
    while devnet.head().height <= seed_epoch {
        devnet.produce();
    }
    let seed: [u8; 32] = client
        .state_get_randomness_from_beacon(6, seed_epoch, &entropy(), &TipSetKey::head())
        .await
        .expect("the seed")
        .try_into()
        .expect("32 bytes");
    let c1 = run(
        "c1",
        json!({"cache_path": cache, "replica_path": sealed, "prover_id": prover_id, "sector_id": 7,
               "ticket": ticket, "seed": seed, "pre_commit": pc2, "piece_infos": pieces}),
    );
    let c2 = tokio::task::spawn_blocking(move || {
        run(
            "c2",
            json!({"c1out": c1, "prover_id": prover_id, "sector_id": 7, "miner_id": MINER}),
        )
    })
    .await
    .expect("the C2 task");
    let proof: Vec<u8> = serde_json::from_value(c2["proof"].clone()).expect("proof bytes");

    // Sector 8 cannot be proven with sector 7's proof: the message fails and changes nothing.
    let wrong = message::prove_commit_sectors3(
        miner,
        worker,
        &[SectorActivation {
            sector_number: 8,
            pieces: vec![],
        }],
        &CommitProofs::PerSector(vec![proof.clone()]),
        TokenAmount::default(),
    )
    .expect("a commit message");
    let signed_wrong = client.mpool_push_message(&wrong, None).await.expect("push");
    let refused = produce_until_executed(&devnet, &client, &signed_wrong.cid()).await;
    assert_eq!(
        refused.receipt.exit_code, 16,
        "USR_ILLEGAL_ARGUMENT: {refused:?}"
    );
    assert!(
        client
            .state_sector_get_info(&miner, 8, &TipSetKey::head())
            .await
            .expect("read")
            .is_none()
    );

    let commit = message::prove_commit_sectors3(
        miner,
        worker,
        &[SectorActivation {
            sector_number: 7,
            pieces: vec![],
        }],
        &CommitProofs::PerSector(vec![proof]),
        TokenAmount::default(),
    )
    .expect("a commit message");
    let signed_commit = client
        .mpool_push_message(&commit, None)
        .await
        .expect("push the commit");
    let proven = produce_until_executed(&devnet, &client, &signed_commit.cid()).await;
    assert_eq!(proven.receipt.exit_code, 0, "{proven:?}");
    let batch: BatchReturn =
        fvm_ipld_encoding::from_slice(&proven.receipt.r#return).expect("a BatchReturn");
    assert_eq!((batch.success_count, batch.fail_codes.len()), (1, 0));

    let active = client
        .state_sector_get_info(&miner, 7, &TipSetKey::head())
        .await
        .expect("read the sector")
        .expect("sector 7 is active");
    assert_eq!(active.sealed_cid, sealed_cid);
    assert_eq!(
        active.activation,
        proven.height - 1,
        "activated at the epoch that included the commit"
    );
    assert!(
        client
            .state_sector_pre_commit_info(&miner, 7, &TipSetKey::head())
            .await
            .expect("read")
            .is_none(),
        "a proven sector is no longer precommitted"
    );
    let location = client
        .state_sector_partition(&miner, 7, &TipSetKey::head())
        .await
        .expect("its partition");
    assert!(location.deadline < 48);
    let active_sectors = client
        .state_miner_active_sectors(&miner, &TipSetKey::head())
        .await
        .expect("active sectors");
    assert_eq!(
        active_sectors
            .iter()
            .map(|sector| sector.sector_number)
            .collect::<Vec<_>>(),
        [7]
    );
}
