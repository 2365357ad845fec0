//! The values the Lotus API takes and returns, in their Lotus JSON shape.
//!
//! Field names are Lotus's (PascalCase, with its irregular ones such as `SealedCID` beside
//! `UnsealedCid`); field types are fvm_shared's, so the manager works with the field's own
//! types and never with strings. Every list Go may write as `null` reads as empty. How
//! each value is written is decided in one place, the adapters of [`crate::lotus_json`].

use std::collections::BTreeMap;
use std::fmt;

use ::cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_shared::address::Address;
use fvm_shared::bigint::BigInt;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::lotus_json;
use crate::message::{message_cid, signed_message_cid};

/// A tipset's key: the CIDs of its blocks. The empty key means "the current head".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TipSetKey(#[serde(with = "lotus_json::cid::vec")] pub Vec<Cid>);

impl TipSetKey {
    /// The key that names the current head.
    pub fn head() -> TipSetKey {
        TipSetKey(Vec::new())
    }
}

impl fmt::Display for TipSetKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(formatter, "{{{}}}", texts.join(","))
    }
}

/// A signature: `{"Type": 1 (secp256k1) | 2 (BLS) | 3 (delegated), "Data": base64}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signature scheme.
    #[serde(rename = "Type")]
    pub signature_type: u8,
    /// The signature bytes.
    #[serde(rename = "Data", with = "lotus_json::bytes")]
    pub data: Vec<u8>,
}

impl Signature {
    /// The secp256k1 scheme.
    pub const SECP256K1: u8 = 1;
    /// The BLS scheme.
    pub const BLS: u8 = 2;
    /// The delegated (Ethereum) scheme.
    pub const DELEGATED: u8 = 3;
}

/// A block's ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The VRF proof.
    #[serde(rename = "VRFProof", with = "lotus_json::bytes")]
    pub vrf_proof: Vec<u8>,
}

/// A block's election proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionProof {
    /// How many times the miner won this round.
    #[serde(rename = "WinCount")]
    pub win_count: i64,
    /// The VRF proof.
    #[serde(rename = "VRFProof", with = "lotus_json::bytes")]
    pub vrf_proof: Vec<u8>,
}

/// A drand beacon entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconEntry {
    /// The drand round.
    #[serde(rename = "Round")]
    pub round: u64,
    /// The beacon's signature.
    #[serde(rename = "Data", with = "lotus_json::bytes")]
    pub data: Vec<u8>,
}

/// A PoSt proof as a block or a message carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoStProof {
    /// The proof type.
    #[serde(rename = "PoStProof", with = "lotus_json::proof_type::post")]
    pub post_proof: RegisteredPoStProof,
    /// The proof bytes.
    #[serde(rename = "ProofBytes", with = "lotus_json::bytes")]
    pub proof_bytes: Vec<u8>,
}

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockHeader {
    /// The miner that made the block.
    #[serde(with = "lotus_json::address")]
    pub miner: Address,
    /// Its ticket.
    pub ticket: Option<Ticket>,
    /// Its election proof.
    pub election_proof: Option<ElectionProof>,
    /// The beacon entries it carries.
    #[serde(with = "lotus_json::nullable_vec")]
    pub beacon_entries: Vec<BeaconEntry>,
    /// Its winning PoSt.
    #[serde(rename = "WinPoStProof", with = "lotus_json::nullable_vec")]
    pub win_post_proof: Vec<PoStProof>,
    /// The parent tipset's key.
    #[serde(with = "lotus_json::cid::vec")]
    pub parents: Vec<Cid>,
    /// The parent chain's weight.
    #[serde(with = "lotus_json::big_int")]
    pub parent_weight: BigInt,
    /// Its epoch.
    pub height: ChainEpoch,
    /// The state root after the parent tipset's messages.
    #[serde(with = "lotus_json::cid")]
    pub parent_state_root: Cid,
    /// The receipts of the parent tipset's messages.
    #[serde(with = "lotus_json::cid")]
    pub parent_message_receipts: Cid,
    /// The messages it includes.
    #[serde(with = "lotus_json::cid")]
    pub messages: Cid,
    /// The aggregate signature of its BLS messages.
    #[serde(rename = "BLSAggregate")]
    pub bls_aggregate: Option<Signature>,
    /// Its time, in seconds since the epoch.
    pub timestamp: u64,
    /// The miner's signature.
    pub block_sig: Option<Signature>,
    /// Fork signalling bits.
    pub fork_signaling: u64,
    /// The parent tipset's base fee.
    #[serde(with = "lotus_json::token_amount")]
    pub parent_base_fee: TokenAmount,
}

