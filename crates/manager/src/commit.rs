//! The commit manager's decisions, pure: when a batch of waiting sectors is sent, and
//! what a worker is told about its sector's message. The outbox driver and the API
//! handlers feed these functions what they read and do what they answer.

use std::time::Duration;

use sealer_api::OnChainState;

use crate::config::BatchConfig;
use crate::db::{MessageRow, MessageState};

/// A sector waiting for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitingSector {
    /// Its number.
    pub number: u64,
    /// When it started waiting (Unix seconds).
    pub waiting_since: i64,
    /// When it must be sent at the latest (Unix seconds), if something expires: a
    /// ticket that grows too old, a seed whose proof window closes.
    pub send_by: Option<i64>,
}

/// The batches to send now, each at most `max_per_message` sectors, in number order.
///
/// Everything waiting is sent when `threshold` sectors wait, when the oldest has waited
/// `max_wait`, or when any must be sent by now; otherwise nothing is sent yet.
pub fn due_batches(
    waiting: &[WaitingSector],
    batch: &BatchConfig,
    max_per_message: usize,
    now: i64,
) -> Vec<Vec<u64>> {
    if waiting.is_empty() {
        return Vec::new();
    }
    let max_wait = i64::try_from(batch.max_wait.as_secs()).unwrap_or(i64::MAX);
    let oldest = waiting
        .iter()
        .map(|sector| sector.waiting_since)
        .min()
        .unwrap_or(now);
    let urgent = waiting
        .iter()
        .any(|sector| sector.send_by.is_some_and(|by| by <= now));
    let due =
        waiting.len() >= batch.threshold.max(1) || now.saturating_sub(oldest) >= max_wait || urgent;
    if !due {
        return Vec::new();
    }
    let mut numbers: Vec<u64> = waiting.iter().map(|sector| sector.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
        .chunks(max_per_message.max(1))
        .map(<[u64]>::to_vec)
        .collect()
}

/// When the commit manager next needs to look at `waiting`, for a driver that sleeps.
pub fn next_check(waiting: &[WaitingSector], batch: &BatchConfig, now: i64) -> Duration {
    let max_wait = i64::try_from(batch.max_wait.as_secs()).unwrap_or(i64::MAX);
    let soonest = waiting
        .iter()
        .flat_map(|sector| {
            [
                Some(sector.waiting_since.saturating_add(max_wait)),
                sector.send_by,
            ]
        })
        .flatten()
        .min();
    let until = soonest.map_or(batch.check_interval, |at| {
        Duration::from_secs(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
    });
    until.min(batch.check_interval)
}

/// Exit codes a resubmission may cure: out of gas and both insufficient-funds codes.
pub const RETRYABLE_EXIT_CODES: [i64; 3] = [7, 6, 18];

/// What the worker is told about a sector's precommit or proof, before any chain check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollDecision {
    /// Answer this.
    Answer(OnChainState, Option<String>),
    /// The message landed with exit code 0 and enough confidence: answer `Landed` if the
    /// chain shows the sector's precommit (or, for a proof, the sector), else
    /// `ShouldAbort`.
    CheckChain,
}

/// The answer for a sector whose submission is `submitted`, waiting (`need_send`) or
/// carried by `message`, with the chain at `head` and `confidence` epochs required.
pub fn poll_decision(
    submitted: bool,
    need_send: bool,
    message: Option<&MessageRow>,
    head: i64,
    confidence: i64,
) -> PollDecision {
    if !submitted {
        return PollDecision::Answer(
            OnChainState::NotFound,
            Some("nothing was submitted for this sector".to_owned()),
        );
    }
    let Some(message) = message else {
        return if need_send {
            PollDecision::Answer(OnChainState::Pending, None)
        } else {
            PollDecision::Answer(
                OnChainState::Failed,
                Some("the submission is in no message; submit it again".to_owned()),
            )
        };
    };
    match message.state {
        MessageState::Created | MessageState::Pushed => {
            PollDecision::Answer(OnChainState::Pending, message.signed_cid.clone())
        }
        MessageState::Failed => PollDecision::Answer(
            OnChainState::Failed,
            Some(format!(
                "message #{} could not be sent: {}",
                message.id,
                message.last_error.as_deref().unwrap_or("unknown error")
            )),
        ),
        MessageState::Executed | MessageState::Final => {
            let (Some(height), Some(exit_code)) = (message.executed_height, message.exit_code)
            else {
                return PollDecision::Answer(OnChainState::Pending, message.signed_cid.clone());
            };
            let receipt = message.receipt.clone();
            if exit_code != 0 {
                let state = if RETRYABLE_EXIT_CODES.contains(&exit_code) {
                    OnChainState::Failed
                } else {
                    OnChainState::PermFailed
                };
                return PollDecision::Answer(state, receipt);
            }
            if head.saturating_sub(height) < confidence {
                PollDecision::Answer(OnChainState::Packed, receipt)
            } else {
                PollDecision::CheckChain
            }
        }
    }
}

/// A `MsgUuid` for Lotus's `MpoolPushMessage` from 16 random bytes (an RFC 9562
/// version-4 UUID). It is stored with the outbox row before the first push, so pushing
/// the row again returns the message the node signed the first time instead of sending
/// a second one.
pub fn message_uuid(random: [u8; 16]) -> String {
    let mut bytes = random;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(threshold: usize, max_wait: u64) -> BatchConfig {
        BatchConfig {
            threshold,
            max_wait: Duration::from_secs(max_wait),
            check_interval: Duration::from_secs(60),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// A batch goes out exactly when the threshold, the oldest's wait or an urgent
        /// sector says so; it holds every waiting sector once, in order, in messages no
        /// larger than the limit; and the next check is never later than needed.
        #[test]
        fn batches_go_out_exactly_when_due_and_carry_every_sector_once(
            sectors in proptest::collection::vec((0u64..50, 0i64..5000, proptest::option::of(0i64..6000)), 0..30),
            threshold in 1usize..10,
            max_wait in 0u64..4000,
            per_message in 1usize..8,
            now in 0i64..6000,
        ) {
            let waiting: Vec<WaitingSector> = sectors
                .iter()
                .map(|(number, since, by)| WaitingSector { number: *number, waiting_since: (*since).min(now), send_by: *by })
                .collect();
            let config = batch(threshold, max_wait);
            let batches = due_batches(&waiting, &config, per_message, now);
            let mut distinct: Vec<u64> = waiting.iter().map(|s| s.number).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let expected_due = !waiting.is_empty()
                && (waiting.len() >= threshold
                    || waiting.iter().any(|s| now - s.waiting_since >= max_wait as i64)
                    || waiting.iter().any(|s| s.send_by.is_some_and(|by| by <= now)));
            prop_assert_eq!(!batches.is_empty(), expected_due);
            if expected_due {
                let sent: Vec<u64> = batches.concat();
                prop_assert_eq!(&sent, &distinct);
                prop_assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= per_message));
            } else {
                let wait = next_check(&waiting, &config, now).as_secs() as i64;
                for sector in &waiting {
                    prop_assert!(now + wait <= sector.waiting_since + max_wait as i64);
                    if let Some(by) = sector.send_by {
                        prop_assert!(now + wait <= by);
                    }
                }
            }
        }
    }

    fn executed(exit_code: i64, height: i64) -> MessageRow {
        MessageRow {
            id: 1,
            miner: 1000,
            purpose: crate::db::Purpose::PreCommit,
            msg_uuid: String::new(),
            from_address: String::new(),
            method: 28,
            params: Vec::new(),
            value: "0".to_owned(),
            max_fee: "0".to_owned(),
            state: MessageState::Executed,
            signed_cid: Some("bafy".to_owned()),
            signed_message: None,
            push_attempts: 1,
            nonce_passed_height: None,
            last_error: None,
            executed_height: Some(height),
            executed_tipset: None,
            exit_code: Some(exit_code),
            receipt: Some(format!("exit {exit_code}")),
            created_at: 0,
            sectors: vec![1],
        }
    }

    #[test]
    fn poll_answers_follow_the_references_table() {
        use OnChainState::*;
        let answer = |decision: PollDecision| match decision {
            PollDecision::Answer(state, _) => Some(state),
            PollDecision::CheckChain => None,
        };
        assert_eq!(
            answer(poll_decision(false, false, None, 100, 10)),
            Some(NotFound)
        );
        assert_eq!(
            answer(poll_decision(true, true, None, 100, 10)),
            Some(Pending)
        );
        assert_eq!(
            answer(poll_decision(true, false, None, 100, 10)),
            Some(Failed)
        );
        let mut pushed = executed(0, 95);
        pushed.state = MessageState::Pushed;
        assert_eq!(
            answer(poll_decision(true, false, Some(&pushed), 100, 10)),
            Some(Pending)
        );
        assert_eq!(
            answer(poll_decision(true, false, Some(&executed(0, 95)), 100, 10)),
            Some(Packed)
        );
        assert_eq!(
            answer(poll_decision(true, false, Some(&executed(0, 90)), 100, 10)),
            None
        );
        for code in [6, 7, 18] {
            assert_eq!(
                answer(poll_decision(
                    true,
                    false,
                    Some(&executed(code, 50)),
                    100,
                    10
                )),
                Some(Failed)
            );
        }
        for code in [16, 17, 33] {
            assert_eq!(
                answer(poll_decision(
                    true,
                    false,
                    Some(&executed(code, 50)),
                    100,
                    10
                )),
                Some(PermFailed)
            );
        }
        let mut failed = executed(0, 0);
        failed.state = MessageState::Failed;
        assert_eq!(
            answer(poll_decision(true, false, Some(&failed), 100, 10)),
            Some(Failed)
        );
    }

    #[test]
    fn message_uuids_are_well_formed_version_4() {
        let uuid = message_uuid([0xff; 16]);
        assert_eq!(uuid, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(
            message_uuid([0; 16]),
            "00000000-0000-4000-8000-000000000000"
        );
    }
}
