//! The servers one listener serves: one at `--path` for a single command, or one per entry of
//! the config file at `/servers/NAME/mcp`. Finds the server a request is for, reports their
//! health, and reloads the config file on SIGHUP (added servers start, removed ones drain and
//! stop, changed ones restart; the others are not touched), reopening the audit log then.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::audit::{AuditLog, AuditLogError, AuditSettings};
use super::bridge::Bridge;
use super::config::{self, ConfigError};
use super::metrics::Metrics;
use super::tenant_book::{TenantBookCell, TenantsFileError};
use crate::child::{Exit, SpawnError};
use crate::sync::ReadWrite;
use crate::upstream::{ServerSettings, Start, StartError};

/// Why the servers of a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The command cannot run at all (said as it is: the user's typo, not a crash).
    #[error(transparent)]
    Spawn(SpawnError),
    #[error("the MCP server did not start: {0}")]
    Start(StartError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tenants(#[from] TenantsFileError),
    #[error(transparent)]
    AuditLog(#[from] AuditLogError),
}

impl From<StartError> for GatewayError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Spawn(e) => GatewayError::Spawn(e),
            e => GatewayError::Start(e),
        }
    }
}

/// Where a config file's servers come from, to read it again.
#[derive(Debug)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub defaults: ServerSettings,
}

/// Every server of one listener.
pub struct Gateway {
    servers: RwLock<Arc<Vec<Arc<Bridge>>>>,
    metrics: Arc<Metrics>,
    /// How long a child gets at each step of stopping it.
    grace: Duration,
    source: Option<ConfigSource>,
    /// The `--tenants` file's tenants.
    book: Option<Arc<TenantBookCell>>,
    /// Every server's tool calls, one line each.
    audit: Option<Arc<AuditLog>>,
}

/// How long a stop waits for the audit log's queued lines to be written.
const AUDIT_FLUSH_WITHIN: Duration = Duration::from_secs(2);

impl Gateway {
    /// Starts the servers of a run: the one of a single command (waiting for its handshake,
    /// whose failure is the caller's), or every server of a config file (in the background,
    /// so that one that fails to start does not stop the rest). For a single command, the
    /// task that ends with its child's last exit. The audit log, if asked for, takes the tool
    /// calls of every server.
    pub async fn start(
        settings: ServerSettings,
        config_file: Option<PathBuf>,
        tenants_file: Option<PathBuf>,
        audit: Option<&AuditSettings>,
        grace: Duration,
    ) -> Result<(Gateway, Option<JoinHandle<Option<Exit>>>), GatewayError> {
        let metrics = Arc::new(Metrics::new());
        let book = match &tenants_file {
            Some(path) => Some(Arc::new(TenantBookCell::load(path)?)),
            None => None,
        };
        let audit = match audit {
            Some(audit) => Some(AuditLog::open(
                audit,
                settings.session_secret.as_ref(),
                metrics.audit_lines_dropped(),
            )?),
            None => None,
        };
        let Some(path) = config_file else {
            let (bridge, supervision) = Bridge::start(
                settings,
                grace,
                Start::Wait,
                &metrics,
                book.as_ref(),
                audit.as_ref(),
            )
            .await?;
            let gateway = Gateway {
                servers: RwLock::new(Arc::new(vec![bridge])),
                metrics,
                grace,
                source: None,
                book,
                audit,
            };
            return Ok((gateway, Some(supervision)));
        };
        let wanted = config::load(&path, &settings)?;
        let mut servers = Vec::new();
        for settings in wanted {
            let (bridge, _supervision) = Bridge::start(
                settings,
                grace,
                Start::Background,
                &metrics,
                book.as_ref(),
                audit.as_ref(),
            )
            .await?;
            servers.push(bridge);
        }
        let source = ConfigSource {
            path,
            defaults: settings,
        };
        let gateway = Gateway {
            servers: RwLock::new(Arc::new(servers)),
            metrics,
            grace,
            source: Some(source),
            book,
            audit,
        };
        Ok((gateway, None))
    }

    /// Whether SIGHUP has something to read again or reopen: a config file, a tenants file,
    /// the audit log.
    pub fn reloads(&self) -> bool {
        self.source.is_some() || self.book.is_some() || self.audit.is_some()
    }

    /// The `--tenants` file's tenants, if there is one.
    pub fn tenant_book(&self) -> Option<&Arc<TenantBookCell>> {
        self.book.as_ref()
    }

