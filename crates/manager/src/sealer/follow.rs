//! The chain as the API calls see it, read before they ask: a follower that reads each
//! new head together with what calls will ask at it, and the landing checks of executed
//! messages, so that in the usual course no worker's call waits on the chain node.
//!
//! Every answer read ahead is the same answer a call would read itself (same question,
//! same tipset, kept in [`crate::chain_reads`]); reading ahead only moves the wait off the
//! calls. When the follower is not running (or its head is older than
//! [`super::FOLLOWED_HEAD_MAX_AGE`]) a call reads the head itself, as before; a seed
//! request or a proof submission finding no landing check reads the chain itself, and a
//! poll answers Packed until the check is done.

use std::collections::HashMap;
use std::sync::Arc;

use chain_client::types::TipSet;
use chain_client::{LotusClient, transport::HttpTransport};
use fvm_shared::address::Address;

use super::{ApiError, HEAD_REUSE, Manager, randomness_tag, ticket_epoch};
use crate::db::{Database, MessageRow, MessageState, Purpose};
use crate::landing::{LandingCheck, LandingLookup, SectorLanding};

/// A wanted seed is read ahead until this many epochs after it became ready; a worker
/// asking later than that reads it itself.
const SEED_READ_AHEAD_EPOCHS: i64 = 20;

