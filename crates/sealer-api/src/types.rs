//! Every parameter and result of the `Venus.*` methods, in the reference's JSON shape.
//!
//! Field names follow Go's `encoding/json` over damocles' structs: PascalCase, with the
//! reference's exceptions kept (`ID` in `AllocatedSector`, `Id` in the sector-state
//! answer, `PieceCID`, `DealID`, `AllocationID`). Optional values are `null`, never
//! absent, because Go writes them that way; on input an absent optional is accepted too.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A sector's identity: `{"Miner": 1000, "Number": 7}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorId {
    /// The miner actor id.
    pub miner: u64,
    /// The sector number.
    pub number: u64,
}

impl fmt::Display for SectorId {
    /// The reference's name for a sector, `s-t0<miner>-<number>`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "s-t0{}-{}", self.miner, self.number)
    }
}

/// A registered seal proof, by its on-chain number (`abi.RegisteredSealProof`).
pub type SealProof = u64;

/// 32 bytes written as an array of 32 numbers (Go's `[32]byte`): commitments.
pub type Bytes32 = [u8; 32];

/// Byte strings written as standard base64 (Go's `[]byte`), `null` for nil.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Base64Bytes(pub Vec<u8>);

impl fmt::Debug for Base64Bytes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text: Option<String> = Option::deserialize(deserializer)?;
        match text {
            None => Ok(Base64Bytes(Vec::new())),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map(Base64Bytes)
                .map_err(|error| serde::de::Error::custom(format!("expected base64: {error}"))),
        }
    }
}

/// A CID as `{"/": "bafy…"}`, kept in its string form (the manager parses it where it
/// needs the value; the worker only passes it along).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CidJson {
    /// The CID's string form.
    #[serde(rename = "/")]
    pub cid: String,
}

/// `Venus.AllocateSector`'s request: which miners and proof types this thread takes.
/// An absent, `null` or empty list means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocateSectorSpec {
    /// Miner actor ids.
    #[serde(default)]
    pub allowed_miners: Option<Vec<u64>>,
    /// Seal proof numbers.
    #[serde(default)]
    pub allowed_proof_types: Option<Vec<SealProof>>,
}

impl AllocateSectorSpec {
    /// Whether `miner` is allowed.
    pub fn allows_miner(&self, miner: u64) -> bool {
        match &self.allowed_miners {
            Some(miners) if !miners.is_empty() => miners.contains(&miner),
            _ => true,
        }
    }

    /// Whether `proof` is allowed.
    pub fn allows_proof(&self, proof: SealProof) -> bool {
        match &self.allowed_proof_types {
            Some(proofs) if !proofs.is_empty() => proofs.contains(&proof),
            _ => true,
        }
    }
}

/// A sector handed to a sealing thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedSector {
    /// The sector.
    #[serde(rename = "ID")]
    pub id: SectorId,
    /// Its seal proof.
    #[serde(rename = "ProofType")]
    pub proof_type: SealProof,
}

/// `Venus.AcquireDeals`' request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AcquireDealsSpec {
    /// At most this many deals.
    #[serde(default)]
    pub max_deals: Option<u64>,
    /// Fill at least this many bytes with deals.
    #[serde(default)]
    pub min_used_space: Option<u64>,
}

/// A piece's commitment and padded size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceInfo {
    /// Padded size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
    /// The piece CID.
    #[serde(rename = "PieceCID")]
    pub piece_cid: CidJson,
}

/// The deal a piece belongs to; ids of 0 mark a pledge (zero) piece.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceDealInfo {
    /// Builtin-market deal id.
    #[serde(rename = "DealID", default)]
    pub deal_id: u64,
    /// Direct-data-onboarding allocation id.
    #[serde(rename = "AllocationID", default)]
    pub allocation_id: u64,
    /// Unpadded payload size.
    #[serde(rename = "PayloadSize", default)]
    pub payload_size: u64,
    /// Whether the deal lives in the builtin market actor.
    #[serde(rename = "IsBuiltinMarket", default)]
    pub is_builtin_market: bool,
}

/// One piece of a sector (`SectorPieceV2`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPiece {
    /// The piece.
    pub piece: PieceInfo,
    /// Its deal.
    pub deal_info: PieceDealInfo,
}

/// A PreCommit ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ticket {
    /// 32 bytes of randomness, base64.
    pub ticket: Base64Bytes,
    /// The epoch it was drawn at.
    pub epoch: i64,
}

/// An interactive-PoRep seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Seed {
    /// 32 bytes of randomness, base64.
    pub seed: Base64Bytes,
    /// The epoch it was drawn at.
    pub epoch: i64,
}

