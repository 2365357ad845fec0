//! Walks a sector through a plan with simulated, successful steps, using the real machine.
//!
//! Nothing is sealed and nothing is called: each action is answered by a made-up success,
//! so the output shows the order of states, events and actions the daemon will follow.
//! A few "not yet" answers are included, as a real chain would give them.

use std::fmt::Write as _;
use std::time::Duration;

use sector_fsm::types::{
    AllocatedSector, Blob, Bytes32, OpaqueOutput, PieceInfo, PreCommitOutput, RebuildAllocation,
    SealProofType, SealedReplica, SectorId, Seed, SnapEncodeOutput, SnapUpAllocation, Ticket,
    UnsealAllocation, UnsealRequest, WindowPostJob, WindowPostOutcome,
};
use sector_fsm::{
    Action, Event, ManagerCall, Plan, RetryPolicy, Sector, StageTask, Timestamp, WaitReason,
};

/// The most actions a walk performs before giving up; every plan finishes far sooner.
const MAX_ACTIONS: usize = 200;

/// The walk could not finish: the machine refused an event or had no action.
#[derive(Debug)]
pub struct WalkError(pub String);

impl std::fmt::Display for WalkError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for WalkError {}

/// Walks a new sector of `plan` to its end and returns one line per step.
pub fn walk(plan: Plan) -> Result<String, WalkError> {
    let policy = RetryPolicy::default();
    let start = Timestamp::from_unix_millis(0);
    let mut now = start;
    let mut sector = Sector::new(plan);
    let mut polls_answered_not_yet = 0;
    let mut transcript = String::new();
    for _ in 0..MAX_ACTIONS {
        let action = sector
            .next_action(now)
            .map_err(|error| WalkError(format!("the machine has no action: {error}")))?;
        let elapsed = now.saturating_duration_since(start).as_secs();
        let event = match action {
            Action::Finalize(_) => {
                let _ = writeln!(
                    transcript,
                    "[{elapsed:>5}s] {:<38} {}",
                    action.describe(),
                    sector.state()
                );
                return Ok(transcript);
            }
            Action::WaitUntil(until) => {
                now = until;
                continue;
            }
            Action::AwaitOperator { .. } => {
                return Err(WalkError(
                    "the walk paused, which a happy path never does".to_owned(),
                ));
            }
            Action::Advance(event) => event,
            Action::Persist { .. } => Event::Persist("persistent-store-1".to_owned()),
            Action::Call(call) => answer_call(&call, &mut polls_answered_not_yet),
            Action::Run(task) => complete_task(&task),
        };
        let description = sector
            .next_action(now)
            .map(|action| action.describe())
            .unwrap_or_default();
        let step = sector
            .handle(event, now, &policy)
            .map_err(|rejection| WalkError(format!("the machine refused a step: {rejection}")))?;
        let _ = writeln!(
            transcript,
            "[{elapsed:>5}s] {description:<38} {} --{}--> {}",
            step.from, step.event, step.to
        );
        now = now.saturating_add(Duration::from_secs(1));
    }
    Err(WalkError(format!(
        "the walk did not finish within {MAX_ACTIONS} actions"
    )))
}

fn sector() -> AllocatedSector {
    // Miner t01000, sector 1, proof type 5 (StackedDrg2KiBV1_1).
    AllocatedSector {
        id: SectorId {
            miner: 1000,
            number: 1,
        },
        proof_type: SealProofType(5),
    }
}

fn bytes(fill: u8) -> Bytes32 {
    Bytes32([fill; 32])
}

