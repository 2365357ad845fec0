//! Where a miner's proving period stands and what a WindowPoSt runner must do about it:
//! pure functions of the chain state passed in (no clock, no I/O), property-tested.
//!
//! The chain divides each proving period into deadlines (48 on mainnet). Every partition
//! of a deadline is proven once per period, by a proof submitted between the deadline's
//! open and close epochs, over randomness drawn at its challenge epoch. Recoveries for a
//! deadline must be declared before its fault cutoff, so a runner declares them two
//! deadlines ahead, as Lotus does.

use std::collections::BTreeSet;

/// A chain epoch.
pub type ChainEpoch = i64;

/// The shape of a proving period, as the chain reports it (`StateMinerProvingDeadline`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProvingGeometry {
    /// Epochs per proving period.
    pub proving_period: ChainEpoch,
    /// Deadlines per proving period.
    pub deadlines: u64,
    /// Epochs per deadline.
    pub challenge_window: ChainEpoch,
    /// How many epochs before a deadline opens its challenge is drawn.
    pub challenge_lookback: ChainEpoch,
    /// How many epochs before a deadline opens its faults and recoveries must be declared.
    pub fault_declaration_cutoff: ChainEpoch,
}

/// One deadline of one proving period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Deadline {
    /// The first epoch of its proving period.
    pub period_start: ChainEpoch,
    /// Its index within the period.
    pub index: u64,
    /// The first epoch a proof for it may land.
    pub open: ChainEpoch,
    /// The first epoch a proof for it may no longer land.
    pub close: ChainEpoch,
    /// The epoch whose randomness challenges it.
    pub challenge: ChainEpoch,
    /// The last epoch before which its recoveries must be declared.
    pub fault_cutoff: ChainEpoch,
}

impl ProvingGeometry {
    /// The geometry the chain reported with a deadline.
    pub fn from_chain(info: &chain_client::types::DeadlineInfo) -> ProvingGeometry {
        ProvingGeometry {
            proving_period: info.wpost_proving_period,
            deadlines: info.wpost_period_deadlines,
            challenge_window: info.wpost_challenge_window,
            challenge_lookback: info.wpost_challenge_lookback,
            fault_declaration_cutoff: info.fault_declaration_cutoff,
        }
    }

    /// Whether the numbers make a proving period at all (a node could report anything).
    pub fn is_sound(&self) -> bool {
        self.deadlines > 0
            && self.challenge_window > 0
            && self.challenge_lookback >= 0
            && self.fault_declaration_cutoff >= 0
            && i64::try_from(self.deadlines)
                .ok()
                .and_then(|deadlines| deadlines.checked_mul(self.challenge_window))
                == Some(self.proving_period)
    }

    /// Deadline `index` of the period starting at `period_start`.
    pub fn deadline(&self, period_start: ChainEpoch, index: u64) -> Deadline {
        let open = period_start + index as ChainEpoch * self.challenge_window;
        Deadline {
            period_start,
            index,
            open,
            close: open + self.challenge_window,
            challenge: open - self.challenge_lookback,
            fault_cutoff: open - self.fault_declaration_cutoff,
        }
    }

    /// The deadline open at `epoch` for a miner whose periods start at epochs congruent
    /// to `offset` (the actors' `NewDeadlineInfoFromOffsetAndEpoch`).
    pub fn deadline_at(&self, offset: ChainEpoch, epoch: ChainEpoch) -> Deadline {
        let offset = offset.rem_euclid(self.proving_period);
        let period_start = epoch - (epoch - offset).rem_euclid(self.proving_period);
        let index = ((epoch - period_start) / self.challenge_window) as u64;
        self.deadline(period_start, index)
    }

    /// The deadline after `deadline` (the first of the next period after the last).
    pub fn next(&self, deadline: &Deadline) -> Deadline {
        if deadline.index + 1 >= self.deadlines {
            self.deadline(deadline.period_start + self.proving_period, 0)
        } else {
            self.deadline(deadline.period_start, deadline.index + 1)
        }
    }

    /// The deadline whose recoveries a runner declares while `current` is open: two
    /// ahead, so the declaration lands before that deadline's fault cutoff.
    pub fn recovery_deadline(&self, current: &Deadline) -> Deadline {
        self.next(&self.next(current))
    }
}

