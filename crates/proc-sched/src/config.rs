//! The `[processors]` section of the worker's configuration, and its checks at start.
//!
//! The keys are damocles-worker's, so an existing section is read unchanged:
//! `limitation.concurrent`, `limitation.staggered` (and the legacy `limit`), `ext_locks`,
//! `static_tree_d`, and `[[processors.<stage>]]` entries with `bin`, `args`, `envs`,
//! `inherit_envs`, `cgroup.cpuset`, `numa_preferred`, `concurrent`, `locks`,
//! `auto_restart` and `stable_wait`. Three keys are new: `gpus` (the device ordinals the
//! processor gets), `memory` (its memory limit, like `"64GiB"`) and `timeout` (how long
//! one task may run). [`ProcessorsConfig::check`] compares the plan with the machine
//! and refuses what cannot hold: CPUs or GPUs the machine lacks, more memory than it has,
//! a GPU given to two processors, a lock that is not declared.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use sector_fsm::Stage;
use serde::{Deserialize, Deserializer};

use crate::accounting::{ProcessorLimits, SchedulerLimits};
use crate::budget::CpuSet;

/// The stage key of helper processors that take no tasks (the reference's
/// `sealing_daemons`, whose ready line says `EMPTY`).
pub const SEALING_DAEMONS: &str = "sealing_daemons";

/// The `[processors]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessorsConfig {
    /// The legacy spelling of `limitation.concurrent`; ignored when that is present.
    pub limit: BTreeMap<String, usize>,
    /// Per-stage limits.
    pub limitation: Limitation,
    /// Named locks and their units.
    pub ext_locks: BTreeMap<String, usize>,
    /// Precomputed tree-d files for CC sectors, by sector size.
    pub static_tree_d: BTreeMap<String, PathBuf>,
    /// `[[processors.<stage>]]` entries, by stage key.
    pub stages: BTreeMap<String, Vec<ProcessorConfig>>,
}

/// Read key by key rather than with `#[serde(flatten)]`, which would buffer the stage
/// entries and lose the line and column of an error inside them.
impl<'de> Deserialize<'de> for ProcessorsConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SectionVisitor;

        impl<'de> serde::de::Visitor<'de> for SectionVisitor {
            type Value = ProcessorsConfig;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("the [processors] table")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ProcessorsConfig, A::Error> {
                let mut config = ProcessorsConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "limit" => config.limit = map.next_value()?,
                        "limitation" => config.limitation = map.next_value()?,
                        "ext_locks" => config.ext_locks = map.next_value()?,
                        "static_tree_d" => config.static_tree_d = map.next_value()?,
                        _ => {
                            let entries: Vec<ProcessorConfig> = map.next_value()?;
                            config.stages.insert(key, entries);
                        }
                    }
                }
                Ok(config)
            }
        }

        deserializer.deserialize_map(SectionVisitor)
    }
}

/// `[processors.limitation]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Limitation {
    /// The most tasks of a stage running at once.
    pub concurrent: BTreeMap<String, usize>,
    /// The least time between two starts of a stage.
    #[serde(deserialize_with = "duration_map")]
    pub staggered: BTreeMap<String, Duration>,
}

/// `cgroup` of a processor entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CgroupConfig {
    /// The parent group's name (the reference's default is `vc-worker`).
    pub group_name: Option<String>,
    /// The CPUs the processor may use.
    #[serde(deserialize_with = "optional_cpu_set")]
    pub cpuset: Option<CpuSet>,
}

