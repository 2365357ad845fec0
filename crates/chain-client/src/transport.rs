//! The two ways to reach a node: HTTP POST for calls, and a WebSocket for calls and
//! go-jsonrpc channels (`ChainNotify`).
//!
//! Both send `Authorization: Bearer <token>` when the endpoint has one and bound every
//! call by a timeout; an HTTP call also sends the current span's W3C `traceparent`. A failure to connect, a dropped connection, a timeout or an HTTP
//! error without a JSON-RPC body is a transport failure (the client retries it); HTTP 401
//! is a permission failure. TLS endpoints (`https`, `wss`) are refused with an error that
//! says so: put the node behind a local proxy until TLS is supported.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::endpoint::Endpoint;
use crate::rpc::{ChainError, ErrorKind, Request, Response, Transport};
use crate::types::HeadChange;

/// The method that streams head changes.
pub const CHAIN_NOTIFY: &str = "Filecoin.ChainNotify";

fn refuse_tls(url: &str) -> Result<(), ChainError> {
    if url.starts_with("https://") || url.starts_with("wss://") {
        return Err(ChainError {
            kind: ErrorKind::Permission,
            method: "connect".to_owned(),
            code: None,
            message: format!(
                "{url} needs TLS, which this client does not speak yet; reach the node over plain HTTP on a private network or through a local TLS-terminating proxy"
            ),
        });
    }
    Ok(())
}

/// JSON-RPC over HTTP POST.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    endpoint: Endpoint,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    next_id: Arc<AtomicU64>,
    /// Sent with every call, after the content type and the token.
    extra_headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

impl HttpTransport {
    /// A transport to `endpoint` whose calls each take at most `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Result<HttpTransport, ChainError> {
        refuse_tls(&endpoint.http_url)?;
        Ok(HttpTransport {
            endpoint,
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
            next_id: Arc::new(AtomicU64::new(1)),
            extra_headers: Vec::new(),
        })
    }

    /// The same transport sending `headers` with every call (a worker's
    /// `rpc_client.headers`); a name or value HTTP does not allow is refused, named.
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<HttpTransport, ChainError> {
        for (name, value) in headers {
            let header_name =
                hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    ChainError::transport(
                        "(configuration)",
                        format!("{name:?} is not an HTTP header name"),
                    )
                })?;
            let header_value = hyper::header::HeaderValue::from_str(value).map_err(|_| {
                ChainError::transport(
                    "(configuration)",
                    format!("the value of header {name:?} is not a valid HTTP header value"),
                )
            })?;
            self.extra_headers.push((header_name, header_value));
        }
        Ok(self)
    }

    async fn send(&self, method: &str, params: Vec<Value>) -> Result<Value, ChainError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&Request::call(method, params, id)).map_err(|error| {
            ChainError::unreadable(method, format!("encode the request: {error}"))
        })?;
        let mut request = hyper::Request::post(&self.endpoint.http_url)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.endpoint.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &self.extra_headers {
            request = request.header(name, value);
        }
        // The caller's span continues on the other side (one trace per sector).
        if let Some(traceparent) = telemetry::current_traceparent() {
            request = request.header(telemetry::TRACEPARENT, traceparent);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| {
                ChainError::transport(method, format!("build the request: {error}"))
            })?;
        let response = self.client.request(request).await.map_err(|error| {
            ChainError::transport(method, format!("reach {}: {error}", self.endpoint.http_url))
        })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| ChainError::transport(method, format!("read the answer: {error}")))?
            .to_bytes();
        if status == hyper::StatusCode::UNAUTHORIZED {
            return Err(ChainError::permission(
                method,
                "the node refused the token (HTTP 401); check the token in the connection string",
            ));
        }
        match serde_json::from_slice::<Response>(&bytes) {
            Ok(answer) => answer.into_result(method),
            Err(_) if !status.is_success() => Err(ChainError::transport(
                method,
                format!("the node answered HTTP {status} without a JSON-RPC body"),
            )),
            Err(error) => Err(ChainError::unreadable(
                method,
                format!("the answer is not JSON-RPC: {error}"),
            )),
        }
    }
}

