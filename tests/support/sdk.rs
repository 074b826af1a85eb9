//! The official SDK clients of tests/clients (Python `mcp` 1.x and 2.x, TypeScript
//! `@modelcontextprotocol/sdk`), each run on a scenario, bounded in time.

use std::process::Command;
use std::time::Duration;

use super::process::{self, Running};
use super::{repo_root, require, test_deps};

/// Longest a client may run; the clients give up on their own after 40 s (`--timeout`).
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

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
    process: Running,
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
    command.arg(url).args(scenario);
    RunningClient {
        sdk,
        scenario: scenario.iter().map(|s| s.to_string()).collect(),
        process: process::start(command, CLIENT_LIMIT),
    }
}

impl RunningClient {
    /// Waits (at most 60 s, then kills it) and asserts the scenario passed; returns stdout.
    pub fn finish(self) -> String {
        let finished = self.process.finish();
        let ok = finished.success() && finished.stdout.lines().any(|l| l.starts_with("OK "));
        assert!(
            ok,
            "{:?} {:?} failed after {:?} ({}):\nstdout:\n{}\nstderr:\n{}",
            self.sdk,
            self.scenario,
            finished.elapsed,
            finished.ending(),
            finished.stdout,
            finished.stderr,
        );
        finished.stdout
    }
}

/// Runs a scenario to completion; returns its stdout, which ends in an `OK` line.
pub fn run_client(sdk: Sdk, url: &str, opts: Opts, scenario: &[&str]) -> String {
    spawn_client(sdk, url, opts, scenario).finish()
}
