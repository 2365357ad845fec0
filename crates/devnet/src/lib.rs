//! A Lotus-compatible development chain: the same JSON-RPC methods, parameter orders,
//! permissions and errors, over HTTP and WebSocket, for development, tests and the
//! README's main command.
//!
//! - [`chain`]: the chain itself, pure: tipsets with real block CIDs, reorganisations,
//!   ticket and beacon randomness as Lotus draws it.
//! - [`auth`]: Lotus-style HS256 tokens with read/write/sign/admin.
//! - [`rpc`]: the methods.
//! - [`server`]: the HTTP and WebSocket server, `ChainNotify` channels included.
//!
//! [`start`] runs a devnet in-process on a loopback port; blocks come every
//! `block_time`, or only when a test calls [`RunningDevnet::produce`] if it is zero.

pub mod auth;
pub mod chain;
pub mod rpc;
pub mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chain_client::types::{HeadChange, TipSet};
use tokio::sync::broadcast;

use crate::auth::{Permission, TokenAuthority};
use crate::chain::Chain;

/// How a devnet behaves.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Time between blocks; zero makes blocks only on request.
    pub block_time: Duration,
    /// Epochs between a precommit landing and its seed (Lotus 2k devnets: 10).
    pub pre_commit_challenge_delay: i64,
    /// The network's name.
    pub network_name: String,
    /// The network version reported.
    pub network_version: u32,
    /// The seed every ticket, beacon entry and randomness derives from.
    pub seed: [u8; 32],
    /// The secret tokens are signed with.
    pub token_secret: Vec<u8>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            block_time: Duration::from_secs(1),
            pre_commit_challenge_delay: 10,
            network_name: "sealcluster-devnet".to_owned(),
            network_version: 28,
            seed: [0x5e; 32],
            token_secret: b"sealcluster devnet token secret".to_vec(),
        }
    }
}

/// What the server's tasks share.
#[derive(Debug)]
pub struct State {
    /// The configuration.
    pub config: DevnetConfig,
    /// Issues and checks tokens.
    pub authority: TokenAuthority,
    chain: Mutex<Chain>,
    head_changes: broadcast::Sender<Vec<HeadChange>>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl State {
    /// The chain, locked.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of every later batch of head changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Vec<HeadChange>> {
        self.head_changes.subscribe()
    }

    /// A receiver that changes when the devnet stops; connections close then.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    fn publish(&self, changes: Vec<HeadChange>) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.head_changes.send(changes);
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A devnet running in this process.
#[derive(Debug)]
pub struct RunningDevnet {
    /// Where it listens.
    pub address: SocketAddr,
    /// A token with every permission.
    pub admin_token: String,
    state: Arc<State>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunningDevnet {
    fn drop(&mut self) {
        // Open connections close too, as when a node goes away.
        self.state.stopping.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RunningDevnet {
    /// The Lotus connection string for `token` (`TOKEN:/ip4/127.0.0.1/tcp/PORT/http`).
    pub fn connection_string(&self, token: Option<&str>) -> String {
        let address = format!(
            "/ip4/{}/tcp/{}/http",
            self.address.ip(),
            self.address.port()
        );
        match token {
            Some(token) => format!("{token}:{address}"),
            None => address,
        }
    }

    /// Issues a token with `permissions`.
    pub fn issue_token(&self, permissions: &[Permission]) -> String {
        self.state.authority.issue(permissions)
    }

    /// Makes one block now.
    pub fn produce(&self) -> TipSet {
        let changes = self.state.chain().produce(now_seconds());
        let head = self.state.chain().head().clone();
        self.state.publish(changes);
        head
    }

    /// Replaces the top `depth` tipsets with a heavier fork.
    pub fn reorganise(&self, depth: usize) -> TipSet {
        let changes = self.state.chain().reorganise(depth, now_seconds());
        let head = self.state.chain().head().clone();
        self.state.publish(changes);
        head
    }

    /// The head.
    pub fn head(&self) -> TipSet {
        self.state.chain().head().clone()
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }
}

/// Starts a devnet listening on `listen` (port 0 picks a free one).
pub async fn start(config: DevnetConfig, listen: SocketAddr) -> std::io::Result<RunningDevnet> {
    let (head_changes, _) = broadcast::channel(1024);
    let (stopping, _) = tokio::sync::watch::channel(false);
    let state = Arc::new(State {
        stopping,
        authority: TokenAuthority::new(config.token_secret.clone()),
        chain: Mutex::new(Chain::genesis(config.seed, now_seconds())),
        head_changes,
        config,
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let mut tasks = vec![tokio::spawn(server::serve(listener, Arc::clone(&state)))];
    if !state.config.block_time.is_zero() {
        let producer = Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(producer.config.block_time);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let changes = producer.chain().produce(now_seconds());
                producer.publish(changes);
            }
        }));
    }
    let admin_token = state.authority.issue(&Permission::ALL);
    Ok(RunningDevnet {
        address,
        admin_token,
        state,
        tasks,
    })
}
