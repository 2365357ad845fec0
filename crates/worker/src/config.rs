//! The worker's configuration file: damocles-worker's TOML read as it is, so an
//! operator's existing file keeps working, but checked strictly.
//!
//! Sections and keys are the reference's (`[worker]`, `[metrics]`, `[sector_manager]`,
//! `[sealing]`, `[[sealing_thread]]` with `location`, `plan` and `sealing`, `[[attached]]`,
//! `[processors]`). The sections damocles-worker once read and now ignores
//! (`[remote_store]`, `[attached_selection]`) are accepted with a warning; any other
//! unknown key is an error naming the file, line and column and the nearest valid key
//! (damocles-worker ignored misspelt keys silently). Two keys are new:
//! `[sector_manager] token` (the API token this worker presents) and `rpc_client.headers`
//! now reach the manager (damocles parsed them and never sent them).
//!
//! A thread's sealing settings are layered, last wins: built-in defaults, the manager's
//! served defaults (`Venus.SealingDefaults`), `[sealing]`, the thread's `sealing`, and the
//! thread's hot-reloaded `<location>/config.toml`. [`layered_sealing`] keeps which layer
//! each value came from, so `config check` can say it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proc_sched::config::ProcessorsConfig;
use sector_fsm::Plan;
use serde::{Deserialize, Deserializer, Serialize};
use storage_alloc::SectorSize;

/// The admin API's port when `[worker] rpc_server.port` is not set (the reference's).
pub const DEFAULT_WORKER_PORT: u16 = 17890;

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
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

/// Something accepted that the operator should change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where: `file:line:column`.
    pub place: String,
    /// What and why.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.place, self.message)
    }
}

/// `[worker]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// The instance name sent to the manager; the address used to reach it if unset.
    pub name: Option<String>,
    /// Where the admin API listens.
    #[serde(default)]
    pub rpc_server: RpcServer,
    /// Period of `Venus.WorkerPing` (`"30s"`).
    #[serde(default, deserialize_with = "optional_duration")]
    pub ping_interval: Option<Duration>,
    /// The legacy single directory of local pieces.
    pub local_pieces_dir: Option<PathBuf>,
    /// Directories of local pieces (wins over `local_pieces_dir`).
    pub local_pieces_dirs: Option<Vec<PathBuf>>,
    /// Globs whose directories holding a `sectorstore.json` become attached stores.
    #[serde(default, alias = "ScanPersistStores")]
    pub scan_persist_stores: Vec<String>,
}

/// `[worker] rpc_server`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcServer {
    /// Listen host (`0.0.0.0` if unset).
    pub host: Option<String>,
    /// Listen port ([`DEFAULT_WORKER_PORT`] if unset).
    pub port: Option<u16>,
}

/// `[metrics]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve Prometheus metrics.
    #[serde(default)]
    pub enable: bool,
    /// Where (`0.0.0.0:9000` if unset).
    pub http_listen: Option<std::net::SocketAddr>,
}

/// `[telemetry]` (sealcluster's): where the worker's spans go; the standard `OTEL_*`
/// variables override it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// The collector's OTLP/HTTP endpoint, like `http://127.0.0.1:4318`.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the worker's spans (default `sealing-worker`).
    pub service_name: Option<String>,
    /// The share of new traces kept, from 0 to 1 (default 1; a sector's trace follows
    /// the manager's decision).
    pub sample_ratio: Option<f64>,
}

impl TelemetrySection {
    /// The settings, with the `OTEL_*` variables applied.
    pub fn settings(&self) -> telemetry::TelemetrySettings {
        telemetry::TelemetrySettings::resolve(
            self.service_name.as_deref().unwrap_or("sealing-worker"),
            self.otlp_endpoint.as_deref(),
            self.sample_ratio.unwrap_or(1.0),
        )
    }
}

/// `[sector_manager]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorManagerSection {
    /// How to reach the manager.
    pub rpc_client: RpcClient,
    /// The token of the piece fetcher (handed to `add_pieces` processors).
    pub piece_token: Option<String>,
    /// The API token this worker presents (sealcluster's addition; without it the
    /// manager must list this host's network as tokenless).
    pub token: Option<String>,
}

