//! The tools a client is shown: the operator's policy (which tools, under which names), the
//! schema repair for clients that read schemas narrowly (Dify), and the listing of a server's
//! tools both are applied to.

pub mod glob;
pub mod listing;
pub mod policy;
pub mod repair;

pub use listing::{Listing, Page, View};
pub use policy::{CallDecision, ToolFacts, ToolPolicy};
