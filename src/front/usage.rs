//! The parsed command line turned into the [`Config`] of a run, and the usage problems found on
//! the way (no command, listening beyond loopback without a token, a weak session secret).

use std::ffi::OsString;
use std::time::Duration;

use super::cli::{Cli, LogFormat};
use crate::child::ChildCommand;
use crate::http::access::AccessPolicy;
use crate::http::tls::TlsFiles;
use crate::serve::Config;
use crate::serve::telemetry::TraceExport;
use crate::servers::audit::AuditSettings;
use crate::session::ids::{SessionSecret, WeakSecret};
use crate::tools::policy::PolicyError;
use crate::upstream::ServerPerSession;

/// A usage problem found after parsing, reported as one line.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(
        "no MCP server to bridge: give its command after `--` (e.g. `mcp-bridge -- npx -y @modelcontextprotocol/server-everything`) or use --demo"
    )]
    NoCommand,
    #[error("cannot find the mcp-bridge executable (for the demo server and the guard): {0}")]
    NoSelf(std::io::Error),
    #[error(
        "refusing to listen on {0} without --auth-token: anyone who can reach this machine could run the server's tools; set --auth-token (or MCP_BRIDGE_AUTH_TOKEN), or pass --allow-unauthenticated if something else keeps strangers out"
    )]
    Unprotected(String),
    #[error("--auth-token must not be empty")]
    EmptyToken,
    #[error(transparent)]
    WeakSecret(#[from] WeakSecret),
    #[error("the tool policy cannot apply: {0}")]
    ToolPolicy(#[from] PolicyError),
    #[error(
        "--allow-tool, --deny-tool, --read-only-tools, --rename-tool and --describe-tool are for the single server; with --config give each server its \"tools\" in the file"
    )]
    ToolFlagsWithConfig,
    #[error(
        "--env-from-header is for the single server; with --config give each server its \"envFromHeaders\" in the file"
    )]
    EnvFromHeaderWithConfig,
    #[error("--max-tenants must be at least 1")]
    NoTenants,
}

impl Cli {
    pub fn into_config(self) -> Result<Config, UsageError> {
        if self.auth_token.as_deref() == Some("") {
            return Err(UsageError::EmptyToken);
        }
        // A tenants file's tokens keep strangers out as the shared token does.
        let protected = self.auth_token.is_some() || self.tenants.tenants.is_some();
        if !is_loopback(&self.host) && !protected && !self.allow_unauthenticated {
            return Err(UsageError::Unprotected(self.host));
        }
        let session_secret = self
            .session_secret
            .as_deref()
            .map(SessionSecret::new)
            .transpose()?;
        let tools = self.tools.policy();
        tools.check()?;
        if self.config.is_some() && !tools.is_empty() {
            return Err(UsageError::ToolFlagsWithConfig);
        }
        if self.config.is_some() && !self.tenants.env_from_header.is_empty() {
            return Err(UsageError::EnvFromHeaderWithConfig);
        }
        if self.tenants.max_tenants == 0 {
            return Err(UsageError::NoTenants);
        }
        let tenancy = self.tenants.tenancy();
        // A config file's servers take the bounds as defaults and say themselves whether they
        // run per tenant.
        let tenancy = (self.config.is_some() || tenancy.is_per_tenant()).then_some(tenancy);
        let tenants_file = self.tenants.tenants.clone();
        let me = std::env::current_exe().map_err(UsageError::NoSelf)?;
        let (program, args) = if self.demo {
            (
                me.clone().into_os_string(),
                vec![OsString::from("demo-server")],
            )
        } else if self.config.is_some() {
            // Every server's command comes from the file.
            (OsString::new(), Vec::new())
        } else {
            let mut command = self.command.into_iter();
            let program = command.next().ok_or(UsageError::NoCommand)?;
            (program, command.collect())
        };
        let mut config = Config::new(ChildCommand {
            program,
            args,
            env: self.env,
            cwd: self.cwd,
            guard: Some(me),
            label: None,
        });
        config.server.path = self.path;
        config.config_file = self.config;
        config.json_logs = self.log_format == LogFormat::Json;
        config.traces = trace_export(self.otlp_endpoint, |name| std::env::var(name).ok());
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };
        config.server.startup_timeout = Duration::from_secs(self.startup_timeout);
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        config.server.restart = self.restart;
        config.server.lazy = self.lazy;
        config.server.idle_timeout = self.idle_timeout;
        config.server.request_timeout = self.request_timeout;
        config.max_body_bytes = self.max_body;
        config.max_connections = self.max_connections;
        config.header_timeout = self.header_timeout;
        config.server.max_message_bytes = self.max_message_bytes;
        config.server.max_sessions = self.max_sessions;
        config.server.session_idle_timeout = self.session_ttl;
        config.server.max_in_flight = self.max_in_flight;
        config.server.stream_after = self.stream_after;
        config.server.keep_alive = self.keep_alive;
        config.server.input_timeout = self.input_timeout;
        config.server.resume_window = self.resume_window;
        config.server.server_per_session = if self.isolate {
            ServerPerSession::Always
        } else {
            self.server_per_session
        };
        config.server.max_children = self.max_children;
        config.server.max_protocol_version = self.max_protocol_version;
        config.server.session_secret = session_secret;
        config.server.tools = tools;
        config.server.repair_schemas = self.repair_schemas;
        config.server.tenancy = tenancy;
        config.tenants_file = tenants_file;
        config.audit_log = self.audit_log.map(|path| AuditSettings {
            path,
            arguments: self.audit_arguments,
        });
        config.access = AccessPolicy {
            auth_token: self.auth_token,
            tenant_tokens: None,
            allowed_origins: self.allow_origin,
            allowed_hosts: self.allowed_host,
            cors_origin: self.cors_origin,
        };
        Ok(config)
    }
}

