//! `sector-manager.toml`: the reference's sections where the concept is the same
//! (`Common`, `PersistStores`, `Miners[].Sector / Commitment / PoSt / Proof / Sealing`),
//! unknown keys refused with the file, line and column, and the sealing defaults workers
//! inherit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fvm_shared::econ::TokenAmount;
use sealer_api::SealingDefaults;
use serde::{Deserialize, Deserializer};
use storage_alloc::PersistStoreConfig;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ManagerConfig {
    /// Settings shared by every miner.
    #[serde(default)]
    pub common: CommonConfig,
    /// One block per storage-provider actor.
    #[serde(default)]
    pub miners: Vec<MinerConfig>,
}

/// `[Common]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CommonConfig {
    /// Where the JSON-RPC API, the admin page and the metrics listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The chain node.
    #[serde(default, rename = "API")]
    pub api: ApiConfig,
    /// The database.
    #[serde(default, rename = "DB")]
    pub db: DatabaseConfig,
    /// Who may call what.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Persistent stores sealed sectors are moved to.
    #[serde(default)]
    pub persist_stores: Vec<PersistStoreEntry>,
    /// The `[sealing]` settings workers inherit unless they override them (the worker
    /// TOML's key names).
    #[serde(default)]
    pub worker_sealing: SealingDefaults,
    /// The admin page served at `/`.
    #[serde(default)]
    pub web_admin: WebAdminConfig,
    /// Where traces go.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[Common.Telemetry]`: OpenTelemetry traces over OTLP/HTTP; the standard `OTEL_*`
/// variables override these.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP endpoint, like `http://127.0.0.1:4318`; empty exports
    /// nothing.
    #[serde(default)]
    pub otlp_endpoint: String,
    /// The `service.name` of the manager's spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// The share of sectors traced, from 0 to 1.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

fn default_service_name() -> String {
    "sector-manager".to_owned()
}

fn default_sample_ratio() -> f64 {
    1.0
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: String::new(),
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }
}

impl TelemetryConfig {
    /// The settings, with the `OTEL_*` variables applied.
    pub fn settings(&self) -> telemetry::TelemetrySettings {
        telemetry::TelemetrySettings::resolve(
            &self.service_name,
            Some(self.otlp_endpoint.as_str()),
            self.sample_ratio,
        )
    }
}

/// `[Common.WebAdmin]`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct WebAdminConfig {
    /// Where a sector's trace opens, with `{trace_id}` standing for its id, like
    /// `http://jaeger.example:16686/trace/{trace_id}`; empty shows the id unlinked.
    #[serde(default)]
    pub trace_url: String,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            listen: default_listen(),
            api: ApiConfig::default(),
            db: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            persist_stores: Vec::new(),
            worker_sealing: SealingDefaults::default(),
            web_admin: WebAdminConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1789))
}

/// `[Common.API]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ApiConfig {
    /// The Lotus full node, as `TOKEN:/ip4/…/tcp/1234/http` (Lotus's `FULLNODE_API_INFO`)
    /// or a URL; a token with `write` and `sign` is needed to send messages.
    #[serde(default)]
    pub chain: String,
}

/// `[Common.DB]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DatabaseConfig {
    /// `sqlite://sector-manager.db` (relative to the home directory) or
    /// `postgres://user:password@host/database` (PostgreSQL, YugabyteDB, CockroachDB).
    #[serde(default = "default_database_url", rename = "URL")]
    pub url: String,
    /// Connections to keep open to PostgreSQL (SQLite uses one writer).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_database_url() -> String {
    "sqlite://sector-manager.db".to_owned()
}

fn default_max_connections() -> u32 {
    8
}

/// `[Common.Auth]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AuthConfig {
    /// Networks (`10.0.0.0/24`, `127.0.0.1/32`) whose hosts may call the worker methods
    /// without a token, for damocles workers, which cannot send one. Empty by default;
    /// admin methods always need an admin token.
    #[serde(default)]
    pub tokenless_worker_networks: Vec<Network>,
    /// The token of the workers' admin APIs, sent when an operator pauses or resumes a
    /// thread from the admin page; empty: `SEALING_WORKER_ADMIN_TOKEN` from the
    /// environment, as `util workers` reads it.
    #[serde(default)]
    pub worker_admin_token: String,
}

