//! A Lotus-compatible development chain: the same JSON-RPC methods, parameter orders,
//! permissions and errors, over HTTP and WebSocket, for development, tests and the
//! README's main command.
//!
//! - [`chain`]: the chain itself, pure: tipsets with real block CIDs, reorganisations,
//!   ticket and beacon randomness as Lotus draws it.
//! - [`auth`]: Lotus-style HS256 tokens with read/write/sign/admin.
//! - [`faults`]: injected faults, deterministic from a seed.
//! - [`mining`]: storage miners winning blocks with their winning PoSt service.
//! - [`rpc`]: the methods.
//! - [`world`]: the state messages change: the miner actor's sealing rules.
//! - [`server`]: the HTTP and WebSocket server, `ChainNotify` channels included.
//!
//! [`start`] runs a devnet in-process on a loopback port; blocks come every
//! `block_time`, or only when a test calls [`RunningDevnet::produce`] if it is zero.

/// Lotus API tokens; they live in `chain-client` because the manager serves them too.
pub use chain_client::auth;
pub mod chain;
pub mod faults;
pub mod mining;
pub mod rpc;
pub mod server;
pub mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chain_client::types::{HeadChange, TipSet};
use tokio::sync::broadcast;

use crate::chain::Chain;
use chain_client::auth::{Permission, TokenAuthority};

/// How a devnet behaves.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Time between blocks; zero makes blocks only on request.
    pub block_time: Duration,
    /// Epochs between a precommit landing and its seed (Lotus 2k devnets: 10).
    pub pre_commit_challenge_delay: i64,
    /// The network's name.
    pub network_name: String,
    /// The network version reported.
    pub network_version: u32,
    /// The seed every ticket, beacon entry and randomness derives from.
    pub seed: [u8; 32],
    /// The secret tokens are signed with.
    pub token_secret: Vec<u8>,
    /// Epochs a message waits in the pool before a tipset may include it.
    pub inclusion_delay: i64,
    /// The miner actor the devnet starts with.
    pub miner_id: u64,
    /// Its worker (and owner) account.
    pub worker_id: u64,
    /// The seal proof its sectors use.
    pub seal_proof: fvm_shared::sector::RegisteredSealProof,
    /// Epochs per proving period (mainnet 2880); short ones make tests quick.
    pub proving_period: i64,
    /// Deadlines per proving period (mainnet 48); fewer, longer deadlines let a test
    /// walk through whole periods quickly and still leave a proof time to land.
    pub deadlines_per_period: u64,
    /// How prove-commits are checked.
    pub proofs: ProofMode,
    /// Where the devnet keeps its chain and token secret, so it survives a restart;
    /// none keeps everything in memory.
    pub directory: Option<std::path::PathBuf>,
    /// Faults to inject.
    pub faults: faults::FaultPlan,
    /// Sectors the miner holds from genesis, proven without a precommit or a seal proof
    /// (as Lotus's pre-sealed genesis sectors): what PoSt tests start from.
    pub genesis_sectors: Vec<world::GenesisSector>,
}

/// How the devnet checks seal proofs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofMode {
    /// With the real verifier (needs the parameters of the sector size).
    Real,
    /// With the fake proof backend's check, for orchestration tests; a real proof fails
    /// it, and a fake proof fails the real verifier.
    Fake,
}

impl chain::ProofVerifier for ProofMode {
    fn verify(&self, seal: &proofs::SealToVerify) -> bool {
        match self {
            ProofMode::Real => proofs::backend::verify_real_seal(seal) == Ok(true),
            ProofMode::Fake => proofs::FakeProofs::verify_seal(seal),
        }
    }

    fn verify_post(
        &self,
        task: &proofs::tasks::PostTask,
        output: &proofs::tasks::PostOutput,
    ) -> bool {
        match self {
            ProofMode::Real => proofs::backend::verify_real_post(task, output) == Ok(true),
            ProofMode::Fake => proofs::FakeProofs::verify_post(task, output),
        }
    }
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            block_time: Duration::from_secs(1),
            pre_commit_challenge_delay: 10,
            network_name: "sealcluster-devnet".to_owned(),
            network_version: 28,
            seed: [0x5e; 32],
            token_secret: b"sealcluster devnet token secret".to_vec(),
            inclusion_delay: 1,
            miner_id: 1000,
            worker_id: 100,
            seal_proof: fvm_shared::sector::RegisteredSealProof::StackedDRG2KiBV1P1,
            proving_period: 2880,
            deadlines_per_period: 48,
            proofs: ProofMode::Real,
            directory: None,
            faults: faults::FaultPlan::default(),
            genesis_sectors: Vec::new(),
        }
    }
}

