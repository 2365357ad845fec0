//! One external processor: its child process, the handshake, requests and restarts.
//!
//! [`ExternalProcessor::start`] runs the command, waits (at most `stable_wait`) for the
//! ready line and then hands the child to a supervisor task that reads every answer and
//! routes it to its request by id. [`ExternalProcessor::process`] writes one request
//! line and waits for its answer, for at most its timeout.
//!
//! The reference's behaviour is kept where operators rely on it (the ready line, id
//! matching, in-flight requests failing when the child exits, automatic restarts) and
//! improved where it hurt:
//!
//! - a request has a timeout; a child that does not answer in time is presumed stuck,
//!   is killed, and (with `auto_restart`) started again; the request fails as
//!   temporary;
//! - dropping a request's future cancels it cleanly: its entry is removed and a late
//!   answer is discarded;
//! - a restart that fails is retried with a growing delay instead of being given up
//!   for good, and [`ExternalProcessor::health`] says what state the child is in, so a
//!   daemon can show it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sector_fsm::FailureLevel;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};

use crate::protocol::{Request, Response, ready_line};

/// How to run one external processor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorCommand {
    /// The stage name in the ready line (`pc1`, `c2`, ... or `EMPTY`).
    pub stage_name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables set for it, after the inherited ones.
    pub envs: Vec<(OsString, OsString)>,
    /// Whether it starts with the daemon's environment (otherwise with only `envs`).
    pub inherit_envs: bool,
    /// How long it may take to print its ready line.
    pub stable_wait: Duration,
    /// Whether it is started again when it exits.
    pub auto_restart: bool,
    /// The delay before the first restart; it doubles after each failed restart, up to
    /// a minute.
    pub restart_delay: Duration,
}

impl ProcessorCommand {
    /// A command with the reference's defaults: the environment inherited, 5 s for the
    /// ready line, restarted 3 s after it exits.
    pub fn new(stage_name: impl Into<String>, program: impl Into<PathBuf>) -> ProcessorCommand {
        ProcessorCommand {
            stage_name: stage_name.into(),
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            inherit_envs: true,
            stable_wait: Duration::from_secs(5),
            auto_restart: true,
            restart_delay: Duration::from_secs(3),
        }
    }
}

/// The longest wait between two failed restarts.
const MAXIMUM_RESTART_DELAY: Duration = Duration::from_secs(60);

/// What state a processor's child is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildState {
    /// Running and ready for requests.
    Ready {
        /// The child's pid.
        pid: u32,
    },
    /// It exited (or was killed) and is being started again.
    Restarting {
        /// How the last child ended, or why the last restart failed.
        reason: String,
        /// How many restarts have failed in a row.
        failed_attempts: u32,
    },
    /// It exited and will not be started again (`auto_restart = false`, or shut down).
    Stopped {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ChildState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildState::Ready { pid } => write!(formatter, "ready (pid {pid})"),
            ChildState::Restarting {
                reason,
                failed_attempts,
            } => write!(
                formatter,
                "restarting after {reason} ({failed_attempts} failed attempts)"
            ),
            ChildState::Stopped { reason } => write!(formatter, "stopped: {reason}"),
        }
    }
}

/// A processor's health, for the daemon's status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The child's state.
    pub state: ChildState,
    /// How many times the child was started again.
    pub restarts: u64,
    /// Requests answered with an output.
    pub succeeded: u64,
    /// Requests answered with an error, or lost with their child.
    pub failed: u64,
    /// Requests that ran out of time.
    pub timed_out: u64,
}

/// Why a processor could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program could not be run.
    #[error("could not start the {stage} processor {}", program.display())]
    Spawn {
        /// The stage.
        stage: String,
        /// The program.
        program: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The first line was not the ready line.
    #[error(
        "the {stage} processor printed {line:?} where {expected:?} was expected; a processor must print its ready line first and nothing but JSON answers after it on standard output (logs go to standard error)"
    )]
    UnexpectedFirstLine {
        /// The stage.
        stage: String,
        /// What it printed.
        line: String,
        /// The ready line.
        expected: String,
    },
    /// No ready line came in time.
    #[error(
        "the {stage} processor did not print its ready line within {wait:?}; raise stable_wait if it needs longer to start"
    )]
    NotReady {
        /// The stage.
        stage: String,
        /// How long it was given.
        wait: Duration,
    },
    /// The child exited before it was ready.
    #[error("the {stage} processor exited before it was ready ({status})")]
    ExitedEarly {
        /// The stage.
        stage: String,
        /// How it exited.
        status: String,
    },
}

