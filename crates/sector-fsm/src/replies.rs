//! How the manager's answers map to events, as pure functions the driver calls.
//!
//! The reference scattered these rules through its handlers; here they are one table per
//! answer type, so the worker and its tests agree on what, say, `FilesMissed` means.

use std::time::Duration;

use crate::event::{Event, WaitReason};
use crate::failure::{Failure, FailureLevel};

/// The manager's verdict on a submission (`SubmitResult` on the wire: 1 to 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitResult {
    /// Taken.
    Accepted,
    /// The same content was submitted before: as good as accepted.
    DuplicateSubmit,
    /// Different content was submitted before for this sector.
    MismatchedSubmission,
    /// The manager will never take it.
    Rejected,
    /// The manager cannot see the sector's files where the worker said they are.
    FilesMissed,
}

/// Where a submitted message stands on chain (`OnChainState` on the wire: 1 to 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChainState {
    /// Waiting to be sent.
    Pending,
    /// Sent, waiting to land.
    Packed,
    /// Landed successfully.
    Landed,
    /// The manager does not know the message.
    NotFound,
    /// Landed with a failure that a resubmission may fix.
    Failed,
    /// Failed for good.
    PermFailed,
    /// The sector cannot succeed any more.
    ShouldAbort,
}

/// The event for the manager's answer to a submission; `accepted` is the plan event that
/// follows an accepted submission (`SubmitPC`, `SubmitProof`, `Finish`).
pub fn submission_event(
    result: SubmitResult,
    description: Option<&str>,
    accepted: Event,
    files_missed: Option<Event>,
) -> Event {
    let described = |what: &str| match description {
        Some(description) if !description.is_empty() => format!("{what}: {description}"),
        _ => what.to_owned(),
    };
    match result {
        SubmitResult::Accepted | SubmitResult::DuplicateSubmit => accepted,
        SubmitResult::MismatchedSubmission => Event::Failed(Failure::new(
            FailureLevel::Permanent,
            described("the manager holds a different submission for this sector"),
        )),
        SubmitResult::Rejected => Event::Abort(described("the manager rejected the submission")),
        SubmitResult::FilesMissed => files_missed.unwrap_or_else(|| {
            Event::Failed(Failure::new(
                FailureLevel::Permanent,
                described("the manager cannot find the sector's persisted files"),
            ))
        }),
    }
}

/// The event for a poll of a submitted message's state; `landed` and `resubmit` are the
/// plan's events for those outcomes.
pub fn chain_state_event(
    state: OnChainState,
    description: Option<&str>,
    landed: Event,
    resubmit: Event,
    poll_interval: Duration,
) -> Event {
    let described = |what: &str| match description {
        Some(description) if !description.is_empty() => format!("{what}: {description}"),
        _ => what.to_owned(),
    };
    match state {
        OnChainState::Pending | OnChainState::Packed => Event::Wait {
            reason: WaitReason::ChainPending,
            retry_after: poll_interval,
        },
        OnChainState::Landed => landed,
        OnChainState::Failed => resubmit,
        OnChainState::NotFound => Event::Failed(Failure::new(
            FailureLevel::Permanent,
            described("the manager does not know the submitted message"),
        )),
        OnChainState::PermFailed => Event::Failed(Failure::new(
            FailureLevel::Permanent,
            described("the message failed on chain for good"),
        )),
        OnChainState::ShouldAbort => Event::Abort(described("the manager says to abort")),
    }
}
