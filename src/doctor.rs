//! `mcp-bridge doctor`: starts a server exactly as the bridge would, runs the handshake, lists
//! what it offers, and checks what would break Dify and other clients. Each target is checked on
//! its own ([`check`]), so any list of `(name, command)` can be checked: the command line gives
//! one, a config file could give several.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::RunError;
use crate::child::{Child, ChildCommand, ChildLimits};
use crate::handshake::StartError;
use crate::mux::{Mux, Origin};
use crate::protocol;
use crate::router::{Noise, Router};
use crate::session::Sessions;
use crate::session_id::SessionIds;
use crate::supervisor::{self, ChildSpec, RestartPolicy};

const EXAMPLES: &str = "\
Examples:
  mcp-bridge doctor --demo
  mcp-bridge doctor -- npx -y @modelcontextprotocol/server-everything
  mcp-bridge doctor --env API_KEY=secret --cwd /srv/tools -- uvx mcp-server-time

Exit status: 0 when nothing blocks clients (warnings allowed), 1 when something does, 2 for a
usage error.";

/// The `doctor` subcommand's own flags: the server to check, given as to the bridge itself.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = EXAMPLES,
    override_usage = "mcp-bridge doctor [OPTIONS] -- <COMMAND> [ARGS]...\n       mcp-bridge doctor [OPTIONS] --demo"
)]
pub struct DoctorArgs {
    /// Set an environment variable for the server (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = crate::cli::parse_env)]
    pub env: Vec<(OsString, OsString)>,

    /// Working directory for the server.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Seconds the server may take to answer initialize.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub startup_timeout: u64,

    /// Check the built-in demo server instead of a command.
    #[arg(long, conflicts_with = "command")]
    pub demo: bool,

    /// Check every server of an `mcpServers` config file instead of a command.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "demo"])]
    pub config: Option<PathBuf>,

