//! One server's transport-neutral core ([`server::Upstream`]): its settings ([`settings`]),
//! its calls ([`call`], sent by [`sending`]), sessions opened by `initialize` ([`open`]), what clients send besides
//! requests ([`client`]), what its child says taken to the client it belongs to ([`router`],
//! with [`origin`], [`child_requests`], [`subscriptions`], [`tasks`] and [`undelivered`]),
//! supervision and restarts ([`supervisor`]), the handshake ([`handshake`]), children of
//! sessions' own ([`isolation`]), servers lent to the 2026 revision's calls that ask for input
//! ([`rounds`], [`lending`]), their `subscriptions/listen` ([`listeners`]), calls kept for a client to resume their
//! stream ([`resumable`]), the bridge's own requests to a child ([`requests`]), the tools clients are shown
//! ([`catalog`], [`tools`]), each `tools/call` from its start to its end ([`tool_calls`]), and
//! the spans of requests and their round trips to the child ([`trace`]).

pub mod call;
pub mod catalog;
pub mod child_requests;
pub mod client;
pub mod handshake;
pub mod isolation;
pub mod lending;
pub mod listeners;
pub mod open;
pub mod origin;
pub mod requests;
pub mod resumable;
pub mod rounds;
pub mod router;
pub mod sending;
pub mod server;
pub mod settings;
pub mod subscriptions;
pub mod supervisor;
pub mod tasks;
pub mod tool_calls;
pub mod tools;
pub mod trace;
pub mod undelivered;

pub use call::{Call, Outgoing, Refused, Step, Steps};
pub use client::Canceller;
pub use handshake::StartError;
pub use isolation::Session;
pub use open::{Initialize, Opening};
pub use rounds::{Asker, Loan, Resumed, RoundCall};
pub use server::{Start, Upstream};
pub use settings::{RestartPolicy, ServerPerSession, ServerSettings};
