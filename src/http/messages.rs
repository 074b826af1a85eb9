//! One message of a session's client, whatever carried it (a Streamable HTTP POST, an element
//! of a batch, a legacy SSE POST): a request is answered by the bridge itself (subscriptions it
//! counts, the tool list it keeps) or sent on as a call; a notification or an answer to the
//! child's request is passed on and accepted. Each transport then delivers the outcome its own
//! way.

use std::sync::Arc;

use bytes::Bytes;

use crate::upstream::{Call, Outgoing, Refused, Session, Upstream};
use crate::wire::jsonrpc::{Kind, Message};

/// What one message comes to.
// Most requests come to a `Call`: boxing it would allocate for each of them to spare a copy of
// the rarer other answers.
#[allow(clippy::large_enum_variant)]
pub enum Handled {
    /// Answered by the bridge, this message.
    Answered(Bytes),
    /// Sent to the child: its answer is to be read.
    Call(Call),
    /// A request that did not reach the child, with the error its client gets.
    Refused(Refused),
    /// A notification or an answer: passed on, nothing to answer.
    Accepted,
}

/// Handles a message of `session`'s client other than `initialize`. `can_stream`: whether the
/// request's answer can carry related messages as a stream.
pub async fn in_session(
    upstream: &Upstream,
    session: &Arc<Session>,
    message: &Message<'_>,
    body: &Bytes,
    can_stream: bool,
) -> Handled {
    match &message.kind {
        Kind::Request { id, method } => {
            if let Some(answer) = upstream.subscription(session, method, id, body, message.params) {
                return Handled::Answered(answer);
            }
            if method == "tools/list"
                && let Some(answer) = upstream
                    .list_tools(Some(session), id, message.params, false)
                    .await
            {
                return Handled::Answered(answer);
            }
            let outgoing = Outgoing {
                body,
                id,
                method,
                params: message.params,
                session: Some(session.clone()),
                can_stream,
                stateless: None,
            };
            match upstream.start_call(outgoing).await {
                Ok(call) => Handled::Call(call),
                Err(refusal) => Handled::Refused(refusal),
            }
        }
        Kind::Notification { method } => {
            upstream.notify(session, method, body, message.params).await;
            Handled::Accepted
        }
        Kind::Response { id } => {
            upstream.client_answer(session, id, body).await;
            Handled::Accepted
        }
    }
}
