//! The `sealing-worker store` commands, run as the operator runs them: the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn sealing_worker(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
        .args(arguments)
        .output()
        .expect("run sealing-worker")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[test]
fn sealing_init_lays_out_a_store_that_can_then_be_claimed() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let first = directory.path().join("store0");
    let second = directory.path().join("nested/store1");
    let output = sealing_worker(&[
        "store",
        "sealing-init",
        "-l",
        text(&first),
        "--location",
        text(&second),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("initialised sealing store {}", first.display())),
        "{stdout}"
    );
    for location in [&first, &second] {
        assert!(location.join("data/update-cache").is_dir());
        storage_alloc::claim_sealing_store(location).expect("an initialised store can be claimed");
    }
}

#[test]
fn check_plan_accepts_small_sectors_and_refuses_a_plan_the_disk_cannot_hold() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let locations: Vec<String> = (0..3)
        .map(|index| {
            directory
                .path()
                .join(format!("store{index}"))
                .display()
                .to_string()
        })
        .collect();
    let mut arguments = vec!["store", "check-plan", "--sector-size", "2KiB"];
    for location in &locations {
        arguments.extend(["-l", location.as_str()]);
    }
    let output = sealing_worker(&arguments);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("3 sealing stores of 2KiB"), "{stdout}");
    assert!(stdout.ends_with("the plan fits\n"), "{stdout}");

    // A 64 GiB sector needs about 1 TiB of scratch space; twenty of them, about 20 TiB,
    // are more than any test machine's disk.
    let twenty: Vec<String> = (0..20)
        .map(|index| {
            directory
                .path()
                .join(format!("big{index}"))
                .display()
                .to_string()
        })
        .collect();
    let mut arguments = vec!["store", "check-plan", "--sector-size", "64GiB"];
    for location in &twenty {
        arguments.extend(["-l", location.as_str()]);
    }
    let output = sealing_worker(&arguments);
    assert!(!output.status.success(), "the plan must be refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the sealing plan oversubscribes its disks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[[sealing_thread]] entries on this disk"),
        "{stderr}"
    );
    assert!(stderr.contains(&twenty[19]), "{stderr}");

    let output = sealing_worker(&["store", "check-plan", "--sector-size", "16GiB", "-l", "/x"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("expected one of 2KiB, 8MiB, 512MiB, 32GiB, 64GiB"),
        "{stderr}"
    );
}
