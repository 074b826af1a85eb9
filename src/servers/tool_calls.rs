//! Where one server's `tools/call`s go as they end (or, for a server run per tenant, one
//! tenant's): counted under the tool's name in the metrics, and written to the audit log with
//! the server's name and the tenant's.

use std::sync::Arc;

use super::audit::AuditLog;
use super::metrics::ToolCallMetrics;
use crate::tools::Listing;
use crate::upstream::tool_calls::{Audited, EndedToolCall, ToolCallSink, ToolCounter};

/// One server's (or one tenant's) report of its tool calls.
#[derive(Debug)]
pub struct ToolCallReport {
    server: Arc<String>,
    /// The tenant's name, for a tenant's server.
    tenant: Option<String>,
    /// Shared by the server's tenants.
    metrics: Arc<ToolCallMetrics>,
    audit: Option<Arc<AuditLog>>,
}

impl ToolCallReport {
    pub fn new(
        server: Arc<String>,
        metrics: Arc<ToolCallMetrics>,
        audit: Option<Arc<AuditLog>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            server,
            tenant: None,
            metrics,
            audit,
        })
    }

    /// The same report for one tenant of the server.
    pub fn for_tenant(&self, tenant: &str) -> Arc<Self> {
        Arc::new(Self {
            server: self.server.clone(),
            tenant: Some(tenant.to_owned()),
            metrics: self.metrics.clone(),
            audit: self.audit.clone(),
        })
    }
}

impl ToolCallSink for ToolCallReport {
    fn listed(&self, listing: &Listing) {
        self.metrics.listed(
            listing
                .tools()
                .filter_map(|tool| tool.get("name")?.as_str()),
        );
    }

    fn counter(&self, tool: Option<&str>) -> Arc<dyn ToolCounter> {
        self.metrics.series(tool)
    }

    fn audited(&self) -> Audited {
        self.audit
            .as_ref()
            .map_or(Audited::Nothing, |audit| audit.audited())
    }

    fn audit(&self, call: &EndedToolCall<'_>) {
        if let Some(audit) = &self.audit {
            audit.write(&self.server, self.tenant.as_deref(), call);
        }
    }
}
