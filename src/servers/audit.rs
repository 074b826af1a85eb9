//! The audit log (`--audit-log FILE`): one JSON line per `tools/call` of every server — when it
//! ended, the server, the tenant or a keyed hash of the session (never the id, which would let
//! a reader of the log take the session over), the tool, the outcome, how long it took, the
//! error code, and with `--audit-arguments` its arguments.
//!
//! Writing never holds up a call: a line goes into a bounded queue that a thread of its own
//! writes out. A line that finds the queue full, or whose write fails (a full disk), is dropped
//! and counted (`mcp_bridge_audit_lines_dropped_total`), with one warning per run of drops.
//! SIGHUP reopens the file for log rotation. The file is opened in append mode, created `0600`,
//! at start, so that a path that cannot be opened stops the bridge there; a FIFO no process
//! reads yet is opened by the writer once one does (the bridge starts meanwhile, dropping lines).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use ring::hmac;
use serde_json::value::RawValue;
use tracing::{info, warn};

use crate::session::ids::SessionSecret;
use crate::upstream::tool_calls::{Audited, EndedToolCall};
use crate::wire::rfc3339;

/// Lines waiting for the writer, at most; past it they are dropped.
const QUEUED_LINES: usize = 1024;
/// Bytes the writer gathers into one write.
const BATCH_BYTES: usize = 256 * 1024;
/// Bytes of the keyed hash a session is shown by (12 hex digits).
const SESSION_HASH_BYTES: usize = 6;

/// What `--audit-log` and `--audit-arguments` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub path: PathBuf,
    /// Each call's `arguments` too.
    pub arguments: bool,
}

/// Why the audit log cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}: {error}")]
pub struct AuditLogError {
    path: String,
    error: io::Error,
}

/// The audit log of one run, shared by every server.
#[derive(Debug)]
pub struct AuditLog {
    queue: SyncSender<Entry>,
    arguments: bool,
    /// Keys the session hashes: derived from `--session-secret` (replicas agree), else this
    /// process's own.
    key: hmac::Key,
    drops: Arc<Drops>,
    reopen: Arc<AtomicBool>,
}

enum Entry {
    Line(Vec<u8>),
    /// Everything before it has been written (or dropped): tell the sender.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Lines dropped, counted, and said once per run of them.
#[derive(Debug)]
struct Drops {
    counter: Counter,
    /// Lines dropped since the last one written.
    in_a_row: AtomicU64,
}

impl Drops {
    fn dropped(&self, lines: u64, why: &dyn std::fmt::Display) {
        self.counter.inc_by(lines);
        if self.in_a_row.fetch_add(lines, Ordering::Relaxed) == 0 {
            warn!(
                "the audit log is dropping lines ({why}); mcp_bridge_audit_lines_dropped_total counts them"
            );
        }
    }

