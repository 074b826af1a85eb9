//! A whole run: start the servers, serve them on one listener until a stop signal (or the
//! single server's end), then stop everything in order; and the ready line saying where.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::config::Config;
use super::signals;
use super::telemetry::{Telemetry, TelemetryError};
use crate::http::connections::Connections;
use crate::http::request_body::BodyLimits;
use crate::http::tls::{self, Tls, TlsError};
use crate::http::{self, Site};
use crate::servers::gateway::{Gateway, GatewayError};

/// Why the bridge stopped other than by a stop signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Servers(#[from] GatewayError),
    /// The single command's server ended for good: why, and its exit status.
    #[error("the MCP server stopped: {0}")]
    ChildExited(String, Option<i32>),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

/// Runs the bridge on `listener` until `shutdown` resolves, or, for a single command, until
/// its child exits for good: starts the server(s), prints the ready line, serves, then stops
/// everything in order, the last spans (with traces on) flushed after everything else.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let telemetry = config.traces.as_ref().map(Telemetry::start).transpose()?;
    let outcome = serve(config, listener, shutdown).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    outcome
}

async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    // A bad certificate is found before the server starts.
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(Tls::load(files.clone())?)),
        None => None,
    };
    let grace = config.shutdown_timeout;
    let starting = Gateway::start(
        config.server.clone(),
        config.config_file.clone(),
        config.tenants_file.clone(),
        config.audit_log.as_ref(),
        grace,
    );
    let (gateway, supervision) = tokio::select! {
        started = starting => started?,
        // Stopped while the server was still starting: dropping it kills it.
        _ = &mut shutdown => return Ok(()),
    };
    if config.server.session_secret.is_some() {
        info!("session ids are signed: every replica with the same --session-secret accepts them");
    }
    let json_logs = config.json_logs;
    let gateway = Arc::new(gateway);
    let mut access = config.access.clone();
    access.tenant_tokens = gateway.tenant_book().cloned();
    let site = Arc::new(Site {
        gateway: gateway.clone(),
        access,
        connections: Connections::new(config.max_connections, config.header_timeout),
        bodies: BodyLimits::new(config.max_body_bytes),
        json_logs,
    });
    let address = listener.local_addr().ok();
    let stop = CancellationToken::new();
    let https = tls.is_some();
    let server = tokio::spawn(tls::serving(
        tls,
        http::listen(listener, site, stop.clone(), grace),
    ));
    let reloader = gateway.reloads().then(|| {
        let gateway = gateway.clone();
        tokio::spawn(async move { signals::reload_on_hangup(&gateway).await })
    });
    if let Some(address) = address {
        for bridge in gateway
            .servers()
            .iter()
            .skip(usize::from(supervision.is_some()))
        {
            let url = endpoint_url(address, bridge.endpoint_path(), https);
            announce(
                json_logs,
                &format!("mcp-bridge serving {} at {url}", bridge.name()),
                &url,
            );
        }
        let ready_path = match &supervision {
            Some(_) => gateway.servers()[0].endpoint_path().to_owned(),
            None => "/".to_owned(),
        };
        let url = endpoint_url(address, &ready_path, https);
        announce(json_logs, &format!("mcp-bridge listening on {url}"), &url);
    }

    let child_ended = async {
        match supervision {
            Some(supervision) => supervision.await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = &mut shutdown => {
            info!("stopping: finishing open requests");
            Ok(())
        }
        exit = child_ended => match exit {
            Ok(Some(exit)) => Err(RunError::ChildExited(
                exit.description,
                exit.status.and_then(|s| s.code()),
            )),
            _ => Ok(()),
        },
    };
    gateway.begin_drain();
    stop.cancel();
    let _ = server.await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    gateway.stop().await;
    outcome
}

/// Says where the bridge serves, on stderr whatever the log level: as the line people read,
/// or with `--log-format json` as one JSON object shaped like the other log lines.
fn announce(json_logs: bool, message: &str, url: &str) {
    if !json_logs {
        eprintln!("{message}");
        return;
    }
    use tracing_subscriber::fmt::time::FormatTime;
    let mut timestamp = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(
        &mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp),
    );
    let line = serde_json::json!({
        "timestamp": timestamp,
        "level": "INFO",
        "fields": {"message": message, "url": url},
        "target": "mcp_bridge",
    });
    eprintln!("{line}");
}

/// The URL to paste into a client: `https://` when the bridge serves TLS itself.
fn endpoint_url(address: SocketAddr, path: &str, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{address}{path}")
}
