//! The devnet's JSON-RPC methods: the Lotus names, parameter orders, permissions and
//! error behaviour (code 1 with a Go-like message for a method's failure, -32601 for an
//! unknown method, -32602 for a wrong parameter count).

use chain_client::lotus_json::{self, to_value};
use chain_client::rpc::{METHOD_ERROR_CODE, METHOD_NOT_FOUND_CODE};
use chain_client::types::{
    LotusMessage, MessageLookup, MessageSendSpec, NetworkParams, NodeVersion, SectorLocation,
    Signature, SignedMessage, TipSet, TipSetKey,
};
use cid::Cid;
use fvm_shared::address::Address;
use fvm_shared::bigint::BigInt;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::chain::{Chain, blake2b};
use crate::world::{MinerActor, initial_pledge, pre_commit_deposit};
use crate::{DevnetConfig, State};
use chain_client::auth::Permission;

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
        "MpoolPushMessage" => Permission::Sign,
        "MpoolPush" => Permission::Write,
        "MpoolGetNonce"
        | "GasEstimateMessageGas"
        | "ChainGetMessage"
        | "StateSearchMsg"
        | "StateWaitMsg"
        | "StateSectorPreCommitInfo"
        | "StateSectorGetInfo"
        | "StateMinerInfo"
        | "StateMinerSectorAllocated"
        | "StateMinerAvailableBalance"
        | "StateSectorPartition"
        | "StateMinerPreCommitDepositForPower"
        | "StateMinerInitialPledgeForSector"
        | "StateLookupID"
        | "StateMinerSectors"
        | "StateMinerActiveSectors"
        | "StateMinerProvingDeadline"
        | "StateMinerDeadlines"
        | "StateMinerPartitions"
        | "StateMinerFaults"
        | "StateMinerRecoveries"
        | "MinerGetBaseInfo"
        | "ChainGetFinalizedTipSet"
        | "ChainGetParentReceipts"
        | "ChainReadObj"
        | "StateMinerPower"
        | "StateMinerSectorCount"
        | "StateMinerCreationDeposit"
        | "StateAccountKey"
        | "StateGetActor"
        | "WalletBalance"
        | "StateSectorExpiration"
        | "StateMinerInitialPledgeCollateral"
        | "StateGetAllocationIdForPendingDeal"
        | "StateGetAllocation"
        | "StateMarketStorageDeal"
        | "GasEstimateFeeCap"
        | "GasEstimateGasPremium"
        | "StateCall"
        | "StateMinerAllocated" => Permission::Read,
        "WalletHas" => Permission::Write,
        "WalletSign" | "WalletSignMessage" => Permission::Sign,
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

fn address_parameter(method: &str, params: &[Value], index: usize) -> Result<Address, MethodError> {
    lotus_json::address::deserialize(params.get(index).cloned().unwrap_or(Value::Null)).map_err(
        |error| MethodError {
            code: -32700,
            message: format!("unmarshaling params for '{method}' (param {index}): {error}"),
        },
    )
}

fn cid_parameter(method: &str, params: &[Value], index: usize) -> Result<Cid, MethodError> {
    lotus_json::cid::deserialize(params.get(index).cloned().unwrap_or(Value::Null)).map_err(
        |error| MethodError {
            code: -32700,
            message: format!("unmarshaling params for '{method}' (param {index}): {error}"),
        },
    )
}

/// The miner actor at `address` in the state read at `key`.
pub(crate) fn miner_at<'a>(
    chain: &'a Chain,
    address: &Address,
    key: &TipSetKey,
) -> Result<&'a MinerActor, MethodError> {
    let state = chain
        .state(key)
        .ok_or_else(|| MethodError::failed(format!("loading tipset {key}: not found")))?;
    address
        .id()
        .ok()
        .and_then(|id| state.miners.get(&id))
        .ok_or_else(|| {
            MethodError::failed(format!(
                "actor not found: {address} is not a miner on this devnet"
            ))
        })
}

/// Fills in gas as the node would (fixed values: the devnet charges no fees).
fn with_gas(mut message: Message) -> Message {
    if message.gas_limit == 0 {
        message.gas_limit = 10_000_000;
    }
    if message.gas_fee_cap.is_zero() {
        message.gas_fee_cap = TokenAmount::from_atto(100_000);
    }
    if message.gas_premium.is_zero() {
        message.gas_premium = TokenAmount::from_atto(1_000);
    }
    message
}

