//! Tests of the individual rules: retry policy, operator jumps, names, replies and the
//! fuzz replayer (run here on random bytes so the fuzz target's logic never rots).

use std::time::Duration;

use arbitrary::Unstructured;
use proptest::prelude::*;
use sector_fsm::replies::{OnChainState, SubmitResult, chain_state_event, submission_event};
use sector_fsm::testing::{FuzzRun, replay, test_policy};
use sector_fsm::types::{AllocatedSector, SealProofType, SectorId};
use sector_fsm::{
    Event, EventKind, Failure, FailureDecision, FailureLevel, JumpError, Plan, Rejection,
    RetryPolicy, Sector, State, Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

fn allocated() -> AllocatedSector {
    AllocatedSector {
        id: SectorId {
            miner: 1000,
            number: 7,
        },
        proof_type: SealProofType(5),
    }
}

/// A sealer sector driven to `PC1Done`, then paused by an operator.
fn paused_sealer_after_pc1() -> Sector {
    let policy = test_policy();
    let mut sector = Sector::new(Plan::Sealer);
    let ticket = sector_fsm::types::Ticket {
        randomness: sector_fsm::types::Bytes32([1; 32]),
        epoch: 10,
    };
    for event in [
        Event::Allocate(allocated()),
        Event::AcquireDeals(Vec::new()),
        Event::AddPiece(Vec::new()),
        Event::BuildTreeD,
        Event::AssignTicket,
        Event::Pc1 {
            ticket,
            output: sector_fsm::types::OpaqueOutput(serde_json::json!({"labels": 1})),
        },
        Event::Pause,
    ] {
        sector
            .handle(event, NOW, &policy)
            .expect("the happy path is accepted");
    }
    assert_eq!(sector.state(), State::Pc1Done);
    sector
}

proptest! {
    #[test]
    fn backoff_grows_with_attempts_and_is_capped(
        first_seconds in 1u64..600,
        cap_seconds in 1u64..100_000,
        attempt in 1u32..200,
    ) {
        let policy = RetryPolicy {
            max_retries: 1000,
            first_backoff: Duration::from_secs(first_seconds),
            max_backoff: Duration::from_secs(cap_seconds),
            resubmit_delay: Duration::from_secs(30),
        };
        let this = policy.backoff(attempt);
        let next = policy.backoff(attempt + 1);
        prop_assert!(this <= policy.max_backoff);
        prop_assert!(next >= this, "backoff shrank from {this:?} to {next:?}");
        prop_assert!(next == policy.max_backoff || next == this * 2, "{this:?} then {next:?}");
        prop_assert_eq!(policy.backoff(1), policy.first_backoff.min(policy.max_backoff));
    }

    #[test]
    fn temporary_failures_retry_until_the_budget_then_escalate(
        attempts_so_far in 0u32..20,
        plan_index in 0usize..5,
    ) {
        let plan = Plan::ALL[plan_index];
        let policy = RetryPolicy { max_retries: 5, ..RetryPolicy::default() };
        let decision = policy.decide(plan, attempts_so_far, FailureLevel::Temporary, NOW);
        if attempts_so_far < 5 {
            prop_assert_eq!(decision, FailureDecision::RetryAt {
                attempt: attempts_so_far + 1,
                not_before: NOW.saturating_add(policy.backoff(attempts_so_far + 1)),
            });
        } else if plan == Plan::WindowPost {
            prop_assert_eq!(decision, FailureDecision::Abort);
        } else {
            prop_assert_eq!(decision, FailureDecision::Pause);
        }
    }

    #[test]
    fn fuzz_replay_finds_no_violation_in_random_runs(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut input = Unstructured::new(&bytes);
        if let Ok(run) = input.arbitrary::<FuzzRun>()
            && let Err(violation) = replay(&run)
        {
            prop_assert!(false, "{violation}");
        }
    }
}

#[test]
fn progress_resets_the_temporary_failure_counter() {
    let policy = test_policy();
    let mut sector = Sector::new(Plan::Sealer);
    let flaky = || Event::Failed(Failure::new(FailureLevel::Temporary, "manager unreachable"));
    sector
        .handle(flaky(), NOW, &policy)
        .expect("a failure is accepted");
    sector
        .handle(flaky(), NOW, &policy)
        .expect("a failure is accepted");
    assert_eq!(sector.record().retry.consecutive_temporary_failures, 2);
    sector
        .handle(Event::Allocate(allocated()), NOW, &policy)
        .expect("allocation is accepted");
    assert_eq!(sector.record().retry.consecutive_temporary_failures, 0);
    assert_eq!(sector.record().retry.not_before, None);
}

#[test]
fn a_backoff_makes_the_driver_wait_then_retry_the_same_step() {
    let policy = test_policy();
    let mut sector = Sector::new(Plan::Sealer);
    let step = sector
        .handle(
            Event::Failed(Failure::new(FailureLevel::Temporary, "timeout")),
            NOW,
            &policy,
        )
        .expect("a failure is accepted");
    let not_before = NOW.saturating_add(policy.first_backoff);
    assert_eq!(
        step.outcome,
        sector_fsm::Outcome::RetryScheduled {
            attempt: 1,
            not_before
        }
    );
    assert_eq!(
        sector.next_action(NOW),
        Ok(sector_fsm::Action::WaitUntil(not_before))
    );
    assert_eq!(
        sector.next_action(not_before),
        Ok(sector_fsm::Action::Call(
            sector_fsm::ManagerCall::AllocateSector
        ))
    );
}

#[test]
fn an_output_that_arrives_before_a_pause_is_kept() {
    // The reference lost a finished PC1 when the thread paused before applying it.
    let sector = paused_sealer_after_pc1();
    assert!(sector.is_paused());
    assert!(
        sector.data().pc1_output.is_some(),
        "PC1's output survives the pause"
    );
    let restored = sector_fsm::SectorRecord::decode(&sector.record().encode()).expect("decodes");
    assert_eq!(restored.data.pc1_output, sector.data().pc1_output);
}

#[test]
fn resume_to_an_unknown_state_name_says_which_names_exist() {
    let error = "PC3Done".parse::<State>().expect_err("no such state");
    let message = error.to_string();
    assert!(
        message.starts_with("unknown state \"PC3Done\"; the states are: Empty, Allocated"),
        "{message}"
    );
    assert!(message.contains("PC1Done"), "{message}");
}

#[test]
fn resume_to_the_current_state_is_refused_with_advice() {
    let mut sector = paused_sealer_after_pc1();
    let before = sector.clone();
    let rejection = sector
        .handle(Event::Resume(Some(State::Pc1Done)), NOW, &test_policy())
        .expect_err("same state");
    assert_eq!(
        rejection,
        Rejection::Jump(JumpError::SameAsCurrent {
            state: State::Pc1Done
        })
    );
    assert!(rejection.to_string().contains("resume without a state"));
    assert_eq!(sector, before);
}

#[test]
fn jumps_are_validated_against_the_plan_and_the_path() {
    let sector = paused_sealer_after_pc1();
    assert!(matches!(
        sector.check_jump(State::SnapEncoded),
        Err(JumpError::NotInPlan {
            plan: Plan::Sealer,
            ..
        })
    ));
    let forward = sector
        .check_jump(State::C1Done)
        .expect_err("cannot skip ahead");
    assert!(matches!(
        forward,
        JumpError::NotOnPath {
            state: State::C1Done,
            ..
        }
    ));
    assert!(
        forward
            .to_string()
            .contains("Empty, Allocated, DealsAcquired, PieceAdded"),
        "{forward}"
    );
    assert_eq!(
        sector.check_jump(State::Finished),
        Err(JumpError::CannotJumpToFinished)
    );
    assert_eq!(
        sector.check_jump(State::Empty),
        Err(JumpError::WouldForgetAllocation)
    );
    assert_eq!(sector.check_jump(State::Aborted), Ok(()));
    assert_eq!(sector.check_jump(State::TreeDBuilt), Ok(()));
}

#[test]
fn jumping_back_to_tree_d_built_draws_a_fresh_ticket() {
    // The documented fix for an expired ticket: resume --state TreeDBuilt.
    let policy = test_policy();
    let mut sector = paused_sealer_after_pc1();
    let step = sector
        .handle(Event::Resume(Some(State::TreeDBuilt)), NOW, &policy)
        .expect("valid jump");
    assert_eq!(
        (step.from, step.to, step.event),
        (State::Pc1Done, State::TreeDBuilt, EventKind::Resume)
    );
    assert_eq!(sector.record().path.last(), Some(&State::TreeDBuilt));
    assert!(
        !sector.record().path.contains(&State::Pc1Done),
        "the path is cut at the jump"
    );
    let action = sector.next_action(NOW).expect("an action");
    assert_eq!(action, sector_fsm::Action::Advance(Event::AssignTicket));
    sector
        .handle(Event::AssignTicket, NOW, &policy)
        .expect("advance");
    match sector.next_action(NOW).expect("an action") {
        sector_fsm::Action::Run(sector_fsm::StageTask::Pc1 { ticket, .. }) => {
            assert_eq!(ticket, None)
        }
        other => panic!("expected PC1 with a fresh ticket, got {other:?}"),
    }
}

#[test]
fn resume_needs_a_pause_and_pause_is_not_repeated() {
    let policy = test_policy();
    let mut sector = Sector::new(Plan::Sealer);
    assert_eq!(
        sector.handle(Event::Resume(None), NOW, &policy),
        Err(Rejection::NotPaused)
    );
    sector.handle(Event::Pause, NOW, &policy).expect("pause");
    assert_eq!(
        sector.handle(Event::Pause, NOW, &policy),
        Err(Rejection::AlreadyPaused)
    );
    assert!(matches!(
        sector.handle(Event::Allocate(allocated()), NOW, &policy),
        Err(Rejection::Paused {
            state: State::Empty,
            event: EventKind::Allocate
        })
    ));
}

#[test]
fn an_unexpected_event_names_what_was_expected() {
    let mut sector = Sector::new(Plan::Sealer);
    let rejection = sector
        .handle(Event::BuildTreeD, NOW, &test_policy())
        .expect_err("not now");
    assert_eq!(
        rejection.to_string(),
        "a sealer sector in Empty does not expect BuildTreeD; it expects: Allocate"
    );
}

#[test]
fn a_rebuild_that_was_never_upgraded_cannot_take_the_upgrade_branch() {
    let policy = test_policy();
    let mut sector = Sector::new(Plan::Rebuild);
    let ticket = sector_fsm::types::Ticket {
        randomness: sector_fsm::types::Bytes32([2; 32]),
        epoch: 5,
    };
    for event in [
        Event::AllocatedRebuildSector(sector_fsm::types::RebuildAllocation {
            sector: allocated(),
            ticket,
            deals: Vec::new(),
            upgraded_from_comm_r: None,
        }),
        Event::AddPiece(Vec::new()),
        Event::BuildTreeD,
        Event::Pc1 {
            ticket,
            output: sector_fsm::types::OpaqueOutput(serde_json::Value::Null),
        },
        Event::Pc2(sector_fsm::types::PreCommitOutput {
            comm_r: sector_fsm::types::Bytes32([3; 32]),
            comm_d: sector_fsm::types::Bytes32([4; 32]),
        }),
        Event::CheckSealed,
    ] {
        sector
            .handle(event, NOW, &policy)
            .expect("the happy path is accepted");
    }
    assert_eq!(sector.state(), State::SealedChecked);
    assert!(
        sector
            .handle(Event::AddPiece(Vec::new()), NOW, &policy)
            .is_err()
    );
    sector
        .handle(Event::SkipSnap, NOW, &policy)
        .expect("skip the upgrade steps");
    assert_eq!(sector.state(), State::SnapDone);
}

#[test]
fn names_round_trip_through_text_and_serde() {
    for state in State::ALL {
        assert_eq!(state.as_str().parse::<State>(), Ok(*state));
        let json = serde_json::to_string(state).expect("serialises");
        assert_eq!(
            json,
            format!("\"{}\"", state.as_str()),
            "states are stored by name"
        );
        assert_eq!(
            serde_json::from_str::<State>(&json).expect("deserialises"),
            *state
        );
    }
    for kind in EventKind::ALL {
        assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
    }
    for plan in Plan::ALL {
        assert_eq!(plan.as_str().parse::<Plan>(), Ok(*plan));
    }
    assert!(
        serde_json::from_str::<State>("3").is_err(),
        "an index is not a state"
    );
}

#[test]
fn replies_map_to_the_reference_failure_levels() {
    let accepted = || Event::SubmitPreCommit;
    assert_eq!(
        submission_event(SubmitResult::Accepted, None, accepted(), None),
        Event::SubmitPreCommit
    );
    assert_eq!(
        submission_event(SubmitResult::DuplicateSubmit, None, accepted(), None),
        Event::SubmitPreCommit
    );
    assert!(matches!(
        submission_event(SubmitResult::MismatchedSubmission, Some("comm_r differs"), accepted(), None),
        Event::Failed(Failure { level: FailureLevel::Permanent, ref message }) if message.ends_with("comm_r differs")
    ));
    assert!(matches!(
        submission_event(SubmitResult::Rejected, None, accepted(), None),
        Event::Abort(_)
    ));
    assert!(matches!(
        submission_event(SubmitResult::FilesMissed, None, accepted(), None),
        Event::Failed(Failure {
            level: FailureLevel::Permanent,
            ..
        })
    ));
    assert_eq!(
        submission_event(
            SubmitResult::FilesMissed,
            None,
            Event::Finish,
            Some(Event::RePersist)
        ),
        Event::RePersist
    );

    let poll = |state| {
        chain_state_event(
            state,
            None,
            Event::CheckPreCommit,
            Event::ReSubmitPreCommit,
            Duration::from_secs(180),
        )
    };
    assert!(matches!(poll(OnChainState::Pending), Event::Wait { .. }));
    assert!(matches!(poll(OnChainState::Packed), Event::Wait { .. }));
    assert_eq!(poll(OnChainState::Landed), Event::CheckPreCommit);
    assert_eq!(poll(OnChainState::Failed), Event::ReSubmitPreCommit);
    assert!(matches!(
        poll(OnChainState::NotFound),
        Event::Failed(Failure {
            level: FailureLevel::Permanent,
            ..
        })
    ));
    assert!(matches!(
        poll(OnChainState::PermFailed),
        Event::Failed(Failure {
            level: FailureLevel::Permanent,
            ..
        })
    ));
    assert!(matches!(poll(OnChainState::ShouldAbort), Event::Abort(_)));
}

#[test]
fn a_resubmission_waits_before_it_runs_and_asks_the_manager_to_replace() {
    let policy = test_policy();
    let mut sector = paused_sealer_after_pc1();
    sector
        .handle(Event::Resume(None), NOW, &policy)
        .expect("resume");
    let pre_commit = sector_fsm::types::PreCommitOutput {
        comm_r: sector_fsm::types::Bytes32([5; 32]),
        comm_d: sector_fsm::types::Bytes32([6; 32]),
    };
    sector
        .handle(Event::Pc2(pre_commit), NOW, &policy)
        .expect("PC2");
    match sector.next_action(NOW).expect("an action") {
        sector_fsm::Action::Call(sector_fsm::ManagerCall::SubmitPreCommit { reset, .. }) => {
            assert!(!reset)
        }
        other => panic!("expected a first submission, got {other:?}"),
    }
    sector
        .handle(Event::SubmitPreCommit, NOW, &policy)
        .expect("submitted");
    sector
        .handle(Event::ReSubmitPreCommit, NOW, &policy)
        .expect("failed on chain");
    let later = NOW.saturating_add(policy.resubmit_delay);
    assert_eq!(
        sector.next_action(NOW),
        Ok(sector_fsm::Action::WaitUntil(later))
    );
    match sector.next_action(later).expect("an action") {
        sector_fsm::Action::Call(sector_fsm::ManagerCall::SubmitPreCommit { reset, .. }) => {
            assert!(reset)
        }
        other => panic!("expected a resubmission, got {other:?}"),
    }
}
