//! Prometheus metrics at `GET /metrics`: requests by server, JSON-RPC method and status, their
//! latency, each server's requests in flight, open sessions (and those taken up from other
//! replicas), restarts and whether its child is up, its `tools/call`s by tool and outcome with
//! their duration, and the audit log's dropped lines. Counters are bumped as requests end; the
//! rest is read from the servers when scraped.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::sync::ReadWrite;
use crate::upstream::tool_calls::{Outcome, ToolCounter};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: Arc<String>,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    server: Arc<String>,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    server: Arc<String>,
    policy: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    server: Arc<String>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    server: Arc<String>,
    tool: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcomeLabels {
    server: Arc<String>,
    tool: Arc<String>,
    outcome: &'static str,
}

type Latency = Family<MethodLabels, LatencyHistogram>;
type ToolCalls = Family<ToolOutcomeLabels, Counter>;
type ToolLatency = Family<ToolLabels, LatencyHistogram>;

/// Upper bounds of the latency buckets: 100 µs to about 18 s, by factors of 3.
const BOUNDS: [f64; 12] = [
    0.0001, 0.0003, 0.0009, 0.0027, 0.0081, 0.0243, 0.0729, 0.2187, 0.6561, 1.9683, 5.9049, 17.7147,
];

/// A latency histogram counted with atomics: the crate's own takes a lock per observation,
/// which every request of every worker thread would queue on.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<LatencyCounts>,
}