/// An IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `address` is inside this network.
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            other => other,
        };
        match (self.address, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let address: std::net::IpAddr = address.parse().map_err(|_| {
            format!("{text:?} is not a network; write it like \"10.0.0.0/24\" or \"127.0.0.1\"")
        })?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            width
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= width)
                .ok_or_else(|| format!("{text:?} has a prefix length outside 0..={width}"))?
        };
        Ok(Network { address, prefix })
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `[[Common.PersistStores]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PersistStoreEntry {
    /// The instance name workers and the index use (defaults to the path).
    #[serde(default)]
    pub name: Option<String>,
    /// The directory (`sealed/`, `cache/` below it).
    pub path: PathBuf,
    /// Take no new sectors.
    #[serde(default)]
    pub read_only: bool,
    /// Weight in the random choice (0 counts as 1).
    #[serde(default = "one")]
    pub weight: u64,
    /// Only these miners (empty: any).
    #[serde(default)]
    pub allow_miners: Vec<u64>,
    /// Never these miners.
    #[serde(default)]
    pub deny_miners: Vec<u64>,
}

fn one() -> u64 {
    1
}

impl PersistStoreEntry {
    /// The store as `storage-alloc` models it.
    pub fn to_store(&self) -> PersistStoreConfig {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| self.path.display().to_string());
        let mut store = PersistStoreConfig::new(name, self.path.clone());
        store.weight = self.weight;
        store.read_only = self.read_only;
        store.allow_miners = self.allow_miners.clone();
        store.deny_miners = self.deny_miners.clone();
        store
    }
}

/// `[[Miners]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MinerConfig {
    /// The miner actor id (the number in `f01000`).
    pub actor: u64,
    /// Sector numbers.
    #[serde(default)]
    pub sector: SectorConfig,
    /// PreCommit and ProveCommit messages.
    #[serde(default)]
    pub commitment: CommitmentConfig,
    /// Window PoSt (read by the poster).
    #[serde(default, rename = "PoSt")]
    pub post: PostConfig,
    /// Winning PoSt (read by the poster).
    #[serde(default)]
    pub proof: ProofConfig,
    /// Sealing rules.
    #[serde(default)]
    pub sealing: SealingRules,
}

/// `[Miners.Sector]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SectorConfig {
    /// Numbers allocated are greater than this.
    #[serde(default)]
    pub min_number: Option<u64>,
    /// No number above this is allocated.
    #[serde(default)]
    pub max_number: Option<u64>,
    /// Allocate new sectors for this miner.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Ask the market for deals (no market is wired yet: must stay false).
    #[serde(default)]
    pub enable_deals: bool,
    /// Committed-capacity sectors' lifetime in days.
    #[serde(default = "default_lifetime_days")]
    pub lifetime_days: u64,
}

