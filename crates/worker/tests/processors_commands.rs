//! `sealing-worker processors check` and `sealing-worker launch`, run as the real binary.

use std::process::{Command, Output};

fn sealing_worker(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealing-worker"))
        .args(arguments)
        .output()
        .expect("run sealing-worker")
}

#[test]
fn the_launcher_confines_the_program_it_runs() {
    let output = sealing_worker(&["launch", "--cpus", "0", "--", "cat", "/proc/self/status"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = String::from_utf8_lossy(&output.stdout);
    let allowed = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("a Cpus_allowed_list line");
    assert_eq!(allowed.trim(), "0");

    let output = sealing_worker(&["launch", "--cpus", "0", "--", "/nonexistent/program"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not run /nonexistent/program"));
}

#[test]
fn a_processors_section_is_checked_against_this_machine() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let good = directory.path().join("good.toml");
    std::fs::write(
        &good,
        "[sector_manager]\nrpc_client.addr = \"/ip4/127.0.0.1/tcp/1789\"\n\n[[processors.pc1]]\ncgroup.cpuset = \"0\"\nconcurrent = 1\nmemory = \"1GiB\"\n",
    )
    .expect("write");
    let output = sealing_worker(&["processors", "check", "-c", good.to_str().expect("utf-8")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("[[processors.pc1]] #1: CPUs 0, no GPU"),
        "{report}"
    );
    assert!(report.contains("processor budgets:"), "{report}");
    assert!(
        report.ends_with("the [processors] section can run on this machine\n"),
        "{report}"
    );

    let bad_value = directory.path().join("bad-value.toml");
    std::fs::write(
        &bad_value,
        "[[processors.pc1]]\nconcurrent = 1\nmemory = \"lots\"\n",
    )
    .expect("write");
    let output = sealing_worker(&[
        "processors",
        "check",
        "-c",
        bad_value.to_str().expect("utf-8"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad-value.toml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("write it like \"64GiB\""), "{stderr}");

    let too_big = directory.path().join("too-big.toml");
    std::fs::write(
        &too_big,
        "[[processors.c2]]\ngpus = [7]\nmemory = \"64TiB\"\ncgroup.cpuset = \"0-4095\"\n",
    )
    .expect("write");
    let output = sealing_worker(&[
        "processors",
        "check",
        "-c",
        too_big.to_str().expect("utf-8"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("asks for GPU 7"), "{stderr}");
    assert!(stderr.contains("more than this machine's"), "{stderr}");
    assert!(stderr.contains("does not have online"), "{stderr}");
}
