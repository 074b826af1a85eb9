//! The front: the command line ([`cli`], its values [`values`], turned into a run's
//! configuration by [`usage`]), `mcp-bridge doctor` ([`doctor`]), shell completions,
//! the man page and the Docker healthcheck ([`packaging`]), and the built-in demo server
//! ([`demo`]).

pub mod cli;
pub mod demo;
pub mod doctor;
pub mod packaging;
pub mod usage;
pub mod values;
