//! The `Venus.*` method names and the JSON-RPC error codes the worker branches on.

/// The JSON-RPC path the manager serves (`go-jsonrpc`'s major version 0).
pub const RPC_PATH: &str = "/rpc/v0";

/// The error code for "the manager has no record of this sector": the worker aborts the
/// sector instead of retrying (damocles' `APIErrCodeSectorStateNotFound`).
pub const ERROR_SECTOR_STATE_NOT_FOUND: i64 = 11001;

/// The error code of any other failure the worker should retry (go-jsonrpc's default).
pub const ERROR_TEMPORARY: i64 = 1;

/// Methods a sealing worker calls, with their positional parameters.
pub mod sealer {
    /// `(AllocateSectorSpec) → AllocatedSector | null`.
    pub const ALLOCATE_SECTOR: &str = "Venus.AllocateSector";
    /// `(AllocateSectorSpec, count) → [AllocatedSector]`; declared by damocles' worker.
    pub const ALLOCATE_SECTORS_BATCH: &str = "Venus.AllocateSectorsBatch";
    /// `(SectorId, AcquireDealsSpec) → [SectorPiece] | null`.
    pub const ACQUIRE_DEALS: &str = "Venus.AcquireDeals";
    /// `(SectorId) → Ticket`.
    pub const ASSIGN_TICKET: &str = "Venus.AssignTicket";
    /// `(AllocatedSector, PreCommitOnChainInfo, hard_reset) → SubmitResponse`.
    pub const SUBMIT_PRE_COMMIT: &str = "Venus.SubmitPreCommit";
    /// `(SectorId) → PollStateResponse`.
    pub const POLL_PRE_COMMIT_STATE: &str = "Venus.PollPreCommitState";
    /// `(SectorId, instance) → bool`; the older form of `SubmitPersistedEx`.
    pub const SUBMIT_PERSISTED: &str = "Venus.SubmitPersisted";
    /// `(SectorId, instance, is_upgrade) → bool`.
    pub const SUBMIT_PERSISTED_EX: &str = "Venus.SubmitPersistedEx";
    /// `(SectorId, seal_proof) → WaitSeedResponse`.
    pub const WAIT_SEED: &str = "Venus.WaitSeed";
    /// `(SectorId, ProofOnChainInfo, hard_reset) → SubmitResponse`.
    pub const SUBMIT_PROOF: &str = "Venus.SubmitProof";
    /// `(SectorId) → PollStateResponse`.
    pub const POLL_PROOF_STATE: &str = "Venus.PollProofState";
    /// `(SectorId, ReportStateRequest) → SectorStateResponse`.
    pub const REPORT_STATE: &str = "Venus.ReportState";
    /// `(SectorId) → null`.
    pub const REPORT_FINALIZED: &str = "Venus.ReportFinalized";
    /// `(SectorId, reason) → null`.
    pub const REPORT_ABORTED: &str = "Venus.ReportAborted";
    /// `(AllocateSnapUpSpec) → AllocatedSnapUpSector | null` (the reference's spelling).
    pub const ALLOCATE_SNAP_UP_SECTOR: &str = "Venus.AllocateSanpUpSector";
    /// `(SectorId, SnapUpOnChainInfo) → SubmitResponse`.
    pub const SUBMIT_SNAP_UP_PROOF: &str = "Venus.SubmitSnapUpProof";
    /// `(AllocateSectorSpec) → SectorRebuildInfo | null`.
    pub const ALLOCATE_REBUILD_SECTOR: &str = "Venus.AllocateRebuildSector";
    /// `(AllocateSectorSpec) → SectorUnsealInfo | null`.
    pub const ALLOCATE_UNSEAL_SECTOR: &str = "Venus.AllocateUnsealSector";
    /// `(SectorId, piece_cid, error) → null`.
    pub const ACHIEVE_UNSEAL_SECTOR: &str = "Venus.AchieveUnsealSector";
    /// `(SectorId, piece_cid) → [url]`.
    pub const ACQUIRE_UNSEAL_DEST: &str = "Venus.AcquireUnsealDest";
    /// `(WorkerInfo) → null`.
    pub const WORKER_PING: &str = "Venus.WorkerPing";
    /// `(SectorId, size, candidates) → StoreBasicInfo | null`.
    pub const STORE_RESERVE_SPACE: &str = "Venus.StoreReserveSpace";
    /// `(instance) → StoreBasicInfo | null`.
    pub const STORE_BASIC_INFO: &str = "Venus.StoreBasicInfo";
    /// `(AllocatePoStSpec, count, worker_name) → [AllocatedWdPoStJob]`.
    pub const WDPOST_ALLOCATE_JOBS: &str = "Venus.WdPoStAllocateJobs";
    /// `([job_id], worker_name) → null`.
    pub const WDPOST_HEARTBEAT_JOBS: &str = "Venus.WdPoStHeartbeatJobs";
    /// `(job_id, WindowPoStOutput | null, error_reason) → null`.
    pub const WDPOST_FINISH_JOB: &str = "Venus.WdPoStFinishJob";
    /// `() → SealingDefaults`: the part of a worker's configuration it inherits from the
    /// manager (sealcluster's addition; a damocles worker never calls it).
    pub const SEALING_DEFAULTS: &str = "Venus.SealingDefaults";
}