/// The lookup of a message executed on the chain ending at `key`, if it was.
pub fn lookup(
    chain: &Chain,
    message: &Cid,
    key: &TipSetKey,
) -> Result<Option<MessageLookup>, MethodError> {
    if chain.message(message).is_none() {
        return Err(MethodError::failed(format!(
            "failed to load message: {message} not found"
        )));
    }
    Ok(chain.search(message, key).map(|executed| MessageLookup {
        message: *message,
        receipt: executed.receipt,
        return_dec: Value::Null,
        tip_set: executed.tipset.key(),
        height: executed.tipset.height,
    }))
}

/// The bitfield of a set of sector numbers.
fn bitfield_of<'a>(sectors: impl IntoIterator<Item = &'a u64>) -> fvm_ipld_bitfield::BitField {
    // Sector numbers are far below the bitfield's limit, so this cannot fail.
    fvm_ipld_bitfield::BitField::try_from_bits(sectors.into_iter().copied()).unwrap_or_default()
}

/// A CID naming something the devnet does not store.
fn label_cid(label: &str) -> Cid {
    use multihash_codetable::MultihashDigest as _;
    Cid::new_v1(
        0x55,
        multihash_codetable::Code::Blake2b256.digest(label.as_bytes()),
    )
}

/// The key (BLS) address the devnet gives an account: derived from its id, stable.
pub fn account_key(address: &Address) -> Address {
    if address.id().is_err() {
        return *address;
    }
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(&blake2b(&[b"account key", &address.to_bytes()]));
    key[32..].copy_from_slice(&blake2b(&[b"account key 2", &address.to_bytes()])[..16]);
    Address::new_bls(&key).unwrap_or(*address)
}

/// A BLS-shaped signature over `parts`: the devnet's wallet signs for its own accounts
/// and checks no signatures.
fn devnet_signature(parts: &[&[u8]]) -> Signature {
    let mut data = Vec::with_capacity(96);
    for label in [b"signature 1", b"signature 2", b"signature 3"] {
        let mut with_label: Vec<&[u8]> = vec![label];
        with_label.extend_from_slice(parts);
        data.extend_from_slice(&blake2b(&with_label));
    }
    Signature {
        signature_type: Signature::BLS,
        data,
    }
}

fn empty_message() -> Message {
    Message {
        version: 0,
        from: Address::new_id(0),
        to: Address::new_id(0),
        sequence: 0,
        value: TokenAmount::default(),
        method_num: 0,
        params: Default::default(),
        gas_limit: 0,
        gas_fee_cap: TokenAmount::default(),
        gas_premium: TokenAmount::default(),
    }
}

/// The winning PoSt proof of a sector size.
pub(crate) fn winning_post_proof(sector_size: u64) -> Option<proofs::api::RegisteredPoStProof> {
    use proofs::api::RegisteredPoStProof::*;
    Some(match sector_size {
        2048 => StackedDrgWinning2KiBV1,
        8_388_608 => StackedDrgWinning8MiBV1,
        536_870_912 => StackedDrgWinning512MiBV1,
        34_359_738_368 => StackedDrgWinning32GiBV1,
        68_719_476_736 => StackedDrgWinning64GiBV1,
        _ => return None,
    })
}

/// The winning PoSt challenge randomness of `miner_id` at `round`, drawn as a miner
/// draws it locally (domain 3, the round's beacon, the miner's address), made a field
/// element as the proofs need it.
pub fn winning_randomness(beacon_data: &[u8], round: ChainEpoch, miner_id: u64) -> [u8; 32] {
    let mut randomness = Chain::draw(
        3,
        &blake2b(&[beacon_data]),
        round,
        &crate::world::miner_entropy(miner_id),
    );
    randomness[31] &= 0x3f;
    randomness
}

