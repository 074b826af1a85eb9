//! The `--tenants` file: each tenant's name, the bearer token that picks it (stored as its
//! SHA-256, or written plainly), and the environment its server gets. Read at start and again
//! on SIGHUP; a file that no longer reads keeps the tenants as they were. Tokens are looked up
//! by their digest, so neither a token nor how much of one matched shows in the timing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ring::digest;
use serde::Deserialize;

use crate::sync::ReadWrite;

#[derive(Debug, thiserror::Error)]
pub enum TenantsFileError {
    #[error("cannot read the tenants file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One tenant of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub name: String,
    /// What its server's environment gets, on top of the server's own.
    pub env: Vec<(String, String)>,
}

/// The tenants of the file, by the digest of their token.
#[derive(Debug, Default)]
pub struct TenantBook {
    by_token: HashMap<[u8; 32], Arc<TenantRecord>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tenants: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    token: Option<String>,
    token_sha256: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

impl TenantBook {
    pub fn load(path: &Path) -> Result<TenantBook, TenantsFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TenantsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        TenantBook::parse(&text).map_err(|message| TenantsFileError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<TenantBook, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut by_token = HashMap::new();
        for (name, entry) in file.tenants {
            if !is_tenant_name(&name) {
                return Err(format!(
                    "tenant name {name:?}: use letters, digits, `-`, `_` and `.` (it shows in \
                     logs and metrics)"
                ));
            }
            let digest = match (entry.token, entry.token_sha256) {
                (Some(token), None) if token.len() >= 16 => token_digest(&token),
                (Some(_), None) => {
                    return Err(format!(
                        "tenant {name}: a token needs 16 characters or more"
                    ));
                }
                (None, Some(hex)) => parse_digest(&hex)
                    .ok_or_else(|| format!("tenant {name}: tokenSha256 must be 64 hex digits"))?,
                _ => {
                    return Err(format!(
                        "tenant {name}: give exactly one of \"token\" and \"tokenSha256\""
                    ));
                }
            };
            if let Some(var) = entry.env.keys().find(|var| !is_env_name(var)) {
                return Err(format!(
                    "tenant {name}: {var:?} is not an environment variable name"
                ));
            }
            let record = TenantRecord {
                name: name.clone(),
                env: entry.env.into_iter().collect(),
            };
            if by_token.insert(digest, Arc::new(record)).is_some() {
                return Err(format!("tenant {name} has the token of another tenant"));
            }
        }
        Ok(TenantBook { by_token })
    }

    /// The tenant whose token is `token`.
    pub fn find(&self, token: &str) -> Option<Arc<TenantRecord>> {
        self.by_token.get(&token_digest(token)).cloned()
    }

    /// Whether `record` is still in the book as it is (a reload may change or drop it).
    pub fn holds(&self, record: &TenantRecord) -> bool {
        self.by_token.values().any(|known| **known == *record)
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// The book of a run, swapped whole by a reload.
#[derive(Debug)]
pub struct TenantBookCell {
    path: PathBuf,
    book: RwLock<Arc<TenantBook>>,
}

impl TenantBookCell {
    pub fn load(path: &Path) -> Result<TenantBookCell, TenantsFileError> {
        Ok(TenantBookCell {
            book: RwLock::new(Arc::new(TenantBook::load(path)?)),
            path: path.to_owned(),
        })
    }

    pub fn current(&self) -> Arc<TenantBook> {
        self.book.reading().clone()
    }

    /// Reads the file again; on an error the tenants stay as they were.
    pub fn reload(&self) -> Result<(), TenantsFileError> {
        let book = TenantBook::load(&self.path)?;
        tracing::info!("tenants file reloaded: {} tenants", book.len());
        *self.book.writing() = Arc::new(book);
        Ok(())
    }
}

/// The SHA-256 of a token, as `tokenSha256` stores it.
pub fn token_digest(token: &str) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn is_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_their_digest_whether_written_plainly_or_hashed() {
        let hashed: String = token_digest("bob-token-0123456789")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = format!(
            r#"{{"tenants": {{
                "alice": {{"token": "alice-token-0123456789", "env": {{"GITHUB_TOKEN": "ghp_a"}}}},
                "bob": {{"tokenSha256": "{hashed}", "env": {{"GITHUB_TOKEN": "ghp_b"}}}}
            }}}}"#
        );
        let book = TenantBook::parse(&text).unwrap();
        let alice = book.find("alice-token-0123456789").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.env, [("GITHUB_TOKEN".into(), "ghp_a".into())]);
        assert_eq!(book.find("bob-token-0123456789").unwrap().name, "bob");
        assert!(book.find("alice-token-012345678").is_none());
        assert!(book.holds(&alice));
    }

    #[test]
    fn mistakes_are_refused_with_the_tenant_named() {
        for (text, says) in [
            (
                r#"{"tenants": {"a b": {"token": "0123456789abcdef"}}}"#,
                "tenant name",
            ),
            (r#"{"tenants": {"a": {"token": "short"}}}"#, "16 characters"),
            (r#"{"tenants": {"a": {}}}"#, "exactly one"),
            (
                r#"{"tenants": {"a": {"tokenSha256": "00"}}}"#,
                "64 hex digits",
            ),
            (
                r#"{"tenants": {"a": {"token": "0123456789abcdef"}, "b": {"token": "0123456789abcdef"}}}"#,
                "token of another tenant",
            ),
            (
                r#"{"tenants": {"a": {"token": "0123456789abcdef", "envs": {}}}}"#,
                "envs",
            ),
        ] {
            let error = TenantBook::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
