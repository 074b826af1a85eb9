//! `mcp-bridge doctor`: the report and exit status on good servers (the demo, the fixture), a
//! broken one (tests/fixtures/broken_server.py), one that never answers, one that dies at once,
//! and a command that does not exist; and no server process left behind afterwards.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{BIN, fixture_command, repo_root};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

static MARKERS: AtomicUsize = AtomicUsize::new(0);

/// An argument that tags a server process, so the test can tell whether it is still running.
fn marker() -> String {
    format!(
        "doctor-test-{}-{}",
        std::process::id(),
        MARKERS.fetch_add(1, Ordering::Relaxed)
    )
}

fn doctor(args: &[&str]) -> Run {
    doctor_with(args, &[])
}

fn doctor_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(BIN)
        .arg("doctor")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-bridge doctor");
    let run = Run {
        code: output.status.code().expect("doctor exits, not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 report"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!("{}{}", run.stdout, run.stderr);
    run
}

/// Asserts that no process has `marker` among its arguments (the server was stopped).
fn assert_stopped(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .filter(|cmdline| {
                cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == marker.as_bytes())
            })
            .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
            .collect();
        if running.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server outlived doctor: {running:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn broken_server() -> String {
    repo_root()
        .join("tests/fixtures/broken_server.py")
        .to_string_lossy()
        .into_owned()
}

/// Every ⚠ and ✗ line is followed by exactly one hint, and ✓ lines by none.
fn assert_one_hint_per_problem(report: &str) {
    let lines: Vec<&str> = report.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let next_is_hint = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with("  hint: "));
        if line.starts_with('⚠') || line.starts_with('✗') {
            assert!(next_is_hint, "no hint after {line:?}");
        } else if line.starts_with('✓') {
            assert!(!next_is_hint, "a hint after {line:?}");
        }
    }
    let hints = lines.iter().filter(|l| l.starts_with("  hint: ")).count();
    let problems = lines
        .iter()
        .filter(|l| l.starts_with('⚠') || l.starts_with('✗'))
        .count();
    assert_eq!(hints, problems);
}

