//! What the HTTP side serves and with what bounds ([`Site`]: the gateway of servers, the access
//! policy, the connections and request bodies of the listener), and what one request carries
//! along while it is handled ([`Exchange`]: where it came from, its connection, its log line).

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use super::access::AccessPolicy;
use super::connections::{Connections, Peer, Tracked};
use super::reply::Reject;
use super::request_body::{BodyLimits, ReadBody};
use crate::servers::bridge::Bridge;
use crate::servers::gateway::Gateway;
use crate::upstream::trace;
use crate::wire::jsonrpc::Message;

/// Everything one listener serves.
pub struct Site {
    pub gateway: Arc<Gateway>,
    pub access: AccessPolicy,
    /// The listener's open connections.
    pub connections: Arc<Connections>,
    /// The bounds on request bodies, for every server together.
    pub bodies: BodyLimits,
    /// Request log lines as JSON fields rather than text.
    pub json_logs: bool,
}

/// One request on its way: the site, where it came from, its connection, and what its log
/// line will say.
pub struct Exchange<'a> {
    pub site: &'a Site,
    pub peer: Peer,
    pub connection: &'a Arc<Tracked>,
    pub log: RequestLog,
}

/// What the request log line says beyond method, path and status.
#[derive(Default)]
pub struct RequestLog {
    /// The server the request was for, once known.
    pub bridge: Option<Arc<Bridge>>,
    pub rpc_method: Option<String>,
    pub session: Option<String>,
}

impl Exchange<'_> {
    /// Notes the JSON-RPC message the request carries: its method for the log line, and (with
    /// traces on) the trace its `_meta` names.
    pub fn note_message(&mut self, message: &Message<'_>) {
        self.log.rpc_method = message.method().map(str::to_owned);
        trace::note_request(message.params);
    }

    /// Reads the request's whole body within the site's bounds; while it arrives, the
    /// connection may be closed to make room for others at the connection limit.
    pub async fn read_body(&self, request: Request<Incoming>) -> Result<ReadBody, Reject> {
        let _receiving = self.connection.receiving();
        self.site.bodies.read(request).await
    }
}