impl Default for SectorConfig {
    fn default() -> Self {
        SectorConfig {
            min_number: None,
            max_number: None,
            enabled: true,
            enable_deals: false,
            lifetime_days: default_lifetime_days(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_lifetime_days() -> u64 {
    540
}

/// `[Miners.Commitment]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CommitmentConfig {
    /// Epochs after execution before a message counts as landed.
    #[serde(default = "default_confidence")]
    pub confidence: i64,
    /// PreCommitSectorBatch2.
    #[serde(default = "CommitKindConfig::default_pre")]
    pub pre: CommitKindConfig,
    /// ProveCommitSectors3.
    #[serde(default = "CommitKindConfig::default_prove")]
    pub prove: CommitKindConfig,
}

impl Default for CommitmentConfig {
    fn default() -> Self {
        CommitmentConfig {
            confidence: default_confidence(),
            pre: CommitKindConfig::default_pre(),
            prove: CommitKindConfig::default_prove(),
        }
    }
}

fn default_confidence() -> i64 {
    10
}

/// `[Miners.Commitment.Pre]` and `[Miners.Commitment.Prove]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CommitKindConfig {
    /// The address that sends (an owner, worker or control address of the miner);
    /// empty means the miner's worker address.
    #[serde(default)]
    pub sender: Option<String>,
    /// Send the deposit or pledge along with the message.
    #[serde(default = "yes")]
    pub send_fund: bool,
    /// The most a message may spend on gas (`"0.05 FIL"`); the node's default when unset.
    #[serde(default, deserialize_with = "optional_fil")]
    pub max_fee: Option<TokenAmount>,
    /// Batching.
    pub batch: BatchConfig,
}

impl CommitKindConfig {
    fn default_pre() -> CommitKindConfig {
        CommitKindConfig {
            sender: None,
            send_fund: true,
            max_fee: None,
            batch: BatchConfig {
                threshold: 2,
                max_wait: Duration::from_secs(3600),
                check_interval: Duration::from_secs(60),
            },
        }
    }

    fn default_prove() -> CommitKindConfig {
        CommitKindConfig {
            batch: BatchConfig {
                threshold: 4,
                ..CommitKindConfig::default_pre().batch
            },
            ..CommitKindConfig::default_pre()
        }
    }
}

/// `[…Batch]`: when a batch is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct BatchConfig {
    /// Send as soon as this many sectors wait.
    pub threshold: usize,
    /// Send anyway once the oldest has waited this long (`"1h"`).
    #[serde(deserialize_with = "duration")]
    pub max_wait: Duration,
    /// How often the waiting sectors are looked at (`"1m"`).
    #[serde(deserialize_with = "duration")]
    pub check_interval: Duration,
}

/// `[Miners.PoSt]`: the window PoSt runner's settings (`sector-manager daemon run
/// --poster`), with the reference's keys and defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PostConfig {
    /// Prove this miner's deadlines.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The sending address (default: the miner's worker).
    #[serde(default)]
    pub sender: Option<String>,
    /// The reference's list of senders; the first is used when `Sender` is empty.
    #[serde(default)]
    pub senders: Vec<String>,
    /// Epochs on top of the challenge epoch before a deadline's proof is started (the
    /// reference: 0 means 10).
    #[serde(default)]
    pub challenge_confidence: i64,
    /// Epochs after a deadline opens before its proof is submitted (0 means 4).
    #[serde(default)]
    pub submit_confidence: i64,
    /// The most partitions one message carries (0: the network's limit).
    #[serde(default, rename = "MaxPartitionsPerPoStMessage")]
    pub max_partitions_per_post_message: u64,
    /// How long one sector's file check may take before it is skipped (`"1m"`).
    #[serde(default = "default_post_check_timeout", deserialize_with = "duration")]
    pub check_timeout: Duration,
    /// Accepted for the reference's files: sealcluster always checks the files (by
    /// making each sector's vanilla proof).
    #[serde(default)]
    pub strict_check: Option<bool>,
    /// Accepted for the reference's files; batches are proven one after another.
    #[serde(default)]
    pub parallel: Option<bool>,
    /// Accepted for the reference's files; messages are followed until they land.
    #[serde(default)]
    pub confidence: Option<i64>,
    /// Accepted for the reference's files; every recovered sector is declared.
    #[serde(default)]
    pub max_recover_sector_limit: Option<u64>,
    /// Accepted for the reference's files; recoveries go in one message.
    #[serde(default)]
    pub max_partitions_per_recovery_message: Option<u64>,
    /// Accepted for the reference's files; the node sets the fees.
    #[serde(default)]
    pub fee_config: Option<toml::Value>,
}

fn default_post_check_timeout() -> Duration {
    Duration::from_secs(60)
}

impl PostConfig {
    /// Epochs after the challenge before a proof starts.
    pub fn effective_challenge_confidence(&self) -> i64 {
        if self.challenge_confidence > 0 {
            self.challenge_confidence
        } else {
            10
        }
    }

