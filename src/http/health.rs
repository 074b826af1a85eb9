//! `GET /healthz` (the process answers) and `GET /readyz` (every server's child has completed
//! its handshake: `200`, else `503`), each with a small JSON body per server.

use http::{Response, StatusCode};
use serde_json::json;

use super::{Body, json};
use crate::gateway::Gateway;

pub fn healthz(gateway: &Gateway) -> Response<Body> {
    let (_, servers) = gateway.readiness();
    let body = json!({"alive": true, "servers": servers["servers"]});
    json(StatusCode::OK, body.to_string().into())
}

pub fn readyz(gateway: &Gateway) -> Response<Body> {
    let (ready, body) = gateway.readiness();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, body.to_string().into())
}
