//! HTTPS without a proxy (`--tls-cert`/`--tls-key`), driven over real TLS against the real
//! binary: initialize and tools/call over HTTP/1.1 and h2 chosen by ALPN (with a rustls client
//! and with curl), plain HTTP and silent clients on the TLS port, SIGHUP swapping the
//! certificate for new connections, and bad files refused at start with one line.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use support::{Bridge, Reply, initialize_body, reply_messages, tool_text};

/// A self-signed certificate for `localhost` and `127.0.0.1`, and its key.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn generate(common_name: &str, serial: u64) -> Pair {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

/// A temporary directory holding `cert.pem` and `key.pem`, removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("mcp-bridge-tls-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn with(name: &str, pair: &Pair) -> Files {
        let files = Files::new(name);
        files.write(pair);
        files
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    fn write(&self, pair: &Pair) {
        std::fs::write(self.cert(), &pair.cert_pem).unwrap();
        std::fs::write(self.key(), &pair.key_pem).unwrap();
    }

    /// `--tls-cert … --tls-key …` with the given extra arguments after them.
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<String> {
        let mut args = vec![
            "--tls-cert".to_owned(),
            path_str(&self.cert()),
            "--tls-key".to_owned(),
            path_str(&self.key()),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn start(files: &Files) -> Bridge {
    let args = files.args(&["--demo"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bridge = Bridge::start(&args);
    assert!(bridge.url.starts_with("https://"), "{}", bridge.url);
    bridge
}

/// The address in `https://ADDRESS/mcp`.
fn address(url: &str) -> SocketAddr {
    let rest = url.strip_prefix("https://").expect("an https URL");
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

/// A TLS connection that trusts only `trust`, offering `alpn`.
async fn connect(
    address: SocketAddr,
    trust: &CertificateDer<'static>,
    alpn: &[&str],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// An HTTP connection over TLS, HTTP/1.1 or h2 as ALPN chose.
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Client {
    async fn open(address: SocketAddr, trust: &CertificateDer<'static>, alpn: &str) -> Client {
        let stream = connect(address, trust, &[alpn])
            .await
            .expect("TLS handshake");
        let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(negotiated.as_deref(), Some(alpn.as_bytes()), "ALPN");
        let io = TokioIo::new(stream);
        if alpn == "h2" {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("h2 handshake");
            tokio::spawn(connection);
            Client::H2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("HTTP/1.1 handshake");
            tokio::spawn(connection);
            Client::H1(sender)
        }
    }

    async fn post(&mut self, address: SocketAddr, session: Option<&str>, body: String) -> Reply {
        let uri = format!("https://localhost:{}/mcp", address.port());
        let mut request = Request::builder()
            .method(Method::POST)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        request = match self {
            Client::H1(_) => request.uri("/mcp").header("host", "localhost"),
            Client::H2(_) => request.uri(uri),
        };
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let sent = async {
            match self {
                Client::H1(sender) => {
                    sender.ready().await?;
                    sender.send_request(request).await
                }
                Client::H2(sender) => {
                    sender.ready().await?;
                    sender.send_request(request).await
                }
            }
        };
        let response = tokio::time::timeout(Duration::from_secs(30), sent)
            .await
            .expect("an answer within 30 s")
            .expect("HTTP request");
        let expected = match self {
            Client::H1(_) => hyper::Version::HTTP_11,
            Client::H2(_) => hyper::Version::HTTP_2,
        };
        assert_eq!(response.version(), expected);
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// initialize, notifications/initialized and `add` 2 + 40 on this connection.
    async fn add(&mut self, address: SocketAddr) {
        let init = self
            .post(address, None, initialize_body(0, "2025-06-18"))
            .await;
        assert_eq!(init.status, StatusCode::OK, "{:?}", init.body);
        assert_eq!(
            init.json()["result"]["serverInfo"]["name"],
            "mcp-bridge-demo"
        );
        let session = init.session();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let note = self.post(address, Some(&session), note.to_string()).await;
        assert_eq!(note.status, StatusCode::ACCEPTED);
        let call = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 40}}
        });
        let reply = self.post(address, Some(&session), call.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let answer: Value = reply_messages(&reply).pop().expect("an answer");
        assert_eq!(answer["id"], 1);
        assert_eq!(tool_text(&answer), "42");
    }
}

/// The certificate a new connection is shown.
async fn served_certificate(
    address: SocketAddr,
    trust: &CertificateDer<'static>,
) -> std::io::Result<CertificateDer<'static>> {
    let stream = connect(address, trust, &["http/1.1"]).await?;
    let chain = stream.get_ref().1.peer_certificates().expect("a chain");
    Ok(chain[0].clone())
}

/// curl over HTTPS trusting `cert`: (status, HTTP version) of an initialize.
fn curl_initialize(url: &str, cert: &Path, version_flag: &str) -> (String, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(cert)
        .args([
            version_flag,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["--data", &initialize_body(1, "2025-06-18"), url])
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl failed: {out} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, version) = out.split_once(' ').expect("status and version");
    (status.to_owned(), version.to_owned())
}

#[tokio::test]
async fn initialize_and_tools_call_over_http1_and_h2_chosen_by_alpn() {
    let pair = generate("mcp-bridge test", 1);
    let files = Files::with("protocols", &pair);
    let bridge = start(&files);
    let address = address(&bridge.url);

    let mut h1 = Client::open(address, &pair.der, "http/1.1").await;
    h1.add(address).await;
    let mut h2 = Client::open(address, &pair.der, "h2").await;
    h2.add(address).await;
    // A client that offers both gets h2.
    let both = connect(address, &pair.der, &["h2", "http/1.1"])
        .await
        .unwrap();
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // curl, a client people use, with the certificate as its only trust.
    let url = bridge.url.replace("127.0.0.1", "localhost");
    let (status, version) = curl_initialize(&url, &files.cert(), "--http1.1");
    assert_eq!((status.as_str(), version.as_str()), ("200", "1.1"));
    let (status, version) = curl_initialize(&bridge.url, &files.cert(), "--http2");
    assert_eq!((status.as_str(), version.as_str()), ("200", "2"));

    // A client that does not trust the certificate is refused, and nothing else is disturbed.
    let stranger = generate("someone else", 9);
    assert!(connect(address, &stranger.der, &["h2"]).await.is_err());
    h2.add(address).await;
}

#[tokio::test]
async fn plain_http_and_silent_clients_on_the_tls_port_disturb_nobody() {
    let pair = generate("mcp-bridge test", 2);
    let files = Files::with("plain", &pair);
    let bridge = start(&files);
    let address = address(&bridge.url);
    // A connection opened before, kept alive throughout.
    let mut before = Client::open(address, &pair.der, "http/1.1").await;
    before.add(address).await;

    // A client that connects and says nothing holds only its own connection.
    let mut silent = TcpStream::connect(address).await.unwrap();
    let silent_since = Instant::now();

    // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
    let mut plain = TcpStream::connect(address).await.unwrap();
    let body = initialize_body(0, "2025-06-18");
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    plain.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the plain-HTTP connection was not closed");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // And through an ordinary HTTP client: an error, not a hang and not a crash.
    let http_url = bridge.url.replacen("https://", "http://", 1);
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(http_url.as_str())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), client.request(request))
        .await
        .expect("no hang");
    assert!(result.is_err(), "plain HTTP got an answer: {result:?}");

    // HTTPS goes on working, on the old connection and on new ones, h1 and h2.
    before.add(address).await;
    Client::open(address, &pair.der, "h2")
        .await
        .add(address)
        .await;
    Client::open(address, &pair.der, "http/1.1")
        .await
        .add(address)
        .await;
    assert!(!bridge.log().contains("panicked"), "{}", bridge.log());

    // The silent client is let go after the handshake timeout (10 s).
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "still open: {closed:?}"
    );
    let waited = silent_since.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    before.add(address).await;
}

