//! The worker daemon: starts the processors, the compute pool and one task per
//! `[[sealing_thread]]`, pings the manager with the threads' summary, and serves the
//! admin API; everything else is the sealing threads' (see `sealing_thread`).
//!
//! Start-up refuses, with the reason, what cannot run: a `[processors]` section the
//! machine cannot honour, a thread plan this worker does not run yet, a sealing store
//! that is not initialised or that another process holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use proc_sched::ExternalProcessor;
use proc_sched::budget::{ProcessorGroups, create_processor_groups, detect_cgroup_support};
use proc_sched::config::{MachineFacts, ProcessorConfig};
use sector_fsm::{Plan, Stage, State};
use storage_alloc::sealing_store::{ClaimedSealingStore, claim_sealing_store};
use tokio::sync::{mpsc, watch};

use crate::admin_api::{AdminState, ThreadHandle};
use crate::compute::{ComputePool, StageProcessors};
use crate::config::{Layer, SealingOverrides, WorkerConfig};
use crate::manager_client::ManagerClient;
use crate::sealing_thread::{Activity, SealingThread, ThreadStatus, summarize};

/// The stages of the `sealer` plan, each served by its configured processors or by one
/// built-in processor.
pub const SEALER_STAGES: [Stage; 6] = [
    Stage::AddPieces,
    Stage::TreeD,
    Stage::Pc1,
    Stage::Pc2,
    Stage::C1,
    Stage::C2,
];

/// How long one manager call may take.
const MANAGER_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The reference's ping period when `[worker] ping_interval` is unset.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);

/// What the daemon needs besides the configuration file.
pub struct DaemonOptions {
    /// The worker executable, which built-in processors run as `processor <stage>`.
    pub worker_executable: PathBuf,
    /// The admin API's token; every admin call must present it.
    pub admin_token: String,
    /// Run the built-in processors with the fake proof backend.
    pub fake_proofs: bool,
}

/// The environment variable that gives the admin token (to the daemon and the CLI).
pub const ADMIN_TOKEN_ENVIRONMENT: &str = "SEALING_WORKER_ADMIN_TOKEN";

/// Where the daemon keeps its admin token: beside its configuration file.
pub fn admin_token_path(config_path: &Path) -> PathBuf {
    storage_alloc::crashsafe::parent_directory(config_path).join("sealing-worker-admin.token")
}

/// The token the CLI presents: the one the daemon wrote beside `config_path`.
pub fn read_admin_token(config_path: &Path) -> anyhow::Result<String> {
    let path = admin_token_path(config_path);
    std::fs::read_to_string(&path)
        .map(|token| token.trim().to_owned())
        .with_context(|| {
            format!(
                "read the admin token {} (the daemon writes it when it starts; or give --token)",
                path.display()
            )
        })
}

/// The daemon's admin token: `SEALING_WORKER_ADMIN_TOKEN`, else the one kept beside the
/// configuration, else a new random one written there readable by its owner only.
pub fn admin_token(config_path: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var(ADMIN_TOKEN_ENVIRONMENT)
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    let path = admin_token_path(config_path);
    if let Ok(token) = std::fs::read_to_string(&path)
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    let mut bytes = [0u8; 24];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("open /dev/urandom")?,
        &mut bytes,
    )
    .context("read /dev/urandom")?;
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("write the admin token {}", path.display()))?;
        file.write_all(token.as_bytes())
            .with_context(|| format!("write the admin token {}", path.display()))?;
    }
    Ok(token)
}

/// The running processors of every stage, and the control groups made for them.
struct StartedProcessors {
    stages: BTreeMap<Stage, StageProcessors>,
    groups: Vec<ProcessorGroups>,
}