    /// The metrics in the Prometheus text format, every server's state read in now.
    pub fn render_metrics(&self) -> String {
        let gauges: Vec<_> = self
            .servers()
            .iter()
            .map(|bridge| bridge.gauges())
            .collect();
        self.metrics.render(&gauges)
    }

    /// The servers now (a snapshot: a reload swaps in a new list).
    pub fn servers(&self) -> Arc<Vec<Arc<Bridge>>> {
        self.servers.reading().clone()
    }

    /// The server whose endpoints include `path`.
    pub fn find(&self, path: &str) -> Option<Arc<Bridge>> {
        let servers = self.servers.reading();
        servers.iter().find(|bridge| bridge.serves(path)).cloned()
    }

    /// Whether every server's child has completed its handshake, and each one's state.
    ///
    /// Why a server is not ready can quote its stderr (a database URL with its password, a
    /// key): `with_reasons` only for a caller that presented the token.
    pub fn readiness(&self, with_reasons: bool) -> (bool, Value) {
        let servers = self.servers();
        let mut ready = true;
        let mut states = serde_json::Map::new();
        for bridge in servers.iter() {
            let status = bridge.status();
            // A sleeping server starts on the request that needs it.
            ready &= matches!(status.state, "ready" | "sleeping");
            let mut state = json!({
                "state": status.state,
                "restarts": status.restarts,
                "endpoint": bridge.endpoint_path(),
            });
            if let Some(reason) = status.reason.filter(|_| with_reasons) {
                state["reason"] = Value::from(reason);
            }
            states.insert(bridge.name().to_string(), state);
        }
        (ready, json!({"ready": ready, "servers": states}))
    }

    /// Reopens the audit log (after a rotation), reads the config file again and applies the
    /// difference. A file that no longer parses changes nothing.
    pub async fn reload(&self) {
        if let Some(audit) = &self.audit {
            audit.reopen();
        }
        if let Some(book) = &self.book {
            match book.reload() {
                Ok(()) => {
                    for bridge in self.servers().iter() {
                        if let Some(tenants) = bridge.tenants() {
                            tenants.tenants_file_changed();
                        }
                    }
                }
                Err(e) => error!("not reloading the tenants file: {e}"),
            }
        }
        let Some(source) = &self.source else {
            return;
        };
        let wanted = match config::load(&source.path, &source.defaults) {
            Ok(wanted) => wanted,
            Err(e) => {
                error!("not reloading: {e}");
                return;
            }
        };
        let current = self.servers();
        let mut next = Vec::new();
        let mut retired = Vec::new();
        for settings in &wanted {
            match current.iter().find(|b| b.settings().name == settings.name) {
                Some(bridge) if bridge.settings() == settings => next.push(bridge.clone()),
                existing => {
                    match Bridge::start(
                        settings.clone(),
                        self.grace,
                        Start::Background,
                        &self.metrics,
                        self.book.as_ref(),
                        self.audit.as_ref(),
                    )
                    .await
                    {
                        Ok((bridge, _supervision)) => {
                            info!(server = %settings.name, "{} server", if existing.is_some() { "restarting a changed" } else { "starting a new" });
                            next.push(bridge);
                            retired.extend(existing.cloned());
                        }
                        Err(e) => {
                            warn!(server = %settings.name, "cannot start: {e}");
                            next.extend(existing.cloned());
                        }
                    }
                }
            }
        }
        for bridge in current.iter() {
            if !wanted.iter().any(|s| s.name == bridge.settings().name) {
                info!(server = %bridge.name(), "stopping a removed server");
                retired.push(bridge.clone());
            }
        }
        *self.servers.writing() = Arc::new(next);
        for bridge in retired {
            tokio::spawn(async move { bridge.retire().await });
        }
    }

    /// The bridge is stopping: every server ends its open event streams.
    pub fn begin_drain(&self) {
        for bridge in self.servers().iter() {
            bridge.begin_drain();
        }
    }

    /// Stops every server side by side, then writes out the audit log's last lines.
    pub async fn stop(&self) {
        let mut stopping = tokio::task::JoinSet::new();
        for bridge in self.servers().iter() {
            let bridge = bridge.clone();
            stopping.spawn(async move { bridge.stop().await });
        }
        stopping.join_all().await;
        if let Some(audit) = &self.audit {
            audit.flush(AUDIT_FLUSH_WITHIN).await;
        }
    }
}
