//! The WindowPoSt runner: carries out [`crate::deadline`]'s decisions for one miner
//! against a chain node and a prover, and keeps a record of every deadline.
//!
//! Each pass reads the head and the miner's current deadline, then advances the current
//! and the next deadline (the next one's challenge is drawn before it opens) and
//! declares the recoveries of the deadline two ahead. A deadline's proof is made in a
//! task of its own, so a slow proof never delays following the chain: each sector's
//! vanilla proof is made (this reads its files: the check) within a time limit, sectors
//! that fail are skipped, the SNARK is made over the rest, checked with the verifier,
//! and only then submitted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chain_client::message::{PartitionProven, PartitionSectors};
use chain_client::types::{PoStProof, TipSet};
use chain_client::{LotusClient, Transport};
use fvm_ipld_bitfield::BitField;
use fvm_shared::address::Address;
use proofs::ProofBackend;
use proofs::tasks::{
    PostOutput, PostReplica, PostSnarkTask, PostTask, PostVanillaOutput, PostVanillaTask,
    VanillaPostProof,
};
use serde::Serialize;

use crate::deadline::{
    Deadline, DeadlineProgress, DeadlineStep, PartitionState, PostTiming, ProvingGeometry,
    batch_partitions, max_partitions_per_message, next_step, plan_partitions, plan_recoveries,
};

/// The domain of the window PoSt challenge (`DomainSeparationTag_WindowedPoStChallengeSeed`).
const WINDOWED_POST_CHALLENGE_SEED: i64 = 4;
/// The domain of a window PoSt's commitment to the chain (`DomainSeparationTag_PoStChainCommit`).
const POST_CHAIN_COMMIT: i64 = 9;
/// How many deadline records are kept (two proving periods of mainnet).
const RECORDS_KEPT: usize = 96;

/// Where a sector's sealed replica and cache directory are on this host.
pub trait ReplicaLocator: Send + Sync {
    /// The sealed file and cache directory of sector `number` of `miner`, or `None`
    /// when this host does not have them (the sector is then skipped as faulty).
    fn locate(&self, miner: u64, number: u64) -> Option<(PathBuf, PathBuf)>;
}

/// Persistent stores laid out as the workers persist sectors:
/// `<store>/sealed/s-t0<miner>-<number>` and `<store>/cache/s-t0<miner>-<number>`.
#[derive(Clone, Debug)]
pub struct PersistStores {
    /// The stores' root directories.
    pub roots: Vec<PathBuf>,
}

impl ReplicaLocator for PersistStores {
    fn locate(&self, miner: u64, number: u64) -> Option<(PathBuf, PathBuf)> {
        let name = format!("s-t0{miner}-{number}");
        let found = self
            .roots
            .iter()
            .find(|root| root.join("sealed").join(&name).exists())?;
        Some((
            found.join("sealed").join(&name),
            found.join("cache").join(&name),
        ))
    }
}

/// How proofs are checked before they are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostVerifier {
    /// With filecoin-proofs' verifier.
    Real,
    /// With the fake backend's check (devnets with fake proofs).
    Fake,
}

impl PostVerifier {
    fn verifies(self, task: &PostTask, output: &PostOutput) -> bool {
        match self {
            PostVerifier::Real => proofs::backend::verify_real_post(task, output) == Ok(true),
            PostVerifier::Fake => proofs::FakeProofs::verify_post(task, output),
        }
    }
}

/// What the runner is told.
#[derive(Clone, Debug)]
pub struct WindowPostSettings {
    /// The miner proven.
    pub miner: Address,
    /// The account that sends its proofs (its worker or a control address).
    pub sender: Address,
    /// When proofs are started and submitted.
    pub timing: PostTiming,
    /// The operator's cap on partitions per message (the network's limit applies anyway).
    pub max_partitions_per_message: Option<u64>,
    /// How long one sector's check (its vanilla proof) may take before the sector is
    /// skipped as faulty.
    pub check_timeout: Duration,
    /// How often the head is read.
    pub poll_interval: Duration,
    /// The most a message may cost in fees; zero leaves it to the node.
    pub max_fee: fvm_shared::econ::TokenAmount,
}

