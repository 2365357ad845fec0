//! The persisted sector record: everything needed to resume a sector after a restart.
//!
//! The record names its state and plan (never enum indices) and carries a format
//! version. [`SectorRecord::decode`] reads every version this crate has written, so a
//! newer worker resumes sectors persisted by an older one.

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::failure::Failure;
use crate::plan::Plan;
use crate::state::State;
use crate::time::Timestamp;
use crate::types::{
    AllocatedSector, Blob, Commitment, DealPiece, OpaqueOutput, PieceInfo, PreCommitOutput,
    SealedReplica, Seed, SnapEncodeOutput, Ticket, UnsealRequest, WindowPostJob, WindowPostOutcome,
};

/// The record format this crate writes. Bump it, and teach [`SectorRecord::decode`] the
/// old one, whenever a change to the record would not deserialise from an older file.
pub const CURRENT_FORMAT_VERSION: u32 = 1;

/// The consecutive temporary failures of the current step and when to try it again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// Temporary failures in a row since the sector last made progress.
    pub consecutive_temporary_failures: u32,
    /// Do not run the step again before this time (a backoff or a "not yet" answer).
    pub not_before: Option<Timestamp>,
}

/// Why the sector's thread is paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause")]
pub enum PauseCause {
    /// An operator asked for it.
    Operator,
    /// A step failed in a way that needs an operator.
    Failure {
        /// The failure that paused the sector.
        failure: Failure,
    },
}

/// The sector's thread waits for an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When it paused.
    pub since: Timestamp,
    /// Why.
    #[serde(flatten)]
    pub cause: PauseCause,
}

/// Everything a sector has learned so far. Each field is written by exactly one event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SectorData {
    /// The sector, once allocated.
    pub allocated: Option<AllocatedSector>,
    /// The deal pieces; `Some(vec![])` means a CC sector.
    pub deals: Option<Vec<DealPiece>>,
    /// The pieces as staged for sealing.
    pub pieces: Option<Vec<PieceInfo>>,
    /// The PreCommit ticket; cleared by `AssignTicket` so PC1 draws a fresh one.
    pub ticket: Option<Ticket>,
    /// PC1's output.
    pub pc1_output: Option<OpaqueOutput>,
    /// PC2's output.
    pub pre_commit: Option<PreCommitOutput>,
    /// Whether the manager ever accepted a PreCommit for this sector: every later
    /// submission asks it to replace the earlier one.
    pub pre_commit_submitted: bool,
    /// The persistent store holding the sector's files.
    pub persisted_instance: Option<String>,
    /// The interactive seed.
    pub seed: Option<Seed>,
    /// C1's output.
    pub c1_output: Option<OpaqueOutput>,
    /// The ProveCommit proof.
    pub proof: Option<Blob>,
    /// Whether the manager ever accepted a proof for this sector.
    pub proof_submitted: bool,
    /// The existing replica a snap-up encodes into.
    pub sealed_replica: Option<SealedReplica>,
    /// For a rebuild of a snapped-up sector: CommR of the original CC replica.
    pub upgraded_from_comm_r: Option<Commitment>,
    /// For a rebuild of a snapped-up sector: the upgrade's pieces as staged again.
    pub snap_pieces: Option<Vec<PieceInfo>>,
    /// The snap encoding's output.
    pub snap_encode: Option<SnapEncodeOutput>,
    /// The replica-update proof.
    pub snap_proof: Option<Blob>,
    /// The piece to unseal.
    pub unseal_request: Option<UnsealRequest>,
    /// How many bytes the unseal wrote.
    pub unsealed_bytes: Option<u64>,
    /// The window-PoSt job; persisted so a restarted prover does not lose it.
    pub window_post_job: Option<WindowPostJob>,
    /// The window-PoSt result.
    pub window_post_outcome: Option<WindowPostOutcome>,
}

