//! The commit manager's driver: forms batches of waiting sectors into outbox messages,
//! pushes them to the node, and follows them on chain through reorganisations.
//!
//! The outbox makes sending crash-safe. A message is first recorded, with the sectors it
//! carries and a `MsgUuid`, in one transaction; only then is it pushed with that
//! `MsgUuid`, which Lotus's `MpoolPushMessage` answers with the same signed message when
//! it sees it again. A crash before the push leaves a recorded row that is pushed at the
//! next start; a crash after it leaves a row whose repeated push returns the message
//! already in the pool. So no sector is ever sent twice and no message is forgotten.

use std::sync::Arc;
use std::time::Duration;

use chain_client::message::{self, CommitProofs, SectorActivation};
use chain_client::types::{MessageSendSpec, SectorPreCommitInfo, SignedMessage, TipSet, TipSetKey};
use fvm_shared::address::Address;
use fvm_shared::commcid::replica_commitment_v1_to_cid;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use fvm_shared::sector::RegisteredSealProof;

use crate::commit::{WaitingSector, due_batches, message_uuid};
use crate::db::{MessageRow, MessageState, Purpose, SectorRow};
use crate::sealer::{Manager, MinerFacts, unix_now};

/// Epochs per day.
const EPOCHS_PER_DAY: i64 = 2880;
/// The shortest lifetime a sector may be committed for (180 days).
const MIN_SECTOR_EXPIRATION: i64 = 180 * EPOCHS_PER_DAY;
/// The longest (`MaxSectorExpirationExtension`, 1278 days since network version 21).
const MAX_SECTOR_EXPIRATION_EXTENSION: i64 = 1278 * EPOCHS_PER_DAY;
/// Epochs after which an executed message cannot be reverted (the chain finality).
const FINALITY: i64 = 900;
/// Most sectors in one message (the actors' batch limits are higher; this keeps a
/// message's gas reasonable).
const MAX_SECTORS_PER_MESSAGE: usize = 256;
/// Epochs a message may stay unexecuted after its sender's nonce passed it.
const NONCE_GRACE_EPOCHS: i64 = 5;
/// Epochs between two rebroadcasts (and nonce checks) of a message still waiting.
const REBROADCAST_EPOCHS: i64 = 3;
/// Pushes tried before a message is given up (the worker then resubmits).
const MAX_PUSH_ATTEMPTS: i64 = 5;

/// The environment variable naming crash points for tests of crash safety:
/// `after_create:0.3,after_push:0.3` makes the process abort (as `kill -9` would stop
/// it, with no clean-up) right after recording a message, or right after the node
/// accepted it and before that is recorded, with those probabilities. Unset in
/// production, where the points cost one lookup in an empty list.
pub const CRASH_POINTS_ENVIRONMENT: &str = "SECTOR_MANAGER_CRASH_POINTS";

fn crash_point(name: &str) {
    static POINTS: std::sync::OnceLock<Vec<(String, f64)>> = std::sync::OnceLock::new();
    let points = POINTS.get_or_init(|| {
        std::env::var(CRASH_POINTS_ENVIRONMENT)
            .unwrap_or_default()
            .split(',')
            .filter_map(|entry| {
                let (point, probability) = entry.split_once(':')?;
                Some((point.trim().to_owned(), probability.trim().parse().ok()?))
            })
            .collect()
    });
    if let Some((_, probability)) = points.iter().find(|(point, _)| point == name)
        && rand::random::<f64>() < *probability
    {
        tracing::error!(
            point = name,
            "aborting at a crash point ({CRASH_POINTS_ENVIRONMENT})"
        );
        std::process::abort();
    }
}

/// The commit manager: one pass per tick over every configured miner.
pub struct CommitManager {
    manager: Arc<Manager>,
    /// Per pushed message not yet executed: the head height it was last rebroadcast or
    /// checked at. A pass runs every tick, far more often than blocks come; this keeps
    /// the node from being asked about the same waiting message on every pass.
    last_rebroadcast: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
}

