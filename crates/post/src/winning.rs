//! WinningPoSt as a service for block producers: the proof a miner needs to make a block
//! when it wins a round, made from the persistent stores within the round's budget.
//!
//! A block producer (lotus-miner, venus-miner, or the devnet's block production) asks
//! with what `MinerGetBaseInfo` answered: the sectors the round's challenge selected and
//! the randomness. Each sector's vanilla proof is made within the check timeout (a hung
//! disk fails the round instead of hanging it), the SNARK is made over them and checked
//! with the verifier before it is answered, since a block with a bad proof is a lost
//! reward. A warm-up at start proves one of the miner's own sectors, so the parameters
//! are loaded and the files checked before the first real round needs them. Every round
//! is recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chain_client::types::{ExtendedSectorInfo, PoStProof};
use chain_client::{LotusClient, Transport};
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof, SectorSize};
use proofs::ProofBackend;
use proofs::tasks::PostReplica;
use serde::Serialize;

use crate::runner::{PostVerifier, ReplicaLocator, check_replicas, snark_and_verify};

/// How many round records are kept.
const RECORDS_KEPT: usize = 256;

/// Why a winning PoSt could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WinningError {
    /// The request named no sector.
    #[error("the request names no sector to prove")]
    NoSectors,
    /// The sectors were sealed with proofs of different sizes.
    #[error("the challenged sectors were sealed with different proofs ({0:?} and {1:?})")]
    MixedProofs(RegisteredSealProof, RegisteredSealProof),
    /// The seal proof has no winning PoSt this service knows.
    #[error("sectors sealed with {0:?} have no winning PoSt")]
    NoWinningProof(RegisteredSealProof),
    /// A sector's CID is not a replica commitment.
    #[error("sector {0}'s sealed CID is not a replica commitment")]
    NotAReplica(u64),
    /// No configured store holds these sectors.
    #[error("no store on this host holds sectors {0:?}")]
    NotOnThisHost(Vec<u64>),
    /// These sectors' files failed the check.
    #[error("the files of sectors {0:?} failed the check")]
    CheckFailed(Vec<u64>),
    /// The SNARK failed or did not verify.
    #[error("the proof could not be made: {0}")]
    Proof(String),
    /// The miner has no sector this host could warm up with.
    #[error("no sector of this miner is on this host to warm up with")]
    NothingToWarmUpWith,
    /// The chain could not be read.
    #[error("read the chain: {0}")]
    Chain(String),
}

/// The winning PoSt proof type of sectors sealed with `seal_proof`.
pub fn winning_proof_type(
    seal_proof: RegisteredSealProof,
) -> Result<RegisteredPoStProof, WinningError> {
    Ok(match seal_proof.sector_size() {
        Ok(SectorSize::_2KiB) => RegisteredPoStProof::StackedDRGWinning2KiBV1,
        Ok(SectorSize::_8MiB) => RegisteredPoStProof::StackedDRGWinning8MiBV1,
        Ok(SectorSize::_512MiB) => RegisteredPoStProof::StackedDRGWinning512MiBV1,
        Ok(SectorSize::_32GiB) => RegisteredPoStProof::StackedDRGWinning32GiBV1,
        Ok(SectorSize::_64GiB) => RegisteredPoStProof::StackedDRGWinning64GiBV1,
        Err(_) => return Err(WinningError::NoWinningProof(seal_proof)),
    })
}

/// The proof type shared by all `sectors`, checked before any file is read.
pub fn request_proof_type(
    sectors: &[ExtendedSectorInfo],
) -> Result<RegisteredPoStProof, WinningError> {
    let first = sectors.first().ok_or(WinningError::NoSectors)?;
    if let Some(other) = sectors
        .iter()
        .find(|sector| sector.seal_proof != first.seal_proof)
    {
        return Err(WinningError::MixedProofs(
            first.seal_proof,
            other.seal_proof,
        ));
    }
    winning_proof_type(first.seal_proof)
}

/// What one round (or the warm-up) came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WinningRecord {
    /// The round, or for the warm-up the head it was made at.
    pub round: ChainEpoch,
    /// Whether this was the warm-up.
    pub warm_up: bool,
    /// The sectors proven.
    pub sectors: Vec<u64>,
    /// When it was asked, in seconds since the Unix epoch.
    pub asked_at: u64,
    /// Milliseconds from the request to the answer.
    pub elapsed_ms: u64,
    /// Why there is no proof, when there is none.
    pub error: Option<String>,
}

