//! The database layer's own rules, on SQLite (through the writer thread) and on a real
//! PostgreSQL server: allocation bounds, an outbox message refused when one of its
//! sectors changed (and nothing of it kept), and ends of a sector that happen once.

mod support;

use manager::db::{Database, MessageState, Phase, PreCommitRecord, Purpose};

async fn open(url: &str) -> (tempfile::TempDir, Database) {
    let home = tempfile::tempdir().expect("a home");
    let database = Database::open(url, home.path(), 4)
        .await
        .expect("open the database");
    (home, database)
}

fn pre_commit(now: i64) -> PreCommitRecord {
    PreCommitRecord {
        comm_r: vec![1; 32],
        comm_d: vec![2; 32],
        ticket: vec![3; 32],
        ticket_epoch: 10,
        submitted_at: now,
    }
}

async fn allocation_respects_bounds_and_the_chain(database: &Database) {
    let taken = |number: u64| number == 12 || number == 13;
    let allocate =
        |max: Option<u64>| database.allocate_sector(1000, 5, 10, max, Box::new(taken), 1);
    // Above MinNumber, skipping what the chain already holds.
    assert_eq!(allocate(None).await.expect("allocate"), Some(11));
    assert_eq!(allocate(None).await.expect("allocate"), Some(14));
    // Exhausted below MaxNumber: nothing, and the counter does not move.
    assert_eq!(allocate(Some(14)).await.expect("allocate"), None);
    assert_eq!(database.last_allocated(1000).await.expect("read"), Some(14));
    assert_eq!(allocate(Some(15)).await.expect("allocate"), Some(15));
    let row = database
        .sector(1000, 15)
        .await
        .expect("read")
        .expect("a row");
    assert_eq!((row.phase, row.proof_type), (Phase::Sealing, 5));
}

async fn a_message_for_a_changed_sector_leaves_nothing_behind(database: &Database) {
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let number = database
            .allocate_sector(2000, 5, 0, None, Box::new(|_| false), 1)
            .await
            .expect("allocate")
            .expect("a number");
        assert!(
            database
                .submit_pre_commit(2000, number, &pre_commit(2))
                .await
                .expect("submit")
        );
        numbers.push(number);
    }
    let waiting = database
        .waiting_for_message(2000, Purpose::PreCommit)
        .await
        .expect("read the waiting list");
    assert_eq!(waiting.len(), 3);
    // One of them is aborted after the batch was formed.
    assert!(
        database
            .end_sector(2000, numbers[1], Phase::Aborted, Some("operator"), 3)
            .await
            .expect("abort")
    );
    let created = database
        .create_message(
            2000,
            Purpose::PreCommit,
            "uuid-1",
            "f01000",
            28,
            &[0x80],
            "0",
            "0",
            &numbers,
            4,
        )
        .await
        .expect("create a message");
    assert_eq!(created, None, "the batch must be formed again");
    assert!(
        database
            .messages_in(&[MessageState::Created])
            .await
            .expect("read the outbox")
            .is_empty(),
        "a refused message is not kept"
    );
    for number in [numbers[0], numbers[2]] {
        let row = database
            .sector(2000, number)
            .await
            .expect("read")
            .expect("a row");
        assert!(
            row.pre_need_send && row.pre_message.is_none(),
            "{number} still waits"
        );
    }
    // Formed again without the aborted sector, it is kept, and the sectors it carries
    // read as carried at once (the row cache forgot them).
    let created = database
        .create_message(
            2000,
            Purpose::PreCommit,
            "uuid-2",
            "f01000",
            28,
            &[0x80],
            "0",
            "0",
            &[numbers[0], numbers[2]],
            5,
        )
        .await
        .expect("create a message")
        .expect("a message id");
    for number in [numbers[0], numbers[2]] {
        let (row, message) = database
            .sector_with_message(2000, number, false)
            .await
            .expect("read")
            .expect("a row");
        assert_eq!(row.pre_message, Some(created));
        assert!(!row.pre_need_send);
        assert_eq!(message.expect("its message").msg_uuid, "uuid-2");
    }
    let message = database
        .message(created)
        .await
        .expect("read")
        .expect("a message");
    assert_eq!(message.sectors, vec![numbers[0], numbers[2]]);
}

async fn a_sector_ends_once(database: &Database) {
    let number = database
        .allocate_sector(3000, 5, 0, None, Box::new(|_| false), 1)
        .await
        .expect("allocate")
        .expect("a number");
    assert!(
        database
            .end_sector(3000, number, Phase::Finalized, None, 2)
            .await
            .expect("end")
    );
    assert!(
        !database
            .end_sector(3000, number, Phase::Aborted, Some("late"), 3)
            .await
            .expect("end again")
    );
    let row = database
        .sector(3000, number)
        .await
        .expect("read")
        .expect("a row");
    assert_eq!(row.phase, Phase::Finalized);
    assert!(
        !database
            .submit_pre_commit(3000, number, &pre_commit(4))
            .await
            .expect("submit")
    );
    assert!(
        database
            .restore_sector(3000, number, 5)
            .await
            .expect("restore")
    );
    assert!(
        !database
            .restore_sector(3000, number, 6)
            .await
            .expect("restore again")
    );
    assert_eq!(
        database
            .sector(3000, number)
            .await
            .expect("read")
            .expect("a row")
            .phase,
        Phase::Sealing
    );
}

async fn every_rule(url: &str) {
    let (_home, database) = open(url).await;
    allocation_respects_bounds_and_the_chain(&database).await;
    a_message_for_a_changed_sector_leaves_nothing_behind(&database).await;
    a_sector_ends_once(&database).await;
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_rules_hold_on_sqlite() {
    every_rule("sqlite://manager.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_rules_hold_on_postgres() {
    let server = support::postgres::server();
    every_rule(&server.fresh_database()).await;
}
