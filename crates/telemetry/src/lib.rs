//! Logs and traces for every sealcluster binary, and the trace context that crosses
//! hosts, so one sector's story is one OpenTelemetry trace across the manager, its
//! workers and their processors.
//!
//! [`init`] installs the `tracing` subscriber: log lines on standard error (filtered by
//! `RUST_LOG`), and, when an endpoint is configured, every span exported over OTLP/HTTP
//! with protobuf bodies (a collector, Jaeger or Tempo listens on port 4318). The
//! standard `OTEL_*` variables override the configuration. Spans cross processes as W3C
//! `traceparent` values: [`traceparent_of`] writes one for a span, [`set_parent`] makes a
//! span the child of one.
//!
//! Metrics go through the `metrics` facade (re-exported here, so every crate records with
//! the same version); [`install_metrics`] installs a Prometheus recorder, and
//! [`render_metrics`] is what a `/metrics` endpoint answers.

use std::collections::HashMap;
use std::sync::OnceLock;

pub use metrics;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The W3C header (and processor request field) that carries a span's context.
pub const TRACEPARENT: &str = "traceparent";

/// Whether this process exports spans (set by [`init`]): callers skip work that only
/// feeds traces, such as looking up a sector's context, when it does not.
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process exports spans.
pub fn is_exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be made.
    #[error("make the OTLP exporter for {endpoint}: {reason}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A subscriber was installed already.
    #[error("install the log and trace subscriber: {0}")]
    Install(String),
}

/// Where and how spans are exported.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetrySettings {
    /// The `service.name` of this process's spans.
    pub service_name: String,
    /// The OTLP/HTTP traces URL (`http://collector:4318/v1/traces`); none exports nothing.
    pub traces_endpoint: Option<String>,
    /// The share of new traces kept, from 0 to 1; a trace started elsewhere follows the
    /// decision of its parent.
    pub sample_ratio: f64,
}

impl TelemetrySettings {
    /// The settings of `service_name`: the configuration's `endpoint` (a base URL such as
    /// `http://collector:4318`, or one ending in `/v1/traces`) and `sample_ratio`,
    /// overridden by `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_SDK_DISABLED`.
    pub fn resolve(service_name: &str, endpoint: Option<&str>, sample_ratio: f64) -> Self {
        Self::resolve_with(service_name, endpoint, sample_ratio, |name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })
    }

    /// [`TelemetrySettings::resolve`] with the variables read through `variable`.
    pub fn resolve_with(
        service_name: &str,
        endpoint: Option<&str>,
        sample_ratio: f64,
        variable: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let service_name = variable("OTEL_SERVICE_NAME").unwrap_or_else(|| service_name.to_owned());
        let traces_endpoint = variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| variable("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_url(&base)))
            .or_else(|| {
                endpoint
                    .filter(|text| !text.trim().is_empty())
                    .map(traces_url)
            })
            .filter(|_| {
                !variable("OTEL_SDK_DISABLED")
                    .is_some_and(|value| value.eq_ignore_ascii_case("true"))
            });
        let sample_ratio = match variable("OTEL_TRACES_SAMPLER").as_deref() {
            Some("always_off" | "parentbased_always_off") => 0.0,
            Some("always_on" | "parentbased_always_on") => 1.0,
            Some("traceidratio" | "parentbased_traceidratio") => {
                variable("OTEL_TRACES_SAMPLER_ARG")
                    .and_then(|text| text.trim().parse::<f64>().ok())
                    .unwrap_or(1.0)
            }
            _ => sample_ratio,
        }
        .clamp(0.0, 1.0);
        TelemetrySettings {
            service_name,
            traces_endpoint,
            sample_ratio,
        }
    }
}

/// The traces URL of an OTLP/HTTP endpoint given as a base URL or as the full URL.
fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// Keeps the exporter alive; dropping it sends the spans still queued.
#[must_use = "dropping the guard stops exporting spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TelemetryGuard")
            .field("exporting", &self.provider.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    /// Sends the spans queued so far (a test reads them right after).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "could not send the queued spans");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            // The subscriber may be gone by now; standard error is what is left.
            eprintln!("could not send the last spans: {error}");
        }
    }
}

/// Installs the log and trace subscriber for this process: log lines on standard error
/// filtered by `RUST_LOG` (else `default_filter`), and spans exported as `settings` say.
pub fn init(
    settings: &TelemetrySettings,
    default_filter: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    init_with_log(settings, default_filter, std::io::stderr, colours)
}

