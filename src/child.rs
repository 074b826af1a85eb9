//! The child process: spawned directly in its own process group, fed newline-delimited JSON on
//! stdin (see [`crate::stdin`]), read line by line from stdout, its stderr logged, and never
//! allowed to outlive the bridge.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::jsonrpc::{self, IdAt, Kind};
use crate::mux::{Answer, Mux, NoAnswer};
use crate::router::{Noise, Router};
use crate::stdin::Stdin;

/// What to run, exactly as the user gave it: no shell in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// The `mcp-bridge` executable, to run the server under its guard (see [`crate::guard`]);
    /// `None` runs the server directly, covered only by its own parent-death signal.
    pub guard: Option<PathBuf>,
    /// The name in logs (a config file's server name); `None` uses the program's file name.
    pub label: Option<String>,
}

impl ChildCommand {
    /// A short name for logs: the label, or the program's file name.
    pub fn name(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        let program = PathBuf::from(&self.program);
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    /// The command line as one string, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start `{command}`: {source}")]
pub struct SpawnError {
    command: String,
    #[source]
    source: std::io::Error,
}

/// Limits on what the child may send.
#[derive(Debug, Clone, Copy)]
pub struct ChildLimits {
    /// A stdout line longer than this is dropped instead of buffered without bound.
    pub max_message_bytes: usize,
}

/// How the child ended, once it has.
#[derive(Debug, Clone)]
pub struct Exit {
    pub description: String,
    pub status: Option<ExitStatus>,
}

/// How long stdout may stay open after the process exited (or the reverse) before the bridge
/// treats the child as gone: long enough to read answers already in the pipe, short enough
/// that requests in flight hear about the exit at once.
const EXIT_SETTLE: Duration = Duration::from_millis(50);
const STDOUT_READ_CHUNK: usize = 256 * 1024;

/// A running child. Cloning the handle is cheap; the process is killed with its whole process
/// group when [`Child::shutdown`] runs or when the last task holding it is dropped.
#[derive(Debug, Clone)]
pub struct Child {
    stdin: Stdin,
    exit: watch::Receiver<Option<Exit>>,
    group: Arc<ProcessGroup>,
}

impl Child {
    pub fn spawn(
        command: &ChildCommand,
        limits: ChildLimits,
        router: Arc<Router>,
    ) -> Result<Child, SpawnError> {
        let spawn_error = |source| SpawnError {
            command: command.display(),
            source,
        };
        let program = resolve_program(command).map_err(spawn_error)?;
        let mut process = build_command(command, &program)
            .spawn()
            .map_err(spawn_error)?;
        let pid = process.id().expect("a just-spawned child has a pid") as i32;
        let group = Arc::new(ProcessGroup {
            pgid: pid,
            guarded: command.guard.is_some(),
        });
        let name = command.name();
        info!(child = %name, pid, "started `{}`", command.display());

        let stdin = process.stdin.take().expect("stdin is piped");
        let stdout = process.stdout.take().expect("stdout is piped");
        let stderr = process.stderr.take().expect("stderr is piped");

        let stdin = Stdin::new(stdin).map_err(spawn_error)?;
        router.attach(stdin.clone());

        let last_stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_logger = tokio::spawn(log_stderr(
            stderr,
            name.clone(),
            last_stderr.clone(),
            router.clone(),
        ));

        let (exit_tx, exit_rx) = watch::channel(None);
        let stopping = stdin.closing();
        let reader = tokio::spawn(read_stdout(
            stdout,
            name.clone(),
            limits,
            router.clone(),
            stdin.clone(),
        ));
        tokio::spawn(async move {
            // Whichever comes first, stdout closing or the process exiting, give the other a
            // moment so the answers already written are still delivered and the status is known.
            let mut reader = reader;
            let status = tokio::select! {
                _ = &mut reader => tokio::time::timeout(EXIT_SETTLE, process.wait()).await.ok(),
                status = process.wait() => {
                    let _ = tokio::time::timeout(EXIT_SETTLE, &mut reader).await;
                    Some(status)
                }
            };
            let status = status.and_then(Result::ok);
            // The last stderr line usually says why; it may still be in the pipe. A grandchild
            // holding stderr open must not delay the report, hence the bound.
            let _ = tokio::time::timeout(EXIT_SETTLE, &mut stderr_logger).await;
            let description = describe_exit(status, &last_stderr);
            // Logged first: whoever waits on this child may report and exit as soon as its
            // requests fail below, and the log line belongs before that report.
            if stopping.is_cancelled() {
                info!(child = %name, "{description}");
            } else {
                error!(child = %name, "{description}");
            }
            // The exit is published before requests in flight fail, so that a client retrying
            // at once already finds the child gone and waits for its restart.
            let _ = exit_tx.send(Some(Exit {
                description: description.clone(),
                status,
            }));
            router.child_exited(&description);
            // `process` drops here; kill_on_drop reaps a child that closed stdout but lives on.
        });

        Ok(Child {
            stdin,
            exit: exit_rx,
            group,
        })
    }

    /// Queues one line (ending in `\n`) for the child's stdin.
    pub async fn send(&self, line: Bytes) -> Result<(), ChildGone> {
        self.send_pieces(vec![line]).await
    }

    /// Queues one line given in pieces (see [`Stdin::send_pieces`]).
    pub async fn send_pieces(&self, pieces: Vec<Bytes>) -> Result<(), ChildGone> {
        if let Some(exit) = self.exit.borrow().as_ref() {
            return Err(ChildGone(exit.description.clone()));
        }
        self.stdin
            .send_pieces(pieces)
            .await
            .map_err(|closed| ChildGone(closed.to_string()))
    }

    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// The child's exit, once it has exited.
    pub fn exit(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    /// Resolves when the child has exited.
    pub async fn exited(&self) -> Exit {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone().expect("waited for Some"),
            Err(_) => Exit {
                description: "the child's monitor ended".into(),
                status: None,
            },
        }
    }

    pub fn stdin(&self) -> &Stdin {
        &self.stdin
    }

    /// Kills the child's whole process group at once.
    pub fn kill(&self) {
        self.group.kill();
    }

    /// Stops the child politely, then firmly: close its stdin (the stdio way of saying "done"),
    /// then SIGTERM its process group, then SIGKILL.
    pub async fn shutdown(&self, grace: Duration) {
        if self.exit().is_some() {
            self.group.kill();
            return;
        }
        self.stdin.close();
        if tokio::time::timeout(grace, self.exited()).await.is_ok() {
            self.group.kill();
            return;
        }
        debug!("the child ignored stdin closing; sending SIGTERM to its process group");
        self.group.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            warn!("the child ignored SIGTERM; killing its process group");
        }
        self.group.kill();
    }
}

/// The child is not there to answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ChildGone(pub String);

/// Finds the program the way `execvp` would, so that a typo is reported by the bridge itself
/// and not, later and less clearly, by the guard.
fn resolve_program(command: &ChildCommand) -> std::io::Result<PathBuf> {
    let program = Path::new(&command.program);
    if command.program.as_encoded_bytes().contains(&b'/') {
        let path = match &command.cwd {
            Some(dir) if program.is_relative() => dir.join(program),
            _ => program.to_path_buf(),
        };
        return executable(path);
    }
    let search_path = command
        .env
        .iter()
        .rev()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut denied = None;
    for dir in std::env::split_paths(&search_path) {
        match executable(dir.join(program)) {
            Ok(path) => return Ok(path),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT)))
}