/// What the runner's settings make of a deadline's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostTiming {
    /// Epochs on top of the challenge epoch before its randomness is trusted (a reorg
    /// deeper than this would change the challenge).
    pub challenge_confidence: ChainEpoch,
    /// Epochs after the deadline opens before a proof is submitted (Lotus waits for the
    /// open epoch to be final enough that the message is not refused as early).
    pub submit_confidence: ChainEpoch,
}

/// Where the work on one deadline stands, as the runner recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadlineProgress {
    /// Nothing done yet.
    NotStarted,
    /// Checking files and generating the proof over the challenge of this epoch.
    Proving {
        /// The challenge epoch the proof is made for.
        challenge: ChainEpoch,
    },
    /// The proof is made and verified, waiting to be submitted.
    ProofReady {
        /// The challenge epoch it was made for.
        challenge: ChainEpoch,
    },
    /// Every message is on its way; waiting for them to land.
    Submitted,
    /// Every message landed.
    Proven,
    /// Nothing in this deadline needs a proof (no live sector, or every one is faulty).
    NothingToProve,
}

/// What the runner does next about one deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineStep {
    /// Nothing before this epoch.
    WaitUntil(ChainEpoch),
    /// Draw the challenge at the deadline's challenge epoch and start the proof.
    StartProving,
    /// The chain went back below the challenge epoch: drop the proof in progress and
    /// start over once the chain is past it again.
    Restart,
    /// Submit the proof now.
    Submit,
    /// Follow the messages sent.
    FollowMessages,
    /// Done with this deadline (proven, nothing to prove, or closed).
    Done,
    /// The deadline closed before its proof landed.
    Missed,
}

/// The next step for `deadline` at chain height `head`, given what was done.
pub fn next_step(
    deadline: &Deadline,
    head: ChainEpoch,
    timing: PostTiming,
    progress: &DeadlineProgress,
) -> DeadlineStep {
    let start_at = deadline.challenge + timing.challenge_confidence.max(0);
    let submit_at = (deadline.open + timing.submit_confidence.max(0)).min(deadline.close - 1);
    match progress {
        DeadlineProgress::Proven | DeadlineProgress::NothingToProve => DeadlineStep::Done,
        _ if head >= deadline.close => DeadlineStep::Missed,
        DeadlineProgress::NotStarted => {
            if head >= start_at {
                DeadlineStep::StartProving
            } else {
                DeadlineStep::WaitUntil(start_at)
            }
        }
        DeadlineProgress::Proving { challenge } | DeadlineProgress::ProofReady { challenge }
            if head < *challenge =>
        {
            DeadlineStep::Restart
        }
        DeadlineProgress::Proving { .. } => DeadlineStep::WaitUntil(head + 1),
        DeadlineProgress::ProofReady { .. } => {
            if head >= submit_at {
                DeadlineStep::Submit
            } else {
                DeadlineStep::WaitUntil(submit_at)
            }
        }
        DeadlineProgress::Submitted => DeadlineStep::FollowMessages,
    }
}

/// A partition as the chain holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// Its index in the deadline.
    pub index: u64,
    /// Sectors not terminated.
    pub live: BTreeSet<u64>,
    /// Sectors faulty.
    pub faulty: BTreeSet<u64>,
    /// Faulty sectors declared recovering.
    pub recovering: BTreeSet<u64>,
}

impl PartitionState {
    /// The sectors a proof of this partition must cover, before file checks: live ones
    /// not faulty, plus faulty ones declared recovering.
    pub fn to_prove(&self) -> BTreeSet<u64> {
        self.live
            .iter()
            .filter(|sector| !self.faulty.contains(sector) || self.recovering.contains(sector))
            .copied()
            .collect()
    }
}

/// One partition's part of a proof: what is proven and what is skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionPlan {
    /// The partition's index.
    pub index: u64,
    /// Sectors proven.
    pub proven: BTreeSet<u64>,
    /// Sectors that should have been proven and failed their check: the proof skips
    /// them, which declares them faulty.
    pub skipped: BTreeSet<u64>,
}