/// A tipset: the blocks of one epoch that share parents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TipSet {
    /// Its key.
    #[serde(with = "lotus_json::cid::vec")]
    pub cids: Vec<Cid>,
    /// Its blocks.
    #[serde(with = "lotus_json::nullable_vec")]
    pub blocks: Vec<BlockHeader>,
    /// Its epoch.
    pub height: ChainEpoch,
}

impl TipSet {
    /// Its key.
    pub fn key(&self) -> TipSetKey {
        TipSetKey(self.cids.clone())
    }

    /// Its parents' key (from its first block; every block of a tipset has the same).
    pub fn parents(&self) -> TipSetKey {
        TipSetKey(
            self.blocks
                .first()
                .map(|block| block.parents.clone())
                .unwrap_or_default(),
        )
    }
}

/// What a head change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadChangeType {
    /// The head at the moment of subscribing (the first notification).
    Current,
    /// A tipset joined the chain.
    Apply,
    /// A tipset left the chain (a reorganisation).
    Revert,
    /// A kind this client does not know, kept as written.
    Other(String),
}

impl Serialize for HeadChangeType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            HeadChangeType::Current => "current",
            HeadChangeType::Apply => "apply",
            HeadChangeType::Revert => "revert",
            HeadChangeType::Other(text) => text,
        })
    }
}

impl<'de> Deserialize<'de> for HeadChangeType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "current" => HeadChangeType::Current,
            "apply" => HeadChangeType::Apply,
            "revert" => HeadChangeType::Revert,
            _ => HeadChangeType::Other(text),
        })
    }
}

/// One head change of `ChainNotify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadChange {
    /// What happened.
    #[serde(rename = "Type")]
    pub change: HeadChangeType,
    /// The tipset it happened to.
    #[serde(rename = "Val")]
    pub tipset: TipSet,
}

/// A message in Lotus JSON; the `CID` is computed when written and ignored when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotusMessage(pub Message);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MessageFields {
    version: u64,
    #[serde(with = "lotus_json::address")]
    to: Address,
    #[serde(with = "lotus_json::address")]
    from: Address,
    nonce: u64,
    #[serde(with = "lotus_json::token_amount")]
    value: TokenAmount,
    gas_limit: u64,
    #[serde(with = "lotus_json::token_amount")]
    gas_fee_cap: TokenAmount,
    #[serde(with = "lotus_json::token_amount")]
    gas_premium: TokenAmount,
    method: u64,
    #[serde(with = "lotus_json::bytes")]
    params: Vec<u8>,
    #[serde(
        rename = "CID",
        default,
        skip_serializing_if = "Option::is_none",
        with = "lotus_json::cid::optional"
    )]
    cid: Option<Cid>,
}

impl Serialize for LotusMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = &self.0;
        MessageFields {
            version: message.version,
            to: message.to,
            from: message.from,
            nonce: message.sequence,
            value: message.value.clone(),
            gas_limit: message.gas_limit,
            gas_fee_cap: message.gas_fee_cap.clone(),
            gas_premium: message.gas_premium.clone(),
            method: message.method_num,
            params: message.params.to_vec(),
            cid: Some(message_cid(message)),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LotusMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = MessageFields::deserialize(deserializer)?;
        Ok(LotusMessage(Message {
            version: fields.version,
            from: fields.from,
            to: fields.to,
            sequence: fields.nonce,
            value: fields.value,
            method_num: fields.method,
            params: fields.params.into(),
            gas_limit: fields.gas_limit,
            gas_fee_cap: fields.gas_fee_cap,
            gas_premium: fields.gas_premium,
        }))
    }
}

