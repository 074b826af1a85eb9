//! The servers of a listener: one bridged server ([`bridge`]), the gateway that holds every
//! server of a listener, starts them and reloads them ([`gateway`]), the `mcpServers` config
//! file ([`config`]), the Prometheus metrics ([`metrics`]), servers run once per tenant
//! ([`tenants`], with the tenants file: [`tenant_book`]), and where their tool calls are
//! reported ([`tool_calls`]): the metrics and the audit log ([`audit`]).

pub mod audit;
pub mod bridge;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod tenant_book;
pub mod tenants;
pub mod tool_calls;