/// Why a request did not produce an output.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// No answer came within the timeout; the child was killed.
    #[error(
        "the {stage} processor did not answer within {after:?}; it was killed and will be started again"
    )]
    TimedOut {
        /// The stage.
        stage: String,
        /// The timeout.
        after: Duration,
    },
    /// The child exited with the request in flight.
    #[error("the {stage} processor exited with the task in flight ({status})")]
    ChildExited {
        /// The stage.
        stage: String,
        /// How it exited.
        status: String,
    },
    /// There is no child to send the request to.
    #[error("the {stage} processor is not available: {state}")]
    Unavailable {
        /// The stage.
        stage: String,
        /// Its state.
        state: ChildState,
    },
    /// The processor answered with an error.
    #[error("the {stage} processor failed the task: {message}")]
    TaskFailed {
        /// The stage.
        stage: String,
        /// Its `err_msg`.
        message: String,
    },
    /// The processor answered with neither an error nor an output.
    #[error("the {stage} processor answered without an output")]
    OutputMissing {
        /// The stage.
        stage: String,
    },
    /// The request could not be written to the child.
    #[error("could not send the task to the {stage} processor")]
    Send {
        /// The stage.
        stage: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl ProcessError {
    /// The failure level for the sector whose step this was. A timeout, a crash or an
    /// unavailable processor may pass (the child is restarted), so they are temporary;
    /// a processor's own error and a malformed answer need an operator.
    pub fn level(&self) -> FailureLevel {
        match self {
            ProcessError::TimedOut { .. }
            | ProcessError::ChildExited { .. }
            | ProcessError::Unavailable { .. }
            | ProcessError::Send { .. } => FailureLevel::Temporary,
            ProcessError::TaskFailed { .. } | ProcessError::OutputMissing { .. } => {
                FailureLevel::Permanent
            }
        }
    }
}

type Answer = Result<Value, ProcessError>;

struct PendingRequest {
    generation: u64,
    answer: oneshot::Sender<Answer>,
}

/// What the handle and the supervisor share.
struct Shared {
    command: ProcessorCommand,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, PendingRequest>>,
    /// The running child's standard input and generation, or `None` between children.
    stdin: tokio::sync::Mutex<Option<(u64, ChildStdin)>>,
    health: watch::Sender<Health>,
    kill_requests: mpsc::UnboundedSender<u64>,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PendingRequest>> {
        // Nothing panics while holding this lock, and the map stays consistent if it did.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, change: impl FnOnce(&mut Health)) {
        self.health.send_modify(change);
    }

    fn stage(&self) -> String {
        self.command.stage_name.clone()
    }
}

/// A running external processor. Dropping it kills the child.
pub struct ExternalProcessor {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for ExternalProcessor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ExternalProcessor")
            .field("stage", &self.shared.command.stage_name)
            .field("program", &self.shared.command.program)
            .field("health", &*self.shared.health.borrow())
            .finish()
    }
}

impl ExternalProcessor {
    /// Starts the child and waits for its ready line. A processor that cannot start is
    /// an error here, at start-up, rather than a failed sector later.
    pub async fn start(command: ProcessorCommand) -> Result<ExternalProcessor, SpawnError> {
        let (child, stdin, lines) = spawn_and_handshake(&command).await?;
        let pid = child.id().unwrap_or(0);
        let (kill_requests, kill_receiver) = mpsc::unbounded_channel();
        let (health, _) = watch::channel(Health {
            state: ChildState::Ready { pid },
            restarts: 0,
            succeeded: 0,
            failed: 0,
            timed_out: 0,
        });
        let shared = Arc::new(Shared {
            command,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            stdin: tokio::sync::Mutex::new(Some((1, stdin))),
            health,
            kill_requests,
        });
        let (shutdown, shutdown_receiver) = watch::channel(false);
        tokio::spawn(supervise(
            Arc::clone(&shared),
            child,
            lines,
            kill_receiver,
            shutdown_receiver,
        ));
        Ok(ExternalProcessor { shared, shutdown })
    }