/// A signed message; its `CID` (the message's own for BLS, else that of the signed
/// envelope) is computed when written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMessage {
    /// The message.
    pub message: Message,
    /// Its signature.
    pub signature: Signature,
}

impl SignedMessage {
    /// The CID the chain knows this message by, which `StateWaitMsg` and `StateSearchMsg`
    /// must be given.
    pub fn cid(&self) -> Cid {
        signed_message_cid(&self.message, &self.signature)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignedMessageFields {
    message: LotusMessage,
    signature: Signature,
    #[serde(
        rename = "CID",
        default,
        skip_serializing_if = "Option::is_none",
        with = "lotus_json::cid::optional"
    )]
    cid: Option<Cid>,
}

impl Serialize for SignedMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignedMessageFields {
            message: LotusMessage(self.message.clone()),
            signature: self.signature.clone(),
            cid: Some(self.cid()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = SignedMessageFields::deserialize(deserializer)?;
        Ok(SignedMessage {
            message: fields.message.0,
            signature: fields.signature,
        })
    }
}

/// How the node should send a message (`MpoolPushMessage`, `GasEstimateMessageGas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageSendSpec {
    /// The most the message may cost in fees; zero is the node's default.
    #[serde(with = "lotus_json::token_amount")]
    pub max_fee: TokenAmount,
    /// A stable id: pushing the same id again returns the message already signed, so a
    /// retried push never sends twice.
    pub msg_uuid: String,
    /// Set the fee cap to the most `max_fee` allows.
    pub maximize_fee_cap: bool,
}

/// A message's receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageReceipt {
    /// The exit code: 0 is success.
    pub exit_code: i64,
    /// The CBOR return value.
    #[serde(with = "lotus_json::bytes")]
    pub r#return: Vec<u8>,
    /// Gas used.
    pub gas_used: i64,
    /// The root of the events it emitted.
    #[serde(default, with = "lotus_json::cid::optional")]
    pub events_root: Option<Cid>,
}

/// Where and how a message was executed (`StateSearchMsg`, `StateWaitMsg`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageLookup {
    /// The message found, which may be a replacement of the one asked for.
    #[serde(with = "lotus_json::cid")]
    pub message: Cid,
    /// Its receipt.
    pub receipt: MessageReceipt,
    /// The decoded return value (`StateWaitMsg` only).
    #[serde(default)]
    pub return_dec: serde_json::Value,
    /// The tipset in which it was executed (the first whose parent includes it).
    pub tip_set: TipSetKey,
    /// That tipset's epoch.
    pub height: ChainEpoch,
}

/// A miner actor's facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerInfo {
    /// The owner (an ID address).
    #[serde(with = "lotus_json::address")]
    pub owner: Address,
    /// The worker (an ID address).
    #[serde(with = "lotus_json::address")]
    pub worker: Address,
    /// The worker being changed to, if a change is pending.
    #[serde(with = "lotus_json::address::maybe_undefined")]
    pub new_worker: Option<Address>,
    /// Control addresses.
    #[serde(with = "lotus_json::address::vec")]
    pub control_addresses: Vec<Address>,
    /// When a pending worker change takes effect.
    pub worker_change_epoch: ChainEpoch,
    /// The libp2p peer id.
    pub peer_id: Option<String>,
    /// Its multiaddresses.
    #[serde(with = "lotus_json::bytes::vec")]
    pub multiaddrs: Vec<Vec<u8>>,
    /// The window PoSt proof type its sectors use.
    #[serde(rename = "WindowPoStProofType", with = "lotus_json::proof_type::post")]
    pub window_post_proof_type: RegisteredPoStProof,
    /// Its sector size in bytes.
    pub sector_size: u64,
    /// Sectors per window PoSt partition.
    #[serde(rename = "WindowPoStPartitionSectors")]
    pub window_post_partition_sectors: u64,
    /// The epoch after which its last consensus fault no longer bars it.
    pub consensus_fault_elapsed: ChainEpoch,
    /// The owner being changed to, if a change is pending.
    #[serde(default, with = "lotus_json::address::optional")]
    pub pending_owner_address: Option<Address>,
    /// Who receives its rewards.
    #[serde(with = "lotus_json::address")]
    pub beneficiary: Address,
    /// The beneficiary's terms.
    pub beneficiary_term: BeneficiaryTerm,
    /// A pending change of beneficiary.
    #[serde(default)]
    pub pending_beneficiary_term: Option<PendingBeneficiaryChange>,
}

