//! Dispatch overhead: how long a no-op task takes through an external processor and back.
//!
//! Run with `cargo bench -p proc-sched --bench dispatch`. The benchmark starts itself as
//! the processor (`--serve`), so what is measured is the daemon's side (encode, write,
//! route the answer by id) plus the processor's side (`serve_stage`: read, decode, a
//! thread per request, encode, write) and two pipe hops; the task itself does nothing.
//! It reports the latency of one task at a time and the throughput with 8 in flight.

#![allow(clippy::print_stdout, reason = "a benchmark prints its results")]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use proc_sched::{ExternalProcessor, ProcessorCommand, serve_stage};
use serde_json::json;

const WARM_UP: usize = 2_000;
const SEQUENTIAL: usize = 20_000;
const PIPELINED: usize = 40_000;
const IN_FLIGHT: usize = 8;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("--serve") {
        return match serve_stage("noop", Ok) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("processor failed: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if arguments.iter().any(|argument| argument == "--test") {
        // `cargo test --benches` runs benchmarks in test mode: nothing to measure there.
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start a tokio runtime");
    runtime.block_on(run());
    ExitCode::SUCCESS
}

async fn run() {
    let command = ProcessorCommand {
        args: vec!["--serve".into()],
        ..ProcessorCommand::new("noop", std::env::current_exe().expect("find this binary"))
    };
    let processor = ExternalProcessor::start(command)
        .await
        .expect("start the processor");
    let task = json!({"sector": 1, "note": "no-op"});
    for _ in 0..WARM_UP {
        processor
            .process(&task, None)
            .await
            .expect("a no-op answers");
    }

    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        let sent = Instant::now();
        processor
            .process(&task, None)
            .await
            .expect("a no-op answers");
        latencies.push(sent.elapsed());
    }
    let sequential_total = started.elapsed();
    latencies.sort();
    let percentile =
        |fraction: f64| latencies[((latencies.len() as f64 - 1.0) * fraction) as usize];
    println!(
        "one at a time: {SEQUENTIAL} tasks, mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
        micros(sequential_total) / SEQUENTIAL as f64,
        micros(percentile(0.5)),
        micros(percentile(0.99)),
    );

    let started = Instant::now();
    let processor = std::sync::Arc::new(processor);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let processor = std::sync::Arc::clone(&processor);
        let task = task.clone();
        workers.spawn(async move {
            for _ in 0..PIPELINED / IN_FLIGHT {
                processor
                    .process(&task, None)
                    .await
                    .expect("a no-op answers");
            }
        });
    }
    while let Some(finished) = workers.join_next().await {
        finished.expect("a worker finishes");
    }
    let pipelined_total = started.elapsed();
    println!(
        "{IN_FLIGHT} in flight: {PIPELINED} tasks in {:.2} s, {:.0} tasks/s, {:.1} µs per task",
        pipelined_total.as_secs_f64(),
        PIPELINED as f64 / pipelined_total.as_secs_f64(),
        micros(pipelined_total) / PIPELINED as f64,
    );
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
