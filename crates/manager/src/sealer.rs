//! The `Venus.*` methods a sealing worker calls: what each checks, records and answers.
//!
//! Every method is safe to repeat: a repeated allocation cannot happen (each call is a
//! new sector), and every other call either answers from the record or changes it only
//! when the record still says what the call expects. Chain reads happen outside
//! database transactions; writes are conditional on the state that was read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chain_client::types::TipSetKey;
use chain_client::{ChainError, LotusClient, transport::HttpTransport};
use fvm_shared::address::Address;
use fvm_shared::commcid::replica_commitment_v1_to_cid;
use fvm_shared::sector::RegisteredSealProof;
use sealer_api::{
    AllocateSectorSpec, AllocatedSector, Base64Bytes, OnChainState, PollStateResponse,
    PreCommitOnChainInfo, ProofOnChainInfo, ReportStateRequest, SectorId, SectorStateResponse,
    Seed, StoreBasicInfo, SubmitResponse, SubmitResult, Ticket, WaitSeedResponse, WorkerInfo,
};
use storage_alloc::PersistStoreConfig;
use tokio::sync::Mutex;

use crate::chain_reads::AnswersAtTipset;
use crate::commit::{PollDecision, poll_decision};
use crate::config::{ManagerConfig, MinerConfig};
use crate::db::{
    Database, DatabaseError, Phase, PreCommitRecord, ReservationRow, SectorRow, WorkerRow,
};
use crate::landing::LandingChecks;

mod follow;

/// Domain-separation tags of chain randomness (Lotus's `crypto.DomainSeparationTag`).
pub mod randomness_tag {
    /// A PreCommit's ticket.
    pub const SEAL_RANDOMNESS: i64 = 5;
    /// An interactive PoRep's seed.
    pub const INTERACTIVE_SEAL_CHALLENGE_SEED: i64 = 6;
}

/// How far back a precommit's ticket may be drawn (the actors' `MaxPreCommitRandomnessLookback`:
/// a day of epochs plus the chain finality).
pub const MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK: i64 = 2880 + 900;

/// A state report waiting to be written: worker instance, report JSON, time.
type PendingReport = (String, String, i64);

/// Past this many history events waiting to be written (the database refusing writes for
/// a long time), new ones are dropped and counted rather than kept without bound.
const MAXIMUM_PENDING_HISTORY: usize = 50_000;

/// Past this many sectors, the memory of each one's last history event starts afresh (at
/// worst one repeated event per sector follows).
const MAXIMUM_REMEMBERED_HISTORY: usize = 100_000;

/// The history workers' reports leave in a sector's events: each state change and each
/// failure, written with the reports; a report that says again what the sector's last
/// event said (a worker retrying a step) adds nothing.
#[derive(Debug, Default)]
struct ReportHistory {
    /// Events not yet written.
    pending: Vec<crate::db::SectorEventRow>,
    /// The kind and detail of each sector's last event.
    last_event_of: std::collections::HashMap<(u64, u64), (&'static str, String)>,
    /// Events dropped because `pending` was full, since the last flush.
    dropped: usize,
}

impl ReportHistory {
    fn record(&mut self, sector: SectorId, at: i64, report: &ReportStateRequest) {
        let (kind, detail) = history_event_of(report);
        let key = (sector.miner, sector.number);
        if self
            .last_event_of
            .get(&key)
            .is_some_and(|(last_kind, last_detail)| *last_kind == kind && *last_detail == detail)
        {
            return;
        }
        if self.last_event_of.len() >= MAXIMUM_REMEMBERED_HISTORY {
            self.last_event_of.clear();
        }
        self.last_event_of.insert(key, (kind, detail.clone()));
        if self.pending.len() >= MAXIMUM_PENDING_HISTORY {
            self.dropped += 1;
            return;
        }
        self.pending.push(crate::db::SectorEventRow {
            miner: sector.miner,
            number: sector.number,
            at,
            kind: kind.to_owned(),
            detail,
        });
    }
}

/// The event a worker's report leaves in the sector's history: `worker failure` when it
/// carries a failure, `worker state` otherwise; the detail names the change and the
/// worker.
pub fn history_event_of(report: &ReportStateRequest) -> (&'static str, String) {
    let change = &report.state_change;
    let worker = &report.worker.instance;
    match &report.failure {
        Some(failure) => (
            "worker failure",
            format!(
                "{}: {} ({} -> {} on {}, worker {worker})",
                failure.level, failure.desc, change.prev, change.next, change.event
            ),
        ),
        None => (
            "worker state",
            format!(
                "{} -> {} on {} (worker {worker})",
                change.prev, change.next, change.event
            ),
        ),
    }
}

/// How often state reports are written.
pub const REPORT_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// How long a head read is reused by the API calls. The chain follower
/// ([`Manager::follow_chain`]) reads the head twice as often, so while it runs the calls
/// never read it themselves.
pub const HEAD_REUSE: Duration = Duration::from_millis(250);

/// How old the chain follower's latest head may be before the calls read the head
/// themselves (the follower stopped, or the node stopped answering it).
pub const FOLLOWED_HEAD_MAX_AGE: Duration = Duration::from_secs(3);

/// How long a look at a persistent store's files may take before the call gives up
/// (a hung network mount); the worker asks again later.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one measurement of the stores' free space serves reservations before a new
/// one is made (in the background: reservations go on with the latest meanwhile).
const STORE_MEASUREMENT_REUSE: Duration = Duration::from_secs(1);

/// Past this age a measurement no longer serves (the stores stopped answering): a
/// reservation measures them itself, and fails when they do not answer.
const STORE_MEASUREMENT_MAX_AGE: Duration = Duration::from_secs(60);

/// A JSON-RPC error the API answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct ApiError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// A failure the worker should retry (code 1).
    pub fn temporary(message: impl Into<String>) -> ApiError {
        ApiError {
            code: sealer_api::ERROR_TEMPORARY,
            message: message.into(),
        }
    }

    /// The manager has no sealing record of the sector (code 11001): the worker aborts it.
    pub fn sector_not_found(sector: SectorId, why: &str) -> ApiError {
        ApiError {
            code: sealer_api::ERROR_SECTOR_STATE_NOT_FOUND,
            message: format!("sector state not found: {sector}: {why}"),
        }
    }

    /// The request's parameters are wrong (JSON-RPC's -32602).
    pub fn invalid_params(message: impl Into<String>) -> ApiError {
        ApiError {
            code: -32602,
            message: message.into(),
        }
    }
}

impl From<DatabaseError> for ApiError {
    fn from(error: DatabaseError) -> ApiError {
        tracing::error!(%error, "database call failed");
        ApiError::temporary(format!("the manager's database failed: {error}"))
    }
}

impl From<ChainError> for ApiError {
    fn from(error: ChainError) -> ApiError {
        tracing::warn!(%error, "chain call failed");
        ApiError::temporary(format!("the chain node failed: {error}"))
    }
}

/// What the manager learned about a miner at start.
#[derive(Clone, Debug)]
pub struct MinerFacts {
    /// Its configuration.
    pub config: MinerConfig,
    /// Its address.
    pub address: Address,
    /// The address its messages come from.
    pub sender: Address,
    /// Its sector size in bytes.
    pub sector_size: u64,
    /// The seal proof new sectors use.
    pub seal_proof: RegisteredSealProof,
}

