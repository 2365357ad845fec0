//! External processors as real child processes: the handshake, answers, timeouts,
//! crashes, restarts, cancellation, and the Python example processors.
//!
//! This binary has its own `main` (`harness = false`) so that it can run itself as the
//! processors under test: `--serve <kind>` makes it a processor (see [`serve`]),
//! anything else runs the tests, optionally only those whose names contain an argument.

#![allow(
    clippy::print_stdout,
    reason = "the runner reports like libtest, and misbehaving test processors print on purpose"
)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use proc_sched::budget::{
    CpuSet, LaunchSpec, allowed_cpus_of, create_processor_groups, detect_cgroup_support,
    exec_launch,
};
use proc_sched::{
    ChildState, ExternalProcessor, ProcessError, ProcessorCommand, SpawnError, serve_stage,
};
use sector_fsm::FailureLevel;
use serde_json::{Value, json};

type TestFunction = fn(&tokio::runtime::Runtime);

/// How long one test may run before the whole run fails.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("--serve") {
        return serve(arguments.get(1).map(String::as_str).unwrap_or_default());
    }
    if arguments.first().map(String::as_str) == Some("--launch") {
        let rest: Vec<OsString> = std::env::args_os().skip(2).collect();
        let spec = LaunchSpec::from_arguments(&rest).expect("launcher arguments");
        eprintln!("launcher failed: {}", exec_launch(&spec));
        return ExitCode::FAILURE;
    }
    let filters: Vec<&String> = arguments
        .iter()
        .filter(|argument| !argument.starts_with('-'))
        .collect();
    let tests: [(&str, TestFunction); 11] = [
        ("answers_come_back_by_id_even_out_of_order", answers_by_id),
        (
            "a_processor_error_is_permanent_and_a_missing_output_is_reported",
            processor_errors,
        ),
        (
            "a_hanging_processor_is_killed_at_the_timeout_and_restarted",
            hanging_processor,
        ),
        (
            "a_crash_fails_every_request_in_flight_and_the_processor_comes_back",
            crashing_processor,
        ),
        (
            "a_cancelled_request_leaves_nothing_behind",
            cancelled_request,
        ),
        (
            "a_processor_without_auto_restart_stops_and_says_so",
            no_auto_restart,
        ),
        (
            "a_bad_handshake_is_a_start_up_error_that_says_what_went_wrong",
            bad_handshakes,
        ),
        ("the_python_example_processor_answers", python_square),
        ("the_python_relay_stands_in_for_a_stage", python_relay),
        (
            "a_processor_pinned_to_one_cpu_never_uses_more_than_one_core",
            pinned_processor,
        ),
        (
            "a_cgroup_confines_a_processor_to_its_cpus_and_its_memory",
            cgroup_budget,
        ),
    ];
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| {
            filters.is_empty() || filters.iter().any(|filter| name.contains(filter.as_str()))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start a tokio runtime");
    println!("\nrunning {} tests", selected.len());
    let mut failed = 0;
    for (name, test) in &selected {
        let started = Instant::now();
        // A test that hangs fails the run instead of hanging it.
        let (finished, watchdog) = std::sync::mpsc::channel::<()>();
        let test_name = *name;
        std::thread::spawn(move || {
            if watchdog.recv_timeout(TEST_TIME_LIMIT)
                == Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            {
                println!("test {test_name} ... FAILED (still running after {TEST_TIME_LIMIT:?})");
                std::process::exit(1);
            }
        });
        let outcome = std::panic::catch_unwind(|| test(&runtime));
        let _ = finished.send(());
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!(
            "test {name} ... {verdict} ({:.2} s)",
            started.elapsed().as_secs_f64()
        );
        failed += usize::from(outcome.is_err());
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed\n",
        if failed == 0 { "ok" } else { "FAILED" },
        selected.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------
// The processors under test.

/// Runs this binary as a processor of the kind named.
fn serve(kind: &str) -> ExitCode {
    let result = match kind {
        // The stage "behave" does what each task says.
        "behave" => serve_stage("behave", behave),
        // Prints something else first.
        "chatty" => {
            println!("starting up, please wait");
            serve_stage("behave", behave)
        }
        // Never prints its ready line.
        "silent" => {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        // Exits before it is ready.
        "early-exit" => return ExitCode::from(7),
        other => {
            eprintln!("unknown processor kind {other:?}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("processor failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `{"op": "sqr", "n": 3}` → 9 (after `delay_ms`); `{"op": "fail"}` → an error;
/// `{"op": "null"}` → no output; `{"op": "hang"}` → never answers; `{"op": "crash"}` →
/// the process exits with code 3; `{"op": "burn", "threads": T, "ms": M}` keeps T
/// threads busy for M ms; `{"op": "allocate", "mib": N}` writes to N MiB of memory.
fn behave(task: Value) -> Result<Value, String> {
    if let Some(delay) = task.get("delay_ms").and_then(Value::as_u64) {
        std::thread::sleep(Duration::from_millis(delay));
    }
    match task.get("op").and_then(Value::as_str) {
        Some("sqr") => {
            let number = task
                .get("n")
                .and_then(Value::as_u64)
                .ok_or("n is missing")?;
            Ok(json!(number * number))
        }
        Some("fail") => Err("the disk said no".to_owned()),
        Some("panic") => panic!("an index out of bounds in proofs code"),
        Some("null") => Ok(Value::Null),
        Some("hang") => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
        Some("crash") => std::process::exit(3),
        Some("burn") => {
            let threads = task.get("threads").and_then(Value::as_u64).unwrap_or(1);
            let milliseconds = task.get("ms").and_then(Value::as_u64).unwrap_or(100);
            let until = Instant::now() + Duration::from_millis(milliseconds);
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut counter = 0u64;
                        while Instant::now() < until {
                            counter = std::hint::black_box(counter.wrapping_add(1));
                        }
                        counter
                    })
                })
                .collect();
            let total = workers
                .into_iter()
                .map(|worker| worker.join().unwrap_or_default())
                .fold(0u64, u64::wrapping_add);
            Ok(json!(total))
        }
        Some("allocate") => {
            let mebibytes = task.get("mib").and_then(Value::as_u64).unwrap_or(1) as usize;
            let mut block = vec![0u8; mebibytes << 20];
            for index in (0..block.len()).step_by(4096) {
                block[index] = 1;
            }
            Ok(json!(std::hint::black_box(block).len()))
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// Tests.

fn this_binary() -> PathBuf {
    std::env::current_exe().expect("find this test binary")
}

fn behave_command(kind: &str) -> ProcessorCommand {
    ProcessorCommand {
        args: vec!["--serve".into(), kind.into()],
        restart_delay: Duration::from_millis(50),
        ..ProcessorCommand::new("behave", this_binary())
    }
}

async fn start(command: ProcessorCommand) -> ExternalProcessor {
    ExternalProcessor::start(command)
        .await
        .expect("start the processor")
}

async fn wait_until_ready(processor: &ExternalProcessor, restarts: u64) {
    let mut health = processor.watch_health();
    let deadline = Duration::from_secs(10);
    tokio::time::timeout(
        deadline,
        health.wait_for(|health| {
            matches!(health.state, ChildState::Ready { .. }) && health.restarts == restarts
        }),
    )
    .await
    .expect("the processor is ready again in time")
    .expect("the processor is alive");
}

fn sqr(number: u64, delay_ms: u64) -> Value {
    json!({"op": "sqr", "n": number, "delay_ms": delay_ms})
}

fn answers_by_id(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(behave_command("behave")).await;
        // The slow request is sent first and answered last.
        let (slow_task, fast_task) = (sqr(7, 300), sqr(5, 0));
        let (slow, fast) = tokio::join!(processor.process(&slow_task, None), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            processor.process(&fast_task, None).await
        });
        assert_eq!(slow.expect("slow"), json!(49));
        assert_eq!(fast.expect("fast"), json!(25));
        assert_eq!(processor.in_flight(), 0);
        assert_eq!(processor.health().succeeded, 2);
    });
}

fn processor_errors(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(behave_command("behave")).await;
        let error = processor
            .process(&json!({"op": "fail"}), None)
            .await
            .expect_err("fails");
        assert!(matches!(error, ProcessError::TaskFailed { .. }), "{error}");
        assert_eq!(error.level(), FailureLevel::Permanent);
        assert!(error.to_string().contains("the disk said no"), "{error}");
        let error = processor
            .process(&json!({"op": "panic"}), Some(Duration::from_secs(10)))
            .await
            .expect_err("panics");
        assert!(matches!(error, ProcessError::TaskFailed { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("the task panicked: an index out of bounds"),
            "{error}"
        );
        let error = processor
            .process(&json!({"op": "null"}), None)
            .await
            .expect_err("no output");
        assert!(
            matches!(error, ProcessError::OutputMissing { .. }),
            "{error}"
        );
        assert_eq!(processor.health().failed, 3);
        assert_eq!(
            processor.health().restarts,
            0,
            "a panicking task does not take the processor down"
        );
    });
}

fn hanging_processor(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(behave_command("behave")).await;
        let ChildState::Ready { pid: first_pid } = processor.health().state else {
            panic!("not ready");
        };
        let started = Instant::now();
        let error = processor
            .process(&json!({"op": "hang"}), Some(Duration::from_millis(300)))
            .await
            .expect_err("times out");
        let waited = started.elapsed();
        assert!(matches!(error, ProcessError::TimedOut { .. }), "{error}");
        assert_eq!(error.level(), FailureLevel::Temporary);
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        wait_until_ready(&processor, 1).await;
        let ChildState::Ready { pid: second_pid } = processor.health().state else {
            panic!("not ready");
        };
        assert_ne!(first_pid, second_pid, "a new child runs");
        assert!(!process_exists(first_pid), "the hanging child was killed");
        assert_eq!(
            processor
                .process(&sqr(3, 0), None)
                .await
                .expect("works again"),
            json!(9)
        );
        assert_eq!(processor.health().timed_out, 1);
    });
}

fn crashing_processor(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(behave_command("behave")).await;
        let (slow_task, crash_task) = (sqr(2, 2_000), json!({"op": "crash"}));
        let (slow, crash) = tokio::join!(processor.process(&slow_task, None), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            processor.process(&crash_task, None).await
        });
        for result in [slow, crash] {
            let error = result.expect_err("the child crashed");
            assert!(matches!(error, ProcessError::ChildExited { .. }), "{error}");
            assert!(error.to_string().contains("exit code 3"), "{error}");
            assert_eq!(error.level(), FailureLevel::Temporary);
        }
        wait_until_ready(&processor, 1).await;
        assert_eq!(
            processor
                .process(&sqr(4, 0), None)
                .await
                .expect("works again"),
            json!(16)
        );
        assert_eq!(processor.in_flight(), 0);
    });
}