/// A beneficiary's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BeneficiaryTerm {
    /// How much it may receive.
    #[serde(with = "lotus_json::token_amount")]
    pub quota: TokenAmount,
    /// How much it has received.
    #[serde(with = "lotus_json::token_amount")]
    pub used_quota: TokenAmount,
    /// When the terms end.
    pub expiration: ChainEpoch,
}

/// A proposed change of beneficiary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PendingBeneficiaryChange {
    /// The proposed beneficiary.
    #[serde(with = "lotus_json::address")]
    pub new_beneficiary: Address,
    /// Its quota.
    #[serde(with = "lotus_json::token_amount")]
    pub new_quota: TokenAmount,
    /// Its expiration.
    pub new_expiration: ChainEpoch,
    /// Whether the current beneficiary approved.
    pub approved_by_beneficiary: bool,
    /// Whether the nominee approved.
    pub approved_by_nominee: bool,
}

/// Where a miner's proving period stands (`StateMinerProvingDeadline`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadlineInfo {
    /// The epoch this was computed at.
    pub current_epoch: ChainEpoch,
    /// The first epoch of the current proving period.
    pub period_start: ChainEpoch,
    /// The current deadline's index.
    pub index: u64,
    /// The first epoch at which a proof for it may be submitted.
    pub open: ChainEpoch,
    /// The first epoch at which it may no longer be.
    pub close: ChainEpoch,
    /// The epoch whose randomness challenges it.
    pub challenge: ChainEpoch,
    /// The last epoch at which faults for it may be declared.
    pub fault_cutoff: ChainEpoch,
    /// Deadlines per proving period (48).
    #[serde(rename = "WPoStPeriodDeadlines")]
    pub wpost_period_deadlines: u64,
    /// Epochs per proving period.
    #[serde(rename = "WPoStProvingPeriod")]
    pub wpost_proving_period: ChainEpoch,
    /// Epochs per deadline.
    #[serde(rename = "WPoStChallengeWindow")]
    pub wpost_challenge_window: ChainEpoch,
    /// How many epochs before opening the challenge is drawn.
    #[serde(rename = "WPoStChallengeLookback")]
    pub wpost_challenge_lookback: ChainEpoch,
    /// How many epochs before opening faults must be declared.
    pub fault_declaration_cutoff: ChainEpoch,
}

/// One deadline of a miner (`StateMinerDeadlines`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deadline {
    /// The partitions proven in the current proving period.
    #[serde(with = "lotus_json::bitfield")]
    pub post_submissions: BitField,
    /// How many proofs may still be disputed.
    pub disputable_proof_count: u64,
    /// The fee due for this deadline's sectors.
    #[serde(with = "lotus_json::token_amount")]
    pub daily_fee: TokenAmount,
}

/// One partition of a deadline (`StateMinerPartitions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Partition {
    /// Every sector in it.
    #[serde(with = "lotus_json::bitfield")]
    pub all_sectors: BitField,
    /// The faulty ones.
    #[serde(with = "lotus_json::bitfield")]
    pub faulty_sectors: BitField,
    /// The ones declared recovering.
    #[serde(with = "lotus_json::bitfield")]
    pub recovering_sectors: BitField,
    /// The live ones (not terminated).
    #[serde(with = "lotus_json::bitfield")]
    pub live_sectors: BitField,
    /// The active ones (live and not faulty).
    #[serde(with = "lotus_json::bitfield")]
    pub active_sectors: BitField,
}

