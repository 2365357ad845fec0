//! The external-processor wire protocol, exactly as damocles-worker speaks it.
//!
//! A processor is a child process that reads requests on its standard input and writes
//! answers on its standard output, one JSON object per line in both directions. Before
//! any request it prints one line, `"<stage> processor ready"`. A request is
//! `{"id": <u64>, "task": <the stage's task>}`; its answer is `{"id": <the same id>,
//! "err_msg": <null or a message>, "output": <the stage's output or null>}`. Answers may
//! come in any order; the id matches them up. Standard error is free for logs. The full
//! description, for writing a processor in another language, is
//! `docs/processor-protocol.md`.

use serde::{Deserialize, Serialize};

/// The stage name of a processor that only has to start (the reference's `sealing_daemons`).
pub const EMPTY_STAGE: &str = "EMPTY";

/// The line a processor of `stage` prints once it is ready for requests.
pub fn ready_line(stage: &str) -> String {
    format!("{stage} processor ready")
}

/// One request to a processor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request<T> {
    /// Chosen by the caller, unique among the requests in flight to one child.
    pub id: u64,
    /// The stage's task.
    pub task: T,
    /// sealcluster's addition: the W3C `traceparent` of the span that asked, so a
    /// processor can put its own spans in the sector's trace. Left out when there is
    /// none; processors that do not know it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// One answer from a processor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response<O> {
    /// The id of the request answered.
    pub id: u64,
    /// Why the task failed, or `None` when it succeeded.
    #[serde(default)]
    pub err_msg: Option<String>,
    /// The stage's output when it succeeded.
    #[serde(default)]
    pub output: Option<O>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example_round_trips_byte_for_byte() {
        let request: Request<u32> =
            serde_json::from_str(r#"{"id": 1, "task": 15}"#).expect("decode");
        assert_eq!(
            request,
            Request {
                id: 1,
                task: 15,
                traceparent: None
            }
        );
        assert_eq!(
            serde_json::to_string(&request).expect("encode"),
            r#"{"id":1,"task":15}"#
        );
        let response = Response {
            id: 1,
            err_msg: None,
            output: Some(225),
        };
        assert_eq!(
            serde_json::to_string(&response).expect("encode"),
            r#"{"id":1,"err_msg":null,"output":225}"#
        );
        let failed: Response<u32> = serde_json::from_str(r#"{"id":2,"err_msg":"no space"}"#)
            .expect("decode without output");
        assert_eq!(failed.err_msg.as_deref(), Some("no space"));
        assert_eq!(ready_line("pc1"), "pc1 processor ready");
    }
}
