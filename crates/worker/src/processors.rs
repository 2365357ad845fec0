//! `sealing-worker processors check`: the `[processors]` section against this machine.
//!
//! Until the daemon exists this is how an operator learns, before a sector is started,
//! whether a processor plan can run here: every problem with its entry and fix, the
//! warnings damocles would only log, and which budget enforcement (cgroup v2, v1 or
//! affinity only) this machine allows.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use proc_sched::budget::detect_cgroup_support;
use proc_sched::config::{MachineFacts, ProcessorsConfig};
use serde::Deserialize;

/// The part of a worker configuration file this command reads; other sections are
/// ignored here.
#[derive(Deserialize)]
struct WorkerFile {
    #[serde(default)]
    processors: ProcessorsConfig,
}

/// Reads `path`, checks its `[processors]` section and returns the report.
pub fn check_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let file: WorkerFile =
        toml::from_str(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let machine = MachineFacts::detect().context("measure this machine's CPUs and memory")?;
    let warnings = file
        .processors
        .check(&machine)
        .with_context(|| format!("check the [processors] section of {}", path.display()))?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "this machine: CPUs {}, {} GPUs, {:.1} GiB of memory",
        machine.online_cpus,
        machine.gpus,
        machine.memory_bytes as f64 / f64::from(1u32 << 30)
    );
    for (stage, entries) in &file.processors.stages {
        for (index, entry) in entries.iter().enumerate() {
            let cpus = entry
                .cgroup
                .cpuset
                .as_ref()
                .map_or_else(|| "all CPUs".to_owned(), |cpus| format!("CPUs {cpus}"));
            let gpus = if entry.gpus.is_empty() {
                "no GPU".to_owned()
            } else {
                format!("GPUs {:?}", entry.gpus)
            };
            let memory = entry.memory.map_or_else(
                || "no memory limit".to_owned(),
                |bytes| format!("{bytes} bytes"),
            );
            let _ = writeln!(
                report,
                "[[processors.{stage}]] #{}: {cpus}, {gpus}, {memory}",
                index + 1
            );
        }
    }
    for warning in warnings {
        let _ = writeln!(report, "warning: {warning}");
    }
    let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let support = detect_cgroup_support(
        Path::new("/sys/fs/cgroup"),
        &self_cgroup,
        "sealcluster-check",
    );
    let _ = writeln!(report, "{}", support.describe());
    // The probe group only told whether cgroups are writable; no processor will join it.
    for directory in support.parent_directories() {
        let _ = std::fs::remove_dir(directory);
    }
    let _ = writeln!(report, "the [processors] section can run on this machine");
    Ok(report)
}

/// Serves the built-in processor of `stage` on standard input and output until the
/// worker closes it: real proofs, or the fake backend (`SEALCLUSTER_FAKE_PROOFS`
/// configures it) when `fake_proofs`. Any binary that hands the daemon its own path as
/// the worker executable must answer `processor <stage> [--fake-proofs]` with this.
pub fn serve_built_in(stage: &str, fake_proofs: bool) -> anyhow::Result<()> {
    let backend: std::sync::Arc<dyn proofs::ProofBackend> = if fake_proofs {
        std::sync::Arc::new(proofs::FakeProofs::from_environment().map_err(anyhow::Error::msg)?)
    } else {
        std::sync::Arc::new(proofs::RealProofs::from_environment())
    };
    if !proofs::backend::BUILT_IN_STAGES.contains(&stage) {
        anyhow::bail!(
            "there is no built-in processor for {stage:?}; built-in stages are {}",
            proofs::backend::BUILT_IN_STAGES.join(", ")
        );
    }
    let served = stage.to_owned();
    proc_sched::serve_stage(stage, move |task| backend.run(&served, task))
        .with_context(|| format!("serve the {stage} processor"))
}
