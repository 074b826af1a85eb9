//! The tools clients are shown, on the way through a server: `tools/list` answered from the
//! child's cached listing in the form the session's client gets ([`View`]), `tools/call` of a
//! tool the policy hides refused before it reaches the child (a renamed tool's call reaching it
//! under the child's name), every `tools/call` recorded from its start to its end (see
//! [`super::tool_calls`]), and the shared child's tools listed once it serves, with a warning
//! for a policy that names a tool the child does not have.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::warn;

use super::call::{Outgoing, Refused, Target};
use super::isolation::Session;
use super::requests::AskError;
use super::sending::within_deadline;
use super::server::Upstream;
use super::settings::{RepairSchemas, ServerPerSession};
use super::tool_calls::{AuditFacts, Audited, ToolCallRecord};
use crate::tools::{CallDecision, Listing, View};
use crate::wire::fields::Fields;
use crate::wire::jsonrpc::{self, Id, code};
use crate::wire::mirrored::{self, MirroredParam};
use crate::wire::stateless;

/// A `tools/call` the policy lets through under another name: where the name lies in the
/// message, and the child's name for it, as JSON.
pub struct Rename {
    pub span: Range<usize>,
    pub child_name: String,
}

/// What the bridge reads of a `tools/call`'s params to record it: leniently, since it only
/// reports the call (the child judges params it cannot read).
#[derive(serde::Deserialize)]
struct CallParams<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