/// `[sector_manager] rpc_client`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcClient {
    /// A multiaddr (`/ip4/10.0.0.1/tcp/1789`) or a URL.
    pub addr: String,
    /// Extra HTTP headers sent with every call.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl SectorManagerSection {
    /// The manager's JSON-RPC URL: `{scheme}://{host}:{port}/rpc/v0`, from a multiaddr
    /// (`/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/http|/https]`) or a URL (whose path, if
    /// any, is kept).
    pub fn rpc_url(&self) -> Result<String, String> {
        let address = self.rpc_client.addr.trim();
        if let Some(rest) = address.strip_prefix('/') {
            let parts: Vec<&str> = rest.split('/').collect();
            let (mut host, mut port, mut scheme) = (None, None, "http");
            let mut index = 0;
            while index < parts.len() {
                match (parts[index], parts.get(index + 1)) {
                    ("ip4" | "dns" | "dns4" | "dns6", Some(value)) => {
                        host = Some((*value).to_owned());
                        index += 2;
                    }
                    ("ip6", Some(value)) => {
                        host = Some(format!("[{value}]"));
                        index += 2;
                    }
                    ("tcp", Some(value)) => {
                        port =
                            Some(value.parse::<u16>().map_err(|_| {
                                format!("{address:?}: {value:?} is not a TCP port")
                            })?);
                        index += 2;
                    }
                    ("http", _) => {
                        scheme = "http";
                        index += 1;
                    }
                    ("https", _) => {
                        scheme = "https";
                        index += 1;
                    }
                    (other, _) => {
                        return Err(format!(
                            "{address:?}: {other:?} is not understood in a manager address; write /ip4/10.0.0.1/tcp/1789"
                        ));
                    }
                }
            }
            let host = host.ok_or_else(|| format!("{address:?} names no host"))?;
            let port = port.ok_or_else(|| format!("{address:?} names no TCP port"))?;
            return Ok(format!("{scheme}://{host}:{port}{}", sealer_api::RPC_PATH));
        }
        let (scheme, rest) = address
            .split_once("://")
            .ok_or_else(|| format!("{address:?} is neither a multiaddr nor a URL"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "{address:?}: the manager is reached over http or https"
            ));
        }
        match rest.find('/') {
            Some(_) => Ok(address.to_owned()),
            None => Ok(format!("{address}{}", sealer_api::RPC_PATH)),
        }
    }
}

/// One `[[sealing_thread]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealingThreadConfig {
    /// Its sealing store (optional only for `plan = "wdpost"`).
    pub location: Option<PathBuf>,
    /// What it does (`sealer` if unset).
    pub plan: Option<Plan>,
    /// Its own sealing settings, over `[sealing]`.
    #[serde(default)]
    pub sealing: SealingOverrides,
}

impl SealingThreadConfig {
    /// The plan, `sealer` if unset.
    pub fn plan(&self) -> Plan {
        self.plan.unwrap_or(Plan::Sealer)
    }
}

/// A thread's hot-reloaded `<location>/config.toml`: a thread body without `location`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotThreadConfig {
    /// Replaces the thread's plan for its next sector.
    pub plan: Option<Plan>,
    /// Over the thread's sealing settings.
    #[serde(default)]
    pub sealing: SealingOverrides,
}

/// One `[[attached]]` persistent store.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedStore {
    /// Its name on the manager (the location if unset).
    pub name: Option<String>,
    /// Its directory.
    pub location: PathBuf,
    /// Read only: never a place to persist a new sector.
    #[serde(default)]
    pub readonly: bool,
}

impl AttachedStore {
    /// The name, or the location when no name is given (the reference's rule).
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.location.display().to_string())
    }
}

/// Sealing settings of one layer: `[sealing]`, a thread's `sealing`, a hot file, or the
/// manager's served defaults. Unset keys leave the layer below in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SealingOverrides {
    /// Miners (actor ids) a thread may allocate for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_miners: Option<Vec<u64>>,
    /// Sector sizes a thread may allocate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_sizes: Option<Vec<SectorSize>>,
    /// Ask for deals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_deals: Option<bool>,
    /// With deals enabled, never seal committed capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_cc: Option<bool>,
    /// At most this many deals per sector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_deals: Option<u64>,
    /// Fill at least this many bytes with deals (a number or `"1GiB"`).
    #[serde(
        default,
        deserialize_with = "optional_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_deal_space: Option<u64>,
    /// Temporary failures in a row before a sector is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Pause between two sectors of a thread.
    #[serde(
        default,
        deserialize_with = "optional_duration",
        serialize_with = "serialize_optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub seal_interval: Option<Duration>,
    /// Pause after a temporary failure or an idle answer.
    #[serde(
        default,
        deserialize_with = "optional_duration",
        serialize_with = "serialize_optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub recover_interval: Option<Duration>,
    /// Period of polls of the manager.
    #[serde(
        default,
        deserialize_with = "optional_duration",
        serialize_with = "serialize_optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub rpc_polling_interval: Option<Duration>,
    /// Skip polling the proof's state after submitting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_proof_check: Option<bool>,
    /// Idle answers in a row before a thread's job loop starts over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_task_max_retries: Option<u32>,
    /// Check a sector with an all-zero seed right after PC2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_after_pc2: Option<bool>,
}

