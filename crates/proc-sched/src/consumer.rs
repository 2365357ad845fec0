//! The processor side of the protocol, for processors written in Rust.
//!
//! [`serve_stage`] turns a function from task to output into a processor: it prints the
//! ready line, reads one request per line, runs each request on a thread of its own (the
//! parent bounds how many are in flight) and writes each answer as one line; a task that
//! panics is answered with an error rather than left hanging. The
//! built-in processors (`sealing-worker processor <stage>`) are made with it, and so can
//! any custom processor.

use std::io::{BufRead, Write};
use std::sync::Arc;

use serde_json::Value;

use crate::protocol::{Request, Response, ready_line};

/// Serves requests for `stage` on standard input and output until standard input
/// closes (the parent is gone). Lines that are not requests are reported on standard
/// error and skipped.
pub fn serve_stage<F>(stage: &str, handler: F) -> std::io::Result<()>
where
    F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", ready_line(stage))?;
        stdout.flush()?;
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Request<Value> = match serde_json::from_str(&line) {
            Ok(request) => request,
            Err(error) => {
                eprintln!("{stage} processor: ignoring a line that is not a request: {error}");
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        std::thread::spawn(move || {
            // A panic in the task's code fails that task with a message instead of
            // leaving its request unanswered.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(request.task)))
                    .unwrap_or_else(|panic| {
                        Err(format!("the task panicked: {}", panic_message(&panic)))
                    });
            let response = match outcome {
                Ok(output) => Response {
                    id: request.id,
                    err_msg: None,
                    output: Some(output),
                },
                Err(message) => Response {
                    id: request.id,
                    err_msg: Some(message),
                    output: None,
                },
            };
            write_response(&response);
        });
    }
    Ok(())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "no message".to_owned()
    }
}

fn write_response(response: &Response<Value>) {
    let encoded = match serde_json::to_string(response) {
        Ok(encoded) => encoded,
        Err(error) => {
            eprintln!(
                "could not encode the answer to request {}: {error}",
                response.id
            );
            return;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // One write of the whole line under the lock, so concurrent answers never interleave.
    if let Err(error) = writeln!(stdout, "{encoded}").and_then(|()| stdout.flush()) {
        eprintln!(
            "could not write the answer to request {}: {error}",
            response.id
        );
    }
}
