//! The devnet's JSON-RPC methods: the Lotus names, parameter orders, permissions and
//! error behaviour (code 1 with a Go-like message for a method's failure, -32601 for an
//! unknown method, -32602 for a wrong parameter count).

use chain_client::lotus_json::{self, to_value};
use chain_client::rpc::{METHOD_ERROR_CODE, METHOD_NOT_FOUND_CODE};
use chain_client::types::{NetworkParams, NodeVersion, TipSet, TipSetKey};
use fvm_shared::bigint::BigInt;
use fvm_shared::clock::ChainEpoch;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::Permission;
use crate::chain::Chain;
use crate::{DevnetConfig, State};

/// A method's failure: its JSON-RPC code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodError {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
}

impl MethodError {
    fn failed(message: impl Into<String>) -> MethodError {
        MethodError {
            code: METHOD_ERROR_CODE,
            message: message.into(),
        }
    }
}

/// The permission each method needs, or `None` for a method the devnet does not have.
pub fn permission_of(method: &str) -> Option<Permission> {
    let name = method.strip_prefix("Filecoin.")?;
    Some(match name {
        "AuthNew" => Permission::Admin,
        "Version"
        | "AuthVerify"
        | "ChainHead"
        | "ChainGetTipSet"
        | "ChainGetTipSetByHeight"
        | "ChainGetTipSetAfterHeight"
        | "ChainNotify"
        | "StateGetNetworkParams"
        | "StateNetworkVersion"
        | "StateGetRandomnessFromTickets"
        | "StateGetRandomnessFromBeacon"
        | "StateGetRandomnessDigestFromTickets"
        | "StateGetRandomnessDigestFromBeacon"
        | "StateGetBeaconEntry" => Permission::Read,
        _ => return None,
    })
}

fn parameter<T: DeserializeOwned>(
    method: &str,
    params: &[Value],
    index: usize,
) -> Result<T, MethodError> {
    let value = params.get(index).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|error| MethodError {
        code: -32700,
        message: format!("unmarshaling params for '{method}' (param {index}): {error}"),
    })
}

