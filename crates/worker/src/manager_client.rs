//! The worker's side of the manager's `Venus.*` API: one typed method per call a
//! sealing thread makes, and every failure classified by what the thread should do.
//!
//! The calls go out as damocles-worker sends them (positional parameters, the same
//! JSON), so this client also works against damocles-manager. A call is made once; the
//! sealing thread decides about retries through its retry policy, using
//! [`ManagerError::failure_level`].

use std::time::Duration;

use chain_client::rpc::{ErrorKind, Transport};
use chain_client::transport::HttpTransport;
use sealer_api::sealer as method;
use sealer_api::types::{
    AcquireDealsSpec, AllocateSectorSpec, AllocatedSector, PollStateResponse, PreCommitOnChainInfo,
    ProofOnChainInfo, ReportStateRequest, SealingDefaults, SectorId, SectorPiece,
    SectorStateResponse, StoreBasicInfo, SubmitResponse, Ticket, WaitSeedResponse, WorkerInfo,
};
use sector_fsm::FailureLevel;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::SectorManagerSection;

/// What kind of failure a call met, which decides what the thread does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagerErrorKind {
    /// The manager has no record of the sector (11001): it was finalized, aborted or
    /// never allocated there; the thread drops it.
    SectorNotFound,
    /// The manager answered with an error that may pass (its code 1).
    Temporary,
    /// The manager could not be reached or did not answer in time.
    Unreachable,
    /// The manager refused the token (HTTP 401 or a missing permission): every call of
    /// this worker will fail until an operator fixes the configuration.
    Refused,
    /// The answer cannot be read, or the manager does not know the method: a version
    /// mismatch an operator must look at.
    Unreadable,
}

/// A failed call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{method}: {message}")]
pub struct ManagerError {
    /// What kind.
    pub kind: ManagerErrorKind,
    /// The method called.
    pub method: String,
    /// What went wrong.
    pub message: String,
}

impl ManagerError {
    /// How a sealing thread treats the failure: a lost sector is aborted, a refused
    /// token or an unreadable answer pauses the thread for an operator, anything else is
    /// retried.
    pub fn failure_level(&self) -> FailureLevel {
        match self.kind {
            ManagerErrorKind::SectorNotFound => FailureLevel::Abort,
            ManagerErrorKind::Temporary | ManagerErrorKind::Unreachable => FailureLevel::Temporary,
            ManagerErrorKind::Refused | ManagerErrorKind::Unreadable => FailureLevel::Permanent,
        }
    }

    fn from_chain_error(error: chain_client::ChainError) -> ManagerError {
        let kind = match (error.kind, error.code) {
            (_, Some(sealer_api::ERROR_SECTOR_STATE_NOT_FOUND)) => ManagerErrorKind::SectorNotFound,
            (ErrorKind::Transport, _) => ManagerErrorKind::Unreachable,
            (ErrorKind::Permission, _) => ManagerErrorKind::Refused,
            (_, Some(sealer_api::ERROR_TEMPORARY)) => ManagerErrorKind::Temporary,
            (_, Some(chain_client::rpc::METHOD_NOT_FOUND_CODE)) => ManagerErrorKind::Unreadable,
            (_, None) => ManagerErrorKind::Unreadable,
            // Any other code the manager chose: damocles-manager answers most failures
            // with its own codes, all of which it expects a worker to retry.
            (_, Some(_)) => ManagerErrorKind::Temporary,
        };
        ManagerError {
            kind,
            method: error.method,
            message: error.message,
        }
    }
}

/// A client of one manager.
#[derive(Clone, Debug)]
pub struct ManagerClient<T = HttpTransport> {
    transport: T,
}

impl ManagerClient<HttpTransport> {
    /// A client of the manager `[sector_manager]` names, presenting its `token` and
    /// sending its `rpc_client.headers`; every call takes at most `timeout`.
    pub fn connect(
        section: &SectorManagerSection,
        timeout: Duration,
    ) -> Result<ManagerClient<HttpTransport>, String> {
        let url = section.rpc_url()?;
        let endpoint = chain_client::Endpoint {
            websocket_url: url.replacen("http", "ws", 1),
            http_url: url,
            token: section.token.clone(),
        };
        let transport = HttpTransport::new(endpoint, timeout)
            .and_then(|transport| {
                transport.with_headers(
                    section
                        .rpc_client
                        .headers
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_str())),
                )
            })
            .map_err(|error| error.message)?;
        Ok(ManagerClient { transport })
    }
}

