//! Session ids: 128 random bits as hex, or, with `--session-secret`, self-contained ids signed
//! with HMAC-SHA256 that carry what a replica needs to serve the session (the negotiated
//! protocol version and the client's capabilities), so that any replica sharing the secret
//! accepts a session another one opened.
//!
//! A signed id is `v1.<payload>.<tag>`, both parts unpadded base64url. The payload is a format
//! byte, a capabilities byte, 16 random bytes and the protocol version; the tag is the HMAC of
//! the server's name, a zero byte and the payload, so an id opened for one server of a config
//! file is not accepted by another.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use super::capabilities::ClientCapabilities;
use crate::tools::View;
use crate::wire::versions;

/// The secret the replicas share, as given; shown nowhere.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(Arc<str>);

/// Shorter secrets are refused: they could be guessed, and with them any session forged.
pub const MIN_SECRET_CHARS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--session-secret is {0} characters; use at least {MIN_SECRET_CHARS} random ones (e.g. the output of `openssl rand -hex 32`), the same for every replica"
)]
pub struct WeakSecret(usize);

impl SessionSecret {
    pub fn new(secret: &str) -> Result<Self, WeakSecret> {
        let chars = secret.trim().chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(WeakSecret(chars));
        }
        Ok(Self(secret.trim().into()))
    }

    /// A key of its own for `purpose`, the same on every replica with this secret.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_bytes());
        let tag = hmac::sign(&key, purpose.as_bytes());
        let mut derived = [0u8; 32];
        derived.copy_from_slice(tag.as_ref());
        derived
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(…)")
    }
}

/// What a signed id says about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub protocol_version: &'static str,
    pub client: ClientCapabilities,
    /// How the client is shown the tools.
    pub tools: View,
}

/// Makes and checks one server's session ids.
pub enum SessionIds {
    Random,
    Signed { key: hmac::Key, server: Vec<u8> },
}

impl std::fmt::Debug for SessionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionIds::Random => "SessionIds::Random",
            SessionIds::Signed { .. } => "SessionIds::Signed",
        })
    }
}

const FORMAT: u8 = 1;
const PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 16;

impl SessionIds {
    /// Signed ids for the server `name` when there is a secret, else random ones.
    pub fn new(secret: Option<&SessionSecret>, name: &str) -> Self {
        match secret {
            None => SessionIds::Random,
            Some(secret) => SessionIds::Signed {
                key: hmac::Key::new(hmac::HMAC_SHA256, secret.0.as_bytes()),
                server: name.as_bytes().to_vec(),
            },
        }
    }

    pub fn is_signed(&self) -> bool {
        matches!(self, SessionIds::Signed { .. })
    }

    /// A new id for a session with these claims.
    pub fn issue(&self, claims: Claims) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the OS random number generator is available");
        let SessionIds::Signed { key, server } = self else {
            return hex(&nonce);
        };
        let mut payload = Vec::with_capacity(2 + NONCE_BYTES + claims.protocol_version.len());
        payload.push(FORMAT);
        payload
            .push(capability_bits(claims.client) | u8::from(claims.tools == View::Repaired) << 3);
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(claims.protocol_version.as_bytes());
        let tag = hmac::sign(key, &signed_bytes(server, &payload));
        let mut id = String::with_capacity(PREFIX.len() + 2 * 43 + 1);
        id.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut id);
        id.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut id);
        id
    }

    /// The claims of an id this server (or a replica with the same secret) signed; `None` for
    /// random ids, forgeries, tampered ids and versions this build does not speak.
    pub fn verify(&self, id: &str) -> Option<Claims> {
        let SessionIds::Signed { key, server } = self else {
            return None;
        };
        let (payload, tag) = id.strip_prefix(PREFIX)?.split_once('.')?;
        // Bounded before decoding: an id is a header anyone can send.
        if payload.len() > 128 || tag.len() > 64 {
            return None;
        }
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(key, &signed_bytes(server, &payload), &tag).ok()?;
        let (&format, rest) = payload.split_first()?;
        let (&bits, rest) = rest.split_first()?;
        if format != FORMAT || rest.len() <= NONCE_BYTES {
            return None;
        }
        let version = std::str::from_utf8(&rest[NONCE_BYTES..]).ok()?;
        let protocol_version = versions::ALL_VERSIONS
            .iter()
            .find(|known| **known == version)?;
        Some(Claims {
            protocol_version,
            client: ClientCapabilities {
                sampling: bits & 1 != 0,
                elicitation: bits & 2 != 0,
                roots: bits & 4 != 0,
            },
            tools: if bits & 8 != 0 {
                View::Repaired
            } else {
                View::Plain
            },
        })
    }
}

