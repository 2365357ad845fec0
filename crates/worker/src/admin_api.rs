//! The worker's admin API: damocles' `VenusWorker.*` JSON-RPC (list, pause, resume,
//! version) plus `VenusWorker.WorkerAbort` and `VenusWorker.StageFigures`, behind a
//! bearer token (damocles served it without any).
//!
//! Requests are answered at any path, as damocles' server did (its manager proxies to
//! `/`; the CLI uses `/rpc/v0`).
//! Every call must carry `Authorization: Bearer <token>`; a missing or wrong token is
//! HTTP 401. Unknown indices and bad parameters are JSON-RPC errors -32602.

use std::convert::Infallible;
use std::sync::{Arc, PoisonError};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use sector_fsm::State;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::compute::ComputePool;
use crate::sealing_thread::{Activity, CommandRequest, SharedStatus, ThreadCommand};

/// The method names.
pub mod method {
    /// Every thread's status.
    pub const WORKER_LIST: &str = "VenusWorker.WorkerList";
    /// Pause a thread after its step in flight.
    pub const WORKER_PAUSE: &str = "VenusWorker.WorkerPause";
    /// Resume a paused thread, optionally in another state.
    pub const WORKER_RESUME: &str = "VenusWorker.WorkerResume";
    /// Abort a thread's sector (new in sealcluster).
    pub const WORKER_ABORT: &str = "VenusWorker.WorkerAbort";
    /// The worker's version.
    pub const WORKER_VERSION: &str = "VenusWorker.WorkerVersion";
    /// Each stage's figures: tasks, waits, busy time (new in sealcluster).
    pub const STAGE_FIGURES: &str = "VenusWorker.StageFigures";
}

/// One sealing thread as the admin API reaches it.
pub struct ThreadHandle {
    /// Its status.
    pub status: SharedStatus,
    /// Where its commands go.
    pub commands: mpsc::Sender<CommandRequest>,
}

/// What the API serves.
pub struct AdminState {
    /// The threads, by index.
    pub threads: Vec<ThreadHandle>,
    /// The token every call must present.
    pub token: String,
    /// The compute pool, for its figures.
    pub pool: ComputePool,
}

type Answer = hyper::Response<Full<Bytes>>;

fn plain(status: StatusCode, text: &str) -> Answer {
    let mut answer = hyper::Response::new(Full::new(Bytes::from(text.to_owned())));
    *answer.status_mut() = status;
    answer
}

/// A JSON-RPC error.
struct CallError {
    code: i64,
    message: String,
}

fn invalid_params(message: impl Into<String>) -> CallError {
    CallError {
        code: -32602,
        message: message.into(),
    }
}

/// Accepts connections until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, state, stop, false).await;
}

/// Serves only `GET /metrics` on `listener` (damocles' `[metrics] enable = true` on
/// `http_listen`), so the port Prometheus scrapes exposes nothing else.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, state, stop, true).await;
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    mut stop: watch::Receiver<bool>,
    metrics_only: bool,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = Arc::clone(&state);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move {
                    if metrics_only && request.uri().path() != "/metrics" {
                        return Ok::<_, Infallible>(plain(
                            StatusCode::NOT_FOUND,
                            "this port serves only /metrics",
                        ));
                    }
                    Ok::<_, Infallible>(handle(&state, request).await)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                outcome = connection => {
                    if let Err(error) = outcome {
                        tracing::debug!(%error, "an admin connection ended with an error");
                    }
                }
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

fn authorized(state: &AdminState, request: &hyper::Request<Incoming>) -> bool {
    let presented = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.strip_prefix("Bearer ").unwrap_or(value).trim());
    match presented {
        // Compared in full whatever the first difference, so timing tells nothing.
        Some(token) => {
            token.len() == state.token.len()
                && token
                    .bytes()
                    .zip(state.token.bytes())
                    .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                    == 0
        }
        None => false,
    }
}

