//! The JSON-RPC methods: each `Venus.*` name with the permission it needs, its
//! positional parameters decoded into `sealer-api` types, and its answer.

use chain_client::auth::Permission;
use chain_client::types::TipSetKey;
use fvm_shared::address::Address;
use sealer_api::methods::sealer as names;
use sealer_api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::db::{MessageRow, MessageState, Phase, SectorRow};
use crate::sealer::{ApiError, Manager, unix_now};

/// Admin and operator methods (the reference's `SealerCliAPI` names where they exist).
pub mod admin {
    /// `(phase: "sealing" | "finalized" | "aborted" | "", miner: u64 | null) → [SectorSummary]`.
    pub const LIST_SECTORS: &str = "Venus.ListSectors";
    /// `(SectorId) → SectorDetail`.
    pub const SECTOR_STATE: &str = "Venus.SectorState";
    /// `(SectorId, reason) → bool`.
    pub const ABORT_SECTOR: &str = "Venus.AbortSector";
    /// `(SectorId, forced) → bool`.
    pub const RESTORE_SECTOR: &str = "Venus.RestoreSector";
    /// `(SectorId) → bool`.
    pub const FINALIZE_SECTOR: &str = "Venus.FinalizeSector";
    /// `(SectorId) → SubmitResponse`: the stored precommit queued again.
    pub const RESEND_PRE_COMMIT: &str = "Venus.ResendPreCommit";
    /// `(SectorId) → SubmitResponse`: the stored proof queued again.
    pub const RESEND_PROOF: &str = "Venus.ResendProof";
    /// `() → [StoreDetail]`.
    pub const STORE_LIST: &str = "Venus.StoreList";
    /// `(SectorId) → bool`.
    pub const STORE_RELEASE_RESERVED: &str = "Venus.StoreReleaseReserved";
    /// `() → [WorkerPingInfo]`.
    pub const WORKER_PING_INFO_LIST: &str = "Venus.WorkerPingInfoList";
    /// `() → {Height, Cids}`.
    pub const CHAIN_HEAD: &str = "Venus.ChainHead";
    /// `(actor) → MinerInfo`.
    pub const MINER_INFO: &str = "Venus.MinerInfo";
    /// `() → version string`.
    pub const VERSION: &str = "Venus.Version";
    /// `() → [DeadlineRecord]`: the window PoSt runners' latest deadlines, oldest first.
    pub const PROVING_DEADLINES: &str = "Venus.ProvingDeadlines";
    /// `(actor) → the current deadline and the miner's fault counts`.
    pub const PROVING_INFO: &str = "Venus.ProvingInfo";
    /// `(actor) → [{Deadline, Partition, Sector, Recovering}]`: every faulty sector.
    pub const PROVING_FAULTS: &str = "Venus.ProvingFaults";
    /// `(actor, deadline) → [{Deadline, Partition, Sector, Ok, Reason}]`: each live
    /// sector's files checked now as a window PoSt would read them.
    pub const PROVING_CHECK: &str = "Venus.ProvingCheck";
    /// `(miner address, [ExtendedSectorInfo], randomness (base64), round) → [PoStProof]`:
    /// a winning PoSt for a block producer (`daemon run --miner`), checked before it is
    /// answered; the arguments are those of Lotus's `ComputeProof`, plus the miner.
    pub const COMPUTE_WINNING_POST: &str = "Venus.ComputeWinningPoSt";
    /// `() → [WinningRecord]`: the winning PoSt services' latest rounds and warm-ups.
    pub const PROVING_WINNING: &str = "Venus.ProvingWinning";
    /// `(states: ["created" | "pushed" | "executed" | "final" | "failed"] | null) →
    /// [Message]`: outbox messages in those states (null: not yet final), oldest first.
    pub const LIST_MESSAGES: &str = "Venus.ListMessages";
    /// `(worker name, thread index) → bool`: pauses a worker's sealing thread through
    /// the worker's own admin API (the manager sends `SEALING_WORKER_ADMIN_TOKEN`).
    pub const WORKER_THREAD_PAUSE: &str = "Venus.WorkerThreadPause";
    /// `() → ["read", "write", "sign", "admin"]`: what the caller's token may do (the
    /// admin page shows it).
    pub const AUTH_VERIFY: &str = "Venus.AuthVerify";
    /// `(SectorId) → traceparent | null`: the sector's trace context, made at its
    /// allocation, which a sealcluster worker makes the parent of its steps' spans.
    pub const SECTOR_TRACE_CONTEXT: &str = "Venus.SectorTraceContext";
    /// `(worker name) → [thread]`: a worker's sealing threads (index, location, plan,
    /// sector, state, paused, last error) from its own admin API.
    pub const WORKER_THREADS: &str = "Venus.WorkerThreads";
    /// `(worker name, thread index, state | null) → bool`: resumes a paused thread, at
    /// `state` if given, through the worker's admin API.
    pub const WORKER_THREAD_RESUME: &str = "Venus.WorkerThreadResume";
}

