//! Failure levels and the retry policy, as pure functions of the attempt count and time.
//!
//! The reference kept one retry counter per sector for its whole life, so a sector that
//! hit a few flaky RPCs early could be paused by a single hiccup hours later. Here the
//! counter counts consecutive temporary failures and the machine resets it whenever the
//! sector makes progress; backoff doubles per attempt up to a cap.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::time::Timestamp;

/// How bad a failure is, which decides what the machine does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub enum FailureLevel {
    /// Likely to pass on its own (a network error, a busy manager): retry after a backoff,
    /// a bounded number of times.
    Temporary,
    /// Will not pass without an operator (a processor crashed, a file is missing): pause
    /// the thread and keep the sector for inspection.
    Permanent,
    /// A local invariant broke (a record could not be written): pause, like permanent.
    Critical,
    /// The sector cannot succeed (the manager rejected it): drop it and take new work.
    Abort,
}

impl FailureLevel {
    /// The level's name as `ReportState` sends it.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureLevel::Temporary => "Temporary",
            FailureLevel::Permanent => "Permanent",
            FailureLevel::Critical => "Critical",
            FailureLevel::Abort => "Abort",
        }
    }
}

/// A failed step: its level and a description for the operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct Failure {
    /// How bad it is.
    pub level: FailureLevel,
    /// What went wrong, for logs, `ReportState` and the admin page.
    pub message: String,
}

impl Failure {
    /// A failure of the given level.
    pub fn new(level: FailureLevel, message: impl Into<String>) -> Self {
        Failure {
            level,
            message: message.into(),
        }
    }
}

/// The knobs of the retry policy; the driver builds it from the worker's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Consecutive temporary failures tolerated before escalating (`max_retries`).
    pub max_retries: u32,
    /// The wait after the first temporary failure (`recover_interval`).
    pub first_backoff: Duration,
    /// The longest wait between two attempts, however many failed.
    pub max_backoff: Duration,
    /// The wait before resubmitting a message that failed on chain.
    pub resubmit_delay: Duration,
}

impl Default for RetryPolicy {
    /// The reference's defaults: five retries, sixty seconds after the first failure,
    /// thirty seconds before a resubmission; backoff is capped at ten minutes.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            first_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(600),
            resubmit_delay: Duration::from_secs(30),
        }
    }
}

/// What to do about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureDecision {
    /// Run the same step again once `not_before` has passed; this is retry number `attempt`.
    RetryAt {
        /// The count of consecutive temporary failures including this one.
        attempt: u32,
        /// The earliest time to run the step again.
        not_before: Timestamp,
    },
    /// Pause the thread until an operator resumes it.
    Pause,
    /// Drop the sector.
    Abort,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): `first_backoff` doubled per
    /// attempt after the first, never more than `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.first_backoff
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff)
    }

    /// Decides what a failure of `level` means for a sector of `plan` that has already
    /// failed temporarily `attempts_so_far` times in a row.
    ///
    /// Temporary failures retry until the budget is spent; then sealing plans pause (an
    /// operator should look) while a window-PoSt job aborts, because the manager hands the
    /// job to another prover and a paused thread would only delay the deadline.
    pub fn decide(
        &self,
        plan: Plan,
        attempts_so_far: u32,
        level: FailureLevel,
        now: Timestamp,
    ) -> FailureDecision {
        match level {
            FailureLevel::Temporary if attempts_so_far < self.max_retries => {
                let attempt = attempts_so_far + 1;
                FailureDecision::RetryAt {
                    attempt,
                    not_before: now.saturating_add(self.backoff(attempt)),
                }
            }
            FailureLevel::Temporary => match plan {
                Plan::WindowPost => FailureDecision::Abort,
                Plan::Sealer | Plan::SnapUp | Plan::Rebuild | Plan::Unseal => {
                    FailureDecision::Pause
                }
            },
            FailureLevel::Permanent | FailureLevel::Critical => FailureDecision::Pause,
            FailureLevel::Abort => FailureDecision::Abort,
        }
    }
}
