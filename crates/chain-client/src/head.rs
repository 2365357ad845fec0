//! Following the chain's head through reorganisations: the pure core behind `ChainNotify`.
//!
//! Lotus sends batches of head changes: the first is `current` (the head when the
//! subscription began); later ones revert tipsets from the top (highest first) and apply
//! tipsets from the fork point up. [`HeadTracker`] keeps the recent chain, checks that
//! every change fits it (a revert removes the tipset on top; an apply builds on the
//! tipset on top) and turns the batches into [`ChainEvent`]s a consumer can act on. When
//! the changes do not fit — a lost notification, a resubscription after a dropped
//! connection, a reorganisation deeper than the tracker remembers — it says so with
//! [`ChainEvent::Gap`] instead of guessing, so the consumer re-reads what it depends on.

use std::collections::VecDeque;

use crate::types::{HeadChange, HeadChangeType, TipSet, TipSetKey};

/// What happened to the chain, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEvent {
    /// A tipset joined the chain; it is the new head.
    Applied(TipSet),
    /// A tipset left the chain (a reorganisation); its parent is the new head.
    Reverted(TipSet),
    /// The tracker lost the thread: the changes did not fit the chain it knew. Everything
    /// learnt from reverted-or-not tipsets must be checked again; `head` is the head now.
    Gap {
        /// The head the tracker knows now, if it knows one.
        head: Option<TipSet>,
        /// Why the changes did not fit.
        reason: String,
    },
}

/// The recent chain, oldest first, as head changes describe it.
#[derive(Clone, Debug)]
pub struct HeadTracker {
    chain: VecDeque<TipSet>,
    capacity: usize,
}

impl HeadTracker {
    /// A tracker that remembers the last `capacity` tipsets (at least one), which bounds
    /// the depth of a reorganisation it can follow without a gap.
    pub fn new(capacity: usize) -> HeadTracker {
        HeadTracker {
            chain: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// The current head, once known.
    pub fn head(&self) -> Option<&TipSet> {
        self.chain.back()
    }

    /// The remembered chain, oldest first.
    pub fn chain(&self) -> impl Iterator<Item = &TipSet> {
        self.chain.iter()
    }

    /// Takes one batch of head changes and says what they did.
    pub fn observe(&mut self, changes: &[HeadChange]) -> Vec<ChainEvent> {
        let mut events = Vec::new();
        for change in changes {
            match &change.change {
                HeadChangeType::Current => self.current(&change.tipset, &mut events),
                HeadChangeType::Apply => self.apply(&change.tipset, &mut events),
                HeadChangeType::Revert => self.revert(&change.tipset, &mut events),
                HeadChangeType::Other(kind) => {
                    let reason = format!("an unknown head change {kind:?}");
                    self.gap(&change.tipset, reason, &mut events);
                }
            }
        }
        events
    }

    fn head_key(&self) -> Option<TipSetKey> {
        self.chain.back().map(TipSet::key)
    }

    fn push(&mut self, tipset: TipSet) {
        self.chain.push_back(tipset);
        while self.chain.len() > self.capacity {
            self.chain.pop_front();
        }
    }

    fn gap(&mut self, head: &TipSet, reason: String, events: &mut Vec<ChainEvent>) {
        self.chain.clear();
        self.push(head.clone());
        events.push(ChainEvent::Gap {
            head: Some(head.clone()),
            reason,
        });
    }

    /// The head at (re)subscription: nothing if it is the head already; an apply if it
    /// builds on the head; reverts if it is a remembered ancestor; else a gap.
    fn current(&mut self, tipset: &TipSet, events: &mut Vec<ChainEvent>) {
        let key = tipset.key();
        match self.head_key() {
            None => self.push(tipset.clone()),
            Some(head) if head == key => {}
            Some(head) if head == tipset.parents() => {
                self.push(tipset.clone());
                events.push(ChainEvent::Applied(tipset.clone()));
            }
            Some(_) if self.chain.iter().any(|known| known.key() == key) => {
                while self.head_key().is_some_and(|head| head != key) {
                    if let Some(reverted) = self.chain.pop_back() {
                        events.push(ChainEvent::Reverted(reverted));
                    }
                }
            }
            Some(head) => self.gap(
                tipset,
                format!(
                    "the head is now {key} at {}, which does not follow {head}",
                    tipset.height
                ),
                events,
            ),
        }
    }

    fn apply(&mut self, tipset: &TipSet, events: &mut Vec<ChainEvent>) {
        match self.head_key() {
            None => {
                self.push(tipset.clone());
                events.push(ChainEvent::Applied(tipset.clone()));
            }
            Some(head) if head == tipset.parents() => {
                self.push(tipset.clone());
                events.push(ChainEvent::Applied(tipset.clone()));
            }
            Some(head) if head == tipset.key() => {}
            Some(head) => self.gap(
                tipset,
                format!(
                    "{} at {} was applied on top of {head}, which is not its parent",
                    tipset.key(),
                    tipset.height
                ),
                events,
            ),
        }
    }

    fn revert(&mut self, tipset: &TipSet, events: &mut Vec<ChainEvent>) {
        match self.head_key() {
            Some(head) if head == tipset.key() && self.chain.len() > 1 => {
                if let Some(reverted) = self.chain.pop_back() {
                    events.push(ChainEvent::Reverted(reverted));
                }
            }
            Some(head) if head == tipset.key() => {
                // The revert goes below what is remembered: the parent is the head now,
                // but the tracker has never seen it.
                self.chain.clear();
                events.push(ChainEvent::Reverted(tipset.clone()));
            }
            head => {
                let head = head.map_or_else(|| "nothing".to_owned(), |head| head.to_string());
                let reason = format!(
                    "{} at {} was reverted, but the head is {head}",
                    tipset.key(),
                    tipset.height
                );
                self.chain.clear();
                events.push(ChainEvent::Gap { head: None, reason });
            }
        }
    }
}
