//! The wire format, with no I/O: JSON-RPC envelopes and error objects ([`jsonrpc`]), the
//! credentials a request's headers present ([`credentials`]), long
//! answers recognised by their ends ([`sniff`]), the fields inside `params` the bridge routes by
//! and splicing them ([`fields`]), protocol versions ([`versions`]), the cached handshake
//! ([`initialize`]), the stateless 2026-07-28 form ([`stateless`]), its `subscriptions/listen`
//! ([`listen`]), its headers that mirror the body ([`mirrored`]), what a `tools/call` answer
//! says ([`tool_answer`]), the W3C trace context a request carries in `_meta`
//! ([`trace_meta`]), and times as RFC 3339 ([`rfc3339`]).

pub mod credentials;
pub mod fields;
pub mod initialize;
pub mod jsonrpc;
pub mod listen;
pub mod mirrored;
pub mod rfc3339;
pub mod sniff;
pub mod stateless;
pub mod tool_answer;
pub mod trace_meta;
pub mod versions;