/// One `[[processors.<stage>]]` entry: one child process.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorConfig {
    /// The program; the worker binary itself when absent.
    pub bin: Option<PathBuf>,
    /// Its arguments; `["processor", "<stage>"]` when absent.
    pub args: Option<Vec<String>>,
    /// Variables set for it.
    pub envs: BTreeMap<String, String>,
    /// Whether it inherits the worker's environment.
    pub inherit_envs: bool,
    /// Its control group and CPU set.
    pub cgroup: CgroupConfig,
    /// The NUMA node it prefers for memory (passed as `VENUS_WORKER_NUMA_PREFERRED`).
    pub numa_preferred: Option<u32>,
    /// How many tasks it runs at once; unbounded when absent.
    pub concurrent: Option<usize>,
    /// Named locks it takes one unit of per task.
    pub locks: Vec<String>,
    /// Whether it is started again when it exits.
    pub auto_restart: bool,
    /// How long it may take to print its ready line.
    #[serde(deserialize_with = "duration")]
    pub stable_wait: Duration,
    /// The GPUs (device ordinals) it gets. New in sealcluster.
    pub gpus: Vec<u32>,
    /// Whether the GPUs listed may also be listed by another processor. New.
    pub share_gpus: bool,
    /// Its memory limit, like `"64GiB"`. New.
    #[serde(deserialize_with = "optional_bytes")]
    pub memory: Option<u64>,
    /// How long one task may run before the processor is presumed stuck. New.
    #[serde(deserialize_with = "optional_duration")]
    pub timeout: Option<Duration>,
}

impl Default for ProcessorConfig {
    fn default() -> ProcessorConfig {
        ProcessorConfig {
            bin: None,
            args: None,
            envs: BTreeMap::new(),
            inherit_envs: true,
            cgroup: CgroupConfig::default(),
            numa_preferred: None,
            concurrent: None,
            locks: Vec::new(),
            auto_restart: true,
            stable_wait: Duration::from_secs(5),
            gpus: Vec::new(),
            share_gpus: false,
            memory: None,
            timeout: None,
        }
    }
}

/// What the machine offers, measured by the daemon at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineFacts {
    /// The online CPUs.
    pub online_cpus: CpuSet,
    /// How many GPUs there are (device ordinals `0..gpus`).
    pub gpus: u32,
    /// The total memory in bytes.
    pub memory_bytes: u64,
}

impl MachineFacts {
    /// Measures this machine: online CPUs, total memory, and NVIDIA GPUs as the driver
    /// lists them in `/proc/driver/nvidia/gpus` (none when that is missing).
    pub fn detect() -> std::io::Result<MachineFacts> {
        let gpus = match std::fs::read_dir("/proc/driver/nvidia/gpus") {
            Ok(entries) => u32::try_from(entries.count()).unwrap_or(u32::MAX),
            Err(_) => 0,
        };
        Ok(MachineFacts {
            online_cpus: crate::budget::online_cpus()?,
            gpus,
            memory_bytes: crate::budget::total_memory_bytes()?,
        })
    }
}

impl ProcessorConfig {
    /// The command that runs this processor of `stage_key`: its own `bin` and `args`, or
    /// the worker's built-in processor (`<worker> processor <stage>`); wrapped in the
    /// worker's launcher (`<worker> launch ...`) when it has a CPU set or control groups
    /// to join; with its GPUs and NUMA node in its environment.
    pub fn command(
        &self,
        stage_key: &str,
        worker_executable: &std::path::Path,
        groups: &crate::budget::ProcessorGroups,
    ) -> crate::child::ProcessorCommand {
        use std::ffi::OsString;
        let program: OsString = self
            .bin
            .clone()
            .unwrap_or_else(|| worker_executable.to_owned())
            .into_os_string();
        let args: Vec<OsString> = match &self.args {
            Some(args) => args.iter().map(OsString::from).collect(),
            None => vec!["processor".into(), stage_key.into()],
        };
        let needs_launcher = self.cgroup.cpuset.is_some() || !groups.directories().is_empty();
        let (program, args) = if needs_launcher {
            let spec = crate::budget::LaunchSpec {
                cpus: self.cgroup.cpuset.clone(),
                join: groups.directories().to_vec(),
                program,
                args,
            };
            let mut launcher_args: Vec<OsString> = vec!["launch".into()];
            launcher_args.extend(spec.to_arguments());
            (worker_executable.as_os_str().to_owned(), launcher_args)
        } else {
            (program, args)
        };
        let mut envs: Vec<(OsString, OsString)> = self
            .envs
            .iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        if !self.gpus.is_empty() {
            envs.extend(crate::budget::gpu_environment(&self.gpus));
        }
        if let Some(node) = self.numa_preferred {
            envs.push((
                "VENUS_WORKER_NUMA_PREFERRED".into(),
                node.to_string().into(),
            ));
        }
        let stage_name = if stage_key == SEALING_DAEMONS {
            crate::protocol::EMPTY_STAGE.to_owned()
        } else {
            stage_key.to_owned()
        };
        crate::child::ProcessorCommand {
            stage_name,
            program: program.into(),
            args,
            envs,
            inherit_envs: self.inherit_envs,
            stable_wait: self.stable_wait,
            auto_restart: self.auto_restart,
            restart_delay: Duration::from_secs(3),
        }
    }
}

