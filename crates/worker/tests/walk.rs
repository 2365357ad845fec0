//! Snapshots of a sector walked through each plan: the order of actions, events and states.

use expect_test::expect_file;
use sector_fsm::Plan;
use worker::walk::walk;

fn walked(plan: Plan) -> String {
    match walk(plan) {
        Ok(transcript) => transcript,
        Err(error) => panic!("walking {plan} failed: {error}"),
    }
}

#[test]
fn sealer_walk() {
    expect_file!["snapshots/walk-sealer.txt"].assert_eq(&walked(Plan::Sealer));
}

#[test]
fn snapup_walk() {
    expect_file!["snapshots/walk-snapup.txt"].assert_eq(&walked(Plan::SnapUp));
}

#[test]
fn rebuild_walk() {
    expect_file!["snapshots/walk-rebuild.txt"].assert_eq(&walked(Plan::Rebuild));
}

#[test]
fn unseal_walk() {
    expect_file!["snapshots/walk-unseal.txt"].assert_eq(&walked(Plan::Unseal));
}

#[test]
fn wdpost_walk() {
    expect_file!["snapshots/walk-wdpost.txt"].assert_eq(&walked(Plan::WindowPost));
}
