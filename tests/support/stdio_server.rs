//! A stdio MCP server asked directly, without the bridge: what the server itself says, for tests
//! that compare it with what a client gets through the bridge. The server is started, sent
//! `initialize`, `notifications/initialized` and `tools/list` (then one per `nextCursor`) as
//! lines on its stdin, its stdout read line by line, and it is stopped (stdin closed, then
//! killed) before returning, also when the test fails.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The server's process; dropping it stops it.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    program: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(command: &[String], env: &[(&str, &str)]) -> Running {
        let (program, args) = command.split_first().expect("a command");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            stdin: child.stdin.take(),
            child,
            lines,
            program: program.clone(),
        }
    }

    fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.program));
    }

    /// The message on stdout that answers `id` (other lines skipped), within 30 s.
    fn answer(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("{} did not answer request {id} within 30 s", self.program)
            });
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }

    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = self.answer(id);
        assert!(
            answer.get("error").is_none(),
            "{} answered {method} with an error: {answer}",
            self.program
        );
        answer["result"].clone()
    }
}

/// The `result` of every page of the server's own `tools/list`, following `nextCursor`, as the
/// server sent them (after an `initialize` at protocol 2025-06-18).
pub fn own_tools_pages(command: &[String], env: &[(&str, &str)]) -> Vec<Value> {
    let mut server = Running::start(command, env);
    server.request(
        0,
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "integration-test", "version": "1.0"}
        }),
    );
    server.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut pages = Vec::new();
    let mut cursor: Option<Value> = None;
    for id in 1..=100 {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let page = server.request(id, "tools/list", params);
        cursor = page.get("nextCursor").filter(|c| !c.is_null()).cloned();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
    panic!("{command:?} kept paging its tools past 100 pages");
}

/// Every tool of the server's own `tools/list`, all pages in order.
pub fn own_tools(command: &[String], env: &[(&str, &str)]) -> Vec<Value> {
    own_tools_pages(command, env)
        .iter()
        .flat_map(|page| page["tools"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// tests/fixtures/toolbox_server.py (standard library only), as a command line after `--`.
pub fn toolbox_command() -> Vec<String> {
    vec![
        "python3".into(),
        super::repo_root()
            .join("tests/fixtures/toolbox_server.py")
            .to_string_lossy()
            .into_owned(),
    ]
}

/// tests/fixtures/pydantic_server.py on the Python SDK 1.x venv of `scripts/install-test-deps`
/// (FastMCP), as a command line after `--`; fails when the venv is missing.
pub fn pydantic_command() -> Vec<String> {
    let python = super::require(&super::test_deps().join("py1/bin/python"));
    vec![
        python,
        super::repo_root()
            .join("tests/fixtures/pydantic_server.py")
            .to_string_lossy()
            .into_owned(),
    ]
}
