//! `GET /healthz` (the process answers) and `GET /readyz` (every server's child has completed
//! its handshake: `200`, else `503`), each with a small JSON body per server. They need no
//! token (load balancers and Docker have none); why a server is down is shown only to a caller
//! that presents it.

use http::{Response, StatusCode};
use serde_json::json;

use super::body::Body;
use super::reply::json;
use crate::servers::gateway::Gateway;

pub fn healthz(gateway: &Gateway, with_reasons: bool) -> Response<Body> {
    let (_, servers) = gateway.readiness(with_reasons);
    let body = json!({"alive": true, "servers": servers["servers"]});
    json(StatusCode::OK, body.to_string().into())
}

pub fn readyz(gateway: &Gateway, with_reasons: bool) -> Response<Body> {
    let (ready, body) = gateway.readiness(with_reasons);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, body.to_string().into())
}