/// The permission a method needs, or `None` for an unknown method.
pub fn permission_of(method: &str) -> Option<Permission> {
    use Permission::*;
    Some(match method {
        names::STORE_BASIC_INFO | names::SEALING_DEFAULTS => Read,
        names::ALLOCATE_SECTOR
        | names::ALLOCATE_SECTORS_BATCH
        | names::ACQUIRE_DEALS
        | names::ASSIGN_TICKET
        | names::SUBMIT_PRE_COMMIT
        | names::POLL_PRE_COMMIT_STATE
        | names::SUBMIT_PERSISTED
        | names::SUBMIT_PERSISTED_EX
        | names::WAIT_SEED
        | names::SUBMIT_PROOF
        | names::POLL_PROOF_STATE
        | names::REPORT_STATE
        | names::REPORT_FINALIZED
        | names::REPORT_ABORTED
        | names::ALLOCATE_SNAP_UP_SECTOR
        | names::SUBMIT_SNAP_UP_PROOF
        | names::ALLOCATE_REBUILD_SECTOR
        | names::ALLOCATE_UNSEAL_SECTOR
        | names::ACHIEVE_UNSEAL_SECTOR
        | names::ACQUIRE_UNSEAL_DEST
        | names::WORKER_PING
        | names::STORE_RESERVE_SPACE
        | names::WDPOST_ALLOCATE_JOBS
        | names::WDPOST_HEARTBEAT_JOBS
        | names::WDPOST_FINISH_JOB => Write,
        admin::LIST_SECTORS
        | admin::SECTOR_STATE
        | admin::STORE_LIST
        | admin::WORKER_PING_INFO_LIST
        | admin::CHAIN_HEAD
        | admin::MINER_INFO
        | admin::PROVING_DEADLINES
        | admin::PROVING_INFO
        | admin::PROVING_FAULTS
        | admin::PROVING_WINNING
        | admin::LIST_MESSAGES
        | admin::WORKER_THREADS
        | admin::SECTOR_TRACE_CONTEXT
        | admin::AUTH_VERIFY
        | admin::VERSION => Read,
        admin::WORKER_THREAD_PAUSE | admin::WORKER_THREAD_RESUME => Admin,
        // It costs seconds of every core: not for read-only tokens.
        admin::COMPUTE_WINNING_POST => Write,
        admin::PROVING_CHECK => Admin,
        admin::ABORT_SECTOR
        | admin::RESTORE_SECTOR
        | admin::FINALIZE_SECTOR
        | admin::RESEND_PRE_COMMIT
        | admin::RESEND_PROOF
        | admin::STORE_RELEASE_RESERVED => Admin,
        _ => return None,
    })
}

/// The positional parameters of one call.
struct Params {
    method: &'static str,
    values: Vec<Value>,
}

impl Params {
    fn new(method: &'static str, params: Value) -> Result<Params, ApiError> {
        match params {
            Value::Array(values) => Ok(Params { method, values }),
            Value::Null => Ok(Params {
                method,
                values: Vec::new(),
            }),
            other => Err(ApiError::invalid_params(format!(
                "{method} takes positional parameters (an array), not {other}"
            ))),
        }
    }

    fn at<T: DeserializeOwned>(&self, index: usize, name: &str) -> Result<T, ApiError> {
        let value = self.values.get(index).cloned().unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|error| {
            ApiError::invalid_params(format!(
                "{}: parameter {} ({name}): {error}",
                self.method,
                index + 1
            ))
        })
    }
}

/// The head and `miner`'s proving deadline at it.
async fn proving_deadline_now(
    manager: &Manager,
    miner: &Address,
) -> Result<
    (
        chain_client::types::TipSet,
        chain_client::types::DeadlineInfo,
    ),
    ApiError,
> {
    let head = manager.chain.chain_head().await?;
    let info = manager
        .chain
        .state_miner_proving_deadline(miner, &head.key())
        .await?;
    Ok((head, info))
}