/// [`init`] with the log lines written to `log` (a file, say), coloured or not.
pub fn init_with_log<W>(
    settings: &TelemetrySettings,
    default_filter: &str,
    log: W,
    colours: bool,
) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(log)
        .with_ansi(colours);
    let provider = match &settings.traces_endpoint {
        None => None,
        Some(endpoint) => Some(provider(settings, endpoint)?),
    };
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("sealcluster")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|error| TelemetryError::Install(error.to_string()))?;
    if let Some(endpoint) = &settings.traces_endpoint {
        EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            service = %settings.service_name,
            %endpoint,
            sample_ratio = settings.sample_ratio,
            "exporting traces over OTLP/HTTP"
        );
    }
    Ok(TelemetryGuard { provider })
}

fn provider(
    settings: &TelemetrySettings,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(10))
        .with_headers(HashMap::new())
        .build()
        .map_err(|error| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            reason: error.to_string(),
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

/// Seconds: the bucket bounds of every duration histogram, from a millisecond (an RPC
/// call) to two hours (a 64GiB PC1 is longer and lands in `+Inf`).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 1800.0, 3600.0, 7200.0,
];

static PROMETHEUS: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls do nothing), so
/// metrics recorded from now on are rendered by [`render_metrics`]. False when another
/// recorder was installed first.
pub fn install_metrics() -> bool {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(DURATION_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .is_some()
}

/// The metrics in Prometheus' text format (empty before [`install_metrics`]).
pub fn render_metrics() -> String {
    PROMETHEUS
        .get()
        .and_then(Option::as_ref)
        .map(metrics_exporter_prometheus::PrometheusHandle::render)
        .unwrap_or_default()
}

/// The content type of [`render_metrics`]' answer.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `traceparent` of `span`, or `None` when it is not recorded (no exporter, or not
/// sampled and not propagated).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the current span.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Makes `span` a child of the span `traceparent` names (from another process); false
/// when it names none.
pub fn set_parent(span: &tracing::Span, traceparent: &str) -> bool {
    let mut carrier = HashMap::new();
    carrier.insert(TRACEPARENT.to_owned(), traceparent.trim().to_owned());
    let context = TraceContextPropagator::new().extract(&carrier);
    if !context.span().span_context().is_valid() {
        return false;
    }
    let _ = span.set_parent(context);
    true
}

/// The trace id (32 hexadecimal digits) in a `traceparent`.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    (trace_id.len() == 32 && trace_id.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(wanted, _)| wanted == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn the_standard_variables_override_the_configuration() {
        let none = variables(&[]);
        let settings = TelemetrySettings::resolve_with("sector-manager", None, 1.0, &none);
        assert_eq!(settings.traces_endpoint, None);
        let settings =
            TelemetrySettings::resolve_with("sector-manager", Some("http://c:4318"), 0.5, &none);
        assert_eq!(
            settings.traces_endpoint.as_deref(),
            Some("http://c:4318/v1/traces")
        );
        assert_eq!(settings.sample_ratio, 0.5);
        let settings = TelemetrySettings::resolve_with(
            "sector-manager",
            Some("http://c:4318"),
            0.5,
            variables(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318/"),
                ("OTEL_SERVICE_NAME", "manager-a"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ]),
        );
        assert_eq!(
            settings.traces_endpoint.as_deref(),
            Some("http://other:4318/v1/traces")
        );
        assert_eq!(settings.service_name, "manager-a");
        assert_eq!(settings.sample_ratio, 0.25);
        let settings = TelemetrySettings::resolve_with(
            "x",
            Some("http://c:4318/v1/traces"),
            1.0,
            variables(&[("OTEL_SDK_DISABLED", "true")]),
        );
        assert_eq!(settings.traces_endpoint, None);
    }

    #[test]
    fn recorded_metrics_render_in_the_prometheus_format() {
        assert!(install_metrics());
        assert!(
            install_metrics(),
            "a second install keeps the first recorder"
        );
        metrics::counter!("sealcluster_test_total", "kind" => "a").increment(2);
        metrics::histogram!("sealcluster_test_seconds").record(0.2);
        let text = render_metrics();
        assert!(
            text.contains("sealcluster_test_total{kind=\"a\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sealcluster_test_seconds_bucket{le=\"0.25\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn a_traceparent_names_its_trace() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id_of("garbage"), None);
    }
}
