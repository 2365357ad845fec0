//! Snapshot tests of every plan's full transition table, so any change shows in review.
//!
//! Run with `UPDATE_EXPECT=1` to accept an intended change; the diff of the snapshot
//! files is then part of the commit.

use expect_test::expect_file;
use sector_fsm::{Plan, table};

#[test]
fn sealer_table() {
    expect_file!["snapshots/sealer.txt"].assert_eq(&table::render(Plan::Sealer));
}

#[test]
fn snapup_table() {
    expect_file!["snapshots/snapup.txt"].assert_eq(&table::render(Plan::SnapUp));
}

#[test]
fn rebuild_table() {
    expect_file!["snapshots/rebuild.txt"].assert_eq(&table::render(Plan::Rebuild));
}

#[test]
fn unseal_table() {
    expect_file!["snapshots/unseal.txt"].assert_eq(&table::render(Plan::Unseal));
}

#[test]
fn wdpost_table() {
    expect_file!["snapshots/wdpost.txt"].assert_eq(&table::render(Plan::WindowPost));
}

#[test]
fn every_plan_reaches_finished_and_aborted_from_every_state() {
    for plan in Plan::ALL.iter().copied() {
        for state in table::states(plan) {
            if state.is_terminal() {
                continue;
            }
            let reachable = table::reachable_from(plan, state);
            assert!(
                reachable.contains(&sector_fsm::State::Finished),
                "{plan}: Finished unreachable from {state}"
            );
            assert!(
                reachable.contains(&sector_fsm::State::Aborted),
                "{plan}: Aborted unreachable from {state}"
            );
        }
    }
}