fn cancelled_request(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(behave_command("behave")).await;
        let slow_task = sqr(6, 500);
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            processor.process(&slow_task, None),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up first");
        assert_eq!(
            processor.in_flight(),
            0,
            "the cancelled request left no entry"
        );
        // The late answer to the cancelled request is discarded; new requests still work.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            processor.process(&sqr(8, 0), None).await.expect("works"),
            json!(64)
        );
        assert_eq!(
            processor.health().restarts,
            0,
            "cancelling does not kill the child"
        );
    });
}

fn no_auto_restart(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(ProcessorCommand {
            auto_restart: false,
            ..behave_command("behave")
        })
        .await;
        let error = processor
            .process(&json!({"op": "crash"}), None)
            .await
            .expect_err("crashed");
        assert!(matches!(error, ProcessError::ChildExited { .. }), "{error}");
        let mut health = processor.watch_health();
        health
            .wait_for(|health| matches!(health.state, ChildState::Stopped { .. }))
            .await
            .expect("the state is published");
        let error = processor
            .process(&sqr(1, 0), None)
            .await
            .expect_err("stopped");
        assert!(matches!(error, ProcessError::Unavailable { .. }), "{error}");
        assert!(error.to_string().contains("auto_restart is off"), "{error}");
    });
}

fn bad_handshakes(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let error = ExternalProcessor::start(behave_command("chatty"))
            .await
            .expect_err("wrong first line");
        assert!(
            matches!(error, SpawnError::UnexpectedFirstLine { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("\"starting up, please wait\""),
            "{error}"
        );

        let error = ExternalProcessor::start(ProcessorCommand {
            stable_wait: Duration::from_millis(200),
            ..behave_command("silent")
        })
        .await
        .expect_err("never ready");
        assert!(matches!(error, SpawnError::NotReady { .. }), "{error}");
        assert!(error.to_string().contains("raise stable_wait"), "{error}");

        let error = ExternalProcessor::start(behave_command("early-exit"))
            .await
            .expect_err("exits");
        assert!(error.to_string().contains("exit code 7"), "{error}");

        let error =
            ExternalProcessor::start(ProcessorCommand::new("pc1", "/nonexistent/processor"))
                .await
                .expect_err("no such program");
        assert!(matches!(error, SpawnError::Spawn { .. }), "{error}");

        // The stage in the ready line must match the configured stage.
        let error = ExternalProcessor::start(ProcessorCommand {
            stage_name: "pc1".to_owned(),
            ..behave_command("behave")
        })
        .await
        .expect_err("a processor of another stage");
        assert!(
            error
                .to_string()
                .contains("\"pc1 processor ready\" was expected"),
            "{error}"
        );
    });
}