fn answer_call(call: &ManagerCall<'_>, polls_answered_not_yet: &mut u32) -> Event {
    let not_yet_once = |reason, polls: &mut u32, then: Event| {
        if *polls == 0 {
            *polls += 1;
            Event::Wait {
                reason,
                retry_after: Duration::from_secs(30),
            }
        } else {
            *polls = 0;
            then
        }
    };
    match call {
        ManagerCall::AllocateSector => Event::Allocate(sector()),
        ManagerCall::AllocateSnapUpSector => Event::AllocatedSnapUpSector(SnapUpAllocation {
            sector: sector(),
            deals: Vec::new(),
            replica: SealedReplica {
                comm_r: bytes(1),
                access_instance: "persistent-store-1".to_owned(),
            },
        }),
        ManagerCall::AllocateRebuildSector => Event::AllocatedRebuildSector(RebuildAllocation {
            sector: sector(),
            ticket: Ticket {
                randomness: bytes(2),
                epoch: 100,
            },
            deals: Vec::new(),
            upgraded_from_comm_r: None,
        }),
        ManagerCall::AllocateUnsealSector => Event::AllocatedUnsealSector(UnsealAllocation {
            sector: sector(),
            ticket: Ticket {
                randomness: bytes(2),
                epoch: 100,
            },
            request: UnsealRequest {
                piece_cid: "baga6ea4seaq-example".to_owned(),
                comm_d: bytes(3),
                offset: 0,
                size: 2032,
                access_instance: "persistent-store-1".to_owned(),
            },
        }),
        ManagerCall::AllocateWindowPostJob => Event::AllocatedWindowPostJob(WindowPostJob {
            job_id: "job-1".to_owned(),
            input: OpaqueOutput(serde_json::Value::String(
                "window-post job input".to_owned(),
            )),
        }),
        ManagerCall::AcquireDeals { .. } => Event::AcquireDeals(Vec::new()),
        ManagerCall::SubmitPreCommit { .. } => Event::SubmitPreCommit,
        ManagerCall::PollPreCommitState { .. } => not_yet_once(
            WaitReason::ChainPending,
            polls_answered_not_yet,
            Event::CheckPreCommit,
        ),
        ManagerCall::SubmitPersisted { .. } => Event::SubmitPersistance,
        ManagerCall::WaitSeed { .. } => not_yet_once(
            WaitReason::SeedNotReady,
            polls_answered_not_yet,
            Event::AssignSeed(Seed {
                randomness: bytes(4),
                epoch: 160,
            }),
        ),
        ManagerCall::SubmitProof { .. } => Event::SubmitProof,
        ManagerCall::PollProofState { .. } => not_yet_once(
            WaitReason::ChainPending,
            polls_answered_not_yet,
            Event::Finish,
        ),
        ManagerCall::SubmitSnapUpProof { .. } => Event::Finish,
        ManagerCall::FinishWindowPostJob { .. } => Event::Finish,
    }
}

fn complete_task(task: &StageTask<'_>) -> Event {
    let pre_commit = PreCommitOutput {
        comm_r: bytes(5),
        comm_d: bytes(6),
    };
    match task {
        StageTask::AddPieces { .. } => Event::AddPiece(vec![PieceInfo {
            commitment: bytes(7),
            padded_size: 2048,
        }]),
        StageTask::TreeD { .. } => Event::BuildTreeD,
        StageTask::Pc1 { ticket, .. } => Event::Pc1 {
            ticket: ticket.copied().unwrap_or(Ticket {
                randomness: bytes(8),
                epoch: 120,
            }),
            output: OpaqueOutput(serde_json::Value::String("pc1 output".to_owned())),
        },
        StageTask::Pc2 { .. } => Event::Pc2(pre_commit),
        StageTask::SyntheticProof { .. } => Event::SyntheticPoRep,
        StageTask::C1 { .. } => Event::C1(OpaqueOutput(serde_json::Value::String(
            "c1 output".to_owned(),
        ))),
        StageTask::CheckSealed { .. } => Event::CheckSealed,
        StageTask::C2 { .. } => Event::C2(Blob(vec![9; 192])),
        StageTask::SnapEncode { .. } => Event::SnapEncode(SnapEncodeOutput {
            comm_r_new: bytes(10),
            comm_r_last_new: bytes(11),
            comm_d_new: bytes(12),
        }),
        StageTask::SnapProve { .. } => Event::SnapProve(Blob(vec![13; 64])),
        StageTask::Unseal { request, .. } => Event::Unsealed(request.size),
        StageTask::UploadUnsealed { .. } => Event::UploadPieceDone,
        StageTask::WindowPost { .. } => Event::Generate(WindowPostOutcome::Proved(OpaqueOutput(
            serde_json::Value::String("window-post proofs".to_owned()),
        ))),
    }
}
