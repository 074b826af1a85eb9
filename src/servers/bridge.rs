//! One bridged server as a listener serves it: its [`Upstream`] (or, for a server run per
//! tenant, the pool of its tenants' upstreams), the endpoint paths it answers at (Streamable
//! HTTP at its path, the legacy SSE transport beside it), its request counters, and the tool
//! list its status page shows. A config file runs several side by side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use http::HeaderMap;

use super::audit::AuditLog;
use super::metrics::{Metrics, ServerGauges, ServerMetrics};
use super::tenant_book::TenantBookCell;
use super::tenants::{Lease, TenantRefusal, Tenants};
use super::tool_calls::ToolCallReport;
use crate::child::Exit;
use crate::upstream::requests::AskError;
use crate::upstream::supervisor::Status;
use crate::upstream::{ServerPerSession, ServerSettings, Start, StartError, Upstream};

/// How long the status page waits for the child's tool list.
const TOOLS_WITHIN: Duration = Duration::from_secs(5);

/// One bridged server.
pub struct Bridge {
    name: Arc<String>,
    upstreams: Upstreams,
    endpoints: Endpoints,
    metrics: ServerMetrics,
    started: Instant,
}

/// Who a server's requests go to.
enum Upstreams {
    /// One upstream for every client.
    One(Arc<Upstream>),
    /// The upstream of the request's tenant.
    PerTenant(Arc<Tenants>),
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
    /// Starts a server, its tool calls counted in `metrics` and written to `audit`. The
    /// returned task ends with the child's last exit when the restart policy says not to start
    /// it again.
    ///
    /// A server run per tenant starts nothing until a tenant asks, and its task never ends.
    pub async fn start(
        settings: ServerSettings,
        grace: Duration,
        start: Start,
        metrics: &Metrics,
        book: Option<&Arc<TenantBookCell>>,
        audit: Option<&Arc<AuditLog>>,
    ) -> Result<(Arc<Bridge>, JoinHandle<Option<Exit>>), StartError> {
        let name = Arc::new(settings.name.clone());
        let endpoints = Endpoints::new(&settings.path);
        let tool_calls =
            ToolCallReport::new(name.clone(), metrics.tool_calls_of(&name), audit.cloned());
        let (upstreams, supervision) = if settings.tenancy.is_some() {
            let tenants = Tenants::new(settings, book.cloned(), grace, tool_calls);
            let forever = tokio::spawn(std::future::pending::<Option<Exit>>());
            (Upstreams::PerTenant(tenants), forever)
        } else {
            let (upstream, supervision) =
                Upstream::start(settings, grace, start, tool_calls).await?;
            (Upstreams::One(upstream), supervision)
        };
        let bridge = Bridge {
            metrics: metrics.for_server(&name),
            name,
            upstreams,
            endpoints,
            started: Instant::now(),
        };
        Ok((Arc::new(bridge), supervision))
    }

    pub fn name(&self) -> &Arc<String> {
        &self.name
    }

    /// The upstream a request with these headers goes to: the server's, or its tenant's.
    pub async fn upstream_for(&self, headers: &HeaderMap) -> Result<Lease, TenantRefusal> {
        match &self.upstreams {
            Upstreams::One(upstream) => Ok(Lease::of_server(upstream.clone())),
            Upstreams::PerTenant(tenants) => tenants.upstream_for(headers).await,
        }
    }

    /// The upstream a request with these headers goes to if it runs now (nothing is started):
    /// for requests about a session, which only a running upstream can have.
    pub fn running_upstream_for(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Lease>, TenantRefusal> {
        match &self.upstreams {
            Upstreams::One(upstream) => Ok(Some(Lease::of_server(upstream.clone()))),
            Upstreams::PerTenant(tenants) => tenants.running_upstream_for(headers),
        }
    }

    /// Every upstream running now.
    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        match &self.upstreams {
            Upstreams::One(upstream) => vec![upstream.clone()],
            Upstreams::PerTenant(tenants) => tenants
                .running()
                .into_iter()
                .map(|t| t.upstream.clone())
                .collect(),
        }
    }

    /// The tenants, for a server run per tenant.
    pub fn tenants(&self) -> Option<&Arc<Tenants>> {
        match &self.upstreams {
            Upstreams::One(_) => None,
            Upstreams::PerTenant(tenants) => Some(tenants),
        }
    }

    pub fn settings(&self) -> &ServerSettings {
        match &self.upstreams {
            Upstreams::One(upstream) => upstream.settings(),
            Upstreams::PerTenant(tenants) => tenants.settings(),
        }
    }

    /// What its server is doing; a server run per tenant is ready for its tenants (each one's
    /// starts on its first request).
    pub fn status(&self) -> Status {
        match &self.upstreams {
            Upstreams::One(upstream) => upstream.status(),
            Upstreams::PerTenant(tenants) => Status {
                state: "ready",
                reason: None,
                restarts: tenants
                    .running()
                    .iter()
                    .map(|tenant| tenant.upstream.status().restarts)
                    .sum(),
            },
        }
    }

    /// The bridge is stopping: every upstream ends its open event streams.
    pub fn begin_drain(&self) {
        for upstream in self.upstreams() {
            upstream.begin_drain();
        }
    }

    /// Stops every upstream.
    pub async fn stop(&self) {
        match &self.upstreams {
            Upstreams::One(upstream) => upstream.stop().await,
            Upstreams::PerTenant(tenants) => tenants.stop_all().await,
        }
    }

    /// Lets requests in flight finish, then stops: a server removed from the config file.
    pub async fn retire(&self) {
        match &self.upstreams {
            Upstreams::One(upstream) => upstream.retire().await,
            Upstreams::PerTenant(tenants) => tenants.stop_all().await,
        }
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
        let status = self.status();
        let mut gauges = ServerGauges {
            server: self.name.clone(),
            up: status.state == "ready",
            sleeping: status.state == "sleeping",
            restarts: status.restarts,
            ..ServerGauges::default()
        };
        for upstream in self.upstreams() {
            gauges.in_flight += upstream.requests_in_flight();
            gauges.sessions += upstream.sessions().count();
            gauges.taken_up += upstream.sessions().taken_up();
            gauges.session_servers += upstream.session_servers();
            gauges.tool_calls_refused += upstream.tool_calls_refused();
            for (kind, count) in upstream.undelivered().counts() {
                match gauges
                    .undelivered
                    .iter_mut()
                    .find(|(known, _)| *known == kind)
                {
                    Some((_, total)) => *total += count,
                    None => gauges.undelivered.push((kind, count)),
                }
            }
        }
        match &self.upstreams {
            Upstreams::One(upstream) => gauges.tools = upstream.tool_counts(),
            Upstreams::PerTenant(tenants) => {
                gauges.tenants = Some(tenants.running().len());
                gauges.tenants_evicted = tenants.evicted();
            }
        }
        gauges
    }

    /// The shared child's tools as clients are shown them (every page, the policy applied),
    /// and how many the policy hides.
    pub async fn tools(&self) -> Result<(Value, usize), String> {
        let upstream = match &self.upstreams {
            Upstreams::PerTenant(_) => {
                return Err("each tenant runs a server of its own, which lists them".into());
            }
            Upstreams::One(upstream) => upstream,
        };
        if self.settings().server_per_session == ServerPerSession::Always {
            return Err("every session runs a server of its own, which lists them".into());
        }
        let listed = tokio::time::timeout(TOOLS_WITHIN, upstream.shared_tools())
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
