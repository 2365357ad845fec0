//! The devnet's chain, pure: tipsets made on demand, a message pool, execution with
//! receipts, reorganisations, and the randomness Lotus draws from tickets and the beacon.
//!
//! Nothing here reads a clock or a disk: the server calls [`Chain::produce`] with the
//! time for each block and [`Chain::reorganise`] when a reorganisation is injected.
//! Everything is derived from a seed, so two devnets with one seed make the same chain.
//! Block CIDs are real: each header is hashed as Lotus hashes it.
//!
//! Messages follow Lotus's timing: a message is included in a tipset and executed when
//! the next tipset is made (its lookup names that child tipset). Every tipset keeps the
//! state its messages are executed on (Lotus's parent state), so a reorganisation simply
//! returns the reverted tipsets' messages to the pool and the new fork executes them
//! again.

use std::collections::HashMap;

use chain_client::message::block_header_cid;
use chain_client::types::{
    BeaconEntry, BlockHeader, ElectionProof, HeadChange, HeadChangeType, MessageReceipt,
    SignedMessage, Ticket, TipSet, TipSetKey,
};
use cid::Cid;
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use multihash_codetable::{Code, MultihashDigest as _};

use serde::{Deserialize, Serialize};

use crate::world::{ExecutionContext, WorldState};

/// How many of the latest tipsets keep their state; a reorganisation deeper than this
/// (Lotus's finality is 900 epochs) is refused.
pub const RETAINED_STATES: usize = 1000;

/// The actor id of the devnet's block producer.
pub const BLOCK_PRODUCER: u64 = 1000;

/// blake2b-256 of the concatenated parts.
pub fn blake2b(parts: &[&[u8]]) -> [u8; 32] {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend_from_slice(part);
    }
    let digest = Code::Blake2b256.digest(&joined);
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest.digest()[..32]);
    out
}

/// 96 bytes (the length of a BLS signature, which VRF proofs and beacon entries are)
/// derived from `parts`.
fn signature_like(parts: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(96);
    for index in 0u8..3 {
        let mut with_index: Vec<&[u8]> = parts.to_vec();
        let counter = [index];
        with_index.push(&counter);
        bytes.extend_from_slice(&blake2b(&with_index));
    }
    bytes
}

fn label_cid(label: &str) -> Cid {
    Cid::new_v1(0x71, Code::Blake2b256.digest(label.as_bytes()))
}

/// Why randomness could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RandomnessError {
    /// The epoch is after the head.
    #[error("cannot draw randomness from the future (epoch {epoch}, head {head})")]
    Future {
        /// The epoch asked for.
        epoch: ChainEpoch,
        /// The head's epoch.
        head: ChainEpoch,
    },
}

/// A storage miner that won a round: the block's miner and its winning PoSt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockAuthor {
    /// The miner actor.
    pub miner: Address,
    /// Its winning PoSt, as the block header carries it.
    pub win_post_proof: Vec<chain_client::types::PoStProof>,
}

/// Checks the proofs messages carry.
pub trait ProofVerifier {
    /// Whether `seal` is a valid seal proof.
    fn verify(&self, seal: &proofs::SealToVerify) -> bool;
    /// Whether `output` is a valid PoSt of `task` (window or winning, by its proof type).
    fn verify_post(
        &self,
        task: &proofs::tasks::PostTask,
        output: &proofs::tasks::PostOutput,
    ) -> bool;
}

/// The timing rules of the devnet's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRules {
    /// Epochs between a message's arrival and the first tipset that may include it.
    pub inclusion_delay: ChainEpoch,
    /// Epochs between a precommit and its seed.
    pub pre_commit_challenge_delay: ChainEpoch,
}

/// A message waiting in the pool.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    message: SignedMessage,
    /// The epoch from which a tipset may include it.
    ready: ChainEpoch,
    /// Injected: it runs out of gas when executed.
    #[serde(default)]
    out_of_gas: bool,
}

