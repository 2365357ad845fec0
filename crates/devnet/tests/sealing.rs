//! A real 2KiB sector through the devnet, as the manager will drive it: ticket from the
//! chain, PC1 and PC2, precommit, the seed `PreCommitChallengeDelay` epochs later, C1
//! and C2, prove-commit verified by the devnet with the real verifier, and the sector
//! active in a deadline's partition. A second sector proven with the first one's proof
//! is refused. The sector is then proven with window PoSt in its deadline (a wrong proof
//! is refused), goes faulty when a deadline passes unproven, is declared recovered and
//! proven again, and is finally terminated.
//!
//! The 2KiB parameters are made once into the machine's parameter cache (as the worker's
//! real-sector test does) and reused.

use std::net::SocketAddr;
use std::time::Duration;

use chain_client::message::{self, CommitProofs, SectorActivation};
use chain_client::rpc::Transport;
use chain_client::transport::HttpTransport;
use chain_client::types::{
    DeadlineInfo, MessageLookup, MessageSendSpec, PoStProof, SectorPreCommitInfo, TipSetKey,
};
use chain_client::{Endpoint, LotusClient};
use devnet::{DevnetConfig, ProofMode, RunningDevnet};
use fil_actors_shared::v18::BatchReturn;
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::commcid::replica_commitment_v1_to_cid;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::RegisteredPoStProof;
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
        // Ten epochs per deadline: room for two submissions in one deadline, and short
        // enough periods for a test to walk through.
        proving_period: 480,
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

    // Window PoSt in the sector's deadline.
    let replica = Replica {
        comm_r,
        cache,
        sealed,
    };
    let deadline = wait_for_deadline(&devnet, &client, location.deadline).await;
    let refused = submit_post(
        &devnet,
        &client,
        &deadline,
        location.partition,
        Some(vec![0; 192]),
        &replica,
    )
    .await;
    assert_eq!(
        refused.receipt.exit_code, 16,
        "a wrong proof is refused: {refused:?}"
    );
    let proven = submit_post(
        &devnet,
        &client,
        &deadline,
        location.partition,
        None,
        &replica,
    )
    .await;
    assert_eq!(proven.receipt.exit_code, 0, "{proven:?}");
    let deadlines = client
        .state_miner_deadlines(&miner, &TipSetKey::head())
        .await
        .expect("deadlines");
    assert!(
        deadlines[location.deadline as usize]
            .post_submissions
            .get(location.partition)
    );
    assert!(
        client
            .state_miner_faults(&miner, &TipSetKey::head())
            .await
            .expect("faults")
            .is_empty()
    );

    // The next period's deadline passes unproven: the sector is faulty.
    let next = wait_for_deadline_after(&devnet, &client, location.deadline, deadline.close).await;
    while devnet.head().height <= next.close {
        devnet.produce();
    }
    let faults = client
        .state_miner_faults(&miner, &TipSetKey::head())
        .await
        .expect("faults");
    assert!(faults.get(7), "a missed deadline makes the sector faulty");
    let partitions = client
        .state_miner_partitions(&miner, location.deadline, &TipSetKey::head())
        .await
        .expect("partitions");
    assert!(
        partitions[location.partition as usize]
            .faulty_sectors
            .get(7)
    );
    assert!(
        !partitions[location.partition as usize]
            .active_sectors
            .get(7)
    );

    // Declared recovered, then proven in its deadline: active again.
    let sector_seven = || message::PartitionSectors {
        deadline: location.deadline,
        partition: location.partition,
        sectors: fvm_ipld_bitfield::BitField::try_from_bits([7]).expect("a bitfield"),
    };
    let recovery =
        message::declare_faults_recovered(miner, worker, &[sector_seven()]).expect("a recovery");
    let signed_recovery = client
        .mpool_push_message(&recovery, None)
        .await
        .expect("push the recovery");
    let recovered = produce_until_executed(&devnet, &client, &signed_recovery.cid()).await;
    assert_eq!(recovered.receipt.exit_code, 0, "{recovered:?}");
    assert!(
        client
            .state_miner_recoveries(&miner, &TipSetKey::head())
            .await
            .expect("recoveries")
            .get(7)
    );
    let again = wait_for_deadline_after(&devnet, &client, location.deadline, next.close).await;
    let proven = submit_post(&devnet, &client, &again, location.partition, None, &replica).await;
    assert_eq!(proven.receipt.exit_code, 0, "{proven:?}");
    assert!(
        client
            .state_miner_faults(&miner, &TipSetKey::head())
            .await
            .expect("faults")
            .is_empty()
    );
    assert!(
        client
            .state_miner_recoveries(&miner, &TipSetKey::head())
            .await
            .expect("recoveries")
            .is_empty()
    );

    // Winning PoSt: the devnet names the challenged sector, and the proof verifies.
    let round = devnet.head().height + 1;
    let base = client
        .miner_get_base_info(&miner, round, &TipSetKey::head())
        .await
        .expect("the mining base")
        .expect("the miner can mine");
    assert_eq!(
        base.sectors
            .iter()
            .map(|sector| sector.sector_number)
            .collect::<Vec<_>>(),
        [7]
    );
    let beacon = base.beacon_entries.last().expect("a beacon entry");
    let beacon_digest: [u8; 32] = {
        use multihash_codetable::MultihashDigest as _;
        let digest = multihash_codetable::Code::Blake2b256.digest(&beacon.data);
        digest.digest()[..32].try_into().expect("32 bytes")
    };
    let mut winning_seed = devnet::chain::Chain::draw(3, &beacon_digest, round, &entropy());
    winning_seed[31] &= 0x3f;
    let winning_task = json!({"miner_id": MINER, "proof_type": "StackedDrgWinning2KiBV1", "seed": winning_seed,
        "replicas": [{"sector_id": 7, "comm_r": replica.comm_r, "cache_dir": replica.cache, "sealed_file": replica.sealed}]});
    let winning = run("winning_post", winning_task.clone());
    assert_eq!(
        proofs::backend::verify_real_post(
            &serde_json::from_value(winning_task).expect("a PoSt task"),
            &serde_json::from_value(winning).expect("a PoSt output"),
        ),
        Ok(true)
    );

    // Terminated: gone.
    let termination =
        message::terminate_sectors(miner, worker, &[sector_seven()]).expect("a termination");
    let signed_termination = client
        .mpool_push_message(&termination, None)
        .await
        .expect("push the termination");
    let terminated = produce_until_executed(&devnet, &client, &signed_termination.cid()).await;
    assert_eq!(terminated.receipt.exit_code, 0, "{terminated:?}");
    assert!(
        client
            .state_sector_get_info(&miner, 7, &TipSetKey::head())
            .await
            .expect("read")
            .is_none()
    );
}

