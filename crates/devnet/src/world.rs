//! The devnet's state and how messages change it: a miner-actor model good enough for
//! sealing and proving (sector-number allocation, precommits with deposits, prove-commit
//! checked with the seal verifier, sectors placed in deadlines' partitions, window PoSt
//! per deadline, faults when a deadline is missed, recoveries and terminations).
//!
//! Pure: [`WorldState::execute`] takes a message, the epoch and what it needs from the
//! chain (randomness, a seal verifier) and returns a receipt; nothing reads a clock.
//! The rules mirror the miner actor's checks that a sealer can trip over, with the same
//! exit codes, so a sealer that works here fails there only for reasons of money or gas.

use std::collections::{BTreeMap, BTreeSet};

use chain_client::types::{
    BeneficiaryTerm, MessageReceipt, MinerInfo, SectorOnChainInfo, SectorPreCommitInfo,
    SectorPreCommitOnChainInfo,
};
use cid::Cid;
use fil_actor_miner_state::v18 as miner;
use fil_actors_shared::v18::{BatchReturn, BatchReturnGen};
use fvm_ipld_encoding::RawBytes;
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::commcid::{cid_to_data_commitment_v1, cid_to_replica_commitment_v1};
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::message::Message;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof};
use serde::{Deserialize, Serialize};

/// Deadlines per proving period, as on mainnet.
pub const DEADLINES: u64 = 48;
/// How far back a seal's ticket may be drawn (mainnet: 3780 epochs).
pub const MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK: ChainEpoch = 3780;
/// The domain of the PoRep ticket.
pub const SEAL_RANDOMNESS: i64 = 5;
/// The domain of the PoRep seed.
pub const INTERACTIVE_SEAL_CHALLENGE_SEED: i64 = 6;
/// The domain of the window PoSt challenge.
pub const WINDOWED_POST_CHALLENGE_SEED: i64 = 4;
/// The domain of a window PoSt's commitment to the chain.
pub const POST_CHAIN_COMMIT: i64 = 9;

/// The geometry of proving periods: mainnet's for a 2880-epoch period, scaled down for
/// the short periods tests use (also in the number of deadlines, for tests that must
/// walk through whole periods quickly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvingPolicy {
    /// Deadlines per proving period (mainnet: 48).
    #[serde(default = "mainnet_deadlines")]
    pub deadlines: u64,
    /// Epochs per proving period.
    pub proving_period: ChainEpoch,
    /// Epochs per deadline.
    pub challenge_window: ChainEpoch,
    /// How many epochs before a deadline opens its challenge is drawn.
    pub challenge_lookback: ChainEpoch,
    /// How many epochs before a deadline opens faults must be declared.
    pub fault_declaration_cutoff: ChainEpoch,
}

fn mainnet_deadlines() -> u64 {
    DEADLINES
}

impl ProvingPolicy {
    /// The policy of a proving period of `proving_period` epochs (48 deadlines).
    pub fn new(proving_period: ChainEpoch) -> ProvingPolicy {
        ProvingPolicy::with_deadlines(proving_period, DEADLINES)
    }

    /// The policy of a proving period of `proving_period` epochs in `deadlines`
    /// deadlines (at least one).
    pub fn with_deadlines(proving_period: ChainEpoch, deadlines: u64) -> ProvingPolicy {
        let deadlines = deadlines.max(1);
        let challenge_window = (proving_period / deadlines as ChainEpoch).max(1);
        let challenge_lookback = (challenge_window / 3).clamp(1, 20);
        ProvingPolicy {
            deadlines,
            proving_period: challenge_window * deadlines as ChainEpoch,
            challenge_window,
            challenge_lookback,
            fault_declaration_cutoff: (challenge_window + challenge_lookback).min(70),
        }
    }

    /// Where a miner whose periods start at `offset` stands at `epoch`.
    pub fn deadline_info(
        &self,
        offset: ChainEpoch,
        epoch: ChainEpoch,
    ) -> chain_client::types::DeadlineInfo {
        let period_start =
            offset + (epoch - offset).div_euclid(self.proving_period) * self.proving_period;
        let index = ((epoch - period_start) / self.challenge_window) as u64;
        let open = period_start + index as ChainEpoch * self.challenge_window;
        chain_client::types::DeadlineInfo {
            current_epoch: epoch,
            period_start,
            index,
            open,
            close: open + self.challenge_window,
            challenge: open - self.challenge_lookback,
            fault_cutoff: open - self.fault_declaration_cutoff,
            wpost_period_deadlines: self.deadlines,
            wpost_proving_period: self.proving_period,
            wpost_challenge_window: self.challenge_window,
            wpost_challenge_lookback: self.challenge_lookback,
            fault_declaration_cutoff: self.fault_declaration_cutoff,
        }
    }
}