impl Transport for HttpTransport {
    fn call(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Value, ChainError>> + Send {
        let method = method.to_owned();
        async move {
            match tokio::time::timeout(self.timeout, self.send(&method, params)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ChainError::transport(
                    &method,
                    format!("no answer within {:?}", self.timeout),
                )),
            }
        }
    }
}

/// What waits for a response on the WebSocket.
enum Waiting {
    /// An ordinary call.
    Call(oneshot::Sender<Result<Value, ChainError>>),
    /// A channel method: the reader registers the channel before handing it over, so no
    /// value sent right after the response is lost.
    Channel(oneshot::Sender<Result<mpsc::UnboundedReceiver<Value>, ChainError>>),
}

#[derive(Default)]
struct Shared {
    waiting: HashMap<u64, (String, Waiting)>,
    channels: HashMap<u64, mpsc::UnboundedSender<Value>>,
    closed: Option<String>,
}

type Writer = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Frame,
>;

/// JSON-RPC over one WebSocket, with go-jsonrpc channels (`xrpc.ch.val`, `xrpc.ch.close`).
/// When the connection drops, every call in flight fails as a transport failure and
/// every channel ends; make a new transport to reconnect.
#[derive(Clone)]
pub struct WebSocketTransport {
    shared: Arc<Mutex<Shared>>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    timeout: Duration,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for WebSocketTransport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebSocketTransport")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebSocketTransport {
    /// Connects to `endpoint`'s WebSocket URL; calls each take at most `timeout`.
    pub async fn connect(
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<WebSocketTransport, ChainError> {
        refuse_tls(&endpoint.websocket_url)?;
        let mut request = endpoint
            .websocket_url
            .as_str()
            .into_client_request()
            .map_err(|error| {
                ChainError::transport("connect", format!("{}: {error}", endpoint.websocket_url))
            })?;
        if let Some(token) = &endpoint.token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                ChainError::permission("connect", "the token is not a valid header value")
            })?;
            request
                .headers_mut()
                .insert(hyper::header::AUTHORIZATION, value);
        }
        let connected =
            tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request)).await;
        let (socket, _) = match connected {
            Ok(Ok(socket)) => socket,
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response)))
                if response.status() == hyper::StatusCode::UNAUTHORIZED =>
            {
                return Err(ChainError::permission(
                    "connect",
                    "the node refused the token (HTTP 401); check the token in the connection string",
                ));
            }
            Ok(Err(error)) => {
                return Err(ChainError::transport(
                    "connect",
                    format!("{}: {error}", endpoint.websocket_url),
                ));
            }
            Err(_) => {
                return Err(ChainError::transport(
                    "connect",
                    format!("{}: no answer within {timeout:?}", endpoint.websocket_url),
                ));
            }
        };
        let (writer, mut reader) = socket.split();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let for_reader = Arc::clone(&shared);
        tokio::spawn(async move {
            let reason = loop {
                match reader.next().await {
                    Some(Ok(Frame::Text(text))) => dispatch(&for_reader, text.as_str()),
                    Some(Ok(Frame::Close(_))) | None => {
                        break "the node closed the connection".to_owned();
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break format!("the connection failed: {error}"),
                }
            };
            close(&for_reader, reason);
        });
        Ok(WebSocketTransport {
            shared,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            timeout,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    async fn send(
        &self,
        method: &str,
        params: Vec<Value>,
        waiting: Waiting,
    ) -> Result<u64, ChainError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(reason) = &shared.closed {
                return Err(ChainError::transport(method, reason.clone()));
            }
            shared.waiting.insert(id, (method.to_owned(), waiting));
        }
        let text = serde_json::to_string(&Request::call(method, params, id)).map_err(|error| {
            ChainError::unreadable(method, format!("encode the request: {error}"))
        })?;
        let sent = self.writer.lock().await.send(Frame::text(text)).await;
        if let Err(error) = sent {
            self.forget(id);
            return Err(ChainError::transport(
                method,
                format!("send the request: {error}"),
            ));
        }
        Ok(id)
    }

    /// Waits for the answer to request `id`, at most the timeout; on a timeout the
    /// request is forgotten, so a late answer is dropped.
    async fn answer<T>(
        &self,
        method: &str,
        id: u64,
        receiver: oneshot::Receiver<Result<T, ChainError>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.timeout, receiver).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ChainError::transport(method, "the connection closed")),
            Err(_) => {
                self.forget(id);
                Err(ChainError::transport(
                    method,
                    format!("no answer within {:?}", self.timeout),
                ))
            }
        }
    }

    fn forget(&self, id: u64) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .remove(&id);
    }

    /// Subscribes to `ChainNotify`: a stream of head-change batches, the first a single
    /// `current`. The stream ends when the node closes the channel or the connection.
    pub async fn chain_notify(&self) -> Result<HeadChanges, ChainError> {
        let (sender, receiver) = oneshot::channel();
        let id = self
            .send(CHAIN_NOTIFY, vec![], Waiting::Channel(sender))
            .await?;
        let values = self.answer(CHAIN_NOTIFY, id, receiver).await?;
        Ok(HeadChanges { values })
    }
}

