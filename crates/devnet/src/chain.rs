//! The devnet's chain, pure: tipsets made on demand, reorganisations, and the randomness
//! Lotus draws from tickets and the beacon.
//!
//! Nothing here reads a clock or a disk: the server calls [`Chain::produce`] with the
//! time for each block and [`Chain::reorganise`] when a reorganisation is injected.
//! Everything is derived from a seed, so two devnets with one seed make the same chain.
//! Block CIDs are real: each header is hashed as Lotus hashes it.

use std::collections::HashMap;

use chain_client::message::block_header_cid;
use chain_client::types::{
    BeaconEntry, BlockHeader, ElectionProof, HeadChange, HeadChangeType, Ticket, TipSet, TipSetKey,
};
use cid::Cid;
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use multihash_codetable::{Code, MultihashDigest as _};

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

/// The chain.
#[derive(Clone, Debug)]
pub struct Chain {
    seed: [u8; 32],
    /// The canonical chain, genesis first.
    canonical: Vec<TipSet>,
    /// Every tipset ever made, by key, so a reverted one can still be looked up.
    known: HashMap<TipSetKey, TipSet>,
    /// How many reorganisations have happened; it salts new tickets so a fork differs.
    forks: u64,
}

impl Chain {
    /// A chain holding only its genesis tipset, made at `genesis_timestamp`.
    pub fn genesis(seed: [u8; 32], genesis_timestamp: u64) -> Chain {
        let mut chain = Chain {
            seed,
            canonical: Vec::new(),
            known: HashMap::new(),
            forks: 0,
        };
        let genesis = chain.make_tipset(0, &TipSetKey::head(), genesis_timestamp);
        chain.known.insert(genesis.key(), genesis.clone());
        chain.canonical.push(genesis);
        chain
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

    fn make_tipset(&self, height: ChainEpoch, parents: &TipSetKey, timestamp: u64) -> TipSet {
        let height_bytes = height.to_be_bytes();
        let fork_bytes = self.forks.to_be_bytes();
        let ticket = signature_like(&[&self.seed, b"ticket", &height_bytes, &fork_bytes]);
        let header = BlockHeader {
            miner: Address::new_id(BLOCK_PRODUCER),
            ticket: Some(Ticket { vrf_proof: ticket }),
            election_proof: Some(ElectionProof {
                win_count: 1,
                vrf_proof: signature_like(&[&self.seed, b"election", &height_bytes, &fork_bytes]),
            }),
            beacon_entries: vec![self.beacon_entry(height)],
            win_post_proof: vec![],
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

    /// Makes the next tipset on the head at `timestamp`; returns the head change.
    pub fn produce(&mut self, timestamp: u64) -> Vec<HeadChange> {
        let head = self.head().clone();
        let next = self.make_tipset(head.height + 1, &head.key(), timestamp);
        self.known.insert(next.key(), next.clone());
        self.canonical.push(next.clone());
        vec![HeadChange {
            change: HeadChangeType::Apply,
            tipset: next,
        }]
    }

    /// Replaces the top `depth` tipsets with `depth + 1` new ones (a heavier fork), as one
    /// batch of head changes: reverts from the top, then applies from the fork point.
    /// The genesis tipset is never reverted.
    pub fn reorganise(&mut self, depth: usize, timestamp: u64) -> Vec<HeadChange> {
        let depth = depth.min(self.canonical.len() - 1);
        self.forks += 1;
        let mut changes = Vec::new();
        for _ in 0..depth {
            if let Some(reverted) = self.canonical.pop() {
                changes.push(HeadChange {
                    change: HeadChangeType::Revert,
                    tipset: reverted,
                });
            }
        }
        for _ in 0..=depth {
            let head = self.head().clone();
            let next = self.make_tipset(head.height + 1, &head.key(), timestamp);
            self.known.insert(next.key(), next.clone());
            self.canonical.push(next.clone());
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

    #[test]
    fn the_chain_grows_reorganises_and_draws_fork_dependent_ticket_randomness() {
        let mut chain = Chain::genesis([7; 32], 1_000);
        for second in 1..=5 {
            chain.produce(1_000 + second);
        }
        assert_eq!(chain.head().height, 5);
        let before = chain
            .ticket_digest(4, &TipSetKey::head())
            .expect("a digest");
        let beacon_before = chain
            .beacon_digest(4, &TipSetKey::head())
            .expect("a digest");
        let old_head = chain.head().key();
        let changes = chain.reorganise(2, 2_000);
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
            let mut twin = Chain::genesis([7; 32], 1_000);
            for second in 1..=5 {
                twin.produce(1_000 + second);
            }
            twin.head().key()
        };
        assert_eq!(again, old_head, "one seed, one chain");
    }
}
