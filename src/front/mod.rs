//! The front: the command line ([`cli`]), `mcp-bridge doctor` ([`doctor`]), shell completions,
//! the man page and the Docker healthcheck ([`packaging`]), and the built-in demo server
//! ([`demo`]).

pub mod cli;
pub mod demo;
pub mod doctor;
pub mod packaging;