async fn handle(state: &AdminState, request: hyper::Request<Incoming>) -> Answer {
    // Prometheus scrapes without a token: the figures are counts, not secrets.
    if request.method() == Method::GET && request.uri().path() == "/metrics" {
        return metrics_answer(state);
    }
    if !authorized(state, &request) {
        return plain(
            StatusCode::UNAUTHORIZED,
            "the admin API needs `Authorization: Bearer <token>`; the daemon wrote its token \
             beside the configuration file",
        );
    }
    if request.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "JSON-RPC requests are POSTed",
        );
    }
    let Ok(body) = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        );
    };
    let answer = match serde_json::from_slice::<Value>(&body) {
        Ok(call) => {
            let id = call.get("id").cloned().unwrap_or(Value::Null);
            let method = call.get("method").and_then(Value::as_str).unwrap_or("");
            let params = call.get("params").cloned().unwrap_or(Value::Null);
            match dispatch(state, method, &params).await {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err(error) => {
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": error.code, "message": error.message}})
                }
            }
        }
        Err(_) => {
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error: the body is not JSON"}})
        }
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn thread<'a>(state: &'a AdminState, params: &Value) -> Result<&'a ThreadHandle, CallError> {
    let index = params
        .get(0)
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid_params("the first parameter is the thread's index"))?;
    usize::try_from(index)
        .ok()
        .and_then(|index| state.threads.get(index))
        .ok_or_else(|| {
            invalid_params(format!(
                "no thread {index}: this worker has threads 0 to {}",
                state.threads.len().saturating_sub(1)
            ))
        })
}

async fn command(handle: &ThreadHandle, command: ThreadCommand) -> Result<Value, CallError> {
    let (reply, answer) = oneshot::channel();
    handle
        .commands
        .send((command, reply))
        .await
        .map_err(|_| CallError {
            code: 1,
            message: "the thread has stopped".to_owned(),
        })?;
    match answer.await {
        Ok(Ok(())) => Ok(Value::Bool(true)),
        // damocles answers false when the thread cannot take the command now.
        Ok(Err(reason)) => {
            tracing::info!("an operator command was refused: {reason}");
            Ok(Value::Bool(false))
        }
        Err(_) => Err(CallError {
            code: 1,
            message: "the thread stopped before it took the command".to_owned(),
        }),
    }
}

fn elapsed_seconds(since: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    u64::try_from(now).unwrap_or(u64::MAX).saturating_sub(since) / 1000
}

/// `/metrics`: the compute pool's figures per stage and the threads by state, set now,
/// then everything recorded (stage durations and queue waits).
fn metrics_answer(state: &AdminState) -> Answer {
    use telemetry::metrics::{counter, gauge};
    for (stage, figures) in state.pool.figures() {
        let stage = stage.as_str();
        gauge!("sealcluster_stage_running", "stage" => stage).set(figures.running as f64);
        gauge!("sealcluster_stage_waiting", "stage" => stage).set(figures.waiting as f64);
        for (result, count) in [
            ("succeeded", figures.succeeded),
            ("failed", figures.failed),
            ("cancelled", figures.cancelled),
        ] {
            counter!("sealcluster_stage_tasks_total", "stage" => stage, "result" => result)
                .absolute(count);
        }
        counter!("sealcluster_stage_wait_milliseconds_total", "stage" => stage)
            .absolute(u64::try_from(figures.total_wait.as_millis()).unwrap_or(u64::MAX));
        counter!("sealcluster_stage_run_milliseconds_total", "stage" => stage)
            .absolute(u64::try_from(figures.total_run.as_millis()).unwrap_or(u64::MAX));
    }
    let mut by_state: std::collections::BTreeMap<&'static str, u64> =
        ["Idle", "Paused", "Running", "Waiting"]
            .into_iter()
            .map(|name| (name, 0))
            .collect();
    for thread in &state.threads {
        let status = thread.status.lock().unwrap_or_else(PoisonError::into_inner);
        let name = match status.activity {
            Activity::Idle => "Idle",
            Activity::Paused { .. } => "Paused",
            Activity::Running { .. } => "Running",
            Activity::Waiting { .. } => "Waiting",
        };
        *by_state.entry(name).or_default() += 1;
    }
    for (name, count) in by_state {
        gauge!("sealcluster_threads", "state" => name).set(count as f64);
    }
    let mut answer = hyper::Response::new(Full::new(Bytes::from(telemetry::render_metrics())));
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(telemetry::METRICS_CONTENT_TYPE),
    );
    answer
}

/// A thread as damocles' `WorkerList` shows it, with sealcluster's extra fields.
fn listed(status: &crate::sealing_thread::ThreadStatus) -> Value {
    let thread_state = match &status.activity {
        Activity::Idle => json!({"state": "Idle"}),
        Activity::Paused { since } => {
            json!({"state": "Paused", "elapsed": elapsed_seconds(*since)})
        }
        Activity::Running { since, doing } => {
            json!({"state": "Running", "elapsed": elapsed_seconds(*since), "proc": doing})
        }
        Activity::Waiting { since, waiting_for } => {
            json!({"state": "Waiting", "elapsed": elapsed_seconds(*since), "for": waiting_for})
        }
    };
    json!({
        "location": status.location,
        "plan": status.plan.to_string(),
        "job_id": status.sector.map(|sector| format!("s-t0{}-{}", sector.miner, sector.number)),
        "index": status.index,
        "thread_state": thread_state,
        "job_state": status.state.to_string(),
        "job_stage": Value::Null,
        "last_error": status.last_error,
        "finished": status.finished,
        "aborted": status.aborted,
    })
}

