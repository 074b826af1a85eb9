//! One server run once per tenant: a request's credentials (its bearer token in the tenants
//! file, the values of the headers mapped to the server's environment) pick its tenant, and
//! each tenant has a warm upstream of its own, started on its first request with those
//! credentials in its server's environment, shared by that tenant's sessions only. A request
//! without its credentials is refused, never served by another tenant's server. The pool is
//! bounded: an idle tenant stops after a while, and at the limit the least recently used idle
//! one makes room; a busy one never does.
//!
//! Credentials are never kept readable: a tenant is known by a keyed hash of them (the key is
//! this process's own, or derived from `--session-secret` so that replicas agree) and shown by
//! its name in the tenants file, or by a short keyed hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::HeaderMap;
use ring::hmac;
use tokio::task::JoinHandle;
use tracing::info;

use super::tenant_book::{TenantBookCell, TenantRecord};
use super::tool_calls::ToolCallReport;
use crate::sync::Lock;
use crate::upstream::settings::Tenancy;
use crate::upstream::{ServerSettings, Start, Upstream};
use crate::wire::credentials::presented_credentials;

/// Why a request has no tenant's server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantRefusal {
    #[error("this server runs with each user's own credentials: the request lacks the header {0}")]
    MissingHeader(String),
    #[error("this server runs with each user's own credentials: the header {0} is not valid text")]
    InvalidHeader(String),
    #[error("this server runs for the tenants of its tenants file: send a tenant's token")]
    UnknownToken,
    #[error(
        "every tenant's server is busy (--max-tenants {0}) and none can be stopped; retry shortly"
    )]
    Full(usize),
}

/// A request's tenant: who it is (a keyed hash of its credentials) and what its server gets.
struct Identity {
    key: [u8; 32],
    name: String,
    env: Vec<(String, String)>,
    record: Option<Arc<TenantRecord>>,
}

/// One tenant with its server running.
pub struct Tenant {
    /// Its name in logs, metrics and the status page.
    pub name: String,
    pub upstream: Arc<Upstream>,
    /// Its entry of the tenants file, if it was picked by token.
    record: Option<Arc<TenantRecord>>,
    /// When a request last came, in milliseconds since the pool's epoch.
    last_used: AtomicU64,
    /// Requests being handled for it now (from before a session or a call exists, such as an
    /// `initialize` waiting for the server's handshake).
    leased: AtomicUsize,
}

/// A request's hold on its tenant's server: while one is held, the tenant is not idle.
pub struct Lease {
    upstream: Arc<Upstream>,
    tenant: Option<Arc<Tenant>>,
}

impl Lease {
    /// The server's own upstream, not a tenant's.
    pub fn of_server(upstream: Arc<Upstream>) -> Lease {
        Lease {
            upstream,
            tenant: None,
        }
    }

    fn of_tenant(tenant: Arc<Tenant>) -> Lease {
        tenant.leased.fetch_add(1, Ordering::SeqCst);
        Lease {
            upstream: tenant.upstream.clone(),
            tenant: Some(tenant),
        }
    }

    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(tenant) = &self.tenant {
            tenant.leased.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Tenant {
    /// Nothing of its server is in use: no request being handled, no session, no call, no
    /// session's own server.
    fn is_idle(&self) -> bool {
        self.leased.load(Ordering::SeqCst) == 0
            && self.upstream.sessions().count() == 0
            && self.upstream.requests_in_flight() == 0
            && self.upstream.session_servers() == 0
    }
}

/// The tenants of one server.
pub struct Tenants {
    base: ServerSettings,
    tenancy: Tenancy,
    book: Option<Arc<TenantBookCell>>,
    grace: Duration,
    /// The server's report of its tool calls, each tenant's made from it.
    tool_calls: Arc<ToolCallReport>,
    /// Keys the hashes tenants are known by.
    key: hmac::Key,
    epoch: Instant,
    running: Mutex<HashMap<[u8; 32], Arc<Tenant>>>,
    /// One tenant's server starts at a time, so that the limit holds.
    starting: tokio::sync::Mutex<()>,
    evicted: AtomicU64,
    reaper: Mutex<Option<JoinHandle<()>>>,
}

impl Tenants {
    /// The pool of `base` (whose `tenancy` is set); no server runs until a tenant asks.
    pub fn new(
        base: ServerSettings,
        book: Option<Arc<TenantBookCell>>,
        grace: Duration,
        tool_calls: Arc<ToolCallReport>,
    ) -> Arc<Tenants> {
        let tenancy = base.tenancy.clone().expect("a server run per tenant");
        // Replicas sharing --session-secret know a tenant by the same hash, so that its signed
        // session ids hold on each of them; without one, the key is this process's own.
        let secret = match &base.session_secret {
            Some(shared) => shared.derive("mcp-bridge tenants"),
            None => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).expect("the OS random number generator is available");
                secret
            }
        };
        let tenants = Arc::new(Tenants {
            base,
            tenancy,
            book,
            grace,
            tool_calls,
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            epoch: Instant::now(),
            running: Mutex::default(),
            starting: tokio::sync::Mutex::new(()),
            evicted: AtomicU64::new(0),
            reaper: Mutex::new(None),
        });
        let weak = Arc::downgrade(&tenants);
        *tenants.reaper.locked() = Some(tokio::spawn(stop_idle_tenants(weak)));
        tenants
    }

