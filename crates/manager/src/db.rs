//! The manager's record in SQL: SQLite by default, PostgreSQL by URL, one set of
//! statements for both (`$n` parameters), versioned migrations run at start, and every
//! write that belongs together in one transaction.
//!
//! Reads, migrations and all of PostgreSQL go through sqlx's `Any` driver. SQLite's
//! writes go through the writer thread of [`crate::sqlite_writer`] (rusqlite), which
//! commits waiting writes together: through sqlx each statement cost a round trip to
//! the connection's thread, and bursts of writes queued for hundreds of milliseconds.
//! With SQLite the rows polls read are kept in memory ([`crate::row_cache`]).
//!
//! No method holds a transaction across a call to the chain: callers read, ask the
//! chain, then write conditionally (`WHERE` the state they read still holds).

use std::path::Path;
use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::row_cache::{RowCache, Touched};
use crate::sqlite_writer::{Durability, SqliteWriter};
use rusqlite::OptionalExtension as _;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL names no supported database.
    #[error("{0}")]
    Url(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The SQLite writer's statement failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction a write belonged to did not commit.
    #[error("database: {0}")]
    Commit(String),
    /// What a write expected no longer holds; its statements were undone. (Used
    /// inside the database layer; callers see the write's own answer instead.)
    #[error("the record changed meanwhile")]
    Stale,
    /// A migration failed.
    #[error("migrating the database: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode.
    #[error("stored value: {0}")]
    Corrupt(String),
}

/// Which server the URL named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL-compatible server.
    Postgres,
}

/// The open database.
#[derive(Clone, Debug)]
pub struct Database {
    /// Where SQLite writes run: one thread committing waiting writes together (see
    /// [`SqliteWriter`]); none for PostgreSQL.
    sqlite_writer: Option<SqliteWriter>,
    /// PostgreSQL's writes (and everything else); SQLite's migrations and identity.
    pool: AnyPool,
    /// Reads: for SQLite a separate pool, so readers never queue behind a writer's
    /// commit (WAL lets them read while it writes); for PostgreSQL the same pool.
    reader: AnyPool,
    /// Sector and message rows kept in memory (SQLite only: see [`RowCache`]).
    cache: Option<Arc<RowCache>>,
}

/// The phase of a sector's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A worker is sealing it.
    Sealing,
    /// Sealed, on chain and persisted; the worker reported it finished.
    Finalized,
    /// Given up.
    Aborted,
}

impl Phase {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Sealing => "sealing",
            Phase::Finalized => "finalized",
            Phase::Aborted => "aborted",
        }
    }

    fn parse(text: &str) -> Result<Phase, DatabaseError> {
        match text {
            "sealing" => Ok(Phase::Sealing),
            "finalized" => Ok(Phase::Finalized),
            "aborted" => Ok(Phase::Aborted),
            other => Err(DatabaseError::Corrupt(format!("unknown phase {other:?}"))),
        }
    }
}

/// An event for a sector's history, to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorEventRow {
    /// The miner's actor id.
    pub miner: u64,
    /// The sector number.
    pub number: u64,
    /// When, in Unix seconds.
    pub at: i64,
    /// What kind of event (`worker state`, `worker failure`, `allocated`, ...).
    pub kind: String,
    /// What happened, for people.
    pub detail: String,
}

/// A sector's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorRow {
    /// Miner actor id.
    pub miner: u64,
    /// Sector number.
    pub number: u64,
    /// Seal proof number.
    pub proof_type: u64,
    /// Phase.
    pub phase: Phase,
    /// Why it was aborted.
    pub abort_reason: Option<String>,
    /// The ticket assigned: randomness and epoch.
    pub ticket: Option<(Vec<u8>, i64)>,
    /// The precommit submitted.
    pub pre: Option<PreCommitRecord>,
    /// The precommit waits for a message.
    pub pre_need_send: bool,
    /// The outbox message carrying the precommit.
    pub pre_message: Option<i64>,
    /// The seed handed out: randomness and epoch.
    pub seed: Option<(Vec<u8>, i64)>,
    /// The proof submitted.
    pub proof: Option<Vec<u8>>,
    /// When the proof was submitted (Unix seconds).
    pub proof_submitted_at: Option<i64>,
    /// The proof waits for a message.
    pub proof_need_send: bool,
    /// The outbox message carrying the proof.
    pub proof_message: Option<i64>,
    /// The persistent store holding its files.
    pub persisted_instance: Option<String>,
    /// The last state its worker reported (JSON of `ReportStateRequest`).
    pub latest_state: Option<String>,
    /// The worker instance that reported last.
    pub worker_instance: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

/// What a precommit submission committed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreCommitRecord {
    /// CommR.
    pub comm_r: Vec<u8>,
    /// CommD.
    pub comm_d: Vec<u8>,
    /// The ticket sealed with.
    pub ticket: Vec<u8>,
    /// Its epoch.
    pub ticket_epoch: i64,
    /// When it was submitted (Unix seconds).
    pub submitted_at: i64,
}

/// Which chain randomness a sector was handed.
#[derive(Clone, Copy, Debug)]
enum Randomness {
    /// The PreCommit ticket.
    Ticket,
    /// The interactive-PoRep seed.
    Seed,
}

/// What an outbox message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// PreCommitSectorBatch2.
    PreCommit,
    /// ProveCommitSectors3.
    ProveCommit,
}

impl Purpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PreCommit => "pre_commit",
            Purpose::ProveCommit => "prove_commit",
        }
    }

    fn parse(text: &str) -> Result<Purpose, DatabaseError> {
        match text {
            "pre_commit" => Ok(Purpose::PreCommit),
            "prove_commit" => Ok(Purpose::ProveCommit),
            other => Err(DatabaseError::Corrupt(format!("unknown purpose {other:?}"))),
        }
    }
}

/// Where an outbox message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageState {
    /// Recorded, not yet accepted by the node.
    Created,
    /// Accepted by the node's pool (signed; its CID is known).
    Pushed,
    /// Executed in a tipset (may still be reverted).
    Executed,
    /// Executed and buried under the chain's finality: no longer watched.
    Final,
    /// Could not be sent.
    Failed,
}

impl MessageState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Created => "created",
            MessageState::Pushed => "pushed",
            MessageState::Executed => "executed",
            MessageState::Final => "final",
            MessageState::Failed => "failed",
        }
    }

    /// The state named `name` (`created`, `pushed`, `executed`, `final`, `failed`).
    pub fn from_name(name: &str) -> Option<MessageState> {
        MessageState::parse(name).ok()
    }

    fn parse(text: &str) -> Result<MessageState, DatabaseError> {
        match text {
            "created" => Ok(MessageState::Created),
            "pushed" => Ok(MessageState::Pushed),
            "executed" => Ok(MessageState::Executed),
            "final" => Ok(MessageState::Final),
            "failed" => Ok(MessageState::Failed),
            other => Err(DatabaseError::Corrupt(format!(
                "unknown message state {other:?}"
            ))),
        }
    }
}

/// An outbox message's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    /// Its id.
    pub id: i64,
    /// The miner it is for.
    pub miner: u64,
    /// What it carries.
    pub purpose: Purpose,
    /// The `MsgUuid` it is pushed with, so a repeated push returns the same message.
    pub msg_uuid: String,
    /// The sender.
    pub from_address: String,
    /// The miner-actor method.
    pub method: u64,
    /// CBOR parameters.
    pub params: Vec<u8>,
    /// Value in attoFIL (decimal).
    pub value: String,
    /// Fee cap in attoFIL (decimal; `0` for the node's default).
    pub max_fee: String,
    /// Where it stands.
    pub state: MessageState,
    /// The signed message's CID.
    pub signed_cid: Option<String>,
    /// The signed message (Lotus JSON), to rebroadcast unchanged.
    pub signed_message: Option<String>,
    /// Pushes tried.
    pub push_attempts: i64,
    /// The head height at which its sender's nonce was first seen past it while it was
    /// not found executed.
    pub nonce_passed_height: Option<i64>,
    /// The last push or execution error.
    pub last_error: Option<String>,
    /// The height of the tipset that executed it.
    pub executed_height: Option<i64>,
    /// That tipset's key (JSON), which a reorganisation may change at the same height.
    pub executed_tipset: Option<String>,
    /// Its exit code.
    pub exit_code: Option<i64>,
    /// The receipt, for people.
    pub receipt: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// The sectors it carries (left empty by [`Database::messages_in`]).
    pub sectors: Vec<u64>,
}