impl Upstream {
    /// The record of `outgoing` if it is a `tools/call`, under the tool's name as the child
    /// knows it.
    pub(super) fn record_tool_call(&self, outgoing: &Outgoing<'_>) -> Option<ToolCallRecord> {
        if outgoing.method != "tools/call" {
            return None;
        }
        let params = outgoing
            .params
            .and_then(|params| serde_json::from_str::<CallParams<'_>>(params.get()).ok());
        let called = params.as_ref().and_then(|p| p.name.as_deref());
        let tool = called.map(|called| match self.settings.tools.call(called) {
            CallDecision::Allowed(child_name) => child_name,
            CallDecision::Hidden => called,
        });
        let sink = &self.tool_calls;
        let audited = sink.audited();
        let audit = (audited != Audited::Nothing).then(|| {
            Box::new(AuditFacts {
                sink: sink.clone(),
                tool: tool.map(Box::from),
                // A stateless request has no session of the client's (a lent server's is the
                // bridge's own).
                session: outgoing
                    .session
                    .as_ref()
                    .filter(|_| outgoing.stateless.is_none())
                    .map(|session| Box::from(session.id.as_str())),
                arguments: params
                    .as_ref()
                    .and_then(|p| p.arguments)
                    .filter(|_| audited == Audited::CallsWithArguments)
                    .map(RawValue::to_owned),
            })
        });
        Some(ToolCallRecord::start(sink.counter(tool), audit))
    }

    /// A `tools/call` refused before it could start (no server could be lent to it), recorded
    /// as ending so.
    pub fn tool_call_refused(&self, outgoing: &Outgoing<'_>, refusal: &Refused) {
        if let Some(record) = self.record_tool_call(outgoing) {
            record.refused(&refusal.message);
        }
    }

    /// How `session`'s client is shown the tools (a sessionless request: by `--repair-schemas`).
    pub fn view_of(&self, session: Option<&Arc<Session>>) -> View {
        match session {
            Some(session) => session.tools_view(),
            None if self.settings.repair_schemas == RepairSchemas::Always => View::Repaired,
            None => View::Plain,
        }
    }

    /// Answers a `tools/list` from the child's listing, cached or read now; `None` when the
    /// child is to be asked instead (a cursor the listing does not hold, a child that refused
    /// to list, one that is not running), so that the client gets the child's own answer.
    pub async fn list_tools(
        &self,
        session: Option<&Arc<Session>>,
        id: &Id<'_>,
        params: Option<&RawValue>,
        stateless: bool,
    ) -> Option<Bytes> {
        #[derive(serde::Deserialize)]
        struct Params {
            cursor: Option<String>,
        }
        let cursor = match params {
            Some(params) => serde_json::from_str::<Params>(params.get()).ok()?.cursor,
            None => None,
        };
        let own_server = session.is_some_and(|session| session.own_server().is_some());
        // A listing at hand answers at once: a sleeping server is not woken for it.
        let router = match self.router.catalog.current() {
            Some(_) if !own_server => self.router.clone(),
            _ => self.target_of(session).await.ok()?.router,
        };
        let deadline = self
            .settings
            .request_timeout
            .map(|limit| tokio::time::Instant::now() + limit);
        let listing = within_deadline(deadline, router.tools()).await;
        let listing = match listing {
            Ok(Ok(listing)) => listing,
            Ok(Err(AskError::Timeout(_))) | Err(_) => {
                return Some(jsonrpc::error_response(
                    Some(id.raw),
                    code::REQUEST_TIMEOUT,
                    "mcp-bridge: the MCP server did not list its tools in time",
                ));
            }
            Ok(Err(_)) => return None,
        };
        let result = listing.result(
            self.view_of(session),
            cursor.as_deref(),
            &self.settings.tools,
        )?;
        let answer = jsonrpc::result_response(id.raw, result.get().as_bytes());
        Some(if stateless {
            // The same list for every caller, unless callers bring servers of their own.
            let hint = stateless::CacheHint {
                ttl_ms: router.catalog.fresh_for().as_millis() as u64,
                public: self.settings.tenancy.is_none(),
            };
            Bytes::from(stateless::adapt_answer(vec![answer], Some(hint)).concat())
        } else {
            answer
        })
    }

    /// The parameters of the tool a client calls `called` that the tool's schema mirrors into
    /// headers (`x-mcp-header`), from the shared child's listing; none when the tool is not
    /// listed (the child then judges the call) or the listing cannot be had.
    pub async fn mirrored_params(&self, called: &str) -> Vec<MirroredParam> {
        let CallDecision::Allowed(child_name) = self.settings.tools.call(called) else {
            return Vec::new();
        };
        let Ok(listing) = self.router.tools().await else {
            return Vec::new();
        };
        listing
            .tools()
            .find(|tool| tool.get("name").and_then(Value::as_str) == Some(child_name))
            .and_then(|tool| tool.get("inputSchema"))
            .map(mirrored::mirrored_params)
            .unwrap_or_default()
    }

    /// Checks a `tools/call` (its fields read whole) against the policy: refused with the
    /// answer the client gets when the tool is hidden, or the rename to make on its way.
    pub(super) async fn check_tool_call(
        &self,
        target: &Target,
        fields: &Fields<'_>,
        id: &Id<'_>,
    ) -> Result<Option<Rename>, Refused> {
        let policy = &self.settings.tools;
        let Some(called) = fields.name.as_deref() else {
            return Ok(None);
        };
        let hidden = || {
            self.tool_calls_refused.fetch_add(1, Ordering::Relaxed);
            Refused::answer(id, code::INVALID_PARAMS, &format!("Unknown tool: {called}"))
        };
        let CallDecision::Allowed(child_name) = policy.call(called) else {
            return Err(hidden());
        };
        if policy.needs_annotations() {
            // Whether it is read-only is the child's listing to say: a tool it does not list
            // as such is not called.
            let listing = target.router.tools().await.map_err(|e| {
                Refused::answer(
                    id,
                    code::CHILD_UNAVAILABLE,
                    &format!("mcp-bridge: the MCP server's tools could not be listed: {e}"),
                )
            })?;
            if !listing
                .find(child_name)
                .is_some_and(|facts| policy.shows(&facts))
            {
                return Err(hidden());
            }
        }
        Ok((child_name != called).then(|| Rename {
            span: fields.name_span.clone().expect("a name read has its span"),
            child_name: jsonrpc::json_string(child_name),
        }))
    }

    /// The shared child's tools as clients without repair see them, and how many the policy
    /// hides: from the cached listing, or listed now.
    pub async fn shared_tools(&self) -> Result<(Vec<Value>, usize), AskError> {
        let listing = self.router.tools().await?;
        Ok(self.visible(&listing))
    }

    /// The tools the policy shows and how many it hides, if the shared child's tools are at
    /// hand (a metrics scrape lists nothing).
    pub fn tool_counts(&self) -> Option<(usize, usize)> {
        let listing = self.router.catalog.current()?;
        let (visible, hidden) = self.visible(&listing);
        Some((visible.len(), hidden))
    }

    fn visible(&self, listing: &Listing) -> (Vec<Value>, usize) {
        let tools = listing.shown_tools(&self.settings.tools);
        let hidden = listing.tools().count() - tools.len();
        (tools, hidden)
    }

    /// Calls refused because the policy hides the tool.
    pub fn tool_calls_refused(&self) -> u64 {
        self.tool_calls_refused.load(Ordering::Relaxed)
    }

    /// Once the shared child serves, lists its tools: their calls are counted under their
    /// names from the first (see [`super::tool_calls`]), and each name in the policy it does
    /// not list is warned of. Not for `--isolate` without a policy: every session lists its
    /// own child's tools.
    pub(super) async fn list_tools_once_serving(self: Arc<Self>) {
        let checks_policy = !self.settings.tools.is_empty();
        if !checks_policy && self.settings.server_per_session == ServerPerSession::Always {
            return;
        }
        // A lazy server is not woken for it: the check waits for its first child.
        self.supervisor.until_serving().await;
        let listing = match self.router.tools().await {
            Ok(listing) => listing,
            Err(e) if checks_policy => {
                warn!(server = %self.settings.name, "the tool policy cannot be checked: tools/list failed: {e}");
                return;
            }
            Err(_) => return,
        };
        if !checks_policy {
            return;
        }
        let names: Vec<&str> = listing
            .tools()
            .filter_map(|tool| tool.get("name")?.as_str())
            .collect();
        for unknown in self.settings.tools.unknown_names(&names) {
            warn!(
                server = %self.settings.name,
                "the tool policy names a tool the MCP server does not list: {unknown}"
            );
        }
    }
}
