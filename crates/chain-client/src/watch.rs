//! Following one message through reorganisations, pure: a message counted as executed
//! can be un-executed by a reorganisation, and must then be found again.
//!
//! The driver feeds [`MessageWatch::observe`] every [`ChainEvent`] and, whenever
//! [`MessageWatch::needs_search`] says so after new tipsets, the result of
//! `StateSearchMsg` from the head to [`MessageWatch::searched`]. The watch reports each
//! execution and each reversal once, in order.

use cid::Cid;

use crate::head::ChainEvent;
use crate::types::MessageLookup;

/// A change in a message's fate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    /// It was executed (for the first time, or again after a reorganisation).
    Executed(MessageLookup),
    /// The execution it had was reverted; it is pending again until found anew.
    Reverted {
        /// Where it had been executed.
        previous: MessageLookup,
    },
}

/// One message being watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageWatch {
    message: Cid,
    executed: Option<MessageLookup>,
}

impl MessageWatch {
    /// Watches `message` (the CID the node gave it: the signed message's).
    pub fn new(message: Cid) -> MessageWatch {
        MessageWatch {
            message,
            executed: None,
        }
    }

    /// The message watched.
    pub fn message(&self) -> &Cid {
        &self.message
    }

    /// Where it is executed, as far as the watch knows.
    pub fn executed(&self) -> Option<&MessageLookup> {
        self.executed.as_ref()
    }

    /// Whether the driver should search for it (it is not known to be executed).
    pub fn needs_search(&self) -> bool {
        self.executed.is_none()
    }

    /// Takes a chain event: a revert at or below the executing tipset's height, or a
    /// gap, undoes the execution.
    pub fn observe(&mut self, event: &ChainEvent) -> Option<MessageStatus> {
        let undone = match (event, &self.executed) {
            (ChainEvent::Reverted(tipset), Some(lookup)) => tipset.height <= lookup.height,
            (ChainEvent::Gap { .. }, Some(_)) => true,
            _ => false,
        };
        if undone {
            self.executed
                .take()
                .map(|previous| MessageStatus::Reverted { previous })
        } else {
            None
        }
    }

    /// Takes the result of searching for the message from the head. A different
    /// execution than the one known (a search that raced a reorganisation) is reported
    /// as the old one reverted, then the new one executed.
    pub fn searched(&mut self, found: Option<MessageLookup>) -> Vec<MessageStatus> {
        let mut statuses = Vec::new();
        if self.executed.as_ref() != found.as_ref() {
            if let Some(previous) = self.executed.take() {
                statuses.push(MessageStatus::Reverted { previous });
            }
            if let Some(lookup) = found {
                self.executed = Some(lookup.clone());
                statuses.push(MessageStatus::Executed(lookup));
            }
        }
        statuses
    }
}
