//! The devnet's HTTP and WebSocket server, shaped like Lotus's go-jsonrpc handler.
//!
//! One handler serves `/rpc/v0` and `/rpc/v1`: a request asking to upgrade becomes a
//! WebSocket, anything else is a JSON-RPC POST (a single request or a batch). A missing
//! token reads; a token without the `Bearer ` prefix or one that does not verify gets
//! HTTP 401, as from Lotus. `ChainNotify` works over the WebSocket only: its answer is a
//! channel id, then `xrpc.ch.val` notifications carry head-change batches, the first a
//! single `current`.

use std::convert::Infallible;
use std::sync::Arc;

use chain_client::rpc::{METHOD_NOT_FOUND_CODE, Request, Response};
use chain_client::types::{HeadChange, HeadChangeType};
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::State;
use crate::rpc::{MethodError, dispatch, lookup};
use chain_client::auth::Permission;
use chain_client::types::TipSetKey;

type Answer = hyper::Response<Full<Bytes>>;

fn plain(status: StatusCode, body: &str) -> Answer {
    let mut answer = hyper::Response::new(Full::new(Bytes::from(body.to_owned())));
    *answer.status_mut() = status;
    answer
}

/// The caller's permissions, or `None` when the request must be refused with 401.
fn permissions(state: &State, request: &hyper::Request<Incoming>) -> Option<Vec<Permission>> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let query_token = request.uri().query().and_then(|query| {
        query.split('&').find_map(|pair| {
            pair.strip_prefix("token=")
                .map(|token| format!("Bearer {token}"))
        })
    });
    match header.or(query_token) {
        None => Some(vec![Permission::Read]),
        Some(value) => {
            let token = value.strip_prefix("Bearer ")?;
            state.authority.verify(token).ok()
        }
    }
}

/// Accepts connections until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        let mut stopping = state.stopping();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(state, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                outcome = connection => {
                    if let Err(error) = outcome {
                        tracing::debug!(%error, "a devnet connection ended with an error");
                    }
                }
                _ = stopping.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

async fn handle(state: Arc<State>, request: hyper::Request<Incoming>) -> Answer {
    let path = request.uri().path();
    if path != "/rpc/v1" && path != "/rpc/v0" {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let Some(permissions) = permissions(&state, &request) else {
        return plain(StatusCode::UNAUTHORIZED, "");
    };
    let call = state
        .calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fate = state.config.faults.call_fate(call);
    if !fate.latency.is_zero() {
        tokio::time::sleep(fate.latency).await;
    }
    let upgrade = request
        .headers()
        .get(hyper::header::CONNECTION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("upgrade"));
    if upgrade {
        return upgrade_to_websocket(state, request, permissions);
    }
    if request.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "JSON-RPC requests are POSTed",
        );
    }
    if fate.fails {
        // As a proxy in front of a node answers while the node restarts.
        return plain(StatusCode::SERVICE_UNAVAILABLE, "");
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
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        let response = Response::failure(Value::Null, -32700, "parse error");
        return json_answer(StatusCode::INTERNAL_SERVER_ERROR, &json!(response));
    };
    match parsed {
        Value::Array(requests) => {
            let mut responses = Vec::new();
            for request in requests {
                if let Some(response) = answer_one(&state, request, &permissions, false).await {
                    responses.push(json!(response));
                }
            }
            json_answer(StatusCode::OK, &Value::Array(responses))
        }
        single => match answer_one(&state, single, &permissions, false).await {
            Some(response) => {
                let status = match &response.error {
                    Some(error) if error.code < 0 => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::OK,
                };
                json_answer(status, &json!(response))
            }
            None => plain(StatusCode::OK, ""),
        },
    }
}

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    let mut answer = plain(status, &value.to_string());
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

