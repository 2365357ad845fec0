//! The sealing pipeline's two benchmarks, on 8MiB committed-capacity sectors with real
//! add_pieces, tree_d, PC1 and PC2 and fake C1 and C2 (`cargo bench -p worker --bench
//! pipeline`; the README reports the numbers):
//!
//! - **PC1 utilisation**: the `sealing-worker daemon` process with 4 sealing threads and
//!   one PC1 slot (`limitation.concurrent.pc1 = 1`), sealing against a real manager on a
//!   devnet; the PC1 slot's busy time over the steady state, from the compute pool's
//!   stage figures (`VenusWorker.StageFigures`). Goal: at least 95%.
//! - **Overhead**: the same proofs calls made by a plain loop (4 threads, one PC1 at a
//!   time, the stage tasks built by the same code, no manager, chain, processes or
//!   records), against the daemon's steady-state time per sector. Goal: a ratio of at
//!   most 1.05.
//!
//! The steady state is the time between the 3rd and the last of `SECTORS + 2` PC1
//! completions, so start-up and the first sectors' ramp are left out.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark prints its measurements and stops on any failure"
)]

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proofs::ProofBackend;
use sector_fsm::types::{AllocatedSector, Bytes32, SealProofType, SectorId, Seed, Ticket};
use sector_fsm::{Action, Event, ManagerCall, Plan, RetryPolicy, Sector, StageTask, Timestamp};

/// Sealing threads in both runs.
const THREADS: usize = 4;
/// Sectors measured after the warm-up.
const SECTORS: usize = 10;
/// 8MiB interactive PoRep V1.1.
const PROOF_TYPE: u64 = 6;

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_millis(u64::try_from(millis).unwrap())
}

/// The steady-state time per sector from completion instants: between the 3rd and the
/// last.
fn per_sector(completions: &[Instant]) -> Duration {
    let first = completions[2];
    let last = completions[completions.len() - 1];
    (last - first) / u32::try_from(completions.len() - 3).unwrap()
}

/// One thread of the plain loop: seals sectors back to back on its own store, calling
/// the backends directly; PC1 waits for the one PC1 slot.
fn plain_thread(
    store: &Path,
    next_number: &Mutex<u64>,
    pc1_slot: &Mutex<()>,
    completions: &Mutex<Vec<Instant>>,
    wanted: usize,
) {
    let layout = storage_alloc::sealing_store::initialise_sealing_store(store).unwrap();
    let real = proofs::RealProofs::from_environment();
    let fake = proofs::FakeProofs::default();
    let ticket = Ticket {
        randomness: Bytes32([1; 32]),
        epoch: 10,
    };
    let seed = Seed {
        randomness: Bytes32([2; 32]),
        epoch: 100,
    };
    let policy = RetryPolicy::default();
    loop {
        let number = {
            let mut next = next_number.lock().unwrap();
            *next += 1;
            *next
        };
        let allocated = AllocatedSector {
            id: SectorId {
                miner: 1000,
                number,
            },
            proof_type: SealProofType(PROOF_TYPE),
        };
        let mut sector = Sector::new(Plan::Sealer);
        loop {
            let action = sector.next_action(now()).unwrap();
            let event = match action {
                Action::Run(task) => {
                    let (stage, value) =
                        worker::stages::processor_task(&task, &layout, Some(&ticket)).unwrap();
                    let backend: &dyn ProofBackend = match task {
                        StageTask::C1 { .. } | StageTask::C2 { .. } => &fake,
                        _ => &real,
                    };
                    let output = if matches!(task, StageTask::Pc1 { .. }) {
                        let _slot = pc1_slot.lock().unwrap();
                        let output = backend.run(stage.as_str(), value).unwrap();
                        completions.lock().unwrap().push(Instant::now());
                        output
                    } else {
                        backend.run(stage.as_str(), value).unwrap()
                    };
                    worker::stages::output_event(&task, Some(&ticket), output)
                }
                Action::Call(call) => match call {
                    ManagerCall::AllocateSector => Event::Allocate(allocated),
                    ManagerCall::AcquireDeals { .. } => Event::AcquireDeals(Vec::new()),
                    ManagerCall::SubmitPreCommit { .. } => Event::SubmitPreCommit,
                    ManagerCall::PollPreCommitState { .. } => Event::CheckPreCommit,
                    ManagerCall::SubmitPersisted { .. } => Event::SubmitPersistance,
                    ManagerCall::WaitSeed { .. } => Event::AssignSeed(seed),
                    ManagerCall::SubmitProof { .. } => Event::SubmitProof,
                    ManagerCall::PollProofState { .. } => Event::Finish,
                    other => panic!("the sealer plan called {}", other.method()),
                },
                Action::Advance(event) => event,
                Action::Persist { .. } => Event::Persist("persist".to_owned()),
                Action::WaitUntil(_) | Action::AwaitOperator { .. } => {
                    panic!("the plain loop never waits")
                }
                Action::Finalize(_) => break,
            };
            sector.handle(event, now(), &policy).unwrap();
        }
        worker::sealing_thread::clear_sector_files(&layout, allocated.id).unwrap();
        if completions.lock().unwrap().len() >= wanted {
            return;
        }
    }
}

fn plain_loop(directory: &Path) -> Duration {
    let next_number = Mutex::new(0);
    let pc1_slot = Mutex::new(());
    let completions = Mutex::new(Vec::new());
    let wanted = SECTORS + 2;
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let store = directory.join(format!("plain-{thread}"));
            let (next_number, pc1_slot, completions) = (&next_number, &pc1_slot, &completions);
            scope.spawn(move || plain_thread(&store, next_number, pc1_slot, completions, wanted));
        }
    });
    let completions = completions.into_inner().unwrap();
    per_sector(&completions[..wanted])
}