fn examples_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/processors")
}

fn python_square(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let processor = start(ProcessorCommand {
            args: vec![examples_directory().join("square.py").into()],
            ..ProcessorCommand::new("sqr", "python3")
        })
        .await;
        assert_eq!(
            processor.process(&json!(15), None).await.expect("squares"),
            json!(225)
        );
        let error = processor
            .process(&json!(-1), None)
            .await
            .expect_err("refuses");
        assert!(
            error
                .to_string()
                .contains("expected a non-negative integer"),
            "{error}"
        );
    });
}

fn python_relay(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let mut args: Vec<OsString> = vec![
            examples_directory().join("relay.py").into(),
            "behave".into(),
        ];
        args.push(this_binary().into());
        args.extend(["--serve".into(), "behave".into()]);
        let processor = start(ProcessorCommand {
            args,
            restart_delay: Duration::from_millis(50),
            ..ProcessorCommand::new("behave", "python3")
        })
        .await;
        let (slow_task, fast_task) = (sqr(9, 200), sqr(2, 0));
        let (slow, fast) = tokio::join!(
            processor.process(&slow_task, None),
            processor.process(&fast_task, None)
        );
        assert_eq!(slow.expect("relayed"), json!(81));
        assert_eq!(fast.expect("relayed"), json!(4));
        // A crash of the relayed processor ends the relay, which is restarted in turn.
        let error = processor
            .process(&json!({"op": "crash"}), None)
            .await
            .expect_err("crashed");
        assert!(matches!(error, ProcessError::ChildExited { .. }), "{error}");
        wait_until_ready(&processor, 1).await;
        assert_eq!(
            processor
                .process(&sqr(3, 0), None)
                .await
                .expect("relayed again"),
            json!(9)
        );
    });
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The command that runs the behaving processor through this binary as the launcher.
fn launched_behave_command(cpus: Option<CpuSet>, join: Vec<PathBuf>) -> ProcessorCommand {
    let spec = LaunchSpec {
        cpus,
        join,
        program: this_binary().into(),
        args: vec!["--serve".into(), "behave".into()],
    };
    let mut args: Vec<OsString> = vec!["--launch".into()];
    args.extend(spec.to_arguments());
    ProcessorCommand {
        args,
        restart_delay: Duration::from_millis(50),
        ..ProcessorCommand::new("behave", this_binary())
    }
}