/// What the server's tasks share.
#[derive(Debug)]
pub struct State {
    /// The configuration.
    pub config: DevnetConfig,
    /// Issues and checks tokens.
    pub authority: TokenAuthority,
    chain: Mutex<Chain>,
    /// Nonces handed out by `MpoolPushMessage`, and the messages it signed by `MsgUuid`.
    pub wallet: Mutex<Wallet>,
    head_changes: broadcast::Sender<Vec<HeadChange>>,
    stopping: tokio::sync::watch::Sender<bool>,
    /// How many calls the server has taken (fault injection numbers them).
    pub calls: std::sync::atomic::AtomicU64,
    /// How many requests each method has taken, for tests that count what a client asks.
    method_calls: Mutex<std::collections::BTreeMap<String, u64>>,
    /// The storage miners taking part in block production.
    block_miners: Mutex<Vec<mining::BlockMiner>>,
    /// The latest rounds' outcomes, oldest first.
    mining_records: Mutex<std::collections::VecDeque<mining::MiningRecord>>,
}

/// Mining records kept; older ones are forgotten.
const MINING_RECORDS_KEPT: usize = 4096;

/// The node's wallet: it signs for the devnet's accounts.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Wallet {
    /// The next nonce of each sender, by address.
    pub nonces: std::collections::BTreeMap<String, u64>,
    /// Messages already signed, by the caller's `MsgUuid`.
    pub signed: std::collections::BTreeMap<String, chain_client::types::SignedMessage>,
}

/// What the devnet saves in its directory.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    chain: chain::ChainSnapshot,
    wallet: Wallet,
}

/// [`Saved`], borrowed, for writing.
#[derive(serde::Serialize)]
struct SavedRef<'a> {
    chain: &'a chain::ChainSnapshot,
    wallet: &'a Wallet,
}

const SAVED_FILE: &str = "devnet.json";
const SECRET_FILE: &str = "token-secret";