/// A reservation's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRow {
    /// The sector.
    pub miner: u64,
    /// The sector.
    pub number: u64,
    /// The store.
    pub store: String,
    /// Bytes.
    pub bytes: u64,
    /// Who asked.
    pub reserved_by: String,
    /// When (Unix seconds).
    pub reserved_at: i64,
}

/// A worker's last ping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRow {
    /// Instance name.
    pub name: String,
    /// Its RPC address.
    pub dest: String,
    /// Its version.
    pub version: String,
    /// Its threads (JSON of `WorkerSummary`).
    pub summary: String,
    /// When it pinged (Unix seconds).
    pub last_ping: i64,
}

fn to_i64(value: u64) -> Result<i64, DatabaseError> {
    i64::try_from(value).map_err(|_| DatabaseError::Corrupt(format!("{value} exceeds i64")))
}

fn to_u64(value: i64) -> Result<u64, DatabaseError> {
    u64::try_from(value).map_err(|_| DatabaseError::Corrupt(format!("{value} is negative")))
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const SECTOR_COLUMNS: &str = "miner, number, proof_type, phase, abort_reason, ticket, ticket_epoch, \
    pre_comm_r, pre_comm_d, pre_ticket, pre_ticket_epoch, pre_submitted_at, pre_need_send, pre_message, \
    seed, seed_epoch, proof, proof_submitted_at, proof_need_send, proof_message, persisted_instance, \
    latest_state, worker_instance, created_at, updated_at";

const MESSAGE_COLUMNS: &str = "id, miner, purpose, msg_uuid, from_address, method, params, value, max_fee, \
    state, signed_cid, signed_message, push_attempts, nonce_passed_height, last_error, executed_height, executed_tipset, exit_code, receipt, created_at";

/// A precommit submission (a hard reset replaces the earlier one).
const PRE_COMMIT_UPDATE: &str = "UPDATE sectors SET pre_comm_r = $3, pre_comm_d = $4, pre_ticket = $5, pre_ticket_epoch = $6, \
                 pre_submitted_at = $7, pre_need_send = 1, pre_message = NULL, updated_at = $7 \
                 WHERE miner = $1 AND number = $2 AND phase = 'sealing'";

/// A proof submission (a hard reset replaces the earlier one).
const PROOF_UPDATE: &str = "UPDATE sectors SET proof = $3, proof_submitted_at = $4, proof_need_send = 1, proof_message = NULL, \
                 updated_at = $4 WHERE miner = $1 AND number = $2 AND phase = 'sealing'";

/// Where a sector's files were persisted.
const PERSISTED_UPDATE: &str =
    "UPDATE sectors SET persisted_instance = $3, updated_at = $4 WHERE miner = $1 AND number = $2";

/// A worker's latest state report.
const REPORT_UPDATE: &str = "UPDATE sectors SET latest_state = $3, worker_instance = $4, updated_at = $5 \
                     WHERE miner = $1 AND number = $2 AND phase = 'sealing'";

/// A sealing sector finalized or aborted.
const END_UPDATE: &str = "UPDATE sectors SET phase = $3, abort_reason = $4, pre_need_send = 0, proof_need_send = 0, updated_at = $5 \
                 WHERE miner = $1 AND number = $2 AND phase = 'sealing'";

/// A finalized or aborted sector brought back to sealing.
const RESTORE_UPDATE: &str = "UPDATE sectors SET phase = 'sealing', abort_reason = NULL, updated_at = $3 \
                 WHERE miner = $1 AND number = $2 AND phase <> 'sealing'";

/// A newly allocated sector.
const SECTOR_INSERT: &str = "INSERT INTO sectors (miner, number, proof_type, phase, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'sealing', $4, $4)";

/// The node accepted a message.
const MESSAGE_PUSHED: &str = "UPDATE messages SET state = 'pushed', signed_cid = $2, signed_message = $3, push_attempts = push_attempts + 1, \
                 last_error = NULL, updated_at = $4 WHERE id = $1 AND state = 'created'";

/// A push failed.
const MESSAGE_PUSH_FAILED: &str = "UPDATE messages SET push_attempts = push_attempts + 1, last_error = $2, \
                 state = CASE WHEN $3 = 1 THEN 'failed' ELSE state END, updated_at = $4 WHERE id = $1 AND state = 'created'";

/// The chain executed a message.
const MESSAGE_EXECUTED: &str = "UPDATE messages SET state = 'executed', executed_height = $2, executed_tipset = $3, exit_code = $4, \
                         receipt = $5, updated_at = $6 WHERE id = $1";

/// A reorganisation took a message's execution away.
const MESSAGE_REVERTED: &str = "UPDATE messages SET state = 'pushed', executed_height = NULL, executed_tipset = NULL, exit_code = NULL, \
                         receipt = NULL, updated_at = $2 WHERE id = $1 AND state = 'executed'";

/// A message buried under finality.
const MESSAGE_FINAL: &str =
    "UPDATE messages SET state = 'final', updated_at = $2 WHERE id = $1 AND state = 'executed'";

/// The sender's nonce passed a message.
const MESSAGE_NONCE_PASSED: &str = "UPDATE messages SET nonce_passed_height = $2, updated_at = $3 WHERE id = $1 AND nonce_passed_height IS NULL";

/// A pushed message the chain will never execute.
const MESSAGE_DEAD: &str = "UPDATE messages SET state = 'failed', last_error = $2, updated_at = $3 WHERE id = $1 AND state = 'pushed'";

/// A sector's reservation, recorded or replaced.
const RESERVATION_PUT: &str = "INSERT INTO reservations (miner, number, store, bytes, reserved_by, reserved_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (miner, number) DO UPDATE SET store = excluded.store, bytes = excluded.bytes, \
                 reserved_by = excluded.reserved_by, reserved_at = excluded.reserved_at";

/// A worker's ping.
const WORKER_PING_UPSERT: &str = "INSERT INTO workers (name, dest, version, summary, last_ping) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET dest = excluded.dest, version = excluded.version, \
                 summary = excluded.summary, last_ping = excluded.last_ping";

/// An outbox message.
const MESSAGE_INSERT: &str = "INSERT INTO messages (miner, purpose, msg_uuid, from_address, method, params, value, max_fee, state, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'created', $9, $9) RETURNING id";

/// A sector an outbox message carries.
const MESSAGE_SECTOR_INSERT: &str =
    "INSERT INTO message_sectors (message_id, miner, number) VALUES ($1, $2, $3)";

/// An event of a sector's history.
const EVENT_INSERT: &str =
    "INSERT INTO sector_events (miner, number, at, kind, detail) VALUES ($1, $2, $3, $4, $5)";

/// A sector's reservation dropped.
const RESERVATION_DELETE: &str = "DELETE FROM reservations WHERE miner = $1 AND number = $2";

/// A sector taken off the waiting list by the outbox message that carries it.
fn carried_update(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::PreCommit => {
            "UPDATE sectors SET pre_message = $3, pre_need_send = 0, updated_at = $4 \
                 WHERE miner = $1 AND number = $2 AND phase = 'sealing' AND pre_need_send = 1 AND pre_message IS NULL"
        }
        Purpose::ProveCommit => {
            "UPDATE sectors SET proof_message = $3, proof_need_send = 0, updated_at = $4 \
                 WHERE miner = $1 AND number = $2 AND phase = 'sealing' AND proof_need_send = 1 AND proof_message IS NULL"
        }
    }
}