/// One miner's winning PoSt service.
pub struct WinningPostService {
    miner: Address,
    backend: Arc<dyn ProofBackend>,
    verifier: PostVerifier,
    locator: Arc<dyn ReplicaLocator>,
    check_timeout: Duration,
    records: Arc<Mutex<VecDeque<WinningRecord>>>,
}

impl std::fmt::Debug for WinningPostService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WinningPostService")
            .field("miner", &self.miner)
            .field("verifier", &self.verifier)
            .field("check_timeout", &self.check_timeout)
            .finish_non_exhaustive()
    }
}

impl WinningPostService {
    /// A service proving for `miner` with `backend`, checking with `verifier`, finding
    /// the replicas with `locator`; each sector's file check gets `check_timeout`.
    pub fn new(
        miner: Address,
        backend: Arc<dyn ProofBackend>,
        verifier: PostVerifier,
        locator: Arc<dyn ReplicaLocator>,
        check_timeout: Duration,
    ) -> WinningPostService {
        WinningPostService {
            miner,
            backend,
            verifier,
            locator,
            check_timeout,
            records: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The miner this service proves for.
    pub fn miner(&self) -> Address {
        self.miner
    }

    /// The latest rounds, oldest first.
    pub fn records(&self) -> Vec<WinningRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The winning PoSt of `sectors` (the round's challenged sectors) for `randomness` at
    /// `round`, checked before it is answered.
    pub async fn prove(
        &self,
        sectors: &[ExtendedSectorInfo],
        randomness: [u8; 32],
        round: ChainEpoch,
    ) -> Result<Vec<PoStProof>, WinningError> {
        self.prove_and_record(sectors, randomness, round, false)
            .await
    }

    /// Proves one sector of the miner this host holds, with arbitrary randomness, so the
    /// parameters are loaded and the files read before a real round: how long it took.
    pub async fn warm_up<T: Transport>(
        &self,
        chain: &LotusClient<T>,
    ) -> Result<Duration, WinningError> {
        let head = chain
            .chain_head()
            .await
            .map_err(|error| WinningError::Chain(error.to_string()))?;
        let active = chain
            .state_miner_active_sectors(&self.miner, &head.key())
            .await
            .map_err(|error| WinningError::Chain(error.to_string()))?;
        let miner_id = self.miner.id().unwrap_or_default();
        let Some(sector) = active.into_iter().find(|sector| {
            self.locator
                .locate(miner_id, sector.sector_number)
                .is_some()
        }) else {
            self.record(WinningRecord {
                round: head.height,
                warm_up: true,
                sectors: Vec::new(),
                asked_at: unix_seconds(),
                elapsed_ms: 0,
                error: Some(WinningError::NothingToWarmUpWith.to_string()),
            });
            return Err(WinningError::NothingToWarmUpWith);
        };
        let started = Instant::now();
        let sectors = [ExtendedSectorInfo {
            seal_proof: sector.seal_proof,
            sector_number: sector.sector_number,
            sector_key: sector.sector_key_cid,
            sealed_cid: sector.sealed_cid,
        }];
        let mut randomness = [0x3c; 32];
        randomness[31] &= 0x3f;
        self.prove_and_record(&sectors, randomness, head.height, true)
            .await?;
        Ok(started.elapsed())
    }

    async fn prove_and_record(
        &self,
        sectors: &[ExtendedSectorInfo],
        mut randomness: [u8; 32],
        round: ChainEpoch,
        warm_up: bool,
    ) -> Result<Vec<PoStProof>, WinningError> {
        // The proofs take the randomness as a field element, as Lotus's prover makes it.
        randomness[31] &= 0x3f;
        let asked_at = unix_seconds();
        let started = Instant::now();
        let answer = self.make(sectors, randomness).await;
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let outcome = if answer.is_ok() { "proven" } else { "failed" };
        telemetry::metrics::counter!(
            "sealcluster_winning_post_total",
            "miner" => self.miner.to_string(),
            "outcome" => outcome
        )
        .increment(1);
        telemetry::metrics::histogram!(
            "sealcluster_winning_post_duration_seconds",
            "miner" => self.miner.to_string()
        )
        .record(elapsed.as_secs_f64());
        let numbers: Vec<u64> = sectors.iter().map(|sector| sector.sector_number).collect();
        match &answer {
            Ok(_) => {
                tracing::info!(miner = %self.miner, round, sectors = ?numbers, elapsed_ms, warm_up, "winning PoSt made")
            }
            Err(error) => {
                tracing::warn!(miner = %self.miner, round, sectors = ?numbers, elapsed_ms, warm_up, %error, "no winning PoSt")
            }
        }
        self.record(WinningRecord {
            round,
            warm_up,
            sectors: numbers,
            asked_at,
            elapsed_ms,
            error: answer.as_ref().err().map(ToString::to_string),
        });
        answer
    }

    async fn make(
        &self,
        sectors: &[ExtendedSectorInfo],
        randomness: [u8; 32],
    ) -> Result<Vec<PoStProof>, WinningError> {
        let proof_type = request_proof_type(sectors)?;
        let api_proof_type = proofs::api::RegisteredPoStProof::try_from(proof_type)
            .map_err(|error| WinningError::Proof(error.to_string()))?;
        let miner_id = self.miner.id().unwrap_or_default();
        let mut replicas = Vec::with_capacity(sectors.len());
        let mut missing = Vec::new();
        for sector in sectors {
            let comm_r = fvm_shared::commcid::cid_to_replica_commitment_v1(&sector.sealed_cid)
                .map_err(|_| WinningError::NotAReplica(sector.sector_number))?;
            match self.locator.locate(miner_id, sector.sector_number) {
                Some((sealed_file, cache_dir)) => replicas.push(PostReplica {
                    sector_id: proofs::api::SectorId::from(sector.sector_number),
                    comm_r,
                    cache_dir,
                    sealed_file,
                }),
                None => missing.push(sector.sector_number),
            }
        }
        if !missing.is_empty() {
            return Err(WinningError::NotOnThisHost(missing));
        }
        let (passed, proven) = check_replicas(
            &self.backend,
            miner_id,
            api_proof_type,
            randomness,
            replicas,
            self.check_timeout,
        )
        .await;
        let failed: Vec<u64> = sectors
            .iter()
            .map(|sector| sector.sector_number)
            .filter(|number| !passed.contains(number))
            .collect();
        if !failed.is_empty() {
            return Err(WinningError::CheckFailed(failed));
        }
        // A challenge may select a sector more than once; each selection needs its proof.
        let entries = sectors
            .iter()
            .filter_map(|sector| proven.get(&sector.sector_number).cloned())
            .collect();
        let proof = snark_and_verify(
            &self.backend,
            self.verifier,
            miner_id,
            api_proof_type,
            randomness,
            entries,
        )
        .await
        .map_err(WinningError::Proof)?;
        Ok(vec![PoStProof {
            post_proof: proof_type,
            proof_bytes: proof,
        }])
    }

    fn record(&self, record: WinningRecord) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.push_back(record);
        while records.len() > RECORDS_KEPT {
            records.pop_front();
        }
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(number: u64, seal_proof: RegisteredSealProof) -> ExtendedSectorInfo {
        ExtendedSectorInfo {
            seal_proof,
            sector_number: number,
            sector_key: None,
            sealed_cid: cid::Cid::default(),
        }
    }

    #[test]
    fn a_request_s_proof_type_comes_from_its_sectors() {
        use RegisteredSealProof::*;
        assert_eq!(request_proof_type(&[]), Err(WinningError::NoSectors));
        assert_eq!(
            request_proof_type(&[sector(1, StackedDRG2KiBV1P1)]),
            Ok(RegisteredPoStProof::StackedDRGWinning2KiBV1)
        );
        assert_eq!(
            request_proof_type(&[sector(1, StackedDRG32GiBV1P1_Feat_SyntheticPoRep)]),
            Ok(RegisteredPoStProof::StackedDRGWinning32GiBV1)
        );
        assert_eq!(
            request_proof_type(&[sector(1, StackedDRG2KiBV1P1), sector(2, StackedDRG8MiBV1P1)]),
            Err(WinningError::MixedProofs(
                StackedDRG2KiBV1P1,
                StackedDRG8MiBV1P1
            ))
        );
    }
}