impl State {
    /// The chain, locked.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many requests for `method` the server has taken.
    pub fn calls_of(&self, method: &str) -> u64 {
        self.method_calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Counts one request for `method`.
    fn count_call(&self, method: &str) {
        let mut counts = self
            .method_calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match counts.get_mut(method) {
            Some(count) => *count += 1,
            None => {
                counts.insert(method.to_owned(), 1);
            }
        }
    }

    /// The wallet, locked.
    pub fn wallet(&self) -> MutexGuard<'_, Wallet> {
        self.wallet.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes one block at `timestamp` (or, when the fault plan says so, a reorganisation)
    /// and publishes the change.
    pub fn produce(&self, timestamp: u64) {
        let changes = {
            let mut chain = self.chain();
            let next = chain.head().height + 1;
            match self.config.faults.reorganisation_at(next) {
                Some(depth) => chain.reorganise(depth, timestamp, &self.config.proofs),
                None => chain.produce(timestamp, &self.config.proofs),
            }
        };
        self.persist();
        self.publish(changes);
    }

    /// Makes one block at `timestamp` as [`State::produce`] does, after giving every
    /// block miner its round: the first one elected whose winning PoSt verifies is the
    /// block's author. The proofs are made without holding the chain, so the API keeps
    /// answering meanwhile.
    pub async fn produce_mined(&self, timestamp: u64) {
        let miners = self
            .block_miners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let round = self.chain().head().height + 1;
        if miners.is_empty() || self.config.faults.reorganisation_at(round).is_some() {
            self.produce(timestamp);
            return;
        }
        // The winner's record waits until its block is made: a chain that moved on in
        // the meantime makes the round too late instead.
        let mut winner = None;
        for miner in &miners {
            match self.mine_round(miner, round).await {
                Ok((author, outcome)) => {
                    winner = Some((miner.miner_id, author, outcome));
                    break;
                }
                Err(outcome) => self.record_mining(mining::MiningRecord {
                    round,
                    miner: miner.miner_id,
                    outcome,
                }),
            }
        }
        let changes = {
            let mut chain = self.chain();
            let in_time = chain.head().height + 1 == round;
            let author = match winner {
                Some((miner, author, outcome)) => {
                    self.record_mining(mining::MiningRecord {
                        round,
                        miner,
                        outcome: if in_time {
                            outcome
                        } else {
                            mining::MiningOutcome::TooLate
                        },
                    });
                    Some(author).filter(|_| in_time)
                }
                None => None,
            };
            chain.produce_by(timestamp, &self.config.proofs, author.as_ref())
        };
        self.persist();
        self.publish(changes);
    }

    /// One miner's round: its block authorship and outcome when it won, or what came of
    /// it otherwise.
    async fn mine_round(
        &self,
        miner: &mining::BlockMiner,
        round: fvm_shared::clock::ChainEpoch,
    ) -> Result<(chain::BlockAuthor, mining::MiningOutcome), mining::MiningOutcome> {
        use mining::MiningOutcome;
        let address = fvm_shared::address::Address::new_id(miner.miner_id);
        let (base, randomness) = {
            let chain = self.chain();
            let beacon = chain.beacon_entry(round);
            if !mining::elected(&beacon.data, round, miner.miner_id, miner.win_probability) {
                return Err(MiningOutcome::NotElected);
            }
            let key = chain.head().key();
            let actor = rpc::miner_at(&chain, &address, &key).map_err(|error| {
                MiningOutcome::NotEligible {
                    reason: error.message,
                }
            })?;
            let base = rpc::mining_base_info(&chain, actor, &address, round)
                .map_err(|error| MiningOutcome::NotEligible {
                    reason: error.message,
                })?
                .ok_or_else(|| MiningOutcome::NotEligible {
                    reason: "the miner has no provable sector".to_owned(),
                })?;
            let randomness = rpc::winning_randomness(&beacon.data, round, miner.miner_id);
            (base, randomness)
        };
        let request = mining::WinningProofRequest {
            miner: address,
            sectors: base.sectors.clone(),
            randomness,
            round,
        };
        let started = std::time::Instant::now();
        let answer =
            tokio::time::timeout(miner.proof_timeout, miner.prover.compute_proof(request)).await;
        let proof_ms = started.elapsed().as_millis() as u64;
        let proofs = match answer {
            Ok(Ok(proofs)) => proofs,
            Ok(Err(reason)) => return Err(MiningOutcome::ProofFailed { reason }),
            Err(_) => {
                return Err(MiningOutcome::ProofFailed {
                    reason: format!("no proof within {:?}", miner.proof_timeout),
                });
            }
        };
        let task = winning_task(miner.miner_id, &base, randomness, base.sector_size);
        let verifier = self.config.proofs;
        let to_check = proofs.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let Some(task) = task else {
                return false;
            };
            use base64::Engine as _;
            let output = proofs::tasks::PostOutput {
                proofs: to_check
                    .iter()
                    .map(|proof| {
                        base64::engine::general_purpose::STANDARD.encode(&proof.proof_bytes)
                    })
                    .collect(),
                faults: Vec::new(),
            };
            chain::ProofVerifier::verify_post(&verifier, &task, &output)
        })
        .await
        .unwrap_or(false);
        if !verified {
            return Err(MiningOutcome::ProofRejected { proof_ms });
        }
        Ok((
            chain::BlockAuthor {
                miner: address,
                win_post_proof: proofs,
            },
            MiningOutcome::Won {
                proof_ms,
                sectors: base
                    .sectors
                    .iter()
                    .map(|sector| sector.sector_number)
                    .collect(),
            },
        ))
    }

    fn record_mining(&self, record: mining::MiningRecord) {
        tracing::debug!(?record, "mining round");
        let mut records = self
            .mining_records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        records.push_back(record);
        while records.len() > MINING_RECORDS_KEPT {
            records.pop_front();
        }
    }

    /// Adds a storage miner to block production, from the next round on.
    pub fn add_block_miner(&self, miner: mining::BlockMiner) {
        self.block_miners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(miner);
    }

    /// The latest rounds' outcomes, oldest first.
    pub fn mining_records(&self) -> Vec<mining::MiningRecord> {
        self.mining_records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Replaces the top `depth` tipsets with a heavier fork and publishes the change.
    pub fn reorganise(&self, depth: usize, timestamp: u64) {
        let changes = self
            .chain()
            .reorganise(depth, timestamp, &self.config.proofs);
        self.persist();
        self.publish(changes);
    }

    /// Takes a signed message into the pool, unless the fault plan loses it.
    pub fn admit(&self, message: chain_client::types::SignedMessage) {
        let fate = self.config.faults.message_fate(&message.cid());
        {
            let mut chain = self.chain();
            if fate.dropped {
                tracing::info!(message = %message.cid(), "the fault plan drops this message");
                chain.record_dropped(message);
            } else {
                chain.push(message, fate.extra_delay, fate.out_of_gas);
            }
        }
        self.persist();
    }

    /// Saves the chain and the wallet, if the devnet has a directory. A failure is logged:
    /// the devnet keeps running on what it has in memory.
    pub fn persist(&self) {
        let Some(directory) = &self.config.directory else {
            return;
        };
        let chain = self.chain().snapshot();
        // The wallet stays locked while it is written out, so a concurrent push never
        // sees it half saved.
        let encoded = {
            let wallet = self.wallet();
            serde_json::to_vec(&SavedRef {
                chain: &chain,
                wallet: &wallet,
            })
        };
        let outcome = encoded
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&directory.join(SAVED_FILE), &bytes));
        if let Err(error) = outcome {
            tracing::error!(%error, directory = %directory.display(), "could not save the devnet");
        }
    }

    /// A receiver of every later batch of head changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Vec<HeadChange>> {
        self.head_changes.subscribe()
    }

    /// A receiver that changes when the devnet stops; connections close then.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    fn publish(&self, changes: Vec<HeadChange>) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.head_changes.send(changes);
    }
}