/// What a miner needs to mine `round`: its challenged sectors (chosen by the proofs'
/// own sector challenge from the round's beacon, as Lotus does) and the beacon entries.
/// `None` when it has no provable sector.
pub(crate) fn mining_base_info(
    chain: &Chain,
    miner: &MinerActor,
    address: &Address,
    round: ChainEpoch,
) -> Result<Option<chain_client::types::MiningBaseInfo>, MethodError> {
    let provable: Vec<&chain_client::types::SectorOnChainInfo> = miner
        .sectors
        .values()
        .filter(|sector| !miner.faults.contains(&sector.sector_number))
        .collect();
    let Ok(miner_id) = address.id() else {
        return Ok(None);
    };
    if provable.is_empty() {
        return Ok(None);
    }
    let beacon = chain.beacon_entry(round);
    let randomness = winning_randomness(&beacon.data, round, miner_id);
    let proof = winning_post_proof(miner.info.sector_size).ok_or_else(|| {
        MethodError::failed(format!(
            "no winning PoSt for sectors of {} bytes",
            miner.info.sector_size
        ))
    })?;
    let challenged = proofs::api::post::generate_winning_post_sector_challenge(
        proof,
        &randomness,
        provable.len() as u64,
        proofs::tasks::prover_id_of(miner_id),
    )
    .map_err(|error| MethodError::failed(format!("choose the challenged sectors: {error:#}")))?;
    let sectors = challenged
        .iter()
        .filter_map(|index| provable.get(*index as usize))
        .map(|sector| chain_client::types::ExtendedSectorInfo {
            seal_proof: sector.seal_proof,
            sector_number: sector.sector_number,
            sector_key: sector.sector_key_cid,
            sealed_cid: sector.sealed_cid,
        })
        .collect();
    let power = BigInt::from(miner.info.sector_size) * BigInt::from(provable.len());
    Ok(Some(chain_client::types::MiningBaseInfo {
        miner_power: power.clone(),
        network_power: power,
        sectors,
        worker_key: miner.info.worker,
        sector_size: miner.info.sector_size,
        prev_beacon_entry: chain.beacon_entry(round - 1),
        beacon_entries: vec![beacon],
        eligible_for_mining: true,
    }))
}

/// Signs and queues a message as `MpoolPushMessage` does.
fn push_message(state: &State, method: &str, params: &[Value]) -> Result<Value, MethodError> {
    expect_count(method, params, 2)?;
    let message: LotusMessage = parameter(method, params, 0)?;
    let spec: Option<MessageSendSpec> = parameter(method, params, 1)?;
    let message = message.0;
    if message.sequence != 0 {
        return Err(MethodError::failed(format!(
            "MpoolPushMessage expects message nonce to be 0, was {}",
            message.sequence
        )));
    }
    let uuid = spec
        .map(|spec| spec.msg_uuid)
        .filter(|uuid| !uuid.is_empty());
    let mut wallet = state.wallet();
    if let Some(signed) = uuid.as_ref().and_then(|uuid| wallet.signed.get(uuid)) {
        return json(signed);
    }
    let nonce = wallet.nonces.entry(message.from.to_string()).or_insert(0);
    let mut message = with_gas(message);
    message.sequence = *nonce;
    *nonce += 1;
    let cid = chain_client::message::message_cid(&message);
    let signature = devnet_signature(&[&cid.to_bytes()]);
    let signed = SignedMessage { message, signature };
    if let Some(uuid) = uuid {
        wallet.signed.insert(uuid, signed.clone());
    }
    drop(wallet);
    state.admit(signed.clone());
    json(&signed)
}

