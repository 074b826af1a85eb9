//! The configuration of a whole run, however it was given (the command line, a test): the
//! server (or a config file's defaults), the listener's bounds, access, TLS and traces.

use std::path::PathBuf;
use std::time::Duration;

use super::telemetry::TraceExport;
use crate::child::ChildCommand;
use crate::http::access::AccessPolicy;
use crate::http::tls::TlsFiles;
use crate::servers::audit::AuditSettings;
use crate::upstream::ServerSettings;

/// Everything [`super::run::run`] needs, independent of how it was given (command line, tests).
#[derive(Debug, Clone)]
pub struct Config {
    /// The server a single command runs; for a config file, the defaults of its servers.
    pub server: ServerSettings,
    /// How long open requests may run on after a stop signal, and how long the child gets to
    /// exit at each step of stopping it.
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    pub access: AccessPolicy,
    /// Serve the servers of this `mcpServers` file instead of `server`.
    pub config_file: Option<PathBuf>,
    /// The tenants (their tokens and environments) of the servers run per tenant.
    pub tenants_file: Option<PathBuf>,
    /// One JSON line per tool call of every server, to this file.
    pub audit_log: Option<AuditSettings>,
    /// Request log lines as JSON fields rather than text.
    pub json_logs: bool,
    /// Serve HTTPS with this certificate chain and key (PEM), reloaded on SIGHUP.
    pub tls: Option<TlsFiles>,
    /// Open connections at most; at the limit the one idle the longest makes room.
    pub max_connections: usize,
    /// How long a connection may take to send its first request's headers.
    pub header_timeout: Duration,
    /// Export traces there; none, no spans at all.
    pub traces: Option<TraceExport>,
}

impl Config {
    pub fn new(child: ChildCommand) -> Self {
        Self {
            server: ServerSettings::new(child),
            shutdown_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024 * 1024,
            access: AccessPolicy::default(),
            config_file: None,
            tenants_file: None,
            audit_log: None,
            json_logs: false,
            tls: None,
            max_connections: 16 * 1024,
            header_timeout: Duration::from_secs(30),
            traces: None,
        }
    }
}