/// A `ChainNotify` subscription.
#[derive(Debug)]
pub struct HeadChanges {
    values: mpsc::UnboundedReceiver<Value>,
}

impl HeadChanges {
    /// The next batch of head changes; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Result<Vec<HeadChange>, ChainError>> {
        let value = self.values.recv().await?;
        Some(serde_json::from_value(value).map_err(|error| {
            ChainError::unreadable(
                CHAIN_NOTIFY,
                format!("a head change cannot be read: {error}"),
            )
        }))
    }
}

/// Routes one frame from the node.
fn dispatch(shared: &Mutex<Shared>, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        tracing::warn!(
            frame = text,
            "the node sent a frame that is not JSON; ignored"
        );
        return;
    };
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    match frame.get("method").and_then(Value::as_str) {
        Some("xrpc.ch.val") => {
            let channel = frame.pointer("/params/0").and_then(Value::as_u64);
            let value = frame.pointer("/params/1").cloned();
            if let (Some(channel), Some(value)) = (channel, value)
                && let Some(sender) = shared.channels.get(&channel)
                && sender.send(value).is_err()
            {
                // The subscriber went away; stop routing to it.
                shared.channels.remove(&channel);
            }
        }
        Some("xrpc.ch.close") => {
            if let Some(channel) = frame.pointer("/params/0").and_then(Value::as_u64) {
                shared.channels.remove(&channel);
            }
        }
        Some(other) => tracing::debug!(
            method = other,
            "the node sent a request this client does not serve"
        ),
        None => {
            let Ok(response) = serde_json::from_value::<Response>(frame) else {
                tracing::warn!(
                    frame = text,
                    "the node sent a response that cannot be read; ignored"
                );
                return;
            };
            let Some(id) = response.id.as_u64() else {
                return;
            };
            let Some((method, waiting)) = shared.waiting.remove(&id) else {
                return;
            };
            let outcome = response.into_result(&method);
            match waiting {
                Waiting::Call(sender) => {
                    let _ = sender.send(outcome);
                }
                Waiting::Channel(sender) => {
                    let registered = outcome.and_then(|value| {
                        let channel = value.as_u64().ok_or_else(|| {
                            ChainError::unreadable(&method, format!("{value} is not a channel id"))
                        })?;
                        let (values, receiver) = mpsc::unbounded_channel();
                        shared.channels.insert(channel, values);
                        Ok(receiver)
                    });
                    let _ = sender.send(registered);
                }
            }
        }
    }
}

/// Fails everything in flight and ends every channel.
fn close(shared: &Mutex<Shared>, reason: String) {
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    for (_, (method, waiting)) in shared.waiting.drain() {
        let error = ChainError::transport(&method, reason.clone());
        match waiting {
            Waiting::Call(sender) => {
                let _ = sender.send(Err(error));
            }
            Waiting::Channel(sender) => {
                let _ = sender.send(Err(error));
            }
        }
    }
    shared.channels.clear();
    shared.closed = Some(reason);
}

impl Transport for WebSocketTransport {
    fn call(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Value, ChainError>> + Send {
        let method = method.to_owned();
        async move {
            let (sender, receiver) = oneshot::channel();
            let id = self.send(&method, params, Waiting::Call(sender)).await?;
            self.answer(&method, id, receiver).await
        }
    }
}