    /// The processor's health now.
    pub fn health(&self) -> Health {
        self.shared.health.borrow().clone()
    }

    /// A receiver that sees every change of the processor's health.
    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.shared.health.subscribe()
    }

    /// How many requests are in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.pending().len()
    }

    /// Sends `task` and waits for its output, for at most `timeout` (none: forever).
    /// Dropping the returned future cancels the request: a late answer is discarded.
    pub async fn process(&self, task: &Value, timeout: Option<Duration>) -> Answer {
        let shared = &self.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let line = encode_request(id, task);
        let generation = {
            let mut stdin = shared.stdin.lock().await;
            let Some((generation, writer)) = stdin.as_mut() else {
                return Err(ProcessError::Unavailable {
                    stage: shared.stage(),
                    state: shared.health.borrow().state.clone(),
                });
            };
            let generation = *generation;
            shared.pending().insert(
                id,
                PendingRequest {
                    generation,
                    answer: sender,
                },
            );
            let written = async {
                writer.write_all(line.as_bytes()).await?;
                writer.flush().await
            }
            .await;
            if let Err(source) = written {
                shared.pending().remove(&id);
                return Err(ProcessError::Send {
                    stage: shared.stage(),
                    source,
                });
            }
            generation
        };
        let _cancel_on_drop = PendingGuard { shared, id };
        let answer = match timeout {
            None => receiver.await,
            Some(limit) => match tokio::time::timeout(limit, receiver).await {
                Ok(answer) => answer,
                Err(_elapsed) => {
                    shared.count(|health| health.timed_out += 1);
                    tracing::warn!(
                        stage = %shared.command.stage_name,
                        "a task ran past its timeout of {limit:?}; killing the processor"
                    );
                    // The supervisor ignores a request for a child that is already gone.
                    let _ = shared.kill_requests.send(generation);
                    return Err(ProcessError::TimedOut {
                        stage: shared.stage(),
                        after: limit,
                    });
                }
            },
        };
        // A dropped sender means the supervisor is gone (the processor was shut down).
        answer.unwrap_or_else(|_| {
            Err(ProcessError::Unavailable {
                stage: shared.stage(),
                state: shared.health.borrow().state.clone(),
            })
        })
    }

    /// Kills the child and stops the supervisor; requests in flight fail.
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for ExternalProcessor {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Removes a request's entry when its future ends for any reason, so a cancelled
/// request leaves nothing behind.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.id);
    }
}

fn encode_request(id: u64, task: &Value) -> String {
    // A `Value` always encodes: its map keys are strings.
    let request = Request {
        id,
        task,
        traceparent: telemetry::current_traceparent(),
    };
    let mut line = serde_json::to_string(&request).unwrap_or_default();
    line.push('\n');
    line
}