/// How a deadline ended, or where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineOutcome {
    /// Being worked on.
    InProgress,
    /// Every message landed.
    Proven,
    /// Nothing in it needed a proof.
    NothingToProve,
    /// It closed before a proof landed.
    Missed,
}

/// What happened to one deadline: what `proving deadlines` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadlineRecord {
    /// The miner.
    pub miner: u64,
    /// The first epoch of its proving period.
    pub period_start: i64,
    /// Its index.
    pub index: u64,
    /// Its open and close epochs.
    pub open: i64,
    /// See `open`.
    pub close: i64,
    /// Partitions proven.
    pub partitions: Vec<u64>,
    /// Sectors proven.
    pub sectors_proven: usize,
    /// Sectors skipped (their check failed): declared faulty by the proof.
    pub sectors_skipped: Vec<u64>,
    /// Milliseconds from the start of the checks to a verified proof.
    pub proof_milliseconds: Option<u64>,
    /// The messages sent (CIDs).
    pub messages: Vec<String>,
    /// The epoch the last message landed at.
    pub landed_epoch: Option<i64>,
    /// How it ended.
    pub outcome: DeadlineOutcome,
    /// The last error met, if any.
    pub last_error: Option<String>,
    /// Recoveries declared for it (sector numbers).
    pub recoveries_declared: Vec<u64>,
}

/// The records of the latest deadlines, shared with whoever shows them.
pub type DeadlineRecords = Arc<Mutex<VecDeque<DeadlineRecord>>>;

/// What the chain says about the miner's window PoSts.
struct PoStProofShape {
    /// The proof type as the chain names it.
    chain_type: fvm_shared::sector::RegisteredPoStProof,
    /// Sectors per partition.
    partition_sectors: u64,
}

/// A proof ready to be sent.
struct PreparedProof {
    messages: Vec<fvm_shared::message::Message>,
    partitions: Vec<u64>,
    sectors_proven: usize,
    skipped: Vec<u64>,
    milliseconds: u64,
}

/// One deadline's work in progress.
struct DeadlineWork {
    progress: DeadlineProgress,
    proving: Option<tokio::task::JoinHandle<Result<PreparedProof, String>>>,
    prepared: Option<PreparedProof>,
    sent: Vec<cid::Cid>,
}

impl DeadlineWork {
    fn new() -> DeadlineWork {
        DeadlineWork {
            progress: DeadlineProgress::NotStarted,
            proving: None,
            prepared: None,
            sent: Vec::new(),
        }
    }
}

/// What a proving task needs, cheap to clone into it.
#[derive(Clone)]
struct Prover<T> {
    chain: LotusClient<T>,
    backend: Arc<dyn ProofBackend>,
    verifier: PostVerifier,
    locator: Arc<dyn ReplicaLocator>,
    settings: Arc<WindowPostSettings>,
}

/// The runner of one miner's window PoSts.
pub struct WindowPostRunner<T> {
    prover: Prover<T>,
    works: BTreeMap<Deadline, DeadlineWork>,
    recoveries_checked: BTreeSet<Deadline>,
    records: DeadlineRecords,
}

fn miner_id(address: &Address) -> u64 {
    address.id().unwrap_or_default()
}

fn entropy(address: &Address) -> Vec<u8> {
    fvm_ipld_encoding::to_vec(address).unwrap_or_default()
}

fn set_of(bits: &BitField) -> BTreeSet<u64> {
    bits.iter().collect()
}

fn bitfield_of(sectors: &BTreeSet<u64>) -> BitField {
    let mut bits = BitField::new();
    for sector in sectors {
        bits.set(*sector);
    }
    bits
}

