//! JSON-RPC 2.0 as Lotus speaks it (go-jsonrpc): requests, responses, and the four kinds
//! of failure a caller must tell apart.
//!
//! A failure is a transport failure (the node could not be reached or did not answer:
//! worth retrying), a permission failure (the token lacks a permission: retrying cannot
//! help), a not-found (the thing asked about does not exist: often an answer, not an
//! error) or a method failure (the node ran the method and it failed). Lotus returns most
//! errors with code 1 and a Go error text, so the text is read where the code says
//! nothing more.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The node could not be reached, or the connection failed mid-call; retried with
    /// backoff.
    Transport,
    /// The token lacks a permission the method needs, or was refused (HTTP 401).
    Permission,
    /// What was asked about does not exist (an actor, a message).
    NotFound,
    /// The node ran the method and it failed, or answered something this client cannot
    /// read.
    Method,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ErrorKind::Transport => "transport",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not found",
            ErrorKind::Method => "method",
        })
    }
}

/// A failed call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{method} failed ({kind}): {message}")]
pub struct ChainError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// The method called (`Filecoin.ChainHead`).
    pub method: String,
    /// The JSON-RPC error code, when the node sent one.
    pub code: Option<i64>,
    /// What went wrong.
    pub message: String,
}

impl ChainError {
    /// A transport failure.
    pub fn transport(method: &str, message: impl Into<String>) -> ChainError {
        ChainError {
            kind: ErrorKind::Transport,
            method: method.to_owned(),
            code: None,
            message: message.into(),
        }
    }

    /// A permission failure.
    pub fn permission(method: &str, message: impl Into<String>) -> ChainError {
        ChainError {
            kind: ErrorKind::Permission,
            method: method.to_owned(),
            code: None,
            message: message.into(),
        }
    }

    /// An answer this client cannot read.
    pub fn unreadable(method: &str, message: impl Into<String>) -> ChainError {
        ChainError {
            kind: ErrorKind::Method,
            method: method.to_owned(),
            code: None,
            message: message.into(),
        }
    }

    /// Classifies a JSON-RPC error object the node answered with.
    pub fn from_response(method: &str, error: &ErrorObject) -> ChainError {
        let text = error.message.to_ascii_lowercase();
        let kind = if error.code == METHOD_NOT_FOUND_CODE {
            // The node does not have the method (or not over this transport): it is the
            // call that is wrong, not the thing asked about.
            ErrorKind::Method
        } else if error.code == ACTOR_NOT_FOUND_CODE
            || text.contains("not found")
            || text.contains("failed to load message")
        {
            ErrorKind::NotFound
        } else if text.contains("missing permission") || text.contains("permission denied") {
            ErrorKind::Permission
        } else {
            ErrorKind::Method
        };
        ChainError {
            kind,
            method: method.to_owned(),
            code: Some(error.code),
            message: error.message.clone(),
        }
    }
}

/// Lotus's `EActorNotFound` (`api.RPCErrors`, first user code 2 + 9).
pub const ACTOR_NOT_FOUND_CODE: i64 = 11;
/// go-jsonrpc's code for an unknown method.
pub const METHOD_NOT_FOUND_CODE: i64 = -32601;
/// The code Lotus gives any error a method returns.
pub const METHOD_ERROR_CODE: i64 = 1;

/// A request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The method, `Filecoin.<Name>`.
    pub method: String,
    /// The positional parameters.
    pub params: Value,
    /// The request id; absent for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

impl Request {
    /// A call of `method` with `params` and `id`.
    pub fn call(method: &str, params: Vec<Value>, id: u64) -> Request {
        Request {
            jsonrpc: "2.0".to_owned(),
            method: method.to_owned(),
            params: Value::Array(params),
            id: Some(Value::from(id)),
        }
    }
}

/// An error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// Extra data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A response: exactly one of `result` and `error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The request's id.
    pub id: Value,
    /// The result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

impl Response {
    /// A successful response.
    pub fn success(id: Value, result: Value) -> Response {
        Response {
            jsonrpc: "2.0".to_owned(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failed response.
    pub fn failure(id: Value, code: i64, message: impl Into<String>) -> Response {
        Response {
            jsonrpc: "2.0".to_owned(),
            id,
            result: None,
            error: Some(ErrorObject {
                code,
                message: message.into(),
                data: None,
            }),
        }
    }

    /// The result, or the error classified. A response with neither reads as `null`
    /// (go-jsonrpc writes `"result": null` for a method that returned nothing).
    pub fn into_result(self, method: &str) -> Result<Value, ChainError> {
        match (self.result, self.error) {
            (_, Some(error)) => Err(ChainError::from_response(method, &error)),
            (Some(result), None) => Ok(result),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// How a call reaches the node. A contract for every transport: it sends `method` with
/// `params` once, and returns the JSON `result` (or `null`), or a [`ChainError`] whose
/// kind is [`ErrorKind::Transport`] exactly when the node may not have seen or answered
/// the call. Retrying is the client's job, not the transport's.
pub trait Transport: Send + Sync {
    /// Makes one call.
    fn call(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Value, ChainError>> + Send;
}