async fn dispatch(state: &AdminState, method: &str, params: &Value) -> Result<Value, CallError> {
    match method {
        method::WORKER_LIST => Ok(Value::Array(
            state
                .threads
                .iter()
                .map(|thread| listed(&thread.status.lock().unwrap_or_else(PoisonError::into_inner)))
                .collect(),
        )),
        method::WORKER_PAUSE => command(thread(state, params)?, ThreadCommand::Pause).await,
        method::WORKER_RESUME => {
            let handle = thread(state, params)?;
            let target =
                match params.get(1) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(name)) => Some(name.parse::<State>().map_err(|error| {
                        invalid_params(format!("the state to resume in: {error}"))
                    })?),
                    Some(other) => {
                        return Err(invalid_params(format!(
                            "the second parameter is a state name or null, not {other}"
                        )));
                    }
                };
            command(handle, ThreadCommand::Resume(target)).await
        }
        method::WORKER_ABORT => {
            let handle = thread(state, params)?;
            let reason = params
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or("aborted by an operator")
                .to_owned();
            command(handle, ThreadCommand::Abort(reason)).await
        }
        method::WORKER_VERSION => Ok(json!(format!("sealcluster-{}", env!("CARGO_PKG_VERSION")))),
        method::STAGE_FIGURES => {
            let figures: serde_json::Map<String, Value> = state
                .pool
                .figures()
                .into_iter()
                .map(|(stage, figures)| {
                    (
                        stage.as_str().to_owned(),
                        json!({
                            "submitted": figures.submitted,
                            "started": figures.started,
                            "succeeded": figures.succeeded,
                            "failed": figures.failed,
                            "cancelled": figures.cancelled,
                            "waiting": figures.waiting,
                            "running": figures.running,
                            "total_wait_ms": u64::try_from(figures.total_wait.as_millis()).unwrap_or(u64::MAX),
                            "total_run_ms": u64::try_from(figures.total_run.as_millis()).unwrap_or(u64::MAX),
                        }),
                    )
                })
                .collect();
            Ok(Value::Object(figures))
        }
        "VenusWorker.WorkerSetEnv" | "VenusWorker.WorkerRemoveEnv" => Err(CallError {
            code: -32601,
            message: format!(
                "{method} is not served: processors take their environment from their \
                 [[processors.<stage>]] entry's envs; change it there and restart the worker"
            ),
        }),
        other => Err(CallError {
            code: -32601,
            message: format!("method not found: {other}"),
        }),
    }
}

/// Calls `method` on the admin API at `address` (`host:port`) with `token`; what the
/// `sealing-worker worker` commands and tests use.
pub async fn call(
    address: &str,
    token: &str,
    method: &str,
    params: Vec<Value>,
) -> anyhow::Result<Value> {
    use chain_client::rpc::Transport as _;
    let url = format!("http://{address}{}", sealer_api::RPC_PATH);
    let transport = chain_client::transport::HttpTransport::new(
        chain_client::Endpoint {
            websocket_url: url.replacen("http", "ws", 1),
            http_url: url,
            token: Some(token.to_owned()),
        },
        std::time::Duration::from_secs(30),
    )
    .map_err(|error| anyhow::anyhow!(error.message))?;
    transport
        .call(method, params)
        .await
        .map_err(|error| anyhow::anyhow!(error.message))
}

/// `WorkerList`'s threads as a table for people, with damocles' columns.
pub fn render_list(threads: &[Value]) -> String {
    use std::fmt::Write as _;
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let mut rows = vec![[
        "#".to_owned(),
        "location".to_owned(),
        "plan".to_owned(),
        "sector".to_owned(),
        "state".to_owned(),
        "thread".to_owned(),
        "finished".to_owned(),
        "last error".to_owned(),
    ]];
    for thread in threads {
        let activity = &thread["thread_state"];
        let mut doing = text(&activity["state"]);
        if let Some(what) = activity.get("proc").or_else(|| activity.get("for")) {
            doing = format!("{doing} ({})", text(what));
        }
        if let Some(elapsed) = activity.get("elapsed").and_then(Value::as_u64) {
            doing = format!("{doing} {elapsed}s");
        }
        rows.push([
            text(&thread["index"]),
            text(&thread["location"]),
            text(&thread["plan"]),
            text(&thread["job_id"]),
            text(&thread["job_state"]),
            doing,
            text(&thread["finished"]),
            text(&thread["last_error"]),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(table, "{}", cells.join("  ").trim_end());
    }
    table
}
