//! The `--config` file: servers in the `mcpServers` JSON format that Claude Desktop, Cursor and
//! most MCP docs use (`command`, `args`, `env`, `cwd`), plus optional bridge settings per server.
//! Mistakes (unknown keys, a missing command, a duplicate or unusable name) are errors that name
//! the line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::tools::ToolPolicy;
use crate::upstream::settings::{
    RepairSchemas, RestartPolicy, ServerPerSession, ServerSettings, Tenancy,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One entry of `mcpServers`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    /// `"stdio"` (Cursor writes it); any other transport is not something to bridge.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Claude Desktop's way of keeping an entry without running it.
    #[serde(default)]
    disabled: bool,
    isolate: Option<bool>,
    server_per_session: Option<PerSessionName>,
    max_children: Option<usize>,
    restart: Option<RestartName>,
    lazy: Option<bool>,
    idle_timeout: Option<f64>,
    startup_timeout: Option<f64>,
    request_timeout: Option<f64>,
    session_ttl: Option<f64>,
    max_sessions: Option<usize>,
    max_in_flight: Option<usize>,
    stream_after: Option<f64>,
    keep_alive: Option<f64>,
    input_timeout: Option<f64>,
    resume_window: Option<f64>,
    tools: Option<ToolsEntry>,
    repair_schemas: Option<RepairName>,
    /// `{"VAR": "Header-Name"}`: the server runs per tenant, VAR from each request's header.
    #[serde(default)]
    env_from_headers: BTreeMap<String, String>,
    /// The server runs per tenant of the `--tenants` file.
    #[serde(default)]
    tenants: bool,
    max_tenants: Option<usize>,
    tenant_idle: Option<f64>,
}

/// A server's `"tools"`: its tool policy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ToolsEntry {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    rename: BTreeMap<String, String>,
    #[serde(default)]
    descriptions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RepairName {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RestartName {
    OnFailure,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PerSessionName {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    mcp_servers: Servers,
}

/// The servers in the order written, names checked as they are read so that an error names
/// the line.
#[derive(Debug)]
struct Servers(Vec<(String, Entry)>);

impl<'de> Deserialize<'de> for Servers {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ServersVisitor;
        impl<'de> Visitor<'de> for ServersVisitor {
            type Value = Servers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of servers by name")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Servers, A::Error> {
                let mut servers: Vec<(String, Entry)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if servers.iter().any(|(seen, _)| *seen == name) {
                        return Err(de::Error::custom(format!(
                            "the server name `{name}` is used twice"
                        )));
                    }
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    {
                        return Err(de::Error::custom(format!(
                            "the server name `{name}` must be letters, digits, `-`, `_` or `.` \
                             (it becomes part of the URL)"
                        )));
                    }
                    let entry: Entry = map.next_value()?;
                    if entry.command.as_deref().is_none_or(str::is_empty) && !entry.disabled {
                        return Err(de::Error::custom(format!(
                            "the server `{name}` has no \"command\""
                        )));
                    }
                    if let Some(kind) = &entry.kind
                        && kind != "stdio"
                    {
                        return Err(de::Error::custom(format!(
                            "the server `{name}` is of type `{kind}`: only stdio servers are \
                             bridged (an HTTP server needs no bridge)"
                        )));
                    }
                    servers.push((name, entry));
                }
                Ok(Servers(servers))
            }
        }
        deserializer.deserialize_map(ServersVisitor)
    }
}

/// Reads the servers of a config file; `defaults` gives every setting a server does not set.
pub fn load(path: &Path, defaults: &ServerSettings) -> Result<Vec<ServerSettings>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, defaults).map_err(|message| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    })
}

/// The servers of a config file's text (errors carry the line and column).
pub fn parse(text: &str, defaults: &ServerSettings) -> Result<Vec<ServerSettings>, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut servers = Vec::new();
    for (name, entry) in file.mcp_servers.0 {
        if entry.disabled {
            continue;
        }
        servers.push(settings(name, entry, defaults)?);
    }
    if servers.is_empty() {
        return Err("no servers to run: \"mcpServers\" is empty (or every one is disabled)".into());
    }
    Ok(servers)
}