    /// The stdio MCP server to check, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs `mcp-bridge doctor`: checks every target, prints each report on stdout, and exits 0
/// when nothing blocks clients, 1 otherwise, 2 for a usage error.
pub fn run(args: &DoctorArgs) -> ExitCode {
    let targets = match targets(args) {
        Ok(targets) => targets,
        Err(e) => {
            eprintln!("mcp-bridge doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcp-bridge doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_secs(args.startup_timeout);
    let blocked = runtime.block_on(async {
        let mut blocked = false;
        for (i, (name, command)) in targets.iter().enumerate() {
            let report = check(name, command, timeout).await;
            // A closed stdout (`| head`) must not stop the checks or their exit code.
            let separator = if i > 0 { "\n" } else { "" };
            let _ = write!(std::io::stdout().lock(), "{separator}{report}");
            blocked |= report.blocking() > 0;
        }
        blocked
    });
    if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The servers to check, by name, as the command line gives them.
pub fn targets(args: &DoctorArgs) -> Result<Vec<(String, ChildCommand)>, String> {
    let me = std::env::current_exe()
        .map_err(|e| format!("cannot find the mcp-bridge executable: {e}"))?;
    if let Some(path) = &args.config {
        let defaults = crate::config::ServerSettings::new(ChildCommand {
            program: OsString::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            guard: Some(me),
            label: None,
        });
        let servers = crate::config::load(path, &defaults).map_err(|e| e.to_string())?;
        return Ok(servers.into_iter().map(|s| (s.name, s.child)).collect());
    }
    let (program, rest, label) = if args.demo {
        (
            me.clone().into_os_string(),
            vec![OsString::from("demo-server")],
            Some("demo".to_owned()),
        )
    } else {
        let mut command = args.command.iter().cloned();
        let program = command.next().ok_or(
            "no MCP server to check: give its command after `--` (e.g. `mcp-bridge doctor -- \
             npx -y @modelcontextprotocol/server-everything`) or use --demo",
        )?;
        (program, command.collect(), None)
    };
    let command = ChildCommand {
        program,
        args: rest,
        env: args.env.clone(),
        cwd: args.cwd.clone(),
        guard: Some(me),
        label,
    };
    Ok(vec![(command.name(), command)])
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fine (possibly with a note).
    Pass,
    /// Works, but some client shows it badly or it slows things down.
    Warning,
    /// Breaks Dify or other clients.
    Blocking,
}

/// One line of a report, with one hint when it is a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    fn pass(message: impl Into<String>) -> Self {
        Self {
            level: Level::Pass,
            message: message.into(),
            hint: None,
        }
    }

    fn warning(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Warning,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    fn blocking(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Blocking,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// What [`check`] found out about one server. `Display` prints it for people.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The target's name (a config file's server name, or the program's).
    pub name: String,
    /// The command line that was run.
    pub command: String,
    /// The server's own `serverInfo`: name and version.
    pub server: Option<(String, String)>,
    /// The protocol version the server answered the bridge's `initialize` with.
    pub protocol: Option<String>,
    /// The tools' names, all pages; `None` if they could not be listed.
    pub tools: Option<Vec<String>>,
    /// How many prompts; `None` if the server does not offer prompts (or listing failed).
    pub prompts: Option<usize>,
    /// How many resources; `None` if the server does not offer resources (or listing failed).
    pub resources: Option<usize>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Problems that break Dify or other clients.
    pub fn blocking(&self) -> usize {
        self.count(Level::Blocking)
    }

    pub fn warnings(&self) -> usize {
        self.count(Level::Warning)
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mcp-bridge doctor: {}", self.name)?;
        writeln!(f, "  command    {}", self.command)?;
        let unknown = || "-".to_owned();
        let server = self
            .server
            .as_ref()
            .map_or_else(unknown, |(name, version)| format!("{name} {version}"));
        writeln!(f, "  server     {server}")?;
        let protocol = self.protocol.clone().unwrap_or_else(unknown);
        writeln!(f, "  protocol   {protocol}")?;
        match &self.tools {
            Some(tools) if tools.is_empty() => writeln!(f, "  tools      0")?,
            Some(tools) => {
                let names = wrap(&tools.join(", "), 80, "               ");
                writeln!(f, "  tools      {}: {names}", tools.len())?;
            }
            None => writeln!(f, "  tools      -")?,
        }
        // Not offered, or not known at all when the server never answered.
        let absent = if self.server.is_some() {
            "not offered"
        } else {
            "-"
        };
        let count = |n: Option<usize>| n.map_or_else(|| absent.to_owned(), |n| n.to_string());
        writeln!(f, "  prompts    {}", count(self.prompts))?;
        writeln!(f, "  resources  {}", count(self.resources))?;
        writeln!(f)?;
        for finding in &self.findings {
            let mark = match finding.level {
                Level::Pass => '✓',
                Level::Warning => '⚠',
                Level::Blocking => '✗',
            };
            writeln!(f, "{mark} {}", finding.message)?;
            if let Some(hint) = &finding.hint {
                writeln!(f, "  hint: {}", wrap(hint, 92, "        "))?;
            }
        }
        writeln!(f)?;
        let (blocking, warnings) = (self.blocking(), self.warnings());
        let warnings = plural(warnings, "warning", "warnings");
        if blocking == 0 {
            writeln!(f, "OK: nothing blocks Dify or other clients ({warnings}).")
        } else {
            let blocking = plural(blocking, "blocking problem", "blocking problems");
            writeln!(f, "FAILED: {blocking}, {warnings}.")
        }
    }
}

/// How long each list request may take once the server is up.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// A start-up slower than this is worth a warning.
const SLOW_START: Duration = Duration::from_secs(5);
/// Pages followed at most, against a server whose cursor never ends.
const MAX_PAGES: usize = 100;
/// The newest protocol version Dify accepts.
const DIFY_NEWEST: &str = "2025-06-18";
/// The types JSON Schema defines; Dify's form handles these and no others.
const STANDARD_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Starts the server `command` as the bridge would, runs the handshake and the list requests,
/// stops it, and reports what it found.
pub async fn check(name: &str, command: &ChildCommand, startup_timeout: Duration) -> Report {
    let mut report = Report {
        name: name.to_owned(),
        command: command.display(),
        ..Report::default()
    };
    let router = Arc::new(Router::new(
        Arc::new(Sessions::new(
            1,
            Duration::from_secs(60),
            SessionIds::Random,
        )),
        Default::default(),
    ));
    let heard = Arc::new(Mutex::new(Heard::default()));
    router.watch_noise({
        let heard = heard.clone();
        move |noise| lock(&heard).hear(noise)
    });
    let spec = ChildSpec {
        command: command.clone(),
        limits: ChildLimits {
            max_message_bytes: 64 * 1024 * 1024,
        },
        startup_timeout,
        restart: RestartPolicy::Never,
        check_only: false,
    };
    let started = Instant::now();
    match supervisor::start_child(&spec, &router).await {
        Ok(serving) => {
            let took = started.elapsed();
            report.findings.push(start_finding(took));
            let (answer, _) = serving.hello.answer("0", Some(DIFY_NEWEST), DIFY_NEWEST);
            let initialize: Value = serde_json::from_slice(&answer).unwrap_or_default();
            let result = &initialize["result"];
            report.server = Some((
                text(&result["serverInfo"]["name"]),
                text(&result["serverInfo"]["version"]),
            ));
            let version = serving.hello.child_version().to_owned();
            report.findings.push(protocol_finding(&version));
            report.protocol = Some(version);
            report.findings.push(initialize_finding(result));
            let capabilities = &result["capabilities"];
            list_everything(&mut report, &serving.child, &router.mux, capabilities).await;
            serving.child.shutdown(Duration::from_secs(5)).await;
        }
        Err(e) => {
            let last_stderr = lock(&heard).last_stderr.clone();
            report
                .findings
                .push(start_failure(&e, startup_timeout, last_stderr));
            if matches!(e, RunError::Spawn(_)) {
                // Nothing ran, so there is nothing it printed.
                return report;
            }
        }
    }
    let heard = lock(&heard);
    report.findings.push(heard.stdout_finding());
    report.findings.push(heard.stderr_finding());
    report
}

fn start_finding(took: Duration) -> Finding {
    if took > SLOW_START {
        Finding::warning(
            format!(
                "answered initialize after {:.1} s (slow start)",
                took.as_secs_f64()
            ),
            "`npx -y` and `uvx` download the server before starting it; install it ahead of \
             time (npm install -g, uv tool install) to start faster, and give the bridge time \
             with --startup-timeout (120 s by default)",
        )
    } else {
        Finding::pass(format!(
            "started and answered initialize in {}",
            duration(took)
        ))
    }
}

fn start_failure(error: &RunError, timeout: Duration, last_stderr: Option<String>) -> Finding {
    let (message, hint) = match error {
        RunError::Spawn(e) => (
            e.to_string(),
            "check the command: is the program installed and on PATH (or give its full \
             path)? It runs without a shell, so no aliases, pipes or `~`",
        ),
        RunError::Start(StartError::Timeout(_)) => {
            let last = last_stderr.map_or_else(
                || "nothing on stderr".to_owned(),
                |line| format!("last stderr line: {}", preview(&line)),
            );
            (
                format!(
                    "no answer to initialize within {} s ({last})",
                    timeout.as_secs_f64()
                ),
                "a stdio MCP server must read JSON-RPC on stdin and answer on stdout; if it \
                 downloads first (npx -y, uvx), run it once by hand or raise --startup-timeout",
            )
        }
        RunError::Start(StartError::ChildGone(why)) => (
            format!("the server ended before answering initialize: {why}"),
            "run the command by hand to see why it stops (a missing API key? set it with \
             --env KEY=VALUE)",
        ),
        RunError::Start(e) => (
            e.to_string(),
            "the server's answer to initialize must be a JSON-RPC result with protocolVersion, \
             capabilities and serverInfo",
        ),
        e => (e.to_string(), "run the command by hand to see what it does"),
    };
    Finding::blocking(message, hint)
}

/// The version the server answered with, and what Dify gets from the bridge.
fn protocol_finding(version: &str) -> Finding {
    let oldest = protocol::KNOWN_VERSIONS[0];
    let newest = protocol::KNOWN_VERSIONS[protocol::KNOWN_VERSIONS.len() - 1];
    let upgrade =
        "upgrade the server's MCP SDK; clients and the bridge speak 2024-11-05 to 2025-11-25";
    if !is_date(version) {
        return Finding::warning(
            format!("protocol {version:?} is not an MCP version"),
            format!(
                "the server should answer initialize with a dated version such as {DIFY_NEWEST}"
            ),
        );
    }
    if version < oldest {
        return Finding::warning(
            format!("protocol {version} is older than {oldest}, the oldest version clients speak"),
            upgrade,
        );
    }
    if version <= newest && !protocol::KNOWN_VERSIONS.contains(&version) {
        let treated = protocol::negotiate(Some(newest), version, newest);
        return Finding::warning(
            format!(
                "protocol {version} is not a released MCP version (the bridge treats it as {treated})"
            ),
            upgrade,
        );
    }
    if version > DIFY_NEWEST {
        let dify = protocol::negotiate(Some(DIFY_NEWEST), version, DIFY_NEWEST);
        return Finding::pass(format!(
            "protocol {version}: newer than Dify accepts, the bridge answers Dify with {dify}"
        ));
    }
    Finding::pass(format!("protocol {version}: Dify and the SDKs accept it"))
}

/// Dify validates the initialize result: capabilities, and serverInfo with name and version.
fn initialize_finding(result: &Value) -> Finding {
    let mut missing = Vec::new();
    if !result["capabilities"].is_object() {
        missing.push("capabilities");
    }
    if !result["serverInfo"]["name"].is_string() {
        missing.push("serverInfo.name");
    }
    if !result["serverInfo"]["version"].is_string() {
        missing.push("serverInfo.version");
    }
    if missing.is_empty() {
        Finding::pass("initialize result has capabilities and serverInfo (name, version)")
    } else {
        Finding::blocking(
            format!("initialize result lacks {}", missing.join(", ")),
            "Dify (and the Python SDK) reject an initialize result without capabilities and \
             serverInfo.name/version; set them in the server",
        )
    }
}

/// Lists tools (when offered; all pages), prompts and resources (when offered), and checks the
/// tools' schemas.
async fn list_everything(report: &mut Report, child: &Child, mux: &Arc<Mux>, capabilities: &Value) {
    if capabilities.get("tools").is_some() {
        match list_all(child, mux, "tools/list", "tools").await {
            Ok((tools, pages)) => {
                report.findings.push(pages_finding(&tools, &pages));
                report.findings.extend(check_schemas(&tools).findings());
                report.tools = Some(tools.iter().map(|t| text(&t["name"])).collect());
            }
            Err(e) => report.findings.push(Finding::blocking(
                format!("tools/list failed: {e}"),
                "clients cannot see any tool; the server must answer tools/list with {\"tools\": [...]}",
            )),
        }
    } else {
        report.tools = Some(Vec::new());
        report.findings.push(Finding::warning(
            "the server does not declare the tools capability",
            "Dify lists no tools for it; a server with tools declares capabilities.tools in its \
             initialize result",
        ));
    }
    for (method, key, field) in [
        ("prompts/list", "prompts", &mut report.prompts),
        ("resources/list", "resources", &mut report.resources),
    ] {
        if capabilities.get(key).is_none() {
            continue;
        }
        match list_all(child, mux, method, key).await {
            Ok((items, _)) => *field = Some(items.len()),
            Err(e) => report.findings.push(Finding::warning(
                format!("{method} failed: {e}"),
                format!("the server declares {key} but does not list them; clients show none"),
            )),
        }
    }
}

fn pages_finding(tools: &[Value], pages: &[usize]) -> Finding {
    let total = plural(tools.len(), "tool", "tools");
    match pages {
        [] | [_] if tools.is_empty() => Finding::warning(
            "the server lists no tools",
            "Dify shows an empty tool list; check the server's configuration (some servers \
             enable tools through environment variables, set with --env)",
        ),
        [] | [_] => Finding::pass(format!("{total} in one page")),
        [first, ..] => Finding::warning(
            format!(
                "{total} in {} pages: Dify reads only the first page ({})",
                pages.len(),
                plural(*first, "tool", "tools")
            ),
            "Dify never asks for the next page (nextCursor); return every tool in the first \
             page of tools/list",
        ),
    }
}

/// What is wrong with a list of tools, by kind: each entry names the tool (and property).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaProblems {
    /// Tools without `inputSchema`.
    pub no_schema: Vec<String>,
    /// Tools whose `inputSchema` is not `{"type": "object", …}`.
    pub not_object: Vec<String>,
    /// Properties whose `type` is not a JSON Schema type.
    pub odd_type: Vec<String>,
    /// Properties with `$ref` or without `type`: Dify shows them as plain strings.
    pub untyped: Vec<String>,
    /// Whether any tool was checked at all.
    checked: bool,
}

/// Checks each tool's `inputSchema` and its top-level properties (what Dify's form is built
/// from).
pub fn check_schemas(tools: &[Value]) -> SchemaProblems {
    let mut problems = SchemaProblems {
        checked: !tools.is_empty(),
        ..SchemaProblems::default()
    };
    for tool in tools {
        let name = tool["name"].as_str().unwrap_or("(unnamed)");
        let Some(schema) = tool.get("inputSchema").filter(|s| !s.is_null()) else {
            problems.no_schema.push(name.to_owned());
            continue;
        };
        match schema.get("type") {
            Some(Value::String(kind)) if kind == "object" => {}
            Some(kind) => problems.not_object.push(format!("{name} (type {kind})")),
            None if schema.is_object() => problems.not_object.push(format!("{name} (no type)")),
            None => problems.not_object.push(format!("{name} ({schema})")),
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (property, spec) in properties {
            let at = format!("{name}.{property}");
            if spec.get("$ref").is_some() {
                problems.untyped.push(format!("{at} ($ref)"));
                continue;
            }
            match spec.get("type") {
                None => problems.untyped.push(format!("{at} (no type)")),
                Some(Value::String(kind)) if STANDARD_TYPES.contains(&kind.as_str()) => {}
                // A list of types is standard JSON Schema when each of them is.
                Some(Value::Array(kinds))
                    if kinds
                        .iter()
                        .all(|k| k.as_str().is_some_and(|k| STANDARD_TYPES.contains(&k))) => {}
                Some(kind) => problems.odd_type.push(format!("{at} ({kind})")),
            }
        }
    }
    problems
}

impl SchemaProblems {
    /// The report's lines: one per kind of problem (naming every case), or one ✓ per check.
    pub fn findings(&self) -> Vec<Finding> {
        if !self.checked {
            return Vec::new();
        }
        let mut findings = Vec::new();
        if self.no_schema.is_empty() && self.not_object.is_empty() {
            findings.push(Finding::pass(
                "every tool has an inputSchema of type \"object\"",
            ));
        }
        if !self.no_schema.is_empty() {
            findings.push(Finding::blocking(
                format!(
                    "{} without inputSchema: {}",
                    plural(self.no_schema.len(), "tool", "tools"),
                    list(&self.no_schema)
                ),
                "one tool without inputSchema makes Dify drop the whole tool list; give every \
                 tool one, at least {\"type\": \"object\", \"properties\": {}}",
            ));
        }
        if !self.not_object.is_empty() {
            findings.push(Finding::blocking(
                format!(
                    "{} with an inputSchema whose type is not \"object\": {}",
                    plural(self.not_object.len(), "tool", "tools"),
                    list(&self.not_object)
                ),
                "MCP requires tool arguments to be an object: use {\"type\": \"object\", \
                 \"properties\": {...}}",
            ));
        }
        if self.odd_type.is_empty() && self.untyped.is_empty() {
            findings.push(Finding::pass("every property has a standard type"));
        }
        if !self.odd_type.is_empty() {
            findings.push(Finding::blocking(
                format!(
                    "{} with a non-standard type: {}",
                    plural(self.odd_type.len(), "property", "properties"),
                    list(&self.odd_type)
                ),
                "Dify's tool form fails on types other than string, number, integer, boolean, \
                 array, object and null; use one of those (a file path or URL is a string)",
            ));
        }
        if !self.untyped.is_empty() {
            findings.push(Finding::warning(
                format!(
                    "{} with $ref or without type, plain strings in Dify: {}",
                    plural(self.untyped.len(), "property", "properties"),
                    list(&self.untyped)
                ),
                "Dify gives a property with $ref or without type a text field; inline referenced \
                 schemas and give every property a type",
            ));
        }
        findings
    }
}

/// Asks `method` page after page; the items of every page, and how many each page had.
async fn list_all(
    child: &Child,
    mux: &Arc<Mux>,
    method: &str,
    key: &str,
) -> Result<(Vec<Value>, Vec<usize>), String> {
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<Value> = None;
    loop {
        let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
        let mut result = request(child, mux, method, params).await?;
        let page = match result.get_mut(key).map(Value::take) {
            Some(Value::Array(page)) => page,
            _ => return Err(format!("the result has no `{key}` list")),
        };
        pages.push(page.len());
        items.extend(page);
        let next = result
            .get("nextCursor")
            .filter(|c| !c.is_null() && c.as_str() != Some(""))
            .cloned();
        match next {
            // A cursor repeating itself would never end.
            Some(next) if pages.len() < MAX_PAGES && cursor.as_ref() != Some(&next) => {
                cursor = Some(next);
            }
            _ => return Ok((items, pages)),
        }
    }
}

/// One request of the doctor's own: its `result`, or why there is none.
async fn request(
    child: &Child,
    mux: &Arc<Mux>,
    method: &str,
    params: Option<Value>,
) -> Result<Value, String> {
    let mut ticket = mux.register(Origin::default());
    let mut message = json!({"jsonrpc": "2.0", "id": ticket.id, "method": method});
    if let Some(params) = params {
        message["params"] = params;
    }
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    child.send(Bytes::from(line)).await.map_err(|e| e.0)?;
    ticket.sent_through(child.stdin().clone());
    let answer = match tokio::time::timeout(LIST_TIMEOUT, ticket.answer()).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(e.message),
        Err(_) => return Err(format!("no answer within {} s", LIST_TIMEOUT.as_secs())),
    };
    let mut response: Value = serde_json::from_slice(&answer.to_vec())
        .map_err(|e| format!("the answer is not JSON: {e}"))?;
    if let Some(error) = response.get("error") {
        return Err(match (error["code"].as_i64(), error["message"].as_str()) {
            (Some(code), Some(message)) => format!("{message} ({code})"),
            _ => error.to_string(),
        });
    }
    match response.get_mut("result").map(Value::take) {
        Some(result) => Ok(result),
        None => Err("the answer has neither result nor error".into()),
    }
}

/// What the server printed besides messages while it was checked.
#[derive(Debug, Default)]
struct Heard {
    junk_lines: usize,
    first_junk: Option<String>,
    error_lines: usize,
    first_error: Option<String>,
    last_stderr: Option<String>,
}

impl Heard {
    fn hear(&mut self, noise: Noise<'_>) {
        match noise {
            Noise::Stdout(line) => {
                self.junk_lines += 1;
                self.first_junk
                    .get_or_insert_with(|| String::from_utf8_lossy(line).into_owned());
            }
            Noise::Stderr(line) => {
                if looks_like_an_error(line) {
                    self.error_lines += 1;
                    self.first_error.get_or_insert_with(|| line.to_owned());
                }
                self.last_stderr = Some(line.to_owned());
            }
        }
    }

    fn stdout_finding(&self) -> Finding {
        match &self.first_junk {
            None => Finding::pass("stdout carries only JSON-RPC"),
            Some(first) => Finding::warning(
                format!(
                    "{} on stdout that {} not JSON-RPC (first: {})",
                    plural(self.junk_lines, "line", "lines"),
                    if self.junk_lines == 1 { "is" } else { "are" },
                    preview(first)
                ),
                "stdout is the MCP channel: print banners and logs to stderr (the bridge skips \
                 such lines, but other clients may fail on them)",
            ),
        }
    }

    fn stderr_finding(&self) -> Finding {
        match &self.first_error {
            None => Finding::pass("no errors on stderr"),
            Some(first) => Finding::warning(
                format!(
                    "{} on stderr that {} like errors (first: {})",
                    plural(self.error_lines, "line", "lines"),
                    if self.error_lines == 1 {
                        "looks"
                    } else {
                        "look"
                    },
                    preview(first)
                ),
                "run the command by hand to read its whole stderr; missing API keys and \
                 settings go in with --env KEY=VALUE",
            ),
        }
    }
}

fn looks_like_an_error(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    ["error", "traceback", "exception"]
        .iter()
        .any(|word| lower.contains(word))
}

/// `YYYY-MM-DD`, the shape of every MCP version.
fn is_date(version: &str) -> bool {
    let bytes = version.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `12 ms`, `1.5 s`.
fn duration(took: Duration) -> String {
    if took < Duration::from_secs(1) {
        format!("{} ms", took.as_millis())
    } else {
        format!("{:.1} s", took.as_secs_f64())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Names for one line: the first few, then how many more.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// A line of someone else's output, quoted and cut short.
fn preview(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(100) {
        Some((cut, _)) => format!("\"{}…\"", &line[..cut]),
        None => format!("\"{line}\""),
    }
}

/// Breaks `text` at spaces into lines of at most `width` characters, later lines indented.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            out.push_str(indent);
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_checks_name_each_problem() {
        let tools = json!([
            {"name": "fine", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string"}, "b": {"type": ["integer", "null"]}}}},
            {"name": "bare"},
            {"name": "nulled", "inputSchema": null},
            {"name": "array", "inputSchema": {"type": "array"}},
            {"name": "typeless", "inputSchema": {"properties": {}}},
            {"name": "upload", "inputSchema": {"type": "object", "properties": {
                "file": {"type": "file"},
                "target": {"$ref": "#/$defs/target"},
                "anything": {},
                "mixed": {"type": ["string", "blob"]}}}},
        ]);
        let problems = check_schemas(tools.as_array().unwrap());
        assert_eq!(problems.no_schema, ["bare", "nulled"]);
        assert_eq!(
            problems.not_object,
            ["array (type \"array\")", "typeless (no type)"]
        );
        assert_eq!(
            problems.odd_type,
            [
                "upload.file (\"file\")",
                "upload.mixed ([\"string\",\"blob\"])"
            ]
        );
        let mut untyped = problems.untyped.clone();
        untyped.sort();
        assert_eq!(
            untyped,
            ["upload.anything (no type)", "upload.target ($ref)"]
        );
        let levels: Vec<Level> = problems.findings().iter().map(|f| f.level).collect();
        assert_eq!(
            levels,
            [
                Level::Blocking,
                Level::Blocking,
                Level::Blocking,
                Level::Warning
            ]
        );
    }

    #[test]
    fn good_schemas_pass() {
        let tools = json!([
            {"name": "echo", "inputSchema": {"type": "object", "properties": {
                "message": {"type": "string"}}, "required": ["message"]}},
            {"name": "now", "inputSchema": {"type": "object"}},
        ]);
        let problems = check_schemas(tools.as_array().unwrap());
        assert_eq!(
            problems,
            SchemaProblems {
                checked: true,
                ..Default::default()
            }
        );
        let findings = problems.findings();
        assert_eq!(findings.len(), 2);
        assert!(
            findings
                .iter()
                .all(|f| f.level == Level::Pass && f.hint.is_none())
        );
        assert!(check_schemas(&[]).findings().is_empty());
    }

    #[test]
    fn protocol_versions() {
        let level = |v: &str| protocol_finding(v).level;
        assert_eq!(level("2025-06-18"), Level::Pass);
        assert_eq!(level("2024-11-05"), Level::Pass);
        let newer = protocol_finding("2025-11-25");
        assert_eq!(newer.level, Level::Pass);
        assert!(
            newer.message.contains("answers Dify with 2025-06-18"),
            "{}",
            newer.message
        );
        assert_eq!(level("2026-01-01"), Level::Pass);
        assert_eq!(level("2024-10-07"), Level::Warning);
        assert_eq!(level("2025-05-01"), Level::Warning);
        assert_eq!(level("1.0"), Level::Warning);
        assert_eq!(level("latest"), Level::Warning);
    }

    #[test]
    fn pages_and_noise() {
        let tools = vec![json!({"name": "a"}), json!({"name": "b"})];
        assert_eq!(pages_finding(&tools, &[2]).level, Level::Pass);
        let paged = pages_finding(&tools, &[1, 1]);
        assert_eq!(paged.level, Level::Warning);
        assert!(
            paged.message.contains("first page (1 tool)"),
            "{}",
            paged.message
        );
        assert_eq!(pages_finding(&[], &[0]).level, Level::Warning);

        let mut heard = Heard::default();
        heard.hear(Noise::Stdout(b"Server v1 starting"));
        heard.hear(Noise::Stdout(b"{\"not\": \"json-rpc\"}"));
        heard.hear(Noise::Stderr("INFO ready"));
        heard.hear(Noise::Stderr("Traceback (most recent call last):"));
        heard.hear(Noise::Stderr("KeyError: 'API_KEY'"));
        let stdout = heard.stdout_finding();
        assert_eq!(stdout.level, Level::Warning);
        assert!(
            stdout.message.starts_with("2 lines on stdout"),
            "{}",
            stdout.message
        );
        let stderr = heard.stderr_finding();
        assert!(
            stderr.message.contains("first: \"Traceback"),
            "{}",
            stderr.message
        );
        assert_eq!(heard.last_stderr.as_deref(), Some("KeyError: 'API_KEY'"));
        assert_eq!(Heard::default().stderr_finding().level, Level::Pass);
    }
}
