//! A precommit message executed, then taken away by a reorganisation: the manager
//! notices, follows the message into the new fork, and the sector lands once.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Harness;

async fn message_of(harness: &Harness, sector: &Value) -> Value {
    let state = harness
        .api
        .admin("Venus.SectorState", json!([sector]))
        .await;
    state["Messages"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganised_precommit_is_followed_into_the_new_fork() {
    let harness = Harness::start(support::Database::Sqlite).await;
    let api = &harness.api;
    let allocated = api
        .call("Venus.AllocateSector", json!([{"AllowedMiners": [1000]}]))
        .await;
    let sector = allocated["ID"].clone();
    let ticket = api.call("Venus.AssignTicket", json!([sector])).await;
    let comm_r = [9u8; 32];
    let pre = json!({"CommR": comm_r, "CommD": support::cc_comm_d_2kib(), "Ticket": ticket});
    let answer = api
        .call("Venus.SubmitPreCommit", json!([allocated, pre, false]))
        .await;
    assert_eq!(answer["Res"], json!(1));

    // Make blocks until the manager has seen the message executed.
    let mut executed = Value::Null;
    for _ in 0..100 {
        harness.devnet.produce();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let message = message_of(&harness, &sector).await;
        if message["State"] == json!("executed") {
            executed = message;
            break;
        }
    }
    let first_height = executed["ExecutedHeight"]
        .as_i64()
        .expect("the message was executed");
    let poll = api.call("Venus.PollPreCommitState", json!([sector])).await;
    assert_eq!(
        poll["State"],
        json!(2),
        "executed but not yet confident: Packed; {poll}"
    );

    // Replace the tipsets from the one that included it: the execution is gone.
    let head = harness.devnet.head().height;
    let depth = usize::try_from(head - first_height + 2).expect("a depth");
    harness.devnet.reorganise(depth);
    let mut seen_revert = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let message = message_of(&harness, &sector).await;
        if message["State"] == json!("pushed")
            || message["ExecutedTipset"] != executed["ExecutedTipset"]
        {
            seen_revert = true;
            break;
        }
    }
    assert!(seen_revert, "the manager noticed the reorganisation");

    // The new fork executes it again; the sector lands with one precommit on chain.
    let landed = harness
        .poll_until_landed("Venus.PollPreCommitState", &sector)
        .await;
    assert_eq!(landed["State"], json!(3));
    let message = message_of(&harness, &sector).await;
    assert_eq!(message["State"], json!("executed"), "{message}");
    let counts = support::sector_message_counts(&harness.devnet);
    assert_eq!(
        counts.get(&1),
        Some(&(1, 0)),
        "one precommit on the canonical chain"
    );
    harness.stop().await;
}
