//! HTTPS without a proxy (`--tls-cert`/`--tls-key`): loading the PEM certificate chain and key
//! into a rustls config (ALPN `h2` and `http/1.1`), reloading them on SIGHUP, and the bounded
//! handshake each accepted connection goes through before hyper sees it.
//!
//! [`serving`] wraps the accept loop ([`super::listen::listen`]): it makes the [`Tls`] visible to the
//! loop through [`current`] (a task-local, so the loop's signature stays what it is) and runs
//! the SIGHUP reloader for exactly as long as the loop runs.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::ServerConfig;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{self, InconsistentKeys};
use tokio_rustls::server::TlsStream;
use tracing::{debug, error, info, warn};

use super::connections::Peer;
use crate::sync::ReadWrite;

/// How long a client may take to complete the TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate chain and its private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate or key could not be used; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {reason}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error(
        "no certificate in {}: expected a PEM `-----BEGIN CERTIFICATE-----` block",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "no private key in {}: expected a PEM `BEGIN PRIVATE KEY` (PKCS#8), `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY` block",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("unsupported private key in {}: {reason}", path.display())]
    UnsupportedKey {
        path: PathBuf,
        reason: rustls::Error,
    },
    #[error(
        "the private key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("unusable certificate in {}: {reason}", path.display())]
    BadCertificate {
        path: PathBuf,
        reason: rustls::Error,
    },
}

/// The TLS side of the listener: the rustls config now in force, swapped whole on reload so
/// that connections already open keep the one they started with.
pub struct Tls {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads and checks the certificate chain and key.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(Self {
            files,
            config: RwLock::new(Arc::new(config)),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; new connections get the new certificate. On an error the old
    /// one stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files)?);
        *self.config.writing() = config;
        Ok(())
    }

    /// An acceptor with the config now in force.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.reading().clone())
    }

    /// The TLS handshake on an accepted connection, bounded by [`HANDSHAKE_TIMEOUT`]. A failure
    /// (a plain-HTTP client, a client that distrusts the certificate, a scanner, a client that
    /// says nothing) concerns that connection alone: it is logged and `None` is returned.
    pub async fn handshake<IO>(&self, stream: IO, peer: Peer) -> Option<TlsStream<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let peer = peer.0;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor().accept(stream)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                debug!("TLS handshake with {peer} failed: {e}");
                None
            }
            Err(_) => {
                debug!("TLS handshake with {peer} did not finish within {HANDSHAKE_TIMEOUT:?}");
                None
            }
        }
    }
}

tokio::task_local! {
    static CURRENT: Arc<Tls>;
}

/// The TLS the running accept loop serves with, if any (see [`serving`]).
pub fn current() -> Option<Arc<Tls>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs the accept loop `serve`, with `tls` if given: the loop finds it through [`current`],
/// and every SIGHUP meanwhile reloads the certificate and key. Call it from within the runtime:
/// SIGHUP is taken over at once, so that a SIGHUP right after the ready line cannot kill the
/// process.
pub fn serving<F>(tls: Option<Arc<Tls>>, serve: F) -> impl Future<Output = ()> + Send + 'static
where
    F: Future<Output = ()> + Send + 'static,
{
    let hangups = match &tls {
        Some(_) => match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                warn!("cannot listen for SIGHUP ({e}); the TLS certificate will not be reloaded");
                None
            }
        },
        None => None,
    };
    async move {
        let Some(tls) = tls else {
            return serve.await;
        };
        let reload = {
            let tls = tls.clone();
            async move {
                let Some(mut hangups) = hangups else {
                    return std::future::pending().await;
                };
                while hangups.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => info!(
                            "SIGHUP received: reloaded the TLS certificate from {}",
                            tls.files.cert.display()
                        ),
                        Err(e) => error!("SIGHUP received: keeping the old TLS certificate: {e}"),
                    }
                }
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            _ = CURRENT.scope(tls, serve) => {}
            _ = reload => {}
        }
    }
}

/// The rustls server config for `files`: ring, TLS 1.2 and 1.3, ALPN h2 then http/1.1.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let certs = read_certificates(&files.cert)?;
    let key = read_key(&files.key)?;
    let certified = certified_key(files, certs, key, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|reason| TlsError::Read {
        what,
        path: path.to_owned(),
        reason,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("certificate", path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        e => TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        },
    })
}

fn certified_key(
    files: &TlsFiles,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|reason| TlsError::UnsupportedKey {
            path: files.key.clone(),
            reason,
        })?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        Err(reason) => Err(TlsError::BadCertificate {
            path: files.cert.clone(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mcp-bridge-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_pair(files: &TlsFiles, name: &str) {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        std::fs::write(&files.cert, generated.cert.pem()).unwrap();
        std::fs::write(&files.key, generated.key_pair.serialize_pem()).unwrap();
    }

    fn message(result: Result<Tls, TlsError>) -> String {
        let message = result.expect_err("an error").to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        message
    }

    #[test]
    fn loads_a_pair_and_names_the_file_in_every_error() {
        let dir = temp_dir("errors");
        let files = files_in(&dir);
        write_pair(&files, "localhost");
        let tls = Tls::load(files.clone()).unwrap();
        tls.reload().unwrap();

        let missing = TlsFiles {
            cert: dir.join("nope.pem"),
            key: files.key.clone(),
        };
        let text = message(Tls::load(missing));
        assert!(
            text.contains("nope.pem") && text.contains("cannot read"),
            "{text}"
        );

        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let text = message(Tls::load(TlsFiles {
            cert: junk.clone(),
            key: files.key.clone(),
        }));
        assert!(
            text.contains("no certificate in") && text.contains("junk.pem"),
            "{text}"
        );
        let text = message(Tls::load(TlsFiles {
            cert: files.cert.clone(),
            key: junk.clone(),
        }));
        assert!(
            text.contains("no private key in") && text.contains("junk.pem"),
            "{text}"
        );

        // A key of another pair.
        let other = files_in(&temp_dir("other"));
        write_pair(&other, "localhost");
        let text = message(Tls::load(TlsFiles {
            cert: files.cert.clone(),
            key: other.key.clone(),
        }));
        assert!(text.contains("does not belong"), "{text}");

        // A failed reload keeps the old config.
        std::fs::write(&files.cert, "garbage").unwrap();
        assert!(tls.reload().is_err());
        let _ = tls.acceptor();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(other.cert.parent().unwrap());
    }
}