/// The seal proof for `sector_size` (the V1.1 proofs; synthetic PoRep if asked).
pub fn seal_proof_for(sector_size: u64, synthetic: bool) -> Option<RegisteredSealProof> {
    use RegisteredSealProof as P;
    const KIB_2: u64 = 2 << 10;
    const MIB_8: u64 = 8 << 20;
    const MIB_512: u64 = 512 << 20;
    const GIB_32: u64 = 32 << 30;
    const GIB_64: u64 = 64 << 30;
    Some(match (sector_size, synthetic) {
        (KIB_2, false) => P::StackedDRG2KiBV1P1,
        (MIB_8, false) => P::StackedDRG8MiBV1P1,
        (MIB_512, false) => P::StackedDRG512MiBV1P1,
        (GIB_32, false) => P::StackedDRG32GiBV1P1,
        (GIB_64, false) => P::StackedDRG64GiBV1P1,
        (KIB_2, true) => P::StackedDRG2KiBV1P1_Feat_SyntheticPoRep,
        (MIB_8, true) => P::StackedDRG8MiBV1P1_Feat_SyntheticPoRep,
        (MIB_512, true) => P::StackedDRG512MiBV1P1_Feat_SyntheticPoRep,
        (GIB_32, true) => P::StackedDRG32GiBV1P1_Feat_SyntheticPoRep,
        (GIB_64, true) => P::StackedDRG64GiBV1P1_Feat_SyntheticPoRep,
        _ => return None,
    })
}

/// The data commitment of a committed-capacity (all-zero) sector of `proof`'s size.
pub fn cc_comm_d(proof: RegisteredSealProof) -> Option<[u8; 32]> {
    let cid = fil_actor_miner_state::v18::CompactCommD::new(None)
        .get_cid(proof)
        .ok()?;
    fvm_shared::commcid::cid_to_data_commitment_v1(&cid).ok()
}

/// How submitted proofs are checked before they are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofCheck {
    /// With filecoin-proofs' verifier (needs the sector size's verifying key).
    Real,
    /// With the fake backend's check (the devnet with fake proofs).
    Fake,
}

/// The chain answers the API calls share per tipset (see [`crate::chain_reads`]).
#[derive(Default)]
struct ChainReadsAtTipset {
    /// A miner's allocated sector numbers.
    allocated: AnswersAtTipset<u64, Arc<fvm_ipld_bitfield::BitField>>,
    /// The precommit of (miner, number).
    pre_commits:
        AnswersAtTipset<(u64, u64), Option<chain_client::types::SectorPreCommitOnChainInfo>>,
    /// Whether (miner, number) is active.
    active: AnswersAtTipset<(u64, u64), bool>,
    /// Randomness for (miner, tag, epoch).
    randomness: AnswersAtTipset<(u64, i64, i64), Vec<u8>>,
}

/// The manager's state shared by the API handlers and the commit manager.
pub struct Manager {
    /// The record.
    pub db: Database,
    /// The chain.
    pub chain: LotusClient<HttpTransport>,
    /// The configuration.
    pub config: Arc<ManagerConfig>,
    /// The configured miners.
    pub miners: BTreeMap<u64, MinerFacts>,
    /// The persistent stores.
    pub stores: Vec<PersistStoreConfig>,
    /// Epochs from a precommit to its seed.
    pub pre_commit_challenge_delay: i64,
    /// Seconds per epoch.
    pub block_delay_secs: u64,
    /// This database's instance id.
    pub instance_id: String,
    /// How proofs are checked.
    pub proof_check: ProofCheck,
    /// State reports not yet written, the latest per sector. They are informational
    /// (what a worker last said), the most frequent write by far, and written together
    /// every [`REPORT_FLUSH_INTERVAL`]; a crash loses at most that much of them, which
    /// the workers' next reports replace.
    pending_reports: std::sync::Mutex<std::collections::HashMap<(u64, u64), PendingReport>>,
    /// The history the reports leave, written with them.
    report_history: std::sync::Mutex<ReportHistory>,
    /// The last head read from the chain, shared by the API calls.
    head: std::sync::Mutex<Option<KeptHead>>,
    /// Held by the one caller reading a new head, so callers finding the head too old
    /// together make one read.
    head_refresh: Mutex<()>,
    /// Chain answers shared by calls asking the same question at the same tipset.
    reads: ChainReadsAtTipset,
    /// What the chain showed for the sectors of recently landed messages.
    landings: Arc<LandingChecks>,
    /// Seeds the workers will ask for, by (miner, seed epoch): the height from which
    /// each is handed out. The chain follower reads a seed once it is ready, before the
    /// workers ask.
    wanted_seeds: std::sync::Mutex<BTreeMap<(u64, i64), i64>>,
    /// The window PoSt runners' records by miner actor (`daemon run --poster`).
    pub post_records: std::sync::Mutex<BTreeMap<u64, post::runner::DeadlineRecords>>,
    /// Sectors' trace contexts read lately, by (miner, number).
    traces: std::sync::Mutex<std::collections::HashMap<(u64, u64), String>>,
    /// The winning PoSt services (`daemon run --miner`), by miner actor id.
    winning: std::sync::Mutex<BTreeMap<u64, Arc<post::winning::WinningPostService>>>,
    /// The reservation ledger, loaded from the database on first use and written
    /// through: every change is recorded in the database while this lock is held.
    reservations: Mutex<Option<storage_alloc::ReservationLedger>>,
    /// The stores' latest free-space measurement for reservations.
    store_views: Arc<std::sync::Mutex<StoreViews>>,
}

/// The persistent stores' free space as last measured for reservations.
#[derive(Default)]
struct StoreViews {
    /// The measurement and when it was made.
    latest: Option<(std::time::Instant, Vec<storage_alloc::StoreView>)>,
    /// Whether a new measurement is being made in the background.
    measuring: bool,
}

/// Runs `look` (file-system work on the persistent stores) off the async threads, giving
/// up after [`STORE_CHECK_TIMEOUT`]: stores are often network mounts, where a look can
/// wait for the server (or, on a busy local disk, for a directory other sectors' files
/// are being written into). `what` names the stores in the error.
async fn look_at_stores<T: Send + 'static>(
    what: &str,
    look: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::time::timeout(STORE_CHECK_TIMEOUT, tokio::task::spawn_blocking(look))
        .await
        .map_err(|_| {
            ApiError::temporary(format!(
                "{what} did not answer within {STORE_CHECK_TIMEOUT:?}"
            ))
        })?
        .map_err(|error| ApiError::temporary(format!("looking at {what} failed: {error}")))
}

/// Every store in `stores` with its free space (`statvfs`).
async fn measure_stores(
    stores: Vec<PersistStoreConfig>,
) -> Result<Vec<storage_alloc::StoreView>, ApiError> {
    look_at_stores("the persistent stores", move || {
        storage_alloc::ledger_file::measure_stores(&stores)
    })
    .await
}

/// A head read from the chain, kept for the API calls.
struct KeptHead {
    /// When the read began.
    read_at: std::time::Instant,
    /// The head.
    head: chain_client::types::TipSet,
    /// Whether the chain follower read it (and so keeps reading the heads after it).
    followed: bool,
}

/// Whether a head read `age` ago still serves the calls: a call's own read for
/// [`HEAD_REUSE`], the chain follower's for [`FOLLOWED_HEAD_MAX_AGE`].
fn head_usable(age: Duration, followed: bool) -> bool {
    age < HEAD_REUSE || (followed && age < FOLLOWED_HEAD_MAX_AGE)
}

