//! Reads damocles-worker's own sector record, so a sealing store taken over from the
//! reference resumes its sector instead of losing it.
//!
//! damocles-worker keeps one JSON record per sealing store (RocksDB key `meta/info`) with
//! `version: 1`, its state as an integer index, RPC types in PascalCase, randomness in
//! base64 and commitments as arrays of numbers. This module maps that record onto ours.
//! State indices follow damocles-worker 0.10 and later, which inserted
//! `SyntheticPoRepNeeded` at index 8; a record written by an older venus-worker must be
//! resumed by its own version first.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::action::state_action;
use crate::plan::Plan;
use crate::record::{CURRENT_FORMAT_VERSION, DecodeError, RetryState, SectorData, SectorRecord};
use crate::state::State;
use crate::table;
use crate::types::{
    AllocatedSector, Blob, Bytes32, DealPiece, OpaqueOutput, PieceInfo, PreCommitOutput,
    SealProofType, SealedReplica, SectorId, Seed, SnapEncodeOutput, Ticket, UnsealRequest,
};

/// damocles-worker's states in the order of their on-disk indices (0.10 and later).
const REFERENCE_STATE_ORDER: [State; 26] = [
    State::Empty,
    State::Allocated,
    State::DealsAcquired,
    State::PieceAdded,
    State::TreeDBuilt,
    State::TicketAssigned,
    State::Pc1Done,
    State::Pc2Done,
    State::SyntheticPoRepNeeded,
    State::PreCommitSubmitted,
    State::PreCommitLanded,
    State::Persisted,
    State::PersistanceSubmitted,
    State::SeedAssigned,
    State::C1Done,
    State::C2Done,
    State::ProofSubmitted,
    State::Finished,
    State::Aborted,
    State::SnapEncoded,
    State::SnapProved,
    State::SealedChecked,
    State::SnapPieceAdded,
    State::SnapTreeDBuilt,
    State::SnapDone,
    State::Unsealed,
];

/// The state a damocles-worker record's integer index stands for.
pub(crate) fn reference_state(index: u64) -> Option<State> {
    usize::try_from(index)
        .ok()
        .and_then(|index| REFERENCE_STATE_ORDER.get(index).copied())
}

#[derive(Deserialize)]
struct ReferenceSector {
    plan: Option<String>,
    state: u64,
    prev_state: Option<u64>,
    base: Option<ReferenceBase>,
    deals: Option<Vec<ReferenceDealV1>>,
    #[serde(default)]
    deals_v2: Option<Vec<ReferenceDealV2>>,
    finalized: Option<ReferenceFinalized>,
    phases: ReferencePhases,
}

