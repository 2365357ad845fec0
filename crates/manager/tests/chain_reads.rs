//! What the sealing calls ask the chain node: once a batch lands, the polls, seed
//! requests and proof submissions of its sectors answer from one landing check (a read
//! per sector), however often and at however many heads the workers ask.

mod support;

use serde_json::{Value, json};
use support::Harness;

/// The per-sector state reads the devnet has answered so far.
fn sector_reads(harness: &Harness) -> u64 {
    let state = harness.devnet.state();
    state.calls_of("Filecoin.StateSectorPreCommitInfo")
        + state.calls_of("Filecoin.StateSectorGetInfo")
}

/// Polls `method` for each of `sectors`, making a block between rounds, until every one
/// answers Landed; then asks each `again` more times, a block apart.
async fn poll_all_until_landed(harness: &Harness, method: &str, sectors: &[Value], again: usize) {
    let mut landed = vec![false; sectors.len()];
    for _ in 0..300 {
        for (sector, landed) in sectors.iter().zip(landed.iter_mut()) {
            let answer = harness.api.call(method, json!([sector])).await;
            match answer["State"].as_u64() {
                Some(3) => *landed = true,
                Some(1 | 2) => assert!(!*landed, "{method} went back from Landed: {answer}"),
                _ => panic!("{method} answered {answer}"),
            }
        }
        if landed.iter().all(|landed| *landed) {
            break;
        }
        harness.devnet.produce();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert!(
        landed.iter().all(|landed| *landed),
        "{method}: not every sector landed"
    );
    for _ in 0..again {
        harness.devnet.produce();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        for sector in sectors {
            let answer = harness.api.call(method, json!([sector])).await;
            assert_eq!(answer["State"], json!(3), "{method} asked again: {answer}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landed_batch_is_read_once_however_often_its_sectors_ask() {
    const SECTORS: usize = 4;
    const POLLS_AFTER_LANDING: usize = 5;
    let harness = Harness::start(support::Database::Sqlite).await;
    let api = &harness.api;
    let comm_d = support::cc_comm_d_2kib();
    let mut sectors = Vec::new();
    let mut tickets = Vec::new();
    for index in 0..SECTORS {
        let allocated = api
            .call("Venus.AllocateSector", json!([{"AllowedMiners": [1000]}]))
            .await;
        let ticket = api
            .call("Venus.AssignTicket", json!([allocated["ID"]]))
            .await;
        let comm_r = [u8::try_from(index).expect("a small index") + 20; 32];
        let pre = json!({"CommR": comm_r, "CommD": comm_d, "Ticket": ticket});
        let answer = api
            .call("Venus.SubmitPreCommit", json!([allocated, pre, false]))
            .await;
        assert_eq!(answer["Res"], json!(1), "{answer}");
        sectors.push(allocated["ID"].clone());
        tickets.push((comm_r, ticket));
    }
    let before = sector_reads(&harness);

    poll_all_until_landed(
        &harness,
        "Venus.PollPreCommitState",
        &sectors,
        POLLS_AFTER_LANDING,
    )
    .await;
    // The seeds: asked at every head until handed out, then twice more.
    let mut seeds = Vec::new();
    for sector in &sectors {
        let seed = loop {
            let answer = api.call("Venus.WaitSeed", json!([sector, 5])).await;
            if answer["ShouldWait"] == json!(false) {
                break answer["Seed"]["Seed"].clone();
            }
            harness.devnet.produce();
        };
        for _ in 0..2 {
            let again = api.call("Venus.WaitSeed", json!([sector, 5])).await;
            assert_eq!(again["Seed"]["Seed"], seed, "{again}");
        }
        seeds.push(support::unb64(seed.as_str().expect("a base64 seed")));
    }
    for ((sector, (comm_r, ticket)), seed) in sectors.iter().zip(&tickets).zip(&seeds) {
        let number = sector["Number"].as_u64().expect("a number");
        let ticket = support::unb64(ticket["Ticket"].as_str().expect("a base64 ticket"));
        let proof = support::fake_proof(1000, number, *comm_r, comm_d, &ticket, seed);
        let answer = api
            .call(
                "Venus.SubmitProof",
                json!([sector, {"Proof": support::b64(&proof)}, false]),
            )
            .await;
        assert_eq!(answer["Res"], json!(1), "{answer}");
    }
    poll_all_until_landed(
        &harness,
        "Venus.PollProofState",
        &sectors,
        POLLS_AFTER_LANDING,
    )
    .await;

    // One read per sector for its precommit's landing and one for its proof's, whatever
    // the number of polls, heads and seed requests. (Each poll and seed request reading
    // for itself made more than 2 × 4 × (1 + POLLS_AFTER_LANDING) reads.)
    let reads = sector_reads(&harness) - before;
    assert_eq!(
        reads,
        2 * SECTORS as u64,
        "per-sector chain reads from the precommits to the proofs' landing"
    );
    harness.stop().await;
}
