//! A sealing thread's manager calls: each [`ManagerCall`] the machine asks for is made
//! through the [`ManagerClient`] and its answer (or failure) becomes the event the
//! machine takes next.
//!
//! The answer tables are `sector_fsm::replies`; this module converts between the wire
//! types and the machine's and classifies failures. It covers the `sealer` plan. The
//! other plans' allocations are asked for too, but a sector or job the manager hands
//! out for them is refused with a permanent failure naming the plan, because this
//! worker cannot run them yet (the sealcluster manager hands none out today).

use std::time::Duration;

use chain_client::rpc::Transport;
use sealer_api::types as api;
use sector_fsm::replies::{self, chain_state_event, submission_event};
use sector_fsm::types::{AllocatedSector, Bytes32, SealProofType, SectorId, Seed, Ticket};
use sector_fsm::{Event, Failure, FailureLevel, ManagerCall, WaitReason};
use serde_json::Value;
use storage_alloc::SectorSize;

use crate::config::Sealing;
use crate::manager_client::{ManagerClient, ManagerError};

/// The seal proof numbers a thread may allocate for a sector size: interactive PoRep
/// V1.1, the one this worker seals (damocles-worker also asks for the synthetic and
/// non-interactive variants; asking only for what it can seal keeps a manager from
/// handing out a sector the stages would refuse).
pub fn seal_proofs_of(size: SectorSize) -> [u64; 1] {
    [match size {
        SectorSize::Size2KiB => 5,
        SectorSize::Size8MiB => 6,
        SectorSize::Size512MiB => 7,
        SectorSize::Size32GiB => 8,
        SectorSize::Size64GiB => 9,
    }]
}

/// The allocation request a thread with `sealing` sends.
pub fn allocation_spec(sealing: &Sealing) -> api::AllocateSectorSpec {
    api::AllocateSectorSpec {
        allowed_miners: sealing.allowed_miners.clone(),
        allowed_proof_types: sealing.allowed_sizes.as_ref().map(|sizes| {
            sizes
                .iter()
                .flat_map(|size| seal_proofs_of(*size))
                .collect()
        }),
    }
}

fn wire_sector(sector: &AllocatedSector) -> api::AllocatedSector {
    api::AllocatedSector {
        id: wire_id(sector.id),
        proof_type: sector.proof_type.0,
    }
}

fn wire_id(id: SectorId) -> api::SectorId {
    api::SectorId {
        miner: id.miner,
        number: id.number,
    }
}

fn bytes32(bytes: &[u8], what: &str) -> Result<Bytes32, Failure> {
    <[u8; 32]>::try_from(bytes).map(Bytes32).map_err(|_| {
        Failure::new(
            FailureLevel::Permanent,
            format!("the manager's {what} has {} bytes, not 32", bytes.len()),
        )
    })
}

fn failed(error: &ManagerError) -> Event {
    Event::Failed(Failure::new(error.failure_level(), error.to_string()))
}

fn unsupported(plan: &str) -> Event {
    Event::Failed(Failure::new(
        FailureLevel::Permanent,
        format!(
            "the manager handed out a {plan} task, which this worker cannot run yet; \
             set the thread's plan to sealer"
        ),
    ))
}

/// Makes `call` and returns the event its answer maps to; a failure is an
/// `Event::Failed` of the level [`ManagerError::failure_level`] gives.
pub async fn perform<T: Transport>(
    client: &ManagerClient<T>,
    call: &ManagerCall<'_>,
    sealing: &Sealing,
) -> Event {
    match answer(client, call, sealing).await {
        Ok(event) => event,
        Err(error) => failed(&error),
    }
}

