//! What the checked server says: its answers go to the doctor's requests waiting on them, its
//! own requests are refused as the shared server's are, and what it prints besides messages is
//! heard and judged (junk on stdout, errors on stderr).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::report::Finding;
use super::text::{plural, preview};
use crate::child::stdin::Stdin;
use crate::child::{Answer, Listener, Noise};
use crate::mux::{Mux, NoAnswer};
use crate::sync::Lock;
use crate::upstream::router::refuse_child_request;
use crate::wire::jsonrpc::{Kind, Message};

/// The doctor's ear on one server.
#[derive(Debug, Default)]
pub struct Checked {
    /// The doctor's own requests in flight.
    pub mux: Arc<Mux<()>>,
    pub heard: Mutex<Heard>,
}

impl Listener for Checked {
    fn attached(&self, _stdin: Stdin) {}

    fn answer(&self, bridge_id: u64, answer: Answer) -> bool {
        self.mux.complete(bridge_id, answer).is_ok()
    }

    fn no_answer(&self, bridge_id: u64, code: i64, message: String) -> bool {
        self.mux.fail(bridge_id, NoAnswer { code, message })
    }

    fn message(&self, _line: &Bytes, message: &Message<'_>, stdin: &Stdin) {
        if let Kind::Request { id, method } = &message.kind {
            refuse_child_request(id, method, stdin, "mcp-bridge doctor answers no requests");
        }
    }

    fn noise(&self, noise: Noise<'_>) {
        self.heard.locked().hear(noise);
    }

    fn exited(&self, description: &str) {
        self.mux.close(description);
    }
}

/// What the server printed besides messages while it was checked.
#[derive(Debug, Default)]
pub struct Heard {
    junk_lines: usize,
    first_junk: Option<String>,
    error_lines: usize,
    first_error: Option<String>,
    pub last_stderr: Option<String>,
}

impl Heard {
    pub fn hear(&mut self, noise: Noise<'_>) {
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

    pub fn stdout_finding(&self) -> Finding {
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

    pub fn stderr_finding(&self) -> Finding {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::doctor::report::Level;

    #[test]
    fn noise_is_counted_and_quoted() {
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
