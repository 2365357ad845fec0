//! Injected faults, deterministic from a seed: late inclusion, lost messages, messages
//! that run out of gas, reorganisations every N epochs, and RPC failures and latency.
//!
//! Every decision is a hash of the seed and its subject (a message's CID, an epoch, a
//! call's number), so one plan and one sequence of events give the same faults on every
//! run; tests can assert what happened instead of hoping for it.

use std::time::Duration;

use cid::Cid;
use fvm_shared::clock::ChainEpoch;
use serde::{Deserialize, Serialize};

use crate::chain::blake2b;

/// What to break, and how often.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// The seed every decision derives from.
    pub seed: u64,
    /// Each message waits up to this many extra epochs before it may be included.
    pub max_extra_inclusion_delay: ChainEpoch,
    /// The share of messages the network loses: accepted, never included.
    pub drop_probability: f64,
    /// The share of messages that run out of gas (exit code 7) when executed.
    pub out_of_gas_probability: f64,
    /// Every this many epochs, the top `reorg_depth` tipsets are replaced by a fork.
    pub reorg_every: Option<u64>,
    /// How deep those reorganisations go.
    pub reorg_depth: usize,
    /// The share of HTTP calls answered with 503 and no body (a transport failure).
    pub rpc_error_probability: f64,
    /// Each call is delayed by up to this many milliseconds.
    pub max_rpc_latency_ms: u64,
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageFate {
    /// It is lost.
    pub dropped: bool,
    /// Extra epochs before it may be included.
    pub extra_delay: ChainEpoch,
    /// It runs out of gas.
    pub out_of_gas: bool,
}

/// What happens to one RPC call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallFate {
    /// It fails with HTTP 503.
    pub fails: bool,
    /// How long it is delayed.
    pub latency: Duration,
}

impl FaultPlan {
    /// A number in [0, 1) from the seed, a label and a subject.
    fn draw(&self, label: &str, subject: &[u8]) -> f64 {
        let digest = blake2b(&[&self.seed.to_be_bytes(), label.as_bytes(), subject]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A whole number in [0, max] from the seed, a label and a subject.
    fn pick(&self, label: &str, subject: &[u8], max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        ((self.draw(label, subject) * (max + 1) as f64) as u64).min(max)
    }

    /// The fate of the message with this CID.
    pub fn message_fate(&self, message: &Cid) -> MessageFate {
        let subject = message.to_bytes();
        MessageFate {
            dropped: self.draw("drop", &subject) < self.drop_probability,
            extra_delay: self.pick(
                "delay",
                &subject,
                self.max_extra_inclusion_delay.max(0) as u64,
            ) as ChainEpoch,
            out_of_gas: self.draw("out of gas", &subject) < self.out_of_gas_probability,
        }
    }

    /// How deep a reorganisation replaces the tipset at `height`, if one does.
    pub fn reorganisation_at(&self, height: ChainEpoch) -> Option<usize> {
        let every = self.reorg_every.filter(|every| *every > 0)?;
        (height > 0 && (height as u64).is_multiple_of(every) && self.reorg_depth > 0)
            .then_some(self.reorg_depth)
    }

    /// The fate of the `number`th call.
    pub fn call_fate(&self, number: u64) -> CallFate {
        let subject = number.to_be_bytes();
        CallFate {
            fails: self.draw("rpc error", &subject) < self.rpc_error_probability,
            latency: Duration::from_millis(self.pick("latency", &subject, self.max_rpc_latency_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_deterministic_and_close_to_their_probabilities() {
        let plan = FaultPlan {
            seed: 42,
            max_extra_inclusion_delay: 3,
            drop_probability: 0.25,
            out_of_gas_probability: 0.1,
            reorg_every: Some(10),
            reorg_depth: 2,
            rpc_error_probability: 0.5,
            max_rpc_latency_ms: 20,
        };
        let cids: Vec<Cid> = (0..4000u32)
            .map(|index| {
                Cid::new_v1(
                    0x71,
                    multihash_codetable::MultihashDigest::digest(
                        &multihash_codetable::Code::Blake2b256,
                        &index.to_be_bytes(),
                    ),
                )
            })
            .collect();
        let fates: Vec<MessageFate> = cids.iter().map(|cid| plan.message_fate(cid)).collect();
        let again: Vec<MessageFate> = cids.iter().map(|cid| plan.message_fate(cid)).collect();
        assert_eq!(fates, again, "one seed, one set of fates");
        let dropped = fates.iter().filter(|fate| fate.dropped).count();
        let out_of_gas = fates.iter().filter(|fate| fate.out_of_gas).count();
        // 4,000 draws: within 6 standard deviations of the expected counts.
        assert!((dropped as i64 - 1000).abs() < 6 * 28, "{dropped}");
        assert!((out_of_gas as i64 - 400).abs() < 6 * 19, "{out_of_gas}");
        assert!(fates.iter().all(|fate| (0..=3).contains(&fate.extra_delay)));
        assert!((0..=3).all(|delay| fates.iter().any(|fate| fate.extra_delay == delay)));
        assert_eq!(plan.reorganisation_at(20), Some(2));
        assert_eq!(plan.reorganisation_at(21), None);
        assert!((0..100).all(|number| plan.call_fate(number).latency <= Duration::from_millis(20)));
        let other = FaultPlan {
            seed: 43,
            ..plan.clone()
        };
        assert_ne!(
            fates,
            cids.iter()
                .map(|cid| other.message_fate(cid))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            FaultPlan::default().message_fate(&cids[0]),
            MessageFate {
                dropped: false,
                extra_delay: 0,
                out_of_gas: false
            }
        );
    }
}