#[tokio::test]
async fn sighup_makes_new_connections_see_the_new_certificate() {
    let first = generate("first", 100);
    let files = Files::with("reload", &first);
    let bridge = start(&files);
    let address = address(&bridge.url);
    assert_eq!(
        served_certificate(address, &first.der).await.unwrap(),
        first.der
    );
    let mut old = Client::open(address, &first.der, "h2").await;
    old.add(address).await;

    let second = generate("second", 200);
    files.write(&second);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(bridge.pid(), libc::SIGHUP);
    }
    assert!(
        bridge.wait_for_log("reloaded the TLS certificate", Duration::from_secs(10)),
        "{}",
        bridge.log()
    );
    let served = served_certificate(address, &second.der).await.unwrap();
    assert_eq!(served, second.der);
    assert_ne!(served, first.der);
    // A client that trusts only the old certificate no longer gets in.
    assert!(served_certificate(address, &first.der).await.is_err());
    // The connection opened before the reload goes on.
    old.add(address).await;
    Client::open(address, &second.der, "http/1.1")
        .await
        .add(address)
        .await;

    // A bad file at the next SIGHUP: an error in the log, the certificate in force stays.
    std::fs::write(files.cert(), "not a certificate\n").unwrap();
    unsafe {
        libc::kill(bridge.pid(), libc::SIGHUP);
    }
    assert!(
        bridge.wait_for_log("keeping the old TLS certificate", Duration::from_secs(10)),
        "{}",
        bridge.log()
    );
    assert!(bridge.log().contains(&path_str(&files.cert())));
    assert_eq!(
        served_certificate(address, &second.der).await.unwrap(),
        second.der
    );
    Client::open(address, &second.der, "h2")
        .await
        .add(address)
        .await;
}