async fn answer<T: Transport>(
    client: &ManagerClient<T>,
    call: &ManagerCall<'_>,
    sealing: &Sealing,
) -> Result<Event, ManagerError> {
    let poll = sealing.rpc_polling_interval;
    Ok(match call {
        ManagerCall::AllocateSector => {
            match client.allocate_sector(&allocation_spec(sealing)).await? {
                Some(sector) => Event::Allocate(AllocatedSector {
                    id: SectorId {
                        miner: sector.id.miner,
                        number: sector.id.number,
                    },
                    proof_type: SealProofType(sector.proof_type),
                }),
                None => Event::Wait {
                    reason: WaitReason::NothingToAllocate,
                    retry_after: sealing.recover_interval,
                },
            }
        }
        ManagerCall::AllocateSnapUpSector => {
            other_allocation(
                client,
                sealer_api::sealer::ALLOCATE_SNAP_UP_SECTOR,
                "snap-up",
                sealing,
            )
            .await?
        }
        ManagerCall::AllocateRebuildSector => {
            other_allocation(
                client,
                sealer_api::sealer::ALLOCATE_REBUILD_SECTOR,
                "rebuild",
                sealing,
            )
            .await?
        }
        ManagerCall::AllocateUnsealSector => {
            other_allocation(
                client,
                sealer_api::sealer::ALLOCATE_UNSEAL_SECTOR,
                "unseal",
                sealing,
            )
            .await?
        }
        ManagerCall::AllocateWindowPostJob => Event::Failed(Failure::new(
            FailureLevel::Permanent,
            "window-PoSt jobs run on the poster (issue 8), not on sealing threads yet; \
             set the thread's plan to sealer",
        )),
        ManagerCall::AcquireDeals { sector } => {
            let pieces = client
                .acquire_deals(
                    wire_id(sector.id),
                    &api::AcquireDealsSpec {
                        max_deals: sealing.max_deals,
                        min_used_space: sealing.min_deal_space,
                    },
                )
                .await?;
            match pieces {
                Some(pieces) if !pieces.is_empty() => Event::Failed(Failure::new(
                    FailureLevel::Permanent,
                    "the manager assigned deals, which this worker cannot seal yet; \
                     set enable_deals = false",
                )),
                _ => Event::AcquireDeals(Vec::new()),
            }
        }
        ManagerCall::SubmitPreCommit {
            sector,
            pre_commit,
            ticket,
            reset,
        } => {
            let answer = client
                .submit_pre_commit(
                    &wire_sector(sector),
                    &api::PreCommitOnChainInfo {
                        comm_r: pre_commit.comm_r.0,
                        comm_d: pre_commit.comm_d.0,
                        ticket: api::Ticket {
                            ticket: api::Base64Bytes(ticket.randomness.0.to_vec()),
                            epoch: ticket.epoch,
                        },
                    },
                    *reset,
                )
                .await?;
            submission_event(
                submit_result(answer.res),
                answer.desc.as_deref(),
                Event::SubmitPreCommit,
                None,
            )
        }
        ManagerCall::PollPreCommitState { sector } => {
            let answer = client.poll_pre_commit_state(wire_id(sector.id)).await?;
            chain_state_event(
                chain_state(answer.state),
                answer.desc.as_deref(),
                Event::CheckPreCommit,
                Event::ReSubmitPreCommit,
                poll,
            )
        }
        ManagerCall::SubmitPersisted {
            sector,
            instance,
            is_upgrade,
        } => {
            if client
                .submit_persisted(wire_id(sector.id), instance, *is_upgrade)
                .await?
            {
                Event::SubmitPersistance
            } else {
                Event::Failed(Failure::new(
                    FailureLevel::Permanent,
                    format!("the manager does not find the sector's files in {instance}"),
                ))
            }
        }
        ManagerCall::WaitSeed { sector } => {
            let answer = client
                .wait_seed(wire_id(sector.id), sector.proof_type.0)
                .await?;
            match (answer.should_wait, answer.seed) {
                (false, Some(seed)) => match bytes32(&seed.seed.0, "seed") {
                    Ok(randomness) => Event::AssignSeed(Seed {
                        randomness,
                        epoch: seed.epoch,
                    }),
                    Err(failure) => Event::Failed(failure),
                },
                _ => Event::Wait {
                    reason: WaitReason::SeedNotReady,
                    // The manager says how long; never poll faster than once a second.
                    retry_after: Duration::from_secs(answer.delay.max(1))
                        .min(poll.max(Duration::from_secs(1))),
                },
            }
        }
        ManagerCall::SubmitProof {
            sector,
            proof,
            reset,
        } => {
            let answer = client
                .submit_proof(
                    wire_id(sector.id),
                    &api::ProofOnChainInfo {
                        proof: api::Base64Bytes(proof.0.clone()),
                    },
                    *reset,
                )
                .await?;
            submission_event(
                submit_result(answer.res),
                answer.desc.as_deref(),
                Event::SubmitProof,
                None,
            )
        }
        ManagerCall::PollProofState { sector } => {
            if sealing.ignore_proof_check {
                Event::Finish
            } else {
                let answer = client.poll_proof_state(wire_id(sector.id)).await?;
                chain_state_event(
                    chain_state(answer.state),
                    answer.desc.as_deref(),
                    Event::Finish,
                    Event::ReSubmitProof,
                    poll,
                )
            }
        }
        ManagerCall::SubmitSnapUpProof { .. } => unsupported("snap-up"),
        ManagerCall::FinishWindowPostJob { .. } => unsupported("window-PoSt"),
    })
}

