//! Multi round-trip requests (2026-07-28) over a handshake-era child: what is kept between
//! rounds (the idle lent servers, the parked calls) and a lent call read step by step; the
//! lending itself is [`super::lending`]. A 2026 client that
//! declares in `_meta` that it answers sampling, elicitation or roots has its `tools/call`,
//! `prompts/get` and `resources/read` run on a server lent to that one call: a child initialized
//! with what the client declared, running no other call, so that a request the child sends
//! while the call runs is for this call and no other. Such a request ends the client's HTTP
//! request with an input-required result carrying it; the call waits, parked under the
//! round's `requestState`, for the client's retry, whose `inputResponses` become the answers
//! the child waits for; the call then goes on, answering the retry, through as many rounds as
//! the child asks. A round nobody retries within `--input-timeout` ends: the call is cancelled in
//! the child and the lent server stopped. A lent server goes back to the idle ones of its kind
//! when the call ends, and ends like any session when it idles out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Sleep;
use tracing::debug;

use super::call::{Call, Step, Steps};
use serde_json::value::RawValue;

use super::isolation::{Router, Session, Sessions};
use crate::session::{ClientCapabilities, ClientHello};
use crate::sync::Lock;
use crate::wire::jsonrpc::{self, code};
use crate::wire::stateless::{self, InputRequest};

/// How long a call that asked the client something waits for the child's other requests sent
/// at once, so that they go to the client in one round.
const GATHER_WITHIN: Duration = Duration::from_millis(20);

/// The methods a server may answer with an input-required result.
pub fn may_ask_for_input(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// What a lent server's client declared: only a client that declared the same is lent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Declared {
    capabilities: ClientCapabilities,
    client_name: String,
}

impl Declared {
    pub fn of(hello: ClientHello) -> Self {
        Self {
            capabilities: hello.capabilities,
            client_name: hello.client_name,
        }
    }
}

/// The lent servers and the parked rounds of one upstream.
pub struct Rounds {
    idle: Mutex<HashMap<Declared, Vec<Arc<Session>>>>,
    parked: Mutex<HashMap<String, Parked>>,
    /// How long a round waits for the client's retry (a person may be answering).
    input_timeout: Duration,
}

/// A server lent to one call; back to the idle ones when dropped, unless it was abandoned.
#[derive(Debug)]
pub struct Loan {
    session: Arc<Session>,
    kind: Declared,
    rounds: Weak<Rounds>,
    sessions: Weak<Sessions>,
    abandoned: bool,
}

impl Loan {
    pub fn new(
        session: Arc<Session>,
        kind: Declared,
        rounds: &Arc<Rounds>,
        sessions: &Arc<Sessions>,
    ) -> Self {
        Self {
            session,
            kind,
            rounds: Arc::downgrade(rounds),
            sessions: Arc::downgrade(sessions),
            abandoned: false,
        }
    }

    /// The session the lent server serves.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Stops the lent server: its call was abandoned half-way, its child may still be waiting
    /// on answers (they get errors as its session ends).
    fn abandon(mut self) {
        self.abandoned = true;
        if let Some(sessions) = self.sessions.upgrade() {
            sessions.remove(&self.session.id);
        }
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        let (Some(rounds), Some(sessions)) = (self.rounds.upgrade(), self.sessions.upgrade())
        else {
            return;
        };
        if self.abandoned {
            return;
        }
        // One that expired or whose child exited is not lent again.
        if sessions.touch(&self.session.id).is_some() {
            rounds
                .idle
                .locked()
                .entry(self.kind.clone())
                .or_default()
                .push(self.session.clone());
        }
    }
}

/// Who made a round's first request, and what it was: only the same caller's retry of the
/// same request continues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    pub caller: u64,
    pub method: String,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<String>,
}

impl std::fmt::Debug for Rounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rounds")
            .field("parked", &self.parked())
            .finish_non_exhaustive()
    }
}

/// A call waiting for its client's retry.
pub struct Parked {
    pub call: Call,
    pub loan: Loan,
    pub asker: Asker,
    /// The child's requests not answered yet.
    pub asks: Vec<InputRequest>,
    /// Messages about the call read while gathering the child's requests.
    pub held: VecDeque<Bytes>,
    pub log_level: Option<String>,
}

/// What a retry comes to.
pub enum Resumed {
    /// The call goes on.
    Call(Box<RoundCall>),
    /// The child still waits for answers the retry did not carry: another round.
    Again(Bytes),
}