fn argument(value: impl Serialize) -> Value {
    // The API's types serialise to JSON without fail (no maps with non-string keys).
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl<T: Transport> ManagerClient<T> {
    /// A client over any transport (tests use this with an in-process one).
    pub fn over(transport: T) -> ManagerClient<T> {
        ManagerClient { transport }
    }

    async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> Result<R, ManagerError> {
        let answer = self
            .transport
            .call(method, params)
            .await
            .map_err(ManagerError::from_chain_error)?;
        serde_json::from_value(answer).map_err(|error| ManagerError {
            kind: ManagerErrorKind::Unreadable,
            method: method.to_owned(),
            message: format!("the answer does not read as expected: {error}"),
        })
    }

    /// Any method with positional `params`, answering its raw JSON (for the methods of
    /// plans this worker does not run yet).
    pub async fn raw_call(&self, method: &str, params: Vec<Value>) -> Result<Value, ManagerError> {
        self.call(method, params).await
    }

    /// `Venus.AllocateSector`: a new sector, or `None` when the manager has none now.
    pub async fn allocate_sector(
        &self,
        spec: &AllocateSectorSpec,
    ) -> Result<Option<AllocatedSector>, ManagerError> {
        self.call(method::ALLOCATE_SECTOR, vec![argument(spec)])
            .await
    }

    /// `Venus.AcquireDeals`: the deals to seal into the sector (`None`: none).
    pub async fn acquire_deals(
        &self,
        sector: SectorId,
        spec: &AcquireDealsSpec,
    ) -> Result<Option<Vec<SectorPiece>>, ManagerError> {
        self.call(
            method::ACQUIRE_DEALS,
            vec![argument(sector), argument(spec)],
        )
        .await
    }

    /// `Venus.AssignTicket`.
    pub async fn assign_ticket(&self, sector: SectorId) -> Result<Ticket, ManagerError> {
        self.call(method::ASSIGN_TICKET, vec![argument(sector)])
            .await
    }

    /// `Venus.SubmitPreCommit`.
    pub async fn submit_pre_commit(
        &self,
        sector: &AllocatedSector,
        info: &PreCommitOnChainInfo,
        hard_reset: bool,
    ) -> Result<SubmitResponse, ManagerError> {
        self.call(
            method::SUBMIT_PRE_COMMIT,
            vec![argument(sector), argument(info), Value::Bool(hard_reset)],
        )
        .await
    }

    /// `Venus.PollPreCommitState`.
    pub async fn poll_pre_commit_state(
        &self,
        sector: SectorId,
    ) -> Result<PollStateResponse, ManagerError> {
        self.call(method::POLL_PRE_COMMIT_STATE, vec![argument(sector)])
            .await
    }

    /// `Venus.WaitSeed`.
    pub async fn wait_seed(
        &self,
        sector: SectorId,
        seal_proof: u64,
    ) -> Result<WaitSeedResponse, ManagerError> {
        self.call(
            method::WAIT_SEED,
            vec![argument(sector), argument(seal_proof)],
        )
        .await
    }

    /// `Venus.SubmitProof`.
    pub async fn submit_proof(
        &self,
        sector: SectorId,
        info: &ProofOnChainInfo,
        hard_reset: bool,
    ) -> Result<SubmitResponse, ManagerError> {
        self.call(
            method::SUBMIT_PROOF,
            vec![argument(sector), argument(info), Value::Bool(hard_reset)],
        )
        .await
    }

    /// `Venus.PollProofState`.
    pub async fn poll_proof_state(
        &self,
        sector: SectorId,
    ) -> Result<PollStateResponse, ManagerError> {
        self.call(method::POLL_PROOF_STATE, vec![argument(sector)])
            .await
    }

    /// `Venus.StoreReserveSpace`: a persistent store with `size` bytes promised to the
    /// sector, chosen among `candidates` (any store when empty); `None` when none fits.
    pub async fn store_reserve_space(
        &self,
        sector: SectorId,
        size: u64,
        candidates: &[String],
    ) -> Result<Option<StoreBasicInfo>, ManagerError> {
        self.call(
            method::STORE_RESERVE_SPACE,
            vec![argument(sector), argument(size), argument(candidates)],
        )
        .await
    }

    /// `Venus.StoreBasicInfo`: what the manager knows of a persistent store.
    pub async fn store_basic_info(
        &self,
        instance: &str,
    ) -> Result<Option<StoreBasicInfo>, ManagerError> {
        self.call(method::STORE_BASIC_INFO, vec![argument(instance)])
            .await
    }

    /// `Venus.SubmitPersistedEx`: the sector's files are in `instance`; false when the
    /// manager does not find them there.
    pub async fn submit_persisted(
        &self,
        sector: SectorId,
        instance: &str,
        is_upgrade: bool,
    ) -> Result<bool, ManagerError> {
        self.call(
            method::SUBMIT_PERSISTED_EX,
            vec![
                argument(sector),
                argument(instance),
                Value::Bool(is_upgrade),
            ],
        )
        .await
    }

    /// `Venus.ReportState`.
    pub async fn report_state(
        &self,
        sector: SectorId,
        report: &ReportStateRequest,
    ) -> Result<SectorStateResponse, ManagerError> {
        self.call(
            method::REPORT_STATE,
            vec![argument(sector), argument(report)],
        )
        .await
    }

    /// `Venus.ReportFinalized`.
    pub async fn report_finalized(&self, sector: SectorId) -> Result<(), ManagerError> {
        let _: Value = self
            .call(method::REPORT_FINALIZED, vec![argument(sector)])
            .await?;
        Ok(())
    }

    /// `Venus.ReportAborted`.
    pub async fn report_aborted(&self, sector: SectorId, reason: &str) -> Result<(), ManagerError> {
        let _: Value = self
            .call(
                method::REPORT_ABORTED,
                vec![argument(sector), argument(reason)],
            )
            .await?;
        Ok(())
    }

    /// `Venus.WorkerPing`.
    pub async fn worker_ping(&self, info: &WorkerInfo) -> Result<(), ManagerError> {
        let _: Value = self.call(method::WORKER_PING, vec![argument(info)]).await?;
        Ok(())
    }

    /// `Venus.SealingDefaults` (sealcluster's manager only).
    pub async fn sealing_defaults(&self) -> Result<SealingDefaults, ManagerError> {
        self.call(method::SEALING_DEFAULTS, Vec::new()).await
    }
}
