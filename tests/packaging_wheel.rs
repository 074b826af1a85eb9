//! The Python package of `pyproject.toml`, built by maturin: the wheel carries the binary, installs
//! into a fresh venv with pip and no Rust, and the `mcp-bridge` of that venv answers a real MCP
//! call over HTTP; the sdist holds the crate's sources and none of the checkout's other files.
//!
//! maturin comes from `.test-deps/packaging/` (`scripts/install-test-deps`); without it the tests
//! fail, naming it. The wheel is built with the `wheel-test` profile (dev without debug info; the
//! release profile's fat LTO takes minutes) into `target/wheel-test`, a target directory of its
//! own: `cargo test` holds the lock of `target/` while the tests run. `MCP_BRIDGE_TEST_WHEEL`
//! names a wheel built already instead (a release wheel, say), which is then the one tested.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::process::{Finished, run};
use support::{Bridge, Http, repo_root, tool_text};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// maturin's own build of the crate: minutes on two busy cores, when nothing of it is built yet.
const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);
/// A venv, a pip install from a local file, a listing, a `--version`.
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// The distribution's name in `pyproject.toml` (`[project] name`), and that name as wheel and
/// sdist file names spell it (PEP 427: `-` becomes `_`). The binary is `mcp-bridge` whatever it is.
fn distribution() -> (String, String) {
    let path = repo_root().join("pyproject.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = text
        .lines()
        .find_map(|line| line.strip_prefix("name = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no name = \"…\" line in {}", path.display()));
    (name.to_owned(), name.replace('-', "_"))
}

/// The maturin of `.test-deps/packaging/`.
fn maturin() -> PathBuf {
    let path = support::test_deps().join("packaging/bin/maturin");
    assert!(
        path.exists(),
        "maturin is missing ({}): run scripts/install-test-deps, which installs \
         tests/clients/requirements-packaging.txt into .test-deps/packaging/",
        path.display()
    );
    path
}

/// Runs `command` to its end and fails the test, with everything it said, unless it succeeded.
fn succeed(what: &str, command: Command, limit: Duration) -> Finished {
    let finished = run(command, limit);
    assert!(
        finished.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        finished.ending(),
        finished.stdout,
        finished.stderr
    );
    finished
}

/// A fresh empty directory of `name` for this run, removed first if a run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("packaging-wheel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// The one file of `dir` whose name ends with `suffix`.
fn only_file_in(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "one *{suffix} in {}", dir.display());
    found.into_iter().next().unwrap()
}

/// `MCP_BRIDGE_TEST_WHEEL`, or a wheel maturin builds from the checkout now.
fn the_wheel() -> PathBuf {
    if let Some(given) = std::env::var_os("MCP_BRIDGE_TEST_WHEEL") {
        let wheel = PathBuf::from(given);
        assert!(
            wheel.is_file(),
            "MCP_BRIDGE_TEST_WHEEL names {}, which is not a file",
            wheel.display()
        );
        return wheel;
    }
    let target = repo_root().join("target/wheel-test");
    // Emptied first, so that the wheel found there is this build's; left for a look afterwards.
    let out = target.join("wheels");
    let _ = std::fs::remove_dir_all(&out);
    let mut build = Command::new(maturin());
    build
        .current_dir(repo_root())
        .args(["build", "--profile", "wheel-test", "--locked", "--offline"])
        .arg("--target-dir")
        .arg(&target)
        .arg("--out")
        .arg(&out);
    succeed("maturin build", build, BUILD_LIMIT);
    only_file_in(&out, ".whl")
}

/// The names of the entries of a wheel (`zipfile`) or an sdist (`tarfile`), one a line, as
/// Python's own module for the format reads them.
fn archive_entries(archive: &Path) -> Vec<String> {
    const LIST: &str = "import sys, tarfile, zipfile\n\
        path = sys.argv[1]\n\
        names = zipfile.ZipFile(path).namelist() if zipfile.is_zipfile(path) \
        else tarfile.open(path).getnames()\n\
        print('\\n'.join(names))";
    let mut list = Command::new("python3");
    list.args(["-c", LIST]).arg(archive);
    let listing = succeed("list the archive with python3", list, STEP_LIMIT).stdout;
    listing.lines().map(str::to_owned).collect()
}

