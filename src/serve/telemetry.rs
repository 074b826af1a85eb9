//! Exporting traces over OTLP/HTTP (protobuf), when an endpoint is configured: spans queue in
//! the SDK's batch processor, whose own thread sends them in batches, so a request never waits
//! for an export; the last ones are flushed when the run stops. The HTTP client is hyper's,
//! driven on the bridge's runtime.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry::trace::TracerProvider;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::runtime::Handle;
use tracing::{info, warn};

use crate::upstream::trace;

/// Where and as whom traces are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    /// The `service.name` of the bridge's spans.
    pub service_name: String,
}

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why traces could not be turned on.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {endpoint}: {reason}")]
pub struct TelemetryError {
    endpoint: String,
    reason: String,
}

/// Traces being exported, until [`Telemetry::shutdown`] flushes the last of them.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts exporting to `export.endpoint` and turns the bridge's spans on. Must run on the
    /// runtime that will carry the exports.
    pub fn start(export: &TraceExport) -> Result<Self, TelemetryError> {
        let failed = |reason: String| TelemetryError {
            endpoint: export.endpoint.clone(),
            reason,
        };
        if !export.endpoint.starts_with("http://") {
            return Err(failed(
                "the bridge sends traces over plain http:// (to a collector beside it)".into(),
            ));
        }
        let client = OnRuntime {
            runtime: Handle::current(),
            client: HyperClient::with_default_connector(EXPORT_TIMEOUT, None),
        };
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(export.endpoint.clone())
            .with_http_client(client)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(export.service_name.clone())
                    .build(),
            )
            .build();
        if !trace::install(provider.tracer("mcp-bridge")) {
            warn!("traces were already on in this process; keeping the first exporter");
        }
        info!(
            endpoint = %export.endpoint,
            service = %export.service_name,
            "exporting traces over OTLP/HTTP"
        );
        Ok(Self { provider })
    }

    /// Sends the spans still queued and stops exporting.
    pub async fn shutdown(self) {
        // The flush blocks until the batch thread has sent them, over this runtime.
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = flushed {
            warn!("the last spans may not have been sent: {e}");
        }
    }
}

/// An HTTP client whose requests run on the bridge's tokio runtime, whichever thread asks:
/// the SDK's batch processor exports from a thread of its own, outside any runtime.
struct OnRuntime {
    runtime: Handle,
    client: HyperClient,
}

impl fmt::Debug for OnRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnRuntime")
    }
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_collectors_are_taken() {
        let export = TraceExport {
            endpoint: "https://collector.example:4318/v1/traces".into(),
            service_name: "mcp-bridge".into(),
        };
        let refused = Telemetry::start(&export).err().expect("refused");
        assert!(refused.to_string().contains("plain http://"), "{refused}");
    }
}
