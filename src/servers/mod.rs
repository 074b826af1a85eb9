//! The servers of a listener: one bridged server ([`bridge`]), the gateway that holds every
//! server of a listener, starts them and reloads them ([`gateway`]), the `mcpServers` config
//! file ([`config`]), and the Prometheus metrics ([`metrics`]).

pub mod bridge;
pub mod config;
pub mod gateway;
pub mod metrics;