/// 32 bytes of randomness from base64.
fn decode_randomness(text: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

fn to_value<T: Serialize>(value: T) -> Result<Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|error| ApiError::temporary(format!("encoding the answer: {error}")))
}

/// One sector in a listing.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorSummary {
    /// The sector.
    #[serde(rename = "ID")]
    pub id: SectorId,
    /// Seal proof.
    pub proof_type: u64,
    /// `sealing`, `finalized` or `aborted`.
    pub phase: String,
    /// How far it got.
    pub progress: String,
    /// The worker instance that reported last.
    pub worker: Option<String>,
    /// The last state reported.
    pub latest_state: Option<String>,
    /// Why it was aborted.
    pub abort_reason: Option<String>,
    /// The persistent store holding its files.
    pub persisted: Option<String>,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

fn progress(row: &SectorRow) -> &'static str {
    if row.proof_message.is_some() {
        "proof sent"
    } else if row.proof.is_some() {
        "proof waiting"
    } else if row.seed.is_some() {
        "seed assigned"
    } else if row.pre_message.is_some() {
        "precommit sent"
    } else if row.pre.is_some() {
        "precommit waiting"
    } else if row.ticket.is_some() {
        "ticket assigned"
    } else {
        "allocated"
    }
}

fn summary(row: &SectorRow) -> SectorSummary {
    let latest = row
        .latest_state
        .as_deref()
        .and_then(|text| serde_json::from_str::<ReportStateRequest>(text).ok())
        .map(|report| report.state_change.next);
    SectorSummary {
        id: SectorId {
            miner: row.miner,
            number: row.number,
        },
        proof_type: row.proof_type,
        phase: row.phase.as_str().to_owned(),
        progress: progress(row).to_owned(),
        worker: row.worker_instance.clone(),
        latest_state: latest,
        abort_reason: row.abort_reason.clone(),
        persisted: row.persisted_instance.clone(),
        updated_at: row.updated_at,
    }
}

fn message_json(message: &MessageRow) -> Value {
    json!({
        "Id": message.id,
        "Purpose": message.purpose.as_str(),
        "State": message.state.as_str(),
        "MsgUuid": message.msg_uuid,
        "SignedCid": message.signed_cid,
        "Sectors": message.sectors,
        "PushAttempts": message.push_attempts,
        "LastError": message.last_error,
        "ExecutedHeight": message.executed_height,
        "ExecutedTipset": message.executed_tipset.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok()),
        "ExitCode": message.exit_code,
        "Receipt": message.receipt,
        "CreatedAt": message.created_at,
    })
}

