//! What the child writes: its stdout read line by line (a long line in pieces, never joined;
//! one over the limit thrown away as it arrives), each line classified and reported to the
//! [`Listener`]; its stderr logged line by line.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tracing::{debug, info, warn};

use super::listener::{Answer, Listener, Noise};
use super::stdin::Stdin;
use crate::sync::Lock;
use crate::wire::jsonrpc::{self, Kind};
use crate::wire::sniff::{self, IdAt};

/// Limits on what the child may send.
#[derive(Debug, Clone, Copy)]
pub struct ChildLimits {
    /// A stdout line longer than this is dropped instead of buffered without bound.
    pub max_message_bytes: usize,
}

const STDOUT_READ_CHUNK: usize = 256 * 1024;

/// Reads stdout line by line and reports each message.
pub(super) async fn read_stdout(
    mut stdout: impl AsyncRead + Unpin,
    name: String,
    limits: ChildLimits,
    listener: Arc<dyn Listener>,
    stdin: Stdin,
) {
    let listener = &*listener;
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
                dropped.finish(&end, &name, limits, listener);
            } else if pieces.is_empty() {
                dispatch(end, &name, listener, &stdin);
            } else {
                pieces.push(end);
                pieces_len = 0;
                dispatch_long(std::mem::take(&mut pieces), &name, listener, &stdin);
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
        dispatch(Bytes::from(pieces.concat()), &name, listener, &stdin);
    }
}

/// A line longer than this is kept in pieces of this size.
const LONG_LINE_PIECE: usize = 1024 * 1024;
/// A long line's last piece is made at least this long, so its closing `"id":N}` is in it.
const LONG_LINE_TAIL: usize = 256;

/// Routes a long line without joining or parsing it when it can be recognised as an answer by
/// its ends (see [`jsonrpc::sniff_response`]); anything else is joined and dispatched as usual.
fn dispatch_long(mut pieces: Vec<Bytes>, name: &str, listener: &dyn Listener, stdin: &Stdin) {
    let mut last = pieces.pop().expect("a long line has pieces");
    last.truncate(last.trim_ascii_end().len());
    if last.len() < LONG_LINE_TAIL {
        let previous = pieces.pop().expect("a long line has several pieces");
        last = Bytes::from([previous, last].concat());
    }
    pieces.push(last);
    let first = &pieces[0];
    let last = &pieces[pieces.len() - 1];
    let Some(sniffed) = sniff::sniff_response(&first[..first.len().min(SNIFF_BYTES)], last) else {
        dispatch(Bytes::from(pieces.concat()), name, listener, stdin);
        return;
    };
    if sniffed.ambiguous {
        fail_unreadable(
            sniffed.bridge_id,
            "it carries both result and error",
            name,
            listener,
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
    if !listener.answer(sniffed.bridge_id, answer) {
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

    fn finish(mut self, end: &[u8], name: &str, limits: ChildLimits, listener: &dyn Listener) {
        self.bytes += end.len();
        self.keep_tail(end);
        let id = sniff::sniff_bridge_id(&self.start, &self.tail);
        let message = format!(
            "mcp-bridge: the MCP server's answer was {} bytes, over the {} byte limit (--max-message-bytes)",
            self.bytes, limits.max_message_bytes
        );
        let failed = id.is_some_and(|id| {
            listener.no_answer(id, jsonrpc::code::ANSWER_TOO_LARGE, message.clone())
        });
        if failed {
            warn!(child = %name, "{message}; its request got an error");
        } else {
            warn!(child = %name, "{message}; no waiting request found for it");
        }
    }
}

/// Reports one line from the child: an answer as the answer to its bridge id, any other message
/// as a message, junk as noise.
fn dispatch(line: Bytes, name: &str, listener: &dyn Listener, stdin: &Stdin) {
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
            if let Some(bridge_id) = sniff::sniff_bridge_id(start, end) {
                fail_unreadable(bridge_id, &e.to_string(), name, listener);
                return;
            }
            warn!(child = %name, "skipping a stdout line that is not a JSON-RPC message ({e}): {}", preview(&line));
            listener.noise(Noise::Stdout(&line));
            return;
        }
    };
    if let Kind::Response { id } = &message.kind {
        let Some(bridge_id) = id.as_bridge_id() else {
            warn!(child = %name, "dropping an answer to id {} that the bridge never sent", id.raw);
            return;
        };
        let answer = Answer::whole(line.clone(), id.span.clone());
        if !listener.answer(bridge_id, answer) {
            warn!(child = %name, "dropping an answer to id {bridge_id}: no request is waiting for it (the client left)");
        }
        return;
    }
    listener.message(&line, &message, stdin);
}

/// The child answered request `bridge_id` with something that cannot be read: the client gets
/// a JSON-RPC error saying so instead of a guess at what was meant.
fn fail_unreadable(bridge_id: u64, why: &str, name: &str, listener: &dyn Listener) {
    let failed = listener.no_answer(
        bridge_id,
        jsonrpc::code::INTERNAL_ERROR,
        format!("mcp-bridge: the MCP server's answer cannot be read: {why}"),
    );
    if failed {
        warn!(child = %name, "an answer that cannot be read ({why}); its request got an error");
    }
}

/// Logs the child's stderr line by line, remembering the last line for exit reports.
pub(super) async fn log_stderr(
    stderr: impl AsyncRead + Unpin,
    name: String,
    last_line: Arc<Mutex<String>>,
    listener: Arc<dyn Listener>,
) {
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if line.trim().is_empty() {
                    continue;
                }
                // Remembered before logging, so an exit report never misses a line already shown.
                last_line.locked().clone_from(&line);
                info!(target: "mcp_bridge::child::stderr", child = %name, "{line}");
                listener.noise(Noise::Stderr(&line));
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

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]);
    if line.len() > 200 {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}