/// A proven sector (`StateSectorGetInfo`, `StateMinerSectors`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorOnChainInfo {
    /// The sector number.
    pub sector_number: u64,
    /// Its seal proof.
    #[serde(with = "lotus_json::proof_type::seal")]
    pub seal_proof: RegisteredSealProof,
    /// Its replica commitment.
    #[serde(rename = "SealedCID", with = "lotus_json::cid")]
    pub sealed_cid: Cid,
    /// When it was activated.
    pub activation: ChainEpoch,
    /// When it expires.
    pub expiration: ChainEpoch,
    /// Deal weight.
    #[serde(with = "lotus_json::big_int")]
    pub deal_weight: BigInt,
    /// Verified deal weight.
    #[serde(with = "lotus_json::big_int")]
    pub verified_deal_weight: BigInt,
    /// Pledge locked for it.
    #[serde(with = "lotus_json::token_amount")]
    pub initial_pledge: TokenAmount,
    /// Legacy reward projection.
    #[serde(with = "lotus_json::token_amount")]
    pub expected_day_reward: TokenAmount,
    /// Legacy reward projection.
    #[serde(with = "lotus_json::token_amount")]
    pub expected_storage_pledge: TokenAmount,
    /// When its power was last updated.
    pub power_base_epoch: ChainEpoch,
    /// Legacy reward projection.
    #[serde(with = "lotus_json::token_amount")]
    pub replaced_day_reward: TokenAmount,
    /// The replica commitment before a snap-deals update.
    #[serde(rename = "SectorKeyCID", default, with = "lotus_json::cid::optional")]
    pub sector_key_cid: Option<Cid>,
    /// Flags.
    pub flags: u64,
    /// Its daily fee.
    #[serde(with = "lotus_json::token_amount")]
    pub daily_fee: TokenAmount,
}

/// A sector's precommitment, as sent and as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitInfo {
    /// The seal proof.
    #[serde(with = "lotus_json::proof_type::seal")]
    pub seal_proof: RegisteredSealProof,
    /// The sector number.
    pub sector_number: u64,
    /// The replica commitment.
    #[serde(rename = "SealedCID", with = "lotus_json::cid")]
    pub sealed_cid: Cid,
    /// The epoch of the ticket sealed with.
    pub seal_rand_epoch: ChainEpoch,
    /// Legacy market deals.
    #[serde(rename = "DealIDs", with = "lotus_json::nullable_vec")]
    pub deal_ids: Vec<u64>,
    /// When it is to expire.
    pub expiration: ChainEpoch,
    /// The data commitment; absent for a committed-capacity sector.
    #[serde(default, with = "lotus_json::cid::optional")]
    pub unsealed_cid: Option<Cid>,
}

/// A precommitment on chain (`StateSectorPreCommitInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitOnChainInfo {
    /// What was precommitted.
    pub info: SectorPreCommitInfo,
    /// The deposit locked for it.
    #[serde(with = "lotus_json::token_amount")]
    pub pre_commit_deposit: TokenAmount,
    /// The epoch it landed in; the seed is drawn `PreCommitChallengeDelay` later.
    pub pre_commit_epoch: ChainEpoch,
}

/// Where a sector is proven (`StateSectorPartition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorLocation {
    /// Its deadline.
    pub deadline: u64,
    /// Its partition within it.
    pub partition: u64,
}

/// When a sector expires (`StateSectorExpiration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorExpiration {
    /// On schedule.
    pub on_time: ChainEpoch,
    /// Early, because of faults.
    pub early: ChainEpoch,
}

