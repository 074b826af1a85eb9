//! Everything about one bridged server, however it was given (the command line, a config
//! file's entry): its command, endpoint, limits and timeouts, when it restarts, and which
//! sessions get a server of their own.

use std::time::Duration;

use crate::child::{ChildCommand, Exit};
use crate::session::ClientHello;
use crate::session::ids::SessionSecret;
use crate::tools::{ToolPolicy, View};

/// Everything about one bridged server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// The name in URLs (`/servers/NAME/mcp`), metrics and logs.
    pub name: String,
    pub child: ChildCommand,
    /// The Streamable HTTP endpoint; the legacy SSE endpoints sit beside it.
    pub path: String,
    pub restart: RestartPolicy,
    /// Start the child on the first request that needs it, not at start-up.
    pub lazy: bool,
    /// Stop the child after this long with no sessions and no requests; the next request
    /// starts it again.
    pub idle_timeout: Option<Duration>,
    pub startup_timeout: Duration,
    pub request_timeout: Option<Duration>,
    pub max_message_bytes: usize,
    pub max_sessions: usize,
    pub session_idle_timeout: Duration,
    pub max_in_flight: usize,
    pub stream_after: Duration,
    pub keep_alive: Duration,
    /// How long a 2026-07-28 call whose server asked its client for input waits for the
    /// client's retry.
    pub input_timeout: Duration,
    /// How long a 2025-11-25 call whose client dropped its answer stream waits for a resume.
    pub resume_window: Duration,
    /// Which sessions get a child of their own instead of the shared one.
    pub server_per_session: ServerPerSession,
    /// Sessions with a child of their own at once, at most.
    pub max_children: usize,
    /// The newest protocol revision offered to clients (the stateless 2026-07-28 revision is
    /// offered only when this names it).
    pub max_protocol_version: &'static str,
    /// Shared by the replicas (the command line's, for every server of a file).
    pub session_secret: Option<SessionSecret>,
    /// Which tools clients are shown, under which names.
    pub tools: ToolPolicy,
    /// Which clients get repaired tool schemas.
    pub repair_schemas: RepairSchemas,
    /// Each tenant (told apart by its credentials) gets a server of its own; `None`: one
    /// server for everybody.
    pub tenancy: Option<Tenancy>,
}

/// How a server's clients are told apart by their credentials, each tenant with a warm server
/// of its own whose environment carries them, and the bounds of that pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    /// The server's variable, then the request header whose value it takes; the values pick
    /// the tenant.
    pub env_from_headers: Vec<(String, String)>,
    /// The bearer token picks the tenant of the `--tenants` file (and its environment).
    pub by_token: bool,
    /// Tenants with a server running at once, at most.
    pub max_tenants: usize,
    /// A tenant's server stops after this long without sessions or requests.
    pub idle: Duration,
}

impl Tenancy {
    pub const DEFAULT_MAX_TENANTS: usize = 20;
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);

    /// Whether anything tells tenants apart (else the server is one for everybody).
    pub fn is_per_tenant(&self) -> bool {
        self.by_token || !self.env_from_headers.is_empty()
    }
}

impl ServerSettings {
    /// A server running `child` with the command line's defaults, named after its program.
    pub fn new(child: ChildCommand) -> Self {
        Self {
            name: child.name(),
            child,
            path: "/mcp".into(),
            restart: RestartPolicy::OnFailure,
            lazy: false,
            idle_timeout: None,
            startup_timeout: Duration::from_secs(120),
            request_timeout: None,
            max_message_bytes: 64 * 1024 * 1024,
            max_sessions: 10_000,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_in_flight: 4096,
            stream_after: Duration::from_secs(3),
            keep_alive: Duration::from_secs(15),
            input_timeout: Duration::from_secs(300),
            resume_window: Duration::from_secs(60),
            server_per_session: ServerPerSession::Auto,
            max_children: 100,
            max_protocol_version: crate::wire::versions::STATELESS_VERSION,
            session_secret: None,
            tools: ToolPolicy::default(),
            repair_schemas: RepairSchemas::Auto,
            tenancy: None,
        }
    }
}

/// When to start the server again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestartPolicy {
    /// After a non-zero exit or a signal; a clean exit (status 0) ends the bridge.
    OnFailure,
    /// After every exit.
    Always,
    /// Never: the bridge ends with the server's status.
    Never,
}