/// Where and how a message was executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// The tipset that executed it (the child of the one including it).
    pub tipset: TipSet,
    /// Its receipt.
    pub receipt: MessageReceipt,
}

/// The chain.
#[derive(Clone, Debug)]
pub struct Chain {
    seed: [u8; 32],
    rules: ChainRules,
    /// The canonical chain, genesis first.
    canonical: Vec<TipSet>,
    /// Every tipset ever made, by key, so a reverted one can still be looked up.
    known: HashMap<TipSetKey, TipSet>,
    /// How many reorganisations have happened; it salts new tickets so a fork differs.
    forks: u64,
    /// Messages not yet included, in arrival order.
    pool: Vec<Pending>,
    /// The messages each tipset includes.
    included: HashMap<TipSetKey, Vec<Pending>>,
    /// The state each tipset's messages execute on (its parent state).
    states: HashMap<TipSetKey, WorldState>,
    /// The receipts of each tipset's parent's messages.
    receipts: HashMap<TipSetKey, Vec<(Cid, MessageReceipt)>>,
    /// Messages accepted and then lost (fault injection).
    dropped: Vec<SignedMessage>,
}

/// One tipset as saved: itself, its messages, its receipts and (for recent ones) its
/// state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedTipSet {
    tipset: TipSet,
    included: Vec<Pending>,
    receipts: Vec<SavedReceipt>,
    state: Option<WorldState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedReceipt {
    #[serde(with = "chain_client::lotus_json::cid")]
    message: Cid,
    receipt: MessageReceipt,
}

/// Everything a chain is, in a form that can be written to disk and read back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainSnapshot {
    seed: [u8; 32],
    rules: ChainRules,
    forks: u64,
    canonical: Vec<TipSetKey>,
    tipsets: Vec<SavedTipSet>,
    pool: Vec<Pending>,
    dropped: Vec<SignedMessage>,
}

/// A snapshot that does not describe a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the saved chain is not consistent: {0}")]
pub struct CorruptSnapshot(pub String);

/// What executing a tipset's messages needs from the chain.
struct Context<'a> {
    chain: &'a Chain,
    at: TipSetKey,
    verifier: &'a dyn ProofVerifier,
}

impl ExecutionContext for Context<'_> {
    fn ticket_randomness(
        &self,
        domain: i64,
        epoch: ChainEpoch,
        entropy: &[u8],
    ) -> Option<[u8; 32]> {
        let digest = self.chain.ticket_digest(epoch, &self.at).ok()?;
        Some(Chain::draw(domain, &digest, epoch, entropy))
    }

    fn beacon_randomness(
        &self,
        domain: i64,
        epoch: ChainEpoch,
        entropy: &[u8],
    ) -> Option<[u8; 32]> {
        let digest = self.chain.beacon_digest(epoch, &self.at).ok()?;
        Some(Chain::draw(domain, &digest, epoch, entropy))
    }

    fn verify_seal(&self, seal: &proofs::SealToVerify) -> bool {
        self.verifier.verify(seal)
    }

    fn verify_window_post(
        &self,
        task: &proofs::tasks::PostTask,
        output: &proofs::tasks::PostOutput,
    ) -> bool {
        self.verifier.verify_post(task, output)
    }
}

impl Chain {
    /// A chain holding only its genesis tipset, made at `genesis_timestamp`, whose state
    /// starts as `state`.
    pub fn genesis(
        seed: [u8; 32],
        genesis_timestamp: u64,
        rules: ChainRules,
        state: WorldState,
    ) -> Chain {
        let mut chain = Chain {
            seed,
            rules,
            canonical: Vec::new(),
            known: HashMap::new(),
            forks: 0,
            pool: Vec::new(),
            included: HashMap::new(),
            states: HashMap::new(),
            receipts: HashMap::new(),
            dropped: Vec::new(),
        };
        let genesis = chain.make_tipset(0, &TipSetKey::head(), genesis_timestamp, None);
        chain.known.insert(genesis.key(), genesis.clone());
        chain.states.insert(genesis.key(), state);
        chain.canonical.push(genesis);
        chain
    }

