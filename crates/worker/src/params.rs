//! `sealing-worker params`: Groth parameters for test sector sizes, made here.
//!
//! Nothing can be downloaded in development and CI, so the parameters of the small
//! sector sizes are made locally (random setup: for tests only) into the parameter cache,
//! skipping what is already there. `check` says what is missing for a size.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use proofs::params::{Circuit, TestSectorSize, files, generate};

/// Makes the missing parameters of `size`, with a progress bar on standard error, and
/// returns a report. Concurrent runs on one cache take turns (an advisory lock on
/// `.sealcluster-params.lock` in the cache), so two of them never make the same file at
/// once or read one half written.
pub fn generate_missing(size: TestSectorSize) -> anyhow::Result<String> {
    generate_missing_of(size, |_| true)
}

/// [`generate_missing`] for the circuits of `size` that `wanted` keeps (the devnet's
/// sealing needs only PoRep's).
pub fn generate_missing_of(
    size: TestSectorSize,
    wanted: impl Fn(&Circuit) -> bool,
) -> anyhow::Result<String> {
    let circuits: Vec<_> = files(size)
        .context("list the parameter files")?
        .into_iter()
        .filter(|files| wanted(&files.circuit))
        .collect();
    let cache = circuits
        .first()
        .and_then(|circuit| circuit.params.parent())
        .map(std::path::Path::to_path_buf)
        .context("find the parameter cache")?;
    std::fs::create_dir_all(&cache).with_context(|| format!("create {}", cache.display()))?;
    let lock_path = cache.join(".sealcluster-params.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("open {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "waiting for another `params generate` on {} to finish",
            cache.display()
        );
        lock.lock()
            .with_context(|| format!("lock {}", lock_path.display()))?;
    }
    let missing: Vec<_> = circuits
        .iter()
        .filter(|files| !files.missing().is_empty())
        .collect();
    let mut report = String::new();
    for present in circuits.iter().filter(|files| files.missing().is_empty()) {
        let _ = writeln!(
            report,
            "present: {} ({})",
            present.circuit,
            present.params.display()
        );
    }
    if missing.is_empty() {
        let _ = writeln!(report, "all parameters for {} are present", size.as_str());
        return Ok(report);
    }
    let progress = ProgressBar::new(missing.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    for circuit in missing {
        progress.set_message(format!(
            "making parameters for {} (a 2KiB PoRep takes minutes)",
            circuit.circuit
        ));
        let started = Instant::now();
        generate(circuit.circuit).context("make parameters")?;
        progress.inc(1);
        let _ = writeln!(
            report,
            "made: {} in {:.0} s ({})",
            circuit.circuit,
            started.elapsed().as_secs_f64(),
            circuit.params.display()
        );
    }
    progress.finish_and_clear();
    let _ = writeln!(report, "all parameters for {} are present", size.as_str());
    Ok(report)
}

/// Says which parameter files of `size` are missing; an error if any is.
pub fn check(size: TestSectorSize) -> anyhow::Result<String> {
    let circuits = files(size).context("list the parameter files")?;
    let mut report = String::new();
    let mut missing_count = 0;
    for circuit in &circuits {
        let interrupted = circuit.generation_was_interrupted();
        for path in [&circuit.params, &circuit.verifying_key] {
            let state = if interrupted {
                missing_count += 1;
                "INCOMPLETE (an interrupted generation)"
            } else if path.exists() {
                "present"
            } else {
                missing_count += 1;
                "MISSING"
            };
            let _ = writeln!(report, "{state}: {} {}", circuit.circuit, path.display());
        }
    }
    if missing_count > 0 {
        anyhow::bail!(
            "{report}{missing_count} parameter files for {} are missing or incomplete; run `sealing-worker params generate --sector-size {}`",
            size.as_str(),
            size.as_str()
        );
    }
    Ok(report)
}
