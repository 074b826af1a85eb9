//! The official SDK clients of tests/clients (Python `mcp` 1.x and 2.x, TypeScript
//! `@modelcontextprotocol/sdk`), each run on a scenario, bounded in time.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{repo_root, require, test_deps};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sdk {
    Python1,
    Python2,
    TypeScript,
}

pub const ALL_SDKS: [Sdk; 3] = [Sdk::Python1, Sdk::Python2, Sdk::TypeScript];

#[derive(Clone, Copy, Default)]
pub struct Opts {
    /// Python SDK 2.x: probe `server/discover` first (its default). Without it the 2.x client
    /// runs with `--mode legacy`: with a bridge that answers `server/discover` the auto mode
    /// goes stateless (2026-07-28), where sessions, GET streams and server requests do not
    /// exist, so every session feature is tested in legacy mode.
    pub auto_mode: bool,
    /// The legacy HTTP+SSE transport (URL is the `/sse` endpoint).
    pub sse: bool,
}

pub struct RunningClient {
    sdk: Sdk,
    scenario: Vec<String>,
    child: std::process::Child,
    started: Instant,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

pub fn spawn_client(sdk: Sdk, url: &str, opts: Opts, scenario: &[&str]) -> RunningClient {
    let clients = repo_root().join("tests/clients");
    let mut command = match sdk {
        Sdk::Python1 | Sdk::Python2 => {
            let venv = if sdk == Sdk::Python1 { "py1" } else { "py2" };
            let mut command = Command::new(require(&test_deps().join(venv).join("bin/python")));
            command.arg(clients.join("python_sdk_client.py"));
            command.args(["--timeout", "40"]);
            if sdk == Sdk::Python2 && !opts.auto_mode {
                command.args(["--mode", "legacy"]);
            }
            if opts.sse {
                command.args(["--transport", "sse"]);
            }
            command
        }
        Sdk::TypeScript => {
            require(&test_deps().join("node/node_modules/@modelcontextprotocol/sdk"));
            let mut command = Command::new("node");
            command.arg(clients.join("ts_sdk_client.mjs"));
            command.arg("--timeout=40");
            if opts.sse {
                command.arg("--transport=sse");
            }
            command
        }
    };
    command
        .arg(url)
        .args(scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start the SDK client");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    RunningClient {
        sdk,
        scenario: scenario.iter().map(|s| s.to_string()).collect(),
        child,
        started: Instant::now(),
        stdout: std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        }),
        stderr: std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }),
    }
}

impl RunningClient {
    /// Waits (at most 60 s, then kills it) and asserts the scenario passed; returns stdout.
    pub fn finish(mut self) -> String {
        let deadline = self.started + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        let ok =
            status.is_some_and(|s| s.success()) && stdout.lines().any(|l| l.starts_with("OK "));
        assert!(
            ok,
            "{:?} {:?} failed after {:?} ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.sdk,
            self.scenario,
            self.started.elapsed(),
            status.map_or("killed after 60 s".to_owned(), |s| s.to_string()),
        );
        stdout
    }
}

/// Runs a scenario to completion; returns its stdout, which ends in an `OK` line.
pub fn run_client(sdk: Sdk, url: &str, opts: Opts, scenario: &[&str]) -> String {
    spawn_client(sdk, url, opts, scenario).finish()
}