impl SealingOverrides {
    /// The reference's built-in defaults, every key set.
    pub fn built_in() -> SealingOverrides {
        SealingOverrides {
            allowed_miners: None,
            allowed_sizes: None,
            enable_deals: Some(false),
            disable_cc: Some(false),
            max_deals: None,
            min_deal_space: None,
            max_retries: Some(5),
            seal_interval: Some(Duration::from_secs(30)),
            recover_interval: Some(Duration::from_secs(60)),
            rpc_polling_interval: Some(Duration::from_secs(180)),
            ignore_proof_check: Some(false),
            request_task_max_retries: Some(3),
            verify_after_pc2: Some(false),
        }
    }

    /// `self` over `below`: every key `self` sets wins.
    pub fn over(&self, below: &SealingOverrides) -> SealingOverrides {
        SealingOverrides {
            allowed_miners: self.allowed_miners.clone().or(below.allowed_miners.clone()),
            allowed_sizes: self.allowed_sizes.clone().or(below.allowed_sizes.clone()),
            enable_deals: self.enable_deals.or(below.enable_deals),
            disable_cc: self.disable_cc.or(below.disable_cc),
            max_deals: self.max_deals.or(below.max_deals),
            min_deal_space: self.min_deal_space.or(below.min_deal_space),
            max_retries: self.max_retries.or(below.max_retries),
            seal_interval: self.seal_interval.or(below.seal_interval),
            recover_interval: self.recover_interval.or(below.recover_interval),
            rpc_polling_interval: self.rpc_polling_interval.or(below.rpc_polling_interval),
            ignore_proof_check: self.ignore_proof_check.or(below.ignore_proof_check),
            request_task_max_retries: self
                .request_task_max_retries
                .or(below.request_task_max_retries),
            verify_after_pc2: self.verify_after_pc2.or(below.verify_after_pc2),
        }
    }

    /// The keys this layer sets, by their TOML names.
    pub fn set_keys(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(keys)) => keys.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The settings as TOML values by key, for people.
    pub fn values(&self) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        if let Ok(serde_json::Value::Object(keys)) = serde_json::to_value(self) {
            for (key, value) in keys {
                let text = toml::Value::try_from(&value)
                    .map(|value| value.to_string())
                    .unwrap_or_else(|_| value.to_string());
                values.insert(key, text);
            }
        }
        values
    }

    /// The manager's served defaults as a layer; a value that does not parse is left out
    /// and named in the returned warnings.
    pub fn from_manager(
        defaults: &sealer_api::types::SealingDefaults,
    ) -> (SealingOverrides, Vec<String>) {
        let mut warnings = Vec::new();
        let mut duration = |key: &str, text: &Option<String>| {
            text.as_ref()
                .and_then(|text| match humantime::parse_duration(text) {
                    Ok(duration) => Some(duration),
                    Err(error) => {
                        warnings.push(format!(
                            "the manager's {key} = {text:?} is not a duration ({error}); ignored"
                        ));
                        None
                    }
                })
        };
        let seal_interval = duration("seal_interval", &defaults.seal_interval);
        let recover_interval = duration("recover_interval", &defaults.recover_interval);
        let rpc_polling_interval = duration("rpc_polling_interval", &defaults.rpc_polling_interval);
        let allowed_sizes = defaults.allowed_sizes.as_ref().map(|sizes| {
            sizes
                .iter()
                .filter_map(|size| match size.parse::<SectorSize>() {
                    Ok(size) => Some(size),
                    Err(error) => {
                        warnings.push(format!("the manager's allowed_sizes: {error}; ignored"));
                        None
                    }
                })
                .collect()
        });
        let layer = SealingOverrides {
            allowed_miners: defaults.allowed_miners.clone(),
            allowed_sizes,
            enable_deals: defaults.enable_deals,
            disable_cc: defaults.disable_cc,
            max_deals: defaults.max_deals,
            min_deal_space: defaults.min_deal_space,
            max_retries: defaults.max_retries,
            seal_interval,
            recover_interval,
            rpc_polling_interval,
            ignore_proof_check: defaults.ignore_proof_check,
            request_task_max_retries: defaults.request_task_max_retries,
            verify_after_pc2: defaults.verify_after_pc2,
        };
        (layer, warnings)
    }
}