/// What the chain knows that executing a message needs.
pub trait ExecutionContext {
    /// Ticket randomness at `epoch` with `entropy`, on the chain being executed.
    fn ticket_randomness(&self, domain: i64, epoch: ChainEpoch, entropy: &[u8])
    -> Option<[u8; 32]>;
    /// Beacon randomness at `epoch` with `entropy`.
    fn beacon_randomness(&self, domain: i64, epoch: ChainEpoch, entropy: &[u8])
    -> Option<[u8; 32]>;
    /// The devnet's seal verifier.
    fn verify_seal(&self, seal: &proofs::SealToVerify) -> bool;
    /// The devnet's window PoSt verifier.
    fn verify_window_post(
        &self,
        task: &proofs::tasks::PostTask,
        output: &proofs::tasks::PostOutput,
    ) -> bool;
}

/// A miner actor, as much of it as sealing and proving touch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerActor {
    /// Its facts (`StateMinerInfo`).
    pub info: MinerInfo,
    /// Its balance.
    #[serde(with = "chain_client::lotus_json::token_amount")]
    pub balance: TokenAmount,
    /// Deposits and pledges locked.
    #[serde(with = "chain_client::lotus_json::token_amount")]
    pub locked: TokenAmount,
    /// Every sector number ever allocated.
    pub allocated: BTreeSet<u64>,
    /// Sectors precommitted and not yet proven.
    pub precommits: BTreeMap<u64, SectorPreCommitOnChainInfo>,
    /// Proven sectors.
    pub sectors: BTreeMap<u64, SectorOnChainInfo>,
    /// The epoch its proving periods are counted from.
    pub proving_period_start: ChainEpoch,
    /// For each of the 48 deadlines, its partitions' sectors.
    pub deadlines: Vec<Vec<BTreeSet<u64>>>,
    /// Faulty sectors.
    pub faults: BTreeSet<u64>,
    /// Sectors declared recovering.
    pub recoveries: BTreeSet<u64>,
    /// The partitions of each deadline proven in the current proving period.
    #[serde(default)]
    pub post_submissions: BTreeMap<u64, BTreeSet<u64>>,
}

impl MinerActor {
    /// The balance not locked.
    pub fn available_balance(&self) -> TokenAmount {
        let available = &self.balance - &self.locked;
        if available.is_negative() {
            TokenAmount::default()
        } else {
            available
        }
    }

    /// Where its proving period stands at `epoch`.
    pub fn deadline_info(
        &self,
        policy: &ProvingPolicy,
        epoch: ChainEpoch,
    ) -> chain_client::types::DeadlineInfo {
        policy.deadline_info(self.proving_period_start, epoch)
    }

    /// The deadline and partition of a proven sector.
    pub fn location(&self, sector: u64) -> Option<(u64, u64)> {
        self.deadlines
            .iter()
            .enumerate()
            .find_map(|(deadline, partitions)| {
                partitions
                    .iter()
                    .position(|partition| partition.contains(&sector))
                    .map(|partition| (deadline as u64, partition as u64))
            })
    }
}

/// A sector the miner holds from genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisSector {
    /// Its number.
    pub number: u64,
    /// Its replica commitment (CommR).
    pub comm_r: [u8; 32],
    /// The deadline it is proven in; it joins that deadline's last partition, or a new
    /// one when that is full.
    pub deadline: u64,
}

/// Everything the devnet's messages change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldState {
    /// Miner actors by actor id.
    pub miners: BTreeMap<u64, MinerActor>,
    /// The proving-period geometry.
    pub policy: ProvingPolicy,
}

impl Default for WorldState {
    fn default() -> Self {
        WorldState {
            miners: BTreeMap::new(),
            policy: ProvingPolicy::new(2880),
        }
    }
}

/// The deposit a precommit locks: a devnet rule (one attoFIL per byte of sector), small
/// enough that the genesis balance pays for thousands of sectors.
pub fn pre_commit_deposit(sector_size: u64) -> TokenAmount {
    TokenAmount::from_atto(sector_size)
}

