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

enum Progress {
    Running,
    Checked(Arc<LandingCheck>),
}

/// A message's check: the tipset that executed it (as the outbox stores it) and how far
/// the check is.
struct Entry {
    tipset: String,
    progress: Progress,
}

#[derive(Default)]
struct Checks {
    /// One check per message, for the tipset that executed it last.
    by_message: HashMap<i64, Entry>,
    /// Message ids oldest first, for forgetting the oldest.
    order: VecDeque<i64>,
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
        match checks.by_message.get_mut(&id) {
            Some(entry) if entry.tipset == tipset => {
                return match &entry.progress {
                    Progress::Checked(check) => LandingLookup::Checked(Arc::clone(check)),
                    Progress::Running => LandingLookup::Running,
                };
            }
            // A message executed again elsewhere: its earlier check says nothing any
            // more, and this caller checks it anew.
            Some(entry) => {
                *entry = Entry {
                    tipset: tipset.to_owned(),
                    progress: Progress::Running,
                };
                return LandingLookup::RunIt;
            }
            None => {}
        }
        if checks.order.len() >= MESSAGES_KEPT
            && let Some(oldest) = checks.order.pop_front()
        {
            checks.by_message.remove(&oldest);
        }
        checks.by_message.insert(
            id,
            Entry {
                tipset: tipset.to_owned(),
                progress: Progress::Running,
            },
        );
        checks.order.push_back(id);
        LandingLookup::RunIt
    }

    /// The finished check of message `id` executed in `tipset`, if there is one.
    pub(crate) fn checked(&self, id: i64, tipset: &str) -> Option<Arc<LandingCheck>> {
        let checks = self.checks.lock().ok()?;
        match checks.by_message.get(&id)? {
            Entry {
                tipset: checked_in,
                progress: Progress::Checked(check),
            } if checked_in == tipset => Some(Arc::clone(check)),
            _ => None,
        }
    }

    /// Records the outcome of a check this caller was told to run: the check, or `None`
    /// when the reads failed, which lets the next caller run it again.
    pub(crate) fn finish(&self, id: i64, tipset: &str, outcome: Option<LandingCheck>) {
        let Ok(mut checks) = self.checks.lock() else {
            return;
        };
        // A check superseded while it ran (the message executed elsewhere, or forgotten
        // as too old) is dropped.
        let Some(entry) = checks
            .by_message
            .get_mut(&id)
            .filter(|entry| entry.tipset == tipset)
        else {
            return;
        };
        match outcome {
            Some(check) => entry.progress = Progress::Checked(Arc::new(check)),
            None => {
                checks.by_message.remove(&id);
                checks.order.retain(|kept| *kept != id);
            }
        }
    }

    /// How many checks are kept, running or done (for tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.checks
            .lock()
            .map_or(0, |checks| checks.by_message.len())
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

    #[test]
    fn only_the_latest_messages_checks_are_kept() {
        let checks = LandingChecks::default();
        let total = i64::try_from(MESSAGES_KEPT).expect("a small bound") + 100;
        for id in 0..total {
            assert_eq!(checks.lookup_or_claim(id, "t"), LandingLookup::RunIt);
            checks.finish(id, "t", Some(landed(&[1])));
        }
        assert_eq!(checks.kept(), MESSAGES_KEPT);
        // The oldest are forgotten (checked anew when asked), the latest kept.
        assert_eq!(checks.checked(0, "t"), None);
        assert!(checks.checked(total - 1, "t").is_some());
    }

    /// One step of the model test: a caller asking about a message's check in a tipset,
    /// or the caller running that check finishing it (found, or the reads failed).
    #[derive(Clone, Debug)]
    enum Step {
        Ask(i64, u8),
        Finish(i64, u8, bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0i64..6, 0u8..2).prop_map(|(id, tipset)| Step::Ask(id, tipset)),
            (0i64..6, 0u8..2, any::<bool>())
                .prop_map(|(id, tipset, found)| Step::Finish(id, tipset, found)),
        ]
    }

    proptest! {
        /// Each check is run by one caller at a time; a finished check answers every
        /// later caller in its tipset; a failed one, or one of another tipset, is
        /// claimed again.
        #[test]
        fn callers_are_told_what_the_model_says(steps in prop::collection::vec(step(), 1..200)) {
            let checks = LandingChecks::default();
            // The model: per message, its tipset and whether its check ran to the end.
            let mut model: HashMap<i64, (u8, bool)> = HashMap::new();
            for step in steps {
                match step {
                    Step::Ask(id, tipset) => {
                        let told = checks.lookup_or_claim(id, &tipset.to_string());
                        match model.get(&id) {
                            Some((in_tipset, done)) if *in_tipset == tipset => {
                                if *done {
                                    prop_assert!(matches!(told, LandingLookup::Checked(_)));
                                } else {
                                    prop_assert_eq!(told, LandingLookup::Running);
                                }
                            }
                            _ => {
                                prop_assert_eq!(told, LandingLookup::RunIt);
                                model.insert(id, (tipset, false));
                            }
                        }
                    }
                    Step::Finish(id, tipset, found) => {
                        // Only the caller told to run a check finishes it.
                        if model.get(&id) != Some(&(tipset, false)) {
                            continue;
                        }
                        checks.finish(id, &tipset.to_string(), found.then(|| landed(&[1])));
                        if found {
                            model.insert(id, (tipset, true));
                        } else {
                            model.remove(&id);
                        }
                        prop_assert_eq!(
                            checks.checked(id, &tipset.to_string()).is_some(),
                            found
                        );
                    }
                }
            }
        }
    }
}
