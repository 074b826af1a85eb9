//! The id multiplexer: hands out a fresh bridge id for every request sent to the child and
//! routes the child's answer, and what it says about the request before answering, back to
//! whoever is waiting on that id ([`table`]), through that request's [`inbox`].

pub mod inbox;
pub mod table;

pub use inbox::{Delivery, Inbox, NoAnswer};
pub use table::{Mux, Ticket};