/// The last number allocated for a miner.
const COUNTER_READ: &str = "SELECT last_allocated FROM sector_numbers WHERE miner = $1";
/// A miner's allocation counter, set (SQLite's writer: read, then set).
const COUNTER_SET: &str = "INSERT INTO sector_numbers (miner, last_allocated) VALUES ($1, $2) \
    ON CONFLICT (miner) DO UPDATE SET last_allocated = excluded.last_allocated";

impl Database {
    /// Opens the database `url` names (a relative SQLite path is taken from `home`),
    /// creating an SQLite file if needed, and runs the migrations.
    pub async fn open(
        url: &str,
        home: &Path,
        max_connections: u32,
    ) -> Result<Database, DatabaseError> {
        sqlx::any::install_default_drivers();
        let (backend, url, sqlite_path) = if let Some(path) = url.strip_prefix("sqlite://") {
            let (path, _) = path.split_once('?').unwrap_or((path, ""));
            let path = if Path::new(path).is_absolute() {
                Path::new(path).to_owned()
            } else {
                home.join(path)
            };
            (
                Backend::Sqlite,
                format!("sqlite://{}?mode=rwc", path.display()),
                Some(path),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned(), None)
        } else {
            return Err(DatabaseError::Url(format!(
                "{url:?} is not a database URL; write \"sqlite://sector-manager.db\" or \"postgres://user:password@host/database\""
            )));
        };
        let sqlite_pool = |connections: u32, url: String| async move {
            AnyPoolOptions::new()
                .max_connections(connections)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        use sqlx::Executor as _;
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
        };
        let (pool, reader) = match backend {
            Backend::Sqlite => {
                // One sqlx connection runs the migrations and makes the identity; the
                // writes of the sealing pipeline go through the writer thread.
                let pool = sqlite_pool(1, url.clone()).await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                let reader = sqlite_pool(max_connections.clamp(1, 8), url).await?;
                (pool, reader)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .connect(&url)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        let (cache, sqlite_writer) = match sqlite_path {
            Some(path) => {
                let cache = Arc::new(RowCache::default());
                let writer = SqliteWriter::start(&path, Arc::clone(&cache))?;
                (Some(cache), Some(writer))
            }
            None => (None, None),
        };
        Ok(Database {
            sqlite_writer,
            pool,
            reader,
            cache,
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }

    /// This database's identity: an instance id (part of every message's `MsgUuid`) and
    /// the secret API tokens are signed with, made at first start.
    pub async fn identity(&self) -> Result<(String, Vec<u8>), DatabaseError> {
        if let Some(row) = sqlx::query(
            "SELECT instance_id, token_secret FROM manager_identity WHERE singleton = 1",
        )
        .fetch_optional(&self.pool)
        .await?
        {
            return Ok((row.try_get(0)?, row.try_get(1)?));
        }
        let instance: [u8; 16] = rand::random();
        let secret: [u8; 32] = rand::random();
        sqlx::query(
            "INSERT INTO manager_identity (singleton, instance_id, token_secret) VALUES (1, $1, $2) \
             ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(hex::encode(instance))
        .bind(secret.to_vec())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT instance_id, token_secret FROM manager_identity WHERE singleton = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Allocates the next sector number of `miner`: greater than the last one and than
    /// `min`, not in `taken_on_chain`, at most `max`; records the sector in the same
    /// transaction. `None` when the bounds are exhausted. Numbers are never reused: the
    /// counter only grows.
    pub async fn allocate_sector(
        &self,
        miner: u64,
        proof_type: u64,
        min: u64,
        max: Option<u64>,
        taken_on_chain: Box<dyn Fn(u64) -> bool + Send + Sync>,
        now: i64,
    ) -> Result<Option<u64>, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            // The writer thread is SQLite's only writer, so reading the counter and then
            // writing it cannot race.
            return writer
                .run_naming_rows(
                    Durability::Normal,
                    Vec::new(),
                    move |connection, touched| {
                        let last: Option<i64> = connection
                            .prepare_cached(&numbered(COUNTER_READ))?
                            .query_row(rusqlite::params![to_i64(miner)?], |row| row.get(0))
                            .optional()?;
                        let after = last.map(to_u64).transpose()?.unwrap_or(min);
                        let Some(candidate) = next_free_number(after, min, max, &*taken_on_chain)
                        else {
                            return Ok(None);
                        };
                        sqlite_execute(
                            connection,
                            COUNTER_SET,
                            rusqlite::params![to_i64(miner)?, to_i64(candidate)?],
                        )?;
                        sqlite_execute(
                            connection,
                            SECTOR_INSERT,
                            rusqlite::params![
                                to_i64(miner)?,
                                to_i64(candidate)?,
                                to_i64(proof_type)?,
                                now
                            ],
                        )?;
                        sqlite_event(connection, miner, candidate, now, "allocated", "")?;
                        // The new row goes into the row cache, as every written row does: the
                        // worker's next calls (its state report, its ticket) read it.
                        touched.push(Touched::Sector(miner, candidate));
                        Ok(Some(candidate))
                    },
                )
                .await;
        }

        let pool = self.pool.clone();
        {
            let mut transaction = pool.begin().await?;
            // The counter's row is created once, then every allocation starts with an
            // UPDATE of it, which locks the row: concurrent allocations (several
            // managers on one PostgreSQL database) take turns instead of racing.
            sqlx::query(
                "INSERT INTO sector_numbers (miner, last_allocated) VALUES ($1, $2) \
                 ON CONFLICT (miner) DO NOTHING",
            )
            .bind(to_i64(miner)?)
            .bind(to_i64(min)?)
            .execute(&mut *transaction)
            .await?;
            let next: i64 = sqlx::query_scalar(
                "UPDATE sector_numbers SET last_allocated = last_allocated + 1 WHERE miner = $1 \
                 RETURNING last_allocated",
            )
            .bind(to_i64(miner)?)
            .fetch_one(&mut *transaction)
            .await?;
            // The UPDATE counted one up; the number before it is the last allocated.
            let Some(candidate) =
                next_free_number(to_u64(next)?.saturating_sub(1), min, max, &*taken_on_chain)
            else {
                transaction.rollback().await?;
                return Ok(None);
            };
            sqlx::query("UPDATE sector_numbers SET last_allocated = $2 WHERE miner = $1")
                .bind(to_i64(miner)?)
                .bind(to_i64(candidate)?)
                .execute(&mut *transaction)
                .await?;
            sqlx::query(SECTOR_INSERT)
                .bind(to_i64(miner)?)
                .bind(to_i64(candidate)?)
                .bind(to_i64(proof_type)?)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            record_event(&mut transaction, miner, candidate, now, "allocated", "").await?;
            transaction.commit().await?;
            Ok(Some(candidate))
        }
    }

    /// The last number allocated for `miner`.
    pub async fn last_allocated(&self, miner: u64) -> Result<Option<u64>, DatabaseError> {
        let last: Option<i64> = sqlx::query_scalar(COUNTER_READ)
            .bind(to_i64(miner)?)
            .fetch_optional(&self.reader)
            .await?;
        last.map(to_u64).transpose()
    }

    /// The sector's row.
    pub async fn sector(
        &self,
        miner: u64,
        number: u64,
    ) -> Result<Option<SectorRow>, DatabaseError> {
        if let Some(cache) = &self.cache
            && let Some(row) = cache.sector(miner, number)
        {
            return Ok(Some(row));
        }
        let generation = self.cache.as_ref().map(|cache| cache.generation());
        let row = sqlx::query(&format!(
            "SELECT {SECTOR_COLUMNS} FROM sectors WHERE miner = $1 AND number = $2"
        ))
        .bind(to_i64(miner)?)
        .bind(to_i64(number)?)
        .fetch_optional(&self.reader)
        .await?;
        let row = row.map(|row| sector_row(&row)).transpose()?;
        if let (Some(cache), Some(generation), Some(row)) = (&self.cache, generation, &row) {
            cache.offer_sector(generation, row);
        }
        Ok(row)
    }

    /// An outbox message without the sectors it carries, from memory when kept there.
    pub async fn message_without_sectors(
        &self,
        id: i64,
    ) -> Result<Option<Arc<MessageRow>>, DatabaseError> {
        if let Some(cache) = &self.cache
            && let Some(row) = cache.message(id)
        {
            return Ok(Some(row));
        }
        let generation = self.cache.as_ref().map(|cache| cache.generation());
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let row = row.map(|row| message_row(&row).map(Arc::new)).transpose()?;
        if let (Some(cache), Some(generation), Some(row)) = (&self.cache, generation, &row) {
            cache.offer_message(generation, row);
        }
        Ok(row)
    }

    /// A sector and the message carrying its precommit (or, with `proof`, its proof):
    /// what a poll needs. From memory when the rows are kept there; otherwise in one
    /// read.
    pub async fn sector_with_message(
        &self,
        miner: u64,
        number: u64,
        proof: bool,
    ) -> Result<Option<(SectorRow, Option<Arc<MessageRow>>)>, DatabaseError> {
        if self.cache.is_some() {
            let Some(sector) = self.sector(miner, number).await? else {
                return Ok(None);
            };
            let carrying = if proof {
                sector.proof_message
            } else {
                sector.pre_message
            };
            let message = match carrying {
                Some(id) => self.message_without_sectors(id).await?,
                None => None,
            };
            return Ok(Some((sector, message)));
        }
        let message_columns: String = MESSAGE_COLUMNS
            .split(',')
            .map(|column| format!("m.{0} AS m_{0}", column.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sector_columns: String = SECTOR_COLUMNS
            .split(',')
            .map(|column| format!("s.{}", column.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let join = if proof {
            "s.proof_message"
        } else {
            "s.pre_message"
        };
        let row = sqlx::query(&format!(
            "SELECT {sector_columns}, {message_columns} FROM sectors s LEFT JOIN messages m ON m.id = {join} \
             WHERE s.miner = $1 AND s.number = $2"
        ))
        .bind(to_i64(miner)?)
        .bind(to_i64(number)?)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sector = sector_row(&row)?;
        let message = match row.try_get::<Option<i64>, _>("m_id")? {
            None => None,
            Some(_) => Some(Arc::new(message_row_with(&row, "m_")?)),
        };
        Ok(Some((sector, message)))
    }

    /// Sectors in `phase` (all phases for `None`), optionally of one miner, by number.
    pub async fn sectors(
        &self,
        phase: Option<Phase>,
        miner: Option<u64>,
    ) -> Result<Vec<SectorRow>, DatabaseError> {
        let rows = sqlx::query(&format!(
            "SELECT {SECTOR_COLUMNS} FROM sectors WHERE ($1 = '' OR phase = $1) AND ($2 < 0 OR miner = $2) \
             ORDER BY miner, number"
        ))
        .bind(phase.map_or("", Phase::as_str))
        .bind(miner.map(to_i64).transpose()?.unwrap_or(-1))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(sector_row).collect()
    }

    /// Records the ticket handed out.
    pub async fn set_ticket(
        &self,
        miner: u64,
        number: u64,
        ticket: &[u8],
        epoch: i64,
        now: i64,
    ) -> Result<(), DatabaseError> {
        self.set_randomness(Randomness::Ticket, miner, number, ticket, epoch, now)
            .await
    }

    /// Records a precommit submission and queues it for a message, replacing any earlier
    /// one (a hard reset). Only a sector still sealing is changed; false otherwise.
    pub async fn submit_pre_commit(
        &self,
        miner: u64,
        number: u64,
        pre: &PreCommitRecord,
    ) -> Result<bool, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let pre = pre.clone();
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Sector(miner, number)],
                    move |connection| {
                        let changed = sqlite_execute(
                            connection,
                            PRE_COMMIT_UPDATE,
                            rusqlite::params![
                                to_i64(miner)?,
                                to_i64(number)?,
                                pre.comm_r,
                                pre.comm_d,
                                pre.ticket,
                                pre.ticket_epoch,
                                pre.submitted_at
                            ],
                        )?;
                        if changed == 1 {
                            sqlite_event(
                                connection,
                                miner,
                                number,
                                pre.submitted_at,
                                "pre_commit_submitted",
                                "",
                            )?;
                        }
                        Ok(changed == 1)
                    },
                )
                .await;
        }

        let pool = self.pool.clone();
        let pre = pre.clone();
        {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(PRE_COMMIT_UPDATE)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .bind(pre.comm_r.clone())
                .bind(pre.comm_d.clone())
                .bind(pre.ticket.clone())
                .bind(pre.ticket_epoch)
                .bind(pre.submitted_at)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            if changed == 1 {
                record_event(
                    &mut transaction,
                    miner,
                    number,
                    pre.submitted_at,
                    "pre_commit_submitted",
                    "",
                )
                .await?;
            }
            transaction.commit().await?;
            Ok(changed == 1)
        }
    }

    /// Records the seed handed out.
    pub async fn set_seed(
        &self,
        miner: u64,
        number: u64,
        seed: &[u8],
        epoch: i64,
        now: i64,
    ) -> Result<(), DatabaseError> {
        self.set_randomness(Randomness::Seed, miner, number, seed, epoch, now)
            .await
    }

    /// Records a ticket or a seed and its epoch, with an event, in one transaction.
    async fn set_randomness(
        &self,
        kind: Randomness,
        miner: u64,
        number: u64,
        bytes: &[u8],
        epoch: i64,
        now: i64,
    ) -> Result<(), DatabaseError> {
        let pool = self.pool.clone();
        let bytes = bytes.to_vec();
        let (update, event) = match kind {
            Randomness::Ticket => (
                "UPDATE sectors SET ticket = $3, ticket_epoch = $4, updated_at = $5 WHERE miner = $1 AND number = $2",
                "ticket",
            ),
            Randomness::Seed => (
                "UPDATE sectors SET seed = $3, seed_epoch = $4, updated_at = $5 WHERE miner = $1 AND number = $2",
                "seed",
            ),
        };
        if let Some(writer) = &self.sqlite_writer {
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Sector(miner, number)],
                    move |connection| {
                        sqlite_execute(
                            connection,
                            update,
                            rusqlite::params![to_i64(miner)?, to_i64(number)?, bytes, epoch, now],
                        )?;
                        sqlite_event(
                            connection,
                            miner,
                            number,
                            now,
                            event,
                            &format!("epoch {epoch}"),
                        )?;
                        Ok(())
                    },
                )
                .await;
        }

        {
            let mut transaction = pool.begin().await?;
            sqlx::query(update)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .bind(bytes)
                .bind(epoch)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            record_event(
                &mut transaction,
                miner,
                number,
                now,
                event,
                &format!("epoch {epoch}"),
            )
            .await?;
            transaction.commit().await?;
            Ok(())
        }
    }

    /// Records a proof submission and queues it for a message, replacing any earlier one.
    pub async fn submit_proof(
        &self,
        miner: u64,
        number: u64,
        proof: &[u8],
        now: i64,
    ) -> Result<bool, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let proof = proof.to_vec();
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Sector(miner, number)],
                    move |connection| {
                        let changed = sqlite_execute(
                            connection,
                            PROOF_UPDATE,
                            rusqlite::params![to_i64(miner)?, to_i64(number)?, proof, now],
                        )?;
                        if changed == 1 {
                            sqlite_event(connection, miner, number, now, "proof_submitted", "")?;
                        }
                        Ok(changed == 1)
                    },
                )
                .await;
        }

        let pool = self.pool.clone();
        let proof = proof.to_vec();
        {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(PROOF_UPDATE)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .bind(proof.to_vec())
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            if changed == 1 {
                record_event(&mut transaction, miner, number, now, "proof_submitted", "").await?;
            }
            transaction.commit().await?;
            Ok(changed == 1)
        }
    }

    /// Records where the sector's files were persisted.
    pub async fn set_persisted(
        &self,
        miner: u64,
        number: u64,
        instance: &str,
        now: i64,
    ) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let instance = instance.to_owned();
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Sector(miner, number)],
                    move |connection| {
                        sqlite_execute(
                            connection,
                            PERSISTED_UPDATE,
                            rusqlite::params![to_i64(miner)?, to_i64(number)?, instance, now],
                        )?;
                        sqlite_event(connection, miner, number, now, "persisted", &instance)?;
                        Ok(())
                    },
                )
                .await;
        }

        let pool = self.pool.clone();
        let instance = instance.to_owned();
        {
            let mut transaction = pool.begin().await?;
            sqlx::query(PERSISTED_UPDATE)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .bind(instance.clone())
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            record_event(&mut transaction, miner, number, now, "persisted", &instance).await?;
            transaction.commit().await?;
            Ok(())
        }
    }

    /// Records workers' state reports, many in one transaction: (miner, number,
    /// worker instance, report JSON, time). Only sealing sectors are changed. The events
    /// the reports leave in the sectors' histories are written in the same transaction.
    pub async fn report_states(
        &self,
        reports: &[(u64, u64, String, String, i64)],
        events: &[SectorEventRow],
    ) -> Result<(), DatabaseError> {
        if reports.is_empty() && events.is_empty() {
            return Ok(());
        }
        if let Some(writer) = &self.sqlite_writer {
            let reports = reports.to_vec();
            let events = events.to_vec();
            let touched = reports
                .iter()
                .map(|(miner, number, ..)| Touched::Sector(*miner, *number))
                .collect();
            return writer
                .run(Durability::Normal, touched, move |connection| {
                    for (miner, number, instance, report, now) in reports {
                        sqlite_execute(
                            connection,
                            REPORT_UPDATE,
                            rusqlite::params![
                                to_i64(miner)?,
                                to_i64(number)?,
                                report,
                                instance,
                                now
                            ],
                        )?;
                    }
                    for event in events {
                        sqlite_event(
                            connection,
                            event.miner,
                            event.number,
                            event.at,
                            &event.kind,
                            &event.detail,
                        )?;
                    }
                    Ok(())
                })
                .await;
        }

        let mut transaction = self.pool.begin().await?;
        for (miner, number, instance, report, now) in reports {
            sqlx::query(REPORT_UPDATE)
                .bind(to_i64(*miner)?)
                .bind(to_i64(*number)?)
                .bind(report)
                .bind(instance)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        for event in events {
            record_event(
                &mut transaction,
                event.miner,
                event.number,
                event.at,
                &event.kind,
                &event.detail,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Moves a sealing sector to `phase` (finalized or aborted), releasing its reservation
    /// and withdrawing messages it still waits for, in one transaction. Returns false
    /// when the sector was not sealing (already moved: the call is a repeat).
    pub async fn end_sector(
        &self,
        miner: u64,
        number: u64,
        phase: Phase,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let reason = reason.map(str::to_owned);
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Sector(miner, number)],
                    move |connection| {
                        let changed = sqlite_execute(
                            connection,
                            END_UPDATE,
                            rusqlite::params![
                                to_i64(miner)?,
                                to_i64(number)?,
                                phase.as_str(),
                                reason,
                                now
                            ],
                        )?;
                        if changed == 1 {
                            sqlite_execute(
                                connection,
                                RESERVATION_DELETE,
                                rusqlite::params![to_i64(miner)?, to_i64(number)?],
                            )?;
                            sqlite_event(
                                connection,
                                miner,
                                number,
                                now,
                                phase.as_str(),
                                reason.as_deref().unwrap_or(""),
                            )?;
                        }
                        Ok(changed == 1)
                    },
                )
                .await;
        }

        let pool = self.pool.clone();
        let reason = reason.map(str::to_owned);
        {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(END_UPDATE)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .bind(phase.as_str())
                .bind(reason.clone())
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            if changed == 1 {
                sqlx::query(RESERVATION_DELETE)
                    .bind(to_i64(miner)?)
                    .bind(to_i64(number)?)
                    .execute(&mut *transaction)
                    .await?;
                record_event(
                    &mut transaction,
                    miner,
                    number,
                    now,
                    phase.as_str(),
                    reason.as_deref().unwrap_or(""),
                )
                .await?;
            }
            transaction.commit().await?;
            Ok(changed == 1)
        }
    }

    /// Brings a finalized or aborted sector back to sealing (an operator's restore).
    pub async fn restore_sector(
        &self,
        miner: u64,
        number: u64,
        now: i64,
    ) -> Result<bool, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Sector(miner, number)],
                    move |connection| {
                        let changed = sqlite_execute(
                            connection,
                            RESTORE_UPDATE,
                            rusqlite::params![to_i64(miner)?, to_i64(number)?, now],
                        )?;
                        if changed == 1 {
                            sqlite_event(connection, miner, number, now, "restored", "")?;
                        }
                        Ok(changed == 1)
                    },
                )
                .await;
        }

        let pool = self.pool.clone();
        {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(RESTORE_UPDATE)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            if changed == 1 {
                record_event(&mut transaction, miner, number, now, "restored", "").await?;
            }
            transaction.commit().await?;
            Ok(changed == 1)
        }
    }

    /// The events recorded for a sector, oldest first: (time, kind, detail).
    pub async fn sector_events(
        &self,
        miner: u64,
        number: u64,
    ) -> Result<Vec<(i64, String, String)>, DatabaseError> {
        let rows = sqlx::query("SELECT at, kind, detail FROM sector_events WHERE miner = $1 AND number = $2 ORDER BY id")
            .bind(to_i64(miner)?)
            .bind(to_i64(number)?)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect()
    }

    /// Sealing sectors of `miner` whose `purpose` waits for a message, by number.
    pub async fn waiting_for_message(
        &self,
        miner: u64,
        purpose: Purpose,
    ) -> Result<Vec<SectorRow>, DatabaseError> {
        let condition = match purpose {
            Purpose::PreCommit => "pre_need_send = 1 AND pre_message IS NULL",
            Purpose::ProveCommit => "proof_need_send = 1 AND proof_message IS NULL",
        };
        let rows = sqlx::query(&format!(
            "SELECT {SECTOR_COLUMNS} FROM sectors WHERE miner = $1 AND phase = 'sealing' AND {condition} ORDER BY number"
        ))
        .bind(to_i64(miner)?)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(sector_row).collect()
    }

    /// Records an outbox message for `sectors` and takes them off the waiting list, in one
    /// transaction, but only if every one of them still waits (none was aborted or
    /// resubmitted since they were read); returns the message id, or `None` when the
    /// sectors changed and the batch must be formed again.
    #[allow(clippy::too_many_arguments, reason = "one row's columns")]
    pub async fn create_message(
        &self,
        miner: u64,
        purpose: Purpose,
        msg_uuid: &str,
        from_address: &str,
        method: u64,
        params: &[u8],
        value: &str,
        max_fee: &str,
        sectors: &[u64],
        now: i64,
    ) -> Result<Option<i64>, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let msg_uuid = msg_uuid.to_owned();
            let from_address = from_address.to_owned();
            let params = params.to_vec();
            let value = value.to_owned();
            let max_fee = max_fee.to_owned();
            let sectors = sectors.to_vec();
            let touched = sectors
                .iter()
                .map(|number| Touched::Sector(miner, *number))
                .collect();
            // The outbox row must be on disk before the message can be pushed: this
            // write is answered only after the log holding its commit (and every commit
            // before it) was synced, and the commit manager pushes after the answer.
            return writer
                .run(Durability::Synced, touched, move |connection| {
                    let id: i64 = connection
                        .prepare_cached(&numbered(MESSAGE_INSERT))?
                        .query_row(
                            rusqlite::params![
                                to_i64(miner)?,
                                purpose.as_str(),
                                msg_uuid,
                                from_address,
                                to_i64(method)?,
                                params,
                                value,
                                max_fee,
                                now
                            ],
                            |row| row.get(0),
                        )?;
                    for number in &sectors {
                        let changed = sqlite_execute(
                            connection,
                            carried_update(purpose),
                            rusqlite::params![to_i64(miner)?, to_i64(*number)?, id, now],
                        )?;
                        if changed != 1 {
                            // A sector changed since the batch was formed: nothing of
                            // this write may stay.
                            return Err(DatabaseError::Stale);
                        }
                        sqlite_execute(
                            connection,
                            MESSAGE_SECTOR_INSERT,
                            rusqlite::params![id, to_i64(miner)?, to_i64(*number)?],
                        )?;
                        sqlite_event(
                            connection,
                            miner,
                            *number,
                            now,
                            "message_created",
                            &format!("{} #{id}", purpose.as_str()),
                        )?;
                    }
                    Ok(Some(id))
                })
                .await
                .or_else(|error| match error {
                    DatabaseError::Stale => Ok(None),
                    other => Err(other),
                });
        }

        // PostgreSQL: the commit is durable when it returns.
        let mut connection = self.pool.acquire().await?;
        create_message_in(
            &mut connection,
            miner,
            purpose,
            msg_uuid,
            from_address,
            method,
            params,
            value,
            max_fee,
            sectors,
            now,
        )
        .await
    }

    /// One outbox message.
    pub async fn message(&self, id: i64) -> Result<Option<MessageRow>, DatabaseError> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let mut message = message_row(&row)?;
                message.sectors = self.message_sectors(id).await?;
                Ok(Some(message))
            }
        }
    }

    /// The sectors message `id` carries.
    pub async fn message_sectors(&self, id: i64) -> Result<Vec<u64>, DatabaseError> {
        let numbers: Vec<i64> = sqlx::query_scalar(
            "SELECT number FROM message_sectors WHERE message_id = $1 ORDER BY number",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        numbers.into_iter().map(to_u64).collect()
    }

    /// Outbox messages in `states`, oldest first, without the sectors they carry (the
    /// commit manager reads these on every pass and needs only the messages).
    pub async fn messages_in(
        &self,
        states: &[MessageState],
    ) -> Result<Vec<MessageRow>, DatabaseError> {
        let mut found = Vec::new();
        for state in states {
            let rows = sqlx::query(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE state = $1 ORDER BY id"
            ))
            .bind(state.as_str())
            .fetch_all(&self.reader)
            .await?;
            for row in &rows {
                found.push(message_row(row)?);
            }
        }
        found.sort_by_key(|message| message.id);
        Ok(found)
    }

    /// Every outbox message carrying sector `number` of `miner`, oldest first.
    pub async fn messages_of_sector(
        &self,
        miner: u64,
        number: u64,
    ) -> Result<Vec<MessageRow>, DatabaseError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT message_id FROM message_sectors WHERE miner = $1 AND number = $2 ORDER BY message_id")
            .bind(to_i64(miner)?)
            .bind(to_i64(number)?)
            .fetch_all(&self.reader)
            .await?;
        let mut messages = Vec::new();
        for id in ids {
            if let Some(message) = self.message(id).await? {
                messages.push(message);
            }
        }
        Ok(messages)
    }

    /// Records that the node accepted the message.
    pub async fn message_pushed(
        &self,
        id: i64,
        signed_cid: &str,
        signed_message: &str,
        now: i64,
    ) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let signed_cid = signed_cid.to_owned();
            let signed_message = signed_message.to_owned();
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Message(id)],
                    move |connection| {
                        sqlite_execute(
                            connection,
                            MESSAGE_PUSHED,
                            rusqlite::params![id, signed_cid, signed_message, now],
                        )?;
                        Ok(())
                    },
                )
                .await;
        }
        let pool = self.pool.clone();
        let signed_cid = signed_cid.to_owned();
        let signed_message = signed_message.to_owned();
        {
            sqlx::query(MESSAGE_PUSHED)
                .bind(id)
                .bind(signed_cid)
                .bind(signed_message)
                .bind(now)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// Records a failed push; `give_up` marks the message failed for good.
    pub async fn message_push_failed(
        &self,
        id: i64,
        error: &str,
        give_up: bool,
        now: i64,
    ) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let error = error.to_owned();
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Message(id)],
                    move |connection| {
                        sqlite_execute(
                            connection,
                            MESSAGE_PUSH_FAILED,
                            rusqlite::params![id, error, i64::from(give_up), now],
                        )?;
                        Ok(())
                    },
                )
                .await;
        }
        let pool = self.pool.clone();
        let error = error.to_owned();
        {
            sqlx::query(MESSAGE_PUSH_FAILED)
                .bind(id)
                .bind(error)
                .bind(i64::from(give_up))
                .bind(now)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// Records where the chain executed the message (or, with `None`, that a
    /// reorganisation took its execution away).
    pub async fn message_execution(
        &self,
        id: i64,
        execution: Option<(i64, &str, i64, &str)>,
        now: i64,
    ) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let execution = execution.map(|(height, tipset, exit_code, receipt)| {
                (height, tipset.to_owned(), exit_code, receipt.to_owned())
            });
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Message(id)],
                    move |connection| {
                        match execution {
                            Some((height, tipset, exit_code, receipt)) => sqlite_execute(
                                connection,
                                MESSAGE_EXECUTED,
                                rusqlite::params![id, height, tipset, exit_code, receipt, now],
                            )?,
                            None => sqlite_execute(
                                connection,
                                MESSAGE_REVERTED,
                                rusqlite::params![id, now],
                            )?,
                        };
                        Ok(())
                    },
                )
                .await;
        }
        let pool = self.pool.clone();
        let execution = execution.map(|(height, tipset, exit_code, receipt)| {
            (height, tipset.to_owned(), exit_code, receipt.to_owned())
        });
        {
            match execution {
                Some((height, tipset, exit_code, receipt)) => {
                    sqlx::query(MESSAGE_EXECUTED)
                        .bind(id)
                        .bind(height)
                        .bind(tipset)
                        .bind(exit_code)
                        .bind(receipt)
                        .bind(now)
                        .execute(&pool)
                        .await?;
                }
                None => {
                    sqlx::query(MESSAGE_REVERTED)
                        .bind(id)
                        .bind(now)
                        .execute(&pool)
                        .await?;
                }
            }
            Ok(())
        }
    }

    /// Marks an executed message final: buried under the chain's finality.
    pub async fn message_final(&self, id: i64, now: i64) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Message(id)],
                    move |connection| {
                        sqlite_execute(connection, MESSAGE_FINAL, rusqlite::params![id, now])?;
                        Ok(())
                    },
                )
                .await;
        }
        let pool = self.pool.clone();
        {
            sqlx::query(MESSAGE_FINAL)
                .bind(id)
                .bind(now)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// Records the height at which the sender's nonce was first seen past the message.
    pub async fn message_nonce_passed(
        &self,
        id: i64,
        height: i64,
        now: i64,
    ) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Message(id)],
                    move |connection| {
                        sqlite_execute(
                            connection,
                            MESSAGE_NONCE_PASSED,
                            rusqlite::params![id, height, now],
                        )?;
                        Ok(())
                    },
                )
                .await;
        }
        let pool = self.pool.clone();
        {
            sqlx::query(MESSAGE_NONCE_PASSED)
                .bind(id)
                .bind(height)
                .bind(now)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// Marks a pushed message failed: the chain will never execute it.
    pub async fn message_dead(&self, id: i64, error: &str, now: i64) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let error = error.to_owned();
            return writer
                .run(
                    Durability::Normal,
                    vec![Touched::Message(id)],
                    move |connection| {
                        sqlite_execute(
                            connection,
                            MESSAGE_DEAD,
                            rusqlite::params![id, error, now],
                        )?;
                        Ok(())
                    },
                )
                .await;
        }
        let pool = self.pool.clone();
        let error = error.to_owned();
        {
            sqlx::query(MESSAGE_DEAD)
                .bind(id)
                .bind(error)
                .bind(now)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// Every reservation.
    pub async fn reservations(&self) -> Result<Vec<ReservationRow>, DatabaseError> {
        let rows = sqlx::query("SELECT miner, number, store, bytes, reserved_by, reserved_at FROM reservations ORDER BY miner, number")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReservationRow {
                    miner: to_u64(row.try_get(0)?)?,
                    number: to_u64(row.try_get(1)?)?,
                    store: row.try_get(2)?,
                    bytes: to_u64(row.try_get(3)?)?,
                    reserved_by: row.try_get(4)?,
                    reserved_at: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Records (or replaces) a sector's reservation.
    pub async fn put_reservation(&self, reservation: &ReservationRow) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let reservation = reservation.clone();
            return writer
                .run(Durability::Normal, Vec::new(), move |connection| {
                    sqlite_execute(
                        connection,
                        RESERVATION_PUT,
                        rusqlite::params![
                            to_i64(reservation.miner)?,
                            to_i64(reservation.number)?,
                            reservation.store,
                            to_i64(reservation.bytes)?,
                            reservation.reserved_by,
                            reservation.reserved_at
                        ],
                    )?;
                    Ok(())
                })
                .await;
        }
        let pool = self.pool.clone();
        let reservation = reservation.clone();
        {
            sqlx::query(RESERVATION_PUT)
                .bind(to_i64(reservation.miner)?)
                .bind(to_i64(reservation.number)?)
                .bind(&reservation.store)
                .bind(to_i64(reservation.bytes)?)
                .bind(&reservation.reserved_by)
                .bind(reservation.reserved_at)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// How many sectors each (miner, phase) has.
    pub async fn count_sectors(&self) -> Result<Vec<(u64, String, i64)>, DatabaseError> {
        let rows = sqlx::query("SELECT miner, phase, COUNT(*) FROM sectors GROUP BY miner, phase")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    to_u64(row.try_get::<i64, _>(0)?)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<i64, _>(2)?,
                ))
            })
            .collect()
    }

    /// How many outbox messages each state has.
    pub async fn count_messages(&self) -> Result<Vec<(String, i64)>, DatabaseError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM messages GROUP BY state")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Keeps the trace context (`traceparent`) of a sector, made at its allocation.
    pub async fn put_sector_trace(
        &self,
        miner: u64,
        number: u64,
        traceparent: &str,
    ) -> Result<(), DatabaseError> {
        const PUT: &str = "INSERT INTO sector_traces (miner, number, traceparent) VALUES ($1, $2, $3) \
             ON CONFLICT (miner, number) DO UPDATE SET traceparent = excluded.traceparent";
        if let Some(writer) = &self.sqlite_writer {
            let traceparent = traceparent.to_owned();
            let (miner, number) = (to_i64(miner)?, to_i64(number)?);
            return writer
                .run(Durability::Normal, Vec::new(), move |connection| {
                    sqlite_execute(
                        connection,
                        PUT,
                        rusqlite::params![miner, number, traceparent],
                    )?;
                    Ok(())
                })
                .await;
        }
        sqlx::query(PUT)
            .bind(to_i64(miner)?)
            .bind(to_i64(number)?)
            .bind(traceparent)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The trace context of a sector, if it has one (sectors allocated before traces
    /// were kept have none).
    pub async fn sector_trace(
        &self,
        miner: u64,
        number: u64,
    ) -> Result<Option<String>, DatabaseError> {
        let row =
            sqlx::query("SELECT traceparent FROM sector_traces WHERE miner = $1 AND number = $2")
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .fetch_optional(&self.reader)
                .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<String, _>(0)?),
            None => None,
        })
    }

    /// Drops a sector's reservation; false when it had none.
    pub async fn release_reservation(
        &self,
        miner: u64,
        number: u64,
    ) -> Result<bool, DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            return writer
                .run(Durability::Normal, Vec::new(), move |connection| {
                    let changed = sqlite_execute(
                        connection,
                        RESERVATION_DELETE,
                        rusqlite::params![to_i64(miner)?, to_i64(number)?],
                    )?;
                    Ok(changed == 1)
                })
                .await;
        }
        let pool = self.pool.clone();
        {
            let changed = sqlx::query(RESERVATION_DELETE)
                .bind(to_i64(miner)?)
                .bind(to_i64(number)?)
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(changed == 1)
        }
    }

    /// Records a worker's ping.
    pub async fn worker_ping(&self, worker: &WorkerRow) -> Result<(), DatabaseError> {
        if let Some(writer) = &self.sqlite_writer {
            let worker = worker.clone();
            return writer
                .run(Durability::Normal, Vec::new(), move |connection| {
                    sqlite_execute(
                        connection,
                        WORKER_PING_UPSERT,
                        rusqlite::params![
                            worker.name,
                            worker.dest,
                            worker.version,
                            worker.summary,
                            worker.last_ping
                        ],
                    )?;
                    Ok(())
                })
                .await;
        }
        let pool = self.pool.clone();
        let worker = worker.clone();
        {
            sqlx::query(WORKER_PING_UPSERT)
                .bind(&worker.name)
                .bind(&worker.dest)
                .bind(&worker.version)
                .bind(&worker.summary)
                .bind(worker.last_ping)
                .execute(&pool)
                .await?;
            Ok(())
        }
    }

    /// Every worker that ever pinged, by name.
    pub async fn workers(&self) -> Result<Vec<WorkerRow>, DatabaseError> {
        let rows = sqlx::query(
            "SELECT name, dest, version, summary, last_ping FROM workers ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WorkerRow {
                    name: row.try_get(0)?,
                    dest: row.try_get(1)?,
                    version: row.try_get(2)?,
                    summary: row.try_get(3)?,
                    last_ping: row.try_get(4)?,
                })
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments, reason = "one row's columns")]
async fn create_message_in(
    connection: &mut sqlx::pool::PoolConnection<Any>,
    miner: u64,
    purpose: Purpose,
    msg_uuid: &str,
    from_address: &str,
    method: u64,
    params: &[u8],
    value: &str,
    max_fee: &str,
    sectors: &[u64],
    now: i64,
) -> Result<Option<i64>, DatabaseError> {
    let mut transaction = sqlx::Connection::begin(&mut **connection).await?;
    let id: i64 = sqlx::query_scalar(MESSAGE_INSERT)
        .bind(to_i64(miner)?)
        .bind(purpose.as_str())
        .bind(msg_uuid)
        .bind(from_address)
        .bind(to_i64(method)?)
        .bind(params.to_vec())
        .bind(value)
        .bind(max_fee)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
    let update = carried_update(purpose);
    for number in sectors {
        let changed = sqlx::query(update)
            .bind(to_i64(miner)?)
            .bind(to_i64(*number)?)
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if changed != 1 {
            transaction.rollback().await?;
            return Ok(None);
        }
        sqlx::query(MESSAGE_SECTOR_INSERT)
            .bind(id)
            .bind(to_i64(miner)?)
            .bind(to_i64(*number)?)
            .execute(&mut *transaction)
            .await?;
        record_event(
            &mut transaction,
            miner,
            *number,
            now,
            "message_created",
            &format!("{} #{id}", purpose.as_str()),
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(Some(id))
}

/// sqlx's `$n` placeholders as SQLite's own `?n` (our statements use `$` for nothing
/// else).
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Runs one statement on the SQLite writer's connection (prepared once, then reused);
/// the number of rows it changed.
fn sqlite_execute(
    connection: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, DatabaseError> {
    Ok(connection.prepare_cached(&numbered(sql))?.execute(params)?)
}

/// Records an event of a sector's history on the SQLite writer's connection.
fn sqlite_event(
    connection: &rusqlite::Connection,
    miner: u64,
    number: u64,
    now: i64,
    kind: &str,
    detail: &str,
) -> Result<(), DatabaseError> {
    sqlite_execute(
        connection,
        EVENT_INSERT,
        rusqlite::params![to_i64(miner)?, to_i64(number)?, now, kind, detail],
    )?;
    Ok(())
}

/// The number to allocate after `last` (the counter; `min` before the first
/// allocation): above both, skipping numbers the chain already knows, at most `max`.
/// A long run of taken numbers means the counter is far behind and an operator should
/// raise `MinNumber`, so the search stops after 10,000 of them.
fn next_free_number(
    last: u64,
    min: u64,
    max: Option<u64>,
    taken_on_chain: &dyn Fn(u64) -> bool,
) -> Option<u64> {
    let mut candidate = last.saturating_add(1).max(min.saturating_add(1));
    let mut skipped = 0;
    while taken_on_chain(candidate) && skipped < 10_000 {
        candidate += 1;
        skipped += 1;
    }
    if max.is_some_and(|max| candidate > max) || taken_on_chain(candidate) {
        None
    } else {
        Some(candidate)
    }
}

async fn record_event(
    transaction: &mut Transaction<'_, Any>,
    miner: u64,
    number: u64,
    now: i64,
    kind: &str,
    detail: &str,
) -> Result<(), DatabaseError> {
    sqlx::query(EVENT_INSERT)
        .bind(to_i64(miner)?)
        .bind(to_i64(number)?)
        .bind(now)
        .bind(kind)
        .bind(detail)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

fn pair(bytes: Option<Vec<u8>>, epoch: Option<i64>) -> Option<(Vec<u8>, i64)> {
    bytes.zip(epoch)
}

/// A row read by either driver: sqlx's (every read) or rusqlite's (the SQLite writer
/// reading back the rows it just wrote), so both map columns to rows the same way.
pub(crate) trait Columns {
    /// The value of the column `name`.
    fn column<T>(&self, name: &str) -> Result<T, DatabaseError>
    where
        T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + rusqlite::types::FromSql;
}

impl Columns for AnyRow {
    fn column<T>(&self, name: &str) -> Result<T, DatabaseError>
    where
        T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + rusqlite::types::FromSql,
    {
        Ok(self.try_get(name)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn column<T>(&self, name: &str) -> Result<T, DatabaseError>
    where
        T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + rusqlite::types::FromSql,
    {
        Ok(self.get(name)?)
    }
}

/// Reads back, on the SQLite writer's connection, the rows a group of writes touched,
/// just after it committed: what the row cache then holds. A row that no longer exists
/// is left out (the cache forgets it).
pub(crate) fn rows_after_commit(
    connection: &rusqlite::Connection,
    touched: &[Touched],
) -> Result<Vec<crate::row_cache::FreshRow>, DatabaseError> {
    use crate::row_cache::FreshRow;
    let mut sectors = connection.prepare_cached(&format!(
        "SELECT {SECTOR_COLUMNS} FROM sectors WHERE miner = ?1 AND number = ?2"
    ))?;
    let mut messages = connection.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
    ))?;
    let mut fresh = Vec::with_capacity(touched.len());
    for touched in touched {
        match *touched {
            Touched::Sector(miner, number) => {
                let mut rows = sectors.query((to_i64(miner)?, to_i64(number)?))?;
                if let Some(row) = rows.next()? {
                    fresh.push(FreshRow::Sector(sector_row(row)?));
                }
            }
            Touched::Message(id) => {
                let mut rows = messages.query((id,))?;
                if let Some(row) = rows.next()? {
                    fresh.push(FreshRow::Message(message_row(row)?));
                }
            }
        }
    }
    Ok(fresh)
}

fn sector_row(row: &impl Columns) -> Result<SectorRow, DatabaseError> {
    let pre = match (
        row.column::<Option<Vec<u8>>>("pre_comm_r")?,
        row.column::<Option<Vec<u8>>>("pre_comm_d")?,
        row.column::<Option<Vec<u8>>>("pre_ticket")?,
        row.column::<Option<i64>>("pre_ticket_epoch")?,
        row.column::<Option<i64>>("pre_submitted_at")?,
    ) {
        (Some(comm_r), Some(comm_d), Some(ticket), Some(ticket_epoch), Some(submitted_at)) => {
            Some(PreCommitRecord {
                comm_r,
                comm_d,
                ticket,
                ticket_epoch,
                submitted_at,
            })
        }
        _ => None,
    };
    Ok(SectorRow {
        miner: to_u64(row.column("miner")?)?,
        number: to_u64(row.column("number")?)?,
        proof_type: to_u64(row.column("proof_type")?)?,
        phase: Phase::parse(&row.column::<String>("phase")?)?,
        abort_reason: row.column("abort_reason")?,
        ticket: pair(row.column("ticket")?, row.column("ticket_epoch")?),
        pre,
        pre_need_send: row.column::<i64>("pre_need_send")? != 0,
        pre_message: row.column("pre_message")?,
        seed: pair(row.column("seed")?, row.column("seed_epoch")?),
        proof: row.column("proof")?,
        proof_submitted_at: row.column("proof_submitted_at")?,
        proof_need_send: row.column::<i64>("proof_need_send")? != 0,
        proof_message: row.column("proof_message")?,
        persisted_instance: row.column("persisted_instance")?,
        latest_state: row.column("latest_state")?,
        worker_instance: row.column("worker_instance")?,
        created_at: row.column("created_at")?,
        updated_at: row.column("updated_at")?,
    })
}

fn message_row(row: &impl Columns) -> Result<MessageRow, DatabaseError> {
    message_row_with(row, "")
}

/// A message row from columns named with `prefix` (a join's aliases). The sectors it
/// carries are not read.
fn message_row_with(row: &impl Columns, prefix: &str) -> Result<MessageRow, DatabaseError> {
    let column = |name: &str| format!("{prefix}{name}");
    Ok(MessageRow {
        id: row.column(column("id").as_str())?,
        miner: to_u64(row.column(column("miner").as_str())?)?,
        purpose: Purpose::parse(&row.column::<String>(column("purpose").as_str())?)?,
        msg_uuid: row.column(column("msg_uuid").as_str())?,
        from_address: row.column(column("from_address").as_str())?,
        method: to_u64(row.column(column("method").as_str())?)?,
        params: row.column(column("params").as_str())?,
        value: row.column(column("value").as_str())?,
        max_fee: row.column(column("max_fee").as_str())?,
        state: MessageState::parse(&row.column::<String>(column("state").as_str())?)?,
        signed_cid: row.column(column("signed_cid").as_str())?,
        signed_message: row.column(column("signed_message").as_str())?,
        push_attempts: row.column(column("push_attempts").as_str())?,
        nonce_passed_height: row.column(column("nonce_passed_height").as_str())?,
        last_error: row.column(column("last_error").as_str())?,
        executed_height: row.column(column("executed_height").as_str())?,
        executed_tipset: row.column(column("executed_tipset").as_str())?,
        exit_code: row.column(column("exit_code").as_str())?,
        receipt: row.column(column("receipt").as_str())?,
        created_at: row.column(column("created_at").as_str())?,
        sectors: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An allocation inserts a row under a number it chooses as it runs; the row is in
    /// memory when the allocation is answered, so the worker's next calls (its state
    /// report, its ticket) do not read the database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_allocated_sector_is_in_the_row_cache_at_once() {
        let home = tempfile::tempdir().expect("a home");
        let database = Database::open("sqlite://manager.db", home.path(), 2)
            .await
            .expect("open the database");
        let number = database
            .allocate_sector(1000, 5, 0, None, Box::new(|_| false), 1)
            .await
            .expect("allocate")
            .expect("a number");
        let cache = database.cache.as_ref().expect("SQLite keeps a row cache");
        let cached = cache.sector(1000, number).expect("the new row is kept");
        assert_eq!((cached.phase, cached.proof_type), (Phase::Sealing, 5));
    }
}
