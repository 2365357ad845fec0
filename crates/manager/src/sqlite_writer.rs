//! The one thread that writes the SQLite file, committing whatever writes are waiting
//! as one transaction (group commit).
//!
//! Why not sqlx for these writes: sqlx's SQLite driver sends every statement to the
//! connection's thread and waits for the answer. Measured on the development machine
//! with the manager's own writes (a sector update and its event): 0.5 ms per write
//! through sqlx, 0.13 ms here (of which 40 µs is SQLite); 400 writes arriving together
//! took 215 ms through sqlx and take 3.7 ms here, as one transaction. Workers reach each
//! step together (a batch of precommits lands in one block), so writes do come in
//! bursts.
//! Reads and migrations stay on sqlx.
//!
//! The writer thread never waits for the disk. Checkpoints (copying the write-ahead log
//! back into the database file, with their fsyncs) are not left to the commit that
//! happens to cross SQLite's threshold: a second thread with its own connection runs
//! them (passive ones, which never block the writer). And a write that must be on disk
//! before it is answered is not committed with `synchronous = FULL`, which would hold
//! the writer, and every write queued behind it, for the fsync (3 ms at the median and
//! up to 20 ms under the load benchmark): every group commits with `NORMAL`, and a third
//! thread syncs the log file and then answers the durable writes of every group
//! committed before the sync. A commit in the log is on disk once the log file is
//! synced; SQLite overwrites the log only after a checkpoint has copied all of it into
//! the database file and synced that file, so a sync that comes late still covers it.
//!
//! The contract of [`SqliteWriter::run`]: the closure runs inside a savepoint of the
//! group's transaction, so its error rolls back only its own statements; its result is
//! answered after the group's commit (an error if the commit fails), and for a
//! [`Durability::Synced`] write only once that commit is on disk; the rows it names as
//! touched (before it runs, or while it runs, for rows it creates) are read back on this
//! thread's connection after the commit and put in the row cache (or forgotten, when they
//! cannot be read) before any answer. Other connections may read a synced write's rows
//! before it is answered (its commit is in the log but maybe not yet on disk): whatever
//! must wait for the disk, such as pushing an outbox message, waits for the answer.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use crate::db::DatabaseError;
use crate::row_cache::{RowCache, Touched};

/// How many waiting writes one transaction takes at most.
const MAXIMUM_GROUP: usize = 512;

/// How often the checkpoint thread copies the write-ahead log back. Under the load
/// benchmark (about 2,100 pages written a second) SQLite's own threshold, 1,000 pages,
/// would be crossed twice as often; an idle log is not synced at all.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a write must be on disk before it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous = NORMAL`: never corrupt; a power cut may lose the last commits,
    /// which the workers' retries recreate.
    Normal,
    /// Answered only after the log file holding its commit was synced: the outbox's
    /// rows, which must exist on disk before a message is pushed.
    Synced,
}

/// Makes everything written to the write-ahead log so far durable: the log file's
/// `fdatasync` in production, something a test controls in tests.
type SyncLog = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// Committed durable writes handed from the writer to the log's syncer.
type AwaitingSync = Vec<Box<dyn Write>>;

/// A write waiting for its group: run once inside the group's transaction, then
/// answered with the group's outcome.
trait Write: Send {
    /// Runs the write's statements, naming in `touched` the rows it found it changed (on
    /// top of those named before it ran); true when they succeeded.
    fn run(&mut self, connection: &rusqlite::Connection, touched: &mut Vec<Touched>) -> bool;
    /// Answers the caller: the write's own outcome if the group committed, the commit's
    /// (or the transaction's) error otherwise.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

struct TypedWrite<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, DatabaseError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, DatabaseError>>,
}