fn expect_count(method: &str, params: &[Value], count: usize) -> Result<(), MethodError> {
    if params.len() != count {
        return Err(MethodError {
            code: -32602,
            message: format!(
                "wrong param count (method '{method}'): {} != {count}",
                params.len()
            ),
        });
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> Result<Value, MethodError> {
    serde_json::to_value(value)
        .map_err(|error| MethodError::failed(format!("encode the result: {error}")))
}

fn bytes(value: &[u8]) -> Value {
    to_value(value, lotus_json::bytes::serialize)
}

/// The network parameters the devnet reports.
pub fn network_params(config: &DevnetConfig, chain: &Chain) -> NetworkParams {
    NetworkParams {
        network_name: config.network_name.clone(),
        block_delay_secs: config.block_time.as_secs().max(1),
        consensus_miner_min_power: BigInt::from(0),
        pre_commit_challenge_delay: config.pre_commit_challenge_delay,
        fork_upgrade_params: Default::default(),
        eip155_chain_id: 31415926,
        genesis_timestamp: chain
            .genesis_tipset()
            .blocks
            .first()
            .map_or(0, |block| block.timestamp),
    }
}

fn tipset_or_error(chain: &Chain, key: &TipSetKey) -> Result<TipSet, MethodError> {
    chain
        .tipset(key)
        .cloned()
        .ok_or_else(|| MethodError::failed(format!("loading tipset {key}: not found")))
}

/// Runs a method (other than `ChainNotify`, which the WebSocket handler serves) with the
/// caller's `permissions`.
pub fn dispatch(
    state: &State,
    method: &str,
    params: &[Value],
    permissions: &[Permission],
) -> Result<Value, MethodError> {
    let Some(needed) = permission_of(method) else {
        return Err(MethodError {
            code: METHOD_NOT_FOUND_CODE,
            message: format!("method '{method}' not found"),
        });
    };
    if !permissions.contains(&needed) {
        let name = method.trim_start_matches("Filecoin.");
        return Err(MethodError::failed(format!(
            "missing permission to invoke '{name}' (need '{}')",
            needed.as_str()
        )));
    }
    let chain = state.chain();
    let name = method.trim_start_matches("Filecoin.");
    match name {
        "Version" => {
            expect_count(method, params, 0)?;
            json(&NodeVersion {
                version: format!("sealcluster-devnet {}", env!("CARGO_PKG_VERSION")),
                api_version: 0x0002_0300,
                block_delay: state.config.block_time.as_secs().max(1),
                agent: "sealcluster-devnet".to_owned(),
            })
        }
        "AuthVerify" => {
            expect_count(method, params, 1)?;
            let token: String = parameter(method, params, 0)?;
            let granted = state
                .authority
                .verify(&token)
                .map_err(|error| MethodError::failed(error.to_string()))?;
            json(&granted)
        }
        "AuthNew" => {
            expect_count(method, params, 1)?;
            let wanted: Vec<Permission> = parameter(method, params, 0)?;
            // Lotus answers a []byte: the token's bytes in base64.
            Ok(bytes(state.authority.issue(&wanted).as_bytes()))
        }
        "ChainHead" => {
            expect_count(method, params, 0)?;
            json(chain.head())
        }
        "ChainGetTipSet" => {
            expect_count(method, params, 1)?;
            let key: TipSetKey = parameter(method, params, 0)?;
            json(&tipset_or_error(&chain, &key)?)
        }
        "ChainGetTipSetByHeight" | "ChainGetTipSetAfterHeight" => {
            expect_count(method, params, 2)?;
            let height: ChainEpoch = parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let from = tipset_or_error(&chain, &key)?;
            if height > from.height {
                return Err(MethodError::failed(format!(
                    "looking for tipset with height greater than start point ({height} > {})",
                    from.height
                )));
            }
            let found = if name == "ChainGetTipSetByHeight" {
                chain.tipset_at_or_before(height, &from.key())
            } else {
                chain.tipset_at_or_after(height, &from.key())
            };
            json(
                &found
                    .cloned()
                    .ok_or_else(|| MethodError::failed("tipset not found"))?,
            )
        }
        "StateGetNetworkParams" => {
            expect_count(method, params, 0)?;
            json(&network_params(&state.config, &chain))
        }
        "StateNetworkVersion" => {
            expect_count(method, params, 1)?;
            json(&state.config.network_version)
        }
        "StateGetRandomnessFromTickets" | "StateGetRandomnessFromBeacon" => {
            expect_count(method, params, 4)?;
            let domain: i64 = parameter(method, params, 0)?;
            let epoch: ChainEpoch = parameter(method, params, 1)?;
            let entropy = lotus_json::bytes::deserialize(params[2].clone()).map_err(|error| {
                MethodError::failed(format!("the entropy is not base64: {error}"))
            })?;
            let key: TipSetKey = parameter(method, params, 3)?;
            let digest = if name == "StateGetRandomnessFromTickets" {
                chain.ticket_digest(epoch, &key)
            } else {
                chain.beacon_digest(epoch, &key)
            }
            .map_err(|error| MethodError::failed(error.to_string()))?;
            Ok(bytes(&Chain::draw(domain, &digest, epoch.max(0), &entropy)))
        }
        "StateGetRandomnessDigestFromTickets" | "StateGetRandomnessDigestFromBeacon" => {
            expect_count(method, params, 2)?;
            let epoch: ChainEpoch = parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let digest = if name == "StateGetRandomnessDigestFromTickets" {
                chain.ticket_digest(epoch, &key)
            } else {
                chain.beacon_digest(epoch, &key)
            }
            .map_err(|error| MethodError::failed(error.to_string()))?;
            Ok(bytes(&digest))
        }
        "StateGetBeaconEntry" => {
            expect_count(method, params, 1)?;
            let epoch: ChainEpoch = parameter(method, params, 0)?;
            json(&chain.beacon_entry(epoch))
        }
        _ => Err(MethodError {
            code: METHOD_NOT_FOUND_CODE,
            message: format!("method '{method}' not found"),
        }),
    }
}