async fn start_processors(
    config: &WorkerConfig,
    worker_executable: &Path,
    worker_name: &str,
    fake_proofs: bool,
) -> anyhow::Result<StartedProcessors> {
    let machine = MachineFacts::detect().context("measure this machine's CPUs and memory")?;
    let warnings = config.processors.check(&machine).with_context(|| {
        format!(
            "check the [processors] section of {}",
            config.path.display()
        )
    })?;
    for warning in warnings {
        tracing::warn!("[processors]: {warning}");
    }
    let needs_groups = config
        .processors
        .stages
        .values()
        .flatten()
        .any(|entry| entry.memory.is_some() || entry.cgroup.cpuset.is_some());
    let support = if needs_groups {
        let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let group = format!("sealcluster-{}", sanitize(worker_name));
        let support = detect_cgroup_support(Path::new("/sys/fs/cgroup"), &self_cgroup, &group);
        tracing::info!("{}", support.describe());
        Some(support)
    } else {
        None
    };
    let built_in = [ProcessorConfig::default()];
    let mut started = StartedProcessors {
        stages: BTreeMap::new(),
        groups: Vec::new(),
    };
    for stage in SEALER_STAGES {
        let entries: &[ProcessorConfig] = match config.processors.stages.get(stage.as_str()) {
            Some(entries) if !entries.is_empty() => entries,
            _ => &built_in,
        };
        let mut processors = Vec::new();
        let mut timeouts = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let groups = match &support {
                Some(support) if entry.memory.is_some() || entry.cgroup.cpuset.is_some() => {
                    create_processor_groups(
                        support,
                        &format!("{}-{index}", stage.as_str()),
                        entry.cgroup.cpuset.as_ref(),
                        entry.memory,
                    )
                    .with_context(|| {
                        format!(
                            "create the control groups of [[processors.{}]] #{}",
                            stage.as_str(),
                            index + 1
                        )
                    })?
                }
                _ => ProcessorGroups::none(),
            };
            // A built-in processor (no program or arguments of its own) runs with the fake
            // backend when the daemon was asked to.
            let entry = if fake_proofs && entry.bin.is_none() && entry.args.is_none() {
                &ProcessorConfig {
                    args: Some(vec![
                        "processor".to_owned(),
                        stage.as_str().to_owned(),
                        "--fake-proofs".to_owned(),
                    ]),
                    ..entry.clone()
                }
            } else {
                entry
            };
            let command = entry.command(stage.as_str(), worker_executable, &groups);
            let processor = ExternalProcessor::start(command).await.with_context(|| {
                format!(
                    "start the processor [[processors.{}]] #{}",
                    stage.as_str(),
                    index + 1
                )
            })?;
            processors.push(processor);
            timeouts.push(entry.timeout);
            started.groups.push(groups);
        }
        started.stages.insert(
            stage,
            StageProcessors {
                processors,
                timeouts,
            },
        );
    }
    Ok(started)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' {
                character
            } else {
                '-'
            }
        })
        .collect()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Asks the manager for its sealing defaults; a manager without the method (damocles)
/// or one that cannot be reached yet leaves the layer empty, with a warning.
async fn manager_defaults(client: &ManagerClient) -> SealingOverrides {
    match client.sealing_defaults().await {
        Ok(defaults) => {
            let (layer, warnings) = SealingOverrides::from_manager(&defaults);
            for warning in warnings {
                tracing::warn!("the manager's sealing defaults: {warning}");
            }
            layer
        }
        Err(error) => {
            tracing::warn!(
                "sealing without the manager's sealing defaults ({error}); \
                 the built-in defaults and this file's settings apply"
            );
            SealingOverrides::default()
        }
    }
}