/// Answers one request; `None` for a notification. `ChainNotify` is refused here unless
/// `websocket` (the WebSocket loop serves it itself).
async fn answer_one(
    state: &State,
    request: Value,
    permissions: &[Permission],
    websocket: bool,
) -> Option<Response> {
    let request: Request = match serde_json::from_value(request) {
        Ok(request) => request,
        Err(error) => {
            return Some(Response::failure(
                Value::Null,
                -32600,
                format!("invalid request: {error}"),
            ));
        }
    };
    let id = request.id.clone()?;
    state.count_call(&request.method);
    if request.method == chain_client::transport::CHAIN_NOTIFY && !websocket {
        return Some(Response::failure(
            id,
            METHOD_NOT_FOUND_CODE,
            format!(
                "method '{}' not supported in this mode (no out channel support)",
                request.method
            ),
        ));
    }
    let params = match request.params {
        Value::Array(params) => params,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let outcome =
        if request.method == "Filecoin.StateWaitMsg" && permissions.contains(&Permission::Read) {
            wait_message(state, &request.method, &params).await
        } else {
            dispatch(state, &request.method, &params, permissions)
        };
    Some(match outcome {
        Ok(result) => Response::success(id, result),
        Err(error) => Response::failure(id, error.code, error.message),
    })
}

/// `StateWaitMsg`: answers once the message has been executed and `confidence` tipsets
/// are on top of the tipset that executed it; a reorganisation in between just means
/// waiting longer.
async fn wait_message(state: &State, method: &str, params: &[Value]) -> Result<Value, MethodError> {
    if params.len() != 4 {
        return Err(MethodError {
            code: -32602,
            message: format!(
                "wrong param count (method '{method}'): {} != 4",
                params.len()
            ),
        });
    }
    let message =
        chain_client::lotus_json::cid::deserialize(params[0].clone()).map_err(|error| {
            MethodError {
                code: -32700,
                message: format!("unmarshaling params for '{method}' (param 0): {error}"),
            }
        })?;
    let confidence = params[1].as_i64().unwrap_or(0);
    let mut changes = state.subscribe();
    loop {
        {
            let chain = state.chain();
            if let Some(found) = lookup(&chain, &message, &TipSetKey::head())?
                && chain.head().height >= found.height + confidence
            {
                return serde_json::to_value(&found).map_err(|error| MethodError {
                    code: 1,
                    message: error.to_string(),
                });
            }
        }
        match changes.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                return Err(MethodError {
                    code: 1,
                    message: "the devnet stopped".to_owned(),
                });
            }
        }
    }
}

fn upgrade_to_websocket(
    state: Arc<State>,
    request: hyper::Request<Incoming>,
    permissions: Vec<Permission>,
) -> Answer {
    let Some(key) = request.headers().get(hyper::header::SEC_WEBSOCKET_KEY) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs Sec-WebSocket-Key",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    None,
                )
                .await;
                websocket_session(state, socket, permissions).await;
            }
            Err(error) => tracing::debug!(%error, "a WebSocket upgrade failed"),
        }
    });
    let mut answer = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    let headers = answer.headers_mut();
    headers.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    headers.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&accept) {
        headers.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, value);
    }
    answer
}

async fn websocket_session<S>(
    state: Arc<State>,
    socket: tokio_tungstenite::WebSocketStream<S>,
    permissions: Vec<Permission>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut writer, mut reader) = socket.split();
    let (outgoing, mut to_send) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer_task = tokio::spawn(async move {
        while let Some(text) = to_send.recv().await {
            if writer.send(Frame::text(text)).await.is_err() {
                break;
            }
        }
    });
    let mut next_channel = 1u64;
    let mut channel_tasks = Vec::new();
    let mut stopping = state.stopping();
    loop {
        let frame = tokio::select! {
            frame = reader.next() => frame,
            _ = stopping.wait_for(|stopped| *stopped) => None,
        };
        let Some(Ok(frame)) = frame else {
            break;
        };
        let Frame::Text(text) = frame else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let is_notify = value.get("method").and_then(Value::as_str)
            == Some(chain_client::transport::CHAIN_NOTIFY);
        if is_notify && permissions.contains(&Permission::Read) {
            let Some(id) = value.get("id").cloned() else {
                continue;
            };
            let channel = next_channel;
            next_channel += 1;
            // Subscribe before answering, so no change between the two is missed.
            let mut changes = state.subscribe();
            let current = vec![HeadChange {
                change: HeadChangeType::Current,
                tipset: state.chain().head().clone(),
            }];
            let _ = outgoing.send(json!(Response::success(id, json!(channel))).to_string());
            let _ = outgoing.send(channel_value(channel, &current));
            let sender = outgoing.clone();
            channel_tasks.push(tokio::spawn(async move {
                loop {
                    match changes.recv().await {
                        Ok(batch) => {
                            if sender.send(channel_value(channel, &batch)).is_err() {
                                break;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            // A subscriber too slow to keep up loses its channel, as a
                            // go-jsonrpc one does; it must subscribe again.
                            let _ = sender.send(json!({"jsonrpc": "2.0", "method": "xrpc.ch.close", "params": [channel]}).to_string());
                            break;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            }));
            continue;
        }
        // Calls run concurrently, so a long StateWaitMsg does not hold up the others.
        let (state, permissions, outgoing) =
            (Arc::clone(&state), permissions.clone(), outgoing.clone());
        tokio::spawn(async move {
            if let Some(response) = answer_one(&state, value, &permissions, true).await {
                let _ = outgoing.send(json!(response).to_string());
            }
        });
    }
    for task in channel_tasks {
        task.abort();
    }
    writer_task.abort();
}

fn channel_value(channel: u64, changes: &[HeadChange]) -> String {
    json!({"jsonrpc": "2.0", "method": "xrpc.ch.val", "params": [channel, changes]}).to_string()
}
