//! The sector manager: the sealing control plane that owns sector numbers, tickets,
//! seeds, chain messages, persistent-store placement and the record of every sector,
//! and serves the `Venus.*` JSON-RPC that workers pull work from.
//!
//! - [`config`]: the `sector-manager.toml` file.
//! - [`db`]: the record in SQL (SQLite or PostgreSQL), with migrations.
//! - [`commit`]: the commit manager's decisions, pure (batches, poll answers).
//! - [`sealer`]: the worker-facing methods, and the chain follower that reads what they
//!   need from the chain before they ask.
//! - `landing`: the landing checks of executed messages, read once per message.
//! - [`outbox`]: the commit manager's driver: batches into messages, crash-safe sends,
//!   following messages through reorganisations.
//! - [`rpc`]: method names, permissions and parameter decoding.
//! - [`server`]: HTTP, tokens and the tokenless networks.
//! - [`web_admin`]: the admin page, embedded and served at `/`.

mod chain_reads;
pub mod commit;
pub mod config;
pub mod db;
mod landing;
pub mod outbox;
mod row_cache;
pub mod rpc;
pub mod sealer;
pub mod server;
mod sqlite_writer;
pub mod web_admin;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chain_client::auth::{Permission, TokenAuthority};
use chain_client::transport::HttpTransport;
use chain_client::{Endpoint, LotusClient};

pub use sealer::{Manager, ProofCheck};

/// The version string workers and operators see.
pub const VERSION: &str = concat!("sealcluster-sector-manager v", env!("CARGO_PKG_VERSION"));

/// How to start a manager.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// The home directory (SQLite file, token files).
    pub home: PathBuf,
    /// The configuration.
    pub config: config::ManagerConfig,
    /// How submitted proofs are checked.
    pub proof_check: ProofCheck,
    /// Time between commit-manager passes.
    pub commit_tick: Duration,
}

/// A manager running in this process.
pub struct RunningManager {
    /// Where the API listens.
    pub address: SocketAddr,
    /// The manager.
    pub manager: Arc<Manager>,
    authority: TokenAuthority,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningManager {
    /// A token granting `permissions`.
    pub fn issue_token(&self, permissions: &[Permission]) -> String {
        self.authority.issue(permissions)
    }

    /// The API's URL.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.address, sealer_api::RPC_PATH)
    }

    /// Starts the window PoSt runner of every miner whose `[Miners.PoSt]` is enabled
    /// (`daemon run --poster`): proofs made with the built-in backend matching how this
    /// manager checks proofs, replicas found in the configured persistent stores. Their
    /// records are served by `Venus.ProvingDeadlines`.
    pub fn start_window_post(&mut self) -> anyhow::Result<usize> {
        use anyhow::Context as _;
        let manager = &self.manager;
        let (backend, verifier) = post_prover(manager.proof_check);
        let locator = Arc::new(persist_stores(manager));
        let mut started = 0;
        for facts in manager.miners.values() {
            let settings = &facts.config.post;
            if !settings.enabled {
                continue;
            }
            let sender = match settings
                .sender
                .as_deref()
                .filter(|text| !text.is_empty())
                .or_else(|| settings.senders.first().map(String::as_str))
            {
                Some(text) => chain_client::lotus_json::address::parse(text)
                    .map_err(|error| anyhow::anyhow!("Miners.PoSt.Sender {text:?}: {error}"))
                    .with_context(|| format!("start the window PoSt of {}", facts.address))?,
                None => facts.sender,
            };
            let runner = post::runner::WindowPostRunner::new(
                manager.chain.clone(),
                Arc::clone(&backend),
                verifier,
                locator.clone(),
                post::runner::WindowPostSettings {
                    miner: facts.address,
                    sender,
                    timing: post::deadline::PostTiming {
                        challenge_confidence: settings.effective_challenge_confidence(),
                        submit_confidence: settings.effective_submit_confidence(),
                    },
                    max_partitions_per_message: Some(settings.max_partitions_per_post_message)
                        .filter(|most| *most > 0),
                    check_timeout: settings.check_timeout,
                    poll_interval: Duration::from_millis(
                        (manager.block_delay_secs * 1000 / 4).clamp(50, 2_000),
                    ),
                    max_fee: fvm_shared::econ::TokenAmount::default(),
                },
            );
            if let Ok(mut records) = manager.post_records.lock() {
                records.insert(facts.config.actor, runner.records());
            }
            self.tasks
                .push(tokio::spawn(runner.run(self.stop.subscribe())));
            tracing::info!(miner = %facts.address, %sender, "window PoSt runner started");
            started += 1;
        }
        Ok(started)
    }