fn settings(
    name: String,
    entry: Entry,
    defaults: &ServerSettings,
) -> Result<ServerSettings, String> {
    let seconds = |key: &str, value: Option<f64>| -> Result<Option<Duration>, String> {
        match value {
            None => Ok(None),
            Some(secs) if secs.is_finite() && secs > 0.0 => Ok(Some(Duration::from_secs_f64(secs))),
            Some(secs) => Err(format!(
                "the server `{name}` has \"{key}\": {secs}; expected a positive number of seconds"
            )),
        }
    };
    let mut child = defaults.child.clone();
    child.program = OsString::from(entry.command.unwrap_or_default());
    child.args = entry.args.into_iter().map(OsString::from).collect();
    child.env = entry
        .env
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    child.cwd = entry.cwd;
    child.label = Some(name.clone());
    let server_per_session = match (entry.isolate, entry.server_per_session) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "the server `{name}` has both \"isolate\" and \"serverPerSession\"; keep one \
                 (\"isolate\": true is \"serverPerSession\": \"always\")"
            ));
        }
        (Some(true), None) => ServerPerSession::Always,
        (Some(false), None) => ServerPerSession::Auto,
        (None, Some(PerSessionName::Auto)) => ServerPerSession::Auto,
        (None, Some(PerSessionName::Always)) => ServerPerSession::Always,
        (None, Some(PerSessionName::Never)) => ServerPerSession::Never,
        (None, None) => defaults.server_per_session,
    };
    let tools = entry.tools.unwrap_or_default();
    let tools = ToolPolicy {
        allow: tools.allow,
        deny: tools.deny,
        read_only: tools.read_only,
        rename: tools.rename.into_iter().collect(),
        descriptions: tools.descriptions.into_iter().collect(),
    };
    tools.check().map_err(|e| {
        format!("the server `{name}` has a \"tools\" policy that cannot apply: {e}")
    })?;
    let mut env_from_headers = Vec::new();
    for (var, header) in entry.env_from_headers {
        let header = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            format!("the server `{name}` maps {var} to {header:?}, which is not a header name")
        })?;
        env_from_headers.push((var, header.as_str().to_owned()));
    }
    let bounds = defaults.tenancy.as_ref();
    let tenancy = Tenancy {
        env_from_headers,
        by_token: entry.tenants,
        max_tenants: entry
            .max_tenants
            .or(bounds.map(|t| t.max_tenants))
            .unwrap_or(Tenancy::DEFAULT_MAX_TENANTS),
        idle: seconds("tenantIdle", entry.tenant_idle)?
            .or(bounds.map(|t| t.idle))
            .unwrap_or(Tenancy::DEFAULT_IDLE),
    };
    if tenancy.max_tenants == 0 {
        return Err(format!(
            "the server `{name}` has \"maxTenants\": 0; expected 1 or more"
        ));
    }
    if tenancy.by_token && !bounds.is_some_and(|t| t.by_token) {
        return Err(format!(
            "the server `{name}` has \"tenants\": true, which needs the tenants file: run with \
             --tenants FILE"
        ));
    }
    Ok(ServerSettings {
        tenancy: tenancy.is_per_tenant().then_some(tenancy),
        tools,
        repair_schemas: match entry.repair_schemas {
            Some(RepairName::Auto) => RepairSchemas::Auto,
            Some(RepairName::Always) => RepairSchemas::Always,
            Some(RepairName::Never) => RepairSchemas::Never,
            None => defaults.repair_schemas,
        },
        path: format!("/servers/{name}/mcp"),
        restart: match entry.restart {
            Some(RestartName::OnFailure) => RestartPolicy::OnFailure,
            Some(RestartName::Always) => RestartPolicy::Always,
            Some(RestartName::Never) => RestartPolicy::Never,
            None => defaults.restart,
        },
        lazy: entry.lazy.unwrap_or(defaults.lazy),
        idle_timeout: seconds("idleTimeout", entry.idle_timeout)?.or(defaults.idle_timeout),
        startup_timeout: seconds("startupTimeout", entry.startup_timeout)?
            .unwrap_or(defaults.startup_timeout),
        request_timeout: seconds("requestTimeout", entry.request_timeout)?
            .or(defaults.request_timeout),
        session_idle_timeout: seconds("sessionTtl", entry.session_ttl)?
            .unwrap_or(defaults.session_idle_timeout),
        stream_after: seconds("streamAfter", entry.stream_after)?.unwrap_or(defaults.stream_after),
        keep_alive: seconds("keepAlive", entry.keep_alive)?.unwrap_or(defaults.keep_alive),
        input_timeout: seconds("inputTimeout", entry.input_timeout)?
            .unwrap_or(defaults.input_timeout),
        resume_window: seconds("resumeWindow", entry.resume_window)?
            .unwrap_or(defaults.resume_window),
        max_sessions: entry.max_sessions.unwrap_or(defaults.max_sessions),
        max_in_flight: entry.max_in_flight.unwrap_or(defaults.max_in_flight),
        max_message_bytes: defaults.max_message_bytes,
        server_per_session,
        max_children: entry.max_children.unwrap_or(defaults.max_children),
        max_protocol_version: defaults.max_protocol_version,
        session_secret: defaults.session_secret.clone(),
        child,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::ChildCommand;

    fn defaults() -> ServerSettings {
        ServerSettings {
            name: "default".into(),
            child: ChildCommand {
                program: "unused".into(),
                args: vec![],
                env: vec![],
                cwd: None,
                guard: None,
                label: None,
            },
            path: "/mcp".into(),
            restart: RestartPolicy::OnFailure,
            lazy: false,
            idle_timeout: None,
            startup_timeout: Duration::from_secs(120),
            request_timeout: None,
            max_message_bytes: 1024,
            max_sessions: 10,
            session_idle_timeout: Duration::from_secs(60),
            max_in_flight: 10,
            stream_after: Duration::from_secs(3),
            keep_alive: Duration::from_secs(15),
            input_timeout: Duration::from_secs(300),
            resume_window: Duration::from_secs(60),
            server_per_session: ServerPerSession::Auto,
            max_children: 100,
            max_protocol_version: "2025-11-25",
            session_secret: None,
            tools: ToolPolicy::default(),
            repair_schemas: RepairSchemas::Auto,
            tenancy: None,
        }
    }

    #[test]
    fn reads_the_usual_format_with_bridge_settings() {
        let text = r#"{
          "mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
            "files": {"command": "npx", "args": ["-y", "x"], "cwd": "/srv", "isolate": true,
                      "requestTimeout": 30, "type": "stdio"},
            "off": {"command": "x", "disabled": true}
          }
        }"#;
        let servers = parse(text, &defaults()).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].name, "time");
        assert_eq!(servers[0].path, "/servers/time/mcp");
        assert_eq!(servers[0].child.program, "uvx");
        assert_eq!(servers[0].child.env, vec![("TZ".into(), "UTC".into())]);
        assert_eq!(servers[0].server_per_session, ServerPerSession::Auto);
        assert_eq!(servers[1].server_per_session, ServerPerSession::Always);
        assert_eq!(servers[1].max_children, 100);
        assert_eq!(servers[1].request_timeout, Some(Duration::from_secs(30)));
        assert_eq!(servers[1].child.cwd.as_deref(), Some(Path::new("/srv")));
    }

    #[test]
    fn a_server_has_a_tool_policy_and_a_repair_setting_of_its_own() {
        let text = r#"{"mcpServers": {
            "gh": {"command": "x", "repairSchemas": "always", "tools": {
                "allow": ["get_*", "search"], "deny": ["get_secret"], "readOnly": true,
                "rename": {"get_issue": "issue"}, "descriptions": {"search": "Find code"}}},
            "plain": {"command": "y"}
        }}"#;
        let servers = parse(text, &defaults()).unwrap();
        let policy = &servers[0].tools;
        assert_eq!(policy.allow, ["get_*", "search"]);
        assert_eq!(policy.deny, ["get_secret"]);
        assert!(policy.read_only);
        assert_eq!(policy.rename, [("get_issue".into(), "issue".into())]);
        assert_eq!(policy.description("search"), Some("Find code"));
        assert_eq!(servers[0].repair_schemas, RepairSchemas::Always);
        assert!(servers[1].tools.is_empty());
        assert_eq!(servers[1].repair_schemas, RepairSchemas::Auto);
        let clash = r#"{"mcpServers": {"a": {"command": "x",
            "tools": {"rename": {"one": "same", "two": "same"}}}}}"#;
        let error = parse(clash, &defaults()).unwrap_err();
        assert!(error.contains("both renamed to"), "{error}");
        let typo = r#"{"mcpServers": {"a": {"command": "x", "tools": {"alow": []}}}}"#;
        assert!(parse(typo, &defaults()).unwrap_err().contains("alow"));
    }

    #[test]
    fn a_server_runs_per_tenant_when_its_entry_says_so() {
        let text = r#"{"mcpServers": {
            "github": {"command": "x", "envFromHeaders": {"GITHUB_TOKEN": "X-GitHub-Token"},
                       "maxTenants": 5, "tenantIdle": 30},
            "shared": {"command": "y"}
        }}"#;
        let servers = parse(text, &defaults()).unwrap();
        let tenancy = servers[0].tenancy.as_ref().unwrap();
        assert_eq!(
            tenancy.env_from_headers,
            [("GITHUB_TOKEN".into(), "x-github-token".into())]
        );
        assert_eq!(tenancy.max_tenants, 5);
        assert_eq!(tenancy.idle, Duration::from_secs(30));
        assert!(servers[1].tenancy.is_none());
        let no_file = r#"{"mcpServers": {"a": {"command": "x", "tenants": true}}}"#;
        assert!(
            parse(no_file, &defaults())
                .unwrap_err()
                .contains("--tenants FILE")
        );
        let bad = r#"{"mcpServers": {"a": {"command": "x", "envFromHeaders": {"V": "a b"}}}}"#;
        assert!(
            parse(bad, &defaults())
                .unwrap_err()
                .contains("not a header name")
        );
    }

    #[test]
    fn server_per_session_is_chosen_per_server() {
        let text = r#"{"mcpServers": {
            "a": {"command": "x", "serverPerSession": "never"},
            "b": {"command": "x", "serverPerSession": "always", "maxChildren": 7},
            "c": {"command": "x"}
        }}"#;
        let servers = parse(text, &defaults()).unwrap();
        assert_eq!(servers[0].server_per_session, ServerPerSession::Never);
        assert_eq!(servers[1].server_per_session, ServerPerSession::Always);
        assert_eq!(servers[1].max_children, 7);
        assert_eq!(servers[2].server_per_session, ServerPerSession::Auto);
        let both = r#"{"mcpServers": {"a": {"command": "x", "isolate": true, "serverPerSession": "never"}}}"#;
        assert!(parse(both, &defaults()).unwrap_err().contains("keep one"));
        let unknown = r#"{"mcpServers": {"a": {"command": "x", "serverPerSession": "sometimes"}}}"#;
        assert!(
            parse(unknown, &defaults())
                .unwrap_err()
                .contains("sometimes")
        );
    }

    #[test]
    fn mistakes_name_their_line() {
        let unknown = "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",\n  \"comand\": \"y\"}}}";
        let error = parse(unknown, &defaults()).unwrap_err();
        assert!(
            error.contains("unknown field `comand`") && error.contains("line 3"),
            "{error}"
        );
        let missing = "{\"mcpServers\": {\n\n  \"a\": {\"args\": []}}}";
        let error = parse(missing, &defaults()).unwrap_err();
        assert!(
            error.contains("has no \"command\"") && error.contains("line 3"),
            "{error}"
        );
        let twice =
            "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"},\n  \"a\": {\"command\": \"y\"}}}";
        let error = parse(twice, &defaults()).unwrap_err();
        assert!(
            error.contains("used twice") && error.contains("line 3"),
            "{error}"
        );
        let http = r#"{"mcpServers": {"a": {"type": "http", "command": "x"}}}"#;
        assert!(parse(http, &defaults()).unwrap_err().contains("only stdio"));
        let name = r#"{"mcpServers": {"a/b": {"command": "x"}}}"#;
        assert!(
            parse(name, &defaults())
                .unwrap_err()
                .contains("part of the URL")
        );
        assert!(
            parse(r#"{"mcpServers": {}}"#, &defaults())
                .unwrap_err()
                .contains("empty")
        );
    }
}