    /// Epochs after opening before a proof is submitted.
    pub fn effective_submit_confidence(&self) -> i64 {
        if self.submit_confidence > 0 {
            self.submit_confidence
        } else {
            4
        }
    }
}

impl Default for PostConfig {
    fn default() -> Self {
        PostConfig {
            enabled: true,
            sender: None,
            senders: Vec::new(),
            challenge_confidence: 0,
            submit_confidence: 0,
            max_partitions_per_post_message: 0,
            check_timeout: default_post_check_timeout(),
            strict_check: None,
            parallel: None,
            confidence: None,
            max_recover_sector_limit: None,
            max_partitions_per_recovery_message: None,
            fee_config: None,
        }
    }
}

/// `[Miners.Proof]`: the winning PoSt service (`sector-manager daemon run --miner`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ProofConfig {
    /// Compute winning PoSts for this miner.
    #[serde(default)]
    pub enabled: bool,
}

/// `[Miners.Sealing]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SealingRules {
    /// Seal with the synthetic-PoRep proof variant.
    #[serde(default)]
    pub use_synthetic_po_rep: bool,
    /// Epochs a precommit must be buried under before its seed is handed out.
    #[serde(default = "default_seed_confidence")]
    pub seed_confidence: i64,
    /// How far back from the head tickets are drawn (mainnet: 900, the chain finality).
    #[serde(default = "default_ticket_lookback")]
    pub ticket_lookback: i64,
}

impl Default for SealingRules {
    fn default() -> Self {
        SealingRules {
            use_synthetic_po_rep: false,
            seed_confidence: default_seed_confidence(),
            ticket_lookback: default_ticket_lookback(),
        }
    }
}

fn default_seed_confidence() -> i64 {
    6
}

fn default_ticket_lookback() -> i64 {
    900
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration ({error}); write it like \"1m\" or \"1h30m\""
        ))
    })
}

/// Parses `"0.05 FIL"`, `"5 nanoFIL"`, `"100 attoFIL"` (the reference's `FIL` values).
pub fn parse_fil(text: &str) -> Result<TokenAmount, String> {
    let text = text.trim();
    let (number, unit) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(number, unit)| (number.trim(), unit.trim()));
    let decimals: u32 = match unit.to_ascii_lowercase().as_str() {
        "" | "fil" => 18,
        "nanofil" | "nfil" => 9,
        "attofil" | "afil" => 0,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; write it like \"0.05 FIL\", \"5 nanoFIL\" or \"100 attoFIL\""
            ));
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !digits_ok(whole)
        || !digits_ok(fraction)
        || fraction.len() > decimals as usize
    {
        return Err(format!(
            "{text:?} is not an amount; write it like \"0.05 FIL\" (at most {decimals} decimals in this unit)"
        ));
    }
    let padded = format!("{whole}{fraction:0<width$}", width = decimals as usize);
    let atto: num_bigint_like::Atto = padded
        .trim_start_matches('0')
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    Ok(TokenAmount::from_atto(atto.0))
}

mod num_bigint_like {
    //! A decimal string to an attoFIL count, without a direct big-integer dependency.

    /// An attoFIL count.
    pub(super) struct Atto(pub(super) u128);

    impl std::str::FromStr for Atto {
        type Err = ();
        fn from_str(text: &str) -> Result<Self, ()> {
            if text.is_empty() {
                return Ok(Atto(0));
            }
            text.parse::<u128>().map(Atto).map_err(|_| ())
        }
    }
}