/// What a deadline's proof covers after the file checks: `check_passed` says whether a
/// sector's files could be read. A partition with nothing to prove and nothing to skip
/// is left out.
pub fn plan_partitions(
    partitions: &[PartitionState],
    check_passed: impl Fn(u64) -> bool,
) -> Vec<PartitionPlan> {
    partitions
        .iter()
        .filter_map(|partition| {
            let (proven, skipped): (BTreeSet<u64>, BTreeSet<u64>) = partition
                .to_prove()
                .into_iter()
                .partition(|sector| check_passed(*sector));
            (!proven.is_empty() || !skipped.is_empty()).then_some(PartitionPlan {
                index: partition.index,
                proven,
                skipped,
            })
        })
        .collect()
}

/// The most partitions one `SubmitWindowedPoSt` may carry for partitions of
/// `partition_sectors` sectors: the network's limit on sectors addressed by one message
/// (25,000) and on declarations per message (3,000), or the operator's lower setting.
pub fn max_partitions_per_message(partition_sectors: u64, configured: Option<u64>) -> u64 {
    const ADDRESSED_SECTORS_MAX: u64 = 25_000;
    const DECLARATIONS_MAX: u64 = 3_000;
    let network = (ADDRESSED_SECTORS_MAX / partition_sectors.max(1)).clamp(1, DECLARATIONS_MAX);
    match configured {
        Some(configured) if configured > 0 => configured.min(network),
        _ => network,
    }
}

/// Splits a deadline's partitions into messages of at most `per_message` partitions,
/// in index order. Batches with nothing proven are dropped: the chain needs no proof
/// for them, and a message cannot carry an empty proof (their sectors become faulty
/// when the deadline closes, as skipping them would declare).
pub fn batch_partitions(plans: &[PartitionPlan], per_message: u64) -> Vec<Vec<PartitionPlan>> {
    let per_message = usize::try_from(per_message.max(1)).unwrap_or(usize::MAX);
    let mut sorted = plans.to_vec();
    sorted.sort_by_key(|plan| plan.index);
    sorted
        .chunks(per_message)
        .filter(|batch| batch.iter().any(|plan| !plan.proven.is_empty()))
        .map(<[PartitionPlan]>::to_vec)
        .collect()
}

/// One partition's recoveries to declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// The partition's index.
    pub partition: u64,
    /// Faulty sectors whose files are back.
    pub sectors: BTreeSet<u64>,
}

