//! A Lotus full-node JSON-RPC client for the manager and the poster.
//!
//! This crate owns every conversation with the chain: head changes, randomness, miner
//! state, gas estimation and message submission, against a real Lotus node or the devnet
//! chain (which speaks the same wire format). Only the manager and the poster depend on
//! it; workers never talk to the chain.
//!
//! - [`lotus_json`]: the Lotus JSON encoding of Filecoin values, written once.
//! - [`types`]: the API's values in their Lotus shape, over fvm_shared's types.
//! - [`message`]: miner-actor messages built with the actors' own parameter types, and
//!   message CIDs as Lotus computes them.
//! - [`rpc`]: JSON-RPC requests and responses, and the classification of failures.
//! - [`transport`]: HTTP and WebSocket transports, and `ChainNotify` subscriptions.
//! - [`client`]: the typed API over any [`rpc::Transport`], with retries.
//! - [`head`]: following the head through reorganisations (pure).
//! - [`watch`]: following one message through reorganisations (pure).
//! - [`endpoint`]: the `TOKEN:/ip4/…/tcp/1234/http` connection string.
//! - [`auth`]: Lotus's API tokens (HS256 JWTs), for the servers that issue them.

pub mod auth;
pub mod client;
pub mod endpoint;
pub mod head;
pub mod lotus_json;
pub mod message;
pub mod rpc;
pub mod transport;
pub mod types;
pub mod watch;

pub use client::{LotusClient, RetryPolicy};
pub use endpoint::Endpoint;
pub use rpc::{ChainError, ErrorKind, Transport};