/// Where traces go: the flag's collector, else the standard OpenTelemetry variables (the
/// traces URL as given, or the collector's with `/v1/traces` added); none of them, no traces.
fn trace_export(flag: Option<String>, env: impl Fn(&str) -> Option<String>) -> Option<TraceExport> {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let endpoint = match flag.filter(|url| !url.is_empty()) {
        Some(collector) => traces_url(&collector),
        None => match set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url) => url,
            None => traces_url(&set("OTEL_EXPORTER_OTLP_ENDPOINT")?),
        },
    };
    Some(TraceExport {
        endpoint,
        service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| "mcp-bridge".into()),
    })
}

/// A collector's URL with the OTLP traces path, unless it already ends with it.
fn traces_url(collector: &str) -> String {
    let collector = collector.trim().trim_end_matches('/');
    if collector.ends_with("/v1/traces") {
        collector.to_owned()
    } else {
        format!("{collector}/v1/traces")
    }
}

/// Loopback addresses and `localhost`: reachable only from this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::PathBuf;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mcp-bridge").chain(args.iter().copied()))
    }

    #[test]
    fn traces_follow_the_flag_then_the_standard_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        assert_eq!(trace_export(None, env(&[])), None);
        assert_eq!(
            trace_export(None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            None
        );
        let flag = trace_export(
            Some("http://c:4318/".into()),
            env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other/x")]),
        )
        .unwrap();
        assert_eq!(flag.endpoint, "http://c:4318/v1/traces");
        assert_eq!(flag.service_name, "mcp-bridge");
        let traces = trace_export(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SERVICE_NAME", "tools-gw"),
            ]),
        )
        .unwrap();
        assert_eq!(traces.endpoint, "http://t:1/custom");
        assert_eq!(traces.service_name, "tools-gw");
        let base = trace_export(
            None,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]),
        );
        assert_eq!(base.unwrap().endpoint, "http://c:4318/v1/traces");
        let config = parse(&["--otlp-endpoint", "http://c:4318/v1/traces", "--", "srv"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(config.traces.unwrap().endpoint, "http://c:4318/v1/traces");
    }

    #[test]
    fn command_after_double_dash_keeps_its_own_flags() {
        let cli = parse(&["--port", "0", "--", "npx", "-y", "--port", "x"]).unwrap();
        assert_eq!(cli.port, 0);
        let config = cli.into_config().unwrap();
        assert_eq!(config.server.child.program, "npx");
        assert_eq!(config.server.child.args, ["-y", "--port", "x"]);
    }

    #[test]
    fn tool_flags_make_the_single_servers_policy() {
        let cli = parse(&[
            "--allow-tool",
            "get_*",
            "--deny-tool",
            "get_secret",
            "--read-only-tools",
            "--rename-tool",
            "get_weather=weather",
            "--describe-tool",
            "get_weather=Today's weather",
            "--repair-schemas",
            "always",
            "--",
            "s",
        ])
        .unwrap();
        let config = cli.into_config().unwrap();
        let policy = &config.server.tools;
        assert_eq!(policy.allow, ["get_*"]);
        assert_eq!(policy.deny, ["get_secret"]);
        assert!(policy.read_only);
        assert_eq!(policy.shown_name("get_weather"), "weather");
        assert_eq!(policy.description("get_weather"), Some("Today's weather"));
        assert_eq!(
            config.server.repair_schemas,
            crate::upstream::settings::RepairSchemas::Always
        );
        assert!(parse(&["--rename-tool", "nonew", "--", "s"]).is_err());
        let clash = parse(&["--rename-tool", "a=x", "--rename-tool", "b=x", "--", "s"]).unwrap();
        assert!(matches!(
            clash.into_config(),
            Err(UsageError::ToolPolicy(_))
        ));
        let with_file = parse(&["--config", "f.json", "--deny-tool", "x"]).unwrap();
        assert!(matches!(
            with_file.into_config(),
            Err(UsageError::ToolFlagsWithConfig)
        ));
    }

    #[test]
    fn env_and_path_are_checked() {
        let cli = parse(&["-e", "A=b=c", "--path", "/x/", "--", "s"]).unwrap();
        assert_eq!(cli.env, [("A".into(), "b=c".into())]);
        assert_eq!(cli.path, "/x");
        assert!(parse(&["--env", "NOVALUE", "--", "s"]).is_err());
        assert!(parse(&["--path", "mcp", "--", "s"]).is_err());
    }

    #[test]
    fn no_command_is_a_usage_error() {
        assert!(matches!(
            parse(&[]).unwrap().into_config(),
            Err(UsageError::NoCommand)
        ));
        assert!(parse(&["--demo", "--", "x"]).is_err());
    }

    #[test]
    fn listening_beyond_loopback_needs_a_token_or_an_explicit_opt_out() {
        for host in ["0.0.0.0", "::", "192.0.2.1", "example.com"] {
            let cli = parse(&["--host", host, "--demo"]).unwrap();
            assert!(
                matches!(cli.into_config(), Err(UsageError::Unprotected(_))),
                "{host}"
            );
        }
        for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"] {
            assert!(
                parse(&["--host", host, "--demo"])
                    .unwrap()
                    .into_config()
                    .is_ok(),
                "{host}"
            );
        }
        let token = parse(&["--host", "0.0.0.0", "--auth-token", "t", "--demo"]).unwrap();
        assert!(token.into_config().is_ok());
        let open = parse(&["--host", "0.0.0.0", "--allow-unauthenticated", "--demo"]).unwrap();
        assert!(open.into_config().is_ok());
    }

    #[test]
    fn tls_needs_both_files_and_keeps_the_loopback_rule() {
        assert!(parse(&["--demo", "--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["--demo", "--tls-key", "k.pem"]).is_err());
        let config = parse(&["--demo", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap()
            .into_config()
            .unwrap();
        let files = config.tls.expect("TLS files");
        assert_eq!(files.cert, PathBuf::from("c.pem"));
        assert_eq!(files.key, PathBuf::from("k.pem"));
        let plain = parse(&["--demo"]).unwrap().into_config().unwrap();
        assert!(plain.tls.is_none());
        let tls = ["--tls-cert", "c", "--tls-key", "k", "--demo"];
        let open = parse(&[&["--host", "0.0.0.0"], &tls[..]].concat());
        assert!(matches!(
            open.unwrap().into_config(),
            Err(UsageError::Unprotected(_))
        ));
    }

    #[test]
    fn isolate_is_a_server_per_session_always_and_2026_is_offered_unless_held_back() {
        let default = parse(&["--demo"]).unwrap().into_config().unwrap();
        assert_eq!(default.server.server_per_session, ServerPerSession::Auto);
        assert_eq!(default.server.max_protocol_version, "2026-07-28");
        let isolate = parse(&["--demo", "--isolate", "--max-children", "3"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(isolate.server.server_per_session, ServerPerSession::Always);
        assert_eq!(isolate.server.max_children, 3);
        assert!(parse(&["--demo", "--isolate", "--server-per-session", "never"]).is_err());
        let held_back = parse(&["--demo", "--max-protocol-version", "2025-11-25"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(held_back.server.max_protocol_version, "2025-11-25");
        assert!(parse(&["--demo", "--max-protocol-version", "2027-01-01"]).is_err());
    }

    #[test]
    fn demo_runs_this_executable() {
        let config = parse(&["--demo"]).unwrap().into_config().unwrap();
        assert_eq!(config.server.child.args, ["demo-server"]);
    }

    #[test]
    fn a_session_secret_must_be_long_enough_and_reaches_every_server() {
        let short = parse(&["--demo", "--session-secret", "hunter2"]).unwrap();
        let refused = short.into_config().unwrap_err().to_string();
        assert!(refused.contains("at least 32"), "{refused}");
        let secret = "0123456789abcdef0123456789abcdef";
        let config = parse(&["--demo", "--session-secret", secret])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(
            config.server.session_secret,
            Some(SessionSecret::new(secret).unwrap())
        );
    }
}
