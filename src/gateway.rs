//! The servers one listener serves: one at `--path` for a single command, or one per entry of
//! the config file at `/servers/NAME/mcp`. Finds the server a request is for, reports their
//! health, and reloads the config file on SIGHUP (added servers start, removed ones drain and
//! stop, changed ones restart; the others are not touched).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::bridge::{Bridge, Start};
use crate::config::{self, ServerSettings};
use crate::http::access::AccessPolicy;
use crate::http::connections::Connections;
use crate::http::request_body::BodyLimits;
use crate::metrics::Metrics;

/// Where a config file's servers come from, to read it again.
#[derive(Debug)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub defaults: ServerSettings,
}

pub struct Gateway {
    servers: RwLock<Arc<Vec<Arc<Bridge>>>>,
    /// The listener's open connections.
    pub connections: Arc<Connections>,
    pub access: AccessPolicy,
    pub metrics: Arc<Metrics>,
    pub json_logs: bool,
    pub bodies: Arc<BodyLimits>,
    pub grace: Duration,
    source: Option<ConfigSource>,
}

impl Gateway {
    pub fn new(
        servers: Vec<Arc<Bridge>>,
        metrics: Arc<Metrics>,
        bodies: Arc<BodyLimits>,
        config: &crate::Config,
        source: Option<ConfigSource>,
    ) -> Self {
        Self {
            servers: RwLock::new(Arc::new(servers)),
            connections: Connections::new(config.max_connections, config.header_timeout),
            access: config.access.clone(),
            metrics,
            json_logs: config.json_logs,
            bodies,
            grace: config.shutdown_timeout,
            source,
        }
    }

    /// The servers now (a snapshot: a reload swaps in a new list).
    pub fn servers(&self) -> Arc<Vec<Arc<Bridge>>> {
        self.servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The server whose endpoints include `path`.
    pub fn find(&self, path: &str) -> Option<Arc<Bridge>> {
        let servers = self.servers.read().unwrap_or_else(|e| e.into_inner());
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
            let status = bridge.supervisor.status();
            ready &= status.state == "ready";
            let mut state = json!({
                "state": status.state,
                "restarts": status.restarts,
                "endpoint": bridge.endpoint_path(),
            });
            if let Some(reason) = status.reason.filter(|_| with_reasons) {
                state["reason"] = Value::from(reason);
            }
            states.insert(bridge.name.to_string(), state);
        }
        (ready, json!({"ready": ready, "servers": states}))
    }

    /// Reads the config file again and applies the difference. A file that no longer parses
    /// changes nothing.
    pub async fn reload(&self) {
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
            match current.iter().find(|b| b.settings.name == settings.name) {
                Some(bridge) if bridge.settings == *settings => next.push(bridge.clone()),
                existing => {
                    match Bridge::start(
                        settings.clone(),
                        self.bodies.clone(),
                        self.grace,
                        Start::Background,
                        &self.metrics,
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
            if !wanted.iter().any(|s| s.name == bridge.settings.name) {
                info!(server = %bridge.name, "stopping a removed server");
                retired.push(bridge.clone());
            }
        }
        *self.servers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
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

    /// Stops every server side by side.
    pub async fn stop(&self) {
        let mut stopping = tokio::task::JoinSet::new();
        for bridge in self.servers().iter() {
            let bridge = bridge.clone();
            stopping.spawn(async move { bridge.stop().await });
        }
        stopping.join_all().await;
    }
}