/// Power claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PowerClaim {
    /// Raw bytes.
    #[serde(with = "lotus_json::big_int")]
    pub raw_byte_power: BigInt,
    /// Quality-adjusted.
    #[serde(with = "lotus_json::big_int")]
    pub quality_adj_power: BigInt,
}

/// A miner's power and the network's (`StateMinerPower`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerPower {
    /// The miner's.
    pub miner_power: PowerClaim,
    /// The network's.
    pub total_power: PowerClaim,
    /// Whether the miner has the minimum power to mine.
    pub has_min_power: bool,
}

/// A miner's sector counts (`StateMinerSectorCount`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerSectorCount {
    /// Live sectors.
    pub live: u64,
    /// Active sectors.
    pub active: u64,
    /// Faulty sectors.
    pub faulty: u64,
}

/// An actor (`StateGetActor`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Actor {
    /// Its code.
    #[serde(with = "lotus_json::cid")]
    pub code: Cid,
    /// Its state root.
    #[serde(with = "lotus_json::cid")]
    pub head: Cid,
    /// Its nonce.
    pub nonce: u64,
    /// Its balance.
    #[serde(with = "lotus_json::token_amount")]
    pub balance: TokenAmount,
    /// Its delegated (f4) address, if it has one.
    #[serde(default, with = "lotus_json::address::optional")]
    pub delegated_address: Option<Address>,
}

/// The network's parameters (`StateGetNetworkParams`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkParams {
    /// The network's name.
    pub network_name: String,
    /// Seconds per epoch.
    pub block_delay_secs: u64,
    /// The power a miner needs to mine.
    #[serde(with = "lotus_json::big_int")]
    pub consensus_miner_min_power: BigInt,
    /// Epochs between a precommit landing and its seed.
    pub pre_commit_challenge_delay: ChainEpoch,
    /// The upgrade heights, by Lotus's names.
    pub fork_upgrade_params: BTreeMap<String, ChainEpoch>,
    /// The EIP-155 chain id.
    #[serde(rename = "Eip155ChainID")]
    pub eip155_chain_id: u64,
    /// The genesis block's time.
    pub genesis_timestamp: u64,
}

/// The node's version (`Version`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeVersion {
    /// Its version text.
    pub version: String,
    /// Its API version (`0x020300` is 2.3.0).
    #[serde(rename = "APIVersion")]
    pub api_version: u32,
    /// Seconds per epoch.
    pub block_delay: u64,
    /// The implementation.
    pub agent: String,
}

/// The gas a call cost (`StateCall`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GasCost {
    /// The message.
    #[serde(with = "lotus_json::cid")]
    pub message: Cid,
    /// Gas used.
    #[serde(with = "lotus_json::big_int")]
    pub gas_used: BigInt,
    /// Base fee burnt.
    #[serde(with = "lotus_json::token_amount")]
    pub base_fee_burn: TokenAmount,
    /// Over-estimation burnt.
    #[serde(with = "lotus_json::token_amount")]
    pub over_estimation_burn: TokenAmount,
    /// Miner penalty.
    #[serde(with = "lotus_json::token_amount")]
    pub miner_penalty: TokenAmount,
    /// Miner tip.
    #[serde(with = "lotus_json::token_amount")]
    pub miner_tip: TokenAmount,
    /// Refund.
    #[serde(with = "lotus_json::token_amount")]
    pub refund: TokenAmount,
    /// Total.
    #[serde(with = "lotus_json::token_amount")]
    pub total_cost: TokenAmount,
}

/// The result of calling a message without sending it (`StateCall`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocResult {
    /// The message's CID.
    #[serde(with = "lotus_json::cid")]
    pub msg_cid: Cid,
    /// The message.
    pub msg: LotusMessage,
    /// Its receipt.
    pub msg_rct: Option<MessageReceipt>,
    /// Its gas.
    pub gas_cost: GasCost,
    /// The execution trace, kept as Lotus wrote it (this client reads nothing from it).
    pub execution_trace: serde_json::Value,
    /// The error, empty when none.
    pub error: String,
    /// How long it took, in nanoseconds.
    pub duration: u64,
}