/// A thread's sealing settings with every key decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealing {
    /// Miners a thread may allocate for (any if `None`).
    pub allowed_miners: Option<Vec<u64>>,
    /// Sector sizes a thread may allocate (any if `None`).
    pub allowed_sizes: Option<Vec<SectorSize>>,
    /// Ask for deals.
    pub enable_deals: bool,
    /// With deals enabled, never seal committed capacity.
    pub disable_cc: bool,
    /// At most this many deals per sector.
    pub max_deals: Option<u64>,
    /// Fill at least this many bytes with deals.
    pub min_deal_space: Option<u64>,
    /// Temporary failures in a row before a sector is paused.
    pub max_retries: u32,
    /// Pause between two sectors of a thread.
    pub seal_interval: Duration,
    /// Pause after a temporary failure or an idle answer.
    pub recover_interval: Duration,
    /// Period of polls of the manager.
    pub rpc_polling_interval: Duration,
    /// Skip polling the proof's state after submitting it.
    pub ignore_proof_check: bool,
    /// Idle answers in a row before a thread's job loop starts over.
    pub request_task_max_retries: u32,
    /// Check a sector with an all-zero seed right after PC2.
    pub verify_after_pc2: bool,
}

/// Where a layer of sealing settings comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// The reference's defaults.
    BuiltIn,
    /// `Venus.SealingDefaults`.
    Manager,
    /// `[sealing]`.
    File,
    /// The thread's `sealing`.
    Thread,
    /// `<location>/config.toml`.
    HotFile,
}

impl fmt::Display for Layer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Layer::BuiltIn => "built-in",
            Layer::Manager => "manager",
            Layer::File => "[sealing]",
            Layer::Thread => "thread",
            Layer::HotFile => "hot config.toml",
        })
    }
}

/// A thread's sealing settings decided from its layers, with the layer each key's value
/// came from (keys no layer sets are absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayeredSealing {
    /// The decided settings.
    pub sealing: Sealing,
    /// Key → (value as TOML, the layer it came from).
    pub origins: BTreeMap<String, (String, Layer)>,
}

/// Decides a thread's sealing settings from its layers, lowest first; later layers win.
pub fn layered_sealing(layers: &[(Layer, &SealingOverrides)]) -> LayeredSealing {
    let mut merged = SealingOverrides::default();
    for (_, overrides) in layers {
        merged = overrides.over(&merged);
    }
    // Each shown value is the merged one; its origin is the last layer that sets it.
    let mut origins = BTreeMap::new();
    for (key, value) in merged.values() {
        let layer = layers
            .iter()
            .rev()
            .find(|(_, overrides)| overrides.set_keys().contains(&key))
            .map_or(Layer::BuiltIn, |(layer, _)| *layer);
        origins.insert(key, (value, layer));
    }
    // Over the built-in defaults, every key the defaults set is set; the fallbacks below
    // are those same defaults.
    let full = merged.over(&SealingOverrides::built_in());
    let sealing = Sealing {
        allowed_miners: full.allowed_miners,
        allowed_sizes: full.allowed_sizes,
        enable_deals: full.enable_deals.unwrap_or(false),
        disable_cc: full.disable_cc.unwrap_or(false),
        max_deals: full.max_deals,
        min_deal_space: full.min_deal_space,
        max_retries: full.max_retries.unwrap_or(5),
        seal_interval: full.seal_interval.unwrap_or(Duration::from_secs(30)),
        recover_interval: full.recover_interval.unwrap_or(Duration::from_secs(60)),
        rpc_polling_interval: full
            .rpc_polling_interval
            .unwrap_or(Duration::from_secs(180)),
        ignore_proof_check: full.ignore_proof_check.unwrap_or(false),
        request_task_max_retries: full.request_task_max_retries.unwrap_or(3),
        verify_after_pc2: full.verify_after_pc2.unwrap_or(false),
    };
    LayeredSealing { sealing, origins }
}