impl<T: Transport + Clone + Send + Sync + 'static> WindowPostRunner<T> {
    /// A runner over `chain`, proving with `backend`, checking with `verifier`, finding
    /// replicas with `locator`.
    pub fn new(
        chain: LotusClient<T>,
        backend: Arc<dyn ProofBackend>,
        verifier: PostVerifier,
        locator: Arc<dyn ReplicaLocator>,
        settings: WindowPostSettings,
    ) -> WindowPostRunner<T> {
        WindowPostRunner {
            prover: Prover {
                chain,
                backend,
                verifier,
                locator,
                settings: Arc::new(settings),
            },
            works: BTreeMap::new(),
            recoveries_checked: BTreeSet::new(),
            records: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The records, shared.
    pub fn records(&self) -> DeadlineRecords {
        Arc::clone(&self.records)
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = self.prover.settings.poll_interval;
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(miner = %self.prover.settings.miner, %error, "a window PoSt pass failed; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
        }
        for work in self.works.values() {
            if let Some(task) = &work.proving {
                task.abort();
            }
        }
    }

    /// One pass: read the chain and advance every deadline in reach.
    pub async fn pass(&mut self) -> Result<(), String> {
        let settings = Arc::clone(&self.prover.settings);
        let chain = &self.prover.chain;
        let head = chain
            .chain_head()
            .await
            .map_err(|error| format!("read the head: {error}"))?;
        let info = chain
            .state_miner_proving_deadline(&settings.miner, &head.key())
            .await
            .map_err(|error| format!("read the proving deadline: {error}"))?;
        let geometry = ProvingGeometry::from_chain(&info);
        if !geometry.is_sound() {
            return Err(format!(
                "the node reports a proving period that does not add up: {info:?}"
            ));
        }
        let current = geometry.deadline(info.period_start, info.index);
        // The current and next deadlines, and every earlier one still in progress (a
        // proof still being made, messages not yet landed), which may yet land or be
        // recorded as missed.
        let mut deadlines: BTreeSet<Deadline> = self.works.keys().copied().collect();
        deadlines.extend([current, geometry.next(&current)]);
        for deadline in deadlines {
            self.advance(deadline, &head).await;
        }
        let recovery = geometry.recovery_deadline(&current);
        if !self.recoveries_checked.contains(&recovery) {
            match self.declare_recoveries(&recovery, &head).await {
                Ok(()) => {
                    self.recoveries_checked.insert(recovery);
                }
                Err(error) => {
                    tracing::warn!(deadline = recovery.index, %error, "recoveries not declared yet");
                }
            }
        }
        self.forget_before(current.open - geometry.proving_period);
        Ok(())
    }

    fn forget_before(&mut self, epoch: i64) {
        self.works.retain(|deadline, work| {
            let keep = deadline.close >= epoch;
            if !keep && let Some(task) = &work.proving {
                task.abort();
            }
            keep
        });
        self.recoveries_checked
            .retain(|deadline| deadline.close >= epoch);
    }

    /// Counts a finished deadline for `/metrics`.
    fn count_deadline(&self, outcome: &'static str) {
        telemetry::metrics::counter!(
            "sealcluster_window_post_deadlines_total",
            "miner" => self.prover.settings.miner.to_string(),
            "outcome" => outcome
        )
        .increment(1);
    }

    fn record(&self, deadline: &Deadline, change: impl FnOnce(&mut DeadlineRecord)) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        let miner = miner_id(&self.prover.settings.miner);
        let position = records.iter().position(|record| {
            record.period_start == deadline.period_start && record.index == deadline.index
        });
        let index = match position {
            Some(index) => index,
            None => {
                if records.len() >= RECORDS_KEPT {
                    records.pop_front();
                }
                records.push_back(DeadlineRecord {
                    miner,
                    period_start: deadline.period_start,
                    index: deadline.index,
                    open: deadline.open,
                    close: deadline.close,
                    partitions: Vec::new(),
                    sectors_proven: 0,
                    sectors_skipped: Vec::new(),
                    proof_milliseconds: None,
                    messages: Vec::new(),
                    landed_epoch: None,
                    outcome: DeadlineOutcome::InProgress,
                    last_error: None,
                    recoveries_declared: Vec::new(),
                });
                records.len() - 1
            }
        };
        if let Some(record) = records.get_mut(index) {
            change(record);
        }
    }

    async fn advance(&mut self, deadline: Deadline, head: &TipSet) {
        let timing = self.prover.settings.timing;
        // A few steps can follow each other in one pass (a restart, then a new start).
        for _ in 0..4 {
            let work = self.works.entry(deadline).or_insert_with(DeadlineWork::new);
            let step = next_step(&deadline, head.height, timing, &work.progress);
            match step {
                DeadlineStep::WaitUntil(_) => {
                    if !self.collect_proof(&deadline).await {
                        return;
                    }
                }
                DeadlineStep::StartProving => {
                    let prover = self.prover.clone();
                    let key = head.key();
                    work.proving = Some(tokio::spawn(
                        async move { prover.prove(deadline, key).await },
                    ));
                    work.progress = DeadlineProgress::Proving {
                        challenge: deadline.challenge,
                    };
                    tracing::info!(
                        deadline = deadline.index,
                        open = deadline.open,
                        head = head.height,
                        "proving a deadline"
                    );
                    return;
                }
                DeadlineStep::Restart => {
                    if let Some(task) = work.proving.take() {
                        task.abort();
                    }
                    work.prepared = None;
                    work.sent.clear();
                    work.progress = DeadlineProgress::NotStarted;
                    tracing::warn!(
                        deadline = deadline.index,
                        head = head.height,
                        "the chain went back below the challenge; the proof starts over"
                    );
                }
                DeadlineStep::Submit => {
                    self.submit(&deadline).await;
                    return;
                }
                DeadlineStep::FollowMessages => {
                    self.follow(&deadline, head).await;
                    return;
                }
                DeadlineStep::Done => return,
                DeadlineStep::Missed => {
                    if let Some(task) = work.proving.take() {
                        task.abort();
                    }
                    // Nothing more is done for it; its record says it was missed.
                    work.progress = DeadlineProgress::Proven;
                    let mut missed = false;
                    self.record(&deadline, |record| {
                        if record.outcome == DeadlineOutcome::InProgress {
                            record.outcome = DeadlineOutcome::Missed;
                            missed = true;
                        }
                    });
                    if missed {
                        self.count_deadline("missed");
                        tracing::error!(
                            deadline = deadline.index,
                            close = deadline.close,
                            "a window PoSt deadline closed before its proof landed"
                        );
                    }
                    return;
                }
            }
        }
    }

    /// Takes a finished proving task's result; `true` when the progress changed.
    async fn collect_proof(&mut self, deadline: &Deadline) -> bool {
        let Some(work) = self.works.get_mut(deadline) else {
            return false;
        };
        let finished = work.proving.as_ref().is_some_and(|task| task.is_finished());
        if !finished {
            return false;
        }
        let Some(task) = work.proving.take() else {
            return false;
        };
        let outcome = task
            .await
            .map_err(|error| format!("the proving task ended: {error}"))
            .and_then(|outcome| outcome);
        match outcome {
            Ok(prepared) => {
                let (partitions, proven, skipped, milliseconds) = (
                    prepared.partitions.clone(),
                    prepared.sectors_proven,
                    prepared.skipped.clone(),
                    prepared.milliseconds,
                );
                let nothing = prepared.messages.is_empty();
                work.progress = if nothing {
                    DeadlineProgress::NothingToProve
                } else {
                    DeadlineProgress::ProofReady {
                        challenge: deadline.challenge,
                    }
                };
                work.prepared = Some(prepared);
                tracing::info!(
                    deadline = deadline.index,
                    milliseconds,
                    proven,
                    "proof ready"
                );
                if !skipped.is_empty() {
                    tracing::warn!(
                        deadline = deadline.index,
                        ?skipped,
                        "sectors failed their check and are skipped (declared faulty)"
                    );
                }
                self.record(deadline, |record| {
                    record.partitions = partitions;
                    record.sectors_proven = proven;
                    record.sectors_skipped = skipped;
                    record.proof_milliseconds = Some(milliseconds);
                    if nothing {
                        record.outcome = DeadlineOutcome::NothingToProve;
                    }
                });
            }
            Err(error) => {
                tracing::warn!(deadline = deadline.index, %error, "the deadline's proof failed; it is made again");
                work.progress = DeadlineProgress::NotStarted;
                self.record(deadline, |record| record.last_error = Some(error));
            }
        }
        true
    }

    async fn submit(&mut self, deadline: &Deadline) {
        let Some(work) = self.works.get_mut(deadline) else {
            return;
        };
        let Some(prepared) = &work.prepared else {
            work.progress = DeadlineProgress::NotStarted;
            return;
        };
        let settings = &self.prover.settings;
        // The messages pushed by an earlier try stand; only the rest are pushed (a
        // partition already proven in this deadline would be refused a second time).
        let mut sent = std::mem::take(&mut work.sent);
        let before = sent.len();
        let mut failure = None;
        for (number, message) in prepared.messages.iter().enumerate().skip(before) {
            let spec = chain_client::types::MessageSendSpec {
                max_fee: settings.max_fee.clone(),
                msg_uuid: String::new(),
                maximize_fee_cap: false,
            };
            match self
                .prover
                .chain
                .mpool_push_message(message, Some(&spec))
                .await
            {
                Ok(signed) => sent.push(signed.cid()),
                Err(error) => {
                    failure = Some(format!("push message {number} of the proof: {error}"));
                    break;
                }
            }
        }
        let cids: Vec<String> = sent[before..].iter().map(ToString::to_string).collect();
        work.sent = sent;
        match failure {
            None => {
                tracing::info!(deadline = deadline.index, messages = ?cids, "window PoSt submitted");
                work.progress = DeadlineProgress::Submitted;
                self.record(deadline, |record| record.messages.extend(cids));
            }
            Some(error) => {
                tracing::warn!(deadline = deadline.index, %error, "submitting the window PoSt failed; the rest is pushed at the next pass");
                self.record(deadline, |record| {
                    record.messages.extend(cids);
                    record.last_error = Some(error);
                });
            }
        }
    }

    async fn follow(&mut self, deadline: &Deadline, head: &TipSet) {
        let Some(work) = self.works.get_mut(deadline) else {
            return;
        };
        let mut landed_epoch = None;
        let mut all_landed = true;
        let mut failed = None;
        for cid in &work.sent {
            match self
                .prover
                .chain
                .state_search_msg(&head.key(), cid, -1, true)
                .await
            {
                Ok(Some(lookup)) if lookup.receipt.exit_code == 0 => {
                    landed_epoch = landed_epoch.max(Some(lookup.height));
                }
                Ok(Some(lookup)) => {
                    failed = Some(format!(
                        "message {cid} failed on chain with exit code {}",
                        lookup.receipt.exit_code
                    ));
                }
                Ok(None) => all_landed = false,
                Err(error) => {
                    all_landed = false;
                    tracing::debug!(%error, %cid, "looking the window PoSt message up failed");
                }
            }
        }
        if let Some(error) = failed {
            tracing::warn!(deadline = deadline.index, %error, "the window PoSt failed on chain; it is made again while the deadline is open");
            work.progress = DeadlineProgress::NotStarted;
            work.prepared = None;
            work.sent.clear();
            self.record(deadline, |record| record.last_error = Some(error));
        } else if all_landed {
            work.progress = DeadlineProgress::Proven;
            tracing::info!(deadline = deadline.index, landed = ?landed_epoch, "window PoSt landed");
            self.record(deadline, |record| {
                record.outcome = DeadlineOutcome::Proven;
                record.landed_epoch = landed_epoch;
            });
            self.count_deadline("proven");
        }
    }

    /// Declares the recoveries of `deadline`: its faulty sectors whose files pass the
    /// check again.
    async fn declare_recoveries(
        &mut self,
        deadline: &Deadline,
        head: &TipSet,
    ) -> Result<(), String> {
        if head.height >= deadline.fault_cutoff {
            return Ok(());
        }
        let settings = Arc::clone(&self.prover.settings);
        let chain = &self.prover.chain;
        let partitions = self.prover.partitions(deadline.index, &head.key()).await?;
        // The sectors that could be declared if their files pass: the plan with every
        // check passing.
        let candidates: BTreeSet<u64> =
            plan_recoveries(deadline, head.height, &partitions, |_| true)
                .into_iter()
                .flat_map(|plan| plan.sectors)
                .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        // Any challenge will do for a check: the seed of this head.
        let mut seed = [0u8; 32];
        for (index, byte) in head.key().to_string().bytes().enumerate() {
            seed[index % 32] ^= byte;
        }
        seed[31] &= 0x3f;
        let (proof_type, _) = self.prover.proof_type(&head.key()).await?;
        let good = self
            .prover
            .check(&candidates, &head.key(), proof_type, seed)
            .await?
            .0;
        let plans = plan_recoveries(deadline, head.height, &partitions, |sector| {
            good.contains(&sector)
        });
        if plans.is_empty() {
            return Ok(());
        }
        let declarations: Vec<PartitionSectors> = plans
            .iter()
            .map(|plan| PartitionSectors {
                deadline: deadline.index,
                partition: plan.partition,
                sectors: bitfield_of(&plan.sectors),
            })
            .collect();
        let message = chain_client::message::declare_faults_recovered(
            settings.miner,
            settings.sender,
            &declarations,
        )
        .map_err(|error| format!("build the recovery declaration: {error}"))?;
        let signed = chain
            .mpool_push_message(&message, None)
            .await
            .map_err(|error| format!("push the recovery declaration: {error}"))?;
        let sectors: Vec<u64> = plans
            .iter()
            .flat_map(|plan| plan.sectors.iter().copied())
            .collect();
        tracing::info!(deadline = deadline.index, ?sectors, message = %signed.cid(), "recoveries declared");
        self.record(deadline, |record| {
            record.recoveries_declared.extend(sectors)
        });
        Ok(())
    }
}

