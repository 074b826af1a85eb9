//! The deployment files under `deploy/` (and `examples/docker-compose.dify.yml`), checked with
//! the real tools: HAProxy's config check, and HAProxy running the shipped `haproxy.cfg` in front
//! of three real replicas; `docker-compose config` on the compose files; `kubernetes-validate`
//! on the Kubernetes manifests against its bundled schemas; `yamllint` on every YAML file (and on
//! the release workflow).
//! A missing tool fails the test (`scripts/install-test-deps` installs them): a skipped check
//! would pass without checking anything.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::json;
use support::{Bridge, Http, initialize_body, reply_messages, repo_root, tool_text};

/// Shared by the replicas behind HAProxy (at least 32 characters, as the bridge requires).
const SECRET: &str = "the-secret-the-replicas-behind-haproxy-share";

const REPLICAS_COMPOSE: &str = "deploy/docker-compose.yml";
const DIFY_COMPOSE: &str = "examples/docker-compose.dify.yml";

// ---------------------------------------------------------------------------------------------
// The tools, each required.
// ---------------------------------------------------------------------------------------------

/// A program of the `deploy-tools` venv (`tests/clients/requirements-deploy.txt`).
fn venv_tool(name: &str) -> String {
    support::require(&support::test_deps().join("deploy-tools/bin").join(name))
}

/// Debian's haproxy.
fn haproxy_binary() -> &'static str {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("haproxy is missing: run scripts/install-test-deps (Debian's haproxy package)")
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

/// stdout and stderr together, for assertions and failure messages.
fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The replica names a load balancer config routes to (`bridge-N` of `bridge-N:8000`).
fn replica_names_in(config: &str) -> BTreeSet<String> {
    config
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter_map(|word| word.strip_suffix(":8000"))
        .filter(|name| name.starts_with("bridge-"))
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// HAProxy
// ---------------------------------------------------------------------------------------------

/// The shipped `haproxy.cfg` with its replicas `bridge-N:8000` replaced by `replicas` (in
/// order) and its listening port by `listen_port` on loopback: HAProxy resolves server names
/// when it starts, and the test has no `bridge-N` hosts.
fn haproxy_config_for(replicas: &[String], listen_port: u16) -> String {
    let shipped = read("deploy/haproxy/haproxy.cfg");
    assert!(
        shipped.contains("    bind :8080\n"),
        "haproxy.cfg listens on :8080"
    );
    let mut config = shipped.replace(
        "    bind :8080\n",
        &format!("    bind 127.0.0.1:{listen_port}\n"),
    );
    for (index, replica) in replicas.iter().enumerate() {
        let name = format!(" bridge-{}:8000", index + 1);
        assert!(config.contains(&name), "haproxy.cfg has no{name}");
        config = config.replace(&name, &format!(" {replica}"));
    }
    assert!(
        replica_names_in(&config).is_empty(),
        "haproxy.cfg names more replicas than were given:\n{config}"
    );
    config
}

/// A fresh directory of its own for one HAProxy, removed first if a run left it.
fn haproxy_dir(port: u16) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-bridge-haproxy-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("haproxy directory");
    dir
}

/// `haproxy -c` on a config file: its verdict and everything it said.
fn haproxy_check(config: &Path) -> Output {
    run(Command::new(haproxy_binary())
        .arg("-c")
        .arg("-f")
        .arg(config))
}

