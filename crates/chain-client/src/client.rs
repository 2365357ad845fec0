//! The typed Lotus API: one method per JSON-RPC method the manager and the poster use,
//! with Lotus's parameter order, over any [`Transport`], retrying transport failures
//! with backoff.
//!
//! Transport failures are retried and nothing else is: a method or permission failure
//! would fail the same way again. `MpoolPushMessage` is retried too, which is safe only
//! because callers give it a stable `MsgUuid` (the node then returns the message it
//! already signed instead of sending a second).

use std::time::Duration;

use ::cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::lotus_json::{self, to_value};
use crate::rpc::{ChainError, ErrorKind, Transport};
use crate::types::{
    Actor, Allocation, BeaconEntry, Deadline, DeadlineInfo, InvocResult, LotusMessage, MarketDeal,
    MessageLookup, MessageReceipt, MessageSendSpec, MinerInfo, MinerPower, MinerSectorCount,
    MiningBaseInfo, NetworkParams, NodeVersion, Partition, SectorExpiration, SectorLocation,
    SectorOnChainInfo, SectorPreCommitInfo, SectorPreCommitOnChainInfo, Signature, SignedMessage,
    TipSet, TipSetKey, TipSetSelector,
};

/// Every v1 method this client calls (`ChainNotify` through
/// [`crate::transport::WebSocketTransport::chain_notify`]); a node for the manager and the
/// poster must serve all of them.
pub const V1_METHODS: &[&str] = &[
    "Filecoin.AuthVerify",
    "Filecoin.ChainGetFinalizedTipSet",
    "Filecoin.ChainGetMessage",
    "Filecoin.ChainGetParentReceipts",
    "Filecoin.ChainGetTipSet",
    "Filecoin.ChainGetTipSetAfterHeight",
    "Filecoin.ChainGetTipSetByHeight",
    "Filecoin.ChainHead",
    "Filecoin.ChainNotify",
    "Filecoin.ChainReadObj",
    "Filecoin.GasEstimateFeeCap",
    "Filecoin.GasEstimateGasPremium",
    "Filecoin.GasEstimateMessageGas",
    "Filecoin.MinerGetBaseInfo",
    "Filecoin.MpoolGetNonce",
    "Filecoin.MpoolPush",
    "Filecoin.MpoolPushMessage",
    "Filecoin.StateAccountKey",
    "Filecoin.StateCall",
    "Filecoin.StateGetActor",
    "Filecoin.StateGetAllocation",
    "Filecoin.StateGetAllocationIdForPendingDeal",
    "Filecoin.StateGetBeaconEntry",
    "Filecoin.StateGetNetworkParams",
    "Filecoin.StateGetRandomnessDigestFromBeacon",
    "Filecoin.StateGetRandomnessDigestFromTickets",
    "Filecoin.StateGetRandomnessFromBeacon",
    "Filecoin.StateGetRandomnessFromTickets",
    "Filecoin.StateLookupID",
    "Filecoin.StateMarketStorageDeal",
    "Filecoin.StateMinerActiveSectors",
    "Filecoin.StateMinerAllocated",
    "Filecoin.StateMinerAvailableBalance",
    "Filecoin.StateMinerCreationDeposit",
    "Filecoin.StateMinerDeadlines",
    "Filecoin.StateMinerFaults",
    "Filecoin.StateMinerInfo",
    "Filecoin.StateMinerInitialPledgeCollateral",
    "Filecoin.StateMinerInitialPledgeForSector",
    "Filecoin.StateMinerPartitions",
    "Filecoin.StateMinerPower",
    "Filecoin.StateMinerPreCommitDepositForPower",
    "Filecoin.StateMinerProvingDeadline",
    "Filecoin.StateMinerRecoveries",
    "Filecoin.StateMinerSectorAllocated",
    "Filecoin.StateMinerSectorCount",
    "Filecoin.StateMinerSectors",
    "Filecoin.StateNetworkVersion",
    "Filecoin.StateSearchMsg",
    "Filecoin.StateSectorExpiration",
    "Filecoin.StateSectorGetInfo",
    "Filecoin.StateSectorPartition",
    "Filecoin.StateSectorPreCommitInfo",
    "Filecoin.StateWaitMsg",
    "Filecoin.Version",
    "Filecoin.WalletBalance",
    "Filecoin.WalletHas",
    "Filecoin.WalletSign",
    "Filecoin.WalletSignMessage",
];

