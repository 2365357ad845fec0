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
//! Checkpoints (copying the write-ahead log back into the database file, with its
//! fsyncs) are not left to the commit that happens to cross SQLite's threshold, which
//! would make every write of that group wait for the disk: a second thread with its own
//! connection runs them (passive ones, which never block the writer).
//!
//! The contract of [`SqliteWriter::run`]: the closure runs inside a savepoint of the
//! group's transaction, so its error rolls back only its own statements; its result is
//! answered after the group's commit (an error if the commit fails); the rows it names as
//! touched (before it runs, or while it runs, for rows it creates) are read back on this
//! thread's connection after the commit and put in the row cache (or forgotten, when they
//! cannot be read) before any answer.

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
    /// Synced before the answer (`synchronous = FULL` for the group's commit): the
    /// outbox's rows, which must exist on disk before a message is pushed.
    Synced,
}

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
    /// Opens `path` (already migrated) and starts the thread; it ends when every handle
    /// is dropped.
    pub(crate) fn start(path: &Path, cache: Arc<RowCache>) -> Result<SqliteWriter, DatabaseError> {
        let connection = rusqlite::Connection::open(path)?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        connection.set_prepared_statement_cache_capacity(64);
        let checkpointing = rusqlite::Connection::open(path)?;
        checkpointing.execute_batch("PRAGMA busy_timeout = 10000;")?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        // The writer thread holds the sender and drops it when it ends, after its last
        // commit, so the checkpoint thread's last checkpoint comes after every write.
        let (writer_running, writer_ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                write_until_closed(&connection, &receiver, &cache);
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

fn write_until_closed(
    connection: &rusqlite::Connection,
    receiver: &mpsc::Receiver<Job>,
    cache: &RowCache,
) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < MAXIMUM_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(connection, group, cache);
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

fn commit_group(connection: &rusqlite::Connection, group: Vec<Job>, cache: &RowCache) {
    let started = std::time::Instant::now();
    let writes = group.len();
    let longest_queued = group
        .iter()
        .map(|job| started.duration_since(job.queued_at))
        .max()
        .unwrap_or_default();
    let synced = group.iter().any(|job| job.durability == Durability::Synced);
    let began = (|| -> rusqlite::Result<()> {
        if synced {
            connection.execute_batch("PRAGMA synchronous = FULL")?;
        }
        connection.execute_batch("BEGIN IMMEDIATE")
    })();
    if let Err(error) = began {
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
        ran.push(job.write);
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
    if synced {
        let _ = connection.execute_batch("PRAGMA synchronous = NORMAL");
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
    for write in ran {
        write.answer(committed.clone());
    }
    tracing::debug!(
        writes,
        synced,
        ran_ms = ran_for.as_secs_f64() * 1e3,
        committed_ms = committed_after.as_secs_f64() * 1e3,
        answered_ms = started.elapsed().as_secs_f64() * 1e3,
        longest_queued_ms = longest_queued.as_secs_f64() * 1e3,
        "committed a group of writes"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_over_a_table() -> (tempfile::TempDir, SqliteWriter, Arc<RowCache>) {
        let directory = tempfile::tempdir().expect("a directory");
        let path = directory.path().join("test.db");
        let connection = rusqlite::Connection::open(&path).expect("open");
        connection
            .execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .expect("create a table");
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

    #[tokio::test]
    async fn a_synced_write_is_answered_after_its_commit_and_the_setting_returns_to_normal() {
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
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
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
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
