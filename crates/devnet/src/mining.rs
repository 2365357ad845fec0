//! Block production by storage miners, so a miner's winning PoSt service is exercised as
//! on a real network.
//!
//! The devnet plays both the network's election and the miner's own block producer
//! (lotus-miner or venus-miner): each round, a [`BlockMiner`] is elected with its
//! configured probability (a draw from the round's beacon, deterministic for a seed),
//! the challenged sectors come from the same base info `MinerGetBaseInfo` answers, its
//! [`WinningProver`] is asked for the proof within the miner's time budget, and the
//! proof is checked with the devnet's verifier. Only a verified proof makes the miner the
//! block's author; otherwise the devnet's own producer makes the block, as the network
//! goes on without a miner that failed its round. Every round's outcome is kept as a
//! [`MiningRecord`].

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chain_client::transport::HttpTransport;
use chain_client::types::{ExtendedSectorInfo, PoStProof};
use chain_client::{Endpoint, LotusClient};
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chain::{Chain, blake2b};

/// The JSON-RPC method a sector manager serves winning PoSts with.
pub const COMPUTE_WINNING_POST_METHOD: &str = "Venus.ComputeWinningPoSt";

/// What a block producer asks a winning PoSt service for one round: Lotus's
/// `ComputeProof` arguments, plus the miner (one service may prove for several).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinningProofRequest {
    /// The miner actor.
    pub miner: Address,
    /// The sectors the round's challenge selected, from `MinerGetBaseInfo`.
    pub sectors: Vec<ExtendedSectorInfo>,
    /// The challenge randomness (already a field element).
    pub randomness: [u8; 32],
    /// The round being mined.
    pub round: ChainEpoch,
}

/// The future a [`WinningProver`] answers with.
pub type ProofFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<PoStProof>, String>> + Send + 'a>>;

/// A winning PoSt service.
///
/// Contract: answers the proofs for `request` (Lotus expects one) or a reason why there
/// are none. It may take as long as it needs; the devnet stops waiting after the miner's
/// `proof_timeout` and counts the round as failed. It must not assume the block will be
/// made: the devnet checks the proof first.
pub trait WinningProver: Send + Sync + Debug {
    /// Proves `request`.
    fn compute_proof(&self, request: WinningProofRequest) -> ProofFuture<'_>;
}

/// A winning PoSt service reached over JSON-RPC: a sector manager's
/// `Venus.ComputeWinningPoSt`.
#[derive(Debug)]
pub struct JsonRpcWinningProver {
    client: LotusClient<HttpTransport>,
}

impl JsonRpcWinningProver {
    /// A prover at `connection` (`TOKEN:http://host:port/rpc/v0`, or a URL), waiting at
    /// most `timeout` for an answer.
    pub fn new(connection: &str, timeout: Duration) -> Result<JsonRpcWinningProver, String> {
        let endpoint = Endpoint::parse(connection).map_err(|error| error.to_string())?;
        let transport = HttpTransport::new(endpoint, timeout).map_err(|error| error.to_string())?;
        Ok(JsonRpcWinningProver {
            client: LotusClient::new(transport),
        })
    }
}

impl WinningProver for JsonRpcWinningProver {
    fn compute_proof(&self, request: WinningProofRequest) -> ProofFuture<'_> {
        Box::pin(async move {
            use base64::Engine as _;
            let sectors = serde_json::to_value(&request.sectors)
                .map_err(|error| format!("encode the sectors: {error}"))?;
            let params = vec![
                Value::String(request.miner.to_string()),
                sectors,
                Value::String(base64::engine::general_purpose::STANDARD.encode(request.randomness)),
                Value::from(request.round),
            ];
            let answer = self
                .client
                .call(COMPUTE_WINNING_POST_METHOD, params)
                .await
                .map_err(|error| error.to_string())?;
            serde_json::from_value(answer)
                .map_err(|error| format!("the answer is not a list of PoSt proofs: {error}"))
        })
    }
}

/// A storage miner taking part in the devnet's block production.
#[derive(Clone, Debug)]
pub struct BlockMiner {
    /// The miner actor's id.
    pub miner_id: u64,
    /// The chance it is elected in a round, from 0 to 1 (the devnet has no power table
    /// to weigh; this stands for the miner's share of the network's power).
    pub win_probability: f64,
    /// Its winning PoSt service.
    pub prover: Arc<dyn WinningProver>,
    /// How long a round waits for the proof (a real network leaves about 25 seconds).
    pub proof_timeout: Duration,
}

/// What came of one miner's round.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "Outcome", rename_all = "PascalCase")]
pub enum MiningOutcome {
    /// The election did not pick the miner.
    NotElected,
    /// Elected, but the miner had nothing to mine with (no actor, no provable sector).
    NotEligible {
        /// Why.
        reason: String,
    },
    /// Its proof verified and the block is the miner's.
    Won {
        /// Milliseconds the service took.
        proof_ms: u64,
        /// The sectors proven.
        sectors: Vec<u64>,
    },
    /// The service answered with an error, or not within the time budget.
    ProofFailed {
        /// Why.
        reason: String,
    },
    /// The service answered with a proof the devnet's verifier rejects.
    ProofRejected {
        /// Milliseconds the service took.
        proof_ms: u64,
    },
    /// The chain moved on while the proof was made.
    TooLate,
}

/// One miner's round.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MiningRecord {
    /// The round (the height of the block being made).
    pub round: ChainEpoch,
    /// The miner actor's id.
    pub miner: u64,
    /// What came of it.
    #[serde(flatten)]
    pub outcome: MiningOutcome,
}

/// Whether `miner_id` is elected at `round`: a draw from the round's beacon with the
/// miner's address (the election's domain, 2, as Lotus's), below `win_probability`.
pub fn elected(beacon_data: &[u8], round: ChainEpoch, miner_id: u64, win_probability: f64) -> bool {
    let draw = Chain::draw(
        2,
        &blake2b(&[beacon_data]),
        round,
        &crate::world::miner_entropy(miner_id),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&draw[..8]);
    let fraction = u64::from_be_bytes(first) as f64 / u64::MAX as f64;
    fraction < win_probability
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_election_is_deterministic_and_follows_the_probability() {
        let beacon = [7u8; 96];
        for round in 0..50 {
            assert_eq!(
                elected(&beacon, round, 1000, 0.3),
                elected(&beacon, round, 1000, 0.3)
            );
            assert!(elected(&beacon, round, 1000, 1.0));
            assert!(!elected(&beacon, round, 1000, 0.0));
        }
        let wins = (0..4000)
            .filter(|round| elected(&beacon, *round, 1000, 0.25))
            .count();
        // 4,000 draws at 25%: 1,000 expected, a standard deviation of about 27.
        assert!((880..=1120).contains(&wins), "{wins} wins of 4,000");
        let other_miner = (0..4000)
            .filter(|round| {
                elected(&beacon, *round, 1000, 0.25) != elected(&beacon, *round, 1001, 0.25)
            })
            .count();
        assert!(other_miner > 0, "two miners drew the same elections");
    }
}