/// Asks for a sector of another plan: nothing now is a wait; anything handed out is
/// refused (see the module's note).
async fn other_allocation<T: Transport>(
    client: &ManagerClient<T>,
    method: &str,
    plan: &str,
    sealing: &Sealing,
) -> Result<Event, ManagerError> {
    let answer: Value = client
        .raw_call(
            method,
            vec![serde_json::to_value(allocation_spec(sealing)).unwrap_or(Value::Null)],
        )
        .await?;
    Ok(if answer.is_null() {
        Event::Wait {
            reason: WaitReason::NothingToAllocate,
            retry_after: sealing.recover_interval,
        }
    } else {
        unsupported(plan)
    })
}

fn submit_result(result: api::SubmitResult) -> replies::SubmitResult {
    match result {
        api::SubmitResult::Accepted => replies::SubmitResult::Accepted,
        api::SubmitResult::DuplicateSubmit => replies::SubmitResult::DuplicateSubmit,
        api::SubmitResult::MismatchedSubmission => replies::SubmitResult::MismatchedSubmission,
        api::SubmitResult::Rejected => replies::SubmitResult::Rejected,
        api::SubmitResult::FilesMissed => replies::SubmitResult::FilesMissed,
    }
}

fn chain_state(state: api::OnChainState) -> replies::OnChainState {
    match state {
        api::OnChainState::Pending => replies::OnChainState::Pending,
        api::OnChainState::Packed => replies::OnChainState::Packed,
        api::OnChainState::Landed => replies::OnChainState::Landed,
        api::OnChainState::NotFound => replies::OnChainState::NotFound,
        api::OnChainState::Failed => replies::OnChainState::Failed,
        api::OnChainState::PermFailed => replies::OnChainState::PermFailed,
        api::OnChainState::ShouldAbort => replies::OnChainState::ShouldAbort,
    }
}

/// `Venus.AssignTicket` for `sector`, as the machine's ticket. A thread draws it while
/// it holds the PC1 slot, so the ticket is as fresh as the queue allows.
pub async fn assign_ticket<T: Transport>(
    client: &ManagerClient<T>,
    sector: &AllocatedSector,
) -> Result<Ticket, Failure> {
    let ticket = client
        .assign_ticket(wire_id(sector.id))
        .await
        .map_err(|error| Failure::new(error.failure_level(), error.to_string()))?;
    Ok(Ticket {
        randomness: bytes32(&ticket.ticket.0, "ticket")?,
        epoch: ticket.epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_ask_for_the_proof_the_stages_seal() {
        for size in SectorSize::ALL {
            let [proof] = seal_proofs_of(size);
            let (_, sealed_size) =
                crate::stages::seal_proof_name(proof).expect("a proof the stages seal");
            assert_eq!(sealed_size, size);
        }
    }
}