/// HAProxy in the foreground (`-db`: no daemon, no master process, no pidfile) on a config
/// written to a directory of its own. Dropping it kills it, so no HAProxy outlives a test.
struct Haproxy {
    process: Option<Child>,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl Haproxy {
    fn start(replicas: &[String]) -> Haproxy {
        let port = free_port();
        let dir = haproxy_dir(port);
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, haproxy_config_for(replicas, port)).expect("write haproxy.cfg");
        let check = haproxy_check(&config);
        assert!(
            check.status.success(),
            "haproxy -c refused the config:\n{}",
            text_of(&check)
        );
        // The config logs every request to stdout: kept in a file, for failure messages.
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy.log");
        let process = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let mut haproxy = Haproxy {
            process: Some(process),
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        haproxy.wait_listening(port);
        haproxy
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = self
                .process
                .as_mut()
                .expect("running")
                .try_wait()
                .expect("try_wait");
            assert!(
                exited.is_none(),
                "haproxy exited ({exited:?}); its log:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen within 10 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let pid = process.id() as i32;
            let _ = process.kill();
            let _ = process.wait();
            support::assert_no_survivors(&[pid]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn haproxy_accepts_the_shipped_config_without_a_warning() {
    let replicas: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let port = free_port();
    let dir = haproxy_dir(port);
    let config = dir.join("haproxy.cfg");
    std::fs::write(&config, haproxy_config_for(&replicas, port)).expect("write haproxy.cfg");
    let check = haproxy_check(&config);
    let said = text_of(&check);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(check.status.success(), "haproxy -c failed:\n{said}");
    assert!(said.contains("Configuration file is valid"), "{said}");
    assert!(
        !said.contains("[WARNING]") && !said.contains("[ALERT]"),
        "haproxy -c warned:\n{said}"
    );
}

#[test]
fn haproxy_accepts_the_shipped_config_as_is_with_unresolvable_replica_names() {
    // As shipped (bridge-N, unknown here): `init-addr last,libc,none` starts those replicas
    // down instead of refusing to start, so HAProxy may come up before its replicas do.
    let shipped = repo_root().join("deploy/haproxy/haproxy.cfg");
    let check = haproxy_check(&shipped);
    let said = text_of(&check);
    assert!(check.status.success(), "haproxy -c failed:\n{said}");
    assert!(!said.contains("[ALERT]"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn haproxy_spreads_initialize_and_pins_each_session_to_one_replica() {
    let replicas: Vec<Bridge> = (0..3)
        .map(|_| Bridge::start(&["--demo", "--session-secret", SECRET]))
        .collect();
    let addresses: Vec<String> = replicas
        .iter()
        .map(|bridge| {
            bridge
                .url
                .trim_start_matches("http://")
                .trim_end_matches("/mcp")
                .to_owned()
        })
        .collect();
    let haproxy = Haproxy::start(&addresses);
    let url = format!("{}/mcp", haproxy.base);
    let http = Http::new();
    let replica_of = |reply: &support::Reply| -> String {
        reply
            .header("x-mcp-bridge-replica")
            .unwrap_or_else(|| {
                panic!(
                    "no X-MCP-Bridge-Replica header: {:?}\nhaproxy's log:\n{}",
                    reply.headers,
                    haproxy.log()
                )
            })
            .to_owned()
    };

    // initialize carries no Mcp-Session-Id: HAProxy balances those round robin.
    let mut initialized_on = BTreeSet::new();
    let mut sessions = Vec::new();
    for id in 0..9 {
        let reply = http
            .post(&url, None, initialize_body(id, "2025-06-18"))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{:?}\nhaproxy's log:\n{}",
            reply.body,
            haproxy.log()
        );
        initialized_on.insert(replica_of(&reply));
        sessions.push(reply.session());
    }
    assert!(
        initialized_on.len() > 1,
        "every initialize went to {initialized_on:?}"
    );
    let known: BTreeSet<String> = ["bridge-1", "bridge-2", "bridge-3"]
        .map(str::to_owned)
        .into();
    assert!(initialized_on.is_subset(&known), "{initialized_on:?}");

    // Every later request of a session carries its id: all of them to one replica (which may
    // not be the one that answered initialize: it accepts the session by its signature).
    let mut pinned_to = BTreeMap::new();
    for (index, session) in sessions.iter().enumerate() {
        let mut answered_by = BTreeSet::new();
        let note = http
            .post(
                &url,
                Some(session),
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            )
            .await;
        assert_eq!(note.status, StatusCode::ACCEPTED, "{:?}", note.body);
        answered_by.insert(replica_of(&note));
        for call in 0..3 {
            let body = json!({
                "jsonrpc": "2.0", "id": call, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": "hi"}}
            });
            let reply = http.post(&url, Some(session), body.to_string()).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            let answer = reply_messages(&reply).pop().expect("an answer");
            assert_eq!(answer["id"], call, "{answer}");
            assert_eq!(tool_text(&answer), "hi", "{answer}");
            answered_by.insert(replica_of(&reply));
        }
        assert_eq!(
            answered_by.len(),
            1,
            "session {index} was answered by {answered_by:?}"
        );
        pinned_to.insert(index, answered_by.pop_first().expect("one replica"));
    }
    drop(haproxy);
    // The graceful stop, which also checks that each replica's server went with it.
    for mut replica in replicas {
        assert!(replica.stop().success(), "{}", replica.log());
    }
    eprintln!("initialize answered by {initialized_on:?}; sessions pinned to {pinned_to:?}");
}

// ---------------------------------------------------------------------------------------------
// docker-compose
// ---------------------------------------------------------------------------------------------

/// `docker-compose -f FILE ARGS` with exactly the given MCP_BRIDGE_* variables set. It
/// validates and resolves the file without a Docker engine.
fn docker_compose(file: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(venv_tool("docker-compose"));
    command
        .arg("-f")
        .arg(repo_root().join(file))
        .args(args)
        .current_dir(repo_root())
        .env_remove("MCP_BRIDGE_SESSION_SECRET")
        .env_remove("MCP_BRIDGE_AUTH_TOKEN")
        .env_remove("DIFY_NETWORK")
        .envs(env.iter().copied());
    run(&mut command)
}

const BOTH_SET: [(&str, &str); 2] = [
    (
        "MCP_BRIDGE_SESSION_SECRET",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ),
    ("MCP_BRIDGE_AUTH_TOKEN", "a-token"),
];

#[test]
fn docker_compose_accepts_the_replicas_file_with_its_secret_and_token() {
    let check = docker_compose(REPLICAS_COMPOSE, &["config", "-q"], &BOTH_SET);
    assert!(
        check.status.success(),
        "docker-compose config -q refused {REPLICAS_COMPOSE}:\n{}",
        text_of(&check)
    );
}

#[test]
fn docker_compose_refuses_the_replicas_file_without_the_secret_or_the_token() {
    for (missing, present) in [(BOTH_SET[0], BOTH_SET[1]), (BOTH_SET[1], BOTH_SET[0])] {
        let check = docker_compose(REPLICAS_COMPOSE, &["config", "-q"], &[present]);
        let said = text_of(&check);
        assert!(!check.status.success(), "accepted without {}", missing.0);
        assert!(
            said.contains(&format!("set {} first", missing.0)),
            "the refusal does not say what to set:\n{said}"
        );
    }
}

#[test]
fn the_replicas_of_the_compose_file_are_the_ones_nginx_and_haproxy_route_to() {
    let services = docker_compose(REPLICAS_COMPOSE, &["config", "--services"], &BOTH_SET);
    assert!(services.status.success(), "{}", text_of(&services));
    let services: BTreeSet<String> = String::from_utf8_lossy(&services.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let bridges: BTreeSet<String> = services
        .iter()
        .filter(|name| name.starts_with("bridge-"))
        .cloned()
        .collect();
    assert_eq!(bridges.len(), 3, "{services:?}");
    assert!(services.contains("nginx"), "{services:?}");
    for config in ["deploy/nginx/mcp-bridge.conf", "deploy/haproxy/haproxy.cfg"] {
        assert_eq!(
            replica_names_in(&read(config)),
            bridges,
            "{config} and {REPLICAS_COMPOSE} name different replicas"
        );
    }
}

#[test]
fn docker_compose_accepts_the_dify_example_with_its_token_only() {
    let check = docker_compose(DIFY_COMPOSE, &["config", "-q"], &[BOTH_SET[1]]);
    assert!(
        check.status.success(),
        "docker-compose config -q refused {DIFY_COMPOSE}:\n{}",
        text_of(&check)
    );
    let without = docker_compose(DIFY_COMPOSE, &["config", "-q"], &[]);
    assert!(!without.status.success(), "accepted without a token");
    assert!(
        text_of(&without).contains("set MCP_BRIDGE_AUTH_TOKEN first"),
        "{}",
        text_of(&without)
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes and YAML
// ---------------------------------------------------------------------------------------------

fn kubernetes_dir() -> PathBuf {
    repo_root().join("deploy/kubernetes")
}

/// Every manifest of `deploy/kubernetes/`, by file name (kustomization.yaml is kustomize's, not
/// a Kubernetes object).
fn kubernetes_manifests() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(kubernetes_dir())
        .expect("deploy/kubernetes")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    names.sort();
    names
}

#[test]
fn kubernetes_validate_accepts_every_manifest_strictly() {
    let manifests = kubernetes_manifests();
    assert!(manifests.len() >= 4, "{manifests:?}");
    // --strict: an unknown field (a typo) fails too, not only a wrong type.
    let check = run(Command::new(venv_tool("kubernetes-validate"))
        .arg("--strict")
        .args(&manifests)
        .current_dir(kubernetes_dir()));
    let said = text_of(&check);
    assert!(
        check.status.success(),
        "kubernetes-validate failed:\n{said}"
    );
    // A kind it has no schema for only warns, and exits 0: every file must have passed.
    assert!(
        !said.contains("WARN") && !said.contains("ERROR"),
        "kubernetes-validate:\n{said}"
    );
    for manifest in &manifests {
        assert!(
            said.lines()
                .any(|line| line.starts_with(&format!("INFO {manifest} passed"))),
            "{manifest} was not validated:\n{said}"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest_but_the_secret_example() {
    let kustomization = std::fs::read_to_string(kubernetes_dir().join("kustomization.yaml"))
        .expect("kustomization.yaml");
    let resources: BTreeSet<String> = kustomization
        .split("resources:")
        .nth(1)
        .expect("a resources list")
        .lines()
        .skip(1)
        .take_while(|line| line.trim().is_empty() || line.starts_with("  "))
        .filter_map(|line| line.trim().strip_prefix("- "))
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = kubernetes_manifests()
        .into_iter()
        .filter(|name| !name.contains(".example."))
        .collect();
    assert_eq!(resources, expected);
}

/// Every YAML file under `dir`, recursively.
fn yaml_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(yaml_files_under(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn yamllint_finds_nothing_in_the_deploy_yaml() {
    let mut files = yaml_files_under(&repo_root().join("deploy"));
    assert!(files.len() >= 6, "{files:?}");
    files.push(repo_root().join(DIFY_COMPOSE));
    // Not a deployment file, but YAML that no test runs: yamllint at least reads it.
    files.push(repo_root().join(".github/workflows/release.yml"));
    // yamllint's relaxed rules, without the line length: comments here run to 100 columns
    // like the rest of the repository. --strict fails on warnings too.
    let check = run(Command::new(venv_tool("yamllint"))
        .args(["--strict", "--format", "parsable", "--config-data"])
        .arg("{extends: relaxed, rules: {line-length: disable}}")
        .args(&files));
    assert!(check.status.success(), "yamllint:\n{}", text_of(&check));
}