/// The whole file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayout {
    #[serde(default)]
    worker: WorkerSection,
    #[serde(default)]
    metrics: MetricsSection,
    #[serde(default)]
    telemetry: TelemetrySection,
    sector_manager: SectorManagerSection,
    #[serde(default)]
    sealing: SealingOverrides,
    sealing_thread: Vec<toml::Spanned<SealingThreadConfig>>,
    #[serde(default)]
    attached: Vec<toml::Spanned<AttachedStore>>,
    #[serde(default)]
    processors: ProcessorsConfig,
    /// Read by old damocles-worker versions; ignored, with a warning.
    remote_store: Option<toml::Spanned<toml::Value>>,
    /// Never read by damocles-worker (its documentation showed it); ignored, with a
    /// warning.
    attached_selection: Option<toml::Spanned<toml::Value>>,
}

/// A checked worker configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[worker]`.
    pub worker: WorkerSection,
    /// `[metrics]`.
    pub metrics: MetricsSection,
    /// `[telemetry]`.
    pub telemetry: TelemetrySection,
    /// `[sector_manager]`.
    pub sector_manager: SectorManagerSection,
    /// `[sealing]`.
    pub sealing: SealingOverrides,
    /// The `[[sealing_thread]]` entries, in file order.
    pub sealing_threads: Vec<SealingThreadConfig>,
    /// The `[[attached]]` stores.
    pub attached: Vec<AttachedStore>,
    /// `[processors]`.
    pub processors: ProcessorsConfig,
    /// What was accepted but should change.
    pub warnings: Vec<ConfigWarning>,
}

/// Turns byte offsets of one file into places.
struct Places<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Places<'_> {
    fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |line| line.chars().count())
            + 1;
        (line, column)
    }

    fn invalid(&self, offset: usize, message: String) -> ConfigError {
        let (line, column) = self.line_column(offset);
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            message,
        }
    }

    fn place(&self, offset: usize) -> String {
        let (line, column) = self.line_column(offset);
        format!("{}:{line}:{column}", self.path.display())
    }

    /// A parse error at its place, with the nearest valid key for an unknown one.
    fn parse_error(&self, error: &toml::de::Error) -> ConfigError {
        let offset = error.span().map_or(0, |span| span.start);
        self.invalid(offset, with_suggestion(error.message()))
    }
}

/// Adds "did you mean …" to serde's "unknown field `x`, expected one of `a`, `b`".
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let nearest = candidates
        .iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(
                &unknown.to_ascii_lowercase(),
                &candidate.to_ascii_lowercase(),
            );
            (distance, *candidate)
        })
        .min();
    match nearest {
        Some((distance, candidate)) if distance <= (unknown.len() / 3).max(2) => {
            format!("{message}; did you mean `{candidate}`?")
        }
        _ => message.to_owned(),
    }
}

impl WorkerConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<WorkerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        WorkerConfig::parse(path, &text)
    }

    /// Parses and checks `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<WorkerConfig, ConfigError> {
        let places = Places { path, text };
        let file: FileLayout = toml::from_str(text).map_err(|error| places.parse_error(&error))?;
        let mut warnings = Vec::new();
        if let Some(section) = &file.remote_store {
            warnings.push(ConfigWarning {
                place: places.place(section.span().start),
                message: "[remote_store] is ignored (damocles-worker stopped reading it); \
                          persistent stores are [[attached]] entries or scan_persist_stores, \
                          and the manager picks one for each sector; remove the section"
                    .to_owned(),
            });
        }
        if let Some(section) = &file.attached_selection {
            warnings.push(ConfigWarning {
                place: places.place(section.span().start),
                message: "[attached_selection] is ignored (damocles-worker never read it): \
                          the manager picks the persistent store for each sector; remove the section"
                    .to_owned(),
            });
        }
        if file.worker.local_pieces_dir.is_some() && file.worker.local_pieces_dirs.is_some() {
            warnings.push(ConfigWarning {
                place: places.place(text.find("local_pieces_dir").unwrap_or(0)),
                message: "both local_pieces_dir and local_pieces_dirs are set; local_pieces_dirs \
                          wins; remove local_pieces_dir"
                    .to_owned(),
            });
        }
        file.sector_manager
            .rpc_url()
            .map_err(|message| places.invalid(text.find("addr").unwrap_or(0), message))?;
        if file.sealing_thread.is_empty() {
            return Err(places.invalid(
                0,
                "no [[sealing_thread]]: add one per sealing store, with its location".to_owned(),
            ));
        }
        let mut locations = BTreeMap::<PathBuf, usize>::new();
        for (index, thread) in file.sealing_thread.iter().enumerate() {
            let start = thread.span().start;
            let thread = thread.get_ref();
            match &thread.location {
                None if thread.plan() != Plan::WindowPost => {
                    return Err(places.invalid(
                        start,
                        format!(
                            "sealing thread {} has no location; every plan but wdpost needs its own sealing store",
                            index + 1
                        ),
                    ));
                }
                None => {}
                Some(location) => {
                    let key = normalised(location);
                    if let Some(first) = locations.insert(key, index + 1) {
                        return Err(places.invalid(
                            start,
                            format!(
                                "sealing threads {first} and {} share the location {}; a sealing store holds one sector, give each thread its own",
                                index + 1,
                                location.display()
                            ),
                        ));
                    }
                }
            }
        }
        let mut names = BTreeMap::<String, usize>::new();
        for (index, store) in file.attached.iter().enumerate() {
            let name = store.get_ref().name();
            if let Some(first) = names.insert(name.clone(), index + 1) {
                return Err(places.invalid(
                    store.span().start,
                    format!(
                        "attached stores {first} and {} are both named {name:?}; names must be unique",
                        index + 1
                    ),
                ));
            }
        }
        Ok(WorkerConfig {
            path: path.to_owned(),
            worker: file.worker,
            metrics: file.metrics,
            telemetry: file.telemetry,
            sector_manager: file.sector_manager,
            sealing: file.sealing,
            sealing_threads: file
                .sealing_thread
                .into_iter()
                .map(toml::Spanned::into_inner)
                .collect(),
            attached: file
                .attached
                .into_iter()
                .map(toml::Spanned::into_inner)
                .collect(),
            processors: file.processors,
            warnings,
        })
    }
}

