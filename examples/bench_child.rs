//! A fast stdio MCP server for benchmarks: `echo {message}`, `payload {bytes}` (a text of that
//! many bytes, built once) and `sleep {ms, message}` (answered later by a timer thread while
//! other calls keep flowing). Answers are written inline and flushed only when no more input
//! is buffered, so a burst of requests costs few writes.
//!
//! With `BENCH_CHILD_SERIAL_MS=N` in its environment, `echo` first blocks the child's one
//! thread for N ms: a server that handles one request at a time (a Python tool waiting on an
//! API, say), whose throughput only more processes can raise.

use std::collections::{BinaryHeap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a str>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Arguments {
    #[serde(default)]
    message: String,
    #[serde(default)]
    bytes: usize,
    #[serde(default)]
    ms: u64,
}

const TOOLS: &str = r#"{"tools":[{"name":"echo","description":"Echo a message","inputSchema":{"type":"object","properties":{"message":{"type":"string"}}}},{"name":"payload","description":"A text of `bytes` bytes","inputSchema":{"type":"object","properties":{"bytes":{"type":"integer"}}}},{"name":"sleep","description":"Answer after `ms` milliseconds","inputSchema":{"type":"object","properties":{"ms":{"type":"integer"},"message":{"type":"string"}}}}]}"#;

type Out = Arc<Mutex<BufWriter<std::io::Stdout>>>;

fn text_result(id: &str, text: &str) -> String {
    encoded_text_result(id, &serde_json::to_string(text).expect("a string encodes"))
}

/// A tools/call result whose text is already a JSON string literal.
fn encoded_text_result(id: &str, text: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":{text}}}]}}}}"#
    )
}

/// Answers `sleep` calls when their time comes.
fn timer(due: mpsc::Receiver<(Instant, String)>, out: Out) {
    let mut queue: BinaryHeap<std::cmp::Reverse<(Instant, String)>> = BinaryHeap::new();
    loop {
        let wait = queue
            .peek()
            .map(|std::cmp::Reverse((at, _))| at.saturating_duration_since(Instant::now()));
        let received = match wait {
            Some(wait) => due.recv_timeout(wait),
            None => due.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(item) => queue.push(std::cmp::Reverse(item)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let mut out = out.lock().unwrap();
        while queue
            .peek()
            .is_some_and(|std::cmp::Reverse((at, _))| *at <= now)
        {
            let std::cmp::Reverse((_, answer)) = queue.pop().expect("peeked");
            let _ = out.write_all(answer.as_bytes());
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }
}

fn main() {
    let out: Out = Arc::new(Mutex::new(BufWriter::with_capacity(
        256 * 1024,
        std::io::stdout(),
    )));
    let (sleepers, due) = mpsc::channel();
    {
        let out = out.clone();
        std::thread::spawn(move || timer(due, out));
    }
    let serial_work = std::env::var("BENCH_CHILD_SERIAL_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    // The JSON-encoded text of each payload size, built once.
    let mut payloads: HashMap<usize, String> = HashMap::new();
    let mut input = BufReader::with_capacity(256 * 1024, std::io::stdin().lock());
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (message.id, message.method) else {
            continue;
        };
        let id = id.get();
        let answer = match method {
            "initialize" => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-06-18","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bench-child","version":"1.0.0"}}}}}}"#
            ),
            "tools/list" => format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{TOOLS}}}"#),
            "ping" => format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#),
            "tools/call" => {
                let call = message
                    .params
                    .and_then(|p| serde_json::from_str::<Call>(p.get()).ok());
                let arguments: Arguments = call
                    .as_ref()
                    .and_then(|c| c.arguments)
                    .and_then(|a| serde_json::from_str(a.get()).ok())
                    .unwrap_or_default();
                match call.map(|c| c.name) {
                    Some("echo") => {
                        if let Some(work) = serial_work {
                            std::thread::sleep(work);
                        }
                        text_result(id, &arguments.message)
                    }
                    Some("payload") => {
                        let text = payloads.entry(arguments.bytes).or_insert_with(|| {
                            serde_json::to_string(&"x".repeat(arguments.bytes)).expect("text")
                        });
                        encoded_text_result(id, text)
                    }
                    Some("sleep") => {
                        let at = Instant::now() + Duration::from_millis(arguments.ms);
                        let _ = sleepers.send((at, text_result(id, &arguments.message)));
                        continue;
                    }
                    _ => format!(
                        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32602,"message":"unknown tool"}}}}"#
                    ),
                }
            }
            _ => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"method not found"}}}}"#
            ),
        };
        let mut out = out.lock().unwrap();
        if out.write_all(answer.as_bytes()).is_err() || out.write_all(b"\n").is_err() {
            break;
        }
        // Flush only when no more requests are already waiting: bursts leave in one write.
        if input.buffer().is_empty() && out.flush().is_err() {
            break;
        }
    }
}