/// A venv of its own with `wheel` installed by pip, offline: the way `pip install mcp-bridge`
/// lays it out, without the index. Returns the venv's directory.
fn venv_with(wheel: &Path) -> PathBuf {
    let venv = scratch("venv");
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    succeed("python3 -m venv", create, STEP_LIMIT);
    let mut install = Command::new(venv.join("bin/python"));
    install
        .args(["-m", "pip", "install", "--no-index", "--no-deps"])
        .args(["--disable-pip-version-check", "--no-input", "--quiet"])
        .arg(wheel);
    succeed("pip install the wheel", install, STEP_LIMIT);
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wheel_installs_with_pip_and_its_binary_bridges_the_demo() {
    let (name, file_name) = distribution();
    let wheel = the_wheel();
    let wheel_name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        wheel_name.starts_with(&format!("{file_name}-{VERSION}-py3-none-")),
        "a wheel for any Python, named after Cargo.toml's version: {wheel_name}"
    );
    let entries = archive_entries(&wheel);
    let script = format!("{file_name}-{VERSION}.data/scripts/mcp-bridge");
    assert!(
        entries.contains(&script),
        "no {script} in the wheel: {entries:?}"
    );
    // The binary and the package's metadata, no Python module and no sources.
    let unexpected: Vec<&String> = entries
        .iter()
        .filter(|entry| {
            **entry != script && !entry.starts_with(&format!("{file_name}-{VERSION}.dist-info/"))
        })
        .collect();
    assert!(unexpected.is_empty(), "more in the wheel: {unexpected:?}");

    let venv = venv_with(&wheel);
    let installed = venv.join("bin/mcp-bridge");
    let file = std::fs::symlink_metadata(&installed)
        .unwrap_or_else(|e| panic!("pip installed no {}: {e}", installed.display()));
    assert!(
        file.is_file(),
        "{} should be a file of its own, not a link into the checkout",
        installed.display()
    );

    let mut version = Command::new(&installed);
    version.arg("--version");
    let said = succeed("mcp-bridge --version", version, STEP_LIMIT).stdout;
    assert_eq!(said.trim(), format!("mcp-bridge {VERSION}"));
    let mut show = Command::new(venv.join("bin/python"));
    show.args(["-m", "pip", "show", "--disable-pip-version-check", &name]);
    let shown = succeed("pip show", show, STEP_LIMIT).stdout;
    assert!(shown.contains(&format!("Name: {name}\n")), "{shown}");
    assert!(shown.contains(&format!("Version: {VERSION}\n")), "{shown}");

    // The venv's binary on a free port (--port 0), its built-in demo server its child.
    let bridge = Bridge::start_program(&installed, &["--demo"], &[]);
    let running = std::fs::read_link(format!("/proc/{}/exe", bridge.pid())).expect("its exe");
    assert_eq!(
        running,
        installed.canonicalize().unwrap(),
        "the bridge that answers is the venv's"
    );
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "add",
            json!({"a": 2, "b": 40}),
        )
        .await;
    assert_eq!(tool_text(&answer), "42", "{answer}");
    drop(bridge);
    std::fs::remove_dir_all(&venv).unwrap();
}

#[test]
fn the_sdist_holds_the_crate_sources_and_none_of_the_checkout_s_other_files() {
    let out = scratch("sdist");
    let mut sdist = Command::new(maturin());
    sdist
        .current_dir(repo_root())
        .arg("sdist")
        .arg("--out")
        .arg(&out);
    succeed("maturin sdist", sdist, STEP_LIMIT);
    let archive = only_file_in(&out, ".tar.gz");
    let (_, file_name) = distribution();
    let top = format!("{file_name}-{VERSION}/");
    let entries = archive_entries(&archive);
    let outside: Vec<&String> = entries.iter().filter(|e| !e.starts_with(&top)).collect();
    assert!(outside.is_empty(), "outside {top}: {outside:?}");
    let files: Vec<&str> = entries
        .iter()
        .map(|entry| &entry[top.len()..])
        .filter(|file| !file.is_empty())
        .collect();
    // What building the binary needs: the manifests, the lock file, every source, and the
    // bench that Cargo.toml names (cargo refuses a manifest whose [[bench]] file is missing).
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "pyproject.toml",
        "README.md",
        "PKG-INFO",
        "benches/envelope.rs",
    ] {
        assert!(
            files.contains(&needed),
            "no {needed} in the sdist: {files:?}"
        );
    }
    for source in files_under(&repo_root().join("src")) {
        let relative = source.strip_prefix(repo_root()).unwrap().to_string_lossy();
        assert!(
            files.contains(&relative.as_ref()),
            "no {relative} in the sdist"
        );
    }
    // Nothing else: not the build outputs or test downloads (gigabytes), not the tests, their
    // fixtures, the deployment files or the scripts.
    let extra: Vec<&&str> = files
        .iter()
        .filter(|file| {
            !file.starts_with("src/")
                && !matches!(
                    **file,
                    "Cargo.toml"
                        | "Cargo.lock"
                        | "pyproject.toml"
                        | "README.md"
                        | "PKG-INFO"
                        | "benches/envelope.rs"
                        | ".gitignore"
                )
        })
        .collect();
    assert!(extra.is_empty(), "more in the sdist: {extra:?}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}