#[derive(Debug, Default)]
struct LatencyCounts {
    /// Per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BOUNDS.len());
        let counts = &self.inner;
        counts.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        counts.count.fetch_add(1, Ordering::Relaxed);
        counts
            .sum_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = &self.inner;
        let buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(counts.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let sum = counts.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(
            sum,
            counts.count.load(Ordering::Relaxed),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    in_flight: Family<ServerLabels, Gauge>,
    sessions: Family<ServerLabels, Gauge>,
    restarts: Family<ServerLabels, Counter>,
    up: Family<ServerLabels, Gauge>,
    sleeping: Family<ServerLabels, Gauge>,
    taken_up: Family<ServerLabels, Counter>,
    session_servers: Family<ServerLabels, Gauge>,
    undelivered: Family<KindLabels, Counter>,
    tools: Family<PolicyLabels, Gauge>,
    tool_calls_refused: Family<ServerLabels, Counter>,
    tenants: Family<ServerLabels, Gauge>,
    tenants_evicted: Family<ServerLabels, Counter>,
    tool_calls: ToolCalls,
    tool_call_duration: ToolLatency,
    audit_lines_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp_bridge");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Latency::default();
        let in_flight = Family::<ServerLabels, Gauge>::default();
        let sessions = Family::<ServerLabels, Gauge>::default();
        let restarts = Family::<ServerLabels, Counter>::default();
        let up = Family::<ServerLabels, Gauge>::default();
        let sleeping = Family::<ServerLabels, Gauge>::default();
        let taken_up = Family::<ServerLabels, Counter>::default();
        let session_servers = Family::<ServerLabels, Gauge>::default();
        let undelivered = Family::<KindLabels, Counter>::default();
        let tools = Family::<PolicyLabels, Gauge>::default();
        let tool_calls_refused = Family::<ServerLabels, Counter>::default();
        let tenants = Family::<ServerLabels, Gauge>::default();
        let tenants_evicted = Family::<ServerLabels, Counter>::default();
        let tool_calls = ToolCalls::default();
        let tool_call_duration = ToolLatency::default();
        let audit_lines_dropped = Counter::default();
        registry.register(
            "requests",
            "HTTP requests by server, JSON-RPC method and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to the response headers (an SSE stream may run on), by server and JSON-RPC method",
            latency.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests waiting on the server's child",
            in_flight.clone(),
        );
        registry.register("sessions", "Open sessions", sessions.clone());
        registry.register(
            "child_restarts",
            "Restarts of the server's child",
            restarts.clone(),
        );
        registry.register(
            "child_up",
            "1 when the server's child has completed its handshake and serves",
            up.clone(),
        );
        registry.register(
            "child_sleeping",
            "1 when the server sleeps: no child runs until a request needs one (lazy, idleTimeout)",
            sleeping.clone(),
        );
        registry.register(
            "sessions_taken_up",
            "Sessions signed by another replica (or before a restart) that came here",
            taken_up.clone(),
        );
        registry.register(
            "session_servers",
            "Server processes of sessions' own running (--server-per-session)",
            session_servers.clone(),
        );
        registry.register(
            "undelivered",
            "Messages of the server's that reached no client because nothing ties them to one \
             (its requests on a shared server are answered by the bridge, its logs dropped)",
            undelivered.clone(),
        );
        registry.register(
            "tools",
            "The server's tools by what the tool policy does with them (visible, hidden), as \
             last listed",
            tools.clone(),
        );
        registry.register(
            "tool_calls_refused",
            "tools/call requests refused because the tool policy hides the tool",
            tool_calls_refused.clone(),
        );
        registry.register(
            "tenants",
            "Tenants whose server runs, for a server run per tenant",
            tenants.clone(),
        );
        registry.register(
            "tenants_evicted",
            "Idle tenants stopped to make room for another (--max-tenants)",
            tenants_evicted.clone(),
        );
        registry.register(
            "tool_calls",
            "tools/call requests by server, tool (as the server knows it; `other` for a name it \
             did not list) and outcome (ok, error, tool_error, timeout, cancelled)",
            tool_calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Time from a tools/call's start to its end (its answer, an error in its place, the \
             timeout or its cancellation), by server and tool",
            tool_call_duration.clone(),
        );
        registry.register(
            "audit_lines_dropped",
            "Audit log lines dropped because its writer fell behind or could not write \
             (--audit-log)",
            audit_lines_dropped.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            in_flight,
            sessions,
            restarts,
            up,
            sleeping,
            taken_up,
            session_servers,
            undelivered,
            tools,
            tool_calls_refused,
            tenants,
            tenants_evicted,
            tool_calls,
            tool_call_duration,
            audit_lines_dropped,
        }
    }

    /// One server's tool-call counters (shared by its tenants' servers).
    pub fn tool_calls_of(&self, server: &Arc<String>) -> Arc<ToolCallMetrics> {
        Arc::new(ToolCallMetrics::new(
            server.clone(),
            self.tool_calls.clone(),
            self.tool_call_duration.clone(),
        ))
    }

    /// The counter of audit log lines dropped.
    pub fn audit_lines_dropped(&self) -> Counter {
        self.audit_lines_dropped.clone()
    }

    /// One server's handles, made once so that counting a request costs no label lookup.
    pub fn for_server(&self, server: &Arc<String>) -> ServerMetrics {
        let per_method = |method: &'static str| {
            let ok = self.requests.get_or_create_owned(&RequestLabels {
                server: server.clone(),
                method,
                status: 200,
            });
            let latency = self.latency.get_or_create_owned(&MethodLabels {
                server: server.clone(),
                method,
            });
            (ok, latency)
        };
        ServerMetrics {
            server: server.clone(),
            requests: self.requests.clone(),
            methods: METHODS.iter().map(|method| per_method(method)).collect(),
        }
    }