fn optional_fil<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TokenAmount>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_fil(text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ManagerConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<ManagerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        ManagerConfig::parse(path, &text)
    }

    /// Parses and checks `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ManagerConfig, ConfigError> {
        let invalid = |offset: usize, message: String| {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let config: ManagerConfig = toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            invalid(offset, error.message().to_owned())
        })?;
        let locate = |needle: &str| text.find(needle).unwrap_or(0);
        let mut seen = std::collections::BTreeSet::new();
        for miner in &config.miners {
            if !seen.insert(miner.actor) {
                return Err(invalid(
                    locate(&format!("{}", miner.actor)),
                    format!(
                        "miner {} is configured twice; merge its [[Miners]] blocks",
                        miner.actor
                    ),
                ));
            }
            if let (Some(min), Some(max)) = (miner.sector.min_number, miner.sector.max_number)
                && min >= max
            {
                return Err(invalid(
                    locate("MaxNumber"),
                    format!(
                        "miner {}: MaxNumber {max} must be greater than MinNumber {min}",
                        miner.actor
                    ),
                ));
            }
            if miner.sector.enable_deals {
                return Err(invalid(
                    locate("EnableDeals"),
                    format!(
                        "miner {}: EnableDeals needs a market, which this manager does not connect to yet; set it to false",
                        miner.actor
                    ),
                ));
            }
            for (kind, commit) in [
                ("Pre", &miner.commitment.pre),
                ("Prove", &miner.commitment.prove),
            ] {
                if commit.batch.threshold == 0 {
                    return Err(invalid(
                        locate("Threshold"),
                        format!(
                            "miner {}: Commitment.{kind}.Batch.Threshold must be at least 1",
                            miner.actor
                        ),
                    ));
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for store in &config.common.persist_stores {
            let name = store.to_store().name;
            if !names.insert(name.clone()) {
                return Err(invalid(
                    locate("PersistStores"),
                    format!("two persistent stores are named {name:?}; give each its own Name"),
                ));
            }
        }
        Ok(config)
    }

    /// The miner's block, if configured.
    pub fn miner(&self, actor: u64) -> Option<&MinerConfig> {
        self.miners.iter().find(|miner| miner.actor == actor)
    }
}

/// The commented default written by `sector-manager config init`.
pub const DEFAULT_CONFIG: &str = r#"# sector-manager.toml: the sealing control plane's configuration.
# Durations are written like "30s", "1m", "1h"; amounts like "0.05 FIL" or "5 nanoFIL".

[Common]
# Where workers, operators and the admin page reach the manager.
Listen = "127.0.0.1:1789"

[Common.API]
# The Lotus full node: its FULLNODE_API_INFO (a token with write and sign, a colon, the
# multiaddr), or a URL.
Chain = ""

[Common.DB]
# SQLite in the home directory by default; PostgreSQL (and so YugabyteDB or CockroachDB)
# with a URL such as "postgres://manager:secret@db.example/sealing".
URL = "sqlite://sector-manager.db"
MaxConnections = 8

[Common.Auth]
# Hosts that may call the worker methods without a token (damocles workers cannot send
# one), as networks: ["10.0.0.0/24"]. Admin methods always need an admin token.
TokenlessWorkerNetworks = []
# The workers' admin token, for pausing and resuming their threads from the admin page;
# empty: SEALING_WORKER_ADMIN_TOKEN from the environment.
WorkerAdminToken = ""

[Common.Telemetry]
# OpenTelemetry traces over OTLP/HTTP, one trace per sector; empty sends none. The
# standard OTEL_* variables override these.
OtlpEndpoint = ""                  # like "http://127.0.0.1:4318"
ServiceName = "sector-manager"
SampleRatio = 1.0

[Common.WebAdmin]
# Where the admin page links a sector's trace id, like
# "http://jaeger.example:16686/trace/{trace_id}"; empty shows the id unlinked.
TraceUrl = ""

# Persistent stores that sealed sectors are moved to; repeat the block for each.
# [[Common.PersistStores]]
# Name = "persist-1"
# Path = "/mnt/persist1"
# Weight = 1
# ReadOnly = false
# AllowMiners = []
# DenyMiners = []

# The [sealing] settings every worker inherits unless its own file overrides them; the
# keys are the worker's.
[Common.WorkerSealing]
# max_retries = 5
# seal_interval = "30s"
# rpc_polling_interval = "180s"

# One block per storage-provider actor.
# [[Miners]]
# Actor = 1000
#
# [Miners.Sector]
# MinNumber = 0          # numbers allocated are greater than this
# MaxNumber = 1000000    # none above this
# Enabled = true
# LifetimeDays = 540
#
# [Miners.Commitment]
# Confidence = 10        # epochs before a message counts as landed
#
# [Miners.Commitment.Pre]
# Sender = ""            # empty: the miner's worker address
# SendFund = true
# MaxFee = "0.05 FIL"
# Batch = { Threshold = 2, MaxWait = "1h", CheckInterval = "1m" }
#
# [Miners.Commitment.Prove]
# Sender = ""
# SendFund = true
# Batch = { Threshold = 4, MaxWait = "1h", CheckInterval = "1m" }
#
# [Miners.Sealing]
# SeedConfidence = 6     # epochs a precommit is buried before its seed is handed out
# TicketLookback = 900   # epochs behind the head that tickets are drawn
#
# Window PoSt, proven by `sector-manager daemon run --poster`.
# [Miners.PoSt]
# Enabled = true
# Sender = ""                       # default: the miner's worker address
# ChallengeConfidence = 10          # epochs after the challenge before a proof starts
# SubmitConfidence = 4              # epochs after a deadline opens before it is sent
# MaxPartitionsPerPoStMessage = 0   # 0: the network's limit
# CheckTimeout = "1m"               # one sector's file check; slower ones are skipped
#
# Winning PoSt for block producers, served by `sector-manager daemon run --miner`
# (Venus.ComputeWinningPoSt; the file checks use CheckTimeout above).
# [Miners.Proof]
# Enabled = true
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_parses_and_typos_are_refused_with_their_place() {
        let config = ManagerConfig::parse(Path::new("x.toml"), DEFAULT_CONFIG).expect("default");
        assert!(config.miners.is_empty());
        let text = "[Common]\nListen = \"127.0.0.1:1\"\n\n[[Miners]]\nActor = 1000\n[Miners.Sector]\nMaxNumbr = 5\n";
        let error = ManagerConfig::parse(Path::new("m.toml"), text)
            .expect_err("typo")
            .to_string();
        assert!(error.starts_with("m.toml:7:1: "), "{error}");
        assert!(
            error.contains("MaxNumber"),
            "names the expected keys: {error}"
        );
        let text = "[[Miners]]\nActor = 1000\n[Miners.Commitment.Pre]\nMaxFee = \"lots\"\nBatch = { Threshold = 1, MaxWait = \"1m\", CheckInterval = \"1s\" }\n";
        let error = ManagerConfig::parse(Path::new("m.toml"), text)
            .expect_err("bad amount")
            .to_string();
        assert!(
            error.contains("m.toml:4:") && error.contains("0.05 FIL"),
            "{error}"
        );
    }

    #[test]
    fn amounts_and_networks_parse_like_the_references() {
        assert_eq!(
            parse_fil("0.05 FIL"),
            Ok(TokenAmount::from_atto(50_000_000_000_000_000u128))
        );
        assert_eq!(
            parse_fil("5 nanoFIL"),
            Ok(TokenAmount::from_atto(5_000_000_000u128))
        );
        assert_eq!(parse_fil("7 afil"), Ok(TokenAmount::from_atto(7u128)));
        assert_eq!(parse_fil("1"), Ok(TokenAmount::from_atto(10u128.pow(18))));
        assert!(parse_fil("0.5 attoFIL").is_err());
        assert!(parse_fil("five FIL").is_err());
        let network: Network = "10.0.0.0/24".parse().expect("a network");
        assert!(network.contains("10.0.0.77".parse().expect("ip")));
        assert!(!network.contains("10.0.1.1".parse().expect("ip")));
        assert!(network.contains("::ffff:10.0.0.3".parse().expect("mapped ip")));
        let host: Network = "127.0.0.1".parse().expect("a host");
        assert!(host.contains("127.0.0.1".parse().expect("ip")));
        assert!(!host.contains("127.0.0.2".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
    }
}