    /// Starts the winning PoSt service of every miner whose `[Miners.Proof]` is enabled
    /// (`daemon run --miner`): block producers call `Venus.ComputeWinningPoSt`. With
    /// `warm_up`, each proves one of its miner's sectors in the background right away, so
    /// the parameters are loaded and the stores read before the first round needs them.
    pub fn start_winning_post(&mut self, warm_up: bool) -> usize {
        let manager = &self.manager;
        let (backend, verifier) = post_prover(manager.proof_check);
        let locator = Arc::new(persist_stores(manager));
        let mut started = 0;
        for facts in manager.miners.values() {
            if !facts.config.proof.enabled {
                continue;
            }
            let service = Arc::new(post::winning::WinningPostService::new(
                facts.address,
                Arc::clone(&backend),
                verifier,
                locator.clone(),
                facts.config.post.check_timeout,
            ));
            manager.add_winning_service(Arc::clone(&service));
            tracing::info!(miner = %facts.address, "winning PoSt service started");
            started += 1;
            if warm_up {
                let chain = manager.chain.clone();
                self.tasks.push(tokio::spawn(async move {
                    match service.warm_up(&chain).await {
                        Ok(took) => {
                            tracing::info!(miner = %service.miner(), ?took, "winning PoSt warmed up");
                        }
                        Err(error) => {
                            tracing::warn!(miner = %service.miner(), %error, "the winning PoSt warm-up did not prove a sector");
                        }
                    }
                }));
            }
        }
        started
    }

    /// Stops serving and waits for the tasks to end.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.manager.db.close().await;
    }
}

impl Drop for RunningManager {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Opens the database, connects to the chain, learns the miners, and starts the API and
/// the commit manager.
pub async fn start(options: StartOptions) -> anyhow::Result<RunningManager> {
    start_in(options, false).await
}

/// A PoSt-only manager (`daemon run --poster-only`, for a host of its own): the chain,
/// the database of its own home and the API for operators, the window PoSt runner of
/// every enabled miner, and no sealing (worker methods are refused, no commit manager).
/// The chain says which sectors must be proven and the configured persistent stores
/// (mounted on this host) hold their files, so it needs nothing from the sealing
/// manager.
pub async fn start_poster(options: StartOptions) -> anyhow::Result<RunningManager> {
    let mut running = start_in(options, true).await?;
    running.start_window_post()?;
    Ok(running)
}

async fn start_in(options: StartOptions, poster_only: bool) -> anyhow::Result<RunningManager> {
    telemetry::install_metrics();
    let StartOptions {
        home,
        config,
        proof_check,
        commit_tick,
    } = options;
    std::fs::create_dir_all(&home)
        .with_context(|| format!("create the home directory {}", home.display()))?;
    let db = db::Database::open(
        &config.common.db.url,
        &home,
        config.common.db.max_connections,
    )
    .await
    .with_context(|| format!("open the database {}", config.common.db.url))?;
    let (_, secret) = db
        .identity()
        .await
        .context("read the database's identity")?;
    let endpoint = Endpoint::parse(&config.common.api.chain).map_err(|error| {
        anyhow::anyhow!("Common.API.Chain {:?}: {error}", config.common.api.chain)
    })?;
    let transport = HttpTransport::new(endpoint, Duration::from_secs(30))
        .context("make the chain transport")?;
    let chain = LotusClient::new(transport);
    let config = Arc::new(config);
    let manager = Arc::new(
        Manager::new(db, chain, Arc::clone(&config), proof_check)
            .await
            .context("learn the configured miners from the chain")?,
    );
    let listener = tokio::net::TcpListener::bind(config.common.listen)
        .await
        .with_context(|| format!("listen on {}", config.common.listen))?;
    let address = listener
        .local_addr()
        .context("read the listening address")?;
    let authority = TokenAuthority::new(secret);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = Arc::new(server::ServerState {
        manager: Arc::clone(&manager),
        authority: authority.clone(),
        tokenless_networks: config.common.auth.tokenless_worker_networks.clone(),
        poster_only,
    });
    let mut tasks = vec![tokio::spawn(server::serve(
        listener,
        state,
        stopped.clone(),
    ))];
    if !poster_only {
        tasks.push(tokio::spawn(
            outbox::CommitManager::new(Arc::clone(&manager)).run(commit_tick, stopped.clone()),
        ));
        tasks.push(tokio::spawn(
            Arc::clone(&manager).follow_chain(stopped.clone()),
        ));
        tasks.push(tokio::spawn(
            Arc::clone(&manager).flush_reports_until(stopped),
        ));
    }
    tracing::info!(%address, miners = manager.miners.len(), "the sector manager is serving");
    Ok(RunningManager {
        address,
        manager,
        authority,
        stop,
        tasks,
    })
}

/// Writes `<home>/api` (the API's URL) and `<home>/token` (readable by its owner only),
/// where `util` commands find the manager.
pub fn write_connection_files(home: &Path, url: &str, token: &str) -> anyhow::Result<()> {
    std::fs::write(home.join("api"), url).context("write <home>/api")?;
    write_private(&home.join("token"), token)
}

/// Writes `text` into `path`, readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restrict {} to its owner", path.display()))?;
    }
    Ok(())
}