    /// The rules.
    pub fn rules(&self) -> ChainRules {
        self.rules
    }

    /// The chain as it can be saved.
    pub fn snapshot(&self) -> ChainSnapshot {
        let mut tipsets: Vec<SavedTipSet> = self
            .known
            .values()
            .map(|tipset| {
                let key = tipset.key();
                SavedTipSet {
                    tipset: tipset.clone(),
                    included: self.included.get(&key).cloned().unwrap_or_default(),
                    receipts: self
                        .receipts
                        .get(&key)
                        .into_iter()
                        .flatten()
                        .map(|(message, receipt)| SavedReceipt {
                            message: *message,
                            receipt: receipt.clone(),
                        })
                        .collect(),
                    state: self.states.get(&key).cloned(),
                }
            })
            .collect();
        tipsets.sort_by_key(|saved| saved.tipset.height);
        ChainSnapshot {
            seed: self.seed,
            rules: self.rules,
            forks: self.forks,
            canonical: self.canonical.iter().map(TipSet::key).collect(),
            tipsets,
            pool: self.pool.clone(),
            dropped: self.dropped.clone(),
        }
    }

    /// The chain a snapshot describes.
    pub fn restore(snapshot: ChainSnapshot) -> Result<Chain, CorruptSnapshot> {
        let mut chain = Chain {
            seed: snapshot.seed,
            rules: snapshot.rules,
            canonical: Vec::new(),
            known: HashMap::new(),
            forks: snapshot.forks,
            pool: snapshot.pool,
            included: HashMap::new(),
            states: HashMap::new(),
            receipts: HashMap::new(),
            dropped: snapshot.dropped,
        };
        for saved in snapshot.tipsets {
            let key = saved.tipset.key();
            chain.included.insert(key.clone(), saved.included);
            chain.receipts.insert(
                key.clone(),
                saved
                    .receipts
                    .into_iter()
                    .map(|saved| (saved.message, saved.receipt))
                    .collect(),
            );
            if let Some(state) = saved.state {
                chain.states.insert(key.clone(), state);
            }
            chain.known.insert(key, saved.tipset);
        }
        for key in snapshot.canonical {
            let tipset =
                chain.known.get(&key).cloned().ok_or_else(|| {
                    CorruptSnapshot(format!("the canonical tipset {key} is missing"))
                })?;
            chain.canonical.push(tipset);
        }
        let head = chain
            .canonical
            .last()
            .ok_or_else(|| CorruptSnapshot("there is no genesis tipset".to_owned()))?;
        if !chain.states.contains_key(&head.key()) {
            return Err(CorruptSnapshot(format!(
                "the head {} has no state",
                head.key()
            )));
        }
        Ok(chain)
    }

    /// Records a message that was accepted and then lost (fault injection): it can be
    /// looked up but is never included.
    pub fn record_dropped(&mut self, message: SignedMessage) {
        self.dropped.push(message);
    }

    /// Forgets the state of tipsets too old to be reorganised away.
    fn prune(&mut self) {
        if self.canonical.len() <= RETAINED_STATES {
            return;
        }
        let oldest_kept = self.canonical[self.canonical.len() - RETAINED_STATES].height;
        let stale: Vec<TipSetKey> = self
            .known
            .values()
            .filter(|tipset| tipset.height < oldest_kept)
            .map(TipSet::key)
            .filter(|key| self.states.contains_key(key))
            .collect();
        for key in stale {
            self.states.remove(&key);
        }
    }

    /// The state read at a tipset (the empty key is the head): the state after every
    /// message of its ancestors, as Lotus's state calls read it.
    pub fn state(&self, key: &TipSetKey) -> Option<&WorldState> {
        let tipset = self.tipset(key)?;
        self.states.get(&tipset.key())
    }

