//! Landing checks: what the chain shows for every sector of an executed message, read
//! once per message in the background, so that a worker's poll, its seed request and its
//! proof submission answer from memory instead of each waiting on the chain node.
//!
//! A check belongs to the message and to the tipset that executed it: when a
//! reorganisation executes the message in another tipset, the old check no longer
//! matches and a new one is made. Only the checks of the latest [`MESSAGES_KEPT`]
//! messages are kept; a caller finding none falls back to asking the chain itself.
//!
//! This module only keeps the bookkeeping (who runs a check, what it found); the
//! manager runs the reads ([`crate::sealer::Manager::request_landing_check`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chain_client::types::SectorPreCommitOnChainInfo;

/// How many messages' checks are kept. A check is needed from the moment its message
/// reaches confidence until the workers of its sectors have polled and asked for their
/// seeds, which is at most a few hundred messages on a busy cluster.
pub(crate) const MESSAGES_KEPT: usize = 4096;

/// What the chain showed for one sector of a message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SectorLanding {
    /// Whether the message did what it was sent for: the precommit (or the sector
    /// itself, already proven) is on chain for a precommit message, the sector is active
    /// for a proof message.
    pub(crate) landed: bool,
    /// The precommit the chain holds for the sector (precommit messages only; none once
    /// the sector is proven).
    pub(crate) pre_commit: Option<SectorPreCommitOnChainInfo>,
}

/// The outcome of one message's check.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct LandingCheck {
    /// The height of the head the chain was read at.
    pub(crate) read_at_height: i64,
    /// Each sector the message carries.
    pub(crate) sectors: HashMap<u64, SectorLanding>,
}

/// What a caller asking about a message's check is to do.
#[derive(Debug, PartialEq)]
pub(crate) enum LandingLookup {
    /// The check is done.
    Checked(Arc<LandingCheck>),
    /// Another caller is running it; ask again later.
    Running,
    /// Nobody is running it: this caller must, and must report with
    /// [`LandingChecks::finish`] (it is marked running now).
    RunIt,
}

/// The identity of a check: the message's id and the tipset that executed it (as the
/// outbox stores it).
type CheckKey = (i64, String);

enum Progress {
    Running,
    Checked(Arc<LandingCheck>),
}

#[derive(Default)]
struct Checks {
    by_key: HashMap<CheckKey, Progress>,
    /// Keys oldest first, for forgetting the oldest.
    order: VecDeque<CheckKey>,
}

/// The checks of the latest messages.
#[derive(Default)]
pub(crate) struct LandingChecks {
    checks: Mutex<Checks>,
}

impl LandingChecks {
    /// The check of message `id` executed in `tipset`: done, running, or for this caller
    /// to run. A caller told [`LandingLookup::RunIt`] must call [`Self::finish`].
    pub(crate) fn lookup_or_claim(&self, id: i64, tipset: &str) -> LandingLookup {
        let Ok(mut checks) = self.checks.lock() else {
            // A poisoned lock: nobody can record a check, so nobody is told to run one;
            // callers fall back to their own reads.
            return LandingLookup::Running;
        };
        let key = (id, tipset.to_owned());
        match checks.by_key.get(&key) {
            Some(Progress::Checked(check)) => return LandingLookup::Checked(Arc::clone(check)),
            Some(Progress::Running) => return LandingLookup::Running,
            None => {}
        }
        // A message executed again elsewhere: its earlier check says nothing any more.
        checks.by_key.retain(|(other, _), _| *other != id);
        checks.order.retain(|(other, _)| *other != id);
        if checks.order.len() >= MESSAGES_KEPT
            && let Some(oldest) = checks.order.pop_front()
        {
            checks.by_key.remove(&oldest);
        }
        checks.by_key.insert(key.clone(), Progress::Running);
        checks.order.push_back(key);
        LandingLookup::RunIt
    }

    /// The finished check of message `id` executed in `tipset`, if there is one.
    pub(crate) fn checked(&self, id: i64, tipset: &str) -> Option<Arc<LandingCheck>> {
        let checks = self.checks.lock().ok()?;
        match checks.by_key.get(&(id, tipset.to_owned()))? {
            Progress::Checked(check) => Some(Arc::clone(check)),
            Progress::Running => None,
        }
    }

