//! Sessions: the random `Mcp-Session-Id` each client gets from `initialize` ([`ids`]), what was
//! agreed with it ([`capabilities`], [`state`]), its event stream ([`events`]), and the table
//! of a server's sessions with its bounds ([`table`]): a maximum count (the least recently
//! used session makes room) and expiry of sessions whose client never said goodbye. With signed
//! ids (`--session-secret`), a session opened by another replica is taken up on its first
//! request. A session knows nothing of servers: the one of its own it may have is of the
//! caller's type.

pub mod capabilities;
pub mod events;
pub mod ids;
pub mod state;
pub mod table;

pub use capabilities::{ClientCapabilities, ClientHello};
pub use state::{NewSession, Session, Transport};
pub use table::Sessions;