/// Answers one call with `permissions` granted.
pub async fn dispatch(
    manager: &Manager,
    method: &str,
    params: Value,
    permissions: &[Permission],
) -> Result<Value, ApiError> {
    let Some(needed) = permission_of(method) else {
        return Err(ApiError {
            code: chain_client::rpc::METHOD_NOT_FOUND_CODE,
            message: format!("method '{method}' not found"),
        });
    };
    if !permissions.contains(&needed) {
        return Err(ApiError {
            code: chain_client::rpc::METHOD_ERROR_CODE,
            message: format!(
                "missing permission to invoke '{method}' (need '{}'); send a token from `sector-manager auth create-token`{}",
                needed.as_str(),
                if needed == Permission::Admin {
                    ""
                } else {
                    ", or list this host's network in Common.Auth.TokenlessWorkerNetworks"
                }
            ),
        });
    }
    // The names are 'static constants; find ours so errors can name it.
    let method: &'static str = known_method_name(method);
    let p = Params::new(method, params)?;
    match method {
        names::ALLOCATE_SECTOR => to_value(manager.allocate_sector(&p.at(0, "spec")?).await?),
        names::ALLOCATE_SECTORS_BATCH => {
            let spec: AllocateSectorSpec = p.at(0, "spec")?;
            let count: u32 = p.at(1, "count")?;
            let mut sectors = Vec::new();
            for _ in 0..count.min(128) {
                match manager.allocate_sector(&spec).await? {
                    Some(sector) => sectors.push(sector),
                    None => break,
                }
            }
            to_value(sectors)
        }
        names::ACQUIRE_DEALS => {
            let sector: SectorId = p.at(0, "sector")?;
            // No market is connected: every sector is committed capacity. The sector
            // must still be known, so an aborted one is reported as such.
            manager
                .db
                .sector(sector.miner, sector.number)
                .await?
                .filter(|row| row.phase == Phase::Sealing)
                .ok_or_else(|| ApiError::sector_not_found(sector, "not sealing"))?;
            Ok(Value::Null)
        }
        names::ASSIGN_TICKET => to_value(manager.assign_ticket(p.at(0, "sector")?).await?),
        names::SUBMIT_PRE_COMMIT => to_value(
            manager
                .submit_pre_commit(
                    p.at(0, "sector")?,
                    &p.at(1, "info")?,
                    p.at(2, "hard_reset")?,
                )
                .await?,
        ),
        names::POLL_PRE_COMMIT_STATE => {
            to_value(manager.poll_pre_commit_state(p.at(0, "sector")?).await?)
        }
        names::SUBMIT_PERSISTED => to_value(
            manager
                .submit_persisted(p.at(0, "sector")?, &p.at::<String>(1, "instance")?, false)
                .await?,
        ),
        names::SUBMIT_PERSISTED_EX => to_value(
            manager
                .submit_persisted(
                    p.at(0, "sector")?,
                    &p.at::<String>(1, "instance")?,
                    p.at(2, "is_upgrade")?,
                )
                .await?,
        ),
        names::WAIT_SEED => to_value(
            manager
                .wait_seed(
                    p.at(0, "sector")?,
                    p.at::<Option<u64>>(1, "seal_proof")?.unwrap_or(0),
                )
                .await?,
        ),
        names::SUBMIT_PROOF => to_value(
            manager
                .submit_proof(
                    p.at(0, "sector")?,
                    &p.at(1, "info")?,
                    p.at(2, "hard_reset")?,
                )
                .await?,
        ),
        names::POLL_PROOF_STATE => to_value(manager.poll_proof_state(p.at(0, "sector")?).await?),
        names::REPORT_STATE => to_value(
            manager
                .report_state(p.at(0, "sector")?, &p.at(1, "report")?)
                .await?,
        ),
        names::REPORT_FINALIZED => {
            manager.report_finalized(p.at(0, "sector")?).await?;
            Ok(Value::Null)
        }
        names::REPORT_ABORTED => {
            manager
                .report_aborted(
                    p.at(0, "sector")?,
                    &p.at::<Option<String>>(1, "reason")?.unwrap_or_default(),
                )
                .await?;
            Ok(Value::Null)
        }
        names::WORKER_PING => {
            manager.worker_ping(&p.at(0, "info")?).await?;
            Ok(Value::Null)
        }
        names::STORE_RESERVE_SPACE => {
            let sector: SectorId = p.at(0, "sector")?;
            let bytes: u64 = p.at(1, "size")?;
            let candidates: Option<Vec<String>> = p.at(2, "candidates")?;
            let by = manager
                .db
                .sector(sector.miner, sector.number)
                .await?
                .and_then(|row| row.worker_instance)
                .unwrap_or_default();
            to_value(
                manager
                    .store_reserve_space(sector, bytes, &candidates.unwrap_or_default(), &by)
                    .await?,
            )
        }
        names::STORE_BASIC_INFO => {
            to_value(manager.store_basic_info(&p.at::<String>(0, "instance")?))
        }
        names::SEALING_DEFAULTS => to_value(manager.sealing_defaults()),
        // Snap-up, rebuild and unseal jobs are not produced by this manager yet: the
        // allocations answer "nothing now" and the calls about a job say there is none.
        names::ALLOCATE_SNAP_UP_SECTOR => {
            let _: AllocateSnapUpSpec = p.at(0, "spec")?;
            Ok(Value::Null)
        }
        names::SUBMIT_SNAP_UP_PROOF => {
            let _: SectorId = p.at(0, "sector")?;
            let _: SnapUpOnChainInfo = p.at(1, "info")?;
            to_value(SubmitResponse {
                res: SubmitResult::Rejected,
                desc: Some("this manager hands out no snap-up sectors".to_owned()),
            })
        }
        names::ALLOCATE_REBUILD_SECTOR | names::ALLOCATE_UNSEAL_SECTOR => {
            let _: AllocateSectorSpec = p.at(0, "spec")?;
            Ok(Value::Null)
        }
        names::ACHIEVE_UNSEAL_SECTOR | names::ACQUIRE_UNSEAL_DEST => {
            let sector: SectorId = p.at(0, "sector")?;
            let piece: CidJson = p.at(1, "piece_cid")?;
            Err(ApiError::temporary(format!(
                "no unseal task exists for {sector} and piece {}",
                piece.cid
            )))
        }
        names::WDPOST_ALLOCATE_JOBS => {
            let _: AllocatePoStSpec = p.at(0, "spec")?;
            let _: u32 = p.at(1, "count")?;
            let _: String = p.at(2, "worker_name")?;
            Ok(json!([]))
        }
        names::WDPOST_HEARTBEAT_JOBS => {
            let jobs: Vec<String> = p.at(0, "job_ids")?;
            let _: String = p.at(1, "worker_name")?;
            if jobs.is_empty() {
                Ok(Value::Null)
            } else {
                Err(ApiError::temporary(format!(
                    "unknown window-PoSt jobs: {}",
                    jobs.join(", ")
                )))
            }
        }
        names::WDPOST_FINISH_JOB => {
            let job: String = p.at(0, "job_id")?;
            let _: Option<WindowPoStOutput> = p.at(1, "output")?;
            Err(ApiError::temporary(format!(
                "unknown window-PoSt job {job}"
            )))
        }
        admin::LIST_SECTORS => {
            let phase: Option<String> = p.at(0, "phase")?;
            let miner: Option<u64> = p.at(1, "miner")?;
            let phase = match phase.as_deref().unwrap_or("") {
                "" => None,
                "sealing" => Some(Phase::Sealing),
                "finalized" => Some(Phase::Finalized),
                "aborted" => Some(Phase::Aborted),
                other => {
                    return Err(ApiError::invalid_params(format!(
                        "{other:?} is not a phase; use \"sealing\", \"finalized\", \"aborted\" or \"\""
                    )));
                }
            };
            let rows = manager.db.sectors(phase, miner).await?;
            to_value(rows.iter().map(summary).collect::<Vec<_>>())
        }
        admin::SECTOR_STATE => {
            let sector: SectorId = p.at(0, "sector")?;
            let row = manager.known_sector(sector).await?;
            let events = manager
                .db
                .sector_events(sector.miner, sector.number)
                .await?;
            let messages = manager
                .db
                .messages_of_sector(sector.miner, sector.number)
                .await?;
            let trace_id = manager
                .sector_traceparent(sector.miner, sector.number)
                .await
                .and_then(|traceparent| telemetry::trace_id_of(&traceparent).map(str::to_owned));
            Ok(json!({
                "Summary": summary(&row),
                "TraceId": trace_id,
                "Ticket": row.ticket.as_ref().map(|(bytes, epoch)| json!({"Ticket": hex::encode(bytes), "Epoch": epoch})),
                "PreCommit": row.pre.as_ref().map(|pre| json!({
                    "CommR": hex::encode(&pre.comm_r), "CommD": hex::encode(&pre.comm_d),
                    "TicketEpoch": pre.ticket_epoch, "SubmittedAt": pre.submitted_at,
                    "NeedSend": row.pre_need_send, "Message": row.pre_message,
                })),
                "Seed": row.seed.as_ref().map(|(bytes, epoch)| json!({"Seed": hex::encode(bytes), "Epoch": epoch})),
                "Proof": row.proof.as_ref().map(|proof| json!({
                    "Bytes": proof.len(), "SubmittedAt": row.proof_submitted_at,
                    "NeedSend": row.proof_need_send, "Message": row.proof_message,
                })),
                "LatestState": row.latest_state.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok()),
                "Messages": messages.iter().map(message_json).collect::<Vec<_>>(),
                "Events": events.iter().map(|(at, kind, detail)| json!({"At": at, "Kind": kind, "Detail": detail})).collect::<Vec<_>>(),
            }))
        }
        admin::ABORT_SECTOR => {
            let sector: SectorId = p.at(0, "sector")?;
            let reason: String = p.at(1, "reason")?;
            to_value(
                manager
                    .db
                    .end_sector(
                        sector.miner,
                        sector.number,
                        Phase::Aborted,
                        Some(&format!("aborted by an operator: {reason}")),
                        unix_now(),
                    )
                    .await?,
            )
        }
        admin::RESTORE_SECTOR => {
            let sector: SectorId = p.at(0, "sector")?;
            to_value(
                manager
                    .db
                    .restore_sector(sector.miner, sector.number, unix_now())
                    .await?,
            )
        }
        admin::FINALIZE_SECTOR => {
            let sector: SectorId = p.at(0, "sector")?;
            to_value(
                manager
                    .db
                    .end_sector(
                        sector.miner,
                        sector.number,
                        Phase::Finalized,
                        None,
                        unix_now(),
                    )
                    .await?,
            )
        }
        admin::RESEND_PRE_COMMIT => {
            let sector: SectorId = p.at(0, "sector")?;
            let row = manager.known_sector(sector).await?;
            let Some(pre) = row.pre else {
                return Err(ApiError::temporary(format!(
                    "{sector} has no precommit to send again"
                )));
            };
            let info = PreCommitOnChainInfo {
                comm_r: pre
                    .comm_r
                    .as_slice()
                    .try_into()
                    .map_err(|_| ApiError::temporary("stored CommR is not 32 bytes"))?,
                comm_d: pre
                    .comm_d
                    .as_slice()
                    .try_into()
                    .map_err(|_| ApiError::temporary("stored CommD is not 32 bytes"))?,
                ticket: Ticket {
                    ticket: Base64Bytes(pre.ticket),
                    epoch: pre.ticket_epoch,
                },
            };
            let allocated = AllocatedSector {
                id: sector,
                proof_type: row.proof_type,
            };
            to_value(manager.submit_pre_commit(allocated, &info, true).await?)
        }
        admin::RESEND_PROOF => {
            let sector: SectorId = p.at(0, "sector")?;
            let row = manager.known_sector(sector).await?;
            let Some(proof) = row.proof else {
                return Err(ApiError::temporary(format!(
                    "{sector} has no proof to send again"
                )));
            };
            to_value(
                manager
                    .submit_proof(
                        sector,
                        &ProofOnChainInfo {
                            proof: Base64Bytes(proof),
                        },
                        true,
                    )
                    .await?,
            )
        }
        admin::STORE_LIST => {
            let reservations = manager.db.reservations().await?;
            let views = manager.measure_stores().await?;
            to_value(
                views
                    .iter()
                    .map(|view| {
                        let mine: Vec<_> = reservations.iter().filter(|r| r.store == view.config.name).collect();
                        json!({
                            "Name": view.config.name,
                            "Path": view.config.path,
                            "ReadOnly": view.config.read_only,
                            "Weight": view.config.weight,
                            "Free": view.free_bytes.as_ref().ok(),
                            "Error": view.free_bytes.as_ref().err(),
                            "Reserved": mine.iter().map(|r| r.bytes).sum::<u64>(),
                            "ReservedBy": mine.iter().map(|r| SectorId { miner: r.miner, number: r.number }.to_string()).collect::<Vec<_>>(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        }
        admin::STORE_RELEASE_RESERVED => {
            let sector: SectorId = p.at(0, "sector")?;
            to_value(
                manager
                    .db
                    .release_reservation(sector.miner, sector.number)
                    .await?,
            )
        }
        admin::WORKER_PING_INFO_LIST => {
            let workers = manager.db.workers().await?;
            to_value(
                workers
                    .iter()
                    .map(|worker| {
                        json!({
                            "Info": {
                                "Name": worker.name, "Dest": worker.dest, "Version": worker.version,
                                "Summary": serde_json::from_str::<Value>(&worker.summary).unwrap_or(Value::Null),
                            },
                            "LastPing": worker.last_ping,
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        }
        admin::CHAIN_HEAD => {
            let head = manager.chain.chain_head().await?;
            Ok(
                json!({"Height": head.height, "Cids": head.cids.iter().map(ToString::to_string).collect::<Vec<_>>()}),
            )
        }
        admin::MINER_INFO => {
            let actor: u64 = p.at(0, "actor")?;
            let info = manager
                .chain
                .state_miner_info(&Address::new_id(actor), &TipSetKey::head())
                .await?;
            Ok(json!({
                "Actor": actor,
                "Owner": info.owner.to_string(),
                "Worker": info.worker.to_string(),
                "ControlAddresses": info.control_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "SectorSize": info.sector_size,
                "WindowPoStPartitionSectors": info.window_post_partition_sectors,
                "Configured": manager.miners.contains_key(&actor),
                "LastAllocated": manager.db.last_allocated(actor).await?,
            }))
        }
        admin::VERSION => Ok(json!(crate::VERSION)),
        admin::PROVING_INFO => {
            let actor: u64 = p.at(0, "actor")?;
            let address = Address::new_id(actor);
            let (head, info) = proving_deadline_now(manager, &address).await?;
            let faults = manager
                .chain
                .state_miner_faults(&address, &head.key())
                .await?;
            let recoveries = manager
                .chain
                .state_miner_recoveries(&address, &head.key())
                .await?;
            let partitions = manager
                .chain
                .state_miner_partitions(&address, info.index, &head.key())
                .await?;
            Ok(json!({
                "Actor": actor,
                "CurrentEpoch": info.current_epoch,
                "PeriodStart": info.period_start,
                "NextPeriodStart": info.period_start + info.wpost_proving_period,
                "Deadline": info.index,
                "Deadlines": info.wpost_period_deadlines,
                "Open": info.open,
                "Close": info.close,
                "Challenge": info.challenge,
                "FaultCutoff": info.fault_cutoff,
                "Partitions": partitions.len(),
                "Faults": faults.len(),
                "Recovering": recoveries.len(),
            }))
        }
        admin::PROVING_FAULTS => {
            let actor: u64 = p.at(0, "actor")?;
            let address = Address::new_id(actor);
            let (head, info) = proving_deadline_now(manager, &address).await?;
            let mut rows = Vec::new();
            for deadline in 0..info.wpost_period_deadlines {
                let partitions = manager
                    .chain
                    .state_miner_partitions(&address, deadline, &head.key())
                    .await?;
                for (index, partition) in partitions.iter().enumerate() {
                    for sector in partition.faulty_sectors.iter() {
                        rows.push(json!({
                            "Deadline": deadline,
                            "Partition": index,
                            "Sector": sector,
                            "Recovering": partition.recovering_sectors.get(sector),
                        }));
                    }
                }
            }
            Ok(Value::Array(rows))
        }
        admin::PROVING_CHECK => {
            let actor: u64 = p.at(0, "actor")?;
            let deadline: u64 = p.at(1, "deadline")?;
            crate::proving_check(manager, actor, deadline).await
        }
        admin::COMPUTE_WINNING_POST => {
            let miner: String = p.at(0, "miner")?;
            let miner = chain_client::lotus_json::address::parse(&miner).map_err(|error| {
                ApiError::invalid_params(format!("{method}: parameter 1 (miner): {error}"))
            })?;
            let sectors: Vec<chain_client::types::ExtendedSectorInfo> = p.at(1, "sectors")?;
            let randomness: String = p.at(2, "randomness")?;
            let randomness = decode_randomness(&randomness).ok_or_else(|| {
                ApiError::invalid_params(format!(
                    "{method}: parameter 3 (randomness): 32 bytes in base64 expected"
                ))
            })?;
            let round: i64 = p.at(3, "round")?;
            let service = manager.winning_service(&miner).ok_or_else(|| {
                ApiError::invalid_params(format!(
                    "this manager makes no winning PoSt for {miner}: set [Miners.Proof] Enabled = true for it and run `daemon run --miner`"
                ))
            })?;
            let proofs = service
                .prove(&sectors, randomness, round)
                .await
                .map_err(|error| ApiError::temporary(error.to_string()))?;
            to_value(proofs)
        }
        admin::LIST_MESSAGES => {
            let states: Option<Vec<String>> = p.at(0, "states")?;
            let wanted = match states {
                None => vec![MessageState::Created, MessageState::Pushed, MessageState::Executed],
                Some(names) => names
                    .iter()
                    .map(|name| {
                        MessageState::from_name(name).ok_or_else(|| {
                            ApiError::invalid_params(format!(
                                "{method}: parameter 1 (states): {name:?} is not one of created, pushed, executed, final, failed"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let mut messages = manager.db.messages_in(&wanted).await?;
            for message in &mut messages {
                message.sectors = manager.db.message_sectors(message.id).await?;
            }
            Ok(Value::Array(messages.iter().map(message_json).collect()))
        }
        admin::AUTH_VERIFY => Ok(json!(
            permissions
                .iter()
                .map(|permission| permission.as_str())
                .collect::<Vec<_>>()
        )),
        admin::SECTOR_TRACE_CONTEXT => {
            let sector: SectorId = p.at(0, "sector")?;
            Ok(json!(
                manager
                    .sector_traceparent(sector.miner, sector.number)
                    .await
            ))
        }
        admin::WORKER_THREADS => {
            let name: String = p.at(0, "worker name")?;
            crate::worker_admin_call(manager, &name, "VenusWorker.WorkerList", Vec::new()).await
        }
        admin::WORKER_THREAD_PAUSE => {
            let name: String = p.at(0, "worker name")?;
            let index: u64 = p.at(1, "thread index")?;
            crate::worker_admin_call(
                manager,
                &name,
                "VenusWorker.WorkerPause",
                vec![json!(index)],
            )
            .await
        }
        admin::WORKER_THREAD_RESUME => {
            let name: String = p.at(0, "worker name")?;
            let index: u64 = p.at(1, "thread index")?;
            let state: Option<String> = p.at(2, "state")?;
            crate::worker_admin_call(
                manager,
                &name,
                "VenusWorker.WorkerResume",
                vec![json!(index), json!(state)],
            )
            .await
        }
        admin::PROVING_WINNING => {
            let mut rows = Vec::new();
            for service in manager.winning_services() {
                for record in service.records() {
                    let mut row = to_value(record)?;
                    if let Some(fields) = row.as_object_mut() {
                        fields.insert("Miner".to_owned(), json!(service.miner().to_string()));
                    }
                    rows.push(row);
                }
            }
            Ok(Value::Array(rows))
        }
        admin::PROVING_DEADLINES => {
            let runners: Vec<post::runner::DeadlineRecords> = manager
                .post_records
                .lock()
                .map(|records| records.values().cloned().collect())
                .unwrap_or_default();
            let mut records: Vec<post::runner::DeadlineRecord> = runners
                .iter()
                .filter_map(|records| {
                    records
                        .lock()
                        .ok()
                        .map(|records| records.iter().cloned().collect::<Vec<_>>())
                })
                .flatten()
                .collect();
            records.sort_by_key(|record| (record.open, record.miner));
            Ok(serde_json::to_value(records).unwrap_or_default())
        }
        _ => Err(ApiError {
            code: chain_client::rpc::METHOD_NOT_FOUND_CODE,
            message: format!("method '{method}' not found"),
        }),
    }
}

/// The methods sealing workers call (what a PoSt-only manager refuses).
pub const WORKER_METHODS: &[&str] = &[
    names::ALLOCATE_SECTOR,
    names::ALLOCATE_SECTORS_BATCH,
    names::ACQUIRE_DEALS,
    names::ASSIGN_TICKET,
    names::SUBMIT_PRE_COMMIT,
    names::POLL_PRE_COMMIT_STATE,
    names::SUBMIT_PERSISTED,
    names::SUBMIT_PERSISTED_EX,
    names::WAIT_SEED,
    names::SUBMIT_PROOF,
    names::POLL_PROOF_STATE,
    names::REPORT_STATE,
    names::REPORT_FINALIZED,
    names::REPORT_ABORTED,
    names::ALLOCATE_SNAP_UP_SECTOR,
    names::SUBMIT_SNAP_UP_PROOF,
    names::ALLOCATE_REBUILD_SECTOR,
    names::ALLOCATE_UNSEAL_SECTOR,
    names::ACHIEVE_UNSEAL_SECTOR,
    names::ACQUIRE_UNSEAL_DEST,
    names::WORKER_PING,
    names::STORE_RESERVE_SPACE,
    names::STORE_BASIC_INFO,
    names::WDPOST_ALLOCATE_JOBS,
    names::WDPOST_HEARTBEAT_JOBS,
    names::WDPOST_FINISH_JOB,
    names::SEALING_DEFAULTS,
];

/// The operators' methods.
pub const OPERATOR_METHODS: &[&str] = &[
    admin::LIST_SECTORS,
    admin::SECTOR_STATE,
    admin::ABORT_SECTOR,
    admin::RESTORE_SECTOR,
    admin::FINALIZE_SECTOR,
    admin::RESEND_PRE_COMMIT,
    admin::RESEND_PROOF,
    admin::STORE_LIST,
    admin::STORE_RELEASE_RESERVED,
    admin::WORKER_PING_INFO_LIST,
    admin::CHAIN_HEAD,
    admin::MINER_INFO,
    admin::PROVING_DEADLINES,
    admin::PROVING_INFO,
    admin::PROVING_FAULTS,
    admin::PROVING_CHECK,
    admin::COMPUTE_WINNING_POST,
    admin::PROVING_WINNING,
    admin::LIST_MESSAGES,
    admin::WORKER_THREAD_PAUSE,
    admin::WORKER_THREAD_RESUME,
    admin::WORKER_THREADS,
    admin::SECTOR_TRACE_CONTEXT,
    admin::AUTH_VERIFY,
    admin::VERSION,
];

/// Whether `method` is one a sealing worker calls (what a PoSt-only manager refuses).
pub fn is_worker_method(method: &str) -> bool {
    WORKER_METHODS.contains(&method)
}

/// `method` if it is one this manager serves, else `Venus.Unknown`: a `'static`, bounded
/// name for errors, logs and metric labels.
pub(crate) fn known_method_name(method: &str) -> &'static str {
    WORKER_METHODS
        .iter()
        .chain(OPERATOR_METHODS)
        .copied()
        .find(|name| *name == method)
        .unwrap_or("Venus.Unknown")
}