fn pid_of(processor: &ExternalProcessor) -> u32 {
    match processor.health().state {
        ChildState::Ready { pid } => pid,
        other => panic!("the processor is not ready: {other}"),
    }
}

/// The CPU time a process has used so far (user and system, all threads), from
/// `/proc/<pid>/stat`.
fn cpu_time_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let per_second = rustix::param::clock_ticks_per_second();
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// Runs a two-thread, 1.5-second burn on `processor` and returns the cores it used on
/// average: CPU time over wall time.
async fn cores_used_by_a_burn(processor: &ExternalProcessor) -> f64 {
    let pid = pid_of(processor);
    let before = cpu_time_of(pid);
    let started = Instant::now();
    let burn = json!({"op": "burn", "threads": 2, "ms": 1500});
    processor
        .process(&burn, None)
        .await
        .expect("the burn finishes");
    let wall = started.elapsed();
    let used = cpu_time_of(pid) - before;
    used.as_secs_f64() / wall.as_secs_f64()
}

fn pinned_processor(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        let one_cpu = CpuSet::from_cpus([0]);
        let pinned = start(launched_behave_command(Some(one_cpu.clone()), Vec::new())).await;
        assert_eq!(allowed_cpus_of(pid_of(&pinned)).expect("read the allowed CPUs"), one_cpu);
        let pinned_cores = cores_used_by_a_burn(&pinned).await;
        let free = start(behave_command("behave")).await;
        let free_cores = cores_used_by_a_burn(&free).await;
        println!("    two busy threads used {pinned_cores:.2} cores pinned to CPU 0 and {free_cores:.2} cores unpinned");
        // Clock ticks are coarse (10 ms), so allow a little over one core.
        assert!(pinned_cores <= 1.1, "a processor pinned to one CPU used {pinned_cores:.2} cores");
    });
}

