//! Streamable HTTP's `initialize`: the session the upstream opens for it, its id in the answer's
//! `Mcp-Session-Id` header.

use http::{HeaderValue, Response};

use super::body::Body;
use super::reply::{Accepts, refused, respond};
use super::request::SESSION_HEADER;
use super::site::RequestLog;
use crate::upstream::{Initialize, Opening, Upstream};

pub async fn open_session(
    upstream: &Upstream,
    initialize: Initialize<'_>,
    accepts: Accepts,
    log: &mut RequestLog,
) -> Response<Body> {
    match upstream.initialize(initialize, Opening::NewSession).await {
        Ok((answer, session)) => {
            let mut response = respond(accepts, answer);
            response.headers_mut().insert(
                SESSION_HEADER,
                HeaderValue::from_str(&session.id).expect("hex is a valid header value"),
            );
            log.session = Some(session.id.clone());
            response
        }
        Err(refusal) => refused(refusal, accepts),
    }
}
