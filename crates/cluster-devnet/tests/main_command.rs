//! The README's main command end to end, as an operator runs it: `sealcluster devnet`
//! as a process, real proofs (the 2KiB PoRep parameters are made first when the cache
//! lacks them), one sealing thread, until one sector is active on the devnet chain. The
//! sealed replica must be in the manager's persistent store and the sealing store must be
//! empty again.

use std::process::Command;

fn run_devnet(home: &std::path::Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sealcluster"))
        .arg("devnet")
        .arg("--home")
        .arg(home)
        .args(["--sectors", "1", "--threads", "1"])
        .args(extra)
        .output()
        .expect("run sealcluster devnet");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "sealcluster devnet failed:\n{stdout}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(home.join("sealcluster.log")).unwrap_or_default()
    );
    stdout
}

#[test]
fn the_main_command_seals_a_real_sector_to_active() {
    let home = tempfile::tempdir().expect("a home");
    let stdout = run_devnet(home.path(), &[]);
    assert!(
        stdout.contains("1 sectors active on the devnet chain (t01000: {1})"),
        "{stdout}"
    );
    // Progress is shown as the sector moves (printed lines without a terminal).
    assert!(stdout.contains("PCSubmitted"), "{stdout}");
    let persisted = home.path().join("manager/persist/sealed/s-t01000-1");
    assert!(persisted.exists(), "{} is missing", persisted.display());
    let store = home.path().join("worker/sealing-store-0/data");
    assert!(
        !store.join("sealed/s-t01000-1").exists() && !store.join("cache/s-t01000-1").exists(),
        "the sealing store was not cleared"
    );
}
