//! One bridged server as a listener serves it: its [`Upstream`], the endpoint paths it answers
//! at (Streamable HTTP at its path, the legacy SSE transport beside it), its request counters,
//! and the tool list its status page shows. A config file runs several side by side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use super::metrics::{Metrics, ServerGauges, ServerMetrics};
use crate::child::Exit;
use crate::upstream::requests::AskError;
use crate::upstream::{ServerPerSession, ServerSettings, Start, StartError, Upstream};

/// How long the status page waits for the child's tool list.
const TOOLS_WITHIN: Duration = Duration::from_secs(5);

/// One bridged server.
pub struct Bridge {
    name: Arc<String>,
    upstream: Arc<Upstream>,
    endpoints: Endpoints,
    metrics: ServerMetrics,
    started: Instant,
}

/// Where a server answers.
#[derive(Debug)]
struct Endpoints {
    /// Streamable HTTP, without a trailing slash.
    path: String,
    path_with_slash: String,
    /// The legacy HTTP+SSE transport: `sse` and `messages` beside the endpoint.
    legacy_sse: String,
    legacy_messages: String,
}

impl Endpoints {
    fn new(path: &str) -> Self {
        let path = path.trim_end_matches('/').to_owned();
        let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
        Self {
            path_with_slash: format!("{path}/"),
            legacy_sse: format!("{parent}/sse"),
            legacy_messages: format!("{parent}/messages"),
            path,
        }
    }
}

impl Bridge {
    /// Starts a server. The returned task ends with the child's last exit when the restart
    /// policy says not to start it again.
    pub async fn start(
        settings: ServerSettings,
        grace: Duration,
        start: Start,
        metrics: &Metrics,
    ) -> Result<(Arc<Bridge>, JoinHandle<Option<Exit>>), StartError> {
        let name = Arc::new(settings.name.clone());
        let endpoints = Endpoints::new(&settings.path);
        let (upstream, supervision) = Upstream::start(settings, grace, start).await?;
        let bridge = Bridge {
            metrics: metrics.for_server(&name),
            name,
            upstream,
            endpoints,
            started: Instant::now(),
        };
        Ok((Arc::new(bridge), supervision))
    }

    pub fn name(&self) -> &Arc<String> {
        &self.name
    }

    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    pub fn settings(&self) -> &ServerSettings {
        self.upstream.settings()
    }

    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    /// How long it has served.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Its state as a metrics scrape reads it.
    pub fn gauges(&self) -> ServerGauges {
        let upstream = &self.upstream;
        let status = upstream.status();
        ServerGauges {
            server: self.name.clone(),
            in_flight: upstream.requests_in_flight(),
            sessions: upstream.sessions().count(),
            up: status.state == "ready",
            restarts: status.restarts,
            taken_up: upstream.sessions().taken_up(),
            session_servers: upstream.session_servers(),
            undelivered: upstream.undelivered().counts().collect(),
            tools: upstream.tool_counts(),
            tool_calls_refused: upstream.tool_calls_refused(),
        }
    }

    /// The shared child's tools as clients are shown them (every page, the policy applied),
    /// and how many the policy hides.
    pub async fn tools(&self) -> Result<(Value, usize), String> {
        if self.settings().server_per_session == ServerPerSession::Always {
            return Err("every session runs a server of its own, which lists them".into());
        }
        let listed = tokio::time::timeout(TOOLS_WITHIN, self.upstream.shared_tools())
            .await
            .map_err(|_| format!("the server did not list its tools within {TOOLS_WITHIN:?}"))?;
        let (tools, hidden) = listed.map_err(|e| match e {
            AskError::Refused(error) => format!("tools/list answered {error}"),
            e => e.to_string(),
        })?;
        Ok((Value::Array(tools), hidden))
    }

    /// Whether `path` is one of this server's endpoints.
    pub fn serves(&self, path: &str) -> bool {
        self.is_endpoint(path)
            || path == self.endpoints.legacy_sse
            || path == self.endpoints.legacy_messages
    }

    /// Whether `path` is its Streamable HTTP endpoint.
    pub fn is_endpoint(&self, path: &str) -> bool {
        path == self.endpoints.path || path == self.endpoints.path_with_slash
    }

    pub fn endpoint_path(&self) -> &str {
        &self.endpoints.path
    }

    /// Where the legacy HTTP+SSE transport opens its stream: `sse` beside the endpoint.
    pub fn legacy_sse_path(&self) -> &str {
        &self.endpoints.legacy_sse
    }

    /// Where the legacy HTTP+SSE transport posts its messages.
    pub fn legacy_messages_path(&self) -> &str {
        &self.endpoints.legacy_messages
    }
}
