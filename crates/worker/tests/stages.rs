//! The sealer plan's compute stages through the compute pool and the built-in
//! processors (child processes, fake proof backend): the real machine walks a
//! committed-capacity 2KiB sector, its stage tasks carry the sealing store's paths, every
//! output becomes an event the machine takes, and the proof at the end is the one the
//! fake backend makes for exactly this sector's commitments, ticket and seed. (Manager
//! calls are answered here as a manager would; `sealer_calls.rs` makes them for real.)

use std::collections::BTreeMap;
use std::time::Duration;

use proc_sched::{ExternalProcessor, ProcessorCommand, SchedulerLimits};
use sector_fsm::types::{AllocatedSector, Bytes32, SealProofType, SectorId, Seed, Ticket};
use sector_fsm::{Action, Event, ManagerCall, Plan, RetryPolicy, Sector, Timestamp};
use worker::compute::{ComputePool, StageProcessors};

async fn built_in_pool() -> ComputePool {
    let mut stages = BTreeMap::new();
    for stage in worker::daemon::SEALER_STAGES {
        let processor = ExternalProcessor::start(ProcessorCommand {
            args: vec![
                "processor".into(),
                stage.as_str().into(),
                "--fake-proofs".into(),
            ],
            ..ProcessorCommand::new(stage.as_str(), env!("CARGO_BIN_EXE_sealing-worker"))
        })
        .await
        .expect("start a built-in processor");
        stages.insert(
            stage,
            StageProcessors {
                processors: vec![processor],
                timeouts: vec![Some(Duration::from_secs(60))],
            },
        );
    }
    ComputePool::new(SchedulerLimits::default(), stages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cc_sector_goes_through_every_stage_of_the_sealer_plan() {
    let directory = tempfile::tempdir().expect("a directory");
    let layout = storage_alloc::sealing_store::initialise_sealing_store(directory.path())
        .expect("a sealing store");
    let pool = built_in_pool().await;
    let allocated = AllocatedSector {
        id: SectorId {
            miner: 1000,
            number: 7,
        },
        proof_type: SealProofType(5),
    };
    let ticket = Ticket {
        randomness: Bytes32([1; 32]),
        epoch: 10,
    };
    let seed = Seed {
        randomness: Bytes32([2; 32]),
        epoch: 100,
    };
    let policy = RetryPolicy::default();
    let mut sector = Sector::new(Plan::Sealer);
    let mut now = Timestamp::from_unix_millis(0);
    let mut stages_run = Vec::new();
    let proof = loop {
        let action = sector.next_action(now).expect("an action");
        let event = match action {
            Action::Run(task) => {
                let (stage, processor_task) =
                    worker::stages::processor_task(&task, &layout, Some(&ticket))
                        .expect("a task this worker runs");
                stages_run.push(stage.as_str().to_owned());
                let output = pool
                    .run(stage, &processor_task)
                    .await
                    .unwrap_or_else(|error| panic!("{} failed: {error}", stage.as_str()));
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
            Action::Persist { .. } => Event::Persist("persist-1".to_owned()),
            Action::WaitUntil(until) => {
                now = until;
                continue;
            }
            Action::AwaitOperator { failure, .. } => panic!("the sector paused: {failure:?}"),
            Action::Finalize(_) => {
                break sector.data().proof.clone().expect("a proof");
            }
        };
        sector
            .handle(event, now, &policy)
            .expect("a step the machine takes");
        now = now.saturating_add(Duration::from_millis(10));
    };
    assert_eq!(
        stages_run,
        ["add_pieces", "tree_d", "pc1", "pc2", "c1", "c2"]
    );
    assert!(
        layout.unsealed_file(allocated.id).exists(),
        "the staged file"
    );
    assert!(
        layout.sealed_file(allocated.id).exists(),
        "the sealed replica"
    );
    assert!(layout.cache_directory(allocated.id).is_dir(), "the cache");
    let pre_commit = sector.data().pre_commit.expect("PC2 commitments");
    let expected = proofs::FakeProofs::seal_proof(&proofs::SealToVerify {
        registered_proof: proofs::api::RegisteredSealProof::StackedDrg2KiBV1_1,
        comm_r: pre_commit.comm_r.0,
        comm_d: pre_commit.comm_d.0,
        prover_id: proofs::tasks::prover_id_of(1000),
        sector_id: proofs::api::SectorId::from(7),
        ticket: ticket.randomness.0,
        seed: seed.randomness.0,
        proof: Vec::new(),
    });
    assert_eq!(
        proof.0, expected,
        "the proof is this sector's, made from its own stages"
    );
}
