//! The window PoSt runner against a devnet making blocks on its own, with real 2KiB
//! sectors and real proofs: three whole proving periods proven on time and accepted by
//! the devnet's verifier; a sector whose sealed file disappears is skipped and becomes
//! faulty; once the file is back a recovery is declared and the sector is proven again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_client::transport::HttpTransport;
use chain_client::types::TipSetKey;
use chain_client::{Endpoint, LotusClient};
use devnet::world::GenesisSector;
use devnet::{DevnetConfig, ProofMode};
use fvm_shared::address::Address;
use post::deadline::{PostTiming, ProvingGeometry};
use post::runner::{
    DeadlineOutcome, DeadlineRecord, PersistStores, PostVerifier, WindowPostRunner,
    WindowPostSettings,
};
use proofs::RealProofs;
use support::{MINER, seal, sealed_file};

mod support;

const WORKER: u64 = 100;
/// Two deadlines per 2 sectors (a 2KiB partition holds 2): sectors 1 and 2 in deadline
/// 4, sectors 3 and 4 in deadline 6.
const SECTORS: [(u64, u64); 4] = [(1, 4), (2, 4), (3, 6), (4, 6)];
/// The sector whose file goes missing.
const DAMAGED: u64 = 3;
const DAMAGED_DEADLINE: u64 = 6;

struct Harness {
    client: LotusClient<HttpTransport>,
    records: post::runner::DeadlineRecords,
    geometry: ProvingGeometry,
    offset: i64,
}

impl Harness {
    async fn head(&self) -> i64 {
        self.client.chain_head().await.expect("the head").height
    }

