//! The child process: spawned directly under its guard, in its own process group
//! ([`process`], [`running`]), fed newline-delimited JSON on stdin ([`stdin`]), read line by
//! line from stdout ([`output`]), its stderr logged, and never allowed to outlive the bridge
//! ([`guard`]). It knows no sessions: it reports what it reads to a [`Listener`].

pub mod command;
pub mod guard;
pub mod listener;
pub mod output;
pub mod process;
pub mod running;
pub mod stdin;

pub use command::ChildCommand;
pub use listener::{Answer, Listener, Noise};
pub use output::ChildLimits;
pub use running::{Child, ChildGone, Exit, SpawnError};