/// The recoveries to declare for a deadline: faulty, live sectors not yet declared
/// recovering whose files pass the check. Nothing when `head` is already at or past
/// the deadline's fault cutoff (the chain would refuse the declaration).
pub fn plan_recoveries(
    deadline: &Deadline,
    head: ChainEpoch,
    partitions: &[PartitionState],
    check_passed: impl Fn(u64) -> bool,
) -> Vec<RecoveryPlan> {
    if head >= deadline.fault_cutoff {
        return Vec::new();
    }
    partitions
        .iter()
        .filter_map(|partition| {
            let sectors: BTreeSet<u64> = partition
                .faulty
                .iter()
                .filter(|sector| partition.live.contains(sector))
                .filter(|sector| !partition.recovering.contains(sector))
                .filter(|sector| check_passed(**sector))
                .copied()
                .collect();
            (!sectors.is_empty()).then_some(RecoveryPlan {
                partition: partition.index,
                sectors,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mainnet() -> ProvingGeometry {
        ProvingGeometry {
            proving_period: 2880,
            deadlines: 48,
            challenge_window: 60,
            challenge_lookback: 20,
            fault_declaration_cutoff: 70,
        }
    }

    fn geometry() -> impl Strategy<Value = ProvingGeometry> {
        (1u64..60, 1i64..80, 0i64..40, 0i64..100).prop_map(
            |(deadlines, window, lookback, cutoff)| ProvingGeometry {
                proving_period: deadlines as i64 * window,
                deadlines,
                challenge_window: window,
                challenge_lookback: lookback,
                fault_declaration_cutoff: cutoff,
            },
        )
    }

    fn partitions() -> impl Strategy<Value = Vec<PartitionState>> {
        proptest::collection::vec(
            proptest::collection::btree_map(0u64..200, (any::<bool>(), any::<bool>()), 0..12),
            0..8,
        )
        .prop_map(|partitions| {
            partitions
                .into_iter()
                .enumerate()
                .map(|(index, sectors)| {
                    let live: BTreeSet<u64> = sectors.keys().copied().collect();
                    let faulty: BTreeSet<u64> = sectors
                        .iter()
                        .filter(|(_, (faulty, _))| *faulty)
                        .map(|(sector, _)| *sector)
                        .collect();
                    let recovering = sectors
                        .iter()
                        .filter(|(_, (faulty, recovering))| *faulty && *recovering)
                        .map(|(sector, _)| *sector)
                        .collect();
                    PartitionState {
                        index: index as u64,
                        live,
                        faulty,
                        recovering,
                    }
                })
                .collect()
        })
    }

    #[test]
    fn mainnet_deadlines_match_the_actors() {
        // A miner with offset 1000 at epoch 5000: period started at 3880, deadline 18.
        let deadline = mainnet().deadline_at(1000, 5000);
        assert_eq!(deadline.period_start, 3880);
        assert_eq!(deadline.index, 18);
        assert_eq!(deadline.open, 3880 + 18 * 60);
        assert_eq!(deadline.close, deadline.open + 60);
        assert_eq!(deadline.challenge, deadline.open - 20);
        assert_eq!(deadline.fault_cutoff, deadline.open - 70);
        assert!(mainnet().is_sound());
    }

    #[test]
    fn the_devnet_s_geometry_is_the_runner_s() {
        let policy = devnet::world::ProvingPolicy::new(96);
        let geometry = ProvingGeometry {
            proving_period: policy.proving_period,
            deadlines: 48,
            challenge_window: policy.challenge_window,
            challenge_lookback: policy.challenge_lookback,
            fault_declaration_cutoff: policy.fault_declaration_cutoff,
        };
        for epoch in 0..400 {
            let chain = policy.deadline_info(1000 % 96, epoch);
            let ours = geometry.deadline_at(1000, epoch);
            assert_eq!(ProvingGeometry::from_chain(&chain), geometry);
            assert_eq!(
                (ours.period_start, ours.index, ours.open, ours.close),
                (chain.period_start, chain.index, chain.open, chain.close)
            );
            assert_eq!(
                (ours.challenge, ours.fault_cutoff),
                (chain.challenge, chain.fault_cutoff)
            );
        }
    }

    proptest! {
        // The decisions change within a few epochs of a deadline; more cases find those
        // corners (all of these run in well under a second).
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn the_deadline_at_an_epoch_is_open_at_it(
            geometry in geometry(),
            offset in -10_000i64..10_000,
            epoch in -10_000i64..100_000,
        ) {
            prop_assert!(geometry.is_sound());
            let deadline = geometry.deadline_at(offset, epoch);
            prop_assert!(deadline.open <= epoch && epoch < deadline.close);
            prop_assert!(deadline.index < geometry.deadlines);
            prop_assert_eq!((deadline.period_start - offset).rem_euclid(geometry.proving_period), 0);
            prop_assert_eq!(deadline.challenge, deadline.open - geometry.challenge_lookback);
            // The next deadline starts where this one closes and is the one open there.
            let next = geometry.next(&deadline);
            prop_assert_eq!(next.open, deadline.close);
            prop_assert_eq!(next, geometry.deadline_at(offset, deadline.close));
            let recovery = geometry.recovery_deadline(&deadline);
            prop_assert_eq!(recovery.index, (deadline.index + 2) % geometry.deadlines);
            prop_assert_eq!(recovery.open, deadline.open + 2 * geometry.challenge_window);
        }

        #[test]
        fn a_proof_is_started_after_the_challenge_and_submitted_inside_the_window(
            geometry in geometry(),
            epoch in 0i64..10_000,
            head_after_challenge in -10i64..120,
            challenge_confidence in 0i64..20,
            submit_confidence in 0i64..20,
            progress in 0usize..6,
            challenge_shift in -5i64..5,
        ) {
            let deadline = geometry.deadline_at(0, epoch);
            // Heads around the deadline, where the decisions change.
            let head = deadline.challenge + head_after_challenge;
            let timing = PostTiming { challenge_confidence, submit_confidence };
            let challenge = deadline.challenge + challenge_shift;
            let progress = [
                DeadlineProgress::NotStarted,
                DeadlineProgress::Proving { challenge },
                DeadlineProgress::ProofReady { challenge },
                DeadlineProgress::Submitted,
                DeadlineProgress::Proven,
                DeadlineProgress::NothingToProve,
            ][progress].clone();
            let step = next_step(&deadline, head, timing, &progress);
            match step {
                DeadlineStep::StartProving => {
                    prop_assert!(head >= deadline.challenge + challenge_confidence);
                    prop_assert!(head < deadline.close);
                }
                DeadlineStep::Submit => {
                    prop_assert!(head < deadline.close);
                    prop_assert!(
                        head >= deadline.open + submit_confidence || head == deadline.close - 1
                    );
                    prop_assert!(head >= challenge);
                }
                DeadlineStep::Restart => prop_assert!(head < challenge),
                DeadlineStep::WaitUntil(at) => prop_assert!(at > head),
                DeadlineStep::Missed => prop_assert!(head >= deadline.close),
                DeadlineStep::Done => prop_assert!(matches!(
                    progress,
                    DeadlineProgress::Proven | DeadlineProgress::NothingToProve
                )),
                DeadlineStep::FollowMessages => {
                    prop_assert_eq!(progress, DeadlineProgress::Submitted);
                }
            }
        }

        #[test]
        fn every_sector_to_prove_is_proven_or_skipped_once(
            partitions in partitions(),
            bad in proptest::collection::btree_set(0u64..200, 0..40),
            per_message in 1u64..5,
        ) {
            let plans = plan_partitions(&partitions, |sector| !bad.contains(&sector));
            for partition in &partitions {
                let to_prove = partition.to_prove();
                let plan = plans.iter().find(|plan| plan.index == partition.index);
                match plan {
                    None => prop_assert!(to_prove.is_empty()),
                    Some(plan) => {
                        prop_assert!(plan.proven.is_disjoint(&plan.skipped));
                        let covered: BTreeSet<u64> =
                            plan.proven.union(&plan.skipped).copied().collect();
                        prop_assert_eq!(&covered, &to_prove);
                        prop_assert!(plan.skipped.iter().all(|sector| bad.contains(sector)));
                        prop_assert!(plan.proven.iter().all(|sector| !bad.contains(sector)));
                        // A faulty sector not declared recovering is never proven.
                        let provable = |sector: &u64| {
                            !partition.faulty.contains(sector) || partition.recovering.contains(sector)
                        };
                        prop_assert!(plan.proven.iter().all(provable));
                    }
                }
            }
            let batches = batch_partitions(&plans, per_message);
            let mut seen = BTreeSet::new();
            for batch in &batches {
                prop_assert!(!batch.is_empty() && batch.len() as u64 <= per_message);
                prop_assert!(batch.iter().any(|plan| !plan.proven.is_empty()));
                for plan in batch {
                    prop_assert!(seen.insert(plan.index), "partition {} in two messages", plan.index);
                }
            }
            // Every partition with a sector proven is in a message.
            for plan in plans.iter().filter(|plan| !plan.proven.is_empty()) {
                prop_assert!(seen.contains(&plan.index));
            }
        }

        #[test]
        fn recoveries_are_faulty_sectors_whose_files_are_back(
            partitions in partitions(),
            bad in proptest::collection::btree_set(0u64..200, 0..40),
            head in 0i64..200,
        ) {
            let deadline = mainnet().deadline(0, 2);
            let plans = plan_recoveries(&deadline, head, &partitions, |sector| !bad.contains(&sector));
            if head >= deadline.fault_cutoff {
                prop_assert!(plans.is_empty());
            }
            for plan in &plans {
                let partition = &partitions[plan.partition as usize];
                prop_assert!(!plan.sectors.is_empty());
                for sector in &plan.sectors {
                    prop_assert!(partition.faulty.contains(sector));
                    prop_assert!(!partition.recovering.contains(sector));
                    prop_assert!(!bad.contains(sector));
                }
            }
        }

        #[test]
        fn a_message_never_addresses_more_than_the_network_allows(
            partition_sectors in 1u64..5000,
            configured in proptest::option::of(0u64..5000),
        ) {
            let most = max_partitions_per_message(partition_sectors, configured);
            prop_assert!(most >= 1);
            prop_assert!(most <= 3_000);
            prop_assert!(most == 1 || most * partition_sectors <= 25_000);
            if let Some(configured) = configured.filter(|configured| *configured > 0) {
                prop_assert!(most <= configured);
            }
        }
    }
}