/// The pledge a proven sector locks: twice its deposit, as a devnet rule.
pub fn initial_pledge(sector_size: u64) -> TokenAmount {
    TokenAmount::from_atto(2 * u128::from(sector_size))
}

fn receipt(exit_code: ExitCode, value: Vec<u8>) -> MessageReceipt {
    MessageReceipt {
        exit_code: i64::from(exit_code.value()),
        r#return: value,
        gas_used: 1_000_000,
        events_root: None,
    }
}

/// A receipt with an exit code and no return value.
fn bare_receipt(exit_code: ExitCode) -> MessageReceipt {
    receipt(exit_code, Vec::new())
}

fn batch_receipt(batch: &BatchReturn) -> MessageReceipt {
    match RawBytes::serialize(batch) {
        Ok(bytes) => receipt(ExitCode::OK, bytes.to_vec()),
        Err(_) => bare_receipt(ExitCode::USR_SERIALIZATION),
    }
}

/// The entropy the miner actor draws randomness with: the CBOR of its address.
pub fn miner_entropy(miner_id: u64) -> Vec<u8> {
    fvm_ipld_encoding::to_vec(&Address::new_id(miner_id)).unwrap_or_default()
}

impl WorldState {
    /// A state with one miner, `miner_id`, whose worker is `worker_id`, for sectors of
    /// `seal_proof`, with `balance` to pay deposits from.
    pub fn with_miner(
        miner_id: u64,
        worker_id: u64,
        seal_proof: RegisteredSealProof,
        balance: TokenAmount,
        policy: ProvingPolicy,
    ) -> WorldState {
        let sector_size = seal_proof.sector_size().map_or(2048, |size| size as u64);
        let window_post_proof_type = seal_proof
            .registered_window_post_proof()
            .unwrap_or(RegisteredPoStProof::StackedDRGWindow2KiBV1P1);
        let partition_sectors = window_post_proof_type
            .window_post_partition_sectors()
            .unwrap_or(2);
        let info = MinerInfo {
            owner: Address::new_id(worker_id),
            worker: Address::new_id(worker_id),
            new_worker: None,
            control_addresses: Vec::new(),
            worker_change_epoch: -1,
            peer_id: None,
            multiaddrs: Vec::new(),
            window_post_proof_type,
            sector_size,
            window_post_partition_sectors: partition_sectors,
            consensus_fault_elapsed: -1,
            pending_owner_address: None,
            beneficiary: Address::new_id(worker_id),
            beneficiary_term: BeneficiaryTerm {
                quota: TokenAmount::default(),
                used_quota: TokenAmount::default(),
                expiration: 0,
            },
            pending_beneficiary_term: None,
        };
        let actor = MinerActor {
            info,
            balance,
            locked: TokenAmount::default(),
            allocated: BTreeSet::new(),
            precommits: BTreeMap::new(),
            sectors: BTreeMap::new(),
            proving_period_start: (miner_id as ChainEpoch) % policy.proving_period,
            deadlines: vec![Vec::new(); policy.deadlines as usize],
            faults: BTreeSet::new(),
            recoveries: BTreeSet::new(),
            post_submissions: BTreeMap::new(),
        };
        WorldState {
            miners: BTreeMap::from([(miner_id, actor)]),
            policy,
        }
    }

    /// Executes `message` at `epoch` and returns its receipt. A failed message changes
    /// nothing (its value is not transferred either).
    pub fn execute(
        &mut self,
        message: &Message,
        epoch: ChainEpoch,
        pre_commit_challenge_delay: ChainEpoch,
        context: &dyn ExecutionContext,
    ) -> MessageReceipt {
        let Ok(miner_id) = message.to.id() else {
            // Sends to non-miner actors only move funds, which the devnet does not track.
            return bare_receipt(ExitCode::OK);
        };
        let Some(actor) = self.miners.get(&miner_id) else {
            return bare_receipt(ExitCode::SYS_INVALID_RECEIVER);
        };
        let mut actor = actor.clone();
        let policy = self.policy;
        let outcome = match message.method_num {
            0 => Ok(bare_receipt(ExitCode::OK)),
            5 => submit_windowed_post(&mut actor, miner_id, &policy, message, epoch, context),
            9 => terminate_sectors(&mut actor, message),
            11 => declare_faults_recovered(&mut actor, message),
            28 => pre_commit_sector_batch2(&mut actor, message, epoch),
            34 => prove_commit_sectors3(
                &mut actor,
                miner_id,
                message,
                epoch,
                pre_commit_challenge_delay,
                context,
            ),
            _ => Err(ExitCode::USR_UNHANDLED_MESSAGE),
        };
        match outcome {
            Ok(receipt) => {
                self.miners.insert(miner_id, actor);
                receipt
            }
            Err(code) => bare_receipt(code),
        }
    }
}