    fn written(&self) {
        if self.in_a_row.load(Ordering::Relaxed) > 0 {
            let dropped = self.in_a_row.swap(0, Ordering::Relaxed);
            info!("the audit log is written again, after {dropped} dropped lines");
        }
    }
}

impl AuditLog {
    /// Opens the audit log and starts its writer; `dropped` counts the lines it drops.
    pub fn open(
        settings: &AuditSettings,
        secret: Option<&SessionSecret>,
        dropped: Counter,
    ) -> Result<Arc<AuditLog>, AuditLogError> {
        let path = settings.path.clone();
        let file = match open_for_append(&path) {
            Ok(file) => Some(file),
            // A FIFO without a reader: waited for by the writer, not by the start.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                warn!(
                    "the audit log {} is a FIFO no process reads yet: its lines are dropped until one does",
                    path.display()
                );
                None
            }
            Err(error) => {
                return Err(AuditLogError {
                    path: path.display().to_string(),
                    error,
                });
            }
        };
        let key = match secret {
            Some(shared) => shared.derive("mcp-bridge audit log"),
            None => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).expect("the OS random number generator is available");
                key
            }
        };
        let (queue, entries) = mpsc::sync_channel(QUEUED_LINES);
        let drops = Arc::new(Drops {
            counter: dropped,
            in_a_row: AtomicU64::new(0),
        });
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            path,
            file,
            reopen: reopen.clone(),
            drops: drops.clone(),
        };
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer.run(entries))
            .expect("a thread for the audit log starts");
        Ok(Arc::new(AuditLog {
            queue,
            arguments: settings.arguments,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            drops,
            reopen,
        }))
    }

    /// What it takes of each call.
    pub fn audited(&self) -> Audited {
        if self.arguments {
            Audited::CallsWithArguments
        } else {
            Audited::Calls
        }
    }

    /// Queues the line of `call` on `server` (for `tenant`), or counts it dropped.
    pub fn write(&self, server: &str, tenant: Option<&str>, call: &EndedToolCall<'_>) {
        let session = call.session.map(|id| self.session_hash(id));
        let line = Line {
            time: &rfc3339::utc_millis(SystemTime::now()),
            server,
            tenant,
            session: session.as_deref(),
            tool: call.tool,
            outcome: call.outcome.name(),
            duration_ms: (call.took.as_secs_f64() * 1e6).round() / 1e3,
            error_code: call.error_code,
            arguments: call.arguments.filter(|_| self.arguments),
        };
        let mut bytes =
            serde_json::to_vec(&line).expect("a line of strings and numbers serializes");
        bytes.push(b'\n');
        match self.queue.try_send(Entry::Line(bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.drops.dropped(1, &"its writer fell behind"),
            Err(TrySendError::Disconnected(_)) => self.drops.dropped(1, &"its writer stopped"),
        }
    }

    /// Reopens the file at its path before the next line (SIGHUP, after a rotation).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Waits, up to `within`, for the lines queued so far to be written (the bridge stops).
    pub async fn flush(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let (done, flushed) = tokio::sync::oneshot::channel();
        let mut entry = Entry::Flush(done);
        loop {
            match self.queue.try_send(entry) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if tokio::time::Instant::now() < deadline => {
                    entry = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(_) => return,
            }
        }
        let _ = tokio::time::timeout_at(deadline, flushed).await;
    }

    /// A session id as the log shows it: a keyed hash, the same for every line of the session,
    /// from which the id cannot be had back.
    fn session_hash(&self, id: &str) -> String {
        let tag = hmac::sign(&self.key, id.as_bytes());
        tag.as_ref()[..SESSION_HASH_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// One line of the log, its members in this order.
#[derive(serde::Serialize)]
struct Line<'a> {
    time: &'a str,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    tool: Option<&'a str>,
    outcome: &'static str,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a RawValue>,
}

/// The thread that writes the queued lines out, in batches.
struct Writer {
    path: PathBuf,
    /// `None` until a FIFO without a reader gets one.
    file: Option<File>,
    reopen: Arc<AtomicBool>,
    drops: Arc<Drops>,
}

impl Writer {
    fn run(mut self, entries: Receiver<Entry>) {
        if self.file.is_none() {
            self.open_waiting();
        }
        let mut batch = Vec::with_capacity(BATCH_BYTES);
        let mut flushes = Vec::new();
        while let Ok(first) = entries.recv() {
            let mut lines = 0;
            let mut next = Some(first);
            while let Some(entry) = next.take() {
                match entry {
                    Entry::Line(line) => {
                        batch.extend_from_slice(&line);
                        lines += 1;
                    }
                    Entry::Flush(done) => flushes.push(done),
                }
                if batch.len() < BATCH_BYTES {
                    next = entries.try_recv().ok();
                }
            }
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.reopen_file();
            }
            if lines > 0 {
                match self.file.as_mut().map(|file| file.write_all(&batch)) {
                    Some(Ok(())) => self.drops.written(),
                    Some(Err(e)) => self.drops.dropped(lines, &format!("writing failed: {e}")),
                    None => self.drops.dropped(lines, &"it could not be opened"),
                }
            }
            batch.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// Opens a FIFO once a process reads it (this thread waits; lines queue and overflow).
    fn open_waiting(&mut self) {
        match OpenOptions::new().append(true).open(&self.path) {
            Ok(file) => {
                info!("the audit log {} has a reader now", self.path.display());
                self.file = Some(file);
            }
            Err(e) => warn!("cannot open the audit log {}: {e}", self.path.display()),
        }
    }

    fn reopen_file(&mut self) {
        match open_for_append(&self.path) {
            Ok(file) => {
                info!("reopened the audit log {}", self.path.display());
                self.file = Some(file);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => self.open_waiting(),
            Err(e) => warn!(
                "cannot reopen the audit log {}: {e}; still writing to the file it was",
                self.path.display()
            ),
        }
    }
}

/// Opens `path` to append to, created `0600` if new, without waiting: a FIFO no process reads
/// fails with `ENXIO` rather than blocking. Writes to it then block (on the writer's thread
/// only), so that no line is cut short by a full pipe.
fn open_for_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // SAFETY: fcntl on a descriptor this function owns, with integer arguments only.
    let cleared = unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::tool_calls::Outcome;

    fn call<'a>(session: Option<&'a str>, arguments: Option<&'a RawValue>) -> EndedToolCall<'a> {
        EndedToolCall {
            tool: Some("echo"),
            session,
            outcome: Outcome::Error,
            error_code: Some(-32602),
            took: Duration::from_micros(1_234_567),
            arguments,
        }
    }

    fn lines_of(path: &Path, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).expect("a JSON line"))
                .collect();
            if lines.len() >= count {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("fewer than {count} lines in {}", path.display());
    }

    #[tokio::test]
    async fn lines_hash_the_session_and_take_arguments_only_when_asked() {
        let dir = std::env::temp_dir().join(format!("mcp-bridge-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        let settings = AuditSettings {
            path: path.clone(),
            arguments: false,
        };
        let log = AuditLog::open(&settings, None, Counter::default()).unwrap();
        let arguments = RawValue::from_string(r#"{"message":"secret"}"#.into()).unwrap();
        log.write("demo", None, &call(Some("session-one"), Some(&arguments)));
        log.write("demo", Some("alice"), &call(Some("session-one"), None));
        log.write("demo", None, &call(None, None));
        log.flush(Duration::from_secs(5)).await;
        let lines = lines_of(&path, 3);
        let first = &lines[0];
        assert_eq!(first["server"], "demo");
        assert_eq!(first["tool"], "echo");
        assert_eq!(first["outcome"], "error");
        assert_eq!(first["error_code"], -32602);
        assert_eq!(first["duration_ms"], 1234.567);
        assert!(first.get("arguments").is_none(), "{first}");
        assert!(first.get("tenant").is_none(), "{first}");
        let hash = first["session"].as_str().unwrap();
        assert_eq!(hash.len(), 2 * SESSION_HASH_BYTES);
        assert!(!hash.contains("session"));
        assert_eq!(lines[1]["session"], hash, "one session, one hash");
        assert_eq!(lines[1]["tenant"], "alice");
        assert!(lines[2].get("session").is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let with_arguments = AuditSettings {
            path: dir.join("with-arguments.log"),
            arguments: true,
        };
        let _ = std::fs::remove_file(&with_arguments.path);
        let log = AuditLog::open(&with_arguments, None, Counter::default()).unwrap();
        log.write("demo", None, &call(None, Some(&arguments)));
        log.flush(Duration::from_secs(5)).await;
        let lines = lines_of(&with_arguments.path, 1);
        assert_eq!(
            lines[0]["arguments"],
            serde_json::json!({"message": "secret"})
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_that_cannot_be_opened_is_an_error_at_once() {
        let settings = AuditSettings {
            path: PathBuf::from("/nonexistent-dir/audit.log"),
            arguments: false,
        };
        let error = AuditLog::open(&settings, None, Counter::default()).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent-dir/audit.log"),
            "{error}"
        );
    }

    #[test]
    fn replicas_sharing_a_secret_hash_a_session_alike() {
        let secret = SessionSecret::new("0123456789abcdef0123456789abcdef").unwrap();
        let dir = std::env::temp_dir().join(format!("mcp-bridge-audit-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = AuditSettings {
            path: dir.join("a.log"),
            arguments: false,
        };
        let one = AuditLog::open(&settings, Some(&secret), Counter::default()).unwrap();
        let two = AuditLog::open(&settings, Some(&secret), Counter::default()).unwrap();
        let own = AuditLog::open(&settings, None, Counter::default()).unwrap();
        assert_eq!(one.session_hash("s"), two.session_hash("s"));
        assert_ne!(one.session_hash("s"), own.session_hash("s"));
        assert_ne!(one.session_hash("s"), one.session_hash("t"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
