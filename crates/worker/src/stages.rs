//! A sealing thread's compute stages: each [`StageTask`] of the `sealer` plan as the
//! processor task damocles' processors take (the JSON of `proofs::tasks`, with the
//! sealing store's paths), and each processor output as the event the machine takes.
//!
//! Committed-capacity sectors only: the sector is one pledge piece. Deals, synthetic
//! PoRep and the other plans' stages are refused with a permanent failure that names
//! what is missing, so a thread pauses with a clear reason instead of guessing.

use sector_fsm::types::{
    AllocatedSector, Blob, Bytes32, OpaqueOutput, PieceInfo, PreCommitOutput, Ticket,
};
use sector_fsm::{Event, Failure, FailureLevel, Stage, StageTask};
use serde_json::{Value, json};
use storage_alloc::{SealingStoreLayout, SectorSize};

/// The name the proofs library gives an interactive-PoRep V1.1 seal proof number, and
/// the sector size; `None` for proofs this worker does not seal.
pub fn seal_proof_name(proof_type: u64) -> Option<(&'static str, SectorSize)> {
    Some(match proof_type {
        5 => ("StackedDrg2KiBV1_1", SectorSize::Size2KiB),
        6 => ("StackedDrg8MiBV1_1", SectorSize::Size8MiB),
        7 => ("StackedDrg512MiBV1_1", SectorSize::Size512MiB),
        8 => ("StackedDrg32GiBV1_1", SectorSize::Size32GiB),
        9 => ("StackedDrg64GiBV1_1", SectorSize::Size64GiB),
        _ => return None,
    })
}

fn permanent(message: impl Into<String>) -> Failure {
    Failure::new(FailureLevel::Permanent, message)
}

fn proof_of(sector: &AllocatedSector) -> Result<(&'static str, SectorSize), Failure> {
    seal_proof_name(sector.proof_type.0).ok_or_else(|| {
        permanent(format!(
            "seal proof {} is not sealed by this worker (interactive PoRep V1.1 only)",
            sector.proof_type.0
        ))
    })
}

/// The unpadded size of a padded piece size (fr32: 127 of every 128 bytes).
fn unpadded(padded: u64) -> u64 {
    padded / 128 * 127
}

fn piece_infos(pieces: &[PieceInfo]) -> Value {
    Value::Array(
        pieces
            .iter()
            .map(|piece| json!({"commitment": piece.commitment.0, "size": unpadded(piece.padded_size)}))
            .collect(),
    )
}

fn pre_commit_output(proof: &str, pre_commit: &PreCommitOutput) -> Value {
    json!({"registered_proof": proof, "comm_r": pre_commit.comm_r.0, "comm_d": pre_commit.comm_d.0})
}

