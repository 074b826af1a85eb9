//! Opening a session with a client's `initialize`, for every transport: on the shared child
//! it is answered from the cached handshake; a client that gets a server of its own (every one
//! with `--isolate`; by default, those that can answer the child's requests) gets a new child,
//! handed its `initialize` as it sent it, whose answer, not the cache, opens the session. Also
//! the stateless revision's `server/discover`, answered from the cache.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::call::{Outgoing, Refused, Step, Target, child_gone};
use super::isolation::{IsolateError, Isolated, Isolation, Session};
use super::server::Upstream;
use crate::session::{ClientHello, NewSession, Transport};
use crate::wire::jsonrpc::{self, Id, code};
use crate::wire::versions;

/// A client's `initialize` request.
#[derive(Clone, Copy)]
pub struct Initialize<'a> {
    /// The client's whole message.
    pub body: &'a Bytes,
    pub id: &'a Id<'a>,
    pub params: Option<&'a RawValue>,
}

/// Where the session an `initialize` opens lives.
#[derive(Clone, Copy)]
pub enum Opening<'a> {
    /// A new session (Streamable HTTP: the answer carries its id).
    NewSession,
    /// The session the client's stream opened already (the legacy HTTP+SSE transport).
    OnStream(&'a Arc<Session>),
}

impl Upstream {
    /// Opens (or, for the legacy transport, settles) the session of a client's `initialize`:
    /// the answer, and the session.
    pub async fn initialize(
        &self,
        initialize: Initialize<'_>,
        opening: Opening<'_>,
    ) -> Result<(Vec<Bytes>, Arc<Session>), Refused> {
        let hello = ClientHello::from_initialize(initialize.params);
        let own = self
            .isolation
            .as_ref()
            .filter(|_| self.settings.server_per_session.gives_own_child(&hello));
        if let Opening::OnStream(session) = opening {
            // A session's server is started once; any initialize after the first is refused,
            // so that initializes sent side by side cannot each start one.
            if !session.first_initialize() && (own.is_some() || session.own_server().is_some()) {
                return Err(already_initialized(initialize.id));
            }
        }
        match own {
            Some(isolation) => {
                self.initialize_own(isolation, initialize, hello, opening)
                    .await
            }
            None => self.initialize_shared(initialize, hello, opening).await,
        }
    }

    /// On the shared child: answered from the cached handshake.
    async fn initialize_shared(
        &self,
        initialize: Initialize<'_>,
        hello: ClientHello,
        opening: Opening<'_>,
    ) -> Result<(Vec<Bytes>, Arc<Session>), Refused> {
        let handshake = self
            .supervisor
            .hello(self.wait_for_restart)
            .await
            .map_err(|reason| child_gone(initialize.id, &reason))?;
        let requested = versions::requested_version(initialize.params);
        let (answer, version) = handshake.answer(
            initialize.id.raw,
            requested.as_deref(),
            self.settings.max_protocol_version,
        );
        let session = self
            .settle_session(opening, &hello, version, None)
            .expect("a session without a server of its own settles");
        Ok((vec![answer], session))
    }

    /// On a child of the session's own, started now and handed the client's `initialize`. A
    /// result opens the session; an error, or no answer within `--startup-timeout`, stops the
    /// child and opens none.
    pub(super) async fn initialize_own(
        &self,
        isolation: &Isolation,
        initialize: Initialize<'_>,
        hello: ClientHello,
        opening: Opening<'_>,
    ) -> Result<(Vec<Bytes>, Arc<Session>), Refused> {
        let id = initialize.id;
        let own = isolation.spawn(&self.sessions).map_err(|e| match e {
            IsolateError::Full(_) => Refused::busy(id, &e.to_string()),
            IsolateError::Spawn(e) => child_gone(id, &e.to_string()),
        })?;
        let answer = self.own_handshake(isolation, &own, initialize).await;
        let version = answer
            .as_ref()
            .ok()
            .and_then(|answer| answered_version(answer));
        let (answer, version) = match (answer, version) {
            (Ok(answer), Some(version)) => (answer, version),
            (failed, _) => {
                own.stop(self.grace);
                return Err(Refused {
                    message: match failed {
                        Ok(error) => Bytes::from(error.concat()),
                        Err(message) => message,
                    },
                    busy: false,
                });
            }
        };
        // Two initialize on one stream race here: the first child stays, the other goes.
        let Some(session) = self.settle_session(opening, &hello, version, Some(&own)) else {
            own.stop(self.grace);
            return Err(already_initialized(id));
        };
        Isolated::bind(&own, &session, &self.sessions);
        Ok((answer, session))
    }

    /// The session an `initialize` opens, told what its client declared: a new one, or the
    /// one the client's stream opened (the legacy transport), given `own` as its server;
    /// `None` when that stream's session has a server of its own already.
    fn settle_session(
        &self,
        opening: Opening<'_>,
        hello: &ClientHello,
        version: &'static str,
        own: Option<&Arc<Isolated>>,
    ) -> Option<Arc<Session>> {
        let tools = self.settings.repair_schemas.view_for(hello);
        match opening {
            Opening::OnStream(session) => {
                if let Some(own) = own
                    && session.set_own_server(own.clone()).is_err()
                {
                    return None;
                }
                session.set_client(hello.capabilities);
                session.set_tools_view(tools);
                Some(session.clone())
            }
            Opening::NewSession => Some(self.sessions.create(NewSession {
                protocol_version: version,
                client: hello.capabilities,
                tools,
                transport: Transport::Streamable,
                own_server: own.cloned(),
            })),
        }
    }

    /// The own child's answer to the client's `initialize`, or the error the client gets
    /// instead.
    async fn own_handshake(
        &self,
        isolation: &Isolation,
        own: &Isolated,
        initialize: Initialize<'_>,
    ) -> Result<Vec<Bytes>, Bytes> {
        let target = Target {
            router: own.router.clone(),
            child: own.child.clone(),
            shared: false,
        };
        let outgoing = Outgoing {
            body: initialize.body,
            id: initialize.id,
            method: "initialize",
            params: initialize.params,
            session: None,
            can_stream: false,
            stateless: None,
        };
        let mut call = self
            .start_call_on(&target, outgoing)
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
                Some(initialize.id.raw),
                code::REQUEST_TIMEOUT,
                &format!(
                    "mcp-bridge: the MCP server did not answer initialize within {:?} \
                     (--startup-timeout)",
                    isolation.startup_timeout
                ),
            )
        })
    }

    /// The answer to `server/discover`: the versions the bridge speaks and what the shared
    /// child offers.
    pub async fn discover(&self, id: &Id<'_>) -> Result<Bytes, Refused> {
        let hello = self
            .supervisor
            .hello(self.wait_for_restart)
            .await
            .map_err(|reason| child_gone(id, &reason))?;
        Ok(jsonrpc::result_response(id.raw, hello.discover_result()))
    }
}

/// A second `initialize` in a session that has its server already.
fn already_initialized(id: &Id<'_>) -> Refused {
    Refused::answer(
        id,
        code::INVALID_REQUEST,
        "invalid request: this session is initialized already; open a new one to start over",
    )
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
        versions::KNOWN_VERSIONS
            .iter()
            .copied()
            .find(|known| *known == version)
            // A version the bridge does not know still made a session; batches are the only
            // thing the version decides here, and they stay off.
            .unwrap_or(versions::KNOWN_VERSIONS[versions::KNOWN_VERSIONS.len() - 1]),
    )
}