impl<T: Transport + Clone + Send + Sync + 'static> Prover<T> {
    async fn partitions(
        &self,
        index: u64,
        key: &chain_client::types::TipSetKey,
    ) -> Result<Vec<PartitionState>, String> {
        let partitions = self
            .chain
            .state_miner_partitions(&self.settings.miner, index, key)
            .await
            .map_err(|error| format!("read deadline {index}'s partitions: {error}"))?;
        Ok(partitions
            .iter()
            .enumerate()
            .map(|(position, partition)| PartitionState {
                index: position as u64,
                live: set_of(&partition.live_sectors),
                faulty: set_of(&partition.faulty_sectors),
                recovering: set_of(&partition.recovering_sectors),
            })
            .collect())
    }

    /// Checks `sectors` by making their vanilla proofs of `proof_type` for `seed`, each
    /// within the time limit: the sectors that passed, and every passing sector's
    /// replica and proof.
    async fn check(
        &self,
        sectors: &BTreeSet<u64>,
        key: &chain_client::types::TipSetKey,
        proof_type: proofs::api::RegisteredPoStProof,
        seed: [u8; 32],
    ) -> Result<
        (
            BTreeSet<u64>,
            BTreeMap<u64, (PostReplica, VanillaPostProof)>,
        ),
        String,
    > {
        let (replicas, unlocated) = locate_replicas(
            &self.chain,
            self.locator.as_ref(),
            &self.settings.miner,
            sectors,
            key,
        )
        .await?;
        for sector in unlocated {
            tracing::warn!(sector, "no store holds the sector's files");
        }
        Ok(check_replicas(
            &self.backend,
            miner_id(&self.settings.miner),
            proof_type,
            seed,
            replicas,
            self.settings.check_timeout,
        )
        .await)
    }

    /// The miner's window PoSt proof type and its sectors per partition at `key`.
    async fn proof_type(
        &self,
        key: &chain_client::types::TipSetKey,
    ) -> Result<(proofs::api::RegisteredPoStProof, PoStProofShape), String> {
        let info = self
            .chain
            .state_miner_info(&self.settings.miner, key)
            .await
            .map_err(|error| format!("read the miner's info: {error}"))?;
        let proof_type = proofs::api::RegisteredPoStProof::try_from(info.window_post_proof_type)
            .map_err(|error| format!("the miner's window PoSt proof type: {error}"))?;
        Ok((
            proof_type,
            PoStProofShape {
                chain_type: info.window_post_proof_type,
                partition_sectors: info.window_post_partition_sectors,
            },
        ))
    }

    /// Makes `deadline`'s proof at the tipset `key`: checks, SNARKs, local verification,
    /// and the messages to send.
    async fn prove(
        self,
        deadline: Deadline,
        key: chain_client::types::TipSetKey,
    ) -> Result<PreparedProof, String> {
        let started = Instant::now();
        let settings = Arc::clone(&self.settings);
        let miner = miner_id(&settings.miner);
        let partitions = self.partitions(deadline.index, &key).await?;
        tracing::debug!(deadline = deadline.index, ?partitions, "partitions read");
        let to_prove: BTreeSet<u64> = partitions
            .iter()
            .flat_map(PartitionState::to_prove)
            .collect();
        if to_prove.is_empty() {
            return Ok(PreparedProof {
                messages: Vec::new(),
                partitions: Vec::new(),
                sectors_proven: 0,
                skipped: Vec::new(),
                milliseconds: 0,
            });
        }
        let mut seed: [u8; 32] = self
            .chain
            .state_get_randomness_from_beacon(
                WINDOWED_POST_CHALLENGE_SEED,
                deadline.challenge,
                &entropy(&settings.miner),
                &key,
            )
            .await
            .map_err(|error| format!("draw the challenge: {error}"))?
            .try_into()
            .map_err(|_| "the challenge randomness is not 32 bytes".to_owned())?;
        // The proofs need a field element.
        seed[31] &= 0x3f;
        let commit_randomness = self
            .chain
            .state_get_randomness_from_tickets(POST_CHAIN_COMMIT, deadline.challenge, &[], &key)
            .await
            .map_err(|error| format!("draw the chain commitment: {error}"))?;
        let (proof_type, shape) = self.proof_type(&key).await?;
        let (passed, checked) = self.check(&to_prove, &key, proof_type, seed).await?;
        let plans = plan_partitions(&partitions, |sector| passed.contains(&sector));
        let per_message = max_partitions_per_message(
            shape.partition_sectors,
            settings.max_partitions_per_message,
        );
        let mut messages = Vec::new();
        let mut proven_partitions = Vec::new();
        let mut sectors_proven = 0;
        for batch in batch_partitions(&plans, per_message) {
            let sectors: BTreeSet<u64> = batch
                .iter()
                .flat_map(|plan| plan.proven.iter().copied())
                .collect();
            let entries: Vec<(PostReplica, VanillaPostProof)> = sectors
                .iter()
                .filter_map(|sector| checked.get(sector).cloned())
                .collect();
            let proof_bytes = snark_and_verify(
                &self.backend,
                self.verifier,
                miner,
                proof_type,
                seed,
                entries,
            )
            .await
            .map_err(|error| format!("deadline {}: {error}", deadline.index))?;
            let partitions: Vec<PartitionProven> = batch
                .iter()
                .map(|plan| PartitionProven {
                    index: plan.index,
                    skipped: bitfield_of(&plan.skipped),
                })
                .collect();
            let message = chain_client::message::submit_windowed_post(
                settings.miner,
                settings.sender,
                deadline.index,
                &partitions,
                &[PoStProof {
                    post_proof: shape.chain_type,
                    proof_bytes,
                }],
                deadline.challenge,
                &commit_randomness,
            )
            .map_err(|error| format!("build the window PoSt message: {error}"))?;
            messages.push(message);
            proven_partitions.extend(batch.iter().map(|plan| plan.index));
            sectors_proven += sectors.len();
        }
        let skipped = plans
            .iter()
            .flat_map(|plan| plan.skipped.iter().copied())
            .collect();
        Ok(PreparedProof {
            messages,
            partitions: proven_partitions,
            sectors_proven,
            skipped,
            milliseconds: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// Checks each replica by making its vanilla proof for `seed` within `timeout`: the
/// sectors that passed, and each passing sector's replica and vanilla proof. A check
/// that takes too long is abandoned (its thread finishes on its own), so a hung disk
/// costs its own sectors only.
pub async fn check_replicas(
    backend: &Arc<dyn ProofBackend>,
    miner: u64,
    proof_type: proofs::api::RegisteredPoStProof,
    seed: [u8; 32],
    replicas: Vec<PostReplica>,
    timeout: Duration,
) -> (
    BTreeSet<u64>,
    BTreeMap<u64, (PostReplica, VanillaPostProof)>,
) {
    let mut passed = BTreeSet::new();
    let mut proven = BTreeMap::new();
    for replica in replicas {
        let number = u64::from(replica.sector_id);
        let task = PostVanillaTask {
            miner_id: miner,
            proof_type,
            replicas: vec![replica.clone()],
            seed,
        };
        let backend = Arc::clone(backend);
        let checking = tokio::task::spawn_blocking(move || {
            let task = serde_json::to_value(&task).map_err(|error| error.to_string())?;
            let output = backend.run("post_vanilla", task)?;
            serde_json::from_value::<PostVanillaOutput>(output).map_err(|error| error.to_string())
        });
        match tokio::time::timeout(timeout, checking).await {
            Ok(Ok(Ok(output))) => {
                if let Some(proof) = output
                    .vanilla_proofs
                    .into_iter()
                    .find(|proof| proof.sector_id == number)
                {
                    passed.insert(number);
                    proven.insert(number, (replica, proof));
                } else {
                    tracing::warn!(sector = number, "the sector's files failed the check");
                }
            }
            Ok(Ok(Err(error))) => {
                tracing::warn!(sector = number, %error, "the sector's check failed");
            }
            Ok(Err(error)) => {
                tracing::warn!(sector = number, %error, "the sector's check ended");
            }
            Err(_) => {
                tracing::warn!(
                    sector = number,
                    ?timeout,
                    "the sector's check took too long"
                );
            }
        }
    }
    (passed, proven)
}

/// The window or winning PoSt SNARK over `entries` (replicas and their vanilla proofs, in sector
/// order), checked with `verifier`: the proof's bytes, or why there are none.
pub async fn snark_and_verify(
    backend: &Arc<dyn ProofBackend>,
    verifier: PostVerifier,
    miner: u64,
    proof_type: proofs::api::RegisteredPoStProof,
    seed: [u8; 32],
    entries: Vec<(PostReplica, VanillaPostProof)>,
) -> Result<Vec<u8>, String> {
    let (replicas, vanilla): (Vec<PostReplica>, Vec<VanillaPostProof>) =
        entries.into_iter().unzip();
    let snark_task = PostSnarkTask {
        miner_id: miner,
        proof_type,
        seed,
        vanilla_proofs: vanilla,
        partition_index: None,
    };
    let backend = Arc::clone(backend);
    let output = tokio::task::spawn_blocking(move || {
        let task = serde_json::to_value(&snark_task).map_err(|error| error.to_string())?;
        let output = backend.run("post_snark", task)?;
        serde_json::from_value::<PostOutput>(output).map_err(|error| error.to_string())
    })
    .await
    .map_err(|error| format!("the SNARK task ended: {error}"))??;
    let task = PostTask {
        miner_id: miner,
        proof_type,
        replicas,
        seed,
    };
    let (task, output, verified) = tokio::task::spawn_blocking(move || {
        let verified = verifier.verifies(&task, &output);
        (task, output, verified)
    })
    .await
    .map_err(|error| format!("the verification task ended: {error}"))?;
    if !verified {
        return Err(format!(
            "the proof made for {} sectors does not verify; it is not sent",
            task.replicas.len()
        ));
    }
    use base64::Engine as _;
    let encoded = output.proofs.first().ok_or("the SNARK gave no proof")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|error| format!("the proof is not base64: {error}"))
}

/// The replicas of `sectors` of `miner` at the tipset `key`: their commitments from the
/// chain, their files from `locator`; and the sectors with no files on this host (or a
/// sealed CID that is not a replica commitment).
pub async fn locate_replicas<T: Transport>(
    chain: &LotusClient<T>,
    locator: &dyn ReplicaLocator,
    miner: &Address,
    sectors: &BTreeSet<u64>,
    key: &chain_client::types::TipSetKey,
) -> Result<(Vec<PostReplica>, Vec<u64>), String> {
    let on_chain = chain
        .state_miner_sectors(miner, Some(&bitfield_of(sectors)), key)
        .await
        .map_err(|error| format!("read the sectors' commitments: {error}"))?;
    let miner = miner_id(miner);
    let mut replicas = Vec::new();
    let mut unlocated = Vec::new();
    for sector in on_chain {
        let number = sector.sector_number;
        let comm_r = fvm_shared::commcid::cid_to_replica_commitment_v1(&sector.sealed_cid);
        match (comm_r, locator.locate(miner, number)) {
            (Ok(comm_r), Some((sealed_file, cache_dir))) => replicas.push(PostReplica {
                sector_id: proofs::api::SectorId::from(number),
                comm_r,
                cache_dir,
                sealed_file,
            }),
            _ => unlocated.push(number),
        }
    }
    Ok((replicas, unlocated))
}
