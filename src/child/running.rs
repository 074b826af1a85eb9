//! A running child: spawned in its own process group (under its guard), its stdout and stderr
//! read by tasks of their own, its end noticed and reported, and stopped politely, then
//! firmly.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::command::ChildCommand;
use super::listener::Listener;
use super::output::{self, ChildLimits};
use super::process::{ProcessGroup, build_command, resolve_program};
use super::stdin::Stdin;
use crate::sync::Lock;

#[derive(Debug, thiserror::Error)]
#[error("cannot start `{command}`: {source}")]
pub struct SpawnError {
    command: String,
    #[source]
    source: std::io::Error,
}

/// How the child ended, once it has.
#[derive(Debug, Clone)]
pub struct Exit {
    pub description: String,
    pub status: Option<ExitStatus>,
}

/// How long stdout may stay open after the process exited (or the reverse) before the bridge
/// treats the child as gone: long enough to read answers already in the pipe, short enough
/// that requests in flight hear about the exit at once.
const EXIT_SETTLE: Duration = Duration::from_millis(50);

/// A running child. Cloning the handle is cheap; the process is killed with its whole process
/// group when [`Child::shutdown`] runs or when the last task holding it is dropped.
#[derive(Debug, Clone)]
pub struct Child {
    stdin: Stdin,
    exit: watch::Receiver<Option<Exit>>,
    group: Arc<ProcessGroup>,
}

impl Child {
    pub fn spawn(
        command: &ChildCommand,
        limits: ChildLimits,
        listener: Arc<dyn Listener>,
    ) -> Result<Child, SpawnError> {
        let spawn_error = |source| SpawnError {
            command: command.display(),
            source,
        };
        let program = resolve_program(command).map_err(spawn_error)?;
        let mut process = build_command(command, &program)
            .spawn()
            .map_err(spawn_error)?;
        let pid = process.id().expect("a just-spawned child has a pid") as i32;
        let group = Arc::new(ProcessGroup {
            pgid: pid,
            guarded: command.guard.is_some(),
        });
        let name = command.name();
        info!(child = %name, pid, "started `{}`", command.display());

        let stdin = process.stdin.take().expect("stdin is piped");
        let stdout = process.stdout.take().expect("stdout is piped");
        let stderr = process.stderr.take().expect("stderr is piped");

        let stdin = Stdin::new(stdin).map_err(spawn_error)?;
        listener.attached(stdin.clone());

        let last_stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_logger = tokio::spawn(output::log_stderr(
            stderr,
            name.clone(),
            last_stderr.clone(),
            listener.clone(),
        ));

        let (exit_tx, exit_rx) = watch::channel(None);
        let stopping = stdin.closing();
        let reader = tokio::spawn(output::read_stdout(
            stdout,
            name.clone(),
            limits,
            listener.clone(),
            stdin.clone(),
        ));
        tokio::spawn(async move {
            // Whichever comes first, stdout closing or the process exiting, give the other a
            // moment so the answers already written are still delivered and the status is known.
            let mut reader = reader;
            let status = tokio::select! {
                _ = &mut reader => tokio::time::timeout(EXIT_SETTLE, process.wait()).await.ok(),
                status = process.wait() => {
                    let _ = tokio::time::timeout(EXIT_SETTLE, &mut reader).await;
                    Some(status)
                }
            };
            let status = status.and_then(Result::ok);
            // The last stderr line usually says why; it may still be in the pipe. A grandchild
            // holding stderr open must not delay the report, hence the bound.
            let _ = tokio::time::timeout(EXIT_SETTLE, &mut stderr_logger).await;
            let description = describe_exit(status, &last_stderr);
            // Logged first: whoever waits on this child may report and exit as soon as its
            // requests fail below, and the log line belongs before that report.
            if stopping.is_cancelled() {
                info!(child = %name, "{description}");
            } else {
                error!(child = %name, "{description}");
            }
            // The exit is published before requests in flight fail, so that a client retrying
            // at once already finds the child gone and waits for its restart.
            let _ = exit_tx.send(Some(Exit {
                description: description.clone(),
                status,
            }));
            listener.exited(&description);
            // `process` drops here; kill_on_drop reaps a child that closed stdout but lives on.
        });

        Ok(Child {
            stdin,
            exit: exit_rx,
            group,
        })
    }

    /// Queues one line (ending in `\n`) for the child's stdin.
    pub async fn send(&self, line: Bytes) -> Result<(), ChildGone> {
        self.send_pieces(vec![line]).await
    }

    /// Queues one line given in pieces (see [`Stdin::send_pieces`]).
    pub async fn send_pieces(&self, pieces: Vec<Bytes>) -> Result<(), ChildGone> {
        if let Some(exit) = self.exit.borrow().as_ref() {
            return Err(ChildGone(exit.description.clone()));
        }
        self.stdin
            .send_pieces(pieces)
            .await
            .map_err(|closed| ChildGone(closed.to_string()))
    }

    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// The child's exit, once it has exited.
    pub fn exit(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    /// Resolves when the child has exited.
    pub async fn exited(&self) -> Exit {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone().expect("waited for Some"),
            Err(_) => Exit {
                description: "the child's monitor ended".into(),
                status: None,
            },
        }
    }

    pub fn stdin(&self) -> &Stdin {
        &self.stdin
    }

    /// Kills the child's whole process group at once.
    pub fn kill(&self) {
        self.group.kill();
    }

    /// Stops the child politely, then firmly: close its stdin (the stdio way of saying "done"),
    /// then SIGTERM its process group, then SIGKILL.
    pub async fn shutdown(&self, grace: Duration) {
        if self.exit().is_some() {
            self.group.kill();
            return;
        }
        self.stdin.close();
        if tokio::time::timeout(grace, self.exited()).await.is_ok() {
            self.group.kill();
            return;
        }
        debug!("the child ignored stdin closing; sending SIGTERM to its process group");
        self.group.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            warn!("the child ignored SIGTERM; killing its process group");
        }
        self.group.kill();
    }
}

/// The child is not there to answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ChildGone(pub String);

fn describe_exit(status: Option<ExitStatus>, last_stderr: &Mutex<String>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("the child exited with status {code}"),
            (None, Some(signal)) => format!("the child was killed by signal {signal}"),
            _ => "the child exited".to_owned(),
        },
        None => "the child closed its stdout".to_owned(),
    };
    let last = last_stderr.locked();
    if last.is_empty() {
        how
    } else {
        format!("{how} (last stderr line: {})", last.trim())
    }
}