/// Runs the daemon until `stop` turns true.
pub async fn run(
    config: WorkerConfig,
    options: DaemonOptions,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    telemetry::install_metrics();
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    for (index, thread) in config.sealing_threads.iter().enumerate() {
        if thread.plan() != Plan::Sealer {
            bail!(
                "[[sealing_thread]] #{} has plan {}, which this worker does not run yet; \
                 only the sealer plan is sealed (remove the thread or set plan = \"sealer\")",
                index + 1,
                thread.plan()
            );
        }
    }
    let host = config
        .worker
        .rpc_server
        .host
        .clone()
        .unwrap_or_else(|| "0.0.0.0".to_owned());
    let port = config
        .worker
        .rpc_server
        .port
        .unwrap_or(crate::config::DEFAULT_WORKER_PORT);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("listen for the admin API on {host}:{port}"))?;
    let listening = listener
        .local_addr()
        .context("read the admin API's address")?;
    let dest = if listening.ip().is_unspecified() {
        format!("{}:{}", host_name(), listening.port())
    } else {
        listening.to_string()
    };
    let worker_name = config.worker.name.clone().unwrap_or_else(|| dest.clone());

    let client = Arc::new(
        ManagerClient::connect(&config.sector_manager, MANAGER_CALL_TIMEOUT)
            .map_err(|error| anyhow::anyhow!("[sector_manager]: {error}"))?,
    );
    let defaults = manager_defaults(&client).await;

    // The storage plan, as `config check` shows it: one sealing store per thread must fit
    // its disk for the largest sector size the thread may seal.
    let mut planned: BTreeMap<storage_alloc::SectorSize, Vec<PathBuf>> = BTreeMap::new();
    for (index, thread) in config.sealing_threads.iter().enumerate() {
        let Some(location) = &thread.location else {
            continue;
        };
        let layered = crate::config::layered_sealing(&[
            (Layer::Manager, &defaults),
            (Layer::File, &config.sealing),
            (Layer::Thread, &thread.sealing),
        ]);
        // Settings damocles honours that this worker does not yet: said at start, never
        // ignored in silence.
        let sealing = &layered.sealing;
        for (set, what) in [
            (
                sealing.enable_deals,
                "enable_deals: a sector with deals will pause (this worker seals committed capacity only)",
            ),
            (
                sealing.verify_after_pc2,
                "verify_after_pc2 is not done by this worker yet",
            ),
            (
                sealing.ignore_proof_check,
                "ignore_proof_check is not honoured: the proof's state is always polled",
            ),
        ] {
            if set {
                tracing::warn!("[[sealing_thread]] #{}: {what}", index + 1);
            }
        }
        match layered
            .sealing
            .allowed_sizes
            .as_ref()
            .and_then(|sizes| sizes.iter().copied().max_by_key(|size| size.bytes()))
        {
            Some(size) => planned.entry(size).or_default().push(location.clone()),
            None => tracing::warn!(
                "[[sealing_thread]] #{} may seal any sector size (no allowed_sizes), so its \
                 store's room is not checked",
                index + 1
            ),
        }
    }
    for (size, locations) in &planned {
        crate::store::check_plan(*size, locations)
            .context("check that the sealing stores fit their disks")?;
    }

    let mut claims: Vec<ClaimedSealingStore> = Vec::new();
    for (index, thread) in config.sealing_threads.iter().enumerate() {
        let Some(location) = &thread.location else {
            bail!("[[sealing_thread]] #{} has no location", index + 1);
        };
        let claim = claim_sealing_store(location).with_context(|| {
            format!(
                "claim the sealing store of [[sealing_thread]] #{} at {} (prepare it with \
                 `sealing-worker store sealing-init -l {}`)",
                index + 1,
                location.display(),
                location.display()
            )
        })?;
        claims.push(claim);
    }

    let processors = start_processors(
        &config,
        &options.worker_executable,
        &worker_name,
        options.fake_proofs,
    )
    .await?;
    let pool = ComputePool::new(config.processors.scheduler_limits(), processors.stages);
    tracing::info!(
        threads = config.sealing_threads.len(),
        admin_api = %listening,
        worker = %worker_name,
        "the worker is running"
    );

    let mut handles = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for ((index, thread), claim) in config.sealing_threads.iter().enumerate().zip(&claims) {
        let status = Arc::new(Mutex::new(ThreadStatus {
            index,
            location: claim.layout().location().to_owned(),
            plan: thread.plan(),
            sector: None,
            state: State::Empty,
            activity: Activity::Idle,
            last_error: None,
            finished: 0,
            aborted: 0,
        }));
        let (commands, receiver) = mpsc::channel(4);
        handles.push(ThreadHandle {
            status: Arc::clone(&status),
            commands,
        });
        let sealing_thread = SealingThread {
            index,
            worker_name: worker_name.clone(),
            layout: claim.layout().clone(),
            plan: thread.plan(),
            layers: vec![
                (Layer::Manager, defaults.clone()),
                (Layer::File, config.sealing.clone()),
                (Layer::Thread, thread.sealing.clone()),
            ],
            client: Arc::clone(&client),
            pool: pool.clone(),
            attached: config.attached.clone(),
            status,
        };
        let stop = stop.clone();
        tasks.spawn(async move { sealing_thread.run(receiver, stop).await });
    }
    let admin = Arc::new(AdminState {
        threads: handles,
        token: options.admin_token,
        pool: pool.clone(),
    });
    let server = tokio::spawn(crate::admin_api::serve(
        listener,
        Arc::clone(&admin),
        stop.clone(),
    ));
    // `/metrics` is always on the admin port; damocles' `[metrics]` adds a port of its own.
    if config.metrics.enable {
        let address = config
            .metrics
            .http_listen
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 9000)));
        let metrics_listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listen for [metrics] on {address}"))?;
        tracing::info!(%address, "serving Prometheus metrics");
        tokio::spawn(crate::admin_api::serve_metrics(
            metrics_listener,
            Arc::clone(&admin),
            stop.clone(),
        ));
    }
    let ping_interval = config.worker.ping_interval.unwrap_or(DEFAULT_PING_INTERVAL);
    let version = format!("sealcluster-{}", env!("CARGO_PKG_VERSION"));
    loop {
        let statuses: Vec<ThreadStatus> = admin
            .threads
            .iter()
            .map(|thread| {
                thread
                    .status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect();
        let info = sealer_api::types::WorkerInfo {
            name: worker_name.clone(),
            dest: dest.clone(),
            version: version.clone(),
            summary: summarize(&statuses),
        };
        if let Err(error) = client.worker_ping(&info).await {
            tracing::warn!("could not ping the manager: {error}");
        }
        tokio::select! {
            () = tokio::time::sleep(ping_interval) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
            ended = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(ended) = ended {
                    match ended {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::error!("a sealing thread stopped: {error}"),
                        Err(error) => tracing::error!("a sealing thread failed: {error}"),
                    }
                }
            }
        }
    }
    tracing::info!("stopping: letting the sealing threads save their state");
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(error)) = ended {
            tracing::error!("a sealing thread stopped: {error}");
        }
    }
    let _ = server.await;
    drop(pool);
    for groups in processors.groups {
        groups.remove();
    }
    drop(claims);
    Ok(())
}
