//! The manager killed with SIGKILL at random points of a 50-sector run and restarted:
//! every sector lands exactly once, and no sector is carried by two precommit or two
//! prove-commit messages on chain.
//!
//! The manager runs as its own process (`sector-manager daemon run`) against an
//! in-process devnet with fake proofs that makes a block every 100 ms. Fifty simulated
//! workers drive one sector each, retrying every call as a damocles worker does while
//! the manager is down. The kills come at pseudo-random intervals from a fixed seed, so
//! they land in every phase: allocation, precommit batching and pushing, seeds, proofs,
//! finalization.

mod support;

use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use support::RetryingClient;

const SECTORS: usize = 50;

/// The manager as its own process; besides the external kills, it aborts itself in the
/// two windows that matter most: after recording a message and after the node took it.
fn spawn_manager(home: &std::path::Path) -> support::ManagerProcess {
    support::spawn_manager_process(
        home,
        "info",
        &[(
            manager::outbox::CRASH_POINTS_ENVIRONMENT,
            "after_create:0.3,after_push:0.5",
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_manager_at_random_points_loses_no_sector_and_sends_none_twice() {
    let devnet = support::fake_devnet(Duration::from_millis(250)).await;
    let (home, persist) = support::home_with_store();
    let address =
        support::write_process_config(home.path(), &devnet, "sqlite://manager.db", &persist, 2);
    let mut manager = spawn_manager(home.path());
    let started = Instant::now();
    let token = support::admin_token_of(home.path()).await;
    let client = RetryingClient::new(address, token);

    let workers: Vec<_> = (0..SECTORS)
        .map(|index| {
            let client = client.clone();
            let persist = persist.clone();
            tokio::spawn(async move {
                // Workers start apart, as real ones do, so the sectors travel in many
                // small batches and the crash points are crossed many times.
                tokio::time::sleep(Duration::from_millis(100) * u32::try_from(index).unwrap_or(0))
                    .await;
                support::seal_one_sector(&client, &persist, Duration::from_millis(150)).await
            })
        })
        .collect();

    // Kill and restart the manager at random points until every worker is done.
    let mut random = rand::rngs::StdRng::seed_from_u64(0x5ea1_c1a5);
    let mut kills = 0;
    let mut aborts = 0;
    while !workers.iter().all(tokio::task::JoinHandle::is_finished) {
        if let Ok(Some(_)) = manager.try_wait() {
            // It aborted itself at a crash point.
            aborts += 1;
            manager = spawn_manager(home.path());
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the run did not finish in 5 minutes; see manager.log"
        );
        tokio::time::sleep(Duration::from_millis(random.gen_range(100..600))).await;
        if let Ok(Some(_)) = manager.try_wait() {
            aborts += 1;
            manager = spawn_manager(home.path());
            continue;
        }
        if workers.iter().all(tokio::task::JoinHandle::is_finished) {
            break;
        }
        manager.kill().expect("SIGKILL the manager");
        manager.wait().expect("reap it");
        kills += 1;
        tokio::time::sleep(Duration::from_millis(random.gen_range(0..300))).await;
        manager = spawn_manager(home.path());
    }
    let mut numbers = Vec::new();
    for worker in workers {
        numbers.push(worker.await.expect("a simulated worker"));
    }
    numbers.sort_unstable();
    let elapsed = started.elapsed();

    // Every sector landed once: active on chain, one precommit and one prove-commit.
    let counts = support::sector_message_counts(&devnet);
    for number in &numbers {
        assert_eq!(
            counts.get(number),
            Some(&(1, 1)),
            "sector {number}: (precommits, prove-commits) on chain"
        );
    }
    for (number, (precommits, proves)) in &counts {
        assert!(
            *precommits <= 1 && *proves <= 1,
            "sector {number} was sent twice: {precommits} precommits, {proves} prove-commits"
        );
    }
    let harness_chain = chain_client::LotusClient::new(
        chain_client::transport::HttpTransport::new(
            chain_client::Endpoint::parse(&devnet.connection_string(Some(&devnet.admin_token)))
                .expect("an endpoint"),
            Duration::from_secs(10),
        )
        .expect("a transport"),
    );
    for number in &numbers {
        assert!(
            harness_chain
                .state_sector_get_info(
                    &fvm_shared::address::Address::new_id(1000),
                    *number,
                    &chain_client::types::TipSetKey::head()
                )
                .await
                .expect("read the sector")
                .is_some(),
            "sector {number} is active"
        );
    }
    let distinct: std::collections::BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        SECTORS,
        "every worker sealed its own sector"
    );
    manager.kill().expect("stop the manager");
    manager.wait().expect("reap it");
    let orphans = counts.len() - numbers.len();
    tracing_report(kills, aborts, elapsed, orphans, &numbers);
    assert!(
        aborts >= 3,
        "the manager aborted at crash points only {aborts} times"
    );
    assert!(kills >= 5, "the manager was killed only {kills} times");
}

#[allow(clippy::print_stdout, reason = "the test reports what it measured")]
fn tracing_report(kills: usize, aborts: usize, elapsed: Duration, orphans: usize, numbers: &[u64]) {
    println!(
        "{SECTORS} sectors landed once each in {elapsed:?} with {kills} SIGKILLs of the manager and {aborts} aborts at crash points; \
         {orphans} sectors on chain beyond the workers' (expected 0); numbers {}..={}",
        numbers.first().copied().unwrap_or(0),
        numbers.last().copied().unwrap_or(0)
    );
}
