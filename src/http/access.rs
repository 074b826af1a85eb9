//! Who may use the bridge: the shared token (`Authorization: Bearer` or `X-API-Key`) or a
//! tenant's token of the tenants file, the `Origin` and `Host` checks against DNS rebinding,
//! and CORS for browser clients.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Request, header};

use crate::servers::tenant_book::TenantBookCell;
use crate::wire::credentials::presented_credentials;

/// The access rules, from the command line.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    /// Required on every request when set (or a tenant's token, with a tenants file).
    pub auth_token: Option<String>,
    /// With a tenants file, each tenant's token is let in too.
    pub tenant_tokens: Option<Arc<TenantBookCell>>,
    /// Origins allowed besides localhost ones; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// When not empty, the `Host` header must name one of these (with or without the port).
    pub allowed_hosts: Vec<String>,
    /// When set (`*` or one origin), browsers may call the endpoint from that origin.
    pub cors_origin: Option<String>,
}

/// Why a request is refused before it is read.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    MissingOrWrongToken,
    Origin(String),
    Host(String),
}

/// The request headers a browser client may send, for CORS preflights.
const CORS_ALLOW_HEADERS: &str = "Content-Type, Accept, Authorization, X-API-Key, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID";

impl AccessPolicy {
    /// Checks Host, then Origin, then the token.
    pub fn check<B>(&self, request: &Request<B>) -> Result<(), Denied> {
        let headers = request.headers();
        if !self.allowed_hosts.is_empty() {
            // The target's own authority (absolute form, or HTTP/2's :authority) is the host the
            // request is for, whatever its Host header says (RFC 9112, section 3.2.2).
            let host = request
                .uri()
                .authority()
                .map(|a| a.as_str())
                .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
                .unwrap_or("");
            if !self.host_allowed(host) {
                return Err(Denied::Host(host.to_owned()));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(Denied::Origin(origin.to_owned()));
            }
        }
        let shared = self
            .auth_token
            .as_ref()
            .map(|token| presents_token(headers, token));
        let tenant = self.tenant_tokens.as_ref().map(|book| {
            let book = book.current();
            presented_credentials(headers).any(|given| book.find(&given).is_some())
        });
        match (shared, tenant) {
            (None, None) | (Some(true), _) | (_, Some(true)) => Ok(()),
            _ => Err(Denied::MissingOrWrongToken),
        }
    }

    /// Whether the request carries the shared token, or none is required: what may see why a
    /// server is down (with a tenants file and no shared token, nobody).
    pub fn presents_token(&self, headers: &HeaderMap) -> bool {
        match &self.auth_token {
            Some(token) => presents_token(headers, token),
            None => self.tenant_tokens.is_none(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host) || allowed.eq_ignore_ascii_case(name))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        is_localhost_origin(origin)
            || self
                .allowed_origins
                .iter()
                .chain(&self.cors_origin)
                .any(|allowed| {
                    allowed == "*" || allowed.trim_end_matches('/').eq_ignore_ascii_case(origin)
                })
    }

    /// The CORS headers for a response to a request from `origin`, when CORS is on.
    pub fn add_cors_headers(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        let (Some(allowed), Some(origin)) = (&self.cors_origin, origin) else {
            return;
        };
        let value = if allowed == "*" {
            HeaderValue::from_static("*")
        } else if origin.to_str().is_ok_and(|o| {
            o.trim_end_matches('/')
                .eq_ignore_ascii_case(allowed.trim_end_matches('/'))
        }) {
            origin.clone()
        } else {
            return;
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Mcp-Session-Id"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }

    /// The extra headers of a preflight answer.
    pub fn add_preflight_headers(&self, headers: &mut HeaderMap) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }

    pub fn cors_enabled(&self) -> bool {
        self.cors_origin.is_some()
    }
}

/// `Authorization: Bearer TOKEN` or `X-API-Key: TOKEN` (what Dify's custom headers send).
fn presents_token(headers: &HeaderMap, token: &str) -> bool {
    // Every candidate is compared, so timing says nothing about which header matched.
    presented_credentials(headers).fold(false, |found, given| {
        constant_time_eq(given.as_bytes(), token.as_bytes()) | found
    })
}

/// Compares without stopping at the first difference, so response time does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    difference == 0
}

fn is_localhost_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let name = host_name(rest);
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]"
}

/// `example.com:8000` → `example.com`; `[::1]:8000` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::post("/mcp");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn tokens_are_accepted_as_bearer_or_api_key() {
        let policy = AccessPolicy {
            auth_token: Some("s3cret".into()),
            ..Default::default()
        };
        assert!(
            policy
                .check(&request(&[("authorization", "Bearer s3cret")]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request(&[("authorization", "bearer  s3cret")]))
                .is_ok()
        );
        assert!(policy.check(&request(&[("x-api-key", "s3cret")])).is_ok());
        for bad in [
            vec![],
            vec![("authorization", "Bearer s3cre")],
            vec![("authorization", "Basic s3cret")],
            vec![("x-api-key", "S3CRET")],
        ] {
            assert_eq!(
                policy.check(&request(&bad)),
                Err(Denied::MissingOrWrongToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn localhost_origins_pass_others_need_allowing() {
        let mut policy = AccessPolicy::default();
        for origin in [
            "http://localhost:6274",
            "https://127.0.0.1",
            "http://[::1]:3000",
        ] {
            assert!(
                policy.check(&request(&[("origin", origin)])).is_ok(),
                "{origin}"
            );
        }
        assert!(
            policy.check(&request(&[])).is_ok(),
            "no Origin: not a browser"
        );
        let evil = request(&[("origin", "http://evil.example")]);
        assert!(matches!(policy.check(&evil), Err(Denied::Origin(_))));
        assert!(matches!(
            policy.check(&request(&[("origin", "http://localhost.evil.example")])),
            Err(Denied::Origin(_))
        ));
        policy.allowed_origins.push("http://evil.example".into());
        assert!(policy.check(&evil).is_ok());
    }

    #[test]
    fn host_check_is_off_until_configured() {
        let mut policy = AccessPolicy::default();
        let public = request(&[("host", "abc.ngrok-free.app")]);
        assert!(policy.check(&public).is_ok());
        policy.allowed_hosts = vec!["localhost".into(), "127.0.0.1:8000".into()];
        assert!(matches!(policy.check(&public), Err(Denied::Host(_))));
        assert!(
            policy
                .check(&request(&[("host", "localhost:9999")]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request(&[("host", "127.0.0.1:8000")]))
                .is_ok()
        );
    }

    #[test]
    fn host_names_drop_ports() {
        assert_eq!(host_name("a.b:80"), "a.b");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("a.b"), "a.b");
    }
}