#[derive(Deserialize)]
struct ReferenceBase {
    allocated: ReferenceAllocated,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceAllocated {
    #[serde(rename = "ID")]
    id: ReferenceSectorId,
    proof_type: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceSectorId {
    miner: u64,
    number: u64,
}

#[derive(Deserialize)]
struct CidJson {
    #[serde(rename = "/")]
    cid: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceDealV1 {
    #[serde(rename = "ID")]
    id: u64,
    payload_size: u64,
    piece: ReferenceDealPieceV1,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceDealPieceV1 {
    size: u64,
    cid: CidJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceDealV2 {
    piece: ReferenceDealPieceV2,
    deal_info: ReferenceDealInfoV2,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceDealPieceV2 {
    size: u64,
    #[serde(rename = "PieceCID")]
    piece_cid: CidJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceDealInfoV2 {
    #[serde(rename = "DealID", default)]
    deal_id: u64,
    #[serde(rename = "AllocationID", default)]
    allocation_id: u64,
    #[serde(default)]
    payload_size: u64,
    #[serde(default)]
    is_builtin_market: bool,
}

#[derive(Deserialize)]
struct ReferenceFinalized {
    public: ReferencePublic,
    private: ReferencePrivate,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferencePublic {
    comm_r: [u8; 32],
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferencePrivate {
    access_instance: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceTicket {
    ticket: String,
    epoch: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReferenceSeed {
    seed: String,
    epoch: i64,
}

#[derive(Deserialize)]
struct ReferencePieceInfo {
    commitment: [u8; 32],
    size: u64,
}

#[derive(Deserialize)]
struct ReferencePreCommit {
    comm_r: [u8; 32],
    comm_d: [u8; 32],
}

#[derive(Deserialize)]
struct ReferenceProof {
    proof: Vec<u8>,
}

#[derive(Deserialize)]
struct ReferenceSnapEncode {
    comm_r_new: [u8; 32],
    comm_r_last_new: [u8; 32],
    comm_d_new: [u8; 32],
}

#[derive(Deserialize)]
struct ReferenceUnsealInput {
    piece_cid: CidJson,
    comm_d: [u8; 32],
    offset: u64,
    size: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReferencePhases {
    pieces: Option<Vec<ReferencePieceInfo>>,
    ticket: Option<ReferenceTicket>,
    pc1out: Option<serde_json::Value>,
    pc2out: Option<ReferencePreCommit>,
    pc2_re_submit: bool,
    persist_instance: Option<String>,
    seed: Option<ReferenceSeed>,
    c1out: Option<serde_json::Value>,
    c2out: Option<ReferenceProof>,
    c2_re_submit: bool,
    snap_encode_out: Option<ReferenceSnapEncode>,
    snap_prov_out: Option<Vec<u8>>,
    unseal_in: Option<ReferenceUnsealInput>,
    // Fields a later damocles-worker may add are ignored rather than refused.
    #[serde(flatten)]
    _unknown: BTreeMap<String, serde_json::Value>,
}

fn randomness(text: &str, what: &str) -> Result<Bytes32, DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| DecodeError::Reference(format!("{what} is not base64: {error}")))?;
    let array: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
        DecodeError::Reference(format!("{what} has {} bytes, not 32", bytes.len()))
    })?;
    Ok(Bytes32(array))
}

/// Converts a damocles-worker `meta/info` record of `version` into our record.
pub(crate) fn decode_reference_record(
    bytes: &[u8],
    version: u32,
) -> Result<SectorRecord, DecodeError> {
    if version != 1 {
        return Err(DecodeError::Reference(format!(
            "damocles-worker record version {version} is unknown; only version 1 can be read"
        )));
    }
    let reference: ReferenceSector = serde_json::from_slice(bytes)
        .map_err(|error| DecodeError::Reference(format!("unexpected shape: {error}")))?;
    let plan: Plan = match reference.plan.as_deref() {
        None => Plan::Sealer,
        Some(name) => name
            .parse()
            .map_err(|error| DecodeError::Reference(format!("{error}")))?,
    };
    let state = reference_state(reference.state).ok_or_else(|| {
        DecodeError::Reference(format!(
            "state index {} is not a damocles-worker state",
            reference.state
        ))
    })?;
    let path = path_to(plan, state).ok_or_else(|| {
        DecodeError::Reference(format!("state {state} is not part of plan {plan}"))
    })?;
    let previous_state = reference.prev_state.and_then(reference_state);
    let phases = reference.phases;
    let past = |milestone: State| path.contains(&milestone);

    let mut data = SectorData {
        allocated: reference.base.map(|base| AllocatedSector {
            id: SectorId {
                miner: base.allocated.id.miner,
                number: base.allocated.id.number,
            },
            proof_type: SealProofType(base.allocated.proof_type),
        }),
        ..SectorData::default()
    };
    data.deals = match (reference.deals_v2, reference.deals) {
        (Some(deals), _) => Some(
            deals
                .into_iter()
                .map(|deal| DealPiece {
                    piece_cid: deal.piece.piece_cid.cid,
                    padded_size: deal.piece.size,
                    payload_size: deal.deal_info.payload_size,
                    deal_id: deal.deal_info.deal_id,
                    allocation_id: deal.deal_info.allocation_id,
                    is_builtin_market: deal.deal_info.is_builtin_market,
                })
                .collect(),
        ),
        (None, Some(deals)) => Some(
            deals
                .into_iter()
                .map(|deal| DealPiece {
                    piece_cid: deal.piece.cid.cid,
                    padded_size: deal.piece.size,
                    payload_size: deal.payload_size,
                    deal_id: deal.id,
                    allocation_id: 0,
                    is_builtin_market: true,
                })
                .collect(),
        ),
        // The reference records a CC sector's deals as absent; ours as an empty list.
        (None, None) if plan != Plan::Sealer || past(State::DealsAcquired) => Some(Vec::new()),
        (None, None) => None,
    };
    let pieces: Option<Vec<PieceInfo>> = phases.pieces.map(|pieces| {
        pieces
            .into_iter()
            .map(|piece| PieceInfo {
                commitment: Bytes32(piece.commitment),
                padded_size: piece.size,
            })
            .collect()
    });
    // A rebuild of an upgraded sector overwrote its pieces with the upgrade's pieces.
    if plan == Plan::Rebuild && past(State::SnapPieceAdded) {
        data.snap_pieces = pieces;
    } else {
        data.pieces = pieces;
    }
    data.ticket = phases
        .ticket
        .map(|ticket| {
            Ok::<_, DecodeError>(Ticket {
                randomness: randomness(&ticket.ticket, "ticket")?,
                epoch: ticket.epoch,
            })
        })
        .transpose()?;
    data.pc1_output = phases.pc1out.map(OpaqueOutput);
    data.pre_commit = phases.pc2out.map(|output| PreCommitOutput {
        comm_r: Bytes32(output.comm_r),
        comm_d: Bytes32(output.comm_d),
    });
    data.pre_commit_submitted =
        phases.pc2_re_submit || (plan == Plan::Sealer && past(State::PreCommitSubmitted));
    data.persisted_instance = phases.persist_instance;
    data.seed = phases
        .seed
        .map(|seed| {
            Ok::<_, DecodeError>(Seed {
                randomness: randomness(&seed.seed, "seed")?,
                epoch: seed.epoch,
            })
        })
        .transpose()?;
    data.c1_output = phases.c1out.map(OpaqueOutput);
    data.proof = phases.c2out.map(|output| Blob(output.proof));
    data.proof_submitted =
        phases.c2_re_submit || (plan == Plan::Sealer && past(State::ProofSubmitted));
    data.snap_encode = phases.snap_encode_out.map(|output| SnapEncodeOutput {
        comm_r_new: Bytes32(output.comm_r_new),
        comm_r_last_new: Bytes32(output.comm_r_last_new),
        comm_d_new: Bytes32(output.comm_d_new),
    });
    data.snap_proof = phases.snap_prov_out.map(Blob);
    let access_instance = reference
        .finalized
        .as_ref()
        .map(|finalized| finalized.private.access_instance.clone());
    match (plan, reference.finalized) {
        (Plan::SnapUp, Some(finalized)) => {
            data.sealed_replica = Some(SealedReplica {
                comm_r: Bytes32(finalized.public.comm_r),
                access_instance: finalized.private.access_instance,
            });
        }
        (Plan::Rebuild, Some(finalized)) => {
            data.upgraded_from_comm_r = Some(Bytes32(finalized.public.comm_r))
        }
        _ => {}
    }
    data.unseal_request = phases.unseal_in.map(|input| UnsealRequest {
        piece_cid: input.piece_cid.cid,
        comm_d: Bytes32(input.comm_d),
        offset: input.offset,
        size: input.size,
        access_instance: access_instance.unwrap_or_default(),
    });

    let record = SectorRecord {
        format_version: CURRENT_FORMAT_VERSION,
        plan,
        state,
        previous_state,
        last_event: None,
        path,
        // The reference counted retries over the sector's whole life; ours counts failures
        // in a row, so an imported sector starts with a fresh budget.
        retry: RetryState::default(),
        // The reference does not persist pauses: its own restart resumes the thread too.
        pause: None,
        abort_reason: (state == State::Aborted).then(|| "aborted by damocles-worker".to_owned()),
        data,
    };
    state_action(&record).map_err(|error| {
        DecodeError::Reference(format!("the record cannot be resumed: {error}"))
    })?;
    Ok(record)
}

/// The states a sector of `plan` goes through from `Empty` to `state` on the shortest
/// route through the plan's table, which stands for the path an imported record took.
fn path_to(plan: Plan, state: State) -> Option<Vec<State>> {
    if state == State::Aborted {
        return Some(vec![State::Empty, State::Aborted]);
    }
    let mut routes: Vec<Vec<State>> = vec![vec![State::Empty]];
    let mut seen = vec![State::Empty];
    while !routes.is_empty() {
        let mut next_routes = Vec::new();
        for route in routes {
            let last = *route.last()?;
            if last == state {
                return Some(route);
            }
            for transition in table::transitions(plan)
                .iter()
                .filter(|transition| transition.from == last)
            {
                if !seen.contains(&transition.to) {
                    seen.push(transition.to);
                    let mut longer = route.clone();
                    longer.push(transition.to);
                    next_routes.push(longer);
                }
            }
        }
        routes = next_routes;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_indices_follow_damocles_worker_0_10_and_later() {
        assert_eq!(reference_state(7), Some(State::Pc2Done));
        assert_eq!(reference_state(8), Some(State::SyntheticPoRepNeeded));
        assert_eq!(reference_state(9), Some(State::PreCommitSubmitted));
        assert_eq!(reference_state(25), Some(State::Unsealed));
        assert_eq!(reference_state(26), None);
        let mut names: Vec<&str> = REFERENCE_STATE_ORDER
            .iter()
            .map(|state| state.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REFERENCE_STATE_ORDER.len(), "no state twice");
    }

    #[test]
    fn an_imported_path_ends_at_the_state_and_starts_empty() {
        for plan in [Plan::Sealer, Plan::SnapUp, Plan::Rebuild, Plan::Unseal] {
            for state in table::states(plan) {
                let path = path_to(plan, state).expect("every state of a plan has a path");
                assert_eq!(path.first(), Some(&State::Empty));
                assert_eq!(path.last(), Some(&state));
            }
        }
    }
}