/// A sector as persisted by the driver after every transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorRecord {
    /// The format of this record; see [`CURRENT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The plan the sector follows; fixed for the sector's life.
    pub plan: Plan,
    /// Where the sector stands.
    pub state: State,
    /// The state before the last transition.
    pub previous_state: Option<State>,
    /// The event that caused the last transition.
    pub last_event: Option<EventKind>,
    /// The states the sector went through to reach its current state, oldest first and
    /// ending with it; a loop back (a resubmission, a jump) cuts it at the state returned
    /// to, so no state appears twice. Operator jumps may only go back along it.
    pub path: Vec<State>,
    /// Retry bookkeeping.
    pub retry: RetryState,
    /// Set while the thread waits for an operator.
    pub pause: Option<Pause>,
    /// Why the sector was aborted, once it was.
    pub abort_reason: Option<String>,
    /// What the sector has learned.
    pub data: SectorData,
}

/// A record that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a JSON object.
    #[error("sector record is not a JSON object: {0}")]
    NotARecord(#[source] serde_json::Error),
    /// The object has neither our `format_version` nor damocles-worker's `version`.
    #[error("sector record has no `format_version` (sealcluster) or `version` (damocles-worker)")]
    NoVersion,
    /// A damocles-worker record that cannot be carried over.
    #[error("damocles-worker sector record cannot be read: {0}")]
    Reference(String),
    /// The record was written by a newer sealcluster.
    #[error(
        "sector record has format version {found}, newer than {CURRENT_FORMAT_VERSION} which this \
         build understands: upgrade sealcluster before resuming this sector"
    )]
    TooNew {
        /// The version found.
        found: u32,
    },
    /// The record claims a version this crate never wrote.
    #[error("sector record has format version {found}, which no sealcluster release wrote")]
    UnknownVersion {
        /// The version found.
        found: u32,
    },
    /// The record's fields do not match its version.
    #[error("sector record of format version {version} is malformed: {source}")]
    Malformed {
        /// The version the record claims.
        version: u32,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl SectorRecord {
    /// A fresh record for a new sector of `plan`.
    pub fn new(plan: Plan) -> Self {
        SectorRecord {
            format_version: CURRENT_FORMAT_VERSION,
            plan,
            state: State::Empty,
            previous_state: None,
            last_event: None,
            path: vec![State::Empty],
            retry: RetryState::default(),
            pause: None,
            abort_reason: None,
            data: SectorData::default(),
        }
    }

    /// The record as JSON, in the current format.
    pub fn encode(&self) -> Vec<u8> {
        // Every field is a plain struct, string, number or JSON value with string keys, for
        // which serde_json cannot fail; failing loudly beats persisting an empty record.
        serde_json::to_vec_pretty(self)
            .expect("a sector record always serialises: plain data with string keys")
    }

    /// Reads a record of any format this crate knows: its own, in every version it has
    /// written, and damocles-worker's `meta/info` record, so a sealing store taken over
    /// from the reference resumes where it stopped.
    pub fn decode(bytes: &[u8]) -> Result<SectorRecord, DecodeError> {
        #[derive(Deserialize)]
        struct Versions {
            format_version: Option<u32>,
            version: Option<u32>,
        }
        let versions: Versions = serde_json::from_slice(bytes).map_err(DecodeError::NotARecord)?;
        match (versions.format_version, versions.version) {
            (Some(CURRENT_FORMAT_VERSION), _) => {
                serde_json::from_slice(bytes).map_err(|source| DecodeError::Malformed {
                    version: CURRENT_FORMAT_VERSION,
                    source,
                })
            }
            (Some(found), _) if found > CURRENT_FORMAT_VERSION => {
                Err(DecodeError::TooNew { found })
            }
            (Some(found), _) => Err(DecodeError::UnknownVersion { found }),
            (None, Some(reference_version)) => {
                crate::damocles::decode_reference_record(bytes, reference_version)
            }
            (None, None) => Err(DecodeError::NoVersion),
        }
    }
}