/// Runs a method (other than `ChainNotify` and `StateWaitMsg`, which the server serves
/// itself) with the caller's `permissions`.
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
    let name = method.trim_start_matches("Filecoin.");
    if name == "MpoolPushMessage" {
        return push_message(state, method, params);
    }
    let chain = state.chain();
    match name {
        "MpoolPush" => {
            expect_count(method, params, 1)?;
            let signed: SignedMessage = parameter(method, params, 0)?;
            let cid = signed.cid();
            drop(chain);
            state.admit(signed);
            Ok(to_value(&cid, lotus_json::cid::serialize))
        }
        "MpoolGetNonce" => {
            expect_count(method, params, 1)?;
            let sender = address_parameter(method, params, 0)?;
            drop(chain);
            json(
                &state
                    .wallet()
                    .nonces
                    .get(&sender.to_string())
                    .copied()
                    .unwrap_or(0),
            )
        }
        "GasEstimateMessageGas" => {
            expect_count(method, params, 3)?;
            let message: LotusMessage = parameter(method, params, 0)?;
            json(&LotusMessage(with_gas(message.0)))
        }
        "ChainGetMessage" => {
            expect_count(method, params, 1)?;
            let cid = cid_parameter(method, params, 0)?;
            let signed = chain.message(&cid).ok_or_else(|| {
                MethodError::failed(format!("failed to load message: {cid} not found"))
            })?;
            json(&LotusMessage(signed.message))
        }
        "StateSearchMsg" => {
            expect_count(method, params, 4)?;
            let key: TipSetKey = parameter(method, params, 0)?;
            let cid = cid_parameter(method, params, 1)?;
            json(&lookup(&chain, &cid, &key)?)
        }
        "StateSectorPreCommitInfo"
        | "StateSectorGetInfo"
        | "StateMinerSectorAllocated"
        | "StateSectorPartition" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let sector: u64 = parameter(method, params, 1)?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            match name {
                "StateSectorPreCommitInfo" => json(&miner.precommits.get(&sector)),
                "StateSectorGetInfo" => json(&miner.sectors.get(&sector)),
                "StateMinerSectorAllocated" => json(&miner.allocated.contains(&sector)),
                _ => {
                    let (deadline, partition) = miner.location(sector).ok_or_else(|| {
                        MethodError::failed(format!("sector {sector} not found in any partition"))
                    })?;
                    json(&SectorLocation {
                        deadline,
                        partition,
                    })
                }
            }
        }
        "StateMinerInfo" | "StateMinerAvailableBalance" | "StateMinerActiveSectors" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let miner = miner_at(&chain, &address, &key)?;
            match name {
                "StateMinerInfo" => json(&miner.info),
                "StateMinerAvailableBalance" => Ok(to_value(
                    &miner.available_balance(),
                    lotus_json::token_amount::serialize,
                )),
                _ => json(
                    &miner
                        .sectors
                        .values()
                        .filter(|sector| !miner.faults.contains(&sector.sector_number))
                        .collect::<Vec<_>>(),
                ),
            }
        }
        "StateMinerProvingDeadline"
        | "StateMinerDeadlines"
        | "StateMinerFaults"
        | "StateMinerRecoveries" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let miner = miner_at(&chain, &address, &key)?;
            let bits = |sectors: &std::collections::BTreeSet<u64>| {
                to_value(&bitfield_of(sectors), lotus_json::bitfield::serialize)
            };
            match name {
                "StateMinerProvingDeadline" => {
                    let epoch = chain.tipset(&key).map_or(0, |tipset| tipset.height);
                    let policy = chain
                        .state(&key)
                        .map(|state| state.policy)
                        .unwrap_or_else(|| crate::world::ProvingPolicy::new(2880));
                    json(&miner.deadline_info(&policy, epoch))
                }
                "StateMinerDeadlines" => {
                    let deadlines: Vec<chain_client::types::Deadline> = (0..miner.deadlines.len()
                        as u64)
                        .map(|index| chain_client::types::Deadline {
                            post_submissions: bitfield_of(
                                miner.post_submissions.get(&index).into_iter().flatten(),
                            ),
                            disputable_proof_count: 0,
                            daily_fee: TokenAmount::default(),
                        })
                        .collect();
                    json(&deadlines)
                }
                "StateMinerFaults" => Ok(bits(&miner.faults)),
                _ => Ok(bits(&miner.recoveries)),
            }
        }
        "StateMinerAllocated" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let miner = miner_at(&chain, &address, &key)?;
            Ok(to_value(
                &bitfield_of(&miner.allocated),
                lotus_json::bitfield::serialize,
            ))
        }
        "ChainGetFinalizedTipSet" => {
            expect_count(method, params, 0)?;
            let head = chain.head().height;
            json(
                &chain
                    .tipset_at_or_before(head - 900, &TipSetKey::head())
                    .cloned()
                    .unwrap_or_else(|| chain.genesis_tipset().clone()),
            )
        }
        "ChainGetParentReceipts" => {
            expect_count(method, params, 1)?;
            let block = cid_parameter(method, params, 0)?;
            json(&chain.parent_receipts(&block).ok_or_else(|| {
                MethodError::failed(format!("failed to load block {block}: not found"))
            })?)
        }
        "ChainReadObj" => {
            expect_count(method, params, 1)?;
            let object = cid_parameter(method, params, 0)?;
            Err(MethodError::failed(format!(
                "blockstore: {object} not found (the devnet keeps no IPLD store)"
            )))
        }
        "StateMinerPower" | "StateMinerSectorCount" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let miner = miner_at(&chain, &address, &key)?;
            let live = miner.sectors.len() as u64;
            let faulty = miner
                .sectors
                .keys()
                .filter(|sector| miner.faults.contains(sector))
                .count() as u64;
            if name == "StateMinerSectorCount" {
                return json(&chain_client::types::MinerSectorCount {
                    live,
                    active: live - faulty,
                    faulty,
                });
            }
            let power = BigInt::from(miner.info.sector_size) * BigInt::from(live - faulty);
            let claim = chain_client::types::PowerClaim {
                raw_byte_power: power.clone(),
                quality_adj_power: power,
            };
            json(&chain_client::types::MinerPower {
                miner_power: claim.clone(),
                total_power: claim,
                has_min_power: true,
            })
        }
        "StateMinerCreationDeposit" => {
            expect_count(method, params, 1)?;
            Ok(to_value(
                &TokenAmount::default(),
                lotus_json::token_amount::serialize,
            ))
        }
        "StateAccountKey" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            Ok(to_value(
                &account_key(&address),
                lotus_json::address::serialize,
            ))
        }
        "StateGetActor" | "WalletBalance" => {
            let address = address_parameter(method, params, 0)?;
            let key = if name == "WalletBalance" {
                expect_count(method, params, 1)?;
                TipSetKey::head()
            } else {
                expect_count(method, params, 2)?;
                parameter(method, params, 1)?
            };
            let miner = chain
                .state(&key)
                .and_then(|state| address.id().ok().and_then(|id| state.miners.get(&id)));
            let balance = miner.map_or_else(
                || TokenAmount::from_whole(1_000_000),
                |miner| miner.balance.clone(),
            );
            if name == "WalletBalance" {
                return Ok(to_value(&balance, lotus_json::token_amount::serialize));
            }
            let code = if miner.is_some() {
                "fil/18/storageminer"
            } else {
                "fil/18/account"
            };
            drop(chain);
            let nonce = state
                .wallet()
                .nonces
                .get(&address.to_string())
                .copied()
                .unwrap_or(0);
            json(&chain_client::types::Actor {
                code: label_cid(code),
                head: label_cid(&format!("{code}/{address}")),
                nonce,
                balance,
                delegated_address: None,
            })
        }
        "StateSectorExpiration" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let sector: u64 = parameter(method, params, 1)?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            let on_chain = miner
                .sectors
                .get(&sector)
                .ok_or_else(|| MethodError::failed(format!("sector {sector} not found")))?;
            json(&chain_client::types::SectorExpiration {
                on_time: on_chain.expiration,
                early: 0,
            })
        }
        "StateMinerInitialPledgeCollateral" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            Ok(to_value(
                &initial_pledge(miner.info.sector_size),
                lotus_json::token_amount::serialize,
            ))
        }
        "StateGetAllocationIdForPendingDeal" => {
            expect_count(method, params, 2)?;
            // The devnet has no market: no deal has an allocation (Lotus answers 0).
            json(&0u64)
        }
        "StateGetAllocation" => {
            expect_count(method, params, 3)?;
            Ok(Value::Null)
        }
        "StateMarketStorageDeal" => {
            expect_count(method, params, 2)?;
            let deal: u64 = parameter(method, params, 0)?;
            Err(MethodError::failed(format!(
                "deal {deal} not found (the devnet has no market)"
            )))
        }
        "GasEstimateFeeCap" => {
            expect_count(method, params, 3)?;
            Ok(to_value(
                &with_gas(empty_message()).gas_fee_cap,
                lotus_json::token_amount::serialize,
            ))
        }
        "GasEstimateGasPremium" => {
            expect_count(method, params, 4)?;
            Ok(to_value(
                &with_gas(empty_message()).gas_premium,
                lotus_json::token_amount::serialize,
            ))
        }
        "StateCall" => {
            expect_count(method, params, 2)?;
            let message: LotusMessage = parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 1)?;
            let receipt = chain
                .call(&message.0, &key, &state.config.proofs)
                .ok_or_else(|| MethodError::failed(format!("loading tipset {key}: not found")))?;
            let cid = chain_client::message::message_cid(&message.0);
            let error = if receipt.exit_code == 0 {
                String::new()
            } else {
                format!("message failed with exit code {}", receipt.exit_code)
            };
            json(&chain_client::types::InvocResult {
                msg_cid: cid,
                msg: message,
                msg_rct: Some(receipt),
                gas_cost: chain_client::types::GasCost {
                    message: cid,
                    gas_used: BigInt::from(0),
                    base_fee_burn: TokenAmount::default(),
                    over_estimation_burn: TokenAmount::default(),
                    miner_penalty: TokenAmount::default(),
                    miner_tip: TokenAmount::default(),
                    refund: TokenAmount::default(),
                    total_cost: TokenAmount::default(),
                },
                execution_trace: Value::Null,
                error,
                duration: 0,
            })
        }
        "WalletHas" => {
            expect_count(method, params, 1)?;
            let address = address_parameter(method, params, 0)?;
            let worker = Address::new_id(state.config.worker_id);
            json(&(address == worker || address == account_key(&worker)))
        }
        "WalletSign" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            let data = lotus_json::bytes::deserialize(params[1].clone())
                .map_err(|error| MethodError::failed(format!("the data is not base64: {error}")))?;
            json(&devnet_signature(&[&address.to_bytes(), &data]))
        }
        "WalletSignMessage" => {
            expect_count(method, params, 2)?;
            let message: LotusMessage = parameter(method, params, 1)?;
            let cid = chain_client::message::message_cid(&message.0);
            json(&SignedMessage {
                message: message.0,
                signature: devnet_signature(&[&cid.to_bytes()]),
            })
        }
        "MinerGetBaseInfo" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let round: ChainEpoch = parameter(method, params, 1)?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            json(&mining_base_info(&chain, miner, &address, round)?)
        }
        "StateMinerPartitions" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let deadline: u64 = parameter(method, params, 1)?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            let partitions: Vec<chain_client::types::Partition> = miner
                .deadlines
                .get(deadline as usize)
                .into_iter()
                .flatten()
                .map(|sectors| {
                    let faulty: std::collections::BTreeSet<u64> =
                        sectors.intersection(&miner.faults).copied().collect();
                    chain_client::types::Partition {
                        all_sectors: bitfield_of(sectors),
                        faulty_sectors: bitfield_of(&faulty),
                        recovering_sectors: bitfield_of(sectors.intersection(&miner.recoveries)),
                        live_sectors: bitfield_of(sectors),
                        active_sectors: bitfield_of(sectors.difference(&faulty)),
                    }
                })
                .collect();
            json(&partitions)
        }
        "StateMinerSectors" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let filter = lotus_json::bitfield::optional::deserialize(params[1].clone()).map_err(
                |error| MethodError::failed(format!("the filter is not a bitfield: {error}")),
            )?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            let sectors: Vec<_> = miner
                .sectors
                .values()
                .filter(|sector| {
                    filter
                        .as_ref()
                        .is_none_or(|bits| bits.get(sector.sector_number))
                })
                .collect();
            json(&sectors)
        }
        "StateMinerPreCommitDepositForPower" => {
            expect_count(method, params, 3)?;
            let address = address_parameter(method, params, 0)?;
            let key: TipSetKey = parameter(method, params, 2)?;
            let miner = miner_at(&chain, &address, &key)?;
            Ok(to_value(
                &pre_commit_deposit(miner.info.sector_size),
                lotus_json::token_amount::serialize,
            ))
        }
        "StateMinerInitialPledgeForSector" => {
            expect_count(method, params, 4)?;
            let sector_size: u64 = parameter(method, params, 1)?;
            Ok(to_value(
                &initial_pledge(sector_size),
                lotus_json::token_amount::serialize,
            ))
        }
        "StateLookupID" => {
            expect_count(method, params, 2)?;
            let address = address_parameter(method, params, 0)?;
            if address.id().is_ok() {
                Ok(to_value(&address, lotus_json::address::serialize))
            } else {
                Err(MethodError {
                    code: chain_client::rpc::ACTOR_NOT_FOUND_CODE,
                    message: "actor not found".to_owned(),
                })
            }
        }
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
        "StateWaitMsg" => Err(MethodError::failed(
            "StateWaitMsg is served by the server loop",
        )),
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
