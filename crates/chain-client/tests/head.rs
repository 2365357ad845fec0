//! The head tracker against generated chain histories: advances (with null rounds),
//! reorganisations of random depth, lost notifications and resubscriptions, delivered as
//! Lotus delivers them (reverts from the top, then applies from the fork point).
//!
//! Properties: after every batch the tracker's head is the true head; replaying its
//! events on a copy of the chain it started from gives the true chain; a gap is reported
//! only when something really was missed (a lost batch, or a reorganisation as deep as
//! what the tracker remembers), never for an ordinary advance or a shallow reorganisation.

use chain_client::head::{ChainEvent, HeadTracker};
use chain_client::types::{BlockHeader, HeadChange, HeadChangeType, TipSet, TipSetKey};
use cid::Cid;
use fvm_shared::address::Address;
use multihash_codetable::{Code, MultihashDigest as _};
use proptest::prelude::*;

fn cid_of(label: &str) -> Cid {
    Cid::new_v1(0x71, Code::Blake2b256.digest(label.as_bytes()))
}

fn tipset(height: i64, parents: &TipSetKey, salt: u64) -> TipSet {
    let label = format!("{height}/{salt}/{parents}");
    let block = BlockHeader {
        miner: Address::new_id(1000),
        ticket: None,
        election_proof: None,
        beacon_entries: vec![],
        win_post_proof: vec![],
        parents: parents.0.clone(),
        parent_weight: 0.into(),
        height,
        parent_state_root: cid_of("state"),
        parent_message_receipts: cid_of("receipts"),
        messages: cid_of("messages"),
        bls_aggregate: None,
        timestamp: 0,
        block_sig: None,
        fork_signaling: 0,
        parent_base_fee: Default::default(),
    };
    TipSet {
        cids: vec![cid_of(&label)],
        blocks: vec![block],
        height,
    }
}

fn change(kind: HeadChangeType, tipset: &TipSet) -> HeadChange {
    HeadChange {
        change: kind,
        tipset: tipset.clone(),
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// New tipsets on top, each after `gap` null rounds.
    Advance { count: usize, null_rounds: i64 },
    /// Revert `depth` tipsets and apply `length` new ones.
    Reorg { depth: usize, length: usize },
    /// The next batch is lost, and the consumer resubscribes (a `current` batch).
    LoseAndResubscribe { count: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..4, 0i64..3).prop_map(|(count, null_rounds)| Step::Advance { count, null_rounds }),
        2 => (1usize..8, 1usize..8).prop_map(|(depth, length)| Step::Reorg { depth, length }),
        1 => (1usize..4).prop_map(|count| Step::LoseAndResubscribe { count }),
    ]
}

