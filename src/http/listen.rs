//! The accept loop: HTTP/1.1 and h2c (or HTTPS) on one port, each connection in a task of its
//! own under the connection limit and its sweep, and a graceful drain when the bridge stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::connections::{self, Peer};
use super::route;
use super::site::{Exchange, RequestLog, Site};
use super::tls;

/// HTTP/2 pings a quiet connection this often, and gives up on it when a ping goes unanswered.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The session header, lower-cased as HTTP/2 requires and hyper stores it.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Accepts connections until `stop` fires, then lets open requests finish for up to `drain`.
pub async fn listen(
    listener: TcpListener,
    site: Arc<Site>,
    stop: CancellationToken,
    drain: Duration,
) {
    let connections = site.connections.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that opens a connection and never finishes its headers must not hold it: the
    // connection sweep bounds every protocol (HTTP/2 and the detection of either included),
    // and a kept-alive connection at 60 s rather than at hyper's header timeout, which would
    // close it 30 s after its last answer, under clients that keep it longer.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let sweeper = {
        let connections = connections.clone();
        tokio::spawn(async move { connections.sweep_forever().await })
    };
    loop {
        // At the limit, the connection idle the longest makes room; with none idle, new
        // connections wait in the listen backlog instead of using memory.
        let slot = tokio::select! {
            slot = connections.slot() => slot,
            _ = stop.cancelled() => break,
        };
        let Some(slot) = slot else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, Peer(peer.ip())),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        // Small JSON-RPC answers must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let admitted = connections.admit(slot);
        let site = site.clone();
        let tracked = admitted.tracked.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let site = site.clone();
            let tracked = tracked.clone();
            let in_flight = tracked.request_started();
            async move {
                let exchange = Exchange {
                    site: &site,
                    peer,
                    connection: &tracked,
                    log: RequestLog::default(),
                };
                let response = route::handle(request, exchange).await;
                Ok::<_, Infallible>(response.map(|body| body.holding(in_flight)))
            }
        });
        let closing = admitted.tracked.closing().clone();
        let stream = connections::Watched::new(stream, admitted.tracked.clone());
        if let Some(tls) = tls::current() {
            // HTTPS: the handshake (bounded in time) runs in the connection's own task, so a
            // slow or failing client (plain HTTP on this port) concerns itself alone.
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                if let Some(stream) = tls.handshake(stream, peer).await {
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    tokio::select! {
                        ended = watcher.watch(connection) => {
                            if let Err(e) = ended {
                                debug!("connection ended with an error: {e}");
                            }
                        }
                        _ = closing.cancelled() => {}
                    }
                }
                drop(admitted);
            });
            continue;
        }
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        debug!("connection ended with an error: {e}");
                    }
                }
                // Dropping the connection closes its socket.
                _ = closing.cancelled() => {}
            }
            drop(admitted);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still open after {drain:?}; closing them");
    }
    sweeper.abort();
}