impl HotThreadConfig {
    /// Reads `<location>/config.toml`; `Ok(None)` when the file does not exist.
    pub fn load(location: &Path) -> Result<Option<HotThreadConfig>, ConfigError> {
        let path = location.join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let places = Places {
            path: &path,
            text: &text,
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|error| places.parse_error(&error))
    }
}

/// A location compared by its absolute, normalised form (`a/./b/` and `a/b` are one).
fn normalised(location: &Path) -> PathBuf {
    let absolute = if location.is_absolute() {
        location.to_owned()
    } else {
        std::env::current_dir()
            .map(|directory| directory.join(location))
            .unwrap_or_else(|_| location.to_owned())
    };
    std::fs::canonicalize(&absolute).unwrap_or_else(|_| absolute.components().collect())
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map(Some).map_err(|error| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration ({error}); write it like \"30s\", \"5min\" or \"1h 30m\""
        ))
    })
}

fn serialize_optional_duration<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => {
            serializer.serialize_str(&humantime::format_duration(*duration).to_string())
        }
        None => serializer.serialize_none(),
    }
}

fn optional_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bytes {
        Number(u64),
        Text(String),
    }
    match Bytes::deserialize(deserializer)? {
        Bytes::Number(bytes) => Ok(Some(bytes)),
        Bytes::Text(text) => proc_sched::config::parse_bytes(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_refused_with_the_nearest_name() {
        assert_eq!(
            with_suggestion(
                "unknown field `alowed_miners`, expected one of `allowed_miners`, `allowed_sizes`"
            ),
            "unknown field `alowed_miners`, expected one of `allowed_miners`, `allowed_sizes`; did you mean `allowed_miners`?"
        );
        // Nothing close: no guess.
        assert_eq!(
            with_suggestion("unknown field `colour`, expected `name` or `location`"),
            "unknown field `colour`, expected `name` or `location`"
        );
    }

    #[test]
    fn later_layers_win_and_each_value_names_its_layer() {
        let file = SealingOverrides {
            max_retries: Some(7),
            seal_interval: Some(Duration::from_secs(10)),
            ..SealingOverrides::default()
        };
        let thread = SealingOverrides {
            max_retries: Some(9),
            ..SealingOverrides::default()
        };
        let layered = layered_sealing(&[
            (Layer::BuiltIn, &SealingOverrides::built_in()),
            (Layer::File, &file),
            (Layer::Thread, &thread),
        ]);
        assert_eq!(layered.sealing.max_retries, 9);
        assert_eq!(layered.sealing.seal_interval, Duration::from_secs(10));
        assert_eq!(layered.sealing.recover_interval, Duration::from_secs(60));
        assert_eq!(
            layered.origins["max_retries"],
            ("9".to_owned(), Layer::Thread)
        );
        assert_eq!(
            layered.origins["seal_interval"],
            ("\"10s\"".to_owned(), Layer::File)
        );
        assert_eq!(layered.origins["recover_interval"].1, Layer::BuiltIn);
    }
}
