//! Tests that need more than one process: the race to claim a sealing store, a claim held
//! by a process that is killed, and moves into small or read-only file systems.
//!
//! This binary has its own `main` (`harness = false`) so that it can run itself as the
//! child processes: `--child <mode> ...` selects a child's behaviour, anything else runs
//! the tests (optionally only those whose names contain an argument). The file-system
//! tests mount a tmpfs of a chosen size in a private mount namespace with `unshare --user
//! --map-root-user --mount`, which needs no privileges, so a real kernel reports the real
//! `ENOSPC` and `EROFS` in the middle of a real copy; nothing is simulated.

#![allow(
    clippy::print_stdout,
    reason = "the children answer their parent on standard output, and the runner reports like libtest"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};

use storage_alloc::layout::persisted_files;
use storage_alloc::{
    MoveRequest, ReplicaKind, SealingStoreError, SealingStoreLayout, SectorSize, SourceDisposal,
    claim_sealing_store, initialise_sealing_store, move_sector_files,
};

/// The number of claim races, from the issue's acceptance list.
const CLAIM_ROUNDS: usize = 100;

const SECTOR: sector_fsm::types::SectorId = sector_fsm::types::SectorId {
    miner: 1000,
    number: 7,
};

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("--child") {
        return run_child(&arguments[1..]);
    }
    let filters: Vec<&String> = arguments
        .iter()
        .filter(|argument| !argument.starts_with('-'))
        .collect();
    let tests: [(&str, fn()); 5] = [
        (
            "exactly_one_of_two_racing_processes_claims_a_store_in_each_round",
            claim_race,
        ),
        ("a_killed_holder_releases_its_claim", killed_holder_releases),
        (
            "running_out_of_space_mid_move_leaves_no_partial_file_and_an_intact_source",
            out_of_space_move,
        ),
        (
            "a_read_only_destination_fails_permanently_and_writes_nothing",
            read_only_move,
        ),
        (
            "a_move_to_another_file_system_copies_verifies_and_then_removes_the_source",
            cross_device_move,
        ),
    ];
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| {
            filters.is_empty() || filters.iter().any(|filter| name.contains(filter.as_str()))
        })
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(test);
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!(
            "test {name} ... {verdict} ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------
// Children.

fn run_child(arguments: &[String]) -> ExitCode {
    let result = match arguments.first().map(String::as_str) {
        Some("claim") => child_claim(Path::new(&arguments[1])),
        Some("hold") => child_hold(Path::new(&arguments[1])),
        Some("move") => child_move(Path::new(&arguments[1]), Path::new(&arguments[2])),
        other => Err(format!("unknown child mode {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("child failed: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for "go" on standard input, claims the store, and answers `won` or `lost <pid>`.
/// A winner keeps its claim until its standard input closes.
fn child_claim(location: &Path) -> Result<(), String> {
    let mut line = String::new();
    let stdin = std::io::stdin();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|error| error.to_string())?;
    match claim_sealing_store(location) {
        Ok(claimed) => {
            println!("won");
            std::io::stdout()
                .flush()
                .map_err(|error| error.to_string())?;
            while stdin
                .lock()
                .read_line(&mut line)
                .map_err(|error| error.to_string())?
                > 0
            {}
            drop(claimed);
            Ok(())
        }
        Err(SealingStoreError::AlreadyClaimed { holder_pid, .. }) => {
            match holder_pid {
                Some(pid) => println!("lost {pid}"),
                None => println!("lost unknown"),
            }
            Ok(())
        }
        Err(other) => Err(other.to_string()),
    }
}

/// Claims the store, says so, and sleeps until it is killed.
fn child_hold(location: &Path) -> Result<(), String> {
    let _claimed = claim_sealing_store(location).map_err(|error| error.to_string())?;
    println!("held");
    std::io::stdout()
        .flush()
        .map_err(|error| error.to_string())?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Moves the test sector's files from `source_root` to `destination_root`, then reports
/// the outcome and every file under the destination, with its size, since the
/// destination's file system exists only in this process's mount namespace.
fn child_move(source_root: &Path, destination_root: &Path) -> Result<(), String> {
    let files = persisted_files(SECTOR, SectorSize::Size2KiB, ReplicaKind::Sealed);
    let outcome = move_sector_files(&MoveRequest {
        source_root,
        destination_root,
        files: &files,
        allow_hard_link: true,
        source_disposal: SourceDisposal::Remove,
    });
    match outcome {
        Ok(report) => println!("moved {}", report.copied_bytes()),
        Err(error) => println!("failed {:?} {:?} {error}", error.level, error.step),
    }
    for (path, size) in files_under(destination_root) {
        println!("file {path} {size}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tests.

fn claim_race() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let location = directory.path().join("store");
    initialise_sealing_store(&location).expect("initialise the store");
    let mut holders_named = 0;
    let mut second_started_won = 0;
    for round in 0..CLAIM_ROUNDS {
        let mut first = spawn_child(&["claim", path_text(&location)]);
        let mut second = spawn_child(&["claim", path_text(&location)]);
        // Both children are started and waiting; release them together.
        first.say("go");
        second.say("go");
        let answers = [first.read_line(), second.read_line()];
        let winners: Vec<usize> = (0..2).filter(|&index| answers[index] == "won").collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one winner, got {answers:?}"
        );
        let winner_pid = [first.child.id(), second.child.id()][winners[0]];
        second_started_won += winners[0];
        let loser_answer = &answers[1 - winners[0]];
        assert!(
            loser_answer.starts_with("lost "),
            "round {round}: {answers:?}"
        );
        if *loser_answer == format!("lost {winner_pid}") {
            holders_named += 1;
        } else {
            assert_eq!(
                loser_answer, "lost unknown",
                "round {round}: the loser named a wrong holder"
            );
        }
        for child in [first, second] {
            child.finish();
        }
    }
    println!(
        "    {CLAIM_ROUNDS} rounds, one winner each (the child released second won {second_started_won}); the loser named the winner's pid in {holders_named}"
    );
    assert_eq!(
        holders_named, CLAIM_ROUNDS,
        "a refused claim names its holder"
    );
}

fn killed_holder_releases() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let location = directory.path().join("store");
    initialise_sealing_store(&location).expect("initialise the store");
    let mut holder = spawn_child(&["hold", path_text(&location)]);
    assert_eq!(holder.read_line(), "held");
    let refused = claim_sealing_store(&location).expect_err("the store is held");
    assert!(
        refused
            .to_string()
            .contains(&format!("process {}", holder.child.id())),
        "{refused}"
    );
    holder.child.kill().expect("kill the holder");
    holder.child.wait().expect("reap the holder");
    let claimed = claim_sealing_store(&location).expect("a killed holder's claim is gone");
    assert!(claimed.is_still_exclusive().expect("stat the holder file"));
}

/// The sizes of the test sector's sealed replica and its tree-r-last: the small file
/// system (128 KiB) takes the replica whole, then fills up in the middle of the tree, so
/// the failed move has a finished file to take back and a partial one to delete.
const REPLICA_BYTES: usize = 96 * 1024;
const TREE_R_LAST_BYTES: usize = 64 * 1024;

fn out_of_space_move() {
    let trial = MoveTrial::run("size=128k");
    assert!(
        trial.outcome.starts_with("failed Temporary Write"),
        "a full disk is a temporary write failure: {}",
        trial.outcome
    );
    assert!(
        trial.outcome.contains("sc-02-data-tree-r-last.dat"),
        "the disk fills up during the tree: {}",
        trial.outcome
    );
    assert!(
        trial.outcome.contains("No space left on device"),
        "{}",
        trial.outcome
    );
    assert!(
        trial.destination_files.is_empty(),
        "no file, partial or temporary, is left in the destination: {:?}",
        trial.destination_files
    );
    trial.assert_source_intact();
}

fn read_only_move() {
    let trial = MoveTrial::run("ro,size=16m");
    assert!(
        trial
            .outcome
            .starts_with("failed Permanent CreateDirectory"),
        "a read-only store is a permanent failure: {}",
        trial.outcome
    );
    assert!(
        trial.outcome.contains("Read-only file system"),
        "{}",
        trial.outcome
    );
    assert!(
        trial.destination_files.is_empty(),
        "{:?}",
        trial.destination_files
    );
    trial.assert_source_intact();
}

fn cross_device_move() {
    let trial = MoveTrial::run("size=16m");
    let expected_bytes: u64 = trial.source_before.values().sum();
    assert_eq!(
        trial.outcome,
        format!("moved {expected_bytes}"),
        "every byte is copied"
    );
    let source_files_left = files_under(&trial.layout.data_directory());
    assert!(
        source_files_left.is_empty(),
        "the sources are removed: {source_files_left:?}"
    );
    assert_eq!(
        trial.destination_files, trial.source_before,
        "the same files with the same sizes"
    );
}

/// One move of the test sector from a fresh sealing store into a tmpfs mounted with the
/// given options, and what it left behind.
struct MoveTrial {
    _directory: tempfile::TempDir,
    layout: SealingStoreLayout,
    source_before: BTreeMap<String, u64>,
    outcome: String,
    destination_files: BTreeMap<String, u64>,
}

impl MoveTrial {
    fn run(mount_options: &str) -> MoveTrial {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let layout = prepared_sealing_store(directory.path());
        let source_before = files_under(&layout.data_directory());
        let destination = directory.path().join("persist");
        std::fs::create_dir(&destination).expect("create the mount point");
        let output = move_in_namespace(&layout, &destination, mount_options);
        let (outcome, destination_files) = parse_move_output(&output);
        MoveTrial {
            _directory: directory,
            layout,
            source_before,
            outcome,
            destination_files,
        }
    }

    fn assert_source_intact(&self) {
        assert_eq!(
            files_under(&self.layout.data_directory()),
            self.source_before,
            "the sealing store's files are all there, with their sizes"
        );
        assert_eq!(
            std::fs::read(self.layout.sealed_file(SECTOR)).expect("read the replica"),
            replica_contents(),
            "the replica's contents are intact"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// A running child with its pipes. Dropping it kills the child, so a failed assertion
/// never leaves a child holding a lock or an output pipe (which would hang the run).
struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ChildProcess {
    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read a child's answer");
        line.trim_end().to_owned()
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the child's stdin is open");
        writeln!(stdin, "{line}").expect("write to a child");
        stdin.flush().expect("flush a child's stdin");
    }

    /// Closes the child's standard input (a winner then lets go) and waits for it.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for a child");
        assert!(status.success(), "a child failed: {status}");
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // The child may have exited since; either way it is reaped below.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_child(arguments: &[&str]) -> ChildProcess {
    let mut child = Command::new(std::env::current_exe().expect("find this test binary"))
        .arg("--child")
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a child");
    let stdin = child.stdin.take().expect("the child's stdin");
    let stdout = BufReader::new(child.stdout.take().expect("the child's stdout"));
    ChildProcess {
        child,
        stdin: Some(stdin),
        stdout,
    }
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn replica_contents() -> Vec<u8> {
    (0..REPLICA_BYTES)
        .map(|index| (index * 31 % 251) as u8)
        .collect()
}

/// A sealing store holding the test sector's files (a 96 KiB replica, a 64 KiB
/// tree-r-last, small `p_aux` and `t_aux`) in the layout [`persisted_files`] lists.
fn prepared_sealing_store(root: &Path) -> SealingStoreLayout {
    let layout = initialise_sealing_store(&root.join("sealing")).expect("initialise the store");
    let data = layout.data_directory();
    for (index, relative) in persisted_files(SECTOR, SectorSize::Size2KiB, ReplicaKind::Sealed)
        .iter()
        .enumerate()
    {
        let path = data.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent"))
            .expect("create the cache directory");
        let contents = match index {
            0 => replica_contents(),
            1 => vec![1; TREE_R_LAST_BYTES],
            _ => vec![index as u8; 1024],
        };
        std::fs::write(path, contents).expect("write a sector file");
    }
    layout
}

/// Runs the `move` child in a private mount namespace with a tmpfs mounted on
/// `destination` with `mount_options`, and returns what it printed.
fn move_in_namespace(
    layout: &SealingStoreLayout,
    destination: &Path,
    mount_options: &str,
) -> String {
    let script =
        r#"mount -t tmpfs -o "$1" sealcluster-test "$2" && exec "$3" --child move "$4" "$2""#;
    let output = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            mount_options,
        ])
        .arg(destination)
        .arg(std::env::current_exe().expect("find this test binary"))
        .arg(layout.data_directory())
        .output()
        .expect("run unshare (from util-linux), which these tests need");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the move child failed ({}); these tests need unprivileged user and mount namespaces.\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Splits a move child's output into its outcome line and the destination's files.
fn parse_move_output(output: &str) -> (String, BTreeMap<String, u64>) {
    let mut lines = output.lines();
    let outcome = lines
        .next()
        .expect("the child reports an outcome")
        .to_owned();
    let files = lines
        .filter_map(|line| line.strip_prefix("file "))
        .map(|entry| {
            let (path, size) = entry.rsplit_once(' ').expect("path and size");
            (path.to_owned(), size.parse().expect("a size"))
        })
        .collect();
    (outcome, files)
}

/// Every file under `root` (hidden ones included) with its size, by relative path.
fn files_under(root: &Path) -> BTreeMap<String, u64> {
    let mut files = BTreeMap::new();
    let mut pending: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("read a directory entry");
            let metadata = entry.metadata().expect("stat a directory entry");
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                let relative = entry
                    .path()
                    .strip_prefix(root)
                    .expect("under the root")
                    .display()
                    .to_string();
                files.insert(relative, metadata.len());
            }
        }
    }
    files
}