fn executable(path: PathBuf) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(&path)?;
    if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
        Ok(path)
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EACCES))
    }
}

fn build_command(command: &ChildCommand, program: &Path) -> Command {
    let mut cmd = match &command.guard {
        Some(bridge) => {
            let mut cmd = Command::new(bridge);
            cmd.arg("guard")
                .arg("--bridge-pid")
                .arg(std::process::id().to_string())
                .arg("--")
                .arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the grandchildren (npx → node, uvx → python) are stopped
        // together with it.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &command.cwd {
        cmd.current_dir(dir);
    }
    let bridge_pid = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // If the bridge dies without cleaning up (SIGKILL), the kernel kills the child.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The bridge may already have died between fork and prctl.
            if libc::getppid() != bridge_pid {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
}

/// The child's process group; every member is killed when the last handle is dropped.
#[derive(Debug)]
struct ProcessGroup {
    pgid: i32,
    /// Led by the guard, which also reaches the processes that left the group.
    guarded: bool,
}

/// How long the guard gets to kill what left the group before the group itself is killed.
const GUARD_CLEANUP: Duration = Duration::from_millis(300);

impl ProcessGroup {
    fn signal(&self, signal: i32) {
        // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
        unsafe {
            libc::killpg(self.pgid, signal);
        }
    }

    /// Kills everything the server started. The guard kills its descendants (those that left
    /// the group with setsid too) and exits; the group is killed after a moment in any case, in
    /// case the guard cannot.
    fn kill(&self) {
        if !self.guarded {
            self.signal(libc::SIGKILL);
            return;
        }
        // SAFETY: kill has no memory-safety preconditions; the guard leads the group.
        unsafe {
            libc::kill(self.pgid, crate::guard::STOP_EVERYTHING);
        }
        let pgid = self.pgid;
        std::thread::spawn(move || {
            std::thread::sleep(GUARD_CLEANUP);
            // SAFETY: as above.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        });
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads stdout line by line and dispatches each message.
async fn read_stdout(
    mut stdout: impl AsyncRead + Unpin,
    name: String,
    limits: ChildLimits,
    router: Arc<Router>,
    stdin: Stdin,
) {
    let mux = &router.mux;
    let mut buffer = BytesMut::with_capacity(STDOUT_READ_CHUNK);
    // Bytes of the current line already scanned for a newline, so long lines are scanned once.
    let mut scanned = 0;
    // The earlier pieces of a long line: cut off the buffer as they fill, never joined.
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut pieces_len = 0;
    // While a line over the limit is being thrown away: what is known of it.
    let mut oversized: Option<Oversized> = None;
    loop {
        if let Some(pos) = memchr::memchr(b'\n', &buffer[scanned..]) {
            let end = buffer.split_to(scanned + pos + 1).freeze();
            scanned = 0;
            if let Some(dropped) = oversized.take() {
                dropped.finish(&end, &name, limits, mux);
            } else if pieces.is_empty() {
                dispatch(end, &name, &router, &stdin);
            } else {
                pieces.push(end);
                pieces_len = 0;
                dispatch_long(std::mem::take(&mut pieces), &name, &router, &stdin);
            }
            continue;
        }
        scanned = buffer.len();
        // Once a line is known to be too long, every further piece of it is dropped at once.
        if pieces_len + scanned > limits.max_message_bytes || (oversized.is_some() && scanned > 0) {
            let dropped = oversized.get_or_insert_with(|| {
                Oversized::starting_with(pieces.first().map_or(&buffer[..], |p| &p[..]))
            });
            for piece in pieces.drain(..) {
                dropped.discard(&piece);
            }
            pieces_len = 0;
            dropped.discard(&buffer);
            buffer.clear();
            scanned = 0;
        } else if scanned >= LONG_LINE_PIECE {
            pieces_len += scanned;
            pieces.push(buffer.split().freeze());
            scanned = 0;
        }
        if buffer.capacity() - buffer.len() < STDOUT_READ_CHUNK / 4 {
            // A long line gets whole fresh pieces, so its bytes are never moved to grow a buffer.
            let want = if pieces.is_empty() {
                STDOUT_READ_CHUNK
            } else {
                LONG_LINE_PIECE
            };
            buffer.reserve(want);
        }
        match stdout.read_buf(&mut buffer).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                warn!(child = %name, "reading the child's stdout failed: {e}");
                break;
            }
        }
    }
    if oversized.is_none() && !(buffer.is_empty() && pieces.is_empty()) {
        pieces.push(buffer.freeze());
        dispatch(Bytes::from(pieces.concat()), &name, &router, &stdin);
    }
}

/// A line longer than this is kept in pieces of this size.
const LONG_LINE_PIECE: usize = 1024 * 1024;
/// A long line's last piece is made at least this long, so its closing `"id":N}` is in it.
const LONG_LINE_TAIL: usize = 256;

/// Routes a long line without joining or parsing it when it can be recognised as an answer by
/// its ends (see [`jsonrpc::sniff_response`]); anything else is joined and dispatched as usual.
fn dispatch_long(mut pieces: Vec<Bytes>, name: &str, router: &Router, stdin: &Stdin) {
    let mut last = pieces.pop().expect("a long line has pieces");
    last.truncate(last.trim_ascii_end().len());
    if last.len() < LONG_LINE_TAIL {
        let previous = pieces.pop().expect("a long line has several pieces");
        last = Bytes::from([previous, last].concat());
    }
    pieces.push(last);
    let first = &pieces[0];
    let last = &pieces[pieces.len() - 1];
    let Some(sniffed) = jsonrpc::sniff_response(&first[..first.len().min(SNIFF_BYTES)], last)
    else {
        dispatch(Bytes::from(pieces.concat()), name, router, stdin);
        return;
    };
    if sniffed.ambiguous {
        fail_unreadable(
            sniffed.bridge_id,
            "it carries both result and error",
            name,
            router,
        );
        return;
    }
    let (id_piece, id_span) = match sniffed.at {
        IdAt::Start(span) => (0, span),
        IdAt::End(span) => (pieces.len() - 1, span),
    };
    let answer = Answer {
        pieces,
        id_piece,
        id_span,
    };
    if router.mux.complete(sniffed.bridge_id, answer).is_err() {
        warn!(child = %name, "dropping an answer to id {}: no request is waiting for it (the client left)", sniffed.bridge_id);
    }
}

/// A stdout line over the size limit, thrown away as it arrives. Its id is looked for near its
/// start and end, so that the request it answers gets an error instead of waiting forever.
struct Oversized {
    /// The line's first bytes, where its top-level keys (and often its id) are.
    start: Vec<u8>,
    bytes: usize,
    /// The last bytes seen, where a trailing `"id":N}` would be.
    tail: Vec<u8>,
}

const SNIFF_BYTES: usize = 64 * 1024;
const TAIL_BYTES: usize = 64;

impl Oversized {
    fn starting_with(start: &[u8]) -> Self {
        Self {
            start: start[..start.len().min(SNIFF_BYTES)].to_vec(),
            bytes: 0,
            tail: Vec::new(),
        }
    }

    fn discard(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len();
        self.keep_tail(chunk);
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(TAIL_BYTES)..]);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }

    fn finish(mut self, end: &[u8], name: &str, limits: ChildLimits, mux: &Mux) {
        self.bytes += end.len();
        self.keep_tail(end);
        let id = jsonrpc::sniff_bridge_id(&self.start, &self.tail);
        let message = format!(
            "mcp-bridge: the MCP server's answer was {} bytes, over the {} byte limit (--max-message-bytes)",
            self.bytes, limits.max_message_bytes
        );
        let failed = id.is_some_and(|id| {
            mux.fail(
                id,
                NoAnswer {
                    code: jsonrpc::code::ANSWER_TOO_LARGE,
                    message: message.clone(),
                },
            )
        });
        if failed {
            warn!(child = %name, "{message}; its request got an error");
        } else {
            warn!(child = %name, "{message}; no waiting request found for it");
        }
    }
}

/// Routes one line from the child: answers go to their waiting request, everything else to the
/// [`Router`], and junk is skipped.
fn dispatch(line: Bytes, name: &str, router: &Router, stdin: &Stdin) {
    let text = line.trim_ascii_end();
    if text.trim_ascii_start().is_empty() {
        return;
    }
    let mut line = line.slice(..text.len());
    // A byte-order mark (Windows tools write one) is not part of the message.
    if line.starts_with(b"\xEF\xBB\xBF") {
        line = line.slice(3..);
    }
    let message = match jsonrpc::parse(&line) {
        Ok(message) => message,
        Err(e) => {
            // An answer that cannot be read (invalid UTF-8, both result and error, a duplicate
            // key) still says, in its first and last bytes, which request it answers: that
            // request gets an error rather than waiting forever.
            let start = &line[..line.len().min(SNIFF_BYTES)];
            let end = &line[line.len().saturating_sub(TAIL_BYTES)..];
            if let Some(bridge_id) = jsonrpc::sniff_bridge_id(start, end) {
                fail_unreadable(bridge_id, &e.to_string(), name, router);
                return;
            }
            warn!(child = %name, "skipping a stdout line that is not a JSON-RPC message ({e}): {}", preview(&line));
            router.noise(Noise::Stdout(&line));
            return;
        }
    };
    if let Kind::Response { id } = &message.kind {
        let Some(bridge_id) = id.as_bridge_id() else {
            warn!(child = %name, "dropping an answer to id {} that the bridge never sent", id.raw);
            return;
        };
        let answer = Answer::whole(line.clone(), id.span.clone());
        if router.mux.complete(bridge_id, answer).is_err() {
            warn!(child = %name, "dropping an answer to id {bridge_id}: no request is waiting for it (the client left)");
        }
        return;
    }
    router.from_child(&line, &message, stdin);
}

/// The child answered request `bridge_id` with something that cannot be read: the client gets
/// a JSON-RPC error saying so instead of a guess at what was meant.
fn fail_unreadable(bridge_id: u64, why: &str, name: &str, router: &Router) {
    let failed = router.mux.fail(
        bridge_id,
        NoAnswer {
            code: jsonrpc::code::INTERNAL_ERROR,
            message: format!("mcp-bridge: the MCP server's answer cannot be read: {why}"),
        },
    );
    if failed {
        warn!(child = %name, "an answer that cannot be read ({why}); its request got an error");
    }
}

/// Logs the child's stderr line by line, remembering the last line for exit reports.
async fn log_stderr(
    stderr: impl AsyncRead + Unpin,
    name: String,
    last_line: Arc<Mutex<String>>,
    router: Arc<Router>,
) {
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if line.trim().is_empty() {
                    continue;
                }
                // Remembered before logging, so an exit report never misses a line already shown.
                last_line
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone_from(&line);
                info!(target: "mcp_bridge::child::stderr", child = %name, "{line}");
                router.noise(Noise::Stderr(&line));
            }
            Ok(None) => break,
            Err(e) => {
                // Invalid UTF-8: keep logging what follows rather than stop reading (a full
                // pipe would block the child).
                debug!(child = %name, "unreadable stderr line: {e}");
            }
        }
    }
}

fn describe_exit(status: Option<ExitStatus>, last_stderr: &Mutex<String>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("the child exited with status {code}"),
            (None, Some(signal)) => format!("the child was killed by signal {signal}"),
            _ => "the child exited".to_owned(),
        },
        None => "the child closed its stdout".to_owned(),
    };
    let last = last_stderr.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_empty() {
        how
    } else {
        format!("{how} (last stderr line: {})", last.trim())
    }
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]);
    if line.len() > 200 {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}
