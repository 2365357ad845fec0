//! The winning PoSt service against a devnet whose block production asks it for proofs,
//! with real 2KiB sectors and real proofs: the warm-up proves a sector at start, the miner
//! wins blocks whose proofs the devnet's verifier accepted, a proof the verifier rejects
//! leaves the block to the devnet's own producer, and a round whose challenged sector's
//! files are gone fails without a block.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chain_client::transport::HttpTransport;
use chain_client::{Endpoint, LotusClient};
use devnet::mining::{
    BlockMiner, MiningOutcome, MiningRecord, ProofFuture, WinningProofRequest, WinningProver,
};
use devnet::world::GenesisSector;
use devnet::{DevnetConfig, ProofMode};
use fvm_shared::address::Address;
use post::runner::{PersistStores, PostVerifier};
use post::winning::WinningPostService;
use proofs::RealProofs;
use support::{MINER, seal, sealed_file};

mod support;

/// The service, called in-process as a block producer would call it, with a switch that
/// spoils its proofs.
#[derive(Debug)]
struct InProcessProver {
    service: Arc<WinningPostService>,
    spoil: AtomicBool,
}

impl WinningProver for InProcessProver {
    fn compute_proof(&self, request: WinningProofRequest) -> ProofFuture<'_> {
        Box::pin(async move {
            let mut proofs = self
                .service
                .prove(&request.sectors, request.randomness, request.round)
                .await
                .map_err(|error| error.to_string())?;
            if self.spoil.load(Ordering::SeqCst) {
                for proof in &mut proofs {
                    if let Some(byte) = proof.proof_bytes.get_mut(10) {
                        *byte ^= 0x01;
                    }
                }
            }
            Ok(proofs)
        })
    }
}

fn records_of(devnet: &devnet::RunningDevnet, from_round: i64) -> Vec<MiningRecord> {
    devnet
        .state()
        .mining_records()
        .into_iter()
        .filter(|record| record.round >= from_round)
        .collect()
}