    /// Records the outcome of a check this caller was told to run: the check, or `None`
    /// when the reads failed, which lets the next caller run it again.
    pub(crate) fn finish(&self, id: i64, tipset: &str, outcome: Option<LandingCheck>) {
        let Ok(mut checks) = self.checks.lock() else {
            return;
        };
        let key = (id, tipset.to_owned());
        // A check superseded while it ran (the message executed elsewhere, or forgotten
        // as too old) is dropped.
        let Some(progress) = checks.by_key.get_mut(&key) else {
            return;
        };
        match outcome {
            Some(check) => *progress = Progress::Checked(Arc::new(check)),
            None => {
                checks.by_key.remove(&key);
                checks.order.retain(|kept| *kept != key);
            }
        }
    }

    /// How many checks are kept, running or done (for tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.checks.lock().map_or(0, |checks| checks.by_key.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn landed(numbers: &[u64]) -> LandingCheck {
        LandingCheck {
            read_at_height: 10,
            sectors: numbers
                .iter()
                .map(|number| {
                    (
                        *number,
                        SectorLanding {
                            landed: true,
                            pre_commit: None,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn one_caller_runs_a_check_and_the_others_wait_for_its_outcome() {
        let checks = LandingChecks::default();
        assert_eq!(checks.lookup_or_claim(1, "a"), LandingLookup::RunIt);
        assert_eq!(checks.lookup_or_claim(1, "a"), LandingLookup::Running);
        assert_eq!(checks.checked(1, "a"), None);
        checks.finish(1, "a", Some(landed(&[5, 6])));
        let LandingLookup::Checked(check) = checks.lookup_or_claim(1, "a") else {
            panic!("the finished check to be found");
        };
        assert!(check.sectors[&5].landed);
        assert_eq!(checks.checked(1, "a").as_deref(), Some(&landed(&[5, 6])));
    }

    #[test]
    fn a_failed_check_is_run_again_by_the_next_caller() {
        let checks = LandingChecks::default();
        assert_eq!(checks.lookup_or_claim(1, "a"), LandingLookup::RunIt);
        checks.finish(1, "a", None);
        assert_eq!(checks.lookup_or_claim(1, "a"), LandingLookup::RunIt);
        assert_eq!(checks.kept(), 1);
    }

    #[test]
    fn a_message_executed_in_another_tipset_is_checked_again() {
        let checks = LandingChecks::default();
        assert_eq!(checks.lookup_or_claim(1, "a"), LandingLookup::RunIt);
        checks.finish(1, "a", Some(landed(&[5])));
        // A reorganisation: the message now executed in tipset b.
        assert_eq!(checks.lookup_or_claim(1, "b"), LandingLookup::RunIt);
        assert_eq!(checks.checked(1, "a"), None, "the old check is forgotten");
        // The old check finishing late is not recorded either.
        checks.finish(1, "a", Some(landed(&[5])));
        assert_eq!(checks.checked(1, "a"), None);
        assert_eq!(checks.kept(), 1);
    }

    proptest! {
        /// However messages are asked about, at most [`MESSAGES_KEPT`] checks are kept
        /// and a claimed check is claimed by nobody else until it fails.
        #[test]
        fn checks_stay_bounded_and_each_is_run_by_one_caller(
            asks in prop::collection::vec((0i64..6000, any::<bool>()), 1..8000)
        ) {
            let checks = LandingChecks::default();
            let mut running = std::collections::HashSet::new();
            for (id, succeed) in asks {
                match checks.lookup_or_claim(id, "t") {
                    LandingLookup::RunIt => {
                        running.insert(id);
                        checks.finish(id, "t", succeed.then(|| landed(&[1])));
                        running.remove(&id);
                    }
                    LandingLookup::Running => prop_assert!(running.contains(&id)),
                    LandingLookup::Checked(_) => {}
                }
                prop_assert!(checks.kept() <= MESSAGES_KEPT);
            }
        }
    }
}
