//! One trace per sector across processes: a manager (this test's process) and a
//! `sealing-worker daemon` (a process of its own) export their spans over OTLP/HTTP to a
//! receiver running in this test, on a devnet with fake proofs. A sector's spans from
//! both processes share one trace id, form one tree under the manager's root span, and
//! cover every stage the sector went through and the chain messages that carried it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

/// One span as the receiver got it.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

fn text_of(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(text)) => text.clone(),
        Some(AnyValue::IntValue(number)) => number.to_string(),
        Some(AnyValue::BoolValue(flag)) => flag.to_string(),
        Some(AnyValue::DoubleValue(number)) => number.to_string(),
        _ => String::new(),
    }
}

fn collect(request: ExportTraceServiceRequest, into: &Received) {
    let mut spans = into.lock().expect("the received spans");
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| resource.attributes.iter())
            .find(|attribute| attribute.key == "service.name")
            .map(|attribute| text_of(attribute.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|attribute| {
                            (
                                attribute.key.clone(),
                                text_of(attribute.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                });
            }
        }
    }
}

/// An OTLP/HTTP traces receiver (protobuf bodies) on a loopback port.
async fn start_receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the receiver");
    let address = listener.local_addr().expect("the receiver's address");
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let into = Arc::clone(&into);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let into = Arc::clone(&into);
                        async move {
                            let path_ok = request.uri().path() == "/v1/traces";
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|body| body.to_bytes());
                            let status = match (path_ok, body) {
                                (true, Ok(bytes)) => match ExportTraceServiceRequest::decode(bytes)
                                {
                                    Ok(export) => {
                                        collect(export, &into);
                                        hyper::StatusCode::OK
                                    }
                                    Err(_) => hyper::StatusCode::BAD_REQUEST,
                                },
                                _ => hyper::StatusCode::NOT_FOUND,
                            };
                            let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                            *answer.status_mut() = status;
                            answer.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("application/x-protobuf"),
                            );
                            Ok::<_, Infallible>(answer)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{address}"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sector_is_one_trace_across_the_manager_and_the_worker() {
    let (endpoint, received) = start_receiver().await;
    let telemetry = telemetry::init(
        &telemetry::TelemetrySettings {
            service_name: "sector-manager".to_owned(),
            traces_endpoint: Some(format!("{endpoint}/v1/traces")),
            sample_ratio: 1.0,
        },
        "info",
    )
    .expect("start tracing in the manager's process");

    let started =
        support::manager_on_devnet(Duration::from_millis(150), &support::quick_batches(1)).await;
    // The worker's exporter from its own file's `[telemetry]`.
    let support::WorkerFiles {
        directory: _directory,
        config,
    } = started.worker_files(
        1,
        support::free_port(),
        &format!(
            "\n[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"sealing-worker\"\n"
        ),
    );
    let daemon = support::start_daemon(&config, &[("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned())]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !support::finalized_sectors(&started, 1).await.contains(&1) {
        assert!(
            Instant::now() < deadline,
            "sector 1 was not finalized in time; the worker's log:\n{}",
            support::log_of(&config)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The worker sends what it still holds when it stops; the manager's side is flushed.
    daemon.terminate();
    telemetry.flush();

    let is_sector_one = |span: &ReceivedSpan| {
        span.attributes.get("miner").map(String::as_str) == Some("1000")
            && span.attributes.get("number").map(String::as_str) == Some("1")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (root, trace) = loop {
        let spans = received.lock().expect("the received spans").clone();
        let root = spans
            .iter()
            .find(|span| span.name == "sector" && is_sector_one(span))
            .cloned();
        if let Some(root) = root {
            let trace: Vec<ReceivedSpan> = spans
                .iter()
                .filter(|span| span.trace_id == root.trace_id)
                .cloned()
                .collect();
            let finalized = trace
                .iter()
                .any(|span| span.service == "sealing-worker" && span.name == "finalize");
            if finalized {
                break (root, trace);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete trace of sector 1 arrived; {} spans received: {:#?}",
            spans.len(),
            spans
                .iter()
                .map(|span| (&span.service, &span.name))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // One tree: a single root (the manager's), every other span's parent in the trace.
    let ids: BTreeSet<&str> = trace.iter().map(|span| span.span_id.as_str()).collect();
    let roots: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|span| span.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    assert_eq!(roots[0].span_id, root.span_id);
    assert_eq!(root.service, "sector-manager");
    for span in &trace {
        assert!(
            span.parent_span_id.is_empty() || ids.contains(span.parent_span_id.as_str()),
            "{} ({}) hangs off a span outside the trace: {span:#?}",
            span.name,
            span.service
        );
    }
    // Both processes, and every stage of the sector's life.
    let services: BTreeSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["sector-manager", "sealing-worker"]),
        "{trace:#?}"
    );
    let worker_steps: BTreeSet<&str> = trace
        .iter()
        .filter(|span| span.service == "sealing-worker")
        .map(|span| span.name.as_str())
        .collect();
    for step in [
        "add_pieces",
        "tree_d",
        "pc1",
        "pc2",
        "c1",
        "c2",
        "persist",
        "finalize",
        "Venus.SubmitPreCommit",
        "Venus.SubmitProof",
    ] {
        assert!(
            worker_steps.contains(step),
            "no {step} span: {worker_steps:?}"
        );
    }
    let manager_calls: BTreeSet<&str> = trace
        .iter()
        .filter(|span| span.service == "sector-manager")
        .map(|span| span.name.as_str())
        .collect();
    for call in [
        "Venus.AssignTicket",
        "Venus.SubmitPreCommit",
        "Venus.WaitSeed",
        "Venus.SubmitProof",
        "Venus.ReportFinalized",
    ] {
        assert!(
            manager_calls.contains(call),
            "no {call} span: {manager_calls:?}"
        );
    }
    // The chain messages that carried the sector: batched, pushed and executed, for its
    // precommit and its proof.
    for purpose in ["pre_commit", "prove_commit"] {
        for event in ["batched into a message", "pushed", "executed"] {
            let name = format!("{purpose} message {event}");
            assert!(
                manager_calls.contains(name.as_str()),
                "no {name} span: {manager_calls:?}"
            );
        }
    }
    // The worker's spans name the worker, the stage spans their stage, and every span
    // its outcome.
    for span in trace.iter().filter(|span| span.service == "sealing-worker") {
        assert_eq!(
            span.attributes.get("worker").map(String::as_str),
            Some("test-worker"),
            "{span:#?}"
        );
        assert!(span.attributes.contains_key("outcome"), "{span:#?}");
    }
    let pc1 = trace
        .iter()
        .find(|span| span.name == "pc1")
        .expect("a pc1 span");
    assert_eq!(pc1.attributes.get("stage").map(String::as_str), Some("pc1"));
    started.manager.stop().await;
}