/// Waits until `enough` holds for the records from `from_round` on.
async fn wait_for_records(
    devnet: &devnet::RunningDevnet,
    from_round: i64,
    what: &str,
    enough: impl Fn(&[MiningRecord]) -> bool,
) -> Vec<MiningRecord> {
    let started = Instant::now();
    loop {
        let records = records_of(devnet, from_round);
        if enough(&records) {
            return records;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{what}: still not there after 180 s: {records:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(records: &[MiningRecord], matches: impl Fn(&MiningOutcome) -> bool) -> usize {
    records
        .iter()
        .filter(|record| matches(&record.outcome))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_miner_wins_blocks_with_verified_winning_posts() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "post=info".to_owned()))
        .try_init();
    tokio::task::spawn_blocking(support::make_post_parameters)
        .await
        .expect("the parameter task");
    let store = tempfile::tempdir().expect("a persistent store");
    let root = store.path().to_path_buf();
    let genesis = tokio::task::spawn_blocking(move || {
        [1u64, 2]
            .iter()
            .map(|number| GenesisSector {
                number: *number,
                comm_r: seal(&root, *number),
                deadline: 2,
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("the sealing task");
    let config = DevnetConfig {
        block_time: Duration::from_millis(300),
        proofs: ProofMode::Real,
        proving_period: 480,
        deadlines_per_period: 8,
        genesis_sectors: genesis,
        ..DevnetConfig::default()
    };
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("a loopback address");
    let devnet = devnet::start(config, listen).await.expect("start a devnet");
    let endpoint =
        Endpoint::parse(&devnet.connection_string(Some(&devnet.admin_token))).expect("an endpoint");
    let client = LotusClient::new(
        HttpTransport::new(endpoint, Duration::from_secs(30)).expect("a transport"),
    );
    let service = Arc::new(WinningPostService::new(
        Address::new_id(MINER),
        Arc::new(RealProofs::default()),
        PostVerifier::Real,
        Arc::new(PersistStores {
            roots: vec![store.path().to_path_buf()],
        }),
        Duration::from_secs(20),
    ));

    // The warm-up proves one of the miner's sectors before any round asks.
    let warm_up = service.warm_up(&client).await.expect("the warm-up");
    let first = service.records();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].warm_up && first[0].error.is_none(), "{first:?}");
    tracing::info!(?warm_up, "warm-up");

    // Elected in about half the rounds: the miner wins blocks, each with a proof the
    // devnet's real verifier accepted.
    let prover = Arc::new(InProcessProver {
        service: Arc::clone(&service),
        spoil: AtomicBool::new(false),
    });
    devnet.state().add_block_miner(BlockMiner {
        miner_id: MINER,
        win_probability: 0.5,
        prover: prover.clone(),
        proof_timeout: Duration::from_secs(20),
    });
    let from = devnet.head().height + 1;
    let records = wait_for_records(&devnet, from, "three won rounds", |records| {
        count(records, |outcome| {
            matches!(outcome, MiningOutcome::Won { .. })
        }) >= 3
    })
    .await;
    assert_eq!(
        count(&records, |outcome| !matches!(
            outcome,
            MiningOutcome::Won { .. } | MiningOutcome::NotElected
        )),
        0,
        "every elected round is won: {records:?}"
    );
    // A round is the miner's exactly when the election (from the round's beacon) picks it.
    for record in &records {
        let beacon = devnet.state().chain().beacon_entry(record.round);
        let picked = devnet::mining::elected(&beacon.data, record.round, MINER, 0.5);
        assert_eq!(
            record.outcome != MiningOutcome::NotElected,
            picked,
            "round {}: {record:?}",
            record.round
        );
    }
    let won: Vec<i64> = records
        .iter()
        .filter(|record| matches!(record.outcome, MiningOutcome::Won { .. }))
        .map(|record| record.round)
        .collect();
    for round in &won {
        let tipset = client
            .chain_get_tipset_by_height(*round, &chain_client::types::TipSetKey::head())
            .await
            .expect("the won round's tipset");
        let block = &tipset.blocks[0];
        assert_eq!(block.miner, Address::new_id(MINER), "round {round}");
        assert_eq!(block.win_post_proof.len(), 1, "round {round}");
        assert_eq!(
            block.win_post_proof[0].post_proof,
            fvm_shared::sector::RegisteredPoStProof::StackedDRGWinning2KiBV1
        );
    }
    let proven: Vec<u64> = service
        .records()
        .iter()
        .filter(|record| !record.warm_up && record.error.is_none())
        .map(|record| record.elapsed_ms)
        .collect();
    assert!(proven.len() >= 3, "{:?}", service.records());
    tracing::info!(?proven, "winning PoSt times (ms) after the warm-up");

    // A proof the devnet's verifier rejects wins nothing: the block is the devnet's own.
    prover.spoil.store(true, Ordering::SeqCst);
    // The round after the head may already be being proven with the change not yet seen
    // (a proof takes seconds); rounds from the one after it start their proofs later.
    let from = devnet.head().height + 2;
    let records = wait_for_records(&devnet, from, "a rejected proof", |records| {
        count(records, |outcome| {
            matches!(outcome, MiningOutcome::ProofRejected { .. })
        }) >= 1
    })
    .await;
    assert_eq!(
        count(&records, |outcome| matches!(
            outcome,
            MiningOutcome::Won { .. }
        )),
        0,
        "{records:?}"
    );
    for record in records
        .iter()
        .filter(|record| matches!(record.outcome, MiningOutcome::ProofRejected { .. }))
    {
        let tipset = client
            .chain_get_tipset_by_height(record.round, &chain_client::types::TipSetKey::head())
            .await
            .expect("the rejected round's tipset");
        assert_eq!(
            tipset.blocks[0].miner,
            Address::new_id(devnet::chain::BLOCK_PRODUCER),
            "round {}",
            record.round
        );
    }
    prover.spoil.store(false, Ordering::SeqCst);

    // Both sectors' sealed files gone: every elected round fails, naming the sector.
    let hidden = store.path().join("hidden");
    std::fs::create_dir_all(&hidden).expect("a hiding place");
    for number in [1u64, 2] {
        std::fs::rename(
            sealed_file(store.path(), number),
            hidden.join(number.to_string()),
        )
        .expect("move the sealed file away");
    }
    // As above: the next round's proof may have read the files before they went.
    let from = devnet.head().height + 2;
    let records = wait_for_records(&devnet, from, "two failed rounds", |records| {
        count(records, |outcome| {
            matches!(outcome, MiningOutcome::ProofFailed { .. })
        }) >= 2
    })
    .await;
    assert_eq!(
        count(&records, |outcome| matches!(
            outcome,
            MiningOutcome::Won { .. }
        )),
        0,
        "{records:?}"
    );
    for record in &records {
        if let MiningOutcome::ProofFailed { reason } = &record.outcome {
            assert!(
                reason.contains("no store on this host holds sectors"),
                "{reason}"
            );
        }
    }
    drop(devnet);
}
