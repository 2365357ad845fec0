//! A whole sector's life driven over HTTP with the requests a damocles worker sends, each
//! call repeated, every answer compared after JSON normalisation (parsed, so key order
//! and spacing do not matter) with the reference's shape. The chain is the devnet with
//! fake proofs; the manager runs on SQLite and, when `SEALCLUSTER_TEST_POSTGRES_URL` is
//! set or a PostgreSQL server can be started here, on PostgreSQL too.

mod support;

use serde_json::json;
use support::{Harness, b64};

const SECTOR_PROOF_2KIB: u64 = 5;

async fn whole_sector_life(harness: &Harness) {
    let api = &harness.api;
    let devnet = &harness.devnet;

    // Start-up calls of a worker.
    let ping = json!([{"Name": "worker-1", "Dest": "127.0.0.1:17890", "Version": "v0.13.1-prod-abc",
        "Summary": {"Threads": 2, "Empty": 1, "Paused": 0, "Running": 1, "Waiting": 0, "Errors": 0}}]);
    api.twice("Venus.WorkerPing", ping, json!(null)).await;
    api.twice(
        "Venus.StoreBasicInfo",
        json!(["persist-1"]),
        json!({"Name": "persist-1", "Path": harness.persist.display().to_string(), "Strict": false,
               "ReadOnly": false, "Weight": 1, "Meta": null}),
    )
    .await;
    api.twice(
        "Venus.StoreBasicInfo",
        json!(["no-such-store"]),
        json!(null),
    )
    .await;
    api.twice(
        "Venus.SealingDefaults",
        json!([]),
        json!({"max_retries": 3, "seal_interval": "5s"}),
    )
    .await;

    // Allocation: another miner gets nothing; ours gets 1, then 2 (never reused).
    api.twice(
        "Venus.AllocateSector",
        json!([{"AllowedMiners": [2000], "AllowedProofTypes": []}]),
        json!(null),
    )
    .await;
    api.twice(
        "Venus.AllocateSector",
        json!([{"AllowedMiners": [1000], "AllowedProofTypes": [6]}]),
        json!(null),
    )
    .await;
    let first = api
        .call(
            "Venus.AllocateSector",
            json!([{"AllowedMiners": [1000], "AllowedProofTypes": [SECTOR_PROOF_2KIB]}]),
        )
        .await;
    assert_eq!(
        first,
        json!({"ID": {"Miner": 1000, "Number": 1}, "ProofType": 5})
    );
    let second = api
        .call(
            "Venus.AllocateSector",
            json!([{"AllowedMiners": null, "AllowedProofTypes": null}]),
        )
        .await;
    assert_eq!(
        second,
        json!({"ID": {"Miner": 1000, "Number": 2}, "ProofType": 5})
    );
    let sector = json!({"Miner": 1000, "Number": 1});

    api.twice(
        "Venus.AcquireDeals",
        json!([sector, {"MaxDeals": null, "MinUsedSpace": null}]),
        json!(null),
    )
    .await;
    let ticket = api.call("Venus.AssignTicket", json!([sector])).await;
    assert_eq!(
        api.call("Venus.AssignTicket", json!([sector])).await,
        ticket,
        "a repeated ticket is the same"
    );
    let ticket_bytes = support::unb64(ticket["Ticket"].as_str().expect("a base64 ticket"));
    assert_eq!(ticket_bytes.len(), 32);
    let report = |prev: &str, next: &str| {
        json!([sector, {"Worker": {"Instance": "worker-1", "Location": "/mnt/store0"},
            "StateChange": {"Prev": prev, "Next": next, "Event": "Event::X"}, "Failure": null}])
    };
    api.twice(
        "Venus.ReportState",
        report("Empty", "Allocated"),
        json!({"Id": sector, "Finalized": false, "AbortReason": null}),
    )
    .await;

    // PreCommit: accepted, accepted again, a different one refused.
    let comm_r = [7u8; 32];
    let comm_d = support::cc_comm_d_2kib();
    let pre = json!({"CommR": comm_r, "CommD": comm_d, "Ticket": ticket});
    api.twice(
        "Venus.SubmitPreCommit",
        json!([{"ID": sector, "ProofType": 5}, pre, false]),
        json!({"Res": 1, "Desc": null}),
    )
    .await;
    let other_comm_r = [8u8; 32];
    let other = json!({"CommR": other_comm_r, "CommD": comm_d, "Ticket": ticket});
    let mismatched = api
        .call(
            "Venus.SubmitPreCommit",
            json!([{"ID": sector, "ProofType": 5}, other, false]),
        )
        .await;
    assert_eq!(mismatched["Res"], json!(3), "{mismatched}");
    let bad_comm_d = [1u8; 32];
    let wrong_comm_d = json!({"CommR": comm_r, "CommD": bad_comm_d, "Ticket": ticket});
    let refused = api
        .call(
            "Venus.SubmitPreCommit",
            json!([{"ID": {"Miner": 1000, "Number": 2}, "ProofType": 5}, wrong_comm_d, false]),
        )
        .await;
    assert_eq!(
        refused["Res"],
        json!(3),
        "a wrong CommD pauses the sector: {refused}"
    );

    let landed = harness
        .poll_until_landed("Venus.PollPreCommitState", &sector)
        .await;
    assert_eq!(landed["State"], json!(3));
    api.twice("Venus.PollPreCommitState", json!([sector]), landed.clone())
        .await;

    // The seed: wait, then the same seed every time.
    let waiting = api.call("Venus.WaitSeed", json!([sector, 5])).await;
    assert_eq!(waiting["ShouldWait"], json!(true), "{waiting}");
    assert!(
        waiting["Delay"].as_u64().is_some_and(|delay| delay > 0),
        "{waiting}"
    );
    assert_eq!(waiting["Seed"], json!(null));
    let seed = loop {
        let answer = api.call("Venus.WaitSeed", json!([sector, 5])).await;
        if answer["ShouldWait"] == json!(false) {
            break answer;
        }
        devnet.produce();
    };
    api.twice("Venus.WaitSeed", json!([sector, 5]), seed.clone())
        .await;
    let seed_bytes = support::unb64(seed["Seed"]["Seed"].as_str().expect("a base64 seed"));

    // The proof: accepted, accepted again, another refused as a mismatch.
    let proof = support::fake_proof(1000, 1, comm_r, comm_d, &ticket_bytes, &seed_bytes);
    api.twice(
        "Venus.SubmitProof",
        json!([sector, {"Proof": b64(&proof)}, false]),
        json!({"Res": 1, "Desc": null}),
    )
    .await;
    let mismatched = api
        .call(
            "Venus.SubmitProof",
            json!([sector, {"Proof": b64(b"another")}, false]),
        )
        .await;
    assert_eq!(mismatched["Res"], json!(3), "{mismatched}");
    let landed = harness
        .poll_until_landed("Venus.PollProofState", &sector)
        .await;
    api.twice("Venus.PollProofState", json!([sector]), landed)
        .await;

    // Persisting: a store is reserved (the same one again), files missing say false,
    // files present say true.
    let store = api
        .call(
            "Venus.StoreReserveSpace",
            json!([sector, 4096, ["persist-1"]]),
        )
        .await;
    assert_eq!(store["Name"], json!("persist-1"), "{store}");
    api.twice(
        "Venus.StoreReserveSpace",
        json!([sector, 4096, ["persist-1"]]),
        store,
    )
    .await;
    api.twice(
        "Venus.SubmitPersistedEx",
        json!([sector, "persist-1", false]),
        json!(false),
    )
    .await;
    support::place_persisted_files(&harness.persist, 1000, 1);
    api.twice(
        "Venus.SubmitPersistedEx",
        json!([sector, "persist-1", false]),
        json!(true),
    )
    .await;
    api.twice(
        "Venus.SubmitPersisted",
        json!([sector, "persist-1"]),
        json!(true),
    )
    .await;

    // Finished: finalized once, repeats change nothing, later calls say "not found".
    api.twice("Venus.ReportFinalized", json!([sector]), json!(null))
        .await;
    api.twice(
        "Venus.ReportState",
        report("Persisted", "Finished"),
        json!({"Id": sector, "Finalized": true, "AbortReason": null}),
    )
    .await;
    api.twice_error(
        "Venus.SubmitPreCommit",
        json!([{"ID": sector, "ProofType": 5}, pre, false]),
        11001,
    )
    .await;

    // The second sector is aborted; repeats are harmless; its calls now say "not found".
    let sector_two = json!({"Miner": 1000, "Number": 2});
    api.twice(
        "Venus.ReportAborted",
        json!([sector_two, "the worker gave up"]),
        json!(null),
    )
    .await;
    api.twice(
        "Venus.ReportState",
        json!([sector_two, {"Worker": {"Instance": "worker-1", "Location": "/mnt/store1"},
            "StateChange": {"Prev": "Allocated", "Next": "Aborted", "Event": "Event::Abort"}, "Failure": {"Level": "Abort", "Desc": "x"}}]),
        json!({"Id": sector_two, "Finalized": false, "AbortReason": "the worker gave up"}),
    )
    .await;
    api.twice_error("Venus.PollPreCommitState", json!([sector_two]), 11001)
        .await;
    api.twice_error(
        "Venus.AssignTicket",
        json!([{"Miner": 1000, "Number": 999}]),
        11001,
    )
    .await;
    api.twice_error(
        "Venus.AssignTicket",
        json!([{"Miner": 4242, "Number": 1}]),
        11001,
    )
    .await;

    // Jobs this manager does not hand out yet answer "nothing now" in the right shapes.
    api.twice("Venus.AllocateSanpUpSector", json!([{"Sector": {"AllowedMiners": [], "AllowedProofTypes": []}, "Deals": {"MaxDeals": null, "MinUsedSpace": null}}]), json!(null)).await;
    api.twice(
        "Venus.AllocateRebuildSector",
        json!([{"AllowedMiners": [], "AllowedProofTypes": []}]),
        json!(null),
    )
    .await;
    api.twice(
        "Venus.AllocateUnsealSector",
        json!([{"AllowedMiners": [], "AllowedProofTypes": []}]),
        json!(null),
    )
    .await;
    api.twice(
        "Venus.WdPoStAllocateJobs",
        json!([{"AllowedMiners": [], "AllowedProofTypes": []}, 1, "worker-1"]),
        json!([]),
    )
    .await;
    api.twice(
        "Venus.WdPoStHeartbeatJobs",
        json!([[], "worker-1"]),
        json!(null),
    )
    .await;

    // Malformed calls are JSON-RPC errors, not crashes.
    api.twice_error(
        "Venus.SubmitPreCommit",
        json!([{"ID": "one"}, {}, false]),
        -32602,
    )
    .await;
    api.twice_error("Venus.NoSuchMethod", json!([]), -32601)
        .await;

    // The chain agrees: the sector is active, and exactly one precommit and one prove
    // message carried it.
    assert!(
        harness.sector_active(1).await,
        "sector 1 is active on chain"
    );
    let state = api.admin("Venus.SectorState", json!([sector])).await;
    let purposes: Vec<&str> = state["Messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["Purpose"].as_str().expect("a purpose"))
        .collect();
    assert_eq!(purposes, ["pre_commit", "prove_commit"], "{state}");
}

async fn authentication(harness: &Harness) {
    let api = &harness.api;
    // No token from a host outside the tokenless networks: a JSON-RPC error that says
    // what to do (a damocles worker logs the message), and nothing allocated.
    let answer = api
        .call_without_token("Venus.AllocateSector", json!([{}]))
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("TokenlessWorkerNetworks")),
        "{answer}"
    );
    let listed = api.admin("Venus.ListSectors", json!(["", null])).await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(2),
        "no sector was allocated: {listed}"
    );
    // A read token cannot call worker methods; a write token cannot call admin ones.
    let read = harness.token(&["read"]);
    let answer = api
        .call_with(
            &read,
            "Venus.AssignTicket",
            json!([{"Miner": 1000, "Number": 1}]),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing permission")),
        "{answer}"
    );
    let write = harness.token(&["read", "write"]);
    let answer = api
        .call_with(
            &write,
            "Venus.AbortSector",
            json!([{"Miner": 1000, "Number": 1}, "x"]),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing permission")),
        "{answer}"
    );
    let answer = api
        .call_with("not.a.token", "Venus.StoreBasicInfo", json!(["persist-1"]))
        .await;
    assert_eq!(answer, json!(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_sector_life_over_http_on_sqlite() {
    let harness = Harness::start(support::Database::Sqlite).await;
    whole_sector_life(&harness).await;
    authentication(&harness).await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_sector_life_over_http_on_postgres() {
    let server = support::postgres::server();
    let harness = Harness::start(support::Database::Postgres(server.fresh_database())).await;
    whole_sector_life(&harness).await;
    authentication(&harness).await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_tokenless_networks_need_no_token_but_admin_methods_still_do() {
    let harness = Harness::start_with(support::Database::Sqlite, |config| {
        config.common.auth.tokenless_worker_networks =
            vec!["127.0.0.0/8".parse().expect("a network")];
    })
    .await;
    let api = &harness.api;
    let answer = api
        .call_without_token("Venus.AllocateSector", json!([{"AllowedMiners": [1000]}]))
        .await;
    assert_eq!(answer["result"]["ID"]["Number"], json!(1), "{answer}");
    let answer = api
        .call_without_token("Venus.ListSectors", json!(["", null]))
        .await;
    assert!(answer["result"].is_array(), "{answer}");
    let answer = api
        .call_without_token(
            "Venus.AbortSector",
            json!([{"Miner": 1000, "Number": 1}, "x"]),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("need 'admin'")),
        "{answer}"
    );
    harness.stop().await;
}

async fn concurrent_allocations_take_turns(harness: &Harness) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = support::RetryingClient::new(
            harness.manager.as_ref().expect("a manager").address,
            harness.token(&["write"]),
        );
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for _ in 0..25 {
                // Not retried: a clash between concurrent allocations must not even
                // surface as an error.
                let allocated = client
                    .call_once("Venus.AllocateSector", json!([{"AllowedMiners": [1000]}]))
                    .await
                    .expect("an allocation without error");
                numbers.push(
                    allocated["ID"]["Number"]
                        .as_u64()
                        .expect("a sector, never null"),
                );
            }
            numbers
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.extend(task.await.expect("an allocating task"));
    }
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=200).collect::<Vec<u64>>(),
        "200 distinct numbers, none skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_allocations_never_share_or_skip_a_number_on_sqlite_or_postgres() {
    let harness = Harness::start(support::Database::Sqlite).await;
    concurrent_allocations_take_turns(&harness).await;
    harness.stop().await;
    let server = support::postgres::server();
    let harness = Harness::start(support::Database::Postgres(server.fresh_database())).await;
    concurrent_allocations_take_turns(&harness).await;
    harness.stop().await;
}
