//! `initialize` for a session that gets a child of its own (every session with `--isolate`;
//! by default, clients that can answer the child's requests): a new child for the new session,
//! handed the client's own `initialize`; its answer, not the cache, makes the session.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::call::{self, Call, Outgoing, Refused, Step, Target};
use super::streamable::{Accepts, refused, respond};
use super::{Body, RequestLog, SESSION_HEADER};
use crate::Bridge;
use crate::isolate::{IsolateError, Isolated, Isolation};
use crate::jsonrpc::{self, Id, code};
use crate::protocol;
use crate::session::{ClientHello, NewSession, Session, Transport};

/// Starts the session's child and forwards the client's `initialize` to it. A result makes a
/// session (for the streamable transport, a new one; for the legacy one, `legacy` gets the
/// child); an error, or no answer within `--startup-timeout`, stops the child and makes none.
pub async fn initialize(
    bridge: &Bridge,
    isolation: &Isolation,
    outgoing: Outgoing<'_>,
    hello: ClientHello,
    legacy: Option<&Arc<Session>>,
) -> Result<(Vec<Bytes>, Arc<Session>), Refused> {
    let id = outgoing.id;
    let isolated = isolation.spawn(&bridge.sessions).map_err(|e| match e {
        IsolateError::Full(_) => Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: jsonrpc::error_response(Some(id.raw), code::OVERLOADED, &e.to_string()),
            busy: true,
        },
        IsolateError::Spawn(e) => call::child_gone(id, &e.to_string()),
    })?;
    let target = Target {
        router: isolated.router.clone(),
        child: isolated.child.clone(),
        shared: false,
    };
    let answer = handshake(bridge, isolation, &target, outgoing).await;
    let version = answer
        .as_ref()
        .ok()
        .and_then(|answer| answered_version(answer));
    let (answer, version) = match (answer, version) {
        (Ok(answer), Some(version)) => (answer, version),
        (failed, _) => {
            isolated.stop(bridge.shutdown_grace);
            return Err(Refused {
                status: StatusCode::OK,
                message: match failed {
                    Ok(error) => Bytes::from(error.concat()),
                    Err(message) => message,
                },
                busy: false,
            });
        }
    };
    let session = match legacy {
        Some(session) => {
            // Two initialize on one stream race here: the first child stays, the other goes.
            if session.isolated.set(isolated.clone()).is_err() {
                isolated.stop(bridge.shutdown_grace);
                return Err(already_initialized(id));
            }
            session.set_client(hello.capabilities);
            session.clone()
        }
        None => bridge.sessions.create(NewSession {
            protocol_version: version,
            client: hello.capabilities,
            transport: Transport::Streamable,
            own_child: Some(isolated.clone()),
        }),
    };
    Isolated::bind(&isolated, &session, &bridge.sessions);
    Ok((answer, session))
}

/// A second `initialize` in a session that has its child already.
pub fn already_initialized(id: &Id<'_>) -> Refused {
    Refused {
        status: StatusCode::OK,
        message: jsonrpc::error_response(
            Some(id.raw),
            code::INVALID_REQUEST,
            "invalid request: this session is initialized already; open a new one to start over",
        ),
        busy: false,
    }
}

/// The streamable transport's `initialize` for a session with a child of its own.
pub async fn respond_initialize(
    bridge: &Bridge,
    isolation: &Isolation,
    outgoing: Outgoing<'_>,
    hello: ClientHello,
    accepts: Accepts,
    log: &mut RequestLog,
) -> http::Response<Body> {
    match initialize(bridge, isolation, outgoing, hello, None).await {
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

/// The child's answer to the client's `initialize`, or the error the client gets instead.
async fn handshake(
    bridge: &Bridge,
    isolation: &Isolation,
    target: &Target,
    outgoing: Outgoing<'_>,
) -> Result<Vec<Bytes>, Bytes> {
    let id = outgoing.id.raw.to_owned();
    let mut call = Call::start_on(bridge, target, outgoing)
        .await
        .map_err(|refusal| refusal.message)?;
    let answer = tokio::time::timeout(isolation.startup_timeout, async {
        loop {
            if let Step::Final(answer) = call.step().await {
                return answer;
            }
        }
    });
    answer.await.map_err(|_| {
        jsonrpc::error_response(
            Some(&id),
            code::REQUEST_TIMEOUT,
            &format!(
                "mcp-bridge: the MCP server did not answer initialize within {:?} \
                 (--startup-timeout)",
                isolation.startup_timeout
            ),
        )
    })
}

/// The known protocol version in a successful `initialize` answer; `None` for an error.
fn answered_version(answer: &[Bytes]) -> Option<&'static str> {
    #[derive(serde::Deserialize)]
    struct Answer {
        result: Option<InitializeResult>,
    }
    #[derive(serde::Deserialize)]
    struct InitializeResult {
        #[serde(rename = "protocolVersion")]
        protocol_version: String,
    }
    let answer: Answer = serde_json::from_slice(&answer.concat()).ok()?;
    let version = answer.result?.protocol_version;
    Some(
        protocol::KNOWN_VERSIONS
            .iter()
            .copied()
            .find(|known| *known == version)
            // A version the bridge does not know still made a session; batches are the only
            // thing the version decides here, and they stay off.
            .unwrap_or(protocol::KNOWN_VERSIONS[protocol::KNOWN_VERSIONS.len() - 1]),
    )
}