/// How transport failures are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a call is tried in all.
    pub attempts: u32,
    /// The wait before the second try; it doubles after each failure.
    pub first_delay: Duration,
    /// The longest wait between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// A Lotus full-node client.
#[derive(Clone, Debug)]
pub struct LotusClient<T> {
    transport: T,
    retry: RetryPolicy,
}

fn address(value: &Address) -> Value {
    to_value(value, lotus_json::address::serialize)
}

fn cid(value: &Cid) -> Value {
    to_value(value, lotus_json::cid::serialize)
}

fn tipset(key: &TipSetKey) -> Value {
    serde_json::to_value(key).unwrap_or(Value::Null)
}

fn bytes(value: &[u8]) -> Value {
    to_value(value, lotus_json::bytes::serialize)
}

fn message(value: &Message) -> Value {
    serde_json::to_value(LotusMessage(value.clone())).unwrap_or(Value::Null)
}

fn serialized<S: serde::Serialize>(value: &S) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl<T: Transport> LotusClient<T> {
    /// A client over `transport` with the default retry policy.
    pub fn new(transport: T) -> LotusClient<T> {
        LotusClient {
            transport,
            retry: RetryPolicy::default(),
        }
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> LotusClient<T> {
        self.retry = retry;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Calls `method` (the full name, `Filecoin.ChainHead`) with `params`, retrying
    /// transport failures.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, ChainError> {
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            match self.transport.call(method, params.clone()).await {
                Err(error)
                    if error.kind == ErrorKind::Transport && attempt < self.retry.attempts =>
                {
                    tracing::warn!(
                        method,
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %error.message,
                        "the node could not be reached; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn typed<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> Result<R, ChainError> {
        let value = self.call(method, params).await?;
        serde_json::from_value(value).map_err(|error| {
            ChainError::unreadable(method, format!("the answer cannot be read: {error}"))
        })
    }

    async fn with_adapter<R>(
        &self,
        method: &str,
        params: Vec<Value>,
        read: fn(Value) -> Result<R, serde_json::Error>,
    ) -> Result<R, ChainError> {
        let value = self.call(method, params).await?;
        read(value).map_err(|error| {
            ChainError::unreadable(method, format!("the answer cannot be read: {error}"))
        })
    }

    // Chain.

    /// The current head.
    pub async fn chain_head(&self) -> Result<TipSet, ChainError> {
        self.typed("Filecoin.ChainHead", vec![]).await
    }

    /// A tipset by key.
    pub async fn chain_get_tipset(&self, key: &TipSetKey) -> Result<TipSet, ChainError> {
        self.typed("Filecoin.ChainGetTipSet", vec![tipset(key)])
            .await
    }

    /// The tipset at `height` on the chain of `key`, or the last before it if `height` is
    /// a null round.
    pub async fn chain_get_tipset_by_height(
        &self,
        height: ChainEpoch,
        key: &TipSetKey,
    ) -> Result<TipSet, ChainError> {
        self.typed(
            "Filecoin.ChainGetTipSetByHeight",
            vec![height.into(), tipset(key)],
        )
        .await
    }

    /// The tipset at `height`, or the first after it if `height` is a null round.
    pub async fn chain_get_tipset_after_height(
        &self,
        height: ChainEpoch,
        key: &TipSetKey,
    ) -> Result<TipSet, ChainError> {
        self.typed(
            "Filecoin.ChainGetTipSetAfterHeight",
            vec![height.into(), tipset(key)],
        )
        .await
    }

    /// The latest finalized tipset.
    pub async fn chain_get_finalized_tipset(&self) -> Result<TipSet, ChainError> {
        self.typed("Filecoin.ChainGetFinalizedTipSet", vec![]).await
    }

    /// A message by CID.
    pub async fn chain_get_message(&self, message_cid: &Cid) -> Result<Message, ChainError> {
        let message: LotusMessage = self
            .typed("Filecoin.ChainGetMessage", vec![cid(message_cid)])
            .await?;
        Ok(message.0)
    }

    /// The receipts of the messages of a block's parents.
    pub async fn chain_get_parent_receipts(
        &self,
        block: &Cid,
    ) -> Result<Vec<MessageReceipt>, ChainError> {
        let receipts: Option<Vec<MessageReceipt>> = self
            .typed("Filecoin.ChainGetParentReceipts", vec![cid(block)])
            .await?;
        Ok(receipts.unwrap_or_default())
    }

    /// A raw IPLD block.
    pub async fn chain_read_obj(&self, object: &Cid) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.ChainReadObj",
            vec![cid(object)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    // Miner state.

    /// A miner's facts.
    pub async fn state_miner_info(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<MinerInfo, ChainError> {
        self.typed("Filecoin.StateMinerInfo", vec![address(miner), tipset(key)])
            .await
    }

    /// Where a miner's proving period stands.
    pub async fn state_miner_proving_deadline(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<DeadlineInfo, ChainError> {
        self.typed(
            "Filecoin.StateMinerProvingDeadline",
            vec![address(miner), tipset(key)],
        )
        .await
    }

    /// A miner's 48 deadlines.
    pub async fn state_miner_deadlines(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<Vec<Deadline>, ChainError> {
        let deadlines: Option<Vec<Deadline>> = self
            .typed(
                "Filecoin.StateMinerDeadlines",
                vec![address(miner), tipset(key)],
            )
            .await?;
        Ok(deadlines.unwrap_or_default())
    }

    /// The partitions of one deadline.
    pub async fn state_miner_partitions(
        &self,
        miner: &Address,
        deadline: u64,
        key: &TipSetKey,
    ) -> Result<Vec<Partition>, ChainError> {
        let partitions: Option<Vec<Partition>> = self
            .typed(
                "Filecoin.StateMinerPartitions",
                vec![address(miner), deadline.into(), tipset(key)],
            )
            .await?;
        Ok(partitions.unwrap_or_default())
    }

    /// A miner's sectors, all of them (`None`) or those in `filter`.
    pub async fn state_miner_sectors(
        &self,
        miner: &Address,
        filter: Option<&BitField>,
        key: &TipSetKey,
    ) -> Result<Vec<SectorOnChainInfo>, ChainError> {
        let filter = filter.map_or(Value::Null, |bits| {
            to_value(bits, lotus_json::bitfield::serialize)
        });
        let sectors: Option<Vec<SectorOnChainInfo>> = self
            .typed(
                "Filecoin.StateMinerSectors",
                vec![address(miner), filter, tipset(key)],
            )
            .await?;
        Ok(sectors.unwrap_or_default())
    }

    /// A miner's active sectors.
    pub async fn state_miner_active_sectors(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<Vec<SectorOnChainInfo>, ChainError> {
        let sectors: Option<Vec<SectorOnChainInfo>> = self
            .typed(
                "Filecoin.StateMinerActiveSectors",
                vec![address(miner), tipset(key)],
            )
            .await?;
        Ok(sectors.unwrap_or_default())
    }

    /// A miner's faulty sectors.
    pub async fn state_miner_faults(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<BitField, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerFaults",
            vec![address(miner), tipset(key)],
            lotus_json::bitfield::deserialize,
        )
        .await
    }

    /// A miner's sectors declared recovering.
    pub async fn state_miner_recoveries(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<BitField, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerRecoveries",
            vec![address(miner), tipset(key)],
            lotus_json::bitfield::deserialize,
        )
        .await
    }

    /// Whether a sector number has been allocated.
    pub async fn state_miner_sector_allocated(
        &self,
        miner: &Address,
        sector: u64,
        key: &TipSetKey,
    ) -> Result<bool, ChainError> {
        self.typed(
            "Filecoin.StateMinerSectorAllocated",
            vec![address(miner), sector.into(), tipset(key)],
        )
        .await
    }

    /// Every allocated sector number.
    pub async fn state_miner_allocated(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<BitField, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerAllocated",
            vec![address(miner), tipset(key)],
            lotus_json::bitfield::deserialize,
        )
        .await
    }

    /// A miner's balance free of vesting, deposits and pledge.
    pub async fn state_miner_available_balance(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerAvailableBalance",
            vec![address(miner), tipset(key)],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// A miner's power and the network's.
    pub async fn state_miner_power(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<MinerPower, ChainError> {
        self.typed(
            "Filecoin.StateMinerPower",
            vec![address(miner), tipset(key)],
        )
        .await
    }

    /// A miner's sector counts.
    pub async fn state_miner_sector_count(
        &self,
        miner: &Address,
        key: &TipSetKey,
    ) -> Result<MinerSectorCount, ChainError> {
        self.typed(
            "Filecoin.StateMinerSectorCount",
            vec![address(miner), tipset(key)],
        )
        .await
    }

    /// The deposit needed to create a miner.
    pub async fn state_miner_creation_deposit(
        &self,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerCreationDeposit",
            vec![tipset(key)],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    // Actors and the network.

    /// An address's ID address.
    pub async fn state_lookup_id(
        &self,
        target: &Address,
        key: &TipSetKey,
    ) -> Result<Address, ChainError> {
        self.with_adapter(
            "Filecoin.StateLookupID",
            vec![address(target), tipset(key)],
            lotus_json::address::deserialize,
        )
        .await
    }

    /// An account actor's key address.
    pub async fn state_account_key(
        &self,
        target: &Address,
        key: &TipSetKey,
    ) -> Result<Address, ChainError> {
        self.with_adapter(
            "Filecoin.StateAccountKey",
            vec![address(target), tipset(key)],
            lotus_json::address::deserialize,
        )
        .await
    }

    /// An actor.
    pub async fn state_get_actor(
        &self,
        target: &Address,
        key: &TipSetKey,
    ) -> Result<Actor, ChainError> {
        self.typed("Filecoin.StateGetActor", vec![address(target), tipset(key)])
            .await
    }

    /// An address's balance at the head.
    pub async fn wallet_balance(&self, target: &Address) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.WalletBalance",
            vec![address(target)],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// The network version at a tipset.
    pub async fn state_network_version(&self, key: &TipSetKey) -> Result<u32, ChainError> {
        self.typed("Filecoin.StateNetworkVersion", vec![tipset(key)])
            .await
    }

    /// The network's parameters.
    pub async fn state_get_network_params(&self) -> Result<NetworkParams, ChainError> {
        self.typed("Filecoin.StateGetNetworkParams", vec![]).await
    }

    /// The node's version.
    pub async fn version(&self) -> Result<NodeVersion, ChainError> {
        self.typed("Filecoin.Version", vec![]).await
    }

    /// The permissions of a token.
    pub async fn auth_verify(&self, token: &str) -> Result<Vec<String>, ChainError> {
        let permissions: Option<Vec<String>> = self
            .typed("Filecoin.AuthVerify", vec![token.into()])
            .await?;
        Ok(permissions.unwrap_or_default())
    }

    // Sectors.

    /// A sector's precommitment, or `None` (not precommitted, expired, or proven).
    pub async fn state_sector_pre_commit_info(
        &self,
        miner: &Address,
        sector: u64,
        key: &TipSetKey,
    ) -> Result<Option<SectorPreCommitOnChainInfo>, ChainError> {
        self.typed(
            "Filecoin.StateSectorPreCommitInfo",
            vec![address(miner), sector.into(), tipset(key)],
        )
        .await
    }

    /// A proven sector, or `None`.
    pub async fn state_sector_get_info(
        &self,
        miner: &Address,
        sector: u64,
        key: &TipSetKey,
    ) -> Result<Option<SectorOnChainInfo>, ChainError> {
        self.typed(
            "Filecoin.StateSectorGetInfo",
            vec![address(miner), sector.into(), tipset(key)],
        )
        .await
    }

    /// Where a sector is proven.
    pub async fn state_sector_partition(
        &self,
        miner: &Address,
        sector: u64,
        key: &TipSetKey,
    ) -> Result<SectorLocation, ChainError> {
        self.typed(
            "Filecoin.StateSectorPartition",
            vec![address(miner), sector.into(), tipset(key)],
        )
        .await
    }

    /// When a sector expires.
    pub async fn state_sector_expiration(
        &self,
        miner: &Address,
        sector: u64,
        key: &TipSetKey,
    ) -> Result<SectorExpiration, ChainError> {
        self.typed(
            "Filecoin.StateSectorExpiration",
            vec![address(miner), sector.into(), tipset(key)],
        )
        .await
    }

    /// The deposit a precommit needs.
    pub async fn state_miner_pre_commit_deposit_for_power(
        &self,
        miner: &Address,
        info: &SectorPreCommitInfo,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerPreCommitDepositForPower",
            vec![address(miner), serialized(info), tipset(key)],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// The pledge a sector of `sector_size` committed for `duration` epochs needs.
    pub async fn state_miner_initial_pledge_for_sector(
        &self,
        duration: ChainEpoch,
        sector_size: u64,
        verified_size: u64,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerInitialPledgeForSector",
            vec![
                duration.into(),
                sector_size.into(),
                verified_size.into(),
                tipset(key),
            ],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// The pledge of a precommitted sector (deprecated by Lotus; kept for older nodes).
    pub async fn state_miner_initial_pledge_collateral(
        &self,
        miner: &Address,
        info: &SectorPreCommitInfo,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.StateMinerInitialPledgeCollateral",
            vec![address(miner), serialized(info), tipset(key)],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// The verified allocation of a pending market deal.
    pub async fn state_get_allocation_id_for_pending_deal(
        &self,
        deal: u64,
        key: &TipSetKey,
    ) -> Result<u64, ChainError> {
        self.typed(
            "Filecoin.StateGetAllocationIdForPendingDeal",
            vec![deal.into(), tipset(key)],
        )
        .await
    }

    /// A verified allocation, or `None`.
    pub async fn state_get_allocation(
        &self,
        client: &Address,
        allocation: u64,
        key: &TipSetKey,
    ) -> Result<Option<Allocation>, ChainError> {
        self.typed(
            "Filecoin.StateGetAllocation",
            vec![address(client), allocation.into(), tipset(key)],
        )
        .await
    }

    /// A market deal.
    pub async fn state_market_storage_deal(
        &self,
        deal: u64,
        key: &TipSetKey,
    ) -> Result<MarketDeal, ChainError> {
        self.typed(
            "Filecoin.StateMarketStorageDeal",
            vec![deal.into(), tipset(key)],
        )
        .await
    }

    // Randomness.

    /// Ticket randomness (the PoRep ticket: `domain` 5, SealRandomness).
    pub async fn state_get_randomness_from_tickets(
        &self,
        domain: i64,
        epoch: ChainEpoch,
        entropy: &[u8],
        key: &TipSetKey,
    ) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.StateGetRandomnessFromTickets",
            vec![domain.into(), epoch.into(), bytes(entropy), tipset(key)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    /// Beacon randomness (the PoRep seed: `domain` 6; window PoSt: 4).
    pub async fn state_get_randomness_from_beacon(
        &self,
        domain: i64,
        epoch: ChainEpoch,
        entropy: &[u8],
        key: &TipSetKey,
    ) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.StateGetRandomnessFromBeacon",
            vec![domain.into(), epoch.into(), bytes(entropy), tipset(key)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    /// The ticket digest of an epoch (randomness before domain separation).
    pub async fn state_get_randomness_digest_from_tickets(
        &self,
        epoch: ChainEpoch,
        key: &TipSetKey,
    ) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.StateGetRandomnessDigestFromTickets",
            vec![epoch.into(), tipset(key)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    /// The beacon digest of an epoch.
    pub async fn state_get_randomness_digest_from_beacon(
        &self,
        epoch: ChainEpoch,
        key: &TipSetKey,
    ) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.StateGetRandomnessDigestFromBeacon",
            vec![epoch.into(), tipset(key)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    /// The beacon entry of an epoch (waits for it if it is in the future).
    pub async fn state_get_beacon_entry(
        &self,
        epoch: ChainEpoch,
    ) -> Result<BeaconEntry, ChainError> {
        self.typed("Filecoin.StateGetBeaconEntry", vec![epoch.into()])
            .await
    }

    // Messages.

    /// Signs and sends a message with the node's wallet (needs `sign`).
    pub async fn mpool_push_message(
        &self,
        unsigned: &Message,
        spec: Option<&MessageSendSpec>,
    ) -> Result<SignedMessage, ChainError> {
        let spec = spec.map_or(Value::Null, serialized);
        self.typed("Filecoin.MpoolPushMessage", vec![message(unsigned), spec])
            .await
    }

    /// Sends a message signed elsewhere (needs `write`).
    pub async fn mpool_push(&self, signed: &SignedMessage) -> Result<Cid, ChainError> {
        self.with_adapter(
            "Filecoin.MpoolPush",
            vec![serialized(signed)],
            lotus_json::cid::deserialize,
        )
        .await
    }

    /// The next nonce of an address.
    pub async fn mpool_get_nonce(&self, target: &Address) -> Result<u64, ChainError> {
        self.typed("Filecoin.MpoolGetNonce", vec![address(target)])
            .await
    }

    /// The message with its gas filled in.
    pub async fn gas_estimate_message_gas(
        &self,
        unsigned: &Message,
        spec: Option<&MessageSendSpec>,
        key: &TipSetKey,
    ) -> Result<Message, ChainError> {
        let spec = spec.map_or(Value::Null, serialized);
        let estimated: LotusMessage = self
            .typed(
                "Filecoin.GasEstimateMessageGas",
                vec![message(unsigned), spec, tipset(key)],
            )
            .await?;
        Ok(estimated.0)
    }

    /// A fee cap for inclusion within `blocks` epochs.
    pub async fn gas_estimate_fee_cap(
        &self,
        unsigned: &Message,
        blocks: i64,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.GasEstimateFeeCap",
            vec![message(unsigned), blocks.into(), tipset(key)],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// A gas premium for inclusion within `blocks` epochs.
    pub async fn gas_estimate_gas_premium(
        &self,
        blocks: u64,
        sender: &Address,
        gas_limit: i64,
        key: &TipSetKey,
    ) -> Result<TokenAmount, ChainError> {
        self.with_adapter(
            "Filecoin.GasEstimateGasPremium",
            vec![
                blocks.into(),
                address(sender),
                gas_limit.into(),
                tipset(key),
            ],
            lotus_json::token_amount::deserialize,
        )
        .await
    }

    /// Runs a message on a tipset's parent state without sending it.
    pub async fn state_call(
        &self,
        unsigned: &Message,
        key: &TipSetKey,
    ) -> Result<InvocResult, ChainError> {
        self.typed("Filecoin.StateCall", vec![message(unsigned), tipset(key)])
            .await
    }

    /// Looks for an executed message from `key` back `limit` epochs (-1: no limit), or
    /// `None` when it has not been executed.
    pub async fn state_search_msg(
        &self,
        key: &TipSetKey,
        message_cid: &Cid,
        limit: ChainEpoch,
        allow_replaced: bool,
    ) -> Result<Option<MessageLookup>, ChainError> {
        self.typed(
            "Filecoin.StateSearchMsg",
            vec![
                tipset(key),
                cid(message_cid),
                limit.into(),
                allow_replaced.into(),
            ],
        )
        .await
    }

    /// Waits until a message is executed and `confidence` tipsets are on top.
    pub async fn state_wait_msg(
        &self,
        message_cid: &Cid,
        confidence: u64,
        limit: ChainEpoch,
        allow_replaced: bool,
    ) -> Result<MessageLookup, ChainError> {
        self.typed(
            "Filecoin.StateWaitMsg",
            vec![
                cid(message_cid),
                confidence.into(),
                limit.into(),
                allow_replaced.into(),
            ],
        )
        .await
    }

    /// Signs bytes with a wallet key (needs `sign`).
    pub async fn wallet_sign(
        &self,
        signer: &Address,
        data: &[u8],
    ) -> Result<Signature, ChainError> {
        self.typed("Filecoin.WalletSign", vec![address(signer), bytes(data)])
            .await
    }

    /// Signs a message with a wallet key (needs `sign`).
    pub async fn wallet_sign_message(
        &self,
        signer: &Address,
        unsigned: &Message,
    ) -> Result<SignedMessage, ChainError> {
        self.typed(
            "Filecoin.WalletSignMessage",
            vec![address(signer), message(unsigned)],
        )
        .await
    }

    /// Whether the node's wallet holds a key (needs `write`).
    pub async fn wallet_has(&self, target: &Address) -> Result<bool, ChainError> {
        self.typed("Filecoin.WalletHas", vec![address(target)])
            .await
    }

    // Winning PoSt.

    /// What a miner needs to mine `round` on `key`, or `None` when it cannot.
    pub async fn miner_get_base_info(
        &self,
        miner: &Address,
        round: ChainEpoch,
        key: &TipSetKey,
    ) -> Result<Option<MiningBaseInfo>, ChainError> {
        self.typed(
            "Filecoin.MinerGetBaseInfo",
            vec![address(miner), round.into(), tipset(key)],
        )
        .await
    }

    // The deprecated v0 API (a client on `/rpc/v0`), for nodes that serve nothing newer.

    /// v0 `BeaconGetEntry`.
    pub async fn v0_beacon_get_entry(&self, epoch: ChainEpoch) -> Result<BeaconEntry, ChainError> {
        self.typed("Filecoin.BeaconGetEntry", vec![epoch.into()])
            .await
    }

    /// v0 `ChainGetRandomnessFromTickets` (the tipset comes first).
    pub async fn v0_chain_get_randomness_from_tickets(
        &self,
        key: &TipSetKey,
        domain: i64,
        epoch: ChainEpoch,
        entropy: &[u8],
    ) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.ChainGetRandomnessFromTickets",
            vec![tipset(key), domain.into(), epoch.into(), bytes(entropy)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    /// v0 `ChainGetRandomnessFromBeacon` (the tipset comes first).
    pub async fn v0_chain_get_randomness_from_beacon(
        &self,
        key: &TipSetKey,
        domain: i64,
        epoch: ChainEpoch,
        entropy: &[u8],
    ) -> Result<Vec<u8>, ChainError> {
        self.with_adapter(
            "Filecoin.ChainGetRandomnessFromBeacon",
            vec![tipset(key), domain.into(), epoch.into(), bytes(entropy)],
            lotus_json::bytes::deserialize,
        )
        .await
    }

    /// v0 `StateSearchMsg` (from the head, no limit, replacements allowed).
    pub async fn v0_state_search_msg(
        &self,
        message_cid: &Cid,
    ) -> Result<Option<MessageLookup>, ChainError> {
        self.typed("Filecoin.StateSearchMsg", vec![cid(message_cid)])
            .await
    }

    /// v0 `StateSearchMsgLimited`.
    pub async fn v0_state_search_msg_limited(
        &self,
        message_cid: &Cid,
        limit: ChainEpoch,
    ) -> Result<Option<MessageLookup>, ChainError> {
        self.typed(
            "Filecoin.StateSearchMsgLimited",
            vec![cid(message_cid), limit.into()],
        )
        .await
    }

    /// v0 `StateWaitMsg`.
    pub async fn v0_state_wait_msg(
        &self,
        message_cid: &Cid,
        confidence: u64,
    ) -> Result<MessageLookup, ChainError> {
        self.typed(
            "Filecoin.StateWaitMsg",
            vec![cid(message_cid), confidence.into()],
        )
        .await
    }

    /// v0 `StateWaitMsgLimited`.
    pub async fn v0_state_wait_msg_limited(
        &self,
        message_cid: &Cid,
        confidence: u64,
        limit: ChainEpoch,
    ) -> Result<MessageLookup, ChainError> {
        self.typed(
            "Filecoin.StateWaitMsgLimited",
            vec![cid(message_cid), confidence.into(), limit.into()],
        )
        .await
    }

    // The experimental v2 API (a client on `/rpc/v2`).

    /// v2 `ChainGetTipSet` by selector.
    pub async fn v2_chain_get_tipset(
        &self,
        selector: &TipSetSelector,
    ) -> Result<TipSet, ChainError> {
        self.typed("Filecoin.ChainGetTipSet", vec![serialized(selector)])
            .await
    }

    /// v2 `StateGetActor` by selector.
    pub async fn v2_state_get_actor(
        &self,
        target: &Address,
        selector: &TipSetSelector,
    ) -> Result<Actor, ChainError> {
        self.typed(
            "Filecoin.StateGetActor",
            vec![address(target), serialized(selector)],
        )
        .await
    }

    /// v2 `StateGetID` by selector.
    pub async fn v2_state_get_id(
        &self,
        target: &Address,
        selector: &TipSetSelector,
    ) -> Result<Address, ChainError> {
        self.with_adapter(
            "Filecoin.StateGetID",
            vec![address(target), serialized(selector)],
            lotus_json::address::deserialize,
        )
        .await
    }
}