impl WorldState {
    /// Adds a proven sector of `seal_proof` to `miner_id` before the chain starts.
    pub fn add_genesis_sector(
        &mut self,
        miner_id: u64,
        seal_proof: RegisteredSealProof,
        sector: &GenesisSector,
    ) -> Result<(), String> {
        let actor = self
            .miners
            .get_mut(&miner_id)
            .ok_or_else(|| format!("genesis sector {}: no miner {miner_id}", sector.number))?;
        if sector.deadline >= actor.deadlines.len() as u64 {
            return Err(format!(
                "genesis sector {}: deadline {} is not below {}",
                sector.number,
                sector.deadline,
                actor.deadlines.len()
            ));
        }
        if !actor.allocated.insert(sector.number) {
            return Err(format!("genesis sector {} is listed twice", sector.number));
        }
        let sealed_cid = fvm_shared::commcid::replica_commitment_v1_to_cid(&sector.comm_r)
            .map_err(|error| format!("genesis sector {}: {error}", sector.number))?;
        let partition_size = actor.info.window_post_partition_sectors.max(1) as usize;
        let partitions = &mut actor.deadlines[sector.deadline as usize];
        match partitions.last_mut() {
            Some(last) if last.len() < partition_size => {
                last.insert(sector.number);
            }
            _ => partitions.push(BTreeSet::from([sector.number])),
        }
        actor.sectors.insert(
            sector.number,
            SectorOnChainInfo {
                sector_number: sector.number,
                seal_proof,
                sealed_cid,
                activation: 0,
                expiration: i64::MAX / 2,
                deal_weight: 0.into(),
                verified_deal_weight: 0.into(),
                initial_pledge: TokenAmount::default(),
                expected_day_reward: TokenAmount::default(),
                expected_storage_pledge: TokenAmount::default(),
                power_base_epoch: 0,
                replaced_day_reward: TokenAmount::default(),
                sector_key_cid: None,
                flags: 0,
                daily_fee: TokenAmount::default(),
            },
        );
        Ok(())
    }

    /// The end of `epoch`: a deadline that closes now and was not proven makes its
    /// partitions' sectors faulty (a missed window PoSt), and its proofs are forgotten
    /// for the next proving period.
    pub fn end_of_epoch(&mut self, epoch: ChainEpoch) {
        let policy = self.policy;
        for actor in self.miners.values_mut() {
            let info = actor.deadline_info(&policy, epoch);
            if epoch != info.close - 1 {
                continue;
            }
            let proven = actor
                .post_submissions
                .remove(&info.index)
                .unwrap_or_default();
            let partitions = actor
                .deadlines
                .get(info.index as usize)
                .cloned()
                .unwrap_or_default();
            for (index, sectors) in partitions.iter().enumerate() {
                if !proven.contains(&(index as u64)) {
                    for sector in sectors {
                        actor.faults.insert(*sector);
                        actor.recoveries.remove(sector);
                    }
                }
            }
        }
    }
}