/// Removes the test's control groups however the test ends, once their processes are
/// gone (a killed child leaves its group a moment after the kill).
struct GroupCleanup {
    directories: Vec<PathBuf>,
}

impl Drop for GroupCleanup {
    fn drop(&mut self) {
        for directory in &self.directories {
            for _ in 0..100 {
                match std::fs::remove_dir(directory) {
                    Ok(()) => break,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

fn cgroup_budget(runtime: &tokio::runtime::Runtime) {
    let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let group = format!("sealcluster-test-{}", std::process::id());
    let support =
        detect_cgroup_support(std::path::Path::new("/sys/fs/cgroup"), &self_cgroup, &group);
    println!("    {}", support.describe());
    let mut cleanup = GroupCleanup {
        directories: support.parent_directories(),
    };
    assert!(
        support.limits_memory(),
        "this test needs a writable cgroup (v1 cpuset and memory, or v2), as the test machines have"
    );
    let one_cpu = CpuSet::from_cpus([0]);
    let groups = create_processor_groups(&support, "behave-0", Some(&one_cpu), Some(64 << 20))
        .expect("create the processor's groups");
    // Children before parents.
    let mut directories = groups.directories().to_vec();
    directories.append(&mut cleanup.directories);
    cleanup.directories = directories;
    runtime.block_on(async {
        // No affinity is asked of the launcher: only the group confines the processor.
        let processor = start(ProcessorCommand {
            auto_restart: false,
            ..launched_behave_command(None, groups.directories().to_vec())
        })
        .await;
        assert_eq!(
            allowed_cpus_of(pid_of(&processor)).expect("read the allowed CPUs"),
            one_cpu
        );
        let small = processor
            .process(&json!({"op": "allocate", "mib": 16}), None)
            .await;
        assert_eq!(small.expect("16 MiB fit in 64"), json!(16 << 20));
        let error = processor
            .process(&json!({"op": "allocate", "mib": 256}), None)
            .await
            .expect_err("256 MiB do not fit in 64");
        assert!(matches!(error, ProcessError::ChildExited { .. }), "{error}");
        assert!(
            error.to_string().contains("killed by signal 9"),
            "the kernel killed it: {error}"
        );
    });
    drop(cleanup);
}