/// A 2026-07-28 call on a lent server, read step by step like a [`Call`]: the child's requests
/// become the input-required end of this HTTP request, logs pass only as the request asked.
pub struct RoundCall {
    call: Option<Call>,
    loan: Option<Loan>,
    rounds: Arc<Rounds>,
    asker: Asker,
    log_level: Option<String>,
    held: VecDeque<Bytes>,
    /// The child's requests read so far, and how long to wait for more sent with them.
    gathering: Option<(Vec<InputRequest>, Pin<Box<Sleep>>)>,
    /// Answers the first request carried already, by key.
    presupplied: HashMap<String, Box<RawValue>>,
    /// The client's id of the request this HTTP exchange answers.
    client_id: Bytes,
}

impl Steps for RoundCall {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if let Some(message) = self.held.pop_front() {
            return Poll::Ready(Step::Related(message));
        }
        loop {
            let Some(call) = self.call.as_mut() else {
                return Poll::Pending;
            };
            match call.poll_step(cx) {
                Poll::Ready(Step::Related(message)) => {
                    if let Some(ask) = InputRequest::of(&message) {
                        match &mut self.gathering {
                            Some((asks, _)) => asks.push(ask),
                            None => {
                                let timer = Box::pin(tokio::time::sleep(GATHER_WITHIN));
                                self.gathering = Some((vec![ask], timer));
                            }
                        }
                        continue;
                    }
                    if is_log(&message)
                        && !stateless::log_wanted(&message, self.log_level.as_deref())
                    {
                        continue;
                    }
                    if self.gathering.is_some() {
                        self.held.push_back(message);
                        continue;
                    }
                    return Poll::Ready(Step::Related(message));
                }
                Poll::Ready(Step::Final(answer)) => {
                    // The call ended (the child gave up on what it asked): nothing to park.
                    self.gathering = None;
                    return Poll::Ready(Step::Final(answer));
                }
                Poll::Ready(Step::LongRunning) => {
                    if self.gathering.is_none() {
                        return Poll::Ready(Step::LongRunning);
                    }
                }
                Poll::Pending => {
                    let Some((_, timer)) = &mut self.gathering else {
                        return Poll::Pending;
                    };
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let (asks, _) = self.gathering.take().expect("gathering");
                    let asks = self.named_by_the_child(asks);
                    let asks = self.answer_presupplied(asks);
                    if asks.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Step::Final(vec![self.park(asks)]));
                }
            }
        }
    }
}

impl Drop for RoundCall {
    fn drop(&mut self) {
        // A call its child did not finish (cancelled, timed out, its client gone) may still be
        // running there, and what the child says about it next would reach the next call it is
        // lent to: that server is not lent again.
        let unfinished = self.call.as_ref().is_some_and(|call| !call.answered());
        if unfinished && let Some(loan) = self.loan.take() {
            drop(self.call.take());
            loan.abandon();
        }
    }
}

impl RoundCall {
    pub fn new(
        call: Call,
        loan: Loan,
        rounds: &Arc<Rounds>,
        asker: Asker,
        log_level: Option<String>,
        client_id: Bytes,
    ) -> Self {
        Self {
            call: Some(call),
            loan: Some(loan),
            rounds: rounds.clone(),
            asker,
            log_level,
            held: VecDeque::new(),
            gathering: None,
            presupplied: HashMap::new(),
            client_id,
        }
    }

    /// Answers the request carries already: the child's requests they name are answered with
    /// them, without a round.
    pub fn presupply(&mut self, answers: HashMap<String, Box<RawValue>>) {
        self.presupplied = answers;
    }

    /// Messages about the call to send before anything the child says next.
    pub fn hold(&mut self, held: VecDeque<Bytes>) {
        self.held = held;
    }

    /// The child's requests keyed by the child's own ids, where those are known and distinct.
    fn named_by_the_child(&self, mut asks: Vec<InputRequest>) -> Vec<InputRequest> {
        let Some(router) = self.lent_router() else {
            return asks;
        };
        let named: Vec<Option<String>> = asks
            .iter()
            .map(|ask| {
                let bridge_id = ask.bridge_id.parse().ok()?;
                let child_id = router.child_request_id(bridge_id)?;
                Some(child_id.trim_matches('"').to_owned())
            })
            .collect();
        let distinct: HashSet<&String> = named.iter().flatten().collect();
        if distinct.len() == asks.len() {
            for (ask, name) in asks.iter_mut().zip(named) {
                ask.key = name.expect("every ask named");
            }
        }
        asks
    }