struct Replica {
    comm_r: [u8; 32],
    cache: std::path::PathBuf,
    sealed: std::path::PathBuf,
}

/// Makes blocks until the miner's current deadline is `index`, and returns it.
async fn wait_for_deadline<T: Transport>(
    devnet: &RunningDevnet,
    client: &LotusClient<T>,
    index: u64,
) -> DeadlineInfo {
    wait_for_deadline_after(devnet, client, index, ChainEpoch::MIN).await
}

/// Makes blocks until the miner's current deadline is `index` and opened after `after`.
async fn wait_for_deadline_after<T: Transport>(
    devnet: &RunningDevnet,
    client: &LotusClient<T>,
    index: u64,
    after: ChainEpoch,
) -> DeadlineInfo {
    for _ in 0..1000 {
        let info = client
            .state_miner_proving_deadline(&Address::new_id(MINER), &TipSetKey::head())
            .await
            .expect("the proving deadline");
        if info.index == index && info.open >= after {
            return info;
        }
        devnet.produce();
    }
    panic!("deadline {index} did not come within 1000 blocks");
}

/// Proves the sector for `deadline` (or sends `proof_bytes` instead of a real proof) and
/// returns the executed message's lookup.
async fn submit_post<T: Transport>(
    devnet: &RunningDevnet,
    client: &LotusClient<T>,
    deadline: &DeadlineInfo,
    partition: u64,
    proof_bytes: Option<Vec<u8>>,
    replica: &Replica,
) -> MessageLookup {
    use base64::Engine as _;
    let mut seed: [u8; 32] = client
        .state_get_randomness_from_beacon(4, deadline.challenge, &entropy(), &TipSetKey::head())
        .await
        .expect("the PoSt challenge")
        .try_into()
        .expect("32 bytes");
    seed[31] &= 0x3f;
    let proof_bytes = match proof_bytes {
        Some(bytes) => bytes,
        None => {
            let output = run(
                "window_post",
                json!({"miner_id": MINER, "proof_type": "StackedDrgWindow2KiBV1_2", "seed": seed,
                       "replicas": [{"sector_id": 7, "comm_r": replica.comm_r, "cache_dir": replica.cache, "sealed_file": replica.sealed}]}),
            );
            let encoded = output["proofs"][0].as_str().expect("a proof").to_owned();
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64")
        }
    };
    let commit_randomness = client
        .state_get_randomness_from_tickets(9, deadline.challenge, &[], &TipSetKey::head())
        .await
        .expect("the chain commitment");
    let submission = message::submit_windowed_post(
        Address::new_id(MINER),
        Address::new_id(WORKER),
        deadline.index,
        &[message::PartitionProven {
            index: partition,
            skipped: Default::default(),
        }],
        &[PoStProof {
            post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1,
            proof_bytes,
        }],
        deadline.challenge,
        &commit_randomness,
    )
    .expect("a window PoSt message");
    let signed = client
        .mpool_push_message(&submission, None)
        .await
        .expect("push the PoSt");
    produce_until_executed(devnet, client, &signed.cid()).await
}