/// Runs the bridge on a free port expecting it to exit at once: (exit code, stderr).
fn run_to_exit(args: &[String]) -> (Option<i32>, String) {
    let mut on_any_port = vec!["--port".to_owned(), "0".to_owned()];
    on_any_port.extend_from_slice(args);
    support::run_to_exit(&on_any_port)
}

#[test]
fn bad_certificate_files_are_a_one_line_error_naming_the_file_and_exit_1() {
    let good = generate("good", 3);
    let files = Files::with("bad", &good);
    let junk = files.dir.join("junk.pem");
    std::fs::write(&junk, "-- nothing PEM here --\n").unwrap();
    let missing = files.dir.join("missing.pem");
    let other = generate("other", 4);
    let other_key = files.dir.join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();

    let cases = [
        (missing.clone(), files.key(), missing.clone(), "cannot read"),
        (junk.clone(), files.key(), junk.clone(), "no certificate in"),
        (
            files.cert(),
            junk.clone(),
            junk.clone(),
            "no private key in",
        ),
        (
            files.cert(),
            other_key.clone(),
            other_key.clone(),
            "does not belong",
        ),
    ];
    for (cert, key, named, says) in cases {
        let args: Vec<String> = vec![
            "--tls-cert".into(),
            path_str(&cert),
            "--tls-key".into(),
            path_str(&key),
            "--demo".into(),
        ];
        let (code, stderr) = run_to_exit(&args);
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        let line = stderr.trim();
        assert!(line.starts_with("mcp-bridge: "), "{stderr}");
        assert!(line.contains(says), "{says}: {stderr}");
        assert!(line.contains(&path_str(&named)), "{stderr}");
    }

    // One without the other is a usage error.
    let (code, stderr) = run_to_exit(&[
        "--tls-cert".into(),
        path_str(&files.cert()),
        "--demo".into(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");

    // Beyond loopback, TLS is no substitute for a token.
    let mut args = files.args(&["--demo"]);
    args.extend(["--host".to_owned(), "0.0.0.0".to_owned()]);
    let (code, stderr) = run_to_exit(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("without --auth-token"), "{stderr}");
}