/// The built-in PoSt backend matching how this manager checks proofs, and the check
/// that goes with it.
fn post_prover(
    proof_check: ProofCheck,
) -> (Arc<dyn proofs::ProofBackend>, post::runner::PostVerifier) {
    match proof_check {
        ProofCheck::Real => (
            Arc::new(proofs::RealProofs::from_environment()),
            post::runner::PostVerifier::Real,
        ),
        ProofCheck::Fake => (
            Arc::new(proofs::FakeProofs::new(proofs::FakeProofsConfig::default())),
            post::runner::PostVerifier::Fake,
        ),
    }
}

/// The configured persistent stores, where PoSts find the replicas.
fn persist_stores(manager: &Manager) -> post::runner::PersistStores {
    post::runner::PersistStores {
        roots: manager
            .stores
            .iter()
            .map(|store| store.path.clone())
            .collect(),
    }
}

/// The admin API of the worker that pinged with `dest` (`host:port`). A worker serves it
/// at the root (damocles' server ignores the path).
pub fn worker_admin_endpoint(dest: &str, token: Option<String>) -> Endpoint {
    Endpoint {
        http_url: format!("http://{dest}/"),
        websocket_url: format!("ws://{dest}/"),
        token,
    }
}

/// Calls `method` on the admin API of the worker that pinged as `name`, with the
/// workers' admin token from `SEALING_WORKER_ADMIN_TOKEN` (the same variable the
/// worker and `util workers` read): what the page's pause and resume buttons do.
pub(crate) async fn worker_admin_call(
    manager: &Manager,
    name: &str,
    method: &str,
    params: Vec<serde_json::Value>,
) -> Result<serde_json::Value, sealer::ApiError> {
    let workers = manager.db.workers().await?;
    let worker = workers
        .iter()
        .find(|worker| worker.name == name)
        .ok_or_else(|| {
            sealer::ApiError::invalid_params(format!(
                "no worker named {name:?} has pinged this manager"
            ))
        })?;
    let endpoint = worker_admin_endpoint(
        &worker.dest,
        Some(manager.config.common.auth.worker_admin_token.clone())
            .filter(|token| !token.is_empty())
            .or_else(|| std::env::var("SEALING_WORKER_ADMIN_TOKEN").ok()),
    );
    let transport = HttpTransport::new(endpoint, Duration::from_secs(30))
        .map_err(|error| sealer::ApiError::temporary(error.to_string()))?;
    LotusClient::new(transport)
        .call(method, params)
        .await
        .map_err(|error| {
            sealer::ApiError::temporary(format!("{method} on {name} at {}: {error}", worker.dest))
        })
}