    /// Adds a signed message to the pool. Fault injection may delay its inclusion by
    /// `extra_delay` epochs, or make it run out of gas.
    pub fn push(&mut self, message: SignedMessage, extra_delay: ChainEpoch, out_of_gas: bool) {
        let ready = self.head().height + self.rules.inclusion_delay.max(1) + extra_delay.max(0);
        self.pool.push(Pending {
            message,
            ready,
            out_of_gas,
        });
    }

    /// Whether a message with this CID is waiting in the pool.
    pub fn pending(&self, message: &Cid) -> bool {
        self.pool
            .iter()
            .any(|pending| &pending.message.cid() == message)
    }

    /// Drops a pending message (fault injection: a message the network lost).
    pub fn drop_pending(&mut self, message: &Cid) -> bool {
        let before = self.pool.len();
        self.pool
            .retain(|pending| &pending.message.cid() != message);
        before != self.pool.len()
    }

    /// A message the chain has seen (pending, included or reverted), by CID.
    pub fn message(&self, cid: &Cid) -> Option<SignedMessage> {
        self.pool
            .iter()
            .chain(self.included.values().flatten())
            .map(|pending| &pending.message)
            .chain(self.dropped.iter())
            .find(|message| &message.cid() == cid)
            .cloned()
    }

    /// The messages the tipset `key` includes (executed by its child), in order.
    pub fn included_in(&self, key: &TipSetKey) -> Vec<SignedMessage> {
        self.included
            .get(key)
            .map(|messages| {
                messages
                    .iter()
                    .map(|pending| pending.message.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where a message was executed on the chain ending at `from`, if it was.
    pub fn search(&self, cid: &Cid, from: &TipSetKey) -> Option<Executed> {
        let mut child: Option<&TipSet> = None;
        let mut current = self.tipset(from)?;
        loop {
            let includes = self.included.get(&current.key()).is_some_and(|messages| {
                messages.iter().any(|pending| &pending.message.cid() == cid)
            });
            if includes {
                let executed = child?;
                let receipt = self
                    .receipts
                    .get(&executed.key())?
                    .iter()
                    .find(|(message, _)| message == cid)
                    .map(|(_, receipt)| receipt.clone())?;
                return Some(Executed {
                    tipset: executed.clone(),
                    receipt,
                });
            }
            child = Some(current);
            current = self.known.get(&current.parents())?;
        }
    }

    /// Runs `message` on the state read at `key` without keeping the result
    /// (`StateCall`).
    pub fn call(
        &self,
        message: &fvm_shared::message::Message,
        key: &TipSetKey,
        verifier: &dyn ProofVerifier,
    ) -> Option<MessageReceipt> {
        let tipset = self.tipset(key)?.clone();
        let mut state = self.states.get(&tipset.key())?.clone();
        let context = Context {
            chain: self,
            at: tipset.key(),
            verifier,
        };
        Some(state.execute(
            message,
            tipset.height,
            self.rules.pre_commit_challenge_delay,
            &context,
        ))
    }

    /// The receipts a block's tipset carries (those of its parent's messages).
    pub fn parent_receipts(&self, block: &Cid) -> Option<Vec<MessageReceipt>> {
        let tipset = self
            .known
            .values()
            .find(|tipset| tipset.cids.contains(block))?;
        Some(
            self.receipts
                .get(&tipset.key())
                .into_iter()
                .flatten()
                .map(|(_, receipt)| receipt.clone())
                .collect(),
        )
    }

    /// Executes `parent`'s messages on its state: the state and receipts of its child.
    fn execute(
        &self,
        parent: &TipSet,
        verifier: &dyn ProofVerifier,
    ) -> (WorldState, Vec<(Cid, MessageReceipt)>) {
        let mut state = self.states.get(&parent.key()).cloned().unwrap_or_default();
        let context = Context {
            chain: self,
            at: parent.key(),
            verifier,
        };
        let mut receipts = Vec::new();
        for pending in self.included.get(&parent.key()).into_iter().flatten() {
            if pending.out_of_gas {
                let receipt = MessageReceipt {
                    exit_code: 7,
                    r#return: Vec::new(),
                    gas_used: pending.message.message.gas_limit as i64,
                    events_root: None,
                };
                receipts.push((pending.message.cid(), receipt));
                continue;
            }
            let receipt = state.execute(
                &pending.message.message,
                parent.height,
                self.rules.pre_commit_challenge_delay,
                &context,
            );
            receipts.push((pending.message.cid(), receipt));
        }
        state.end_of_epoch(parent.height);
        (state, receipts)
    }

    /// Makes a tipset on the head: executes the head's messages, then includes the pool's
    /// messages that have waited long enough.
    fn extend(
        &mut self,
        timestamp: u64,
        verifier: &dyn ProofVerifier,
        author: Option<&BlockAuthor>,
    ) -> TipSet {
        let head = self.head().clone();
        let (state, receipts) = self.execute(&head, verifier);
        let next = self.make_tipset(head.height + 1, &head.key(), timestamp, author);
        let (include, keep): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pool)
            .into_iter()
            .partition(|pending| pending.ready <= next.height);
        self.pool = keep;
        self.included.insert(next.key(), include);
        self.states.insert(next.key(), state);
        self.receipts.insert(next.key(), receipts);
        self.known.insert(next.key(), next.clone());
        self.canonical.push(next.clone());
        self.prune();
        next
    }

    /// The head.
    pub fn head(&self) -> &TipSet {
        // The chain always holds at least its genesis tipset.
        &self.canonical[self.canonical.len() - 1]
    }

    /// The genesis tipset.
    pub fn genesis_tipset(&self) -> &TipSet {
        &self.canonical[0]
    }

    /// The canonical chain, genesis first.
    pub fn canonical(&self) -> &[TipSet] {
        &self.canonical
    }

    /// A tipset by key (the empty key is the head), including reverted ones.
    pub fn tipset(&self, key: &TipSetKey) -> Option<&TipSet> {
        if key.0.is_empty() {
            return Some(self.head());
        }
        self.known.get(key)
    }

    /// The tipset at `height` on the chain ending at `from`, or the last one before it.
    pub fn tipset_at_or_before(&self, height: ChainEpoch, from: &TipSetKey) -> Option<&TipSet> {
        let mut current = self.tipset(from)?;
        while current.height > height {
            current = self.known.get(&current.parents())?;
        }
        Some(current)
    }

    /// The tipset at `height`, or the first after it, on the chain ending at `from`.
    pub fn tipset_at_or_after(&self, height: ChainEpoch, from: &TipSetKey) -> Option<&TipSet> {
        let mut current = self.tipset(from)?;
        if current.height < height {
            return None;
        }
        loop {
            let parent = self.known.get(&current.parents());
            match parent {
                Some(parent) if parent.height >= height => current = parent,
                _ => return Some(current),
            }
        }
    }

    /// The beacon entry of an epoch; the same on every fork, like drand's.
    pub fn beacon_entry(&self, epoch: ChainEpoch) -> BeaconEntry {
        let round = epoch.max(0) as u64;
        BeaconEntry {
            round,
            data: signature_like(&[&self.seed, b"beacon", &round.to_be_bytes()]),
        }
    }

    fn make_tipset(
        &self,
        height: ChainEpoch,
        parents: &TipSetKey,
        timestamp: u64,
        author: Option<&BlockAuthor>,
    ) -> TipSet {
        let height_bytes = height.to_be_bytes();
        let fork_bytes = self.forks.to_be_bytes();
        let ticket = signature_like(&[&self.seed, b"ticket", &height_bytes, &fork_bytes]);
        let header = BlockHeader {
            miner: author.map_or(Address::new_id(BLOCK_PRODUCER), |author| author.miner),
            ticket: Some(Ticket { vrf_proof: ticket }),
            election_proof: Some(ElectionProof {
                win_count: 1,
                vrf_proof: signature_like(&[&self.seed, b"election", &height_bytes, &fork_bytes]),
            }),
            beacon_entries: vec![self.beacon_entry(height)],
            win_post_proof: author.map_or_else(Vec::new, |author| author.win_post_proof.clone()),
            parents: parents.0.clone(),
            parent_weight: height.into(),
            height,
            parent_state_root: label_cid(&format!("state/{parents}")),
            parent_message_receipts: label_cid(&format!("receipts/{parents}")),
            messages: label_cid(&format!("messages/{height}/{}", self.forks)),
            bls_aggregate: None,
            timestamp,
            block_sig: None,
            fork_signaling: 0,
            parent_base_fee: TokenAmount::from_atto(100),
        };
        TipSet {
            cids: vec![block_header_cid(&header)],
            blocks: vec![header],
            height,
        }
    }

    /// Makes the next tipset on the head at `timestamp`, from the devnet's own block
    /// producer; returns the head change.
    pub fn produce(&mut self, timestamp: u64, verifier: &dyn ProofVerifier) -> Vec<HeadChange> {
        self.produce_by(timestamp, verifier, None)
    }

    /// Makes the next tipset on the head at `timestamp`, its block mined by `author` (a
    /// storage miner that won the round, with its winning PoSt) or, with none, by the
    /// devnet's own producer; returns the head change.
    pub fn produce_by(
        &mut self,
        timestamp: u64,
        verifier: &dyn ProofVerifier,
        author: Option<&BlockAuthor>,
    ) -> Vec<HeadChange> {
        let next = self.extend(timestamp, verifier, author);
        vec![HeadChange {
            change: HeadChangeType::Apply,
            tipset: next,
        }]
    }

    /// Replaces the top `depth` tipsets with `depth + 1` new ones (a heavier fork), as one
    /// batch of head changes: reverts from the top, then applies from the fork point.
    /// The genesis tipset is never reverted. The reverted tipsets' messages return to the
    /// pool, ahead of newer ones, and the new fork includes and executes them again.
    pub fn reorganise(
        &mut self,
        depth: usize,
        timestamp: u64,
        verifier: &dyn ProofVerifier,
    ) -> Vec<HeadChange> {
        let depth = depth.min(self.canonical.len() - 1).min(RETAINED_STATES - 1);
        self.forks += 1;
        let mut changes = Vec::new();
        let mut returned = Vec::new();
        for _ in 0..depth {
            if let Some(reverted) = self.canonical.pop() {
                if let Some(messages) = self.included.get(&reverted.key()) {
                    returned.splice(0..0, messages.iter().cloned());
                }
                changes.push(HeadChange {
                    change: HeadChangeType::Revert,
                    tipset: reverted,
                });
            }
        }
        returned.append(&mut self.pool);
        self.pool = returned;
        for _ in 0..=depth {
            let next = self.extend(timestamp, verifier, None);
            changes.push(HeadChange {
                change: HeadChangeType::Apply,
                tipset: next,
            });
        }
        changes
    }

    fn check_epoch(
        &self,
        epoch: ChainEpoch,
        from: &TipSetKey,
    ) -> Result<ChainEpoch, RandomnessError> {
        let head = self
            .tipset(from)
            .map_or(self.head().height, |tipset| tipset.height);
        if epoch > head {
            return Err(RandomnessError::Future { epoch, head });
        }
        Ok(epoch.max(0))
    }

    /// The ticket digest of an epoch: blake2b of the ticket of the tipset at (or last
    /// before) it on the chain ending at `from`.
    pub fn ticket_digest(
        &self,
        epoch: ChainEpoch,
        from: &TipSetKey,
    ) -> Result<[u8; 32], RandomnessError> {
        let epoch = self.check_epoch(epoch, from)?;
        let tipset = self
            .tipset_at_or_before(epoch, from)
            .unwrap_or_else(|| self.genesis_tipset());
        let ticket = tipset
            .blocks
            .iter()
            .filter_map(|block| block.ticket.as_ref())
            .map(|ticket| ticket.vrf_proof.clone())
            .min()
            .unwrap_or_default();
        Ok(blake2b(&[&ticket]))
    }

    /// The beacon digest of an epoch.
    pub fn beacon_digest(
        &self,
        epoch: ChainEpoch,
        from: &TipSetKey,
    ) -> Result<[u8; 32], RandomnessError> {
        let epoch = self.check_epoch(epoch, from)?;
        Ok(blake2b(&[&self.beacon_entry(epoch).data]))
    }

    /// Lotus's randomness: blake2b(i64 domain || digest || i64 epoch || entropy).
    pub fn draw(domain: i64, digest: &[u8; 32], epoch: ChainEpoch, entropy: &[u8]) -> [u8; 32] {
        blake2b(&[&domain.to_be_bytes(), digest, &epoch.to_be_bytes(), entropy])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AcceptAll;

    impl ProofVerifier for AcceptAll {
        fn verify(&self, _: &proofs::SealToVerify) -> bool {
            true
        }

        fn verify_post(&self, _: &proofs::tasks::PostTask, _: &proofs::tasks::PostOutput) -> bool {
            true
        }
    }

    const RULES: ChainRules = ChainRules {
        inclusion_delay: 0,
        pre_commit_challenge_delay: 10,
    };

    #[test]
    fn the_chain_grows_reorganises_and_draws_fork_dependent_ticket_randomness() {
        let mut chain = Chain::genesis([7; 32], 1_000, RULES, WorldState::default());
        for second in 1..=5 {
            chain.produce(1_000 + second, &AcceptAll);
        }
        assert_eq!(chain.head().height, 5);
        let before = chain
            .ticket_digest(4, &TipSetKey::head())
            .expect("a digest");
        let beacon_before = chain
            .beacon_digest(4, &TipSetKey::head())
            .expect("a digest");
        let old_head = chain.head().key();
        let changes = chain.reorganise(2, 2_000, &AcceptAll);
        let kinds: Vec<_> = changes.iter().map(|change| change.change.clone()).collect();
        assert_eq!(
            kinds,
            [
                HeadChangeType::Revert,
                HeadChangeType::Revert,
                HeadChangeType::Apply,
                HeadChangeType::Apply,
                HeadChangeType::Apply
            ]
        );
        assert_eq!(changes[0].tipset.height, 5, "reverts come from the top");
        assert_eq!(
            changes[2].tipset.height, 4,
            "applies start at the fork point"
        );
        assert_eq!(chain.head().height, 6);
        assert_ne!(
            chain.ticket_digest(4, &TipSetKey::head()),
            Ok(before),
            "tickets differ on the fork"
        );
        assert_eq!(
            chain.beacon_digest(4, &TipSetKey::head()),
            Ok(beacon_before),
            "the beacon does not"
        );
        assert!(
            chain.tipset(&old_head).is_some(),
            "a reverted tipset can still be looked up"
        );
        assert_eq!(
            chain.ticket_digest(4, &old_head),
            Ok(before),
            "and draws from its own chain"
        );
        assert_eq!(
            chain.ticket_digest(7, &TipSetKey::head()),
            Err(RandomnessError::Future { epoch: 7, head: 6 })
        );
        let again = {
            let mut twin = Chain::genesis([7; 32], 1_000, RULES, WorldState::default());
            for second in 1..=5 {
                twin.produce(1_000 + second, &AcceptAll);
            }
            twin.head().key()
        };
        assert_eq!(again, old_head, "one seed, one chain");
    }
}
