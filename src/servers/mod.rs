//! The servers of a listener: one bridged server ([`bridge`]), the gateway that holds every
//! server of a listener, starts them and reloads them ([`gateway`]), the `mcpServers` config
//! file ([`config`]), the Prometheus metrics ([`metrics`]), and servers run once per tenant
//! ([`tenants`], with the tenants file: [`tenant_book`]).

pub mod bridge;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod tenant_book;
pub mod tenants;