/// `Venus.ProvingCheck`: each live sector of `deadline` checked now by making its
/// vanilla window PoSt proof (with an arbitrary challenge) from the configured stores,
/// within the miner's `CheckTimeout`.
pub(crate) async fn proving_check(
    manager: &Manager,
    actor: u64,
    deadline: u64,
) -> Result<serde_json::Value, sealer::ApiError> {
    use serde_json::json;
    let address = fvm_shared::address::Address::new_id(actor);
    let head = manager.chain.chain_head().await?;
    let key = head.key();
    let info = manager.chain.state_miner_info(&address, &key).await?;
    let proof_type = proofs::api::RegisteredPoStProof::try_from(info.window_post_proof_type)
        .map_err(|error| {
            sealer::ApiError::invalid_params(format!("the miner's window PoSt proof type: {error}"))
        })?;
    let partitions = manager
        .chain
        .state_miner_partitions(&address, deadline, &key)
        .await?;
    let mut where_sector = std::collections::BTreeMap::new();
    for (index, partition) in partitions.iter().enumerate() {
        for sector in partition.live_sectors.iter() {
            where_sector.insert(sector, index);
        }
    }
    let sectors = where_sector.keys().copied().collect();
    let (located, unlocated) = post::runner::locate_replicas(
        &manager.chain,
        &persist_stores(manager),
        &address,
        &sectors,
        &key,
    )
    .await
    .map_err(sealer::ApiError::temporary)?;
    let (backend, _) = post_prover(manager.proof_check);
    let timeout = manager
        .miners
        .get(&actor)
        .map_or(Duration::from_secs(60), |facts| {
            facts.config.post.check_timeout
        });
    let mut seed = [0x5a; 32];
    seed[31] &= 0x3f;
    let (passed, _) =
        post::runner::check_replicas(&backend, actor, proof_type, seed, located, timeout).await;
    let rows: Vec<serde_json::Value> = where_sector
        .iter()
        .map(|(sector, partition)| {
            let ok = passed.contains(sector);
            json!({
                "Deadline": deadline,
                "Partition": partition,
                "Sector": sector,
                "Ok": ok,
                "Reason": if ok {
                    serde_json::Value::Null
                } else if unlocated.contains(sector) {
                    json!("no store holds its files")
                } else {
                    json!("its files failed the check (see the manager's log)")
                },
            })
        })
        .collect();
    Ok(serde_json::Value::Array(rows))
}

/// Issues a token from the database's secret without starting a manager.
pub async fn create_token(
    config: &config::ManagerConfig,
    home: &Path,
    permissions: &[Permission],
) -> anyhow::Result<String> {
    let db = db::Database::open(&config.common.db.url, home, 1)
        .await
        .with_context(|| format!("open the database {}", config.common.db.url))?;
    let (_, secret) = db
        .identity()
        .await
        .context("read the database's identity")?;
    db.close().await;
    Ok(TokenAuthority::new(secret).issue(permissions))
}

/// The manager configuration of a devnet home: `<home>/sector-manager.toml` as it is
/// when it exists, otherwise a new one written there (the default, a persistent store
/// `devnet-persist` at `<home>/persist`, miner `miner`, batches sent quickly).
pub fn devnet_manager_config(home: &Path, miner: u64) -> anyhow::Result<config::ManagerConfig> {
    let path = home.join("sector-manager.toml");
    if path.exists() {
        return Ok(config::ManagerConfig::load(&path)?);
    }
    std::fs::create_dir_all(home).with_context(|| format!("create {}", home.display()))?;
    let persist = home.join("persist");
    std::fs::create_dir_all(&persist).with_context(|| format!("create {}", persist.display()))?;
    let text = format!(
        "{}\n# Written for the devnet: a persistent store in the home, the devnet's miner, batching quickly.\n[[Common.PersistStores]]\nName = \"devnet-persist\"\nPath = {persist:?}\n\n[[Miners]]\nActor = {miner}\n\n[Miners.Commitment]\nConfidence = 2\n\n[Miners.Commitment.Pre]\nBatch = {{ Threshold = 4, MaxWait = \"10s\", CheckInterval = \"1s\" }}\n\n[Miners.Commitment.Prove]\nBatch = {{ Threshold = 4, MaxWait = \"10s\", CheckInterval = \"1s\" }}\n\n[Miners.Sealing]\nSeedConfidence = 2\n",
        config::DEFAULT_CONFIG
    );
    std::fs::write(&path, &text).with_context(|| format!("write {}", path.display()))?;
    Ok(config::ManagerConfig::parse(&path, &text)?)
}
