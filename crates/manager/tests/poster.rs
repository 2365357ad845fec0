//! A PoSt-only manager (`daemon run --poster-only`; `--poster` runs the same runners
//! beside sealing) against a devnet with fake proofs: it refuses worker methods; the
//! genesis sectors in the persistent store are proven at every deadline that holds
//! them, and `util proving deadlines` shows it; a sector whose files are missing from
//! the store is skipped and becomes faulty. With `--miner` it also serves winning PoSts:
//! the devnet's block production asks it over JSON-RPC and the miner wins blocks.

mod support;

use std::time::{Duration, Instant};

use chain_client::types::TipSetKey;
use devnet::world::GenesisSector;
use devnet::{DevnetConfig, ProofMode};
use manager::{ProofCheck, StartOptions};
use serde_json::Value;

const MINER: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poster_proves_the_stored_sectors_and_skips_a_missing_one() {
    // Sectors 1 and 2 in deadline 1, sector 3 in deadline 3; sector 3's files are never
    // placed in the store.
    let sectors = [(1u64, 1u64), (2, 1), (3, 3)];
    let devnet = devnet::start(
        DevnetConfig {
            block_time: Duration::from_millis(100),
            proofs: ProofMode::Fake,
            proving_period: 32,
            deadlines_per_period: 4,
            genesis_sectors: sectors
                .iter()
                .map(|(number, deadline)| GenesisSector {
                    number: *number,
                    comm_r: [*number as u8; 32],
                    deadline: *deadline,
                })
                .collect(),
            ..DevnetConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("start a devnet");
    let (home, persist) = support::home_with_store();
    for number in [1, 2] {
        let name = format!("s-t0{MINER}-{number}");
        std::fs::create_dir_all(persist.join("sealed")).expect("sealed/");
        std::fs::create_dir_all(persist.join("cache").join(&name)).expect("the cache");
        std::fs::write(persist.join("sealed").join(&name), b"stand-in").expect("a replica");
    }
    let mut config = support::test_config(&devnet, "sqlite://manager.db".to_owned(), &persist);
    config.miners[0].post.challenge_confidence = 1;
    config.miners[0].post.submit_confidence = 1;
    config.miners[0].proof.enabled = true;
    // A PoSt-only manager, as on a host of its own (`daemon run --poster-only --miner`).
    let mut running = manager::start_poster(StartOptions {
        home: home.path().to_owned(),
        config,
        proof_check: ProofCheck::Fake,
        commit_tick: Duration::from_millis(100),
    })
    .await
    .expect("start the PoSt-only manager");
    let token = running.issue_token(&chain_client::auth::Permission::ALL);
    let url = running.url();
    let refused = support::RetryingClient::new(running.address, token.clone())
        .call_once(
            "Venus.AllocateSector",
            serde_json::json!([{"AllowedMiners": [1000], "AllowedProofTypes": [5]}]),
        )
        .await
        .expect_err("a PoSt-only manager refuses worker methods");
    assert!(refused.contains("only proves PoSts"), "{refused}");

    // Winning PoSts for block producers, over JSON-RPC with a write token; a read-only
    // token may not ask for one.
    assert_eq!(running.start_winning_post(true), 1);
    let read_only = running.issue_token(&[chain_client::auth::Permission::Read]);
    let refused = support::RetryingClient::new(running.address, read_only)
        .call_once(
            "Venus.ComputeWinningPoSt",
            serde_json::json!(["t01000", [], "AAAA", 1]),
        )
        .await
        .expect_err("a read-only token cannot ask for a winning PoSt");
    assert!(refused.contains("missing permission"), "{refused}");
    let producer_token = running.issue_token(&[
        chain_client::auth::Permission::Read,
        chain_client::auth::Permission::Write,
    ]);
    let prover = devnet::mining::JsonRpcWinningProver::new(
        &format!("{producer_token}:{url}"),
        Duration::from_secs(10),
    )
    .expect("a winning PoSt client");
    devnet.state().add_block_miner(devnet::mining::BlockMiner {
        miner_id: MINER,
        win_probability: 0.5,
        prover: std::sync::Arc::new(prover),
        proof_timeout: Duration::from_secs(5),
    });

    // Two whole periods and a deadline (4 deadlines of 8 epochs, 0.1 s per epoch).
    let client = running.manager.chain.clone();
    let started = Instant::now();
    let start_height = client.chain_head().await.expect("a head").height;
    while client.chain_head().await.expect("a head").height < start_height + 2 * 32 + 8 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the devnet stalled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // `sector-manager util proving …` against this manager.
    let proving = async |arguments: &[&str]| {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sector-manager"))
            .arg("--home")
            .arg(home.path())
            .args(["util", "proving", "--api", &url, "--token", &token])
            .args(arguments)
            .output()
            .await
            .expect("run util proving");
        assert!(
            output.status.success(),
            "{arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let json = async |arguments: &[&str]| {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(arguments);
        serde_json::from_slice::<Value>(&proving(&with_json).await).expect("JSON")
    };
    let records: Vec<Value> = serde_json::from_value(json(&["deadlines"]).await).expect("records");
    let proven: Vec<&Value> = records
        .iter()
        .filter(|record| record["index"] == 1 && record["outcome"] == "proven")
        .collect();
    assert!(
        proven.len() >= 2,
        "deadline 1 proven in at least two periods: {records:#?}"
    );
    for record in &proven {
        assert_eq!(record["sectors_proven"], 2, "{record}");
        let landed = record["landed_epoch"].as_i64().expect("a landed epoch");
        assert!(
            record["open"].as_i64() <= Some(landed) && Some(landed) < record["close"].as_i64(),
            "{record}"
        );
    }
    // Sector 3 has no files: its deadline has nothing to prove once it is skipped,
    // so no message is sent, and the deadline's close makes it faulty.
    assert!(
        records
            .iter()
            .filter(|record| record["index"] == 3)
            .all(|record| record["outcome"] != "proven"),
        "{records:#?}"
    );
    let faults: Vec<u64> = client
        .state_miner_faults(
            &fvm_shared::address::Address::new_id(MINER),
            &TipSetKey::head(),
        )
        .await
        .expect("the faults")
        .iter()
        .collect();
    assert_eq!(faults, vec![3]);
    // The chain's view: the current deadline, the faults, a check of the files now.
    let info = json(&["info", "1000"]).await;
    assert_eq!(info["Deadlines"], 4, "{info}");
    assert_eq!(info["Faults"], 1, "{info}");
    assert!(
        info["Open"].as_i64() <= info["CurrentEpoch"].as_i64(),
        "{info}"
    );
    let faults = json(&["faults", "1000"]).await;
    assert_eq!(
        faults,
        serde_json::json!([{"Deadline": 3, "Partition": 0, "Sector": 3, "Recovering": false}])
    );
    let checked = json(&["check", "1000", "1"]).await;
    assert_eq!(
        checked
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| (row["Sector"].as_u64(), row["Ok"].as_bool()))
            .collect::<Vec<_>>(),
        vec![(Some(1), Some(true)), (Some(2), Some(true))]
    );
    let checked = json(&["check", "1000", "3"]).await;
    assert_eq!(checked[0]["Sector"], 3);
    assert_eq!(checked[0]["Ok"], false, "{checked}");
    // The miner won blocks with proofs the devnet accepted; the rounds that failed are
    // those whose challenge fell on sector 3 (no files here) before it became faulty.
    let mining = devnet.state().mining_records();
    let won: Vec<i64> = mining
        .iter()
        .filter(|record| matches!(record.outcome, devnet::mining::MiningOutcome::Won { .. }))
        .map(|record| record.round)
        .collect();
    assert!(won.len() >= 5, "{mining:#?}");
    for record in &mining {
        match &record.outcome {
            devnet::mining::MiningOutcome::Won { .. }
            | devnet::mining::MiningOutcome::NotElected => {}
            devnet::mining::MiningOutcome::ProofFailed { reason } => {
                assert!(reason.contains("sectors [3]"), "{record:?}");
            }
            other => panic!("round {}: {other:?}", record.round),
        }
    }
    for round in won.iter().take(3) {
        let tipset = client
            .chain_get_tipset_by_height(*round, &TipSetKey::head())
            .await
            .expect("a won round's tipset");
        assert_eq!(
            tipset.blocks[0].miner,
            fvm_shared::address::Address::new_id(MINER)
        );
        assert_eq!(tipset.blocks[0].win_post_proof.len(), 1);
    }
    let winning: Vec<Value> =
        serde_json::from_value(json(&["winning"]).await).expect("winning records");
    assert_eq!(winning[0]["WarmUp"], true, "{winning:#?}");
    assert_eq!(winning[0]["Error"], Value::Null, "{winning:#?}");
    assert!(
        winning
            .iter()
            .filter(|record| record["WarmUp"] == false && record["Error"].is_null())
            .count()
            >= won.len(),
        "{winning:#?}"
    );
    // The table form prints too.
    let table = proving(&["deadlines"]).await;
    let text = String::from_utf8_lossy(&table);
    assert!(
        text.contains("DEADLINE") && text.contains("proven"),
        "{text}"
    );
    running.stop().await;
}
