//! The doctor's report on one server: findings, each a pass, a warning or a blocking
//! problem with one hint, and what it learnt of the server; printed for people.

use std::fmt;

use super::text::{plural, wrap};

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
    pub fn pass(message: impl Into<String>) -> Self {
        Self {
            level: Level::Pass,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Warning,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn blocking(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Blocking,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// What [`super::check::check`] found out about one server. `Display` prints it for people.
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