const MANAGER_EXTRA: &str = r#"
[Miners.Commitment]
Confidence = 1
[Miners.Commitment.Pre]
Batch = { Threshold = 1, MaxWait = "200ms", CheckInterval = "100ms" }
[Miners.Commitment.Prove]
Batch = { Threshold = 1, MaxWait = "200ms", CheckInterval = "100ms" }
[Miners.Sealing]
SeedConfidence = 1
"#;

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon's PC1 figures at one instant.
struct Sample {
    at: Instant,
    succeeded: u64,
    total_run_ms: u64,
}

async fn daemon_run(directory: &Path) -> (Duration, f64) {
    let chain = devnet::start(
        devnet::DevnetConfig {
            block_time: Duration::from_millis(100),
            pre_commit_challenge_delay: 2,
            seal_proof: fvm_shared::sector::RegisteredSealProof::StackedDRG8MiBV1P1,
            proofs: devnet::ProofMode::Fake,
            ..devnet::DevnetConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let home = directory.join("manager");
    let persist = home.join("persist");
    std::fs::create_dir_all(&persist).unwrap();
    let text = format!(
        "[Common]\nListen = \"127.0.0.1:0\"\n[Common.API]\nChain = \"{}\"\n\
         [[Common.PersistStores]]\nName = \"persist-1\"\nPath = \"{}\"\n[[Miners]]\nActor = 1000\n{MANAGER_EXTRA}",
        chain.connection_string(Some(&chain.admin_token)),
        persist.display()
    );
    let config =
        manager::config::ManagerConfig::parse(Path::new("sector-manager.toml"), &text).unwrap();
    let running = manager::start(manager::StartOptions {
        home: home.clone(),
        config,
        proof_check: manager::ProofCheck::Fake,
        commit_tick: Duration::from_millis(100),
    })
    .await
    .unwrap();
    let token = running.issue_token(&[
        chain_client::auth::Permission::Read,
        chain_client::auth::Permission::Write,
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut worker_text = format!(
        r#"
[worker.rpc_server]
host = "127.0.0.1"
port = {port}
[sector_manager]
rpc_client.addr = "{url}"
token = "{token}"
[sealing]
allowed_sizes = ["8MiB"]
recover_interval = "100ms"
rpc_polling_interval = "100ms"
seal_interval = "10ms"
[[attached]]
name = "persist-1"
location = "{persist}"
[processors.limitation.concurrent]
pc1 = 1
[[processors.c1]]
args = ["processor", "c1", "--fake-proofs"]
[[processors.c2]]
args = ["processor", "c2", "--fake-proofs"]
"#,
        url = running.url(),
        persist = persist.display()
    );
    for thread in 0..THREADS {
        let location = directory.join(format!("store-{thread}"));
        storage_alloc::sealing_store::initialise_sealing_store(&location).unwrap();
        worker_text.push_str(&format!(
            "[[sealing_thread]]\nlocation = \"{}\"\n",
            location.display()
        ));
    }
    let config_path = directory.join("worker.toml");
    std::fs::write(&config_path, worker_text).unwrap();
    let log = std::fs::File::create(directory.join("worker.log")).unwrap();
    let _daemon = Daemon(
        std::process::Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
            .args(["daemon", "-c"])
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let token = loop {
        if let Ok(token) = worker::daemon::read_admin_token(&config_path) {
            break token;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let address = format!("127.0.0.1:{port}");
    let mut samples: Vec<Sample> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(900);
    while samples.last().map_or(0, |sample| sample.succeeded) < (SECTORS + 2) as u64 {
        assert!(Instant::now() < deadline, "the daemon did not seal in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(figures) = worker::admin_api::call(
            &address,
            &token,
            worker::admin_api::method::STAGE_FIGURES,
            Vec::new(),
        )
        .await
        else {
            continue;
        };
        let pc1 = &figures["pc1"];
        let succeeded = pc1["succeeded"].as_u64().unwrap_or(0);
        assert_eq!(
            pc1["failed"].as_u64().unwrap_or(0),
            0,
            "a PC1 failed: {figures}"
        );
        // Keep the first sample of each completion count: the instant it was seen.
        if samples
            .last()
            .is_none_or(|last| last.succeeded != succeeded)
        {
            samples.push(Sample {
                at: Instant::now(),
                succeeded,
                total_run_ms: pc1["total_run_ms"].as_u64().unwrap_or(0),
            });
        }
    }
    running.stop().await;
    let first = samples.iter().find(|sample| sample.succeeded >= 3).unwrap();
    let last = samples.last().unwrap();
    let window = last.at - first.at;
    let busy = Duration::from_millis(last.total_run_ms - first.total_run_ms);
    let utilisation = busy.as_secs_f64() / window.as_secs_f64();
    let per_sector = window / u32::try_from(last.succeeded - first.succeeded).unwrap();
    (per_sector, utilisation)
}

fn main() {
    let directory = tempfile::tempdir().unwrap();
    println!(
        "8MiB CC sectors, {THREADS} threads, one PC1 slot, real add_pieces/tree_d/PC1/PC2, fake C1/C2; \
         steady state over {SECTORS} sectors"
    );
    let started = Instant::now();
    let plain = plain_loop(directory.path());
    println!(
        "plain loop: {:.2} s per sector ({:.0} s in all)",
        plain.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (daemon, utilisation) = runtime.block_on(daemon_run(directory.path()));
    println!(
        "manager + worker daemon: {:.2} s per sector ({:.0} s in all); PC1 slot busy {:.1}% of the steady state",
        daemon.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        utilisation * 100.0
    );
    println!(
        "overhead ratio (daemon / plain loop): {:.3}",
        daemon.as_secs_f64() / plain.as_secs_f64()
    );
}