/// `Venus.WaitSeed`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitSeedResponse {
    /// Not yet; ask again after `delay` seconds.
    pub should_wait: bool,
    /// Seconds to wait.
    pub delay: u64,
    /// The seed, once it can be drawn.
    #[serde(default)]
    pub seed: Option<Seed>,
}

/// What a PreCommit commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PreCommitOnChainInfo {
    /// The replica commitment.
    pub comm_r: Bytes32,
    /// The data commitment.
    pub comm_d: Bytes32,
    /// The ticket sealed with.
    pub ticket: Ticket,
}

/// A ProveCommit's proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProofOnChainInfo {
    /// The proof bytes.
    pub proof: Base64Bytes,
}

/// The manager's verdict on a submission (`SubmitResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u64", try_from = "u64")]
pub enum SubmitResult {
    /// 1: taken.
    Accepted,
    /// 2: the same submission was made before.
    DuplicateSubmit,
    /// 3: a different submission was made before for this sector.
    MismatchedSubmission,
    /// 4: will never be taken.
    Rejected,
    /// 5: the sector's files are not where the worker said.
    FilesMissed,
}

impl From<SubmitResult> for u64 {
    fn from(result: SubmitResult) -> u64 {
        match result {
            SubmitResult::Accepted => 1,
            SubmitResult::DuplicateSubmit => 2,
            SubmitResult::MismatchedSubmission => 3,
            SubmitResult::Rejected => 4,
            SubmitResult::FilesMissed => 5,
        }
    }
}

impl TryFrom<u64> for SubmitResult {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        Ok(match value {
            1 => SubmitResult::Accepted,
            2 => SubmitResult::DuplicateSubmit,
            3 => SubmitResult::MismatchedSubmission,
            4 => SubmitResult::Rejected,
            5 => SubmitResult::FilesMissed,
            other => return Err(format!("{other} is not a SubmitResult (1 to 5)")),
        })
    }
}

/// `SubmitPreCommit`'s, `SubmitProof`'s and `SubmitSnapUpProof`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubmitResponse {
    /// The verdict.
    pub res: SubmitResult,
    /// Why, for anything but `Accepted`.
    #[serde(default)]
    pub desc: Option<String>,
}

/// Where a submitted message stands (`OnChainState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u64", try_from = "u64")]
pub enum OnChainState {
    /// 1: waiting to be sent, or sent and waiting to be included.
    Pending,
    /// 2: included, waiting for confidence.
    Packed,
    /// 3: landed and confirmed.
    Landed,
    /// 4: the manager knows no message for this sector.
    NotFound,
    /// 5: failed in a way a resubmission may fix.
    Failed,
    /// 6: failed for good.
    PermFailed,
    /// 7: the sector cannot succeed any more.
    ShouldAbort,
}

impl From<OnChainState> for u64 {
    fn from(state: OnChainState) -> u64 {
        match state {
            OnChainState::Pending => 1,
            OnChainState::Packed => 2,
            OnChainState::Landed => 3,
            OnChainState::NotFound => 4,
            OnChainState::Failed => 5,
            OnChainState::PermFailed => 6,
            OnChainState::ShouldAbort => 7,
        }
    }
}

impl TryFrom<u64> for OnChainState {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        Ok(match value {
            1 => OnChainState::Pending,
            2 => OnChainState::Packed,
            3 => OnChainState::Landed,
            4 => OnChainState::NotFound,
            5 => OnChainState::Failed,
            6 => OnChainState::PermFailed,
            7 => OnChainState::ShouldAbort,
            other => return Err(format!("{other} is not an OnChainState (1 to 7)")),
        })
    }
}

/// `PollPreCommitState`'s and `PollProofState`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PollStateResponse {
    /// Where the message stands.
    pub state: OnChainState,
    /// Details (a receipt, a reason).
    #[serde(default)]
    pub desc: Option<String>,
}

/// The worker's sealing thread reporting a state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReportStateRequest {
    /// Which thread.
    pub worker: WorkerIdentity,
    /// The change.
    pub state_change: StateChange,
    /// The failure that caused it, if any.
    #[serde(default)]
    pub failure: Option<ReportedFailure>,
}

/// A sealing thread: the worker instance and the thread's sealing-store location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerIdentity {
    /// The worker's instance name.
    pub instance: String,
    /// The sealing store's path.
    pub location: String,
}

/// A state change, by the states' and event's names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateChange {
    /// The state before.
    pub prev: String,
    /// The state after.
    pub next: String,
    /// The event that moved it.
    pub event: String,
}