#[test]
fn the_demo_server_passes() {
    let run = doctor(&["--demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = &run.stdout;
    assert!(report.starts_with("mcp-bridge doctor: demo\n"), "{report}");
    assert!(report.contains("  server     mcp-bridge-demo "), "{report}");
    assert!(report.contains("  protocol   2025-11-25\n"), "{report}");
    assert!(
        report.contains("  tools      3: echo, add, current_time\n"),
        "{report}"
    );
    assert!(report.contains("  prompts    not offered\n"), "{report}");
    for line in [
        "✓ started and answered initialize in ",
        "✓ protocol 2025-11-25: newer than Dify accepts, the bridge answers Dify with 2025-06-18\n",
        "✓ initialize result has capabilities and serverInfo (name, version)\n",
        "✓ 3 tools in one page\n",
        "✓ every tool has an inputSchema of type \"object\"\n",
        "✓ every property has a standard type\n",
        "✓ stdout carries only JSON-RPC\n",
        "✓ no errors on stderr\n",
        "OK: nothing blocks Dify or other clients (0 warnings).\n",
    ] {
        assert!(report.contains(line), "missing {line:?} in\n{report}");
    }
    assert!(!report.contains('✗') && !report.contains('⚠'), "{report}");
}

#[test]
fn the_fixture_server_passes_with_warnings() {
    let marker = marker();
    let mut args = vec!["--"];
    let command = fixture_command();
    args.extend(command.iter().map(String::as_str));
    args.push(&marker);
    let run = doctor(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = &run.stdout;
    assert!(report.contains("  server     fixture 1.0.0\n"), "{report}");
    let tools = report
        .lines()
        .find_map(|line| line.strip_prefix("  tools      "))
        .unwrap_or_else(|| panic!("no tools line in\n{report}"));
    assert!(tools.contains(": echo, sleep, junk,"), "{report}");
    let count = tools.split(':').next().unwrap_or_default();
    assert!(report.contains("  prompts    0\n"), "{report}");
    assert!(report.contains("  resources  2\n"), "{report}");
    assert!(
        report.contains(&format!("✓ {count} tools in one page\n")),
        "{report}"
    );
    assert!(
        report.contains("⚠ 1 line on stdout that is not JSON-RPC (first: \"fixture server starting (this banner is not JSON-RPC)\")\n"),
        "{report}"
    );
    assert!(report.contains("log.data (no type)"), "{report}");
    assert!(report.contains("✓ no errors on stderr\n"), "{report}");
    assert!(
        report.contains("OK: nothing blocks Dify or other clients (2 warnings).\n"),
        "{report}"
    );
    assert_one_hint_per_problem(report);
    assert_stopped(&marker);
}

#[test]
fn a_broken_server_is_repaired_for_dify_and_fails_without_the_repair() {
    let marker = marker();
    let server = broken_server();
    let run = doctor(&["--", "python3", &server, &marker]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = &run.stdout;
    assert!(report.contains("  server     broken 0.1\n"), "{report}");
    assert!(
        report.contains("  tools      4: search, no_schema, upload, later\n"),
        "{report}"
    );
    for line in [
        "✓ protocol 2025-03-26: Dify and the SDKs accept it\n",
        "✓ 4 tools in 2 pages: the bridge gives Dify every tool on one page\n",
        "⚠ 1 tool without inputSchema: no_schema (the bridge gives them {\"type\": \"object\"})\n",
        "⚠ as the server sends them: 1 property with a non-standard type: upload.file (\"file\")\n",
        "⚠ as the server sends them: 1 property with $ref or without type, plain strings in Dify: upload.target ($ref)\n",
        "✓ for Dify: every tool has an inputSchema of type \"object\"\n",
        "✓ for Dify: every property has a standard type\n",
        "✓ repaired for Dify: upload: mapped type \"file\" of \"file\" to \"string\"; inlined $ref \"#/$defs/target\"; dropped $defs\n",
        "⚠ 1 line on stdout that is not JSON-RPC (first: \"Broken server v0.1 starting...\")\n",
        "  hint: stdout is the MCP channel: print banners and logs to stderr",
        "⚠ 1 line on stderr that looks like errors (first: \"Error: something\")\n",
        "OK: nothing blocks Dify or other clients (5 warnings).\n",
    ] {
        assert!(report.contains(line), "missing {line:?} in\n{report}");
    }
    assert_one_hint_per_problem(report);
    assert_stopped(&marker);

    // Without the repair, Dify gets the server's tools as they are.
    let run = doctor(&[
        "--repair-schemas",
        "never",
        "--",
        "python3",
        &server,
        &marker,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = &run.stdout;
    for line in [
        "⚠ 4 tools in 2 pages: Dify reads only the first page (3 tools)\n",
        "✗ 1 property with a non-standard type: upload.file (\"file\")\n",
        "⚠ 1 property with $ref or without type, plain strings in Dify: upload.target ($ref)\n",
        "FAILED: 1 blocking problem, 5 warnings.\n",
    ] {
        assert!(report.contains(line), "missing {line:?} in\n{report}");
    }
    assert_one_hint_per_problem(report);
    assert_stopped(&marker);
}

#[test]
fn the_tool_policy_is_shown_and_a_name_it_does_not_find_is_a_warning() {
    let server = broken_server();
    let run = doctor(&[
        "--deny-tool",
        "search",
        "--deny-tool",
        "serach_docs",
        "--rename-tool",
        "upload=send_file",
        "--",
        "python3",
        &server,
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = &run.stdout;
    for line in [
        "  tools      3: no_schema, send_file, later\n",
        "✓ the tool policy shows 3 of 4 tools\n",
        "✓ hidden (not listed, calls refused): search\n",
        "✓ renamed: upload as send_file\n",
        "⚠ the tool policy names a tool the server does not list: denied \"serach_docs\"\n",
    ] {
        assert!(report.contains(line), "missing {line:?} in\n{report}");
    }
    assert_one_hint_per_problem(report);
    let clash = doctor(&[
        "--rename-tool",
        "a=x",
        "--rename-tool",
        "b=x",
        "--",
        "python3",
        &server,
    ]);
    assert_eq!(clash.code, 2, "{}", clash.stdout);
    assert!(clash.stderr.contains("both renamed to"), "{}", clash.stderr);
}

#[test]
fn a_command_that_does_not_exist_fails_clearly() {
    let run = doctor(&["--", "no-such-mcp-server-anywhere", "--stdio"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = &run.stdout;
    assert!(
        report.contains(
            "✗ cannot start `no-such-mcp-server-anywhere --stdio`: No such file or directory"
        ),
        "{report}"
    );
    assert!(report.contains("  hint: check the command: is the program installed and on PATH"));
    assert!(report.contains("  server     -\n"), "{report}");
    assert!(
        report.contains("FAILED: 1 blocking problem, 0 warnings.\n"),
        "{report}"
    );
    assert_one_hint_per_problem(report);
}

#[test]
fn a_server_that_never_answers_fails_within_the_startup_timeout() {
    let marker = marker();
    let started = Instant::now();
    // --env and --cwd reach the server: BROKEN_HANG makes it silent, the relative path works.
    let run = doctor(&[
        "--startup-timeout",
        "1",
        "--env",
        "BROKEN_HANG=1",
        "--cwd",
        &repo_root().join("tests/fixtures").to_string_lossy(),
        "--",
        "python3",
        "broken_server.py",
        &marker,
    ]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = &run.stdout;
    assert!(
        report.contains(
            "✗ no answer to initialize within 1 s (last stderr line: \"Error: something\")\n"
        ),
        "{report}"
    );
    assert!(report.contains("--startup-timeout"), "{report}");
    assert!(
        report.contains("⚠ 1 line on stdout that is not JSON-RPC"),
        "{report}"
    );
    assert_one_hint_per_problem(report);
    assert_stopped(&marker);
}

#[test]
fn a_server_that_dies_at_start_shows_why() {
    let run = doctor(&[
        "--",
        "python3",
        "-c",
        "import sys; sys.stderr.write('Traceback: no API key\\n'); sys.exit(3)",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = &run.stdout;
    assert!(
        report.contains("✗ the server ended before answering initialize: the child exited with status 3 (last stderr line: Traceback: no API key)\n"),
        "{report}"
    );
    assert!(
        report.contains(
            "⚠ 1 line on stderr that looks like errors (first: \"Traceback: no API key\")"
        ),
        "{report}"
    );
    assert_one_hint_per_problem(report);
}

#[test]
fn usage_errors_exit_2() {
    let run = doctor(&[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no MCP server to check"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert_eq!(doctor(&["--demo", "--", "x"]).code, 2);
    assert_eq!(doctor(&["--env", "NOVALUE", "--demo"]).code, 2);
}

#[test]
fn a_config_file_is_checked_server_by_server() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-bridge-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("servers.json");
    let config = serde_json::json!({"mcpServers": {
        "demo": {"command": BIN, "args": ["demo-server"]},
        "broken": {"command": "python3", "args": [broken_server()], "repairSchemas": "never",
                   "tools": {"deny": ["later"]}},
    }});
    std::fs::write(&path, config.to_string()).unwrap();
    let run = doctor(&["--config", path.to_str().unwrap()]);
    assert_eq!(run.code, 1, "the broken server, unrepaired, blocks");
    assert!(run.stdout.contains("mcp-bridge doctor: demo"));
    assert!(run.stdout.contains("mcp-bridge doctor: broken"));
    assert!(run.stdout.contains("OK: nothing blocks"));
    assert!(
        run.stdout
            .contains("✓ hidden (not listed, calls refused): later\n")
    );
    assert!(
        run.stdout.contains("FAILED: 1 blocking problem"),
        "{}",
        run.stdout
    );
    std::fs::write(&path, "{\"mcpServers\": {\"a\": {}}}").unwrap();
    let run = doctor(&["--config", path.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("has no \"command\""), "{}", run.stderr);
}