    /// The text exposition, with the servers' current state read in first.
    pub fn render(&self, servers: &[ServerGauges]) -> String {
        for server in servers {
            let labels = ServerLabels {
                server: server.server.clone(),
            };
            self.in_flight
                .get_or_create(&labels)
                .set(server.in_flight as i64);
            self.sessions
                .get_or_create(&labels)
                .set(server.sessions as i64);
            self.up.get_or_create(&labels).set(i64::from(server.up));
            self.sleeping
                .get_or_create(&labels)
                .set(i64::from(server.sleeping));
            raise_to(&self.restarts.get_or_create(&labels), server.restarts);
            raise_to(&self.taken_up.get_or_create(&labels), server.taken_up);
            self.session_servers
                .get_or_create(&labels)
                .set(server.session_servers as i64);
            for (kind, count) in &server.undelivered {
                let counter = self.undelivered.get_or_create(&KindLabels {
                    server: server.server.clone(),
                    kind,
                });
                raise_to(&counter, *count);
            }
            if let Some((visible, hidden)) = server.tools {
                for (policy, count) in [("visible", visible), ("hidden", hidden)] {
                    self.tools
                        .get_or_create(&PolicyLabels {
                            server: server.server.clone(),
                            policy,
                        })
                        .set(count as i64);
                }
            }
            raise_to(
                &self.tool_calls_refused.get_or_create(&labels),
                server.tool_calls_refused,
            );
            if let Some(tenants) = server.tenants {
                self.tenants.get_or_create(&labels).set(tenants as i64);
                raise_to(
                    &self.tenants_evicted.get_or_create(&labels),
                    server.tenants_evicted,
                );
            }
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// A counter kept by the server, copied in: raised to its count (counters never go down).
fn raise_to(counter: &Counter, count: u64) {
    counter.inc_by(count.saturating_sub(counter.get()));
}

/// One server's state as a scrape reads it.
#[derive(Debug, Clone, Default)]
pub struct ServerGauges {
    pub server: Arc<String>,
    pub in_flight: usize,
    pub sessions: usize,
    /// Its child has completed its handshake and serves.
    pub up: bool,
    /// No child runs until a request needs one.
    pub sleeping: bool,
    pub restarts: u64,
    /// Sessions signed elsewhere taken up here so far.
    pub taken_up: u64,
    /// Children of sessions' own running.
    pub session_servers: usize,
    /// What its children said that reached no client, by kind.
    pub undelivered: Vec<(&'static str, u64)>,
    /// Its tools the policy shows and hides, if they were listed.
    pub tools: Option<(usize, usize)>,
    pub tool_calls_refused: u64,
    /// For a server run per tenant: the tenants whose server runs.
    pub tenants: Option<usize>,
    /// Tenants stopped to make room for another.
    pub tenants_evicted: u64,
}

/// Counts the requests of one server.
#[derive(Debug)]
pub struct ServerMetrics {
    server: Arc<String>,
    requests: Family<RequestLabels, Counter>,
    /// For each of [`METHODS`]: its `200` counter and its latency histogram.
    methods: Vec<(Counter, LatencyHistogram)>,
}

impl ServerMetrics {
    /// Requests counted so far, whatever their method and status.
    pub fn requests(&self) -> u64 {
        self.methods
            .iter()
            .map(|(_, latency)| latency.count())
            .sum()
    }

    /// Counts one finished request.
    pub fn observe(&self, method: Option<&str>, status: u16, took: Duration) {
        let index = method_index(method);
        let (ok, latency) = &self.methods[index];
        latency.observe(took);
        if status == 200 {
            ok.inc();
        } else {
            self.requests
                .get_or_create(&RequestLabels {
                    server: self.server.clone(),
                    method: METHODS[index],
                    status,
                })
                .inc();
        }
    }
}

/// Tools one server's calls are counted under, at most: past it, newly listed names are `other`.
pub const MAX_TOOL_LABELS: usize = 1000;
/// Longer names are `other` (MCP asks for at most 128 characters).
const MAX_TOOL_NAME: usize = 128;
/// The tool label of calls of a tool no child of the server listed.
const OTHER_TOOL: &str = "other";

/// Counts one server's `tools/call`s by tool: under its name when one of the server's children
/// listed it (so that clients calling made-up names cannot grow the label set), up to
/// [`MAX_TOOL_LABELS`] names (so that neither can a child listing a million tools), else under
/// `other`. Every call reads the map of names; only a listing bringing a new one writes it.
#[derive(Debug)]
pub struct ToolCallMetrics {
    server: Arc<String>,
    calls: ToolCalls,
    durations: ToolLatency,
    listed: RwLock<HashMap<Box<str>, Arc<ToolSeries>>>,
    other: Arc<ToolSeries>,
}

impl ToolCallMetrics {
    fn new(server: Arc<String>, calls: ToolCalls, durations: ToolLatency) -> Self {
        let other = ToolSeries::new(&server, OTHER_TOOL, &calls, &durations);
        Self {
            listed: RwLock::default(),
            other,
            server,
            calls,
            durations,
        }
    }

    /// A child of the server listed these tools.
    pub fn listed<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let names: Vec<&str> = {
            let listed = self.listed.reading();
            if listed.len() >= MAX_TOOL_LABELS {
                return;
            }
            names
                .filter(|name| name.len() <= MAX_TOOL_NAME && !listed.contains_key(*name))
                .collect()
        };
        if names.is_empty() {
            return;
        }
        let mut listed = self.listed.writing();
        for name in names {
            if listed.len() >= MAX_TOOL_LABELS {
                break;
            }
            if !listed.contains_key(name) {
                let series = ToolSeries::new(&self.server, name, &self.calls, &self.durations);
                listed.insert(name.into(), series);
            }
        }
    }

    /// What a call of `tool` is counted under: its own series if it was listed, else `other`.
    pub fn series(&self, tool: Option<&str>) -> Arc<ToolSeries> {
        tool.and_then(|tool| self.listed.reading().get(tool).cloned())
            .unwrap_or_else(|| self.other.clone())
    }
}

/// One tool's series, each created at its first use: a tool listed but never called, or never
/// failing, adds no lines to a scrape.
#[derive(Debug)]
pub struct ToolSeries {
    labels: ToolLabels,
    calls: ToolCalls,
    durations: ToolLatency,
    /// By [`Outcome::index`].
    outcomes: [OnceLock<Counter>; Outcome::ALL.len()],
    duration: OnceLock<LatencyHistogram>,
}

impl ToolSeries {
    fn new(
        server: &Arc<String>,
        tool: &str,
        calls: &ToolCalls,
        durations: &ToolLatency,
    ) -> Arc<Self> {
        Arc::new(Self {
            labels: ToolLabels {
                server: server.clone(),
                tool: Arc::new(tool.to_owned()),
            },
            calls: calls.clone(),
            durations: durations.clone(),
            outcomes: Default::default(),
            duration: OnceLock::new(),
        })
    }
}

impl ToolCounter for ToolSeries {
    fn count(&self, outcome: Outcome, took: Duration) {
        self.outcomes[outcome.index()]
            .get_or_init(|| {
                self.calls.get_or_create_owned(&ToolOutcomeLabels {
                    server: self.labels.server.clone(),
                    tool: self.labels.tool.clone(),
                    outcome: outcome.name(),
                })
            })
            .inc();
        self.duration
            .get_or_init(|| self.durations.get_or_create_owned(&self.labels))
            .observe(took);
    }
}

/// Method labels: the MCP methods by name; anything else is folded into `other` so that clients
/// cannot grow the label set without bound; `-` for requests that are not JSON-RPC.
const METHODS: [&str; 24] = [
    "-",
    "other",
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "batch",
    "tasks/get",
    "tasks/result",
];

fn method_index(method: Option<&str>) -> usize {
    match method {
        None => 0,
        Some(method) => METHODS[2..]
            .iter()
            .position(|known| *known == method)
            .map_or(1, |i| i + 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_mcp_fold_into_other() {
        assert_eq!(METHODS[method_index(Some("tools/call"))], "tools/call");
        assert_eq!(METHODS[method_index(Some("made/up/by/a/client"))], "other");
        assert_eq!(METHODS[method_index(None)], "-");
    }

    #[test]
    fn renders_requests_in_the_text_format() {
        let metrics = Metrics::new();
        let server = metrics.for_server(&Arc::new("time".to_owned()));
        server.observe(Some("tools/call"), 200, Duration::from_millis(2));
        server.observe(Some("tools/call"), 404, Duration::from_millis(2));
        let text = metrics.render(&[]);
        assert!(
            text.contains(
                r#"mcp_bridge_requests_total{server="time",method="tools/call",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"mcp_bridge_requests_total{server="time",method="tools/call",status="404"} 1"#
        ));
        assert!(text.contains("mcp_bridge_request_duration_seconds_bucket"));
    }

    #[test]
    fn renders_each_servers_gauges() {
        let metrics = Metrics::new();
        let mut time = ServerGauges {
            server: Arc::new("time".to_owned()),
            in_flight: 3,
            sessions: 7,
            up: true,
            sleeping: false,
            restarts: 2,
            taken_up: 5,
            session_servers: 1,
            undelivered: vec![("sampling/createMessage", 4)],
            tools: Some((12, 3)),
            tool_calls_refused: 2,
            tenants: Some(4),
            tenants_evicted: 1,
        };
        let files = ServerGauges {
            server: Arc::new("files".to_owned()),
            ..ServerGauges::default()
        };
        let text = metrics.render(&[time.clone(), files.clone()]);
        for line in [
            r#"mcp_bridge_requests_in_flight{server="time"} 3"#,
            r#"mcp_bridge_sessions{server="time"} 7"#,
            r#"mcp_bridge_child_up{server="time"} 1"#,
            r#"mcp_bridge_child_restarts_total{server="time"} 2"#,
            r#"mcp_bridge_sessions_taken_up_total{server="time"} 5"#,
            r#"mcp_bridge_session_servers{server="time"} 1"#,
            r#"mcp_bridge_undelivered_total{server="time",kind="sampling/createMessage"} 4"#,
            r#"mcp_bridge_tools{server="time",policy="visible"} 12"#,
            r#"mcp_bridge_tools{server="time",policy="hidden"} 3"#,
            r#"mcp_bridge_tool_calls_refused_total{server="time"} 2"#,
            r#"mcp_bridge_tenants{server="time"} 4"#,
            r#"mcp_bridge_tenants_evicted_total{server="time"} 1"#,
            r#"mcp_bridge_child_up{server="files"} 0"#,
            r#"mcp_bridge_child_sleeping{server="time"} 0"#,
            r#"mcp_bridge_sessions{server="files"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        // Counters kept by the server are copied in, never counted twice; gauges follow it.
        time.restarts = 3;
        time.sessions = 1;
        time.up = false;
        let text = metrics.render(&[time, files]);
        for line in [
            r#"mcp_bridge_child_restarts_total{server="time"} 3"#,
            r#"mcp_bridge_sessions{server="time"} 1"#,
            r#"mcp_bridge_child_up{server="time"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn tool_calls_are_counted_under_listed_names_only_and_at_most_so_many() {
        let metrics = Metrics::new();
        let tools = metrics.tool_calls_of(&Arc::new("time".to_owned()));
        tools.listed(["echo", "add"].into_iter());
        let took = Duration::from_millis(3);
        tools.series(Some("echo")).count(Outcome::Ok, took);
        tools.series(Some("echo")).count(Outcome::ToolError, took);
        tools
            .series(Some("made_up_by_a_client"))
            .count(Outcome::Error, took);
        tools.series(None).count(Outcome::Cancelled, took);
        let text = metrics.render(&[]);
        for line in [
            r#"mcp_bridge_tool_calls_total{server="time",tool="echo",outcome="ok"} 1"#,
            r#"mcp_bridge_tool_calls_total{server="time",tool="echo",outcome="tool_error"} 1"#,
            r#"mcp_bridge_tool_calls_total{server="time",tool="other",outcome="error"} 1"#,
            r#"mcp_bridge_tool_calls_total{server="time",tool="other",outcome="cancelled"} 1"#,
            r#"mcp_bridge_tool_call_duration_seconds_count{server="time",tool="echo"} 2"#,
            r#"mcp_bridge_tool_call_duration_seconds_count{server="time",tool="other"} 2"#,
            "mcp_bridge_audit_lines_dropped_total 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        // Listed but never called, or never ending so: no series.
        assert!(!text.contains(r#"tool="add""#), "{text}");
        assert!(!text.contains(r#"tool="echo",outcome="timeout""#), "{text}");

        // A child listing a million tools (or one absurdly long name) adds only so many.
        let many: Vec<String> = (0..MAX_TOOL_LABELS * 3).map(|i| format!("t{i}")).collect();
        tools.listed(many.iter().map(String::as_str));
        let long = "x".repeat(MAX_TOOL_NAME + 1);
        tools.listed(std::iter::once(long.as_str()));
        assert_eq!(tools.listed.reading().len(), MAX_TOOL_LABELS);
        assert!(tools.listed.reading().contains_key("echo"));
        let last = format!("t{}", MAX_TOOL_LABELS * 3 - 1);
        assert!(Arc::ptr_eq(&tools.series(Some(&last)), &tools.other));
        assert!(Arc::ptr_eq(&tools.series(Some(&long)), &tools.other));
        assert!(!Arc::ptr_eq(&tools.series(Some("t0")), &tools.other));
    }
}