/// A configuration the checks refused, with every problem found, each naming its entry
/// and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ProcessorsConfigError {
    /// The problems, one sentence each.
    pub problems: Vec<String>,
}

impl fmt::Display for ProcessorsConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "the [processors] section cannot run on this machine:"
        )?;
        for problem in &self.problems {
            write!(formatter, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// A valid configuration's warnings: things accepted, as the reference accepts them, that
/// probably do not do what was meant.
pub type ProcessorsConfigWarnings = Vec<String>;

impl ProcessorsConfig {
    /// `limitation.concurrent`, or the legacy `limit` when that is absent.
    pub fn stage_concurrency(&self) -> &BTreeMap<String, usize> {
        if self.limitation.concurrent.is_empty() {
            &self.limit
        } else {
            &self.limitation.concurrent
        }
    }

    /// Checks the section against itself and the machine. Returns warnings when it can
    /// run, or every problem when it cannot.
    pub fn check(
        &self,
        machine: &MachineFacts,
    ) -> Result<ProcessorsConfigWarnings, ProcessorsConfigError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let stage_keys: Vec<&str> = Stage::ALL.iter().map(|stage| stage.as_str()).collect();
        for key in self
            .stage_concurrency()
            .keys()
            .chain(self.limitation.staggered.keys())
        {
            if key.parse::<Stage>().is_err() {
                problems.push(format!(
                    "limitation names the unknown stage {key:?}; stages are {}",
                    stage_keys.join(", ")
                ));
            }
        }
        for (stage, interval) in &self.limitation.staggered {
            if *interval < Duration::from_secs(1) {
                warnings.push(format!(
                    "limitation.staggered.{stage} = {interval:?} is below one second and is ignored, as in damocles"
                ));
            }
        }
        for (name, units) in &self.ext_locks {
            if *units == 0 {
                problems.push(format!("ext_locks.{name} = 0 would block every processor that names it; give it at least 1"));
            }
        }
        let mut gpu_owners: BTreeMap<u32, Vec<(String, bool)>> = BTreeMap::new();
        let mut memory_total: u128 = 0;
        for (key, entries) in &self.stages {
            if key != SEALING_DAEMONS && key.parse::<Stage>().is_err() {
                problems.push(format!(
                    "[[processors.{key}]] is not a stage; stages are {} (and {SEALING_DAEMONS})",
                    stage_keys.join(", ")
                ));
            }
            for (index, entry) in entries.iter().enumerate() {
                let name = format!("[[processors.{key}]] #{}", index + 1);
                if entry.concurrent == Some(0) {
                    problems.push(format!("{name} has concurrent = 0, so it could never run a task; remove it or make it at least 1"));
                }
                for lock in &entry.locks {
                    if !self.ext_locks.contains_key(lock) {
                        problems.push(format!(
                            "{name} takes the lock {lock:?}, which [processors.ext_locks] does not declare; add `{lock} = 1` there"
                        ));
                    }
                }
                if let Some(cpus) = &entry.cgroup.cpuset {
                    let missing = cpus.missing_from(&machine.online_cpus);
                    if cpus.is_empty() {
                        problems.push(format!("{name} has an empty cgroup.cpuset"));
                    } else if !missing.is_empty() {
                        problems.push(format!(
                            "{name} asks for CPUs {missing}, which this machine does not have online (it has {})",
                            machine.online_cpus
                        ));
                    }
                }
                for gpu in &entry.gpus {
                    if *gpu >= machine.gpus {
                        problems.push(format!(
                            "{name} asks for GPU {gpu}, but this machine has {} GPUs{}",
                            machine.gpus,
                            if machine.gpus == 0 {
                                String::new()
                            } else {
                                format!(" (0 to {})", machine.gpus - 1)
                            }
                        ));
                    }
                    gpu_owners
                        .entry(*gpu)
                        .or_default()
                        .push((name.clone(), entry.share_gpus));
                }
                if let Some(memory) = entry.memory {
                    memory_total += u128::from(memory);
                    if memory > machine.memory_bytes {
                        problems.push(format!(
                            "{name} asks for {} of memory, more than this machine's {}",
                            show_bytes(u128::from(memory)),
                            show_bytes(u128::from(machine.memory_bytes))
                        ));
                    }
                }
                if entry.timeout.is_some_and(|timeout| timeout.is_zero()) {
                    problems.push(format!("{name} has timeout = 0; remove it (no timeout) or give a duration like \"6h\""));
                }
            }
        }
        for (gpu, owners) in &gpu_owners {
            if owners.len() > 1 && !owners.iter().all(|(_, shared)| *shared) {
                let names: Vec<&str> = owners.iter().map(|(name, _)| name.as_str()).collect();
                problems.push(format!(
                    "GPU {gpu} is given to {}; give each processor its own GPU, or set share_gpus = true on all of them if they are meant to share it",
                    names.join(" and ")
                ));
            }
        }
        if memory_total > u128::from(machine.memory_bytes) {
            problems.push(format!(
                "the processors' memory limits add up to {}, more than this machine's {}; lower some of them",
                show_bytes(memory_total),
                show_bytes(u128::from(machine.memory_bytes))
            ));
        }
        if problems.is_empty() {
            Ok(warnings)
        } else {
            Err(ProcessorsConfigError { problems })
        }
    }

    /// The scheduler's limits for this section (which [`ProcessorsConfig::check`] has
    /// accepted; unknown stage keys are skipped).
    pub fn scheduler_limits(&self) -> SchedulerLimits {
        let mut limits = SchedulerLimits::default();
        for (key, limit) in self.stage_concurrency() {
            if let Ok(stage) = key.parse::<Stage>() {
                limits.stage_concurrency.insert(stage, *limit);
            }
        }
        for (key, interval) in &self.limitation.staggered {
            if let Ok(stage) = key.parse::<Stage>()
                && *interval >= Duration::from_secs(1)
            {
                limits.staggered.insert(stage, *interval);
            }
        }
        limits.named_locks = self.ext_locks.clone();
        for (key, entries) in &self.stages {
            if let Ok(stage) = key.parse::<Stage>() {
                limits.processors.insert(
                    stage,
                    entries
                        .iter()
                        .map(|entry| ProcessorLimits {
                            concurrent: entry.concurrent.and_then(NonZeroUsize::new),
                            locks: entry.locks.clone(),
                        })
                        .collect(),
                );
            }
        }
        limits
    }
}

/// Parses sizes like `64GiB`, `512MiB`, `1.5TiB`, `100GB` or a plain number of bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write it like \"64GiB\""))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "{other:?} is not a size unit; use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
            ));
        }
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