impl Manager {
    /// Follows the chain's head until `stop` turns true: every half [`HEAD_REUSE`] it
    /// reads the head, and when the head changed it reads ahead what the calls will ask
    /// at it (each miner's allocated numbers, its ticket randomness, the seeds workers
    /// wait for) before making it the head the calls use.
    pub async fn follow_chain(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut read_ahead_at = None;
        loop {
            if let Err(error) = self.follow_head(&mut read_ahead_at).await {
                // The calls read the chain themselves meanwhile and report its errors.
                tracing::debug!(%error, "following the chain's head failed; trying again");
            }
            tokio::select! {
                () = tokio::time::sleep(HEAD_REUSE / 2) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// One step of [`Self::follow_chain`]; `read_ahead_at` is the key of the last head
    /// read ahead at.
    async fn follow_head(
        &self,
        read_ahead_at: &mut Option<chain_client::types::TipSetKey>,
    ) -> Result<(), ApiError> {
        let read_at = std::time::Instant::now();
        let head = self.chain.chain_head().await?;
        let key = head.key();
        if read_ahead_at.as_ref() != Some(&key) {
            self.read_ahead(&head).await;
            *read_ahead_at = Some(key);
        }
        self.keep_head(read_at, &head, true);
        Ok(())
    }

    /// Reads at `head` what the calls will ask there. A failed read is only logged: the
    /// call that needs it reads it again.
    async fn read_ahead(&self, head: &TipSet) {
        let key = head.key();
        for miner in self
            .miners
            .values()
            .filter(|miner| miner.config.sector.enabled)
        {
            if let Err(error) = self.allocated_on_chain(miner, &key).await {
                tracing::debug!(miner = miner.config.actor, %error, "reading ahead the allocated numbers failed");
            }
            let epoch = ticket_epoch(head.height, miner);
            if epoch < head.height
                && let Err(error) = self
                    .randomness(miner, randomness_tag::SEAL_RANDOMNESS, epoch, &key)
                    .await
            {
                tracing::debug!(miner = miner.config.actor, %error, "reading ahead the ticket randomness failed");
            }
        }
        for (actor, seed_epoch) in self.seeds_ready_at(head.height) {
            let Some(miner) = self.miners.get(&actor) else {
                continue;
            };
            if let Err(error) = self
                .randomness(
                    miner,
                    randomness_tag::INTERACTIVE_SEAL_CHALLENGE_SEED,
                    seed_epoch,
                    &key,
                )
                .await
            {
                tracing::debug!(miner = actor, seed_epoch, %error, "reading ahead a seed failed");
            }
        }
    }

    /// Notes that workers will ask for the seed of `miner` at `seed_epoch` once the head
    /// reaches `ready_at`.
    pub(super) fn want_seed(&self, miner: u64, seed_epoch: i64, ready_at: i64) {
        if let Ok(mut wanted) = self.wanted_seeds.lock() {
            wanted.insert((miner, seed_epoch), ready_at);
        }
    }

    /// The wanted seeds ready at `height`, forgetting those ready long enough that their
    /// workers have asked.
    fn seeds_ready_at(&self, height: i64) -> Vec<(u64, i64)> {
        let Ok(mut wanted) = self.wanted_seeds.lock() else {
            return Vec::new();
        };
        wanted.retain(|_, ready_at| *ready_at + SEED_READ_AHEAD_EPOCHS >= height);
        wanted
            .iter()
            .filter(|(_, ready_at)| **ready_at <= height)
            .map(|(seed, _)| *seed)
            .collect()
    }

    /// The landing check of the sectors `message` (executed, with exit code 0) carries:
    /// the check if done, else `None`, and the check is started in the background at
    /// `head` unless it already runs. However many callers ask, one check per message
    /// (and executing tipset) reads the chain.
    pub(crate) fn request_landing_check(
        &self,
        message: &MessageRow,
        head: &TipSet,
    ) -> Option<Arc<LandingCheck>> {
        let tipset = message.executed_tipset.as_deref()?;
        match self.landings.lookup_or_claim(message.id, tipset) {
            LandingLookup::Checked(check) => Some(check),
            LandingLookup::Running => None,
            LandingLookup::RunIt => {
                let chain = self.chain.clone();
                let db = self.db.clone();
                let landings = Arc::clone(&self.landings);
                let (id, miner, purpose) = (message.id, message.miner, message.purpose);
                let tipset = tipset.to_owned();
                let head = head.clone();
                tokio::spawn(async move {
                    let outcome = match check_landing(&chain, &db, id, miner, purpose, &head).await
                    {
                        Ok(check) => {
                            tracing::debug!(
                                id,
                                sectors = check.sectors.len(),
                                height = check.read_at_height,
                                "checked where a message's sectors landed"
                            );
                            Some(check)
                        }
                        Err(error) => {
                            tracing::warn!(id, %error, "checking where a message's sectors landed failed; checking again when asked");
                            None
                        }
                    };
                    landings.finish(id, &tipset, outcome);
                });
                None
            }
        }
    }

    /// The sector's precommit as the landing check of its precommit message found it,
    /// if that message landed and its check is done.
    pub(crate) fn landed_pre_commit(
        &self,
        number: u64,
        pre_message: Option<&MessageRow>,
    ) -> Option<chain_client::types::SectorPreCommitOnChainInfo> {
        let message = pre_message?;
        if !matches!(message.state, MessageState::Executed | MessageState::Final)
            || message.exit_code != Some(0)
        {
            return None;
        }
        let check = self
            .landings
            .checked(message.id, message.executed_tipset.as_deref()?)?;
        check.sectors.get(&number)?.pre_commit.clone()
    }
}

/// Reads at `head` whether each sector of message `id` (for `miner`'s `purpose`) landed.
async fn check_landing(
    chain: &LotusClient<HttpTransport>,
    db: &Database,
    id: i64,
    miner: u64,
    purpose: Purpose,
    head: &TipSet,
) -> Result<LandingCheck, ApiError> {
    let address = Address::new_id(miner);
    let key = head.key();
    let mut sectors = HashMap::new();
    for number in db.message_sectors(id).await? {
        let pre_commit = match purpose {
            Purpose::PreCommit => {
                chain
                    .state_sector_pre_commit_info(&address, number, &key)
                    .await?
            }
            Purpose::ProveCommit => None,
        };
        // A proven sector has no precommit any more; for a precommit message it landed
        // all the same.
        let landed = pre_commit.is_some()
            || chain
                .state_sector_get_info(&address, number, &key)
                .await?
                .is_some();
        sectors.insert(number, SectorLanding { landed, pre_commit });
    }
    Ok(LandingCheck {
        read_at_height: head.height,
        sectors,
    })
}