/// The winning PoSt a block's verifier checks: the challenged sectors' commitments (no
/// files), the round's randomness. `None` when a sector's CID is not a replica
/// commitment or the sector size has no winning PoSt.
fn winning_task(
    miner_id: u64,
    base: &chain_client::types::MiningBaseInfo,
    randomness: [u8; 32],
    sector_size: u64,
) -> Option<proofs::tasks::PostTask> {
    let proof_type = rpc::winning_post_proof(sector_size)?;
    let replicas = base
        .sectors
        .iter()
        .map(|sector| {
            let comm_r =
                fvm_shared::commcid::cid_to_replica_commitment_v1(&sector.sealed_cid).ok()?;
            Some(proofs::tasks::PostReplica {
                sector_id: proofs::api::SectorId::from(sector.sector_number),
                comm_r,
                cache_dir: std::path::PathBuf::new(),
                sealed_file: std::path::PathBuf::new(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(proofs::tasks::PostTask {
        miner_id,
        proof_type,
        replicas,
        seed: randomness,
    })
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A devnet running in this process.
#[derive(Debug)]
pub struct RunningDevnet {
    /// Where it listens.
    pub address: SocketAddr,
    /// A token with every permission.
    pub admin_token: String,
    state: Arc<State>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunningDevnet {
    fn drop(&mut self) {
        // Open connections close too, as when a node goes away.
        self.state.stopping.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RunningDevnet {
    /// The Lotus connection string for `token` (`TOKEN:/ip4/127.0.0.1/tcp/PORT/http`).
    pub fn connection_string(&self, token: Option<&str>) -> String {
        let address = format!(
            "/ip4/{}/tcp/{}/http",
            self.address.ip(),
            self.address.port()
        );
        match token {
            Some(token) => format!("{token}:{address}"),
            None => address,
        }
    }

    /// Issues a token with `permissions`.
    pub fn issue_token(&self, permissions: &[Permission]) -> String {
        self.state.authority.issue(permissions)
    }

    /// Makes one block now.
    pub fn produce(&self) -> TipSet {
        self.state.produce(now_seconds());
        self.state.chain().head().clone()
    }

    /// Replaces the top `depth` tipsets with a heavier fork.
    pub fn reorganise(&self, depth: usize) -> TipSet {
        let changes =
            self.state
                .chain()
                .reorganise(depth, now_seconds(), &self.state.config.proofs);
        let head = self.state.chain().head().clone();
        self.state.publish(changes);
        head
    }

    /// The head.
    pub fn head(&self) -> TipSet {
        self.state.chain().head().clone()
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never a
/// mix: a temporary file, synced, renamed over, and the directory synced.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The token secret kept in `directory`, made on first use.
fn token_secret(directory: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let path = directory.join(SECRET_FILE);
    match std::fs::read(&path) {
        Ok(secret) if !secret.is_empty() => Ok(secret),
        Ok(_) | Err(_) => {
            let secret: [u8; 32] = rand::random();
            write_atomically(&path, &secret)?;
            Ok(secret.to_vec())
        }
    }
}

/// The chain and wallet to start from: the saved ones in the directory, or a new chain.
fn load_or_create(config: &DevnetConfig) -> std::io::Result<(Chain, Wallet)> {
    if let Some(directory) = &config.directory {
        let path = directory.join(SAVED_FILE);
        if path.exists() {
            let bytes = std::fs::read(&path)?;
            let saved: Saved = serde_json::from_slice(&bytes).map_err(|error| {
                std::io::Error::other(format!(
                    "{} cannot be read: {error}; move it away to start a new chain",
                    path.display()
                ))
            })?;
            let chain = Chain::restore(saved.chain)
                .map_err(|error| std::io::Error::other(format!("{}: {error}", path.display())))?;
            return Ok((chain, saved.wallet));
        }
    }
    let rules = chain::ChainRules {
        inclusion_delay: config.inclusion_delay,
        pre_commit_challenge_delay: config.pre_commit_challenge_delay,
    };
    let mut world = world::WorldState::with_miner(
        config.miner_id,
        config.worker_id,
        config.seal_proof,
        fvm_shared::econ::TokenAmount::from_whole(1_000_000),
        world::ProvingPolicy::with_deadlines(config.proving_period, config.deadlines_per_period),
    );
    for sector in &config.genesis_sectors {
        world
            .add_genesis_sector(config.miner_id, config.seal_proof, sector)
            .map_err(std::io::Error::other)?;
    }
    Ok((
        Chain::genesis(config.seed, now_seconds(), rules, world),
        Wallet::default(),
    ))
}

/// Starts a devnet listening on `listen` (port 0 picks a free one). With a directory,
/// it continues the chain saved there.
pub async fn start(mut config: DevnetConfig, listen: SocketAddr) -> std::io::Result<RunningDevnet> {
    if let Some(directory) = &config.directory {
        std::fs::create_dir_all(directory)?;
        config.token_secret = token_secret(directory)?;
    }
    let (chain, wallet) = load_or_create(&config)?;
    let (head_changes, _) = broadcast::channel(1024);
    let (stopping, _) = tokio::sync::watch::channel(false);
    let state = Arc::new(State {
        stopping,
        wallet: Mutex::new(wallet),
        authority: TokenAuthority::new(config.token_secret.clone()),
        chain: Mutex::new(chain),
        head_changes,
        calls: std::sync::atomic::AtomicU64::new(0),
        method_calls: Mutex::new(std::collections::BTreeMap::new()),
        block_miners: Mutex::new(Vec::new()),
        mining_records: Mutex::new(std::collections::VecDeque::new()),
        config,
    });
    state.persist();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let mut tasks = vec![tokio::spawn(server::serve(listener, Arc::clone(&state)))];
    if !state.config.block_time.is_zero() {
        let producer = Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(producer.config.block_time);
            // A round that waited for a winning PoSt does not make the next ones burst.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                producer.produce_mined(now_seconds()).await;
            }
        }));
    }
    let admin_token = state.authority.issue(&Permission::ALL);
    Ok(RunningDevnet {
        address,
        admin_token,
        state,
        tasks,
    })
}
