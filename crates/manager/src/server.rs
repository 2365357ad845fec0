//! The HTTP surface: JSON-RPC 2.0 at `/rpc/v0` (single calls and batches), bearer-token
//! authentication, the tokenless networks for damocles workers, and `/healthcheck`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use chain_client::auth::{Permission, TokenAuthority};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::config::Network;
use crate::rpc::dispatch;
use crate::sealer::Manager;

/// What the server's connections share.
pub struct ServerState {
    /// The manager.
    pub manager: Arc<Manager>,
    /// Verifies tokens.
    pub authority: TokenAuthority,
    /// Networks whose hosts may call worker methods without a token.
    pub tokenless_networks: Vec<Network>,
    /// A PoSt-only manager (`daemon run --poster-only`): worker methods are refused.
    pub poster_only: bool,
}

type Answer = hyper::Response<Full<Bytes>>;

fn plain(status: StatusCode, text: &str) -> Answer {
    let mut answer = hyper::Response::new(Full::new(Bytes::from(text.to_owned())));
    *answer.status_mut() = status;
    answer
}

fn json_answer(value: &Value) -> Answer {
    let mut answer = hyper::Response::new(Full::new(Bytes::from(value.to_string())));
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

/// The permissions a request carries: a token's, the tokenless grant for a listed
/// network, or none. `Err` for a token that does not verify (HTTP 401).
fn permissions(
    state: &ServerState,
    request: &hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<Vec<Permission>, ()> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match header {
        Some(value) => {
            let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
            state.authority.verify(token).map_err(|_| ())
        }
        None if state
            .tokenless_networks
            .iter()
            .any(|network| network.contains(peer.ip())) =>
        {
            Ok(vec![Permission::Read, Permission::Write])
        }
        None => Ok(Vec::new()),
    }
}

/// Accepts connections until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        // Answers are small and written at once; waiting to coalesce them (Nagle) only
        // adds delay.
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, request, peer).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                outcome = connection => {
                    if let Err(error) = outcome {
                        tracing::debug!(%error, "an API connection ended with an error");
                    }
                }
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

async fn handle(
    state: &ServerState,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Answer {
    match request.uri().path() {
        "/healthcheck" => return plain(StatusCode::OK, "ok"),
        "/metrics" => return metrics_answer(&state.manager).await,
        sealer_api::RPC_PATH => {}
        "/web-admin-settings.json" => {
            return json_answer(&json!({
                "TraceUrl": state.manager.config.common.web_admin.trace_url,
                "RpcPath": sealer_api::RPC_PATH,
            }));
        }
        path if request.method() == Method::GET => return page_file(path),
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                "not found; the JSON-RPC API is at /rpc/v0",
            );
        }
    }
    let Ok(granted) = permissions(state, &request, peer) else {
        return plain(StatusCode::UNAUTHORIZED, "the token does not verify");
    };
    if request.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "JSON-RPC requests are POSTed",
        );
    }
    let traceparent = request
        .headers()
        .get(telemetry::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
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
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return json_answer(
            &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error: the body is not JSON"}}),
        );
    };
    match parsed {
        Value::Array(calls) => {
            let mut answers = Vec::new();
            for call in calls {
                if let Some(answer) =
                    answer_one(state, call, &granted, traceparent.as_deref()).await
                {
                    answers.push(answer);
                }
            }
            json_answer(&Value::Array(answers))
        }
        call => match answer_one(state, call, &granted, traceparent.as_deref()).await {
            Some(answer) => json_answer(&answer),
            None => plain(StatusCode::OK, ""),
        },
    }
}

/// `/metrics` for Prometheus, without a token (it tells counts, not secrets): the gauges
/// read from the database and the stores now, then everything recorded.
async fn metrics_answer(manager: &Manager) -> Answer {
    if let Err(error) = manager.refresh_gauges().await {
        tracing::warn!(%error, "could not read the figures for /metrics");
    }
    let mut answer = hyper::Response::new(Full::new(Bytes::from(telemetry::render_metrics())));
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(telemetry::METRICS_CONTENT_TYPE),
    );
    answer
}