    async fn wait_for_epoch(&self, epoch: i64) {
        let started = Instant::now();
        while self.head().await < epoch {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "the devnet did not reach epoch {epoch}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn record(&self, period_start: i64, index: u64) -> Option<DeadlineRecord> {
        self.records
            .lock()
            .expect("the records")
            .iter()
            .find(|record| record.period_start == period_start && record.index == index)
            .cloned()
    }

    async fn faults(&self) -> Vec<u64> {
        let key = TipSetKey::head();
        self.client
            .state_miner_faults(&Address::new_id(MINER), &key)
            .await
            .expect("the faults")
            .iter()
            .collect()
    }

    /// The first epoch of the first proving period starting after `epoch`.
    fn next_period_start(&self, epoch: i64) -> i64 {
        let current = self.geometry.deadline_at(self.offset, epoch).period_start;
        current + self.geometry.proving_period
    }
}

fn assert_proven_on_time(record: &Option<DeadlineRecord>, what: &str) -> DeadlineRecord {
    let record = record
        .clone()
        .unwrap_or_else(|| panic!("{what}: no record"));
    assert_eq!(
        record.outcome,
        DeadlineOutcome::Proven,
        "{what}: {record:?}"
    );
    let landed = record.landed_epoch.expect("a landed epoch");
    assert!(
        record.open <= landed && landed < record.close,
        "{what} landed at {landed}, outside [{}, {}): {record:?}",
        record.open,
        record.close
    );
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_proving_periods_are_proven_and_a_lost_file_is_skipped_then_recovered() {
    // The runner's log, shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("post=info")
        .try_init();
    tokio::task::spawn_blocking(support::make_post_parameters)
        .await
        .expect("the parameter task");
    let store = tempfile::tempdir().expect("a persistent store");
    let root = store.path().to_path_buf();
    let genesis = tokio::task::spawn_blocking(move || {
        SECTORS
            .iter()
            .map(|(number, deadline)| GenesisSector {
                number: *number,
                comm_r: seal(&root, *number),
                deadline: *deadline,
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("the sealing task");

    // Periods of 8 deadlines of 6 epochs, the challenge two epochs before each opens, a
    // block every 400 ms: a period takes 19 s, and a deadline's proof (about 1.4 s for two
    // 2KiB sectors here) has 3.2 s from its challenge to its close, two epochs of which
    // a message takes to be executed on this devnet.
    let config = DevnetConfig {
        block_time: Duration::from_millis(400),
        proofs: ProofMode::Real,
        proving_period: 48,
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
    let runner = WindowPostRunner::new(
        client.clone(),
        Arc::new(RealProofs::default()),
        PostVerifier::Real,
        Arc::new(PersistStores {
            roots: vec![store.path().to_path_buf()],
        }),
        WindowPostSettings {
            miner: Address::new_id(MINER),
            sender: Address::new_id(WORKER),
            timing: PostTiming {
                challenge_confidence: 0,
                submit_confidence: 0,
            },
            max_partitions_per_message: None,
            check_timeout: Duration::from_secs(20),
            poll_interval: Duration::from_millis(50),
            max_fee: fvm_shared::econ::TokenAmount::default(),
        },
    );
    let records = runner.records();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(runner.run(stopped));

    let info = client
        .state_miner_proving_deadline(&Address::new_id(MINER), &TipSetKey::head())
        .await
        .expect("the proving deadline");
    let geometry = ProvingGeometry::from_chain(&info);
    let harness = Harness {
        client,
        records,
        geometry,
        offset: info.period_start,
    };
    // The first period whose sectors' deadlines are all still ahead of the chain (the
    // current one when the chain is young enough, which saves waiting a whole period).
    let head = harness.head().await;
    let current = geometry.deadline_at(harness.offset, head).period_start;
    let earliest = SECTORS
        .iter()
        .map(|(_, deadline)| *deadline)
        .min()
        .unwrap_or(0);
    let first = if head + 2 < geometry.deadline(current, earliest).challenge {
        current
    } else {
        harness.next_period_start(head)
    };
    let periods: Vec<i64> = (0..3)
        .map(|n| first + n * geometry.proving_period)
        .collect();

    // Period 1: every deadline with sectors proven on time; nothing faulty.
    harness.wait_for_epoch(periods[1]).await;
    for (_, deadline) in SECTORS {
        let record = assert_proven_on_time(
            &harness.record(periods[0], deadline),
            &format!("period 1, deadline {deadline}"),
        );
        assert_eq!(record.sectors_proven, 2, "{record:?}");
        assert!(record.sectors_skipped.is_empty(), "{record:?}");
    }
    assert_eq!(harness.faults().await, Vec::<u64>::new());

    // Period 2: sector 3's sealed file is gone: it is skipped, its partner is proven.
    let aside = store.path().join("aside");
    std::fs::rename(sealed_file(store.path(), DAMAGED), &aside).expect("move the file away");
    let damaged = geometry.deadline(periods[1], DAMAGED_DEADLINE);
    harness.wait_for_epoch(damaged.close + 1).await;
    let record = assert_proven_on_time(
        &harness.record(periods[1], DAMAGED_DEADLINE),
        "period 2, the damaged deadline",
    );
    assert_eq!(record.sectors_skipped, vec![DAMAGED], "{record:?}");
    assert_eq!(record.sectors_proven, 1, "{record:?}");
    assert_eq!(harness.faults().await, vec![DAMAGED]);

    // The file comes back: a recovery is declared two deadlines ahead of period 3's
    // deadline 6, which then proves it again.
    std::fs::rename(&aside, sealed_file(store.path(), DAMAGED)).expect("put the file back");
    harness
        .wait_for_epoch(periods[2] + geometry.proving_period)
        .await;
    let record = assert_proven_on_time(
        &harness.record(periods[2], DAMAGED_DEADLINE),
        "period 3, the damaged deadline",
    );
    assert_eq!(record.recoveries_declared, vec![DAMAGED], "{record:?}");
    assert_eq!(record.sectors_proven, 2, "{record:?}");
    assert!(record.sectors_skipped.is_empty(), "{record:?}");
    assert_eq!(harness.faults().await, Vec::<u64>::new());

    // Every deadline with sectors, in all three periods, proven on time.
    for period in &periods {
        for (_, deadline) in SECTORS {
            assert_proven_on_time(
                &harness.record(*period, deadline),
                &format!("period starting {period}, deadline {deadline}"),
            );
        }
    }
    let slowest = harness
        .records
        .lock()
        .expect("the records")
        .iter()
        .filter_map(|record| record.proof_milliseconds)
        .max();
    eprintln!("the slowest deadline's proof took {slowest:?} ms");
    stop.send_replace(true);
    running.await.expect("the runner");
}