fn capability_bits(client: ClientCapabilities) -> u8 {
    u8::from(client.sampling) | u8::from(client.elicitation) << 1 | u8::from(client.roots) << 2
}

fn signed_bytes(server: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(server.len() + 1 + payload.len());
    bytes.extend_from_slice(server);
    bytes.push(0);
    bytes.extend_from_slice(payload);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    let mut id = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        id.push(char::from_digit(u32::from(byte >> 4), 16).expect("nibble"));
        id.push(char::from_digit(u32::from(byte & 0xf), 16).expect("nibble"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn signed(secret: &str, server: &str) -> SessionIds {
        SessionIds::new(Some(&SessionSecret::new(secret).unwrap()), server)
    }

    fn claims() -> Claims {
        Claims {
            protocol_version: "2025-06-18",
            client: ClientCapabilities {
                sampling: true,
                elicitation: false,
                roots: true,
            },
            tools: View::Repaired,
        }
    }

    #[test]
    fn random_ids_are_hex_and_never_verify() {
        let ids = SessionIds::new(None, "mcp");
        let id = ids.issue(claims());
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ids.verify(&id), None);
    }

    #[test]
    fn any_replica_with_the_secret_reads_the_claims() {
        let id = signed(SECRET, "mcp").issue(claims());
        assert!(id.starts_with("v1."));
        assert!(id.bytes().all(|c| c.is_ascii_graphic()), "{id}");
        assert_eq!(signed(SECRET, "mcp").verify(&id), Some(claims()));
        assert_ne!(id, signed(SECRET, "mcp").issue(claims()), "ids are unique");
    }

    #[test]
    fn forged_tampered_or_foreign_ids_are_refused() {
        let ids = signed(SECRET, "mcp");
        let id = ids.issue(claims());
        let other_secret = signed("another secret, just as long as the first", "mcp");
        assert_eq!(other_secret.verify(&id), None);
        assert_eq!(signed(SECRET, "other-server").verify(&id), None);
        // Every single-character change of the id is caught.
        for at in PREFIX.len()..id.len() {
            let mut tampered = id.clone().into_bytes();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            if tampered != id {
                assert_eq!(ids.verify(&tampered), None, "{tampered}");
            }
        }
        for junk in [
            "",
            "v1.",
            "v1..",
            "v1.AAAA.AAAA",
            "0123",
            &"v1.A".repeat(100),
        ] {
            assert_eq!(ids.verify(junk), None, "{junk:?}");
        }
        // A payload signed for a version this build does not speak is refused.
        let SessionIds::Signed { key, server } = &ids else {
            unreachable!()
        };
        let mut payload = vec![FORMAT, 0];
        payload.extend_from_slice(&[7; NONCE_BYTES]);
        payload.extend_from_slice(b"1999-01-01");
        let tag = hmac::sign(key, &signed_bytes(server, &payload));
        let id = format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        );
        assert_eq!(ids.verify(&id), None);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(SessionSecret::new("hunter2").unwrap_err(), WeakSecret(7));
        assert!(SessionSecret::new(SECRET).is_ok());
        assert_eq!(
            format!("{:?}", SessionSecret::new(SECRET).unwrap()),
            "SessionSecret(…)"
        );
    }
}