    /// Gives the child's requests named by answers the request carried those answers; the
    /// rest are for the client to answer.
    fn answer_presupplied(&mut self, asks: Vec<InputRequest>) -> Vec<InputRequest> {
        if self.presupplied.is_empty() {
            return asks;
        }
        let (Some(router), Some(loan)) = (self.lent_router(), self.loan.as_ref()) else {
            return asks;
        };
        let session = loan.session().clone();
        let mut unanswered = Vec::new();
        for ask in asks {
            let Some(answer) = self.presupplied.remove(&ask.key) else {
                unanswered.push(ask);
                continue;
            };
            let response = stateless::input_response(&ask.bridge_id, &answer);
            let sent = jsonrpc::parse(&response)
                .ok()
                .and_then(|message| match &message.kind {
                    jsonrpc::Kind::Response { id } => router.client_answer(&session, id, &response),
                    _ => None,
                });
            let delivered = sent.is_some_and(|(stdin, line)| stdin.send_now(line).is_ok());
            if !delivered {
                unanswered.push(ask);
            }
        }
        // Only the first request's answers were the client's to give at once.
        self.presupplied.clear();
        unanswered
    }

    fn lent_router(&self) -> Option<Arc<Router>> {
        let loan = self.loan.as_ref()?;
        Some(loan.session().own_server()?.router.clone())
    }

    /// Parks the call until the client's retry: the input-required answer to send now.
    fn park(&mut self, asks: Vec<InputRequest>) -> Bytes {
        let (Some(call), Some(loan)) = (self.call.take(), self.loan.take()) else {
            return jsonrpc::error_response(
                std::str::from_utf8(&self.client_id).ok(),
                code::INTERNAL_ERROR,
                "mcp-bridge: a round was parked twice",
            );
        };
        let parked = Parked {
            call,
            loan,
            asker: self.asker.clone(),
            asks,
            held: std::mem::take(&mut self.held),
            log_level: self.log_level.take(),
        };
        let answer_for = self.client_id.clone();
        self.rounds.park(parked, &answer_for)
    }
}

fn is_log(message: &[u8]) -> bool {
    memchr::memmem::find(message, b"\"notifications/message\"").is_some()
}

impl Rounds {
    pub fn new(input_timeout: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            parked: Mutex::default(),
            input_timeout,
        }
    }

    /// Keeps `parked` under a new round's state: the input-required answer to the request
    /// `client_id` names. A round not retried in time ends.
    pub fn park(self: &Arc<Self>, parked: Parked, client_id: &[u8]) -> Bytes {
        let state = new_state();
        let answer = stateless::input_required(client_id, &parked.asks, &state);
        debug!(
            asks = parked.asks.len(),
            "a call waits for its client's input"
        );
        self.parked.locked().insert(state.clone(), parked);
        let rounds = Arc::downgrade(self);
        let wait = self.input_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let abandoned = rounds
                .upgrade()
                .and_then(|rounds| rounds.parked.locked().remove(&state));
            if let Some(parked) = abandoned {
                debug!("a round was not retried in time: its call is cancelled");
                let Parked { call, loan, .. } = parked;
                drop(call);
                loan.abandon();
            }
        });
        answer
    }

    /// Rounds waiting for a retry.
    pub fn parked(&self) -> usize {
        self.parked.locked().len()
    }

    /// The round `state` names, if `asker` is who it waits for: another caller's, or another
    /// request's, stays for its own retry.
    pub fn take(&self, state: &str, asker: &Asker) -> Option<Parked> {
        let mut parked = self.parked.locked();
        match parked.get(state) {
            Some(round) if round.asker == *asker => parked.remove(state),
            _ => None,
        }
    }

    /// An idle lent server of `kind`, if one is still open.
    pub fn idle_one(&self, kind: &Declared, sessions: &Sessions) -> Option<Arc<Session>> {
        let mut idle = self.idle.locked();
        let ready = idle.get_mut(kind)?;
        while let Some(session) = ready.pop() {
            if sessions.touch(&session.id).is_some() {
                return Some(session);
            }
        }
        None
    }
}

/// A round's `requestState`: 128 random bits, for only the retry to name.
fn new_state() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS's random numbers");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
