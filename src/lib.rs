//! mcp-bridge: serves stdio MCP servers over MCP Streamable HTTP (and the legacy HTTP+SSE
//! transport), one warm child per server shared by the clients that need nothing more, a child
//! of its own for each client that can answer the server's requests.
//!
//! Layers, lowest first, each a folder (or file) importing only the layers before it in this
//! list (`tests/layers.rs` checks it):
//! - [`sync`]: locks that keep working after a panic.
//! - [`wire`]: the wire format: JSON-RPC envelopes, the fields routed by, splicing, protocol
//!   versions, the cached handshake, the stateless revision's form. No I/O.
//! - [`tools`]: the tools a client is shown: the operator's tool policy, schema repair for
//!   clients that read schemas narrowly (Dify), the listing both apply to. No I/O.
//! - [`child`]: the child process: spawning it under its guard, its stdin, its stdout read
//!   line by line and reported through a small trait; it knows no sessions.
//! - [`mux`]: bridge ids and what arrives for each request in flight.
//! - [`session`]: sessions, their ids, their event streams.
//! - [`upstream`]: one server's transport-neutral core: its settings, calls, sessions opened
//!   by `initialize`, routing what the child says, supervision, the handshake, children of
//!   sessions' own, the bridge's own requests.
//! - [`servers`]: the servers of a listener: one bridged server, the gateway of all of them,
//!   the config file, the metrics.
//! - [`http`]: the HTTP side: connections, one module per transport, shared request and reply
//!   helpers.
//! - [`serve`]: a whole run: [`run()`](serve::run::run), signals.
//! - [`front`]: the command line, `doctor`, packaging, the demo server.

pub mod child;
pub mod front;
pub mod http;
pub mod mux;
pub mod serve;
pub mod servers;
pub mod session;
pub mod sync;
pub mod tools;
pub mod upstream;
pub mod wire;

pub use serve::{Config, RunError, run};