async fn spawn_and_handshake(
    command: &ProcessorCommand,
) -> Result<(Child, ChildStdin, Lines<BufReader<ChildStdout>>), SpawnError> {
    let stage = command.stage_name.clone();
    let mut process = Command::new(&command.program);
    process
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if !command.inherit_envs {
        process.env_clear();
    }
    process.envs(command.envs.iter().map(|(key, value)| (key, value)));
    let mut child = process.spawn().map_err(|source| SpawnError::Spawn {
        stage: stage.clone(),
        program: command.program.clone(),
        source,
    })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(SpawnError::Spawn {
            stage,
            program: command.program.clone(),
            source: std::io::Error::other("the child's pipes were not created"),
        });
    };
    let mut lines = BufReader::new(stdout).lines();
    let expected = ready_line(&stage);
    match tokio::time::timeout(command.stable_wait, lines.next_line()).await {
        Ok(Ok(Some(line))) if line.trim() == expected => Ok((child, stdin, lines)),
        Ok(Ok(Some(line))) => {
            let _ = child.kill().await;
            Err(SpawnError::UnexpectedFirstLine {
                stage,
                line,
                expected,
            })
        }
        Ok(Ok(None) | Err(_)) => {
            let status = child
                .wait()
                .await
                .map_or_else(|error| format!("status unknown: {error}"), describe_exit);
            Err(SpawnError::ExitedEarly { stage, status })
        }
        Err(_elapsed) => {
            let _ = child.kill().await;
            Err(SpawnError::NotReady {
                stage,
                wait: command.stable_wait,
            })
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// Owns the child: routes its answers, kills it on request, fails in-flight requests
/// when it exits and starts it again.
async fn supervise(
    shared: Arc<Shared>,
    mut child: Child,
    mut lines: Lines<BufReader<ChildStdout>>,
    mut kill_requests: mpsc::UnboundedReceiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stage = shared.stage();
    let mut generation = 1u64;
    loop {
        let mut shutting_down = false;
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => route_answer(&shared, &line),
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%stage, "could not read the processor's output: {error}");
                        let _ = child.start_kill();
                        break;
                    }
                },
                Some(target) = kill_requests.recv() => {
                    if target == generation {
                        let _ = child.start_kill();
                    }
                }
                _ = shutdown.changed() => {
                    shutting_down = true;
                    let _ = child.start_kill();
                    break;
                }
            }
        }
        *shared.stdin.lock().await = None;
        let status = child
            .wait()
            .await
            .map_or_else(|error| format!("status unknown: {error}"), describe_exit);
        let lost: Vec<PendingRequest> = {
            let mut pending = shared.pending();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, request)| request.generation == generation)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        if !lost.is_empty() {
            shared.count(|health| health.failed += lost.len() as u64);
        }
        for request in lost {
            let _ = request.answer.send(Err(ProcessError::ChildExited {
                stage: stage.clone(),
                status: status.clone(),
            }));
        }
        if shutting_down || *shutdown.borrow() {
            shared.count(|health| {
                health.state = ChildState::Stopped {
                    reason: "shut down".to_owned(),
                };
            });
            return;
        }
        if !shared.command.auto_restart {
            tracing::warn!(%stage, "the processor exited ({status}); auto_restart is off");
            shared.count(|health| {
                health.state = ChildState::Stopped {
                    reason: format!("exited ({status}) and auto_restart is off"),
                };
            });
            return;
        }
        tracing::warn!(%stage, "the processor exited ({status}); starting it again");
        let mut reason = format!("the child exited ({status})");
        let mut failed_attempts = 0u32;
        let mut delay = shared.command.restart_delay;
        loop {
            shared.count(|health| {
                health.state = ChildState::Restarting {
                    reason: reason.clone(),
                    failed_attempts,
                };
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => {
                    shared.count(|health| {
                        health.state = ChildState::Stopped { reason: "shut down".to_owned() };
                    });
                    return;
                }
            }
            match spawn_and_handshake(&shared.command).await {
                Ok((new_child, stdin, new_lines)) => {
                    generation += 1;
                    child = new_child;
                    lines = new_lines;
                    let pid = child.id().unwrap_or(0);
                    *shared.stdin.lock().await = Some((generation, stdin));
                    shared.count(|health| {
                        health.state = ChildState::Ready { pid };
                        health.restarts += 1;
                    });
                    break;
                }
                Err(error) => {
                    failed_attempts += 1;
                    tracing::error!(%stage, "could not start the processor again: {error}");
                    reason = error.to_string();
                    delay = (delay * 2).min(MAXIMUM_RESTART_DELAY);
                }
            }
        }
    }
}

fn route_answer(shared: &Shared, line: &str) {
    let stage = &shared.command.stage_name;
    let response: Response<Value> = match serde_json::from_str(line) {
        Ok(response) => response,
        Err(error) => {
            let shown: String = line.chars().take(100).collect();
            tracing::warn!(%stage, "ignoring a line that is not an answer ({error}): {shown}");
            return;
        }
    };
    let Some(request) = shared.pending().remove(&response.id) else {
        tracing::debug!(%stage, id = response.id, "discarding an answer to a cancelled or timed-out request");
        return;
    };
    let answer = match (response.err_msg, response.output) {
        (Some(message), _) => Err(ProcessError::TaskFailed {
            stage: stage.clone(),
            message,
        }),
        (None, Some(output)) => Ok(output),
        (None, None) => Err(ProcessError::OutputMissing {
            stage: stage.clone(),
        }),
    };
    shared.count(|health| {
        if answer.is_ok() {
            health.succeeded += 1;
        } else {
            health.failed += 1;
        }
    });
    let _ = request.answer.send(answer);
}