/// A file of the admin page. The page runs only its own scripts and talks only to this
/// server; the policy says so to the browser.
fn page_file(path: &str) -> Answer {
    let Some(bytes) = crate::web_admin::asset(path) else {
        return plain(
            StatusCode::NOT_FOUND,
            "not found; the admin page is at / and the JSON-RPC API at /rpc/v0",
        );
    };
    let file = if path == "/" { "index.html" } else { path };
    let mut answer = hyper::Response::new(Full::new(Bytes::from(bytes.into_owned())));
    let headers = answer.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(crate::web_admin::content_type(file)),
    );
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    answer
}

/// The span of one call: a child of the caller's span when the request carried a
/// `traceparent` (a sealcluster worker sends its step's), else, for a call about one
/// sector, of that sector's trace (damocles workers send none), so every call about a
/// sector is part of its trace.
async fn rpc_span(
    state: &ServerState,
    method: &str,
    params: &Value,
    traceparent: Option<&str>,
) -> tracing::Span {
    // Read in place: this runs for every call.
    let sector = params.get(0).and_then(|first| {
        <sealer_api::types::SectorId as serde::Deserialize>::deserialize(first).ok()
    });
    let span = tracing::info_span!(
        "rpc",
        otel.name = method,
        method,
        miner = sector.map(|sector| sector.miner),
        number = sector.map(|sector| sector.number),
        outcome = tracing::field::Empty,
    );
    if !telemetry::is_exporting() {
        return span;
    }
    let parent = match (traceparent, sector) {
        (Some(parent), _) => Some(parent.to_owned()),
        (None, Some(sector)) => {
            state
                .manager
                .sector_traceparent(sector.miner, sector.number)
                .await
        }
        (None, None) => None,
    };
    if let Some(parent) = parent {
        telemetry::set_parent(&span, &parent);
    }
    span
}

/// One call's answer, or `None` for a notification (no id).
async fn answer_one(
    state: &ServerState,
    mut call: Value,
    granted: &[Permission],
    traceparent: Option<&str>,
) -> Option<Value> {
    use tracing::Instrument as _;
    let id = call.get("id").cloned();
    // Moved out, not copied: this runs for every call.
    let params = call
        .get_mut("params")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let Some(method) = call.get("method").and_then(Value::as_str) else {
        return Some(json!({"jsonrpc": "2.0", "id": id.unwrap_or(Value::Null),
            "error": {"code": -32600, "message": "invalid request: no method"}}));
    };
    let span = rpc_span(state, method, &params, traceparent).await;
    let started = std::time::Instant::now();
    let outcome = if state.poster_only && crate::rpc::is_worker_method(method) {
        Err(crate::sealer::ApiError {
            code: chain_client::rpc::METHOD_NOT_FOUND_CODE,
            message: format!(
                "{method} is not served here: this manager only proves PoSts; workers connect to the sealing manager"
            ),
        })
    } else {
        dispatch(&state.manager, method, params, granted)
            .instrument(span.clone())
            .await
    };
    let result = match &outcome {
        Ok(_) => "ok",
        Err(_) => "error",
    };
    span.record("outcome", result);
    let elapsed = started.elapsed();
    // The label is one of the known names, so a caller cannot grow the label set.
    let name = crate::rpc::known_method_name(method);
    telemetry::metrics::counter!("sealcluster_rpc_requests_total", "method" => name, "outcome" => result)
        .increment(1);
    telemetry::metrics::histogram!("sealcluster_rpc_duration_seconds", "method" => name)
        .record(elapsed.as_secs_f64());
    let id = id?;
    Some(match outcome {
        Ok(result) => {
            tracing::debug!(method, ?elapsed, "answered");
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        }
        Err(error) => {
            tracing::info!(method, code = error.code, message = %error.message, ?elapsed, "answered with an error");
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": error.code, "message": error.message}})
        }
    })
}