impl RestartPolicy {
    pub fn restarts_after(self, exit: &Exit) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !exit.status.is_some_and(|s| s.success()),
        }
    }
}

/// Which sessions get a child of their own instead of sharing the warm one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerPerSession {
    /// Sessions whose client declared sampling, elicitation or roots, so that the server's
    /// requests reach exactly that client; the rest share (Dify too: it declares sampling and
    /// roots but refuses both).
    Auto,
    /// Every session (`--isolate`): for servers that keep state per client.
    Always,
    /// No session: every client shares the warm server, whose own requests get an error (a
    /// decline for elicitation) and whose log messages are not delivered.
    Never,
}

/// Clients that declare capabilities they refuse when asked: Dify declares `sampling` and
/// `roots` in every `initialize` and answers both with an error. A child of its own would cost
/// Dify a process start per tool call and give it nothing.
const REFUSES_WHAT_IT_DECLARES: [&str; 1] = ["Dify"];

impl ServerPerSession {
    /// Whether a client whose `initialize` said `hello` gets a child of its own.
    pub fn gives_own_child(self, hello: &ClientHello) -> bool {
        match self {
            ServerPerSession::Always => true,
            ServerPerSession::Never => false,
            ServerPerSession::Auto => {
                hello.capabilities.answers_any()
                    && !REFUSES_WHAT_IT_DECLARES.contains(&hello.client_name.as_str())
            }
        }
    }
}

/// Which clients are shown every tool on one page with schemas repaired ([`View::Repaired`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RepairSchemas {
    /// Clients known to read schemas narrowly: Dify (by its `clientInfo.name`).
    Auto,
    /// Every client.
    Always,
    /// No client: every one gets the server's schemas as it sent them.
    Never,
}

/// Clients that read a tool schema's top-level `type`s only, a single page of tools, and end
/// the session on `elicitation/create` (see the README's "Tools Dify can use").
const READS_SCHEMAS_NARROWLY: [&str; 1] = ["dify"];

impl RepairSchemas {
    /// How a client whose `initialize` said `hello` is shown the tools.
    pub fn view_for(self, hello: &ClientHello) -> View {
        let narrow = READS_SCHEMAS_NARROWLY
            .iter()
            .any(|name| hello.client_name.eq_ignore_ascii_case(name));
        match self {
            RepairSchemas::Always => View::Repaired,
            RepairSchemas::Auto if narrow => View::Repaired,
            RepairSchemas::Auto | RepairSchemas::Never => View::Plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ClientCapabilities;

    fn hello(name: &str, sampling: bool, roots: bool) -> ClientHello {
        ClientHello {
            capabilities: ClientCapabilities {
                sampling,
                elicitation: false,
                roots,
            },
            client_name: name.into(),
        }
    }

    #[test]
    fn by_default_only_clients_that_can_answer_get_a_child_of_their_own() {
        let auto = ServerPerSession::Auto;
        assert!(auto.gives_own_child(&hello("fastmcp", true, false)));
        assert!(auto.gives_own_child(&hello("inspector", false, true)));
        assert!(!auto.gives_own_child(&hello("inspector-cli", false, false)));
        // Dify declares sampling and roots in every initialize and refuses both.
        assert!(!auto.gives_own_child(&hello("Dify", true, true)));
        assert!(ServerPerSession::Always.gives_own_child(&hello("Dify", true, true)));
        assert!(!ServerPerSession::Never.gives_own_child(&hello("fastmcp", true, false)));
    }

    #[test]
    fn dify_gets_repaired_tools_unless_told_otherwise() {
        let dify = hello("Dify", true, true);
        let sdk = hello("mcp", false, false);
        assert_eq!(RepairSchemas::Auto.view_for(&dify), View::Repaired);
        assert_eq!(
            RepairSchemas::Auto.view_for(&hello("dify", false, false)),
            View::Repaired
        );
        assert_eq!(RepairSchemas::Auto.view_for(&sdk), View::Plain);
        assert_eq!(RepairSchemas::Always.view_for(&sdk), View::Repaired);
        assert_eq!(RepairSchemas::Never.view_for(&dify), View::Plain);
    }
}