fn show_bytes(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("{text:?} is not a duration ({error}); write it like \"30s\", \"5m\" or \"6h\"")
    })
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

fn duration_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Duration>, D::Error> {
    let texts = BTreeMap::<String, String>::deserialize(deserializer)?;
    texts
        .into_iter()
        .map(|(key, text)| parse_duration(&text).map(|duration| (key, duration)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn optional_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Number(bytes) => Ok(Some(bytes)),
        Size::Text(text) => parse_bytes(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn optional_cpu_set<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<CpuSet>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> MachineFacts {
        MachineFacts {
            online_cpus: "0-31".parse().expect("cpus"),
            gpus: 2,
            memory_bytes: 512 << 30,
        }
    }

    fn parse(text: &str) -> ProcessorsConfig {
        #[derive(Deserialize)]
        struct File {
            processors: ProcessorsConfig,
        }
        toml::from_str::<File>(text).expect("parse").processors
    }

    /// A section as a damocles operator writes it, plus the new keys.
    const DAMOCLES_SECTION: &str = r#"
[processors.limitation.concurrent]
pc1 = 4
c2 = 1

[processors.limitation.staggered]
pc1 = "2m"

[processors.ext_locks]
gpu0 = 1

[processors.static_tree_d]
"32GiB" = "/var/tmp/sc-02-data-tree-d.dat"

[[processors.pc1]]
bin = "/usr/local/bin/damocles-worker"
args = ["processor", "pc1"]
numa_preferred = 0
cgroup = { cpuset = "0-7" }
concurrent = 2
envs = { FIL_PROOFS_USE_MULTICORE_SDR = "1" }

[[processors.pc2]]
cgroup.cpuset = "8-15"
locks = ["gpu0"]
gpus = [0]
memory = "96GiB"
timeout = "2h"

[[processors.c2]]
locks = ["gpu0"]
gpus = [1]
stable_wait = "30s"
auto_restart = false
"#;

    #[test]
    fn a_damocles_section_is_read_and_checked() {
        let config = parse(DAMOCLES_SECTION);
        assert_eq!(config.stage_concurrency()["pc1"], 4);
        assert_eq!(config.limitation.staggered["pc1"], Duration::from_secs(120));
        let pc1 = &config.stages["pc1"][0];
        assert_eq!(
            pc1.cgroup
                .cpuset
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("0-7")
        );
        assert!(
            pc1.inherit_envs && pc1.auto_restart,
            "the reference's defaults"
        );
        assert_eq!(pc1.stable_wait, Duration::from_secs(5));
        let pc2 = &config.stages["pc2"][0];
        assert_eq!(pc2.memory, Some(96 << 30));
        assert_eq!(pc2.timeout, Some(Duration::from_secs(7200)));
        assert!(!config.stages["c2"][0].auto_restart);
        assert_eq!(config.check(&machine()), Ok(Vec::new()));
        let limits = config.scheduler_limits();
        assert_eq!(limits.stage_concurrency[&Stage::Pc1], 4);
        assert_eq!(
            limits.processors[&Stage::Pc1][0].concurrent,
            NonZeroUsize::new(2)
        );
        assert_eq!(limits.processors[&Stage::C2][0].locks, ["gpu0"]);
    }

    #[test]
    fn commands_default_to_the_built_in_processor_and_wrap_budgets_in_the_launcher() {
        let config = parse(DAMOCLES_SECTION);
        let worker = std::path::Path::new("/usr/local/bin/sealing-worker");
        let none = crate::budget::ProcessorGroups::none();
        let c2 = config.stages["c2"][0].command("c2", worker, &none);
        assert_eq!(c2.program, worker);
        assert_eq!(c2.args, ["processor", "c2"]);
        assert!(
            c2.envs
                .contains(&("CUDA_VISIBLE_DEVICES".into(), "1".into()))
        );
        assert_eq!(c2.stable_wait, Duration::from_secs(30));
        let pc1 = config.stages["pc1"][0].command("pc1", worker, &none);
        assert_eq!(pc1.program, worker, "a CPU set goes through the launcher");
        let args: Vec<String> = pc1
            .args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "launch",
                "--cpus",
                "0-7",
                "--",
                "/usr/local/bin/damocles-worker",
                "processor",
                "pc1"
            ]
        );
        assert!(
            pc1.envs
                .contains(&("VENUS_WORKER_NUMA_PREFERRED".into(), "0".into()))
        );
        let daemons = ProcessorConfig::default().command(SEALING_DAEMONS, worker, &none);
        assert_eq!(daemons.stage_name, "EMPTY");
    }

    #[test]
    fn the_legacy_limit_applies_only_without_limitation() {
        let config = parse("[processors.limit]\npc1 = 3\n");
        assert_eq!(config.scheduler_limits().stage_concurrency[&Stage::Pc1], 3);
    }

    #[test]
    fn a_plan_the_machine_cannot_hold_is_refused_with_every_problem() {
        let config = parse(
            r#"
[processors.limitation.concurrent]
pc3 = 1
[[processors.pc1]]
cgroup.cpuset = "30-33"
memory = "400GiB"
locks = ["nvme"]
[[processors.pc2]]
gpus = [0, 2]
memory = "200GiB"
[[processors.c2]]
gpus = [0]
concurrent = 0
[[processors.pc9]]
bin = "x"
"#,
        );
        let error = config.check(&machine()).expect_err("refused");
        let message = error.to_string();
        for expected in [
            "unknown stage \"pc3\"",
            "asks for CPUs 32-33, which this machine does not have online (it has 0-31)",
            "takes the lock \"nvme\", which [processors.ext_locks] does not declare",
            "asks for GPU 2, but this machine has 2 GPUs (0 to 1)",
            "GPU 0 is given to [[processors.c2]] #1 and [[processors.pc2]] #1",
            "memory limits add up to 600.0 GiB, more than this machine's 512.0 GiB",
            "concurrent = 0",
            "[[processors.pc9]] is not a stage",
        ] {
            assert!(
                message.contains(expected),
                "missing {expected:?} in:\n{message}"
            );
        }
        assert_eq!(error.problems.len(), 8, "{message}");
    }

    #[test]
    fn shared_gpus_must_be_shared_on_purpose_and_short_staggers_warn() {
        let config = parse(
            r#"
[processors.limitation.staggered]
pc1 = "500ms"
[[processors.pc2]]
gpus = [0]
share_gpus = true
[[processors.c2]]
gpus = [0]
share_gpus = true
"#,
        );
        let warnings = config.check(&machine()).expect("accepted");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("below one second"), "{warnings:?}");
        assert!(config.scheduler_limits().staggered.is_empty());
    }

    #[test]
    fn bad_values_name_the_fix() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code, reason = "only the parse error matters")]
        struct File {
            processors: ProcessorsConfig,
        }
        let error = toml::from_str::<File>("[[processors.pc1]]\nmemory = \"lots\"\n")
            .expect_err("bad size");
        assert!(
            error.to_string().contains("write it like \"64GiB\""),
            "{error}"
        );
        assert!(error.to_string().contains("line 2"), "{error}");
        let error = toml::from_str::<File>("[[processors.pc1]]\ntimeout = \"soon\"\n")
            .expect_err("bad duration");
        assert!(error.to_string().contains("\"30s\""), "{error}");
        let error = toml::from_str::<File>("[[processors.pc1]]\ncgroup.cpuset = \"0-\"\n")
            .expect_err("bad cpus");
        assert!(error.to_string().contains("0-3,8,10-11"), "{error}");
        let error =
            toml::from_str::<File>("[[processors.pc1]]\nconcurency = 2\n").expect_err("typo");
        assert!(error.to_string().contains("concurency"), "{error}");
        assert_eq!(parse_bytes("1.5TiB"), Ok(3 << 39));
        assert_eq!(parse_bytes("100GB"), Ok(100_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
    }
}
