//! The signals the bridge obeys: SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd) stop it;
//! SIGHUP reloads the config file and the tenants file, and reopens the audit log.

use tokio::signal::unix::{SignalKind, signal};

use crate::servers::gateway::Gateway;

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal_received() {
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for stop signals; stop the bridge with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}

/// Reloads the config file and the tenants file, and reopens the audit log, at every SIGHUP,
/// for as long as the bridge runs.
pub async fn reload_on_hangup(gateway: &Gateway) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot listen for SIGHUP; the config and tenants files will not be reloaded, nor the audit log reopened"
        );
        return;
    };
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading");
        gateway.reload().await;
    }
}