impl<T, F> Write for TypedWrite<T, F>
where
    T: Send,
    F: FnOnce(&rusqlite::Connection, &mut Vec<Touched>) -> Result<T, DatabaseError> + Send,
{
    fn run(&mut self, connection: &rusqlite::Connection, touched: &mut Vec<Touched>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(connection, touched);
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.outcome) {
            (Err(error), _) => Err(DatabaseError::Commit(error)),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(DatabaseError::Commit("the write did not run".to_owned())),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

struct Job {
    /// When the write was handed to the writer thread.
    queued_at: std::time::Instant,
    durability: Durability,
    touched: Vec<Touched>,
    write: Box<dyn Write>,
}

/// The handle to the writer thread; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens `path` (already migrated) and starts the threads; they end when every
    /// handle is dropped.
    pub(crate) fn start(path: &Path, cache: Arc<RowCache>) -> Result<SqliteWriter, DatabaseError> {
        let connection = open_writer_connection(path)?;
        // The log file exists now (the connection has read the database in WAL mode) and
        // stays the same file while the connection is open: SQLite deletes it only when
        // the last connection closes, and otherwise reuses it from its start.
        let log_path = write_ahead_log_path(path);
        let log = std::fs::File::open(&log_path).map_err(|error| {
            DatabaseError::Corrupt(format!(
                "cannot open the write-ahead log {} to sync it: {error}",
                log_path.display()
            ))
        })?;
        Self::start_with(path, connection, cache, Box::new(move || log.sync_data()))
    }

    /// [`SqliteWriter::start`] with the log synced by `sync_log`.
    fn start_with(
        path: &Path,
        connection: rusqlite::Connection,
        cache: Arc<RowCache>,
        sync_log: SyncLog,
    ) -> Result<SqliteWriter, DatabaseError> {
        let checkpointing = rusqlite::Connection::open(path)?;
        checkpointing.execute_batch("PRAGMA busy_timeout = 10000;")?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        let (to_sync, waiting_for_sync) = mpsc::channel::<AwaitingSync>();
        // The writer thread holds the sender and drops it when it ends, after its last
        // commit, so the checkpoint thread's last checkpoint comes after every write.
        let (writer_running, writer_ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-log-sync".to_owned())
            .spawn(move || sync_until_closed(sync_log, &waiting_for_sync))
            .map_err(|error| {
                DatabaseError::Corrupt(format!("cannot start the database's log syncer: {error}"))
            })?;
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                write_until_closed(&connection, &receiver, &cache, &to_sync);
                drop(writer_running);
            })
            .map_err(|error| {
                DatabaseError::Corrupt(format!("cannot start the database writer: {error}"))
            })?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || checkpoint_until_closed(&checkpointing, &writer_ended))
            .map_err(|error| {
                DatabaseError::Corrupt(format!("cannot start the database checkpointer: {error}"))
            })?;
        Ok(SqliteWriter { jobs })
    }

    /// Runs `work` in the next group's transaction; see the module's contract.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        durability: Durability,
        touched: Vec<Touched>,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, DatabaseError> + Send + 'static,
    ) -> Result<T, DatabaseError> {
        self.run_naming_rows(durability, touched, move |connection, _| work(connection))
            .await
    }

    /// Like [`SqliteWriter::run`], for a write that learns which rows it changes as it
    /// runs (an insert under a number it chooses): it names them in the vector it is given.
    pub(crate) async fn run_naming_rows<T: Send + 'static>(
        &self,
        durability: Durability,
        touched: Vec<Touched>,
        work: impl FnOnce(&rusqlite::Connection, &mut Vec<Touched>) -> Result<T, DatabaseError>
        + Send
        + 'static,
    ) -> Result<T, DatabaseError> {
        let (reply, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            queued_at: std::time::Instant::now(),
            durability,
            touched,
            write: Box::new(TypedWrite {
                work: Some(work),
                outcome: None,
                reply,
            }),
        };
        self.jobs
            .send(job)
            .map_err(|_| DatabaseError::Corrupt("the database writer stopped".to_owned()))?;
        answered
            .await
            .map_err(|_| DatabaseError::Corrupt("the database writer stopped".to_owned()))?
    }
}

/// The writer's connection: WAL, commits not synced, no automatic checkpoints.
fn open_writer_connection(path: &Path) -> Result<rusqlite::Connection, DatabaseError> {
    let connection = rusqlite::Connection::open(path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    // A first read opens the write-ahead log, creating its file if there is none yet.
    connection.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |row| {
        row.get::<_, i64>(0)
    })?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// SQLite's name for the write-ahead log of the database at `path`.
fn write_ahead_log_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    std::path::PathBuf::from(name)
}

fn write_until_closed(
    connection: &rusqlite::Connection,
    receiver: &mpsc::Receiver<Job>,
    cache: &RowCache,
    to_sync: &mpsc::Sender<AwaitingSync>,
) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < MAXIMUM_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(connection, group, cache, to_sync);
    }
}