fn submit_windowed_post(
    actor: &mut MinerActor,
    miner_id: u64,
    policy: &ProvingPolicy,
    message: &Message,
    epoch: ChainEpoch,
    context: &dyn ExecutionContext,
) -> Result<MessageReceipt, ExitCode> {
    use base64::Engine as _;
    let params: miner::SubmitWindowedPoStParams =
        fvm_ipld_encoding::from_slice(&message.params).map_err(|_| ExitCode::USR_SERIALIZATION)?;
    let info = actor.deadline_info(policy, epoch);
    if params.deadline != info.index || params.partitions.is_empty() {
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    // The proof commits to the chain it was made on.
    if params.chain_commit_epoch < info.challenge || params.chain_commit_epoch >= epoch {
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    let committed = context.ticket_randomness(POST_CHAIN_COMMIT, params.chain_commit_epoch, &[]);
    if committed.map(|randomness| randomness.to_vec()) != Some(params.chain_commit_rand.0.clone()) {
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    let partitions = actor
        .deadlines
        .get(info.index as usize)
        .cloned()
        .unwrap_or_default();
    let mut to_prove = BTreeSet::new();
    let mut skipped_all = BTreeSet::new();
    for partition in &params.partitions {
        let Some(sectors) = partitions.get(partition.index as usize) else {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        };
        let skipped: BTreeSet<u64> = partition.skipped.iter().collect();
        if !skipped.is_subset(sectors) {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        }
        for sector in sectors {
            let faulty = actor.faults.contains(sector) && !actor.recoveries.contains(sector);
            if !skipped.contains(sector) && !faulty {
                to_prove.insert(*sector);
            }
        }
        skipped_all.extend(skipped);
    }
    if !to_prove.is_empty() {
        let Some(mut seed) = context.beacon_randomness(
            WINDOWED_POST_CHALLENGE_SEED,
            info.challenge,
            &miner_entropy(miner_id),
        ) else {
            return Err(ExitCode::USR_ILLEGAL_STATE);
        };
        // As Lotus and the proofs do: the challenge must be a field element.
        seed[31] &= 0x3f;
        let Ok(proof_type) =
            proofs::api::RegisteredPoStProof::try_from(actor.info.window_post_proof_type)
        else {
            return Err(ExitCode::USR_ILLEGAL_STATE);
        };
        let mut replicas = Vec::new();
        for sector in &to_prove {
            let Some(on_chain) = actor.sectors.get(sector) else {
                return Err(ExitCode::USR_ILLEGAL_STATE);
            };
            let Ok(comm_r) = cid_to_replica_commitment_v1(&on_chain.sealed_cid) else {
                return Err(ExitCode::USR_ILLEGAL_STATE);
            };
            replicas.push(proofs::tasks::PostReplica {
                sector_id: proofs::api::SectorId::from(*sector),
                comm_r,
                cache_dir: std::path::PathBuf::new(),
                sealed_file: std::path::PathBuf::new(),
            });
        }
        let task = proofs::tasks::PostTask {
            miner_id,
            proof_type,
            replicas,
            seed,
        };
        let output = proofs::tasks::PostOutput {
            proofs: params
                .proofs
                .iter()
                .map(|proof| base64::engine::general_purpose::STANDARD.encode(&proof.proof_bytes))
                .collect(),
            faults: Vec::new(),
        };
        if !context.verify_window_post(&task, &output) {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        }
    }
    let proven = actor.post_submissions.entry(info.index).or_default();
    proven.extend(params.partitions.iter().map(|partition| partition.index));
    for sector in &to_prove {
        actor.faults.remove(sector);
        actor.recoveries.remove(sector);
    }
    for sector in skipped_all {
        actor.faults.insert(sector);
        actor.recoveries.remove(&sector);
    }
    Ok(bare_receipt(ExitCode::OK))
}

fn declare_faults_recovered(
    actor: &mut MinerActor,
    message: &Message,
) -> Result<MessageReceipt, ExitCode> {
    let params: miner::DeclareFaultsRecoveredParams =
        fvm_ipld_encoding::from_slice(&message.params).map_err(|_| ExitCode::USR_SERIALIZATION)?;
    for recovery in &params.recoveries {
        let Some(partition) = actor
            .deadlines
            .get(recovery.deadline as usize)
            .and_then(|partitions| partitions.get(recovery.partition as usize))
        else {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        };
        for sector in recovery.sectors.iter() {
            if !partition.contains(&sector) || !actor.faults.contains(&sector) {
                return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
            }
        }
    }
    for recovery in params.recoveries {
        actor.recoveries.extend(recovery.sectors.iter());
    }
    Ok(bare_receipt(ExitCode::OK))
}

fn terminate_sectors(
    actor: &mut MinerActor,
    message: &Message,
) -> Result<MessageReceipt, ExitCode> {
    let params: miner::TerminateSectorsParams =
        fvm_ipld_encoding::from_slice(&message.params).map_err(|_| ExitCode::USR_SERIALIZATION)?;
    for termination in &params.terminations {
        let Some(partition) = actor
            .deadlines
            .get(termination.deadline as usize)
            .and_then(|partitions| partitions.get(termination.partition as usize))
        else {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        };
        if !termination
            .sectors
            .iter()
            .all(|sector| partition.contains(&sector))
        {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        }
    }
    for termination in params.terminations {
        for sector in termination.sectors.iter() {
            if let Some(partition) = actor
                .deadlines
                .get_mut(termination.deadline as usize)
                .and_then(|partitions| partitions.get_mut(termination.partition as usize))
            {
                partition.remove(&sector);
            }
            if let Some(removed) = actor.sectors.remove(&sector) {
                actor.locked -= &removed.initial_pledge;
            }
            actor.faults.remove(&sector);
            actor.recoveries.remove(&sector);
        }
    }
    let done = miner::TerminateSectorsReturn { done: true };
    match RawBytes::serialize(&done) {
        Ok(bytes) => Ok(receipt(ExitCode::OK, bytes.to_vec())),
        Err(_) => Err(ExitCode::USR_SERIALIZATION),
    }
}

fn pre_commit_sector_batch2(
    actor: &mut MinerActor,
    message: &Message,
    epoch: ChainEpoch,
) -> Result<MessageReceipt, ExitCode> {
    let params: miner::PreCommitSectorBatchParams2 =
        fvm_ipld_encoding::from_slice(&message.params).map_err(|_| ExitCode::USR_SERIALIZATION)?;
    if params.sectors.is_empty() {
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    actor.balance += &message.value;
    let mut deposit_total = TokenAmount::default();
    let mut numbers = BTreeSet::new();
    for sector in &params.sectors {
        let expected_post = sector.seal_proof.registered_window_post_proof().ok();
        let size_matches = sector.seal_proof.sector_size().ok().map(|size| size as u64)
            == Some(actor.info.sector_size);
        if actor.allocated.contains(&sector.sector_number)
            || !numbers.insert(sector.sector_number)
            || !size_matches
            || expected_post != Some(actor.info.window_post_proof_type)
            || cid_to_replica_commitment_v1(&sector.sealed_cid).is_err()
            || sector.seal_rand_epoch >= epoch
            || sector.seal_rand_epoch < epoch - MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK
            || sector.expiration <= epoch
        {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        }
        if let Some(unsealed) = sector.unsealed_cid.0
            && cid_to_data_commitment_v1(&unsealed).is_err()
        {
            return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
        }
        deposit_total += pre_commit_deposit(actor.info.sector_size);
    }
    if actor.available_balance() < deposit_total {
        return Err(ExitCode::USR_INSUFFICIENT_FUNDS);
    }
    for sector in params.sectors {
        actor.allocated.insert(sector.sector_number);
        actor.locked += pre_commit_deposit(actor.info.sector_size);
        actor.precommits.insert(
            sector.sector_number,
            SectorPreCommitOnChainInfo {
                info: SectorPreCommitInfo {
                    seal_proof: sector.seal_proof,
                    sector_number: sector.sector_number,
                    sealed_cid: sector.sealed_cid,
                    seal_rand_epoch: sector.seal_rand_epoch,
                    deal_ids: sector.deal_ids,
                    expiration: sector.expiration,
                    unsealed_cid: sector.unsealed_cid.0,
                },
                pre_commit_deposit: pre_commit_deposit(actor.info.sector_size),
                pre_commit_epoch: epoch,
            },
        );
    }
    Ok(bare_receipt(ExitCode::OK))
}

/// The data commitment of a precommit: its unsealed CID, or the zero commitment of a
/// committed-capacity sector.
fn comm_d_of(info: &SectorPreCommitInfo) -> Option<[u8; 32]> {
    let cid: Cid = miner::CompactCommD::new(info.unsealed_cid)
        .get_cid(info.seal_proof)
        .ok()?;
    cid_to_data_commitment_v1(&cid).ok()
}

fn prove_commit_sectors3(
    actor: &mut MinerActor,
    miner_id: u64,
    message: &Message,
    epoch: ChainEpoch,
    pre_commit_challenge_delay: ChainEpoch,
    context: &dyn ExecutionContext,
) -> Result<MessageReceipt, ExitCode> {
    let params: miner::ProveCommitSectors3Params =
        fvm_ipld_encoding::from_slice(&message.params).map_err(|_| ExitCode::USR_SERIALIZATION)?;
    let aggregated = !params.aggregate_proof.is_empty();
    if params.sector_activations.is_empty()
        || aggregated != params.sector_proofs.is_empty()
        || (!aggregated && params.sector_proofs.len() != params.sector_activations.len())
    {
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    if aggregated {
        // Aggregate verification needs SnarkPack parameters the devnet does not make.
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    actor.balance += &message.value;
    let entropy = miner_entropy(miner_id);
    let mut batch = BatchReturnGen::new(params.sector_activations.len());
    let mut proven = Vec::new();
    for (activation, proof) in params.sector_activations.iter().zip(&params.sector_proofs) {
        let Some(precommit) = actor.precommits.get(&activation.sector_number).cloned() else {
            batch.add_fail(ExitCode::USR_NOT_FOUND);
            continue;
        };
        let seed_epoch = precommit.pre_commit_epoch + pre_commit_challenge_delay;
        if epoch <= seed_epoch {
            // "too early to prove sector"
            batch.add_fail(ExitCode::USR_FORBIDDEN);
            continue;
        }
        let info = &precommit.info;
        let (Some(ticket), Some(seed), Ok(comm_r), Some(comm_d)) = (
            context.ticket_randomness(SEAL_RANDOMNESS, info.seal_rand_epoch, &entropy),
            context.beacon_randomness(INTERACTIVE_SEAL_CHALLENGE_SEED, seed_epoch, &entropy),
            cid_to_replica_commitment_v1(&info.sealed_cid),
            comm_d_of(info),
        ) else {
            batch.add_fail(ExitCode::USR_ILLEGAL_STATE);
            continue;
        };
        let Ok(registered_proof) = proofs::api::RegisteredSealProof::try_from(info.seal_proof)
        else {
            batch.add_fail(ExitCode::USR_ILLEGAL_ARGUMENT);
            continue;
        };
        let seal = proofs::SealToVerify {
            registered_proof,
            comm_r,
            comm_d,
            prover_id: proofs::tasks::prover_id_of(miner_id),
            sector_id: proofs::api::SectorId::from(info.sector_number),
            ticket,
            seed,
            proof: proof.to_vec(),
        };
        if !context.verify_seal(&seal) {
            batch.add_fail(ExitCode::USR_ILLEGAL_ARGUMENT);
            continue;
        }
        batch.add_success();
        proven.push((precommit, epoch));
    }
    let batch = batch.generate();
    if params.require_activation_success
        && batch.success_count as usize != params.sector_activations.len()
    {
        return Err(ExitCode::USR_ILLEGAL_ARGUMENT);
    }
    for (precommit, activation) in proven {
        activate(actor, precommit, activation);
    }
    Ok(batch_receipt(&batch))
}

/// Moves a proven sector from the precommits into a deadline's partition. New sectors
/// fill partitions in order, starting two deadlines after the epoch's (the current and
/// next deadlines are immutable in the real actor).
fn activate(actor: &mut MinerActor, precommit: SectorPreCommitOnChainInfo, epoch: ChainEpoch) {
    let number = precommit.info.sector_number;
    actor.precommits.remove(&number);
    actor.locked -= &precommit.pre_commit_deposit;
    let pledge = initial_pledge(actor.info.sector_size);
    actor.locked += &pledge;
    let partition_size = actor.info.window_post_partition_sectors.max(1) as usize;
    let total = actor.sectors.len() as u64;
    let deadline = ((epoch.max(0) as u64) + 2 + total / partition_size as u64)
        % (actor.deadlines.len().max(1) as u64);
    let partitions = &mut actor.deadlines[deadline as usize];
    match partitions.last_mut() {
        Some(last) if last.len() < partition_size => {
            last.insert(number);
        }
        _ => partitions.push(BTreeSet::from([number])),
    }
    actor.sectors.insert(
        number,
        SectorOnChainInfo {
            sector_number: number,
            seal_proof: precommit.info.seal_proof,
            sealed_cid: precommit.info.sealed_cid,
            activation: epoch,
            expiration: precommit.info.expiration,
            deal_weight: 0.into(),
            verified_deal_weight: 0.into(),
            initial_pledge: pledge,
            expected_day_reward: TokenAmount::default(),
            expected_storage_pledge: TokenAmount::default(),
            power_base_epoch: epoch,
            replaced_day_reward: TokenAmount::default(),
            sector_key_cid: None,
            flags: 0,
            daily_fee: TokenAmount::default(),
        },
    );
}