/// Replays events on a chain, as a consumer keeping its own view would.
fn replay(view: &mut Vec<TipSet>, events: &[ChainEvent]) {
    for event in events {
        match event {
            ChainEvent::Applied(tipset) => view.push(tipset.clone()),
            ChainEvent::Reverted(tipset) => {
                let top = view.pop();
                assert_eq!(top.as_ref(), Some(tipset), "a revert removes the top");
            }
            ChainEvent::Gap { head, .. } => {
                view.clear();
                view.extend(head.clone());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_tracker_follows_the_true_chain(steps in proptest::collection::vec(step(), 1..60), capacity in 2usize..12) {
        let genesis = tipset(0, &TipSetKey::head(), 0);
        let mut truth = vec![genesis.clone()];
        let mut tracker = HeadTracker::new(capacity);
        let first = tracker.observe(&[change(HeadChangeType::Current, &genesis)]);
        prop_assert!(first.is_empty());
        let mut view = vec![genesis.clone()];
        let mut salt = 1u64;
        for step in steps {
            let top = |truth: &Vec<TipSet>| truth.last().cloned().expect("a chain");
            let (batch, gap_allowed) = match step {
                Step::Advance { count, null_rounds } => {
                    let mut batch = Vec::new();
                    for _ in 0..count {
                        let parent = top(&truth);
                        let next = tipset(parent.height + 1 + null_rounds, &parent.key(), salt);
                        salt += 1;
                        batch.push(change(HeadChangeType::Apply, &next));
                        truth.push(next);
                    }
                    (batch, false)
                }
                Step::Reorg { depth, length } => {
                    let depth = depth.min(truth.len() - 1);
                    let mut batch = Vec::new();
                    for _ in 0..depth {
                        let reverted = truth.pop().expect("a tipset to revert");
                        batch.push(change(HeadChangeType::Revert, &reverted));
                    }
                    for _ in 0..length {
                        let parent = top(&truth);
                        let next = tipset(parent.height + 1, &parent.key(), salt);
                        salt += 1;
                        batch.push(change(HeadChangeType::Apply, &next));
                        truth.push(next);
                    }
                    // A reorganisation as deep as what the tracker remembers (at most
                    // its capacity, less after a gap) cannot be followed step by step.
                    (batch, depth >= tracker.chain().count())
                }
                Step::LoseAndResubscribe { count } => {
                    for _ in 0..count {
                        let parent = top(&truth);
                        let next = tipset(parent.height + 1, &parent.key(), salt);
                        salt += 1;
                        truth.push(next);
                    }
                    (vec![change(HeadChangeType::Current, &top(&truth))], true)
                }
            };
            let events = tracker.observe(&batch);
            let gaps = events.iter().filter(|event| matches!(event, ChainEvent::Gap { .. })).count();
            prop_assert!(gap_allowed || gaps == 0, "an unexpected gap: {:?}", events);
            replay(&mut view, &events);
            let true_head = top(&truth);
            prop_assert_eq!(tracker.head().map(TipSet::key), Some(true_head.key()));
            prop_assert_eq!(view.last().map(TipSet::key), Some(true_head.key()));
            // The consumer's view is a suffix of the true chain.
            let suffix = &truth[truth.len() - view.len().min(truth.len())..];
            prop_assert_eq!(view.iter().map(TipSet::key).collect::<Vec<_>>(), suffix.iter().map(TipSet::key).collect::<Vec<_>>());
        }
    }

    #[test]
    fn arbitrary_changes_never_panic_and_always_leave_a_known_or_empty_head(
        kinds in proptest::collection::vec((0u8..4, 0usize..6), 0..40)
    ) {
        // Tipsets from a small pool, so changes sometimes fit and often do not.
        let genesis = tipset(0, &TipSetKey::head(), 0);
        let mut pool = vec![genesis.clone()];
        for index in 1..6 {
            let parent = pool[(index - 1) / 2].clone();
            pool.push(tipset(parent.height + 1, &parent.key(), index as u64));
        }
        let mut tracker = HeadTracker::new(3);
        for (kind, index) in kinds {
            let kind = match kind {
                0 => HeadChangeType::Current,
                1 => HeadChangeType::Apply,
                2 => HeadChangeType::Revert,
                _ => HeadChangeType::Other("weird".to_owned()),
            };
            let events = tracker.observe(&[change(kind, &pool[index])]);
            prop_assert!(tracker.chain().count() <= 3);
            for event in &events {
                if let ChainEvent::Gap { reason, .. } = event {
                    prop_assert!(!reason.is_empty());
                }
            }
        }
    }
}

#[test]
fn a_reorganisation_is_reported_as_reverts_then_applies() {
    let genesis = tipset(0, &TipSetKey::head(), 0);
    let one = tipset(1, &genesis.key(), 1);
    let two = tipset(2, &one.key(), 2);
    let one_prime = tipset(1, &genesis.key(), 3);
    let two_prime = tipset(2, &one_prime.key(), 4);
    let mut tracker = HeadTracker::new(10);
    tracker.observe(&[change(HeadChangeType::Current, &genesis)]);
    tracker.observe(&[
        change(HeadChangeType::Apply, &one),
        change(HeadChangeType::Apply, &two),
    ]);
    let events = tracker.observe(&[
        change(HeadChangeType::Revert, &two),
        change(HeadChangeType::Revert, &one),
        change(HeadChangeType::Apply, &one_prime),
        change(HeadChangeType::Apply, &two_prime),
    ]);
    assert_eq!(
        events,
        vec![
            ChainEvent::Reverted(two),
            ChainEvent::Reverted(one),
            ChainEvent::Applied(one_prime),
            ChainEvent::Applied(two_prime.clone()),
        ]
    );
    assert_eq!(tracker.head(), Some(&two_prime));
}