/// Syncs the log whenever committed writes wait for the disk, answering them after it:
/// one sync for all the groups committed while the last one ran.
///
/// A failed sync stops the process. Linux reports a failed write-back once and then
/// forgets it, so a second sync would succeed without the lost pages ever reaching the
/// disk; going on would answer writes whose durability is unknown, and the outbox would
/// push messages whose record may be gone. Stopped, the manager is in the state a
/// `kill -9` leaves, which the crash tests show it recovers from: SQLite reads back at
/// the next start what did reach the disk.
fn sync_until_closed(mut sync_log: SyncLog, waiting: &mpsc::Receiver<AwaitingSync>) {
    while let Ok(mut writes) = waiting.recv() {
        while let Ok(more) = waiting.try_recv() {
            writes.extend(more);
        }
        let started = std::time::Instant::now();
        if let Err(error) = sync_log() {
            tracing::error!(
                %error,
                "the database's write-ahead log could not be synced to disk; stopping, so that \
                 nothing is answered or sent on writes that may be lost (the next start \
                 recovers the database from what reached the disk)"
            );
            std::process::abort();
        }
        tracing::debug!(
            writes = writes.len(),
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "synced the write-ahead log"
        );
        for write in writes {
            write.answer(Ok(()));
        }
    }
}

/// Copies the write-ahead log back into the database file every
/// [`CHECKPOINT_INTERVAL`], and once more when the writer thread has ended.
fn checkpoint_until_closed(connection: &rusqlite::Connection, writer_ended: &mpsc::Receiver<()>) {
    loop {
        let last = matches!(
            writer_ended.recv_timeout(CHECKPOINT_INTERVAL),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        if let Err(error) = checkpoint(connection) {
            tracing::warn!(%error, "the database's write-ahead log could not be checkpointed; trying again");
        }
        if last {
            return;
        }
    }
}

/// A passive checkpoint: copies the commits no reader still needs from the log to the
/// database file and never waits for the writer or a reader. With nothing new in the
/// log it writes and syncs nothing.
fn checkpoint(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    let (busy, log_pages, copied_pages): (i64, i64, i64) =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    tracing::debug!(
        busy,
        log_pages,
        copied_pages,
        took_ms = started.elapsed().as_secs_f64() * 1e3,
        "checkpointed the write-ahead log"
    );
    Ok(())
}

fn commit_group(
    connection: &rusqlite::Connection,
    group: Vec<Job>,
    cache: &RowCache,
    to_sync: &mpsc::Sender<AwaitingSync>,
) {
    let started = std::time::Instant::now();
    let writes = group.len();
    let longest_queued = group
        .iter()
        .map(|job| started.duration_since(job.queued_at))
        .max()
        .unwrap_or_default();
    let durable_writes = group
        .iter()
        .filter(|job| job.durability == Durability::Synced)
        .count();
    if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
        let error = format!("beginning a transaction: {error}");
        tracing::error!(%error, "the database writer could not start a group of writes");
        for job in group {
            job.write.answer(Err(error.clone()));
        }
        return;
    }
    let mut touched = Vec::new();
    let mut ran = Vec::with_capacity(group.len());
    for mut job in group {
        touched.extend(job.touched);
        // A savepoint per write: a write's error undoes its own statements only.
        if let Err(error) = connection.execute_batch("SAVEPOINT write") {
            job.write
                .answer(Err(format!("opening a savepoint: {error}")));
            continue;
        }
        let mut named_while_running = Vec::new();
        if job.write.run(connection, &mut named_while_running) {
            touched.extend(named_while_running);
        } else {
            let _ = connection.execute_batch("ROLLBACK TO write");
        }
        let _ = connection.execute_batch("RELEASE write");
        ran.push((job.durability, job.write));
    }
    let ran_for = started.elapsed();
    let committed = connection
        .execute_batch("COMMIT")
        .map_err(|error| format!("committing: {error}"));
    let committed_after = started.elapsed();
    if let Err(error) = &committed {
        tracing::error!(%error, writes = ran.len(), "a group of database writes failed");
        let _ = connection.execute_batch("ROLLBACK");
    }
    // Replaced before anyone is answered, so a caller reading after its write never
    // meets the row as it was before. Nothing else writes this file, so the rows read
    // back now are the rows as they stand until this thread's next group.
    let fresh = match &committed {
        Ok(()) => crate::db::rows_after_commit(connection, &touched),
        Err(error) => Err(DatabaseError::Commit(error.clone())),
    };
    match fresh {
        Ok(fresh) => cache.refresh(&touched, fresh),
        Err(error) => {
            if committed.is_ok() {
                tracing::debug!(%error, "rows written could not be read back; they are forgotten");
            }
            cache.forget(&touched);
        }
    }
    let mut waiting_for_the_disk = Vec::new();
    for (durability, write) in ran {
        if durability == Durability::Synced && committed.is_ok() {
            waiting_for_the_disk.push(write);
        } else {
            write.answer(committed.clone());
        }
    }
    if !waiting_for_the_disk.is_empty()
        && let Err(mpsc::SendError(writes)) = to_sync.send(waiting_for_the_disk)
    {
        // The syncing thread ends after this one, unless its sync panicked.
        for write in writes {
            write.answer(Err("the write-ahead log's syncer stopped".to_owned()));
        }
    }
    tracing::debug!(
        writes,
        durable_writes,
        ran_ms = ran_for.as_secs_f64() * 1e3,
        committed_ms = committed_after.as_secs_f64() * 1e3,
        answered_ms = started.elapsed().as_secs_f64() * 1e3,
        longest_queued_ms = longest_queued.as_secs_f64() * 1e3,
        "committed a group of writes"
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A database file holding the tests' one table.
    fn database_with_a_table() -> (tempfile::TempDir, std::path::PathBuf) {
        let directory = tempfile::tempdir().expect("a directory");
        let path = directory.path().join("test.db");
        rusqlite::Connection::open(&path)
            .expect("open")
            .execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .expect("create a table");
        (directory, path)
    }

    fn writer_over_a_table() -> (tempfile::TempDir, SqliteWriter, Arc<RowCache>) {
        let (directory, path) = database_with_a_table();
        let cache = Arc::new(RowCache::default());
        let writer = SqliteWriter::start(&path, Arc::clone(&cache)).expect("start the writer");
        (directory, writer, cache)
    }

    fn count(directory: &tempfile::TempDir, condition: &str) -> i64 {
        let connection =
            rusqlite::Connection::open(directory.path().join("test.db")).expect("open");
        connection
            .query_row(
                &format!("SELECT COUNT(*) FROM things WHERE {condition}"),
                [],
                |row| row.get(0),
            )
            .expect("count")
    }

    /// Many writes arrive together, so they share transactions; every third one writes a
    /// row and then fails. The failed ones leave nothing behind and are answered with
    /// their error; the others all stand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_undoes_only_its_own_statements() {
        let (directory, writer, _cache) = writer_over_a_table();
        let writes: Vec<_> = (0..300_i64)
            .map(|id| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .run(Durability::Normal, Vec::new(), move |connection| {
                            connection.execute(
                                "INSERT INTO things (id, name) VALUES (?1, 'kept')",
                                [id],
                            )?;
                            if id % 3 == 0 {
                                // A second row with the same id: a constraint violation
                                // after the first row was written.
                                connection.execute(
                                    "INSERT INTO things (id, name) VALUES (?1, 'duplicate')",
                                    [id],
                                )?;
                            }
                            Ok(id)
                        })
                        .await
                })
            })
            .collect();
        let mut failed = 0;
        for write in writes {
            match write.await.expect("a write task") {
                Ok(_) => {}
                Err(DatabaseError::Sqlite(_)) => failed += 1,
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        assert_eq!(failed, 100);
        assert_eq!(count(&directory, "id % 3 = 0"), 0);
        assert_eq!(count(&directory, "id % 3 <> 0"), 200);
    }

    /// With the real log file: a synced write is answered, and the writer's connection
    /// stays at `synchronous = NORMAL` (no commit of the writer waits for the disk).
    #[tokio::test]
    async fn a_synced_write_is_answered_and_the_writer_never_syncs_its_commits() {
        let (directory, writer, _cache) = writer_over_a_table();
        writer
            .run(Durability::Synced, Vec::new(), |connection| {
                connection.execute("INSERT INTO things (id, name) VALUES (1, 'synced')", [])?;
                Ok(())
            })
            .await
            .expect("a synced write");
        assert_eq!(count(&directory, "name = 'synced'"), 1);
        let synchronous: i64 = writer
            .run(Durability::Normal, Vec::new(), |connection| {
                Ok(connection.query_row("PRAGMA synchronous", [], |row| row.get(0))?)
            })
            .await
            .expect("read the setting");
        // 1 is NORMAL (2 would be FULL).
        assert_eq!(synchronous, 1);
    }

    /// The log's sync is held by the test: the synced write is committed (another
    /// connection reads it) but not answered until the sync ends, while normal writes
    /// made meanwhile are answered at once, which they were not when the durable write's
    /// commit itself synced on the writer's thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_synced_write_waits_for_the_log_sync_and_no_other_write_waits_with_it() {
        let (directory, path) = database_with_a_table();
        let (sync_began, syncs_begun) = mpsc::channel::<()>();
        let (release_sync, sync_released) = mpsc::channel::<()>();
        // Ok also when the test has ended (a failed sync would abort the test binary).
        let sync_log: SyncLog = Box::new(move || {
            let _ = sync_began.send(());
            let _ = sync_released.recv();
            Ok(())
        });
        let writer = SqliteWriter::start_with(
            &path,
            open_writer_connection(&path).expect("the writer's connection"),
            Arc::new(RowCache::default()),
            sync_log,
        )
        .expect("start the writer");
        let durable = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .run(Durability::Synced, Vec::new(), |connection| {
                        connection
                            .execute("INSERT INTO things (id, name) VALUES (1, 'durable')", [])?;
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || syncs_begun.recv_timeout(Duration::from_secs(20)))
            .await
            .expect("the waiting task")
            .expect("the log's sync to begin after the durable write's commit");
        assert_eq!(
            count(&directory, "name = 'durable'"),
            1,
            "committed before the sync"
        );
        for id in 2..52_i64 {
            tokio::time::timeout(
                Duration::from_secs(20),
                writer.run(Durability::Normal, Vec::new(), move |connection| {
                    connection
                        .execute("INSERT INTO things (id, name) VALUES (?1, 'normal')", [id])?;
                    Ok(())
                }),
            )
            .await
            .expect("a normal write answered while the log's sync is held")
            .expect("a normal write");
        }
        assert!(
            !durable.is_finished(),
            "the synced write was answered before its commit was synced"
        );
        release_sync.send(()).expect("release the sync");
        tokio::time::timeout(Duration::from_secs(20), durable)
            .await
            .expect("the synced write answered after the sync")
            .expect("the write's task")
            .expect("the synced write");
        assert_eq!(count(&directory, "name = 'normal'"), 50);
    }

    /// The writer's commits never checkpoint (its connection has automatic checkpoints
    /// off), yet what they wrote reaches the database file: the checkpoint thread copies
    /// it there. Without that thread the file would keep its first pages only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_thread_copies_the_log_into_the_database_file() {
        let (directory, writer, _cache) = writer_over_a_table();
        let automatic: i64 = writer
            .run(Durability::Normal, Vec::new(), |connection| {
                Ok(connection.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))?)
            })
            .await
            .expect("read the setting");
        assert_eq!(automatic, 0, "the writer's commits must not checkpoint");
        for id in 0..200_i64 {
            writer
                .run(Durability::Normal, Vec::new(), move |connection| {
                    connection.execute(
                        "INSERT INTO things (id, name) VALUES (?1, ?2)",
                        rusqlite::params![id, "x".repeat(10_000)],
                    )?;
                    Ok(())
                })
                .await
                .expect("a write");
        }
        let database_file = directory.path().join("test.db");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let length = std::fs::metadata(&database_file)
                .expect("the database file")
                .len();
            if length > 2_000_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "2 MB were committed but the database file holds {length} bytes after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_write_counts_in_the_cache_generation_before_it_is_answered() {
        let (_directory, writer, cache) = writer_over_a_table();
        let before = cache.generation();
        writer
            .run(
                Durability::Normal,
                vec![Touched::Message(7)],
                |connection| {
                    connection.execute("INSERT INTO things (id, name) VALUES (1, 'one')", [])?;
                    Ok(())
                },
            )
            .await
            .expect("a write");
        assert!(cache.generation() > before);
    }
}
