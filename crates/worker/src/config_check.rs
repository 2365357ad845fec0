//! `sealing-worker config check`: what each sealing thread will run with and where each
//! value comes from, and whether the storage plan (sealing stores per disk) and the
//! compute plan (processor slots against CPUs, GPUs and memory) fit this machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use storage_alloc::SectorSize;

use crate::config::{HotThreadConfig, Layer, SealingOverrides, WorkerConfig, layered_sealing};

/// What the manager answered for `Venus.SealingDefaults`, or why it was not asked.
#[derive(Clone, Debug)]
pub struct ManagerDefaults {
    /// Its layer, when it answered.
    pub layer: Option<SealingOverrides>,
    /// One line for people: where it was asked and what came back.
    pub note: String,
}

/// The report, and whether every check passed.
pub fn render(
    config: &WorkerConfig,
    manager: &ManagerDefaults,
    sector_size: Option<SectorSize>,
) -> (String, bool) {
    let mut report = String::new();
    let mut passed = true;
    let _ = writeln!(report, "configuration {}: read", config.path.display());
    for warning in &config.warnings {
        let _ = writeln!(report, "  warning: {warning}");
    }
    let _ = writeln!(report, "manager: {}", manager.note);
    let built_in = SealingOverrides::built_in();
    let mut planned: BTreeMap<SectorSize, Vec<PathBuf>> = BTreeMap::new();
    let mut unplanned = Vec::new();
    for (index, thread) in config.sealing_threads.iter().enumerate() {
        let number = index + 1;
        let location = thread.location.as_ref().map_or_else(
            || "no sealing store".to_owned(),
            |path| path.display().to_string(),
        );
        let hot = match &thread.location {
            Some(path) => match HotThreadConfig::load(path) {
                Ok(hot) => hot,
                Err(error) => {
                    passed = false;
                    let _ = writeln!(
                        report,
                        "\nsealing thread {number}: {location}\n  error: {error}"
                    );
                    continue;
                }
            },
            None => None,
        };
        let plan = hot
            .as_ref()
            .and_then(|hot| hot.plan)
            .unwrap_or(thread.plan());
        let _ = writeln!(
            report,
            "\nsealing thread {number}: {location} (plan {plan})"
        );
        let mut layers: Vec<(Layer, &SealingOverrides)> = vec![(Layer::BuiltIn, &built_in)];
        if let Some(layer) = &manager.layer {
            layers.push((Layer::Manager, layer));
        }
        layers.push((Layer::File, &config.sealing));
        layers.push((Layer::Thread, &thread.sealing));
        if let Some(hot) = &hot {
            layers.push((Layer::HotFile, &hot.sealing));
        }
        let layered = layered_sealing(&layers);
        let width = layered.origins.keys().map(String::len).max().unwrap_or(0);
        for (key, (value, layer)) in &layered.origins {
            let _ = writeln!(report, "  {key:<width$} = {value:<24} ({layer})");
        }
        if let Some(location) = &thread.location {
            let size = sector_size.or_else(|| {
                layered
                    .sealing
                    .allowed_sizes
                    .as_ref()
                    .and_then(|sizes| sizes.iter().copied().max_by_key(|size| size.bytes()))
            });
            match size {
                Some(size) => planned.entry(size).or_default().push(location.clone()),
                None => unplanned.push(number),
            }
        }
    }
    let _ = writeln!(report, "\nstorage plan (one sealing store per thread):");
    for (size, locations) in &planned {
        passed &= append_check(&mut report, crate::store::check_plan(*size, locations));
    }
    if !unplanned.is_empty() {
        let _ = writeln!(
            report,
            "  threads {unplanned:?} are not planned: their allowed_sizes is unset (any size); \
             set it, or pass --sector-size"
        );
    }
    let _ = writeln!(report, "\ncompute plan ([processors]):");
    passed &= append_check(&mut report, crate::processors::check_file(&config.path));
    let _ = writeln!(
        report,
        "\n{}",
        if passed {
            "the configuration can run here"
        } else {
            "the configuration cannot run here as it is; see the errors above"
        }
    );
    (report, passed)
}

/// Appends a check's report, indented, or its error; true when the check passed.
fn append_check(report: &mut String, check: anyhow::Result<String>) -> bool {
    match check {
        Ok(text) => {
            for line in text.lines() {
                let _ = writeln!(report, "  {line}");
            }
            true
        }
        Err(error) => {
            let _ = writeln!(report, "  error: {error:#}");
            false
        }
    }
}
