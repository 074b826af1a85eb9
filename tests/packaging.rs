//! Packaging: the shell completions and man page generated from the clap definitions, the hidden
//! `healthcheck` the Docker image runs, and `cargo install` from the checkout, offline.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use mcp_bridge::front::cli::Cli;
use support::{BIN, Bridge, repo_root};

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];
/// Internal subcommands that must stay out of help, completions and the man page.
const HIDDEN: [&str; 3] = ["healthcheck", "demo-server", "guard"];

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-bridge")
}

fn stdout_of(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "mcp-bridge {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A fresh empty directory under the target directory, removed first if a run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = repo_root()
        .join("target/tmp")
        .join(format!("packaging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

#[test]
fn help_lists_the_packaging_subcommands_but_not_the_internal_ones() {
    let help = stdout_of(&["--help"]);
    let commands = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Arguments:").next())
        .expect("a Commands section");
    for visible in ["doctor", "completions", "man", "help"] {
        assert!(
            commands.contains(&format!("  {visible} ")),
            "{visible}:\n{help}"
        );
    }
    for hidden in HIDDEN {
        assert!(!help.contains(hidden), "{hidden} is listed:\n{help}");
    }
}

#[test]
fn a_server_command_named_like_a_subcommand_still_goes_after_double_dash() {
    let cli = Cli::try_parse_from(["mcp-bridge", "--port", "0", "--", "man", "completions"])
        .expect("parses");
    assert!(cli.subcommand.is_none());
    assert_eq!(cli.command, ["man", "completions"]);
    // And the subcommands take no bridge options in front of them.
    assert!(Cli::try_parse_from(["mcp-bridge", "--port", "1", "man"]).is_err());
}

#[test]
fn bash_completions_name_the_binary_and_its_options() {
    let script = stdout_of(&["completions", "bash"]);
    assert!(script.contains("mcp-bridge"), "{script}");
    assert!(script.contains("--port"), "{script}");
    assert!(script.contains("complete -F"), "{script}");
}

#[test]
fn every_shell_gets_a_script_without_the_internal_subcommands() {
    for shell in SHELLS {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("mcp-bridge"), "{shell}");
        // fish spells options `-l port`, the others `--port`.
        assert!(script.contains("port"), "{shell}");
        assert!(script.contains("doctor"), "{shell}");
        for hidden in HIDDEN {
            assert!(!script.contains(hidden), "{shell} offers {hidden}");
        }
    }
    let unknown = run(&["completions", "tcsh"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("possible values"));
}

/// Completes `words` (the last one being typed) with the generated bash script.
fn bash_complete(words: &[&str]) -> String {
    let script = stdout_of(&["completions", "bash"]);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let program = format!(
        "{script}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; \
         _mcp__bridge mcp-bridge '{current}' '{previous}'; echo \"${{COMPREPLY[*]}}\"",
        words = quoted.join(" "),
        current = words[cword],
        previous = words[cword - 1],
    );
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .unwrap_or_else(|e| {
            panic!("bash, which runs the generated completions, could not be started: {e}")
        });
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn bash_completes_options_subcommands_and_their_arguments() {
    assert_eq!(bash_complete(&["mcp-bridge", "--po"]), "--port");
    assert_eq!(bash_complete(&["mcp-bridge", "comp"]), "completions");
    // After a subcommand (clap_complete gets this wrong for hyphenated names; we patch it).
    let shells = bash_complete(&["mcp-bridge", "completions", ""]);
    for shell in SHELLS {
        assert!(shells.contains(shell), "{shells}");
    }
    let man = bash_complete(&["mcp-bridge", "man", "--"]);
    assert!(man.contains("--dir"), "{man}");
}

#[test]
fn man_prints_a_roff_page_with_the_options() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH mcp-bridge 1"), "{page}");
    assert!(page.contains(".SH OPTIONS"), "{page}");
    // roff escapes hyphens (`\-\-port`); read as a person would see it.
    let plain = page.replace("\\-", "-");
    for needle in [
        "--port",
        "--auth-token",
        "MCP_BRIDGE_AUTH_TOKEN",
        "doctor",
        "completions",
    ] {
        assert!(plain.contains(needle), "{needle} missing:\n{page}");
    }
    for hidden in HIDDEN {
        assert!(!plain.contains(hidden), "{hidden} in the man page");
    }
}

#[test]
fn man_dir_writes_a_page_per_visible_subcommand() {
    let dir = scratch("man");
    stdout_of(&["man", "--dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "mcp-bridge-completions.1",
            "mcp-bridge-doctor.1",
            "mcp-bridge-man.1",
            "mcp-bridge.1"
        ]
    );
    let main = std::fs::read_to_string(dir.join("mcp-bridge.1")).unwrap();
    assert_eq!(main, stdout_of(&["man"]));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn healthcheck(url: &str) -> Output {
    run(&["healthcheck", "--url", url, "--timeout", "5"])
}

#[test]
fn healthcheck_exits_0_on_readyz_even_with_a_token_and_1_otherwise() {
    let bridge = Bridge::start(&["--demo", "--auth-token", "packaging-secret"]);
    let base = bridge.url.trim_end_matches("/mcp").to_owned();
    // The ready line comes after the handshake, but allow a moment all the same.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = healthcheck(&format!("{base}/readyz"));
        if ready.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "readyz never passed: {ready:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(healthcheck(&format!("{base}/healthz")).status.success());
    // The MCP endpoint wants the token: 401 is not healthy.
    let denied = healthcheck(&bridge.url);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = healthcheck(&format!("http://127.0.0.1:{port}/readyz"));
    assert_eq!(closed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&closed.stderr).contains("cannot connect"));
    // Only plain HTTP.
    let https = healthcheck(&format!("https://127.0.0.1:{port}/readyz"));
    assert_eq!(https.status.code(), Some(1));
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `cargo install --path . --locked --offline` (1-2.5 minutes on two cores: a release build with
/// fat LTO, from the crates the test build already downloaded).
#[test]
fn cargo_install_from_the_checkout_works_offline() {
    let root = scratch("install");
    let output = Command::new(cargo())
        .current_dir(repo_root())
        .args(["install", "--path", ".", "--locked", "--offline", "--quiet"])
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(root.join("target"))
        .stdin(Stdio::null())
        .output()
        .expect("run cargo install");
    assert!(
        output.status.success(),
        "cargo install failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let installed: &Path = &root.join("bin/mcp-bridge");
    let version = Command::new(installed).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("mcp-bridge {}", env!("CARGO_PKG_VERSION"))
    );
    let completions = Command::new(installed)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&completions.stdout).contains("--port"));
    std::fs::remove_dir_all(&root).unwrap();
}