/// The expiration of a committed-capacity sector precommitted at `head` with
/// `lifetime_days`, clamped to what the actors accept.
pub fn cc_expiration(head: i64, lifetime_days: u64, challenge_delay: i64) -> i64 {
    let wanted = i64::try_from(lifetime_days)
        .unwrap_or(i64::MAX / EPOCHS_PER_DAY)
        .saturating_mul(EPOCHS_PER_DAY);
    // The sector activates after the challenge delay and a proof; the minimum counts from
    // activation, so leave two days of room.
    let lowest = MIN_SECTOR_EXPIRATION + challenge_delay + 2 * EPOCHS_PER_DAY;
    let highest = MAX_SECTOR_EXPIRATION_EXTENSION;
    head + wanted.clamp(lowest, highest)
}

impl CommitManager {
    /// A commit manager for `manager`.
    pub fn new(manager: Arc<Manager>) -> CommitManager {
        CommitManager {
            manager,
            last_rebroadcast: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Runs passes until `stop` turns true, `tick` apart.
    pub async fn run(self, tick: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "commit pass failed; trying again next tick");
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// One pass: form due batches, push recorded messages, follow pushed ones.
    pub async fn pass(&self) -> anyhow::Result<()> {
        let head = self.manager.chain.chain_head().await?;
        for miner in self.manager.miners.values() {
            for purpose in [Purpose::PreCommit, Purpose::ProveCommit] {
                if let Err(error) = self.form_batches(miner, purpose, &head).await {
                    tracing::warn!(miner = miner.config.actor, purpose = purpose.as_str(), %error, "forming a batch failed");
                }
            }
        }
        for message in self
            .manager
            .db
            .messages_in(&[MessageState::Created])
            .await?
        {
            self.push(&message).await?;
        }
        for message in self
            .manager
            .db
            .messages_in(&[MessageState::Pushed, MessageState::Executed])
            .await?
        {
            self.follow(&message, &head).await?;
        }
        Ok(())
    }

    async fn form_batches(
        &self,
        miner: &MinerFacts,
        purpose: Purpose,
        head: &TipSet,
    ) -> anyhow::Result<()> {
        let db = &self.manager.db;
        let rows = db.waiting_for_message(miner.config.actor, purpose).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let (batch, waiting) = match purpose {
            Purpose::PreCommit => (
                &miner.config.commitment.pre.batch,
                rows.iter()
                    .filter_map(|row| {
                        let pre = row.pre.as_ref()?;
                        // A ticket must be used before it is too old; leave a day of room.
                        let epochs_left = pre.ticket_epoch
                            + crate::sealer::MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK
                            - EPOCHS_PER_DAY / 2
                            - head.height;
                        let send_by = unix_now()
                            + epochs_left.max(0)
                                * i64::try_from(self.manager.block_delay_secs).unwrap_or(30);
                        Some(WaitingSector {
                            number: row.number,
                            waiting_since: pre.submitted_at,
                            send_by: Some(send_by),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            Purpose::ProveCommit => (
                &miner.config.commitment.prove.batch,
                rows.iter()
                    .map(|row| WaitingSector {
                        number: row.number,
                        waiting_since: row.proof_submitted_at.unwrap_or_else(unix_now),
                        send_by: None,
                    })
                    .collect(),
            ),
        };
        for numbers in due_batches(&waiting, batch, MAX_SECTORS_PER_MESSAGE, unix_now()) {
            let sectors: Vec<&SectorRow> = rows
                .iter()
                .filter(|row| numbers.contains(&row.number))
                .collect();
            let (method, params, value) = match purpose {
                Purpose::PreCommit => self.pre_commit_message(miner, &sectors, head).await?,
                Purpose::ProveCommit => self.prove_commit_message(miner, &sectors, head).await?,
            };
            let max_fee = match purpose {
                Purpose::PreCommit => &miner.config.commitment.pre.max_fee,
                Purpose::ProveCommit => &miner.config.commitment.prove.max_fee,
            };
            let uuid = message_uuid(rand::random());
            let created = db
                .create_message(
                    miner.config.actor,
                    purpose,
                    &uuid,
                    &miner.sender.to_string(),
                    method,
                    &params,
                    &value.atto().to_string(),
                    &max_fee.clone().unwrap_or_default().atto().to_string(),
                    &numbers,
                    unix_now(),
                )
                .await?;
            if created.is_some() {
                crash_point("after_create");
            }
            match created {
                Some(id) => {
                    tracing::info!(
                        miner = miner.config.actor,
                        purpose = purpose.as_str(),
                        id,
                        ?numbers,
                        "batched sectors into a message"
                    );
                    self.mark_in_sector_traces(
                        miner.config.actor,
                        &numbers,
                        id,
                        purpose.as_str(),
                        "batched into a message",
                        None,
                    )
                    .await;
                }
                None => tracing::info!(
                    miner = miner.config.actor,
                    ?numbers,
                    "sectors changed while batching; forming the batch again next tick"
                ),
            }
        }
        Ok(())
    }

    /// Puts `event` of message `message` into the trace of every sector it carries.
    async fn mark_message(
        &self,
        message: &MessageRow,
        event: &'static str,
        detail: Option<String>,
    ) {
        if !telemetry::is_exporting() {
            return;
        }
        let sectors = match self.manager.db.message_sectors(message.id).await {
            Ok(sectors) => sectors,
            Err(error) => {
                tracing::debug!(id = message.id, %error, "could not read the message's sectors for tracing");
                return;
            }
        };
        self.mark_in_sector_traces(
            message.miner,
            &sectors,
            message.id,
            message.purpose.as_str(),
            event,
            detail,
        )
        .await;
    }

    /// A `message` span (purpose, id, event, detail) in the trace of each of `sectors`:
    /// a batch message carries many sectors, and each sector's trace shows what happened
    /// to the message that carries it.
    async fn mark_in_sector_traces(
        &self,
        miner: u64,
        sectors: &[u64],
        id: i64,
        purpose: &'static str,
        event: &'static str,
        detail: Option<String>,
    ) {
        if !telemetry::is_exporting() {
            return;
        }
        for number in sectors {
            let Some(traceparent) = self.manager.sector_traceparent(miner, *number).await else {
                continue;
            };
            let span = tracing::info_span!(
                "message",
                otel.name = format!("{purpose} message {event}"),
                miner,
                number,
                message = id,
                purpose,
                event,
                detail = detail.as_deref(),
            );
            telemetry::set_parent(&span, &traceparent);
            drop(span);
        }
    }

    /// The sector's precommit: as its message's landing check found it, else as the
    /// chain shows it at `head`.
    async fn pre_commit_of(
        &self,
        miner: &MinerFacts,
        row: &SectorRow,
        head: &TipSet,
    ) -> anyhow::Result<Option<chain_client::types::SectorPreCommitOnChainInfo>> {
        let pre_message = match row.pre_message {
            Some(id) => self.manager.db.message_without_sectors(id).await?,
            None => None,
        };
        if let Some(landed) = self
            .manager
            .landed_pre_commit(row.number, pre_message.as_deref())
        {
            return Ok(Some(landed));
        }
        Ok(self
            .manager
            .chain
            .state_sector_pre_commit_info(&miner.address, row.number, &head.key())
            .await?)
    }

    async fn pre_commit_message(
        &self,
        miner: &MinerFacts,
        sectors: &[&SectorRow],
        head: &TipSet,
    ) -> anyhow::Result<(u64, Vec<u8>, TokenAmount)> {
        let chain = &self.manager.chain;
        let mut infos = Vec::new();
        let mut deposit = TokenAmount::default();
        for row in sectors {
            let pre = row.pre.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "sector {} waits for a precommit message without a precommit",
                    row.number
                )
            })?;
            let comm_r: [u8; 32] = pre.comm_r.as_slice().try_into()?;
            let info = SectorPreCommitInfo {
                seal_proof: RegisteredSealProof::from(i64::try_from(row.proof_type)?),
                sector_number: row.number,
                sealed_cid: replica_commitment_v1_to_cid(&comm_r).map_err(anyhow::Error::msg)?,
                seal_rand_epoch: pre.ticket_epoch,
                deal_ids: Vec::new(),
                expiration: cc_expiration(
                    head.height,
                    miner.config.sector.lifetime_days,
                    self.manager.pre_commit_challenge_delay,
                ),
                unsealed_cid: None,
            };
            if miner.config.commitment.pre.send_fund {
                deposit += chain
                    .state_miner_pre_commit_deposit_for_power(&miner.address, &info, &head.key())
                    .await?;
            }
            infos.push(info);
        }
        let built = message::pre_commit_sector_batch2(
            miner.address,
            miner.sender,
            &infos,
            deposit.clone(),
        )?;
        Ok((built.method_num, built.params.to_vec(), deposit))
    }

    async fn prove_commit_message(
        &self,
        miner: &MinerFacts,
        sectors: &[&SectorRow],
        head: &TipSet,
    ) -> anyhow::Result<(u64, Vec<u8>, TokenAmount)> {
        let chain = &self.manager.chain;
        let mut activations = Vec::new();
        let mut proofs = Vec::new();
        let mut pledge = TokenAmount::default();
        for row in sectors {
            let proof = row.proof.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "sector {} waits for a proof message without a proof",
                    row.number
                )
            })?;
            let on_chain = if miner.config.commitment.prove.send_fund {
                self.pre_commit_of(miner, row, head).await?
            } else {
                None
            };
            if let Some(on_chain) = on_chain {
                let collateral = chain
                    .state_miner_initial_pledge_collateral(
                        &miner.address,
                        &on_chain.info,
                        &head.key(),
                    )
                    .await?;
                let owed = collateral - &on_chain.pre_commit_deposit;
                if owed.is_positive() {
                    pledge += owed;
                }
            }
            activations.push(SectorActivation {
                sector_number: row.number,
                pieces: Vec::new(),
            });
            proofs.push(proof);
        }
        // Aggregation (SnarkPack) needs the proofs adapter's aggregation, which does not
        // exist yet; every sector carries its own proof.
        let built = message::prove_commit_sectors3(
            miner.address,
            miner.sender,
            &activations,
            &CommitProofs::PerSector(proofs),
            pledge.clone(),
        )?;
        Ok((built.method_num, built.params.to_vec(), pledge))
    }

    fn unsigned(message: &MessageRow) -> anyhow::Result<Message> {
        Ok(Message {
            version: 0,
            from: chain_client::lotus_json::address::parse(&message.from_address)
                .map_err(anyhow::Error::msg)?,
            to: Address::new_id(message.miner),
            sequence: 0,
            value: TokenAmount::from_atto(message.value.parse::<u128>()?),
            method_num: message.method,
            params: message.params.clone().into(),
            gas_limit: 0,
            gas_fee_cap: TokenAmount::default(),
            gas_premium: TokenAmount::default(),
        })
    }

    async fn push(&self, message: &MessageRow) -> anyhow::Result<()> {
        let db = &self.manager.db;
        let unsigned = CommitManager::unsigned(message)?;
        let spec = MessageSendSpec {
            max_fee: TokenAmount::from_atto(message.max_fee.parse::<u128>()?),
            msg_uuid: message.msg_uuid.clone(),
            maximize_fee_cap: false,
        };
        match self
            .manager
            .chain
            .mpool_push_message(&unsigned, Some(&spec))
            .await
        {
            Ok(signed) => {
                crash_point("after_push");
                let cid = signed.cid().to_string();
                let text = serde_json::to_string(&signed)?;
                db.message_pushed(message.id, &cid, &text, unix_now())
                    .await?;
                tracing::info!(id = message.id, %cid, "pushed a message");
                self.mark_message(message, "pushed", Some(cid)).await;
            }
            Err(error) => {
                // A transport failure says nothing about the message; try again. The
                // node refusing it (gas estimation, funds) is counted and, after a few
                // tries, the message is given up so the worker resubmits.
                let give_up = error.kind != chain_client::ErrorKind::Transport
                    && message.push_attempts + 1 >= MAX_PUSH_ATTEMPTS;
                tracing::warn!(id = message.id, %error, give_up, "pushing a message failed");
                db.message_push_failed(message.id, &error.to_string(), give_up, unix_now())
                    .await?;
            }
        }
        Ok(())
    }

    async fn follow(&self, message: &MessageRow, head: &TipSet) -> anyhow::Result<()> {
        let db = &self.manager.db;
        let Some(cid) = message
            .signed_cid
            .as_deref()
            .and_then(|text| text.parse::<cid::Cid>().ok())
        else {
            return Ok(());
        };
        let lookup = self
            .manager
            .chain
            .state_search_msg(&TipSetKey::head(), &cid, -1, true)
            .await?;
        match lookup {
            Some(lookup) => {
                if let Ok(mut last) = self.last_rebroadcast.lock() {
                    last.remove(&message.id);
                }
                let tipset = serde_json::to_string(&lookup.tip_set).unwrap_or_default();
                if message.state != MessageState::Executed
                    || message.executed_height != Some(lookup.height)
                    || message.executed_tipset.as_deref() != Some(tipset.as_str())
                {
                    let receipt = format!(
                        "exit code {}, gas used {}, in the tipset at {}",
                        lookup.receipt.exit_code, lookup.receipt.gas_used, lookup.height
                    );
                    db.message_execution(
                        message.id,
                        Some((lookup.height, &tipset, lookup.receipt.exit_code, &receipt)),
                        unix_now(),
                    )
                    .await?;
                    tracing::info!(
                        id = message.id,
                        height = lookup.height,
                        exit_code = lookup.receipt.exit_code,
                        "message executed"
                    );
                    let detail = format!(
                        "at height {}, exit code {}",
                        lookup.height, lookup.receipt.exit_code
                    );
                    self.mark_message(message, "executed", Some(detail)).await;
                } else {
                    let confidence = self
                        .manager
                        .miners
                        .get(&message.miner)
                        .map_or(0, |miner| miner.config.commitment.confidence);
                    // Its sectors are checked on chain as soon as the workers' polls
                    // would ask, so that the polls find the answer ready.
                    if message.exit_code == Some(0) && head.height - lookup.height >= confidence {
                        self.manager.request_landing_check(message, head);
                    }
                    if head.height - lookup.height >= FINALITY {
                        db.message_final(message.id, unix_now()).await?;
                    }
                }
            }
            None => {
                if message.state == MessageState::Executed {
                    tracing::warn!(
                        id = message.id,
                        "a reorganisation reverted the message's execution; following it again"
                    );
                    db.message_execution(message.id, None, unix_now()).await?;
                }
                self.rebroadcast_or_bury(message, head).await?;
            }
        }
        Ok(())
    }

    /// A pushed message the chain has not executed. If its sender's nonce has moved
    /// past it and it stays unexecuted for a few epochs more (an included message is
    /// executed with the next tipset; a replacement would have been found by the search),
    /// another message took its nonce and it will never execute: it is marked failed, so
    /// the worker resubmits. Otherwise the identical signed message is pushed again,
    /// which a pool that lost it takes back and a pool that has it ignores.
    async fn rebroadcast_or_bury(&self, message: &MessageRow, head: &TipSet) -> anyhow::Result<()> {
        let Some(text) = &message.signed_message else {
            return Ok(());
        };
        if let Ok(mut last) = self.last_rebroadcast.lock() {
            // The first time a message is seen waiting it was just pushed: nothing to do.
            let since = *last.entry(message.id).or_insert(head.height);
            if head.height - since < REBROADCAST_EPOCHS {
                return Ok(());
            }
            last.insert(message.id, head.height);
        }
        let signed: SignedMessage = serde_json::from_str(text)?;
        let from = signed.message.from;
        let actor = self
            .manager
            .chain
            .state_get_actor(&from, &TipSetKey::head())
            .await?;
        if actor.nonce > signed.message.sequence {
            match message.nonce_passed_height {
                None => {
                    self.manager
                        .db
                        .message_nonce_passed(message.id, head.height, unix_now())
                        .await?;
                }
                Some(seen) if head.height - seen >= NONCE_GRACE_EPOCHS => {
                    self.manager
                        .db
                        .message_dead(
                            message.id,
                            &format!(
                                "nonce {} was used by another message",
                                signed.message.sequence
                            ),
                            unix_now(),
                        )
                        .await?;
                    tracing::warn!(
                        id = message.id,
                        "the message's nonce was used by another message; its sectors must be resubmitted"
                    );
                }
                Some(_) => {}
            }
            return Ok(());
        }
        match self.manager.chain.mpool_push(&signed).await {
            Ok(_) => {}
            Err(error) if error.kind == chain_client::ErrorKind::Transport => {
                return Err(error.into());
            }
            Err(error) => {
                tracing::debug!(id = message.id, %error, "the pool refused a rebroadcast (it likely holds the message)")
            }
        }
        Ok(())
    }
}
