//! Lending servers to 2026-07-28 calls that may ask their client for input, and carrying
//! their rounds: the lent server for a request (an idle one initialized with what its client
//! declared, or a new one), the call started on it, and the retry that answers a round's
//! requests and continues its call. See [`super::rounds`] for what is kept between rounds.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::call::{Outgoing, Refused, child_gone};
use super::isolation::Session;
use super::open::{Initialize, Opening};
use super::rounds::{Asker, Declared, Loan, Parked, Resumed, RoundCall, may_ask_for_input};
use super::server::Upstream;
use crate::session::ClientHello;
use crate::wire::jsonrpc::{self, Id, Kind, code};
use crate::wire::stateless::{self, Envelope};
use crate::wire::versions::CHILD_REQUEST_VERSION;
use std::sync::Arc;

impl Upstream {
    /// A server lent to a 2026 request whose client answers the child's requests: an idle one
    /// initialized with what the client declared, or a new one. `None` when the request goes
    /// to the shared server (its client answers nothing, it is not a request that may ask for
    /// input, or no session gets a server of its own here).
    pub async fn lend(
        &self,
        method: &str,
        envelope: &Envelope,
        id: &Id<'_>,
    ) -> Result<Option<Loan>, Refused> {
        let Some(isolation) = self
            .isolation
            .as_ref()
            .filter(|_| may_ask_for_input(method))
        else {
            return Ok(None);
        };
        let initialize = envelope.initialize(CHILD_REQUEST_VERSION);
        let Ok(message) = jsonrpc::parse(&initialize) else {
            return Ok(None);
        };
        let hello = ClientHello::from_initialize(message.params);
        // Logs alone do not earn a server of its own, as in a session (fastmcp asks for them
        // in every call): a client that answers nothing shares the warm server.
        if !self.settings.server_per_session.gives_own_child(&hello) {
            return Ok(None);
        }
        let kind = Declared::of(hello.clone());
        let loan = |session: Arc<Session>| {
            if let Some(own) = session.own_server() {
                own.router.relay_changes_to(&self.router);
            }
            Loan::new(session, kind.clone(), &self.rounds, &self.sessions)
        };
        if let Some(session) = self.rounds.idle_one(&kind, &self.sessions) {
            return Ok(Some(loan(session)));
        }
        let Kind::Request { id: own_id, .. } = &message.kind else {
            return Ok(None);
        };
        let initialize = Initialize {
            body: &initialize,
            id: own_id,
            params: message.params,
        };
        let opened = self
            .initialize_own(isolation, initialize, hello, Opening::NewSession)
            .await;
        let session = match opened {
            Ok((_, session)) => session,
            Err(refusal) if refusal.busy => {
                return Err(Refused::busy(id, &error_text(&refusal.message)));
            }
            Err(refusal) => return Err(child_gone(id, &error_text(&refusal.message))),
        };
        let initialized =
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        self.notify(&session, "notifications/initialized", &initialized, None)
            .await;
        Ok(Some(loan(session)))
    }

    /// A 2026-07-28 client is here: servers may be lent from now on, so one waits started
    /// (not for a tenant's server: twenty tenants would double their processes).
    pub fn expect_lending(&self) {
        if let Some(isolation) = &self.isolation
            && self.settings.tenancy.is_none()
        {
            isolation.keep_a_spare(&self.sessions);
        }
    }

    /// Starts a 2026 request on the server lent to it; `presupplied`: answers the request
    /// carries already (`inputResponses` without a round), given to what the child asks first.
    pub async fn start_round(
        &self,
        outgoing: Outgoing<'_>,
        loan: Loan,
        asker: Asker,
        log_level: Option<String>,
        presupplied: HashMap<String, Box<RawValue>>,
    ) -> Result<RoundCall, Refused> {
        let client_id = Bytes::copy_from_slice(outgoing.id.raw.as_bytes());
        let outgoing = Outgoing {
            session: Some(loan.session().clone()),
            // The child's requests come back through the call.
            can_stream: true,
            ..outgoing
        };
        let call = self.start_call(outgoing).await?;
        let mut round = RoundCall::new(call, loan, &self.rounds, asker, log_level, client_id);
        round.presupply(presupplied);
        Ok(round)
    }

    /// A retry naming a round's `state`: the client's answers go to the child's requests
    /// waiting on them, and the call goes on as the answer to this retry (`id`).
    pub async fn resume(
        &self,
        state: &str,
        asker: &Asker,
        envelope: &Envelope,
        id: &Id<'_>,
    ) -> Result<Resumed, Refused> {
        let unknown = || {
            Refused::answer(
                id,
                code::INVALID_PARAMS,
                "invalid params: requestState names no round waiting here (it ended, was \
                 answered already, or is another request's); send the request again without \
                 requestState and inputResponses",
            )
        };
        let Some(mut parked) = self.rounds.take(state, asker) else {
            return Err(unknown());
        };
        let session = parked.loan.session().clone();
        let mut unanswered = Vec::new();
        for ask in std::mem::take(&mut parked.asks) {
            let Some(result) = envelope.input_responses.get(&ask.key) else {
                unanswered.push(ask);
                continue;
            };
            let response = stateless::input_response(&ask.bridge_id, result);
            if let Ok(message) = jsonrpc::parse(&response)
                && let Kind::Response { id: answered } = &message.kind
            {
                self.client_answer(&session, answered, &response).await;
            }
        }
        let client_id = Bytes::copy_from_slice(id.raw.as_bytes());
        if !unanswered.is_empty() {
            parked.asks = unanswered;
            return Ok(Resumed::Again(self.rounds.park(parked, &client_id)));
        }
        let Parked {
            mut call,
            loan,
            asker,
            held,
            log_level,
            ..
        } = parked;
        call.answer_as(client_id.clone());
        let mut resumed = RoundCall::new(call, loan, &self.rounds, asker, log_level, client_id);
        resumed.hold(held);
        Ok(Resumed::Call(Box::new(resumed)))
    }
}

/// The `message` of a JSON-RPC error, or the whole text.
fn error_text(answer: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<Error>,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        message: String,
    }
    serde_json::from_slice::<Answer>(answer)
        .ok()
        .and_then(|answer| answer.error)
        .map(|error| error.message)
        .unwrap_or_else(|| String::from_utf8_lossy(answer).into_owned())
}