    pub fn settings(&self) -> &ServerSettings {
        &self.base
    }

    /// The server of the request's tenant, started now if it is not running, held for the
    /// request (see [`Lease`]).
    pub async fn upstream_for(
        self: &Arc<Self>,
        headers: &HeaderMap,
    ) -> Result<Lease, TenantRefusal> {
        let identity = self.identify(headers)?;
        if let Some(lease) = self.lease(&identity.key) {
            return Ok(lease);
        }
        let _one_at_a_time = self.starting.lock().await;
        if let Some(lease) = self.lease(&identity.key) {
            return Ok(lease);
        }
        if self.running.locked().len() >= self.tenancy.max_tenants {
            let Some(lru) = self.take_least_recently_used_idle() else {
                return Err(TenantRefusal::Full(self.tenancy.max_tenants));
            };
            info!(server = %self.base.name, tenant = %lru.name, "stopping the least recently used idle tenant to make room");
            self.evicted.fetch_add(1, Ordering::Relaxed);
            retire(&lru);
        }
        let tenant = self.start(identity).await;
        Ok(Lease::of_tenant(tenant))
    }

    /// The server of the request's tenant if it runs now.
    pub fn running_upstream_for(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Lease>, TenantRefusal> {
        let identity = self.identify(headers)?;
        Ok(self.lease(&identity.key))
    }

    /// The tenants with a server running now.
    pub fn running(&self) -> Vec<Arc<Tenant>> {
        self.running.locked().values().cloned().collect()
    }

    /// Tenants stopped to make room for another.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// After the tenants file was read again: the tenants it no longer holds as they were
    /// (removed, or given another environment) stop; their next request starts them anew.
    pub fn tenants_file_changed(&self) {
        let Some(book) = self.book.as_ref().map(|book| book.current()) else {
            return;
        };
        let stale: Vec<Arc<Tenant>> = self
            .running()
            .into_iter()
            .filter(|tenant| tenant.record.as_ref().is_some_and(|r| !book.holds(r)))
            .collect();
        for tenant in stale {
            info!(server = %self.base.name, tenant = %tenant.name, "stopping a tenant the tenants file changed");
            self.stop(&tenant);
        }
    }

    /// Stops every tenant's server side by side.
    pub async fn stop_all(&self) {
        if let Some(reaper) = self.reaper.locked().take() {
            reaper.abort();
        }
        let tenants: Vec<Arc<Tenant>> = self.running.locked().drain().map(|(_, t)| t).collect();
        let mut stopping = tokio::task::JoinSet::new();
        for tenant in tenants {
            stopping.spawn(async move { tenant.upstream.stop().await });
        }
        stopping.join_all().await;
    }

    /// Who sent `headers`, from the credentials the server is configured to run with.
    fn identify(&self, headers: &HeaderMap) -> Result<Identity, TenantRefusal> {
        let mut hash = hmac::Context::with_key(&self.key);
        let mut env = Vec::new();
        let mut record = None;
        if self.tenancy.by_token {
            let book = self
                .book
                .as_ref()
                .ok_or(TenantRefusal::UnknownToken)?
                .current();
            let found = presented_credentials(headers)
                .find_map(|token| book.find(&token))
                .ok_or(TenantRefusal::UnknownToken)?;
            hash.update(b"tenant\0");
            hash.update(found.name.as_bytes());
            for (var, value) in &found.env {
                hash.update(&[0]);
                hash.update(var.as_bytes());
                hash.update(&[0]);
                hash.update(value.as_bytes());
            }
            env.extend(found.env.iter().cloned());
            record = Some(found);
        }
        for (var, header) in &self.tenancy.env_from_headers {
            let value = headers
                .get(header.as_str())
                .ok_or_else(|| TenantRefusal::MissingHeader(header.clone()))?;
            let value = value
                .to_str()
                .map_err(|_| TenantRefusal::InvalidHeader(header.clone()))?
                .trim();
            if value.is_empty() {
                return Err(TenantRefusal::MissingHeader(header.clone()));
            }
            hash.update(b"\0header\0");
            hash.update(var.as_bytes());
            hash.update(&[0]);
            hash.update(value.as_bytes());
            env.push((var.clone(), value.to_owned()));
        }
        let tag = hash.sign();
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        let short: String = key[..4].iter().map(|b| format!("{b:02x}")).collect();
        let name = match &record {
            Some(record) if self.tenancy.env_from_headers.is_empty() => record.name.clone(),
            Some(record) => format!("{}-{short}", record.name),
            None => format!("t-{short}"),
        };
        Ok(Identity {
            key,
            name,
            env,
            record,
        })
    }

    /// The running tenant `key`, held for a request. Taken under the pool's lock, so that no
    /// eviction can pick it between being found and being held.
    fn lease(&self, key: &[u8; 32]) -> Option<Lease> {
        let running = self.running.locked();
        let tenant = running.get(key)?;
        tenant.last_used.store(self.now(), Ordering::Relaxed);
        Some(Lease::of_tenant(tenant.clone()))
    }

    /// Takes the least recently used idle tenant out of the pool. Chosen and taken under the
    /// pool's lock, as leases are given, so that no request can take it up in between.
    fn take_least_recently_used_idle(&self) -> Option<Arc<Tenant>> {
        let mut running = self.running.locked();
        let key = *running
            .iter()
            .filter(|(_, tenant)| tenant.is_idle())
            .min_by_key(|(_, tenant)| tenant.last_used.load(Ordering::Relaxed))?
            .0;
        running.remove(&key)
    }

    /// Takes `tenant` out of the pool if it has been idle for `idle_ms`, under the pool's lock.
    fn take_if_idle_for(&self, tenant: &Arc<Tenant>, idle_ms: u64, now: u64) -> bool {
        let mut running = self.running.locked();
        let quiet_for = now.saturating_sub(tenant.last_used.load(Ordering::Relaxed));
        if quiet_for < idle_ms || !tenant.is_idle() {
            return false;
        }
        let before = running.len();
        running.retain(|_, kept| !Arc::ptr_eq(kept, tenant));
        running.len() < before
    }

    /// Starts the tenant's server (in the background: its requests wait for the handshake).
    async fn start(self: &Arc<Self>, identity: Identity) -> Arc<Tenant> {
        let mut settings = self.base.clone();
        settings.tenancy = None;
        // A tenant's server starts on its tenant's first request and stops when idle for
        // tenantIdle: the pool does what lazy and idleTimeout do for one server.
        settings.lazy = false;
        settings.idle_timeout = None;
        settings.name = format!("{}/{}", self.base.name, identity.name);
        settings.child.label = Some(settings.name.clone());
        settings.child.env.extend(
            identity
                .env
                .into_iter()
                .map(|(var, value)| (var.into(), value.into())),
        );
        let tool_calls = self.tool_calls.for_tenant(&identity.name);
        let (upstream, supervision) =
            Upstream::start(settings, self.grace, Start::Background, tool_calls)
                .await
                .expect("a server started in the background does not fail to start");
        info!(server = %self.base.name, tenant = %identity.name, "starting a tenant's server");
        let tenant = Arc::new(Tenant {
            name: identity.name,
            upstream,
            record: identity.record,
            last_used: AtomicU64::new(self.now()),
            leased: AtomicUsize::new(0),
        });
        self.running.locked().insert(identity.key, tenant.clone());
        // A server its restart policy gave up on leaves the pool: the next request starts it.
        let pool = Arc::downgrade(self);
        let ended = tenant.clone();
        tokio::spawn(async move {
            let _ = supervision.await;
            if let Some(pool) = pool.upgrade() {
                pool.forget(&ended);
            }
        });
        tenant
    }

    /// Takes `tenant` out of the pool; its server finishes what is in flight and stops.
    fn stop(&self, tenant: &Arc<Tenant>) {
        self.forget(tenant);
        retire(tenant);
    }

    fn forget(&self, tenant: &Arc<Tenant>) {
        self.running
            .locked()
            .retain(|_, running| !Arc::ptr_eq(running, tenant));
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Stops the tenants idle for `--tenant-idle`, for as long as the pool lives.
async fn stop_idle_tenants(pool: Weak<Tenants>) {
    let Some(idle) = pool.upgrade().map(|pool| pool.tenancy.idle) else {
        return;
    };
    let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::time::sleep(period).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let now = pool.now();
        for tenant in pool.running() {
            if pool.take_if_idle_for(&tenant, idle_ms, now) {
                info!(server = %pool.base.name, tenant = %tenant.name, "stopping an idle tenant's server");
                retire(&tenant);
            }
        }
    }
}

/// A tenant out of the pool: its server finishes what is in flight and stops.
fn retire(tenant: &Arc<Tenant>) {
    let upstream = tenant.upstream.clone();
    tokio::spawn(async move { upstream.retire().await });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::ChildCommand;

    fn pool(tenancy: Tenancy, book: Option<Arc<TenantBookCell>>) -> Arc<Tenants> {
        let mut settings = ServerSettings::new(ChildCommand {
            program: "unused".into(),
            args: vec![],
            env: vec![],
            cwd: None,
            guard: None,
            label: None,
        });
        settings.tenancy = Some(tenancy);
        let server = Arc::new(settings.name.clone());
        let metrics = crate::servers::metrics::Metrics::new().tool_calls_of(&server);
        let tool_calls = ToolCallReport::new(server, metrics, None);
        Tenants::new(settings, book, Duration::from_secs(1), tool_calls)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    fn by_header() -> Tenancy {
        Tenancy {
            env_from_headers: vec![("API_KEY".into(), "x-api-key".into())],
            by_token: false,
            max_tenants: 2,
            idle: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn the_header_values_pick_the_tenant_and_are_not_kept_readable() {
        let pool = pool(by_header(), None);
        let alice = pool
            .identify(&headers(&[("x-api-key", "alice-secret")]))
            .unwrap();
        let again = pool
            .identify(&headers(&[("x-api-key", " alice-secret ")]))
            .unwrap();
        let bob = pool
            .identify(&headers(&[("x-api-key", "bob-secret")]))
            .unwrap();
        assert_eq!(alice.key, again.key);
        assert_ne!(alice.key, bob.key);
        assert_eq!(alice.env, [("API_KEY".into(), "alice-secret".into())]);
        assert!(
            alice.name.starts_with("t-") && alice.name.len() == 10,
            "{}",
            alice.name
        );
        assert!(!alice.name.contains("alice"));
        assert_eq!(
            pool.identify(&HeaderMap::new()).err(),
            Some(TenantRefusal::MissingHeader("x-api-key".into()))
        );
        assert_eq!(
            pool.identify(&headers(&[("x-api-key", "  ")])).err(),
            Some(TenantRefusal::MissingHeader("x-api-key".into()))
        );
    }

    #[tokio::test]
    async fn a_token_picks_its_tenant_of_the_file() {
        let dir = std::env::temp_dir().join(format!("mcp-bridge-tenants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenants.json");
        std::fs::write(
            &file,
            r#"{"tenants": {"alice": {"token": "alice-token-0123456789", "env": {"K": "a"}}}}"#,
        )
        .unwrap();
        let book = Arc::new(TenantBookCell::load(&file).unwrap());
        let tenancy = Tenancy {
            env_from_headers: vec![],
            by_token: true,
            ..by_header()
        };
        let pool = pool(tenancy, Some(book));
        let alice = pool
            .identify(&headers(&[(
                "authorization",
                "Bearer alice-token-0123456789",
            )]))
            .unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.env, [("K".into(), "a".into())]);
        let by_key = pool
            .identify(&headers(&[("x-api-key", "alice-token-0123456789")]))
            .unwrap();
        assert_eq!(by_key.key, alice.key);
        for wrong in [
            headers(&[("authorization", "Bearer alice-token-012345678")]),
            HeaderMap::new(),
        ] {
            assert_eq!(
                pool.identify(&wrong).err(),
                Some(TenantRefusal::UnknownToken)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
