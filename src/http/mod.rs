//! The HTTP side: the accept loop ([`mod@listen`]) on the connections it bounds ([`connections`],
//! [`tls`]), routing and the request log ([`route`]) and span ([`request_trace`]), what a listener serves ([`site`]), the
//! access policy ([`access`]), one module per transport ([`streamable`] with its
//! [`initialize`], [`batch`] and [`stateless`] forms, the latter's [`subscriptions`],
//! [`legacy_sse`]), what they share
//! ([`request`], [`request_body`], [`messages`], [`answers`] with [`resumable`] streams, [`reply`], [`sse`],
//! [`body`]),
//! and the pages for people and probes ([`status`], [`health`]).

pub mod access;
pub mod answers;
pub mod batch;
pub mod body;
pub mod connections;
pub mod health;
pub mod initialize;
pub mod legacy_sse;
pub mod listen;
pub mod messages;
pub mod reply;
pub mod request;
pub mod request_body;
pub mod request_trace;
pub mod resumable;
pub mod route;
pub mod site;
pub mod sse;
pub mod stateless;
pub mod status;
pub mod streamable;
pub mod subscriptions;
pub mod tls;

pub use listen::listen;
pub use site::Site;
