//! The `sealing-worker store` commands: preparing sealing stores and checking a plan.
//!
//! These are the operator's tools around `storage-alloc`: `sealing-init` lays out a
//! location once before a `[[sealing_thread]]` uses it, and `check-plan` answers, before
//! any sector is started, whether the planned sealing stores fit on their disks. The
//! daemon runs the same check at start-up and refuses a plan that does not fit.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use storage_alloc::capacity::{human_bytes, probe_filesystems};
use storage_alloc::{SealingStoreDemand, SectorSize, check_sealing_plan, initialise_sealing_store};

/// Initialises every location and returns one line per location for the operator.
pub fn sealing_init(locations: &[PathBuf]) -> anyhow::Result<String> {
    let mut report = String::new();
    for location in locations {
        let layout = initialise_sealing_store(location)
            .with_context(|| format!("initialise sealing store {}", location.display()))?;
        let _ = writeln!(
            report,
            "initialised sealing store {}",
            layout.location().display()
        );
    }
    Ok(report)
}

/// Checks that one sealing store of `size` fits at each location, grouped by disk, and
/// returns a report; an oversubscribed plan is an error naming each disk and the fix.
pub fn check_plan(size: SectorSize, locations: &[PathBuf]) -> anyhow::Result<String> {
    let demands: Vec<SealingStoreDemand> = locations
        .iter()
        .map(|location| SealingStoreDemand {
            location: location.clone(),
            bytes: size.sealing_scratch_bytes(),
        })
        .collect();
    let filesystems =
        probe_filesystems(&demands).context("measure the disks of the sealing stores")?;
    check_sealing_plan(&filesystems)?;
    let mut report = String::new();
    for filesystem in &filesystems {
        let _ = writeln!(
            report,
            "{}: {} sealing stores of {size} need {} of {} available",
            filesystem.label,
            filesystem.demands.len(),
            human_bytes(filesystem.required_bytes()),
            human_bytes(u128::from(filesystem.capacity_bytes)),
        );
    }
    let _ = writeln!(report, "the plan fits");
    Ok(report)
}