/// A failure as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReportedFailure {
    /// The failure level's name.
    pub level: String,
    /// What went wrong.
    pub desc: String,
}

/// `Venus.ReportState`'s answer: what the manager knows of the sector's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorStateResponse {
    /// The sector.
    #[serde(rename = "Id")]
    pub id: SectorId,
    /// The manager has finalized it.
    #[serde(rename = "Finalized")]
    pub finalized: bool,
    /// Why it was aborted, if it was.
    #[serde(rename = "AbortReason", default)]
    pub abort_reason: Option<String>,
}

/// A worker's periodic ping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerInfo {
    /// The worker's instance name.
    pub name: String,
    /// Where the worker's own RPC listens (`host:port`).
    pub dest: String,
    /// The worker's version.
    #[serde(default)]
    pub version: String,
    /// Its threads.
    pub summary: WorkerSummary,
}

/// How a worker's sealing threads stand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerSummary {
    /// Threads in total.
    pub threads: u64,
    /// Threads without a sector.
    pub empty: u64,
    /// Paused threads.
    pub paused: u64,
    /// Threads running a step.
    pub running: u64,
    /// Threads waiting (for the chain, a slot, a retry).
    pub waiting: u64,
    /// Threads whose last step failed.
    pub errors: u64,
}

/// A persistent store as the worker sees it (`StoreBasicInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreBasicInfo {
    /// The store's instance name.
    pub name: String,
    /// Its path on the worker's and the manager's file systems.
    pub path: String,
    /// Files must be regular files.
    #[serde(default)]
    pub strict: bool,
    /// Nothing new may be written.
    #[serde(default)]
    pub read_only: bool,
    /// Its weight in the random choice.
    #[serde(default)]
    pub weight: u64,
    /// Free-form metadata.
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
}

/// `Venus.AllocateSanpUpSector`'s request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocateSnapUpSpec {
    /// Which miners and proof types.
    pub sector: AllocateSectorSpec,
    /// Which deals.
    pub deals: AcquireDealsSpec,
}

/// `Venus.SubmitSnapUpProof`'s information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapUpOnChainInfo {
    /// The new replica commitment.
    pub comm_r: Bytes32,
    /// The new data commitment.
    pub comm_d: Bytes32,
    /// The persistent store holding the update files.
    pub access_instance: String,
    /// The pieces encoded, in order.
    #[serde(default)]
    pub pieces: Vec<CidJson>,
    /// The replica-update proof.
    pub proof: Base64Bytes,
}

/// `Venus.WdPoStAllocateJobs`' request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocatePoStSpec {
    /// Miner actor ids; empty for any.
    #[serde(default)]
    pub allowed_miners: Option<Vec<u64>>,
    /// PoSt proof names (`StackedDrgWindow32GiBV1_2`); empty for any.
    #[serde(default)]
    pub allowed_proof_types: Option<Vec<String>>,
}

/// A window-PoSt job's result as the worker reports it (snake_case in the reference).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowPoStOutput {
    /// The proofs, base64.
    #[serde(default)]
    pub proofs: Vec<Base64Bytes>,
    /// Sectors that could not be proven.
    #[serde(default)]
    pub faults: Vec<u64>,
}

/// `Venus.SealingDefaults`' answer: the `[sealing]` settings a worker inherits from the
/// manager, with the worker TOML's key names. Only the keys the manager's operator set
/// are present; a worker applies them over its built-in defaults and under its own
/// `[sealing]` and `[[sealing_thread]].sealing` values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealingDefaults {
    /// Miners a sealing thread may allocate for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_miners: Option<Vec<u64>>,
    /// Sector sizes a sealing thread may allocate (`"32GiB"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_sizes: Option<Vec<String>>,
    /// Ask for deals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_deals: Option<bool>,
    /// With deals enabled, never seal committed capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_cc: Option<bool>,
    /// At most this many deals per sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deals: Option<u64>,
    /// Fill at least this many bytes with deals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_deal_space: Option<u64>,
    /// Temporary failures in a row before a thread pauses its sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Pause between two sectors of a thread (`"30s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_interval: Option<String>,
    /// Pause after a temporary failure (`"60s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_interval: Option<String>,
    /// Period of polls of the manager (`"180s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_polling_interval: Option<String>,
    /// Skip polling the proof's state after submitting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_proof_check: Option<bool>,
    /// Idle answers in a row before a thread's job loop starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_task_max_retries: Option<u32>,
    /// Check a sector with an all-zero seed right after PC2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_after_pc2: Option<bool>,
}
