//! What to run: the program, its arguments, environment and directory, exactly as the user gave
//! them (no shell in between), and whether it runs under the guard.

use std::ffi::OsString;
use std::path::PathBuf;

/// What to run, exactly as the user gave it: no shell in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// The `mcp-bridge` executable, to run the server under its guard (see [`crate::child::guard`]);
    /// `None` runs the server directly, covered only by its own parent-death signal.
    pub guard: Option<PathBuf>,
    /// The name in logs (a config file's server name); `None` uses the program's file name.
    pub label: Option<String>,
}

impl ChildCommand {
    /// A short name for logs: the label, or the program's file name.
    pub fn name(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        let program = PathBuf::from(&self.program);
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    /// The command line as one string, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