/// The processor task of `task` in the sealing store `layout`; `ticket` is the ticket to
/// seal with when the task is PC1 (the thread asks the manager for it while it holds the
/// PC1 slot, as damocles does).
pub fn processor_task(
    task: &StageTask<'_>,
    layout: &SealingStoreLayout,
    ticket: Option<&Ticket>,
) -> Result<(Stage, Value), Failure> {
    let stage = task.stage();
    let value = match task {
        StageTask::AddPieces { sector, deals } => {
            if !deals.is_empty() {
                return Err(permanent(
                    "sectors with deals are not sealed by this worker yet",
                ));
            }
            let (proof, size) = proof_of(sector)?;
            json!({
                "seal_proof_type": proof,
                "pieces": [{
                    "piece_file": proofs::tasks::PieceSource::Pledge,
                    "payload_size": unpadded(size.bytes()),
                    "piece_size": size.bytes(),
                }],
                "staged_filepath": layout.unsealed_file(sector.id),
            })
        }
        StageTask::TreeD { sector, .. } => {
            let (proof, _) = proof_of(sector)?;
            json!({
                "registered_proof": proof,
                "staged_file": layout.unsealed_file(sector.id),
                "cache_dir": layout.cache_directory(sector.id),
            })
        }
        StageTask::Pc1 { sector, pieces, .. } => {
            let (proof, _) = proof_of(sector)?;
            let ticket = ticket.ok_or_else(|| {
                Failure::new(FailureLevel::Critical, "PC1 was started without a ticket")
            })?;
            json!({
                "registered_proof": proof,
                "cache_path": layout.cache_directory(sector.id),
                "in_path": layout.unsealed_file(sector.id),
                "out_path": layout.sealed_file(sector.id),
                "prover_id": proofs::tasks::prover_id_of(sector.id.miner),
                "sector_id": sector.id.number,
                "ticket": ticket.randomness.0,
                "piece_infos": piece_infos(pieces),
            })
        }
        StageTask::Pc2 { sector, pc1_output } => json!({
            "pc1out": pc1_output.0,
            "cache_dir": layout.cache_directory(sector.id),
            "sealed_file": layout.sealed_file(sector.id),
        }),
        StageTask::C1 {
            sector,
            ticket,
            seed,
            pre_commit,
            pieces,
        } => {
            let (proof, _) = proof_of(sector)?;
            json!({
                "cache_path": layout.cache_directory(sector.id),
                "replica_path": layout.sealed_file(sector.id),
                "prover_id": proofs::tasks::prover_id_of(sector.id.miner),
                "sector_id": sector.id.number,
                "ticket": ticket.randomness.0,
                "seed": seed.randomness.0,
                "pre_commit": pre_commit_output(proof, pre_commit),
                "piece_infos": piece_infos(pieces),
            })
        }
        StageTask::C2 { sector, c1_output } => json!({
            "c1out": c1_output.0,
            "prover_id": proofs::tasks::prover_id_of(sector.id.miner),
            "sector_id": sector.id.number,
            "miner_id": sector.id.miner,
        }),
        other => {
            return Err(permanent(format!(
                "the {} stage is not run by this worker yet",
                other.stage().as_str()
            )));
        }
    };
    Ok((stage, value))
}

fn bytes32(value: &Value, what: &str) -> Result<Bytes32, Failure> {
    serde_json::from_value::<[u8; 32]>(value.clone())
        .map(Bytes32)
        .map_err(|_| permanent(format!("the processor's {what} is not 32 bytes: {value}")))
}

/// The event a processor's `output` for `task` maps to; an output that does not read
/// is a permanent failure (a processor of another version).
pub fn output_event(task: &StageTask<'_>, ticket: Option<&Ticket>, output: Value) -> Event {
    match read_output(task, ticket, output) {
        Ok(event) => event,
        Err(failure) => Event::Failed(failure),
    }
}

fn read_output(
    task: &StageTask<'_>,
    ticket: Option<&Ticket>,
    output: Value,
) -> Result<Event, Failure> {
    Ok(match task {
        StageTask::AddPieces { .. } => {
            let pieces = output
                .as_array()
                .ok_or_else(|| permanent(format!("add_pieces answered {output}, not a list")))?;
            let mut infos = Vec::new();
            for piece in pieces {
                let size = piece["size"]
                    .as_u64()
                    .ok_or_else(|| permanent(format!("a piece without a size: {piece}")))?;
                infos.push(PieceInfo {
                    commitment: bytes32(&piece["commitment"], "piece commitment")?,
                    padded_size: size / 127 * 128,
                });
            }
            Event::AddPiece(infos)
        }
        StageTask::TreeD { .. } => Event::BuildTreeD,
        StageTask::Pc1 { .. } => Event::Pc1 {
            ticket: *ticket.ok_or_else(|| {
                Failure::new(FailureLevel::Critical, "PC1 finished without its ticket")
            })?,
            output: OpaqueOutput(output),
        },
        StageTask::Pc2 { .. } => Event::Pc2(PreCommitOutput {
            comm_r: bytes32(&output["comm_r"], "comm_r")?,
            comm_d: bytes32(&output["comm_d"], "comm_d")?,
        }),
        StageTask::C1 { .. } => Event::C1(OpaqueOutput(output)),
        StageTask::C2 { .. } => {
            let proof: Vec<u8> = serde_json::from_value(output["proof"].clone())
                .map_err(|_| permanent("c2 answered without a proof"))?;
            Event::C2(Blob(proof))
        }
        other => {
            return Err(permanent(format!(
                "the {} stage is not run by this worker yet",
                other.stage().as_str()
            )));
        }
    })
}