/// The epoch a ticket drawn at `head` comes from: `TicketLookback` epochs behind it.
fn ticket_epoch(head: i64, miner: &MinerFacts) -> i64 {
    (head - miner.config.sealing.ticket_lookback).max(0)
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

fn entropy(miner: &Address) -> Vec<u8> {
    fvm_ipld_encoding::to_vec(miner).unwrap_or_default()
}

fn bytes32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

impl Manager {
    /// Sets the gauges `/metrics` shows from the database and the stores now: sectors by
    /// miner and phase, messages by state, each store's free and reserved bytes.
    pub async fn refresh_gauges(&self) -> Result<(), ApiError> {
        use telemetry::metrics::gauge;
        for (miner, phase, count) in self.db.count_sectors().await? {
            gauge!("sealcluster_sectors", "miner" => miner.to_string(), "phase" => phase)
                .set(count as f64);
        }
        for (state, count) in self.db.count_messages().await? {
            gauge!("sealcluster_messages", "state" => state).set(count as f64);
        }
        let reservations = self.db.reservations().await?;
        for view in self.measure_stores().await? {
            let name = view.config.name.clone();
            if let Ok(free) = &view.free_bytes {
                gauge!("sealcluster_store_free_bytes", "store" => name.clone()).set(*free as f64);
            }
            let reserved: u64 = reservations
                .iter()
                .filter(|reservation| reservation.store == name)
                .map(|reservation| reservation.bytes)
                .sum();
            gauge!("sealcluster_store_reserved_bytes", "store" => name).set(reserved as f64);
        }
        Ok(())
    }

    /// Starts the trace of a new sector: its root span, whose context is kept with the
    /// sector so every later step on every host is part of it. Without an exporter
    /// there is no context and nothing is kept.
    async fn start_sector_trace(&self, miner: u64, number: u64) {
        let root = tracing::info_span!(parent: None, "sector", miner, number);
        let Some(traceparent) = telemetry::traceparent_of(&root) else {
            return;
        };
        drop(root);
        if let Err(error) = self.db.put_sector_trace(miner, number, &traceparent).await {
            tracing::warn!(miner, number, %error, "could not keep the sector's trace context");
            return;
        }
        self.remember_trace(miner, number, traceparent);
    }

    fn remember_trace(&self, miner: u64, number: u64, traceparent: String) {
        let mut traces = self
            .traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A bound on memory; forgotten contexts are read from the database again.
        if traces.len() >= 100_000 {
            traces.clear();
        }
        traces.insert((miner, number), traceparent);
    }

    /// The trace context of sector `number` of `miner`, if it has one.
    pub async fn sector_traceparent(&self, miner: u64, number: u64) -> Option<String> {
        if let Some(known) = self
            .traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(miner, number))
        {
            return Some(known.clone());
        }
        match self.db.sector_trace(miner, number).await {
            Ok(Some(traceparent)) => {
                self.remember_trace(miner, number, traceparent.clone());
                Some(traceparent)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(miner, number, %error, "could not read the sector's trace context");
                None
            }
        }
    }

    /// Serves winning PoSts for `service`'s miner from now on.
    pub fn add_winning_service(&self, service: Arc<post::winning::WinningPostService>) {
        let actor = service.miner().id().unwrap_or_default();
        self.winning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(actor, service);
    }

    /// The winning PoSt service of `miner`, if this manager runs one.
    pub fn winning_service(
        &self,
        miner: &Address,
    ) -> Option<Arc<post::winning::WinningPostService>> {
        let actor = miner.id().ok()?;
        self.winning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&actor)
            .cloned()
    }

    /// Every winning PoSt service, by miner.
    pub fn winning_services(&self) -> Vec<Arc<post::winning::WinningPostService>> {
        self.winning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// A manager over `db` and `chain`, learning each configured miner's facts from the
    /// chain.
    pub async fn new(
        db: Database,
        chain: LotusClient<HttpTransport>,
        config: Arc<ManagerConfig>,
        proof_check: ProofCheck,
    ) -> anyhow::Result<Manager> {
        use anyhow::Context as _;
        let params = chain
            .state_get_network_params()
            .await
            .context("read the network's parameters")?;
        let mut miners = BTreeMap::new();
        for miner in &config.miners {
            let address = Address::new_id(miner.actor);
            let info = chain
                .state_miner_info(&address, &TipSetKey::head())
                .await
                .with_context(|| format!("read miner {address}'s info"))?;
            let seal_proof = seal_proof_for(info.sector_size, miner.sealing.use_synthetic_po_rep)
                .with_context(|| {
                format!(
                    "miner {address} has sector size {}, which no seal proof has",
                    info.sector_size
                )
            })?;
            let sender = match miner
                .commitment
                .pre
                .sender
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                Some(text) => chain_client::lotus_json::address::parse(text).map_err(|error| {
                    anyhow::anyhow!("Miners.Commitment.Pre.Sender {text:?}: {error}")
                })?,
                None => info.worker,
            };
            miners.insert(
                miner.actor,
                MinerFacts {
                    config: miner.clone(),
                    address,
                    sender,
                    sector_size: info.sector_size,
                    seal_proof,
                },
            );
        }
        let (instance_id, _) = db
            .identity()
            .await
            .context("read the database's identity")?;
        let stores = config
            .common
            .persist_stores
            .iter()
            .map(crate::config::PersistStoreEntry::to_store)
            .collect();
        Ok(Manager {
            db,
            chain,
            config,
            miners,
            stores,
            pre_commit_challenge_delay: params.pre_commit_challenge_delay,
            block_delay_secs: params.block_delay_secs.max(1),
            instance_id,
            proof_check,
            reservations: Mutex::new(None),
            store_views: Arc::default(),
            head: std::sync::Mutex::new(None),
            head_refresh: Mutex::new(()),
            post_records: std::sync::Mutex::new(BTreeMap::new()),
            winning: std::sync::Mutex::new(BTreeMap::new()),
            traces: std::sync::Mutex::new(std::collections::HashMap::new()),
            reads: ChainReadsAtTipset::default(),
            landings: Arc::default(),
            wanted_seeds: std::sync::Mutex::new(BTreeMap::new()),
            pending_reports: std::sync::Mutex::new(std::collections::HashMap::new()),
            report_history: std::sync::Mutex::new(ReportHistory::default()),
        })
    }

    /// The chain's head as read at most [`HEAD_REUSE`] ago, or the chain follower's
    /// latest head while it follows (at most [`FOLLOWED_HEAD_MAX_AGE`] old: a node busy
    /// making a block delays the follower, and the calls keep answering on the head
    /// before instead of all waiting for the node). The API calls share one read instead
    /// of asking the node each; answers that depend on it are a moment behind the chain,
    /// which only delays a worker's next step (the chain checks what lands, and every
    /// check below is against a real tipset of the chain).
    pub async fn recent_head(&self) -> Result<chain_client::types::TipSet, ApiError> {
        if let Some(head) = self.head_read_since(std::time::Instant::now()) {
            return Ok(head);
        }
        let _reading = self.head_refresh.lock().await;
        // Another caller may have read it while this one waited for the lock.
        if let Some(head) = self.head_read_since(std::time::Instant::now()) {
            return Ok(head);
        }
        self.read_head().await
    }

    /// The head read now, kept as the recent head for the calls that follow (so a head
    /// once used is never followed by an older one).
    async fn fresh_head(&self) -> Result<chain_client::types::TipSet, ApiError> {
        let _reading = self.head_refresh.lock().await;
        self.read_head().await
    }

    /// Reads the head and keeps it as the recent one; the caller holds `head_refresh`.
    async fn read_head(&self) -> Result<chain_client::types::TipSet, ApiError> {
        let now = std::time::Instant::now();
        let head = self.chain.chain_head().await?;
        self.keep_head(now, &head, false);
        Ok(head)
    }

    /// Keeps `head`, read at `read_at`, as the recent head, unless a higher head read
    /// since is kept and still recent: a head once used is not followed by a lower one
    /// (the chain follower publishes a head only after reading ahead at it, so a call's
    /// own read may have kept a newer head meanwhile). `followed` says the chain
    /// follower read it.
    fn keep_head(
        &self,
        read_at: std::time::Instant,
        head: &chain_client::types::TipSet,
        followed: bool,
    ) {
        let Ok(mut cached) = self.head.lock() else {
            return;
        };
        let keep = cached.as_ref().is_none_or(|kept| {
            head.height >= kept.head.height || read_at.duration_since(kept.read_at) >= HEAD_REUSE
        });
        if keep {
            *cached = Some(KeptHead {
                read_at,
                head: head.clone(),
                followed,
            });
        }
    }

    /// A fresh head, or the recent one.
    async fn head(&self, fresh: bool) -> Result<chain_client::types::TipSet, ApiError> {
        if fresh {
            self.fresh_head().await
        } else {
            self.recent_head().await
        }
    }

    fn head_read_since(&self, now: std::time::Instant) -> Option<chain_client::types::TipSet> {
        let cached = self.head.lock().ok()?;
        let kept = cached.as_ref()?;
        head_usable(now.duration_since(kept.read_at), kept.followed).then(|| kept.head.clone())
    }

    /// The miner's sector numbers allocated on chain at `tipset` (read once per tipset
    /// for all calls; the chain follower reads it at each new head before calls ask).
    async fn allocated_on_chain(
        &self,
        miner: &MinerFacts,
        tipset: &TipSetKey,
    ) -> Result<Arc<fvm_ipld_bitfield::BitField>, ApiError> {
        Ok(self
            .reads
            .allocated
            .get_or_read(tipset, miner.config.actor, || async {
                Ok::<_, ChainError>(Arc::new(
                    self.chain
                        .state_miner_allocated(&miner.address, tipset)
                        .await?,
                ))
            })
            .await?)
    }

    /// The sector's precommit on chain at `tipset`.
    async fn pre_commit_on_chain(
        &self,
        miner: &MinerFacts,
        number: u64,
        tipset: &TipSetKey,
    ) -> Result<Option<chain_client::types::SectorPreCommitOnChainInfo>, ApiError> {
        Ok(self
            .reads
            .pre_commits
            .get_or_read(tipset, (miner.config.actor, number), || {
                self.chain
                    .state_sector_pre_commit_info(&miner.address, number, tipset)
            })
            .await?)
    }

    /// Whether the sector is active (proven) on chain at `tipset`.
    async fn active_on_chain(
        &self,
        miner: &MinerFacts,
        number: u64,
        tipset: &TipSetKey,
    ) -> Result<bool, ApiError> {
        Ok(self
            .reads
            .active
            .get_or_read(tipset, (miner.config.actor, number), || async {
                Ok::<bool, ChainError>(
                    self.chain
                        .state_sector_get_info(&miner.address, number, tipset)
                        .await?
                        .is_some(),
                )
            })
            .await?)
    }

    /// The chain's randomness for `tag` at `epoch` with the miner's address as entropy,
    /// as seen at `tipset`.
    async fn randomness(
        &self,
        miner: &MinerFacts,
        tag: i64,
        epoch: i64,
        tipset: &TipSetKey,
    ) -> Result<Vec<u8>, ApiError> {
        let entropy = entropy(&miner.address);
        Ok(self
            .reads
            .randomness
            .get_or_read(tipset, (miner.config.actor, tag, epoch), || async {
                if tag == randomness_tag::INTERACTIVE_SEAL_CHALLENGE_SEED {
                    self.chain
                        .state_get_randomness_from_beacon(tag, epoch, &entropy, tipset)
                        .await
                } else {
                    self.chain
                        .state_get_randomness_from_tickets(tag, epoch, &entropy, tipset)
                        .await
                }
            })
            .await?)
    }

    /// The sector's record in any phase, or "not found" (11001).
    pub async fn known_sector(&self, sector: SectorId) -> Result<SectorRow, ApiError> {
        self.db
            .sector(sector.miner, sector.number)
            .await?
            .ok_or_else(|| ApiError::sector_not_found(sector, "never allocated by this manager"))
    }

    async fn sealing_sector(&self, sector: SectorId) -> Result<SectorRow, ApiError> {
        let row = self.known_sector(sector).await?;
        match row.phase {
            Phase::Sealing => Ok(row),
            Phase::Finalized => Err(ApiError::sector_not_found(sector, "it is finalized")),
            Phase::Aborted => Err(ApiError::sector_not_found(
                sector,
                &format!(
                    "it was aborted: {}",
                    row.abort_reason.as_deref().unwrap_or("no reason given")
                ),
            )),
        }
    }

    /// A sealing sector's record and the message carrying its precommit (or, with
    /// `proof`, its proof), from the row cache when kept there; "not found" (11001) as
    /// [`Self::sealing_sector`] says it for a sector not sealing.
    async fn sealing_sector_with_message(
        &self,
        sector: SectorId,
        proof: bool,
    ) -> Result<(SectorRow, Option<Arc<crate::db::MessageRow>>), ApiError> {
        let (row, message) = self
            .db
            .sector_with_message(sector.miner, sector.number, proof)
            .await?
            .ok_or_else(|| ApiError::sector_not_found(sector, "never allocated by this manager"))?;
        if row.phase != Phase::Sealing {
            // The same answer as every other sealing call about an ended sector.
            self.sealing_sector(sector).await?;
        }
        Ok((row, message))
    }

    fn miner(&self, sector: SectorId) -> Result<&MinerFacts, ApiError> {
        self.miners.get(&sector.miner).ok_or_else(|| {
            ApiError::sector_not_found(sector, "its miner is not configured in this manager")
        })
    }

    /// `Venus.AllocateSector`.
    pub async fn allocate_sector(
        &self,
        spec: &AllocateSectorSpec,
    ) -> Result<Option<AllocatedSector>, ApiError> {
        let mut candidates: Vec<&MinerFacts> = self
            .miners
            .values()
            .filter(|miner| miner.config.sector.enabled)
            .filter(|miner| spec.allows_miner(miner.config.actor))
            .filter(|miner| spec.allows_proof(i64::from(miner.seal_proof) as u64))
            .collect();
        while !candidates.is_empty() {
            let index = rand::random::<u64>() as usize % candidates.len();
            let miner = candidates.swap_remove(index);
            // The number this database hands out next is above every number it handed
            // out before; the chain's list only matters for numbers used elsewhere, so
            // the list at a head a moment old serves every allocation in that moment.
            let head = self.recent_head().await?;
            let allocated = self.allocated_on_chain(miner, &head.key()).await?;
            let sector = &miner.config.sector;
            let proof = i64::from(miner.seal_proof) as u64;
            let number = self
                .db
                .allocate_sector(
                    miner.config.actor,
                    proof,
                    sector.min_number.unwrap_or(0),
                    sector.max_number,
                    Box::new(move |number| allocated.get(number)),
                    unix_now(),
                )
                .await?;
            if let Some(number) = number {
                tracing::info!(miner = miner.config.actor, number, "allocated a sector");
                self.start_sector_trace(miner.config.actor, number).await;
                return Ok(Some(AllocatedSector {
                    id: SectorId {
                        miner: miner.config.actor,
                        number,
                    },
                    proof_type: proof,
                }));
            }
            tracing::warn!(
                miner = miner.config.actor,
                "no sector number left below MaxNumber"
            );
        }
        Ok(None)
    }

    /// `Venus.AssignTicket`: the stored ticket while it stays usable, else a new one
    /// drawn `TicketLookback` epochs behind the head.
    pub async fn assign_ticket(&self, sector: SectorId) -> Result<Ticket, ApiError> {
        match self.assign_ticket_at(sector, false).await {
            // Refused on a head that may be a moment old: asked again on a fresh one.
            Err(error) if error.code == sealer_api::ERROR_TEMPORARY => {
                self.assign_ticket_at(sector, true).await
            }
            answer => answer,
        }
    }

    async fn assign_ticket_at(&self, sector: SectorId, fresh: bool) -> Result<Ticket, ApiError> {
        let row = self.sealing_sector(sector).await?;
        let miner = self.miner(sector)?;
        let head = self.head(fresh).await?;
        // A precommit takes a while to be batched and land; a ticket with less than a
        // quarter of its life left is replaced.
        if let Some((ticket, epoch)) = &row.ticket
            && head.height - epoch < MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK * 3 / 4
        {
            return Ok(Ticket {
                ticket: Base64Bytes(ticket.clone()),
                epoch: *epoch,
            });
        }
        let epoch = ticket_epoch(head.height, miner);
        if epoch >= head.height {
            return Err(ApiError::temporary(format!(
                "the chain is at epoch {}; a ticket needs an earlier epoch",
                head.height
            )));
        }
        let randomness = self
            .randomness(miner, randomness_tag::SEAL_RANDOMNESS, epoch, &head.key())
            .await?;
        self.db
            .set_ticket(sector.miner, sector.number, &randomness, epoch, unix_now())
            .await?;
        Ok(Ticket {
            ticket: Base64Bytes(randomness),
            epoch,
        })
    }

    /// `Venus.SubmitPreCommit`.
    pub async fn submit_pre_commit(
        &self,
        sector: AllocatedSector,
        info: &PreCommitOnChainInfo,
        hard_reset: bool,
    ) -> Result<SubmitResponse, ApiError> {
        let answer = self
            .submit_pre_commit_at(sector, info, hard_reset, false)
            .await?;
        if answer.res == SubmitResult::Rejected {
            // A refusal ends the sector on the worker: it is never given on a head that
            // may be a moment old.
            return self
                .submit_pre_commit_at(sector, info, hard_reset, true)
                .await;
        }
        Ok(answer)
    }

    async fn submit_pre_commit_at(
        &self,
        sector: AllocatedSector,
        info: &PreCommitOnChainInfo,
        hard_reset: bool,
        fresh: bool,
    ) -> Result<SubmitResponse, ApiError> {
        let id = sector.id;
        let row = self.sealing_sector(id).await?;
        let miner = self.miner(id)?;
        let reply = |res: SubmitResult, desc: Option<String>| Ok(SubmitResponse { res, desc });
        if sector.proof_type != row.proof_type {
            return reply(
                SubmitResult::MismatchedSubmission,
                Some(format!(
                    "the sector was allocated with proof {}, not {}",
                    row.proof_type, sector.proof_type
                )),
            );
        }
        let submitted = PreCommitRecord {
            comm_r: info.comm_r.to_vec(),
            comm_d: info.comm_d.to_vec(),
            ticket: info.ticket.ticket.0.clone(),
            ticket_epoch: info.ticket.epoch,
            submitted_at: unix_now(),
        };
        if let Some(existing) = &row.pre
            && !hard_reset
        {
            let same = existing.comm_r == submitted.comm_r
                && existing.comm_d == submitted.comm_d
                && existing.ticket == submitted.ticket
                && existing.ticket_epoch == submitted.ticket_epoch;
            return if same {
                reply(SubmitResult::Accepted, None)
            } else {
                reply(
                    SubmitResult::MismatchedSubmission,
                    Some("a different precommit was submitted for this sector".to_owned()),
                )
            };
        }
        if Some(info.comm_d) != cc_comm_d(miner.seal_proof) {
            return reply(
                SubmitResult::MismatchedSubmission,
                Some("CommD is not the data commitment of a committed-capacity sector (this manager assigns no deals)".to_owned()),
            );
        }
        let Some(comm_r) = bytes32(&submitted.comm_r) else {
            return Err(ApiError::invalid_params("CommR must be 32 bytes"));
        };
        let Ok(sealed_cid) = replica_commitment_v1_to_cid(&comm_r) else {
            return reply(
                SubmitResult::Rejected,
                Some("CommR is not a valid commitment".to_owned()),
            );
        };
        let head = self.head(fresh).await?;
        let head_key = head.key();
        // A precommit allocates its number on chain, so a number not allocated there has
        // no precommit either. The miner's allocated numbers are read once per head for
        // every call (ahead of them, by the chain follower), not once per sector.
        let allocated_on_chain = self
            .allocated_on_chain(miner, &head_key)
            .await?
            .get(id.number);
        // Already on chain (a repeat after the manager lost its record of sending it)?
        if allocated_on_chain
            && let Some(on_chain) = self
                .pre_commit_on_chain(miner, id.number, &head.key())
                .await?
        {
            if on_chain.info.sealed_cid == sealed_cid {
                self.db
                    .submit_pre_commit(id.miner, id.number, &submitted)
                    .await?;
                return reply(
                    SubmitResult::Accepted,
                    Some("the precommit is already on chain".to_owned()),
                );
            }
            return reply(
                SubmitResult::Rejected,
                Some(format!(
                    "the chain holds another precommit for {id} (sealed CID {})",
                    on_chain.info.sealed_cid
                )),
            );
        }
        if allocated_on_chain && !hard_reset {
            return reply(
                SubmitResult::Rejected,
                Some(format!(
                    "sector number {} is already allocated on chain",
                    id.number
                )),
            );
        }
        if submitted.ticket_epoch < head.height - MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK + 1
            || submitted.ticket_epoch >= head.height
        {
            return reply(
                SubmitResult::Rejected,
                Some(format!(
                    "the ticket of epoch {} has expired or is in the future at head {}",
                    submitted.ticket_epoch, head.height
                )),
            );
        }
        let issued = row.ticket.as_ref().is_some_and(|(ticket, epoch)| {
            *ticket == submitted.ticket && *epoch == submitted.ticket_epoch
        });
        if !issued {
            let expected = self
                .randomness(
                    miner,
                    randomness_tag::SEAL_RANDOMNESS,
                    submitted.ticket_epoch,
                    &head.key(),
                )
                .await?;
            if expected != submitted.ticket {
                return reply(
                    SubmitResult::Rejected,
                    Some(format!(
                        "the ticket is not the chain's randomness at epoch {}",
                        submitted.ticket_epoch
                    )),
                );
            }
        }
        if !self
            .db
            .submit_pre_commit(id.miner, id.number, &submitted)
            .await?
        {
            return Err(ApiError::sector_not_found(
                id,
                "it stopped sealing while the precommit was checked",
            ));
        }
        tracing::info!(sector = %id, "precommit accepted");
        reply(SubmitResult::Accepted, None)
    }

    async fn poll(&self, sector: SectorId, proof: bool) -> Result<PollStateResponse, ApiError> {
        let (row, message) = self.sealing_sector_with_message(sector, proof).await?;
        let id = sector;
        let miner = self.miner(id)?;
        let (submitted, need_send) = if proof {
            (row.proof.is_some(), row.proof_need_send)
        } else {
            (row.pre.is_some(), row.pre_need_send)
        };
        let head = self.recent_head().await?;
        let decision = poll_decision(
            submitted,
            need_send,
            message.as_deref(),
            head.height,
            miner.config.commitment.confidence,
        );
        let (state, desc) = match decision {
            PollDecision::Answer(state, desc) => (state, desc),
            PollDecision::CheckChain => {
                // The chain is read once for all the sectors of the message, in the
                // background: until that check is done the message is reported packed.
                let check = message
                    .as_ref()
                    .and_then(|message| self.request_landing_check(message, &head));
                let landed = match (
                    &check,
                    check.as_ref().and_then(|c| c.sectors.get(&id.number)),
                ) {
                    (_, Some(landing)) => Some(landing.landed),
                    // The check does not list this sector (the record changed since the
                    // message was made): asked of the chain directly.
                    (Some(_), None) => Some(self.landed_now(miner, id.number, proof, &head).await?),
                    (None, None) => None,
                };
                let Some(landed) = landed else {
                    return Ok(PollStateResponse {
                        state: OnChainState::Packed,
                        desc: message.and_then(|message| message.receipt.clone()),
                    });
                };
                if landed {
                    (
                        OnChainState::Landed,
                        message.and_then(|m| m.signed_cid.clone()),
                    )
                } else {
                    (
                        OnChainState::ShouldAbort,
                        Some(format!(
                            "the message landed but the chain shows no {} for {id}",
                            if proof { "active sector" } else { "precommit" }
                        )),
                    )
                }
            }
        };
        Ok(PollStateResponse { state, desc })
    }

    /// Whether the sector's precommit (or, for a proof, the sector itself) is on chain
    /// at `head`, read now.
    async fn landed_now(
        &self,
        miner: &MinerFacts,
        number: u64,
        proof: bool,
        head: &chain_client::types::TipSet,
    ) -> Result<bool, ApiError> {
        if self.active_on_chain(miner, number, &head.key()).await? {
            return Ok(true);
        }
        Ok(!proof
            && self
                .pre_commit_on_chain(miner, number, &head.key())
                .await?
                .is_some())
    }

    /// `Venus.PollPreCommitState`.
    pub async fn poll_pre_commit_state(
        &self,
        sector: SectorId,
    ) -> Result<PollStateResponse, ApiError> {
        self.poll(sector, false).await
    }

    /// `Venus.WaitSeed`.
    pub async fn wait_seed(
        &self,
        sector: SectorId,
        _seal_proof: u64,
    ) -> Result<WaitSeedResponse, ApiError> {
        let (row, pre_message) = self.sealing_sector_with_message(sector, false).await?;
        let miner = self.miner(sector)?;
        let head = self.recent_head().await?;
        // The precommit as its message's landing check found it, else as the chain
        // shows it now.
        let on_chain = match self.landed_pre_commit(sector.number, pre_message.as_deref()) {
            Some(landed) => Some(landed),
            None => {
                self.pre_commit_on_chain(miner, sector.number, &head.key())
                    .await?
            }
        };
        let pre_commit_epoch = match on_chain {
            Some(on_chain) => on_chain.pre_commit_epoch,
            None => {
                // Proven already (a repeat after the proof landed): the stored seed.
                if let Some((seed, epoch)) = row.seed {
                    return Ok(WaitSeedResponse {
                        should_wait: false,
                        delay: 0,
                        seed: Some(Seed {
                            seed: Base64Bytes(seed),
                            epoch,
                        }),
                    });
                }
                return Err(ApiError::temporary(format!(
                    "the chain shows no precommit for {sector} yet"
                )));
            }
        };
        let seed_epoch = pre_commit_epoch + self.pre_commit_challenge_delay;
        let ready_at = seed_epoch + miner.config.sealing.seed_confidence;
        if head.height < ready_at {
            self.want_seed(sector.miner, seed_epoch, ready_at);
            let epochs = u64::try_from(ready_at - head.height).unwrap_or(1);
            return Ok(WaitSeedResponse {
                should_wait: true,
                delay: epochs * self.block_delay_secs,
                seed: None,
            });
        }
        if let Some((seed, epoch)) = &row.seed
            && *epoch == seed_epoch
        {
            return Ok(WaitSeedResponse {
                should_wait: false,
                delay: 0,
                seed: Some(Seed {
                    seed: Base64Bytes(seed.clone()),
                    epoch: *epoch,
                }),
            });
        }
        let seed = self
            .randomness(
                miner,
                randomness_tag::INTERACTIVE_SEAL_CHALLENGE_SEED,
                seed_epoch,
                &head.key(),
            )
            .await?;
        self.db
            .set_seed(sector.miner, sector.number, &seed, seed_epoch, unix_now())
            .await?;
        Ok(WaitSeedResponse {
            should_wait: false,
            delay: 0,
            seed: Some(Seed {
                seed: Base64Bytes(seed),
                epoch: seed_epoch,
            }),
        })
    }

    /// `Venus.SubmitProof`.
    pub async fn submit_proof(
        &self,
        sector: SectorId,
        info: &ProofOnChainInfo,
        hard_reset: bool,
    ) -> Result<SubmitResponse, ApiError> {
        let answer = self
            .submit_proof_at(sector, info, hard_reset, false)
            .await?;
        if answer.res == SubmitResult::Rejected {
            // As for precommits: never refused on a head that may be a moment old.
            return self.submit_proof_at(sector, info, hard_reset, true).await;
        }
        Ok(answer)
    }

    async fn submit_proof_at(
        &self,
        sector: SectorId,
        info: &ProofOnChainInfo,
        hard_reset: bool,
        fresh: bool,
    ) -> Result<SubmitResponse, ApiError> {
        let (row, pre_message) = self.sealing_sector_with_message(sector, false).await?;
        let miner = self.miner(sector)?;
        let reply = |res: SubmitResult, desc: Option<String>| Ok(SubmitResponse { res, desc });
        if let Some(existing) = &row.proof
            && !hard_reset
        {
            return if *existing == info.proof.0 {
                reply(SubmitResult::Accepted, None)
            } else {
                reply(
                    SubmitResult::MismatchedSubmission,
                    Some("a different proof was submitted for this sector".to_owned()),
                )
            };
        }
        let Some(pre) = &row.pre else {
            return reply(
                SubmitResult::Rejected,
                Some("no precommit was submitted for this sector".to_owned()),
            );
        };
        if info.proof.0.is_empty() {
            return reply(
                SubmitResult::Rejected,
                Some("the proof is empty".to_owned()),
            );
        }
        // The precommit as its message's landing check found it (not when asked again
        // after a refusal: a refusal is only given on what the chain shows now).
        let landed = if fresh {
            None
        } else {
            self.landed_pre_commit(sector.number, pre_message.as_deref())
        };
        let on_chain = match landed {
            Some(landed) => Some(landed),
            None => {
                let head = self.head(fresh).await?;
                // Proving a sector removes its precommit from the chain, so a precommit
                // there means the sector is not proven yet: one read in the usual case.
                let on_chain = self
                    .pre_commit_on_chain(miner, sector.number, &head.key())
                    .await?;
                if on_chain.is_none()
                    && self
                        .active_on_chain(miner, sector.number, &head.key())
                        .await?
                {
                    self.db
                        .submit_proof(sector.miner, sector.number, &info.proof.0, unix_now())
                        .await?;
                    return reply(
                        SubmitResult::Accepted,
                        Some("the sector is already proven on chain".to_owned()),
                    );
                }
                on_chain
            }
        };
        let Some(on_chain) = on_chain else {
            return reply(
                SubmitResult::Rejected,
                Some("the chain shows no precommit for this sector".to_owned()),
            );
        };
        let Some((seed, seed_epoch)) = &row.seed else {
            return reply(
                SubmitResult::Rejected,
                Some("no seed was handed out for this sector".to_owned()),
            );
        };
        if *seed_epoch != on_chain.pre_commit_epoch + self.pre_commit_challenge_delay {
            return reply(
                SubmitResult::Rejected,
                Some(format!(
                    "the seed's epoch {seed_epoch} is not the precommit's epoch {} plus the challenge delay; ask for the seed again",
                    on_chain.pre_commit_epoch
                )),
            );
        }
        if !self
            .proof_verifies(sector, row.proof_type, pre, seed, &info.proof.0)
            .await
        {
            return reply(
                SubmitResult::Rejected,
                Some("the proof does not verify".to_owned()),
            );
        }
        if !self
            .db
            .submit_proof(sector.miner, sector.number, &info.proof.0, unix_now())
            .await?
        {
            return Err(ApiError::sector_not_found(
                sector,
                "it stopped sealing while the proof was checked",
            ));
        }
        tracing::info!(%sector, "proof accepted");
        reply(SubmitResult::Accepted, None)
    }

    async fn proof_verifies(
        &self,
        sector: SectorId,
        proof_type: u64,
        pre: &PreCommitRecord,
        seed: &[u8],
        proof: &[u8],
    ) -> bool {
        let (Some(comm_r), Some(comm_d), Some(ticket), Some(seed)) = (
            bytes32(&pre.comm_r),
            bytes32(&pre.comm_d),
            bytes32(&pre.ticket),
            bytes32(seed),
        ) else {
            return false;
        };
        let Ok(registered) = i64::try_from(proof_type)
            .map(RegisteredSealProof::from)
            .map_err(|_| ())
            .and_then(|proof| proofs::api::RegisteredSealProof::try_from(proof).map_err(|_| ()))
        else {
            return false;
        };
        let seal = proofs::SealToVerify {
            registered_proof: registered,
            comm_r,
            comm_d,
            prover_id: proofs::tasks::prover_id_of(sector.miner),
            sector_id: proofs::api::SectorId::from(sector.number),
            ticket,
            seed,
            proof: proof.to_vec(),
        };
        let check = self.proof_check;
        tokio::task::spawn_blocking(move || match check {
            ProofCheck::Real => proofs::backend::verify_real_seal(&seal) == Ok(true),
            ProofCheck::Fake => proofs::FakeProofs::verify_seal(&seal),
        })
        .await
        .unwrap_or(false)
    }

    /// `Venus.PollProofState`.
    pub async fn poll_proof_state(&self, sector: SectorId) -> Result<PollStateResponse, ApiError> {
        self.poll(sector, true).await
    }

    /// `Venus.SubmitPersistedEx`: true when every file of the sector is in the store.
    pub async fn submit_persisted(
        &self,
        sector: SectorId,
        instance: &str,
        is_upgrade: bool,
    ) -> Result<bool, ApiError> {
        self.sealing_sector(sector).await?;
        let miner = self.miner(sector)?;
        if is_upgrade {
            return Err(ApiError::temporary(
                "snap-up sectors are not handled by this manager yet",
            ));
        }
        let Some(store) = self.stores.iter().find(|store| store.name == instance) else {
            return Err(ApiError::temporary(format!(
                "no persistent store is named {instance:?}; the manager knows {}",
                self.stores
                    .iter()
                    .map(|s| format!("{:?}", s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Some(size) = storage_alloc::SectorSize::from_bytes(miner.sector_size) else {
            return Err(ApiError::temporary(format!(
                "sector size {} is unknown",
                miner.sector_size
            )));
        };
        let files = storage_alloc::persisted_files(
            sector_fsm::types::SectorId {
                miner: sector.miner,
                number: sector.number,
            },
            size,
            storage_alloc::ReplicaKind::Sealed,
        );
        let root = store.path.clone();
        let missing = look_at_stores(&format!("persistent store {instance:?}"), move || {
            files
                .into_iter()
                .filter(|relative| !Path::new(&root).join(relative).is_file())
                .collect::<Vec<_>>()
        })
        .await?;
        if !missing.is_empty() {
            tracing::warn!(%sector, instance, ?missing, "persisted files are missing");
            return Ok(false);
        }
        self.db
            .set_persisted(sector.miner, sector.number, instance, unix_now())
            .await?;
        Ok(true)
    }

    /// `Venus.ReportState`: recorded for a sealing sector; answered for any known one.
    pub async fn report_state(
        &self,
        sector: SectorId,
        report: &ReportStateRequest,
    ) -> Result<SectorStateResponse, ApiError> {
        let row = self.known_sector(sector).await?;
        if row.phase == Phase::Sealing {
            let text = serde_json::to_string(report).unwrap_or_default();
            let now = unix_now();
            if let Ok(mut pending) = self.pending_reports.lock() {
                pending.insert(
                    (sector.miner, sector.number),
                    (report.worker.instance.clone(), text, now),
                );
            }
            if let Ok(mut history) = self.report_history.lock() {
                history.record(sector, now, report);
            }
        }
        Ok(SectorStateResponse {
            id: sector,
            finalized: row.phase == Phase::Finalized,
            abort_reason: row.abort_reason,
        })
    }

    /// Writes the state reports received since the last flush, and the history they
    /// left, in one transaction.
    pub async fn flush_reports(&self) -> Result<(), DatabaseError> {
        let pending: Vec<(u64, u64, String, String, i64)> = match self.pending_reports.lock() {
            Ok(mut pending) => pending
                .drain()
                .map(|((miner, number), (instance, report, at))| {
                    (miner, number, instance, report, at)
                })
                .collect(),
            Err(_) => return Ok(()),
        };
        let (events, dropped) = match self.report_history.lock() {
            Ok(mut history) => (
                std::mem::take(&mut history.pending),
                std::mem::take(&mut history.dropped),
            ),
            Err(_) => (Vec::new(), 0),
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "sector history events were dropped: the database refused writes for long"
            );
        }
        let written = self.db.report_states(&pending, &events).await;
        if written.is_err() {
            if let Ok(mut waiting) = self.pending_reports.lock() {
                // Keep them for the next try, unless a newer report arrived meanwhile.
                for (miner, number, instance, report, at) in pending {
                    waiting
                        .entry((miner, number))
                        .or_insert((instance, report, at));
                }
            }
            if let Ok(mut history) = self.report_history.lock() {
                // Put back in front of the newer ones, so the order stays the order told.
                let newer = std::mem::replace(&mut history.pending, events);
                history.pending.extend(newer);
            }
        }
        written
    }

    /// Writes state reports every [`REPORT_FLUSH_INTERVAL`] until `stop`, then once more.
    pub async fn flush_reports_until(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(REPORT_FLUSH_INTERVAL) => false,
                _ = stop.wait_for(|stopped| *stopped) => true,
            };
            if stopping {
                if let Err(error) = self.flush_reports().await {
                    tracing::warn!(%error, "writing the last state reports failed");
                }
                return;
            }
            if let Err(error) = self.flush_reports().await {
                tracing::warn!(%error, "writing state reports failed; they are kept for the next try");
            }
        }
    }

    /// `Venus.ReportFinalized`.
    pub async fn report_finalized(&self, sector: SectorId) -> Result<(), ApiError> {
        let row = self.known_sector(sector).await?;
        if row.phase == Phase::Sealing {
            self.db
                .end_sector(
                    sector.miner,
                    sector.number,
                    Phase::Finalized,
                    None,
                    unix_now(),
                )
                .await?;
            tracing::info!(%sector, "finalized");
        }
        Ok(())
    }

    /// `Venus.ReportAborted`.
    pub async fn report_aborted(&self, sector: SectorId, reason: &str) -> Result<(), ApiError> {
        let row = self.known_sector(sector).await?;
        if row.phase == Phase::Sealing {
            self.db
                .end_sector(
                    sector.miner,
                    sector.number,
                    Phase::Aborted,
                    Some(reason),
                    unix_now(),
                )
                .await?;
            tracing::warn!(%sector, reason, "aborted");
        }
        Ok(())
    }

    /// `Venus.WorkerPing`.
    pub async fn worker_ping(&self, info: &WorkerInfo) -> Result<(), ApiError> {
        if info.name.is_empty() || info.dest.is_empty() {
            return Err(ApiError::invalid_params(
                "a ping needs the worker's Name and Dest",
            ));
        }
        self.db
            .worker_ping(&WorkerRow {
                name: info.name.clone(),
                dest: info.dest.clone(),
                version: info.version.clone(),
                summary: serde_json::to_string(&info.summary).unwrap_or_default(),
                last_ping: unix_now(),
            })
            .await?;
        Ok(())
    }

    fn basic_info(store: &PersistStoreConfig) -> StoreBasicInfo {
        StoreBasicInfo {
            name: store.name.clone(),
            path: store.path.display().to_string(),
            strict: false,
            read_only: store.read_only,
            weight: store.weight,
            meta: None,
        }
    }

    /// `Venus.StoreBasicInfo`.
    pub fn store_basic_info(&self, instance: &str) -> Option<StoreBasicInfo> {
        self.stores
            .iter()
            .find(|store| store.name == instance)
            .map(Manager::basic_info)
    }

    /// `Venus.StoreReserveSpace`: a store for the sector's files, or `None` when none
    /// fits (the worker asks again later).
    pub async fn store_reserve_space(
        &self,
        sector: SectorId,
        bytes: u64,
        candidates: &[String],
        requested_by: &str,
    ) -> Result<Option<StoreBasicInfo>, ApiError> {
        let views = self.recent_store_views().await?;
        let now = unix_now();
        let request = storage_alloc::ReservationRequest {
            sector: sector_fsm::types::SectorId {
                miner: sector.miner,
                number: sector.number,
            },
            bytes,
            candidates: (!candidates.is_empty())
                .then(|| candidates.iter().cloned().collect::<BTreeSet<_>>()),
            requested_by: requested_by.to_owned(),
            now: sector_fsm::Timestamp::from_unix_millis(u64::try_from(now).unwrap_or(0) * 1000),
        };
        // Decide under the lock; write after it, so reservations of different sectors
        // do not wait for each other's commits. A repeat that changes nothing writes
        // nothing; a failed write takes the decision back.
        let key = sector_fsm::types::SectorId {
            miner: sector.miner,
            number: sector.number,
        };
        let (reservation, previous) = {
            let mut cached = self.reservations.lock().await;
            let ledger = match &mut *cached {
                Some(ledger) => ledger,
                empty => empty.insert(self.load_reservations().await?),
            };
            let previous = ledger.reservation_of(key).cloned();
            match ledger.reserve(&request, &views, rand::random()) {
                Ok(reservation) => (reservation, previous),
                Err(no_store) => {
                    tracing::warn!(%sector, %no_store, "no persistent store fits");
                    return Ok(None);
                }
            }
        };
        if previous.as_ref() != Some(&reservation) {
            let written = self
                .db
                .put_reservation(&ReservationRow {
                    miner: sector.miner,
                    number: sector.number,
                    store: reservation.store.clone(),
                    bytes,
                    reserved_by: requested_by.to_owned(),
                    reserved_at: now,
                })
                .await;
            if let Err(error) = written {
                // Forget the cache: it is reloaded from the database on next use.
                *self.reservations.lock().await = None;
                return Err(error.into());
            }
        }
        Ok(self.store_basic_info(&reservation.store))
    }

    /// Every persistent store with its free space (`statvfs`, off the async threads).
    pub async fn measure_stores(&self) -> Result<Vec<storage_alloc::StoreView>, ApiError> {
        measure_stores(self.stores.clone()).await
    }

    /// The stores' free space for reservations: the latest measurement, renewed in the
    /// background once it is [`STORE_MEASUREMENT_REUSE`] old, so that no reservation
    /// waits for a file system; measured now when there is none or it is too old. The
    /// ledger counts the bytes it reserved itself, so a second-old measurement decides
    /// the same.
    async fn recent_store_views(&self) -> Result<Vec<storage_alloc::StoreView>, ApiError> {
        if let Ok(mut kept) = self.store_views.lock()
            && let Some((measured_at, views)) = &kept.latest
            && measured_at.elapsed() < STORE_MEASUREMENT_MAX_AGE
        {
            let views = views.clone();
            if measured_at.elapsed() >= STORE_MEASUREMENT_REUSE && !kept.measuring {
                kept.measuring = true;
                let stores = self.stores.clone();
                let kept = Arc::clone(&self.store_views);
                tokio::spawn(async move {
                    let measured = measure_stores(stores).await;
                    if let Ok(mut kept) = kept.lock() {
                        kept.measuring = false;
                        if let Ok(views) = measured {
                            kept.latest = Some((std::time::Instant::now(), views));
                        }
                    }
                });
            }
            return Ok(views);
        }
        let views = self.measure_stores().await?;
        if let Ok(mut kept) = self.store_views.lock() {
            kept.latest = Some((std::time::Instant::now(), views.clone()));
        }
        Ok(views)
    }

    async fn load_reservations(&self) -> Result<storage_alloc::ReservationLedger, ApiError> {
        let rows = self.db.reservations().await?;
        storage_alloc::ReservationLedger::from_reservations(rows.iter().map(|row| {
            storage_alloc::Reservation {
                sector: sector_fsm::types::SectorId {
                    miner: row.miner,
                    number: row.number,
                },
                store: row.store.clone(),
                bytes: row.bytes,
                reserved_by: row.reserved_by.clone(),
                reserved_at: sector_fsm::Timestamp::from_unix_millis(
                    u64::try_from(row.reserved_at).unwrap_or(0) * 1000,
                ),
            }
        }))
        .map_err(|error| {
            ApiError::temporary(format!("the stored reservations are inconsistent: {error}"))
        })
    }

    /// Ends a sealing sector (finalized or aborted) and releases its reservation;
    /// false when it was not sealing.
    pub async fn end_sector(
        &self,
        sector: SectorId,
        phase: Phase,
        reason: Option<&str>,
    ) -> Result<bool, ApiError> {
        let mut cached = self.reservations.lock().await;
        let ended = self
            .db
            .end_sector(sector.miner, sector.number, phase, reason, unix_now())
            .await?;
        if ended && let Some(ledger) = &mut *cached {
            ledger.release(sector_fsm::types::SectorId {
                miner: sector.miner,
                number: sector.number,
            });
        }
        Ok(ended)
    }

    /// Drops a sector's reservation; false when it had none.
    pub async fn release_reservation(&self, sector: SectorId) -> Result<bool, ApiError> {
        let mut cached = self.reservations.lock().await;
        let released = self
            .db
            .release_reservation(sector.miner, sector.number)
            .await?;
        if let Some(ledger) = &mut *cached {
            ledger.release(sector_fsm::types::SectorId {
                miner: sector.miner,
                number: sector.number,
            });
        }
        Ok(released)
    }

    /// `Venus.SealingDefaults`.
    pub fn sealing_defaults(&self) -> sealer_api::SealingDefaults {
        self.config.common.worker_sealing.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_followers_head_serves_longer_than_a_calls_own_read() {
        let moment = Duration::from_millis(100);
        // A call's own read: only for HEAD_REUSE.
        assert!(head_usable(moment, false));
        assert!(!head_usable(HEAD_REUSE, false));
        // The follower's: while it is delayed by a busy node, up to its own bound.
        assert!(head_usable(HEAD_REUSE * 4, true));
        assert!(head_usable(FOLLOWED_HEAD_MAX_AGE - moment, true));
        assert!(!head_usable(FOLLOWED_HEAD_MAX_AGE, true));
    }
}