/// A sector as winning PoSt sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExtendedSectorInfo {
    /// Its seal proof.
    #[serde(with = "lotus_json::proof_type::seal")]
    pub seal_proof: RegisteredSealProof,
    /// Its number.
    pub sector_number: u64,
    /// Its replica commitment before a snap-deals update.
    #[serde(default, with = "lotus_json::cid::optional")]
    pub sector_key: Option<Cid>,
    /// Its replica commitment.
    #[serde(rename = "SealedCID", with = "lotus_json::cid")]
    pub sealed_cid: Cid,
}

/// What a miner needs to mine a round (`MinerGetBaseInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MiningBaseInfo {
    /// The miner's power.
    #[serde(with = "lotus_json::big_int")]
    pub miner_power: BigInt,
    /// The network's power.
    #[serde(with = "lotus_json::big_int")]
    pub network_power: BigInt,
    /// The challenged sectors.
    #[serde(with = "lotus_json::nullable_vec")]
    pub sectors: Vec<ExtendedSectorInfo>,
    /// The worker's key address.
    #[serde(with = "lotus_json::address")]
    pub worker_key: Address,
    /// The sector size.
    pub sector_size: u64,
    /// The beacon entry before this round's.
    pub prev_beacon_entry: BeaconEntry,
    /// This round's beacon entries.
    #[serde(with = "lotus_json::nullable_vec")]
    pub beacon_entries: Vec<BeaconEntry>,
    /// Whether the miner may mine.
    pub eligible_for_mining: bool,
}

/// A verified-registry allocation (`StateGetAllocation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Allocation {
    /// The client's actor id.
    pub client: u64,
    /// The provider's actor id.
    pub provider: u64,
    /// The piece.
    #[serde(with = "lotus_json::cid")]
    pub data: Cid,
    /// The piece's padded size.
    pub size: u64,
    /// The shortest term.
    pub term_min: ChainEpoch,
    /// The longest term.
    pub term_max: ChainEpoch,
    /// When it must be claimed by.
    pub expiration: ChainEpoch,
}

/// A market deal (`StateMarketStorageDeal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MarketDeal {
    /// The proposal.
    pub proposal: DealProposal,
    /// Its state.
    pub state: DealState,
}

/// A market deal's proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealProposal {
    /// The piece.
    #[serde(rename = "PieceCID", with = "lotus_json::cid")]
    pub piece_cid: Cid,
    /// Its padded size.
    pub piece_size: u64,
    /// Whether it is verified.
    pub verified_deal: bool,
    /// The client.
    #[serde(with = "lotus_json::address")]
    pub client: Address,
    /// The provider.
    #[serde(with = "lotus_json::address")]
    pub provider: Address,
    /// The client's label.
    pub label: String,
    /// When it starts.
    pub start_epoch: ChainEpoch,
    /// When it ends.
    pub end_epoch: ChainEpoch,
    /// Price per epoch.
    #[serde(with = "lotus_json::token_amount")]
    pub storage_price_per_epoch: TokenAmount,
    /// The provider's collateral.
    #[serde(with = "lotus_json::token_amount")]
    pub provider_collateral: TokenAmount,
    /// The client's collateral.
    #[serde(with = "lotus_json::token_amount")]
    pub client_collateral: TokenAmount,
}

/// A market deal's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealState {
    /// The sector holding it.
    pub sector_number: u64,
    /// When that sector started it.
    pub sector_start_epoch: ChainEpoch,
    /// When it was last updated.
    pub last_updated_epoch: ChainEpoch,
    /// When it was slashed.
    pub slash_epoch: ChainEpoch,
}

/// A v2 tipset selector: `{"tag": "latest" | "finalized" | "safe"}`, `{"height": ...}` or
/// `{"key": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TipSetSelector {
    /// A named tipset.
    Tag(String),
    /// The tipset at a height.
    Height(serde_json::Value),
    /// A tipset by key.
    Key(TipSetKey),
}
