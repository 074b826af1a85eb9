//! `mcp-bridge doctor`: starts a stdio MCP server as the bridge would, runs the handshake,
//! lists its tools, prompts and resources, and reports what would break Dify or other
//! clients. The command ([`command`]) checks each server ([`check`]) while listening to what it
//! says ([`listener`]), judges what it saw ([`findings`], [`schemas`], [`tools`]) and prints a
//! [`report`].

pub mod check;
pub mod command;
pub mod findings;
pub mod listener;
pub mod report;
pub mod schemas;
pub mod text;
pub mod tools;

pub use command::run;
