//! The client processes the tests run to their end (the official SDK clients, the third-party
//! clients, the conformance suite): each started in a process group of its own with its output
//! captured, and killed with its whole group when it overruns its time limit, so that nothing it
//! started outlives its test.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A process started by [`start`], running against its time limit.
pub struct Running {
    child: Child,
    program: String,
    started: Instant,
    limit: Duration,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// Whether its group was killed and the process reaped already.
    done: bool,
}

/// How a process ended, and what it wrote.
pub struct Finished {
    /// Its exit status; None when it was killed at its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
    limit: Duration,
}

impl Finished {
    /// Exited by itself, with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// How it ended, for a failure message: its exit status, or the kill at the limit.
    pub fn ending(&self) -> String {
        match self.status {
            Some(status) => status.to_string(),
            None => format!("killed after {:?}", self.limit),
        }
    }
}

/// Starts `command` with no stdin and both outputs captured, in a new process group; its time
/// limit counts from now.
pub fn start(mut command: Command, limit: Duration) -> Running {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    // Both pipes are drained on threads of their own so that a chatty process never blocks on
    // a full pipe while it is waited for.
    let stdout = read_to_end(child.stdout.take().expect("piped stdout"));
    let stderr = read_to_end(child.stderr.take().expect("piped stderr"));
    Running {
        child,
        program,
        started: Instant::now(),
        limit,
        stdout: Some(stdout),
        stderr: Some(stderr),
        done: false,
    }
}

/// Runs `command` to its end, or kills it (and its group) at `limit`.
pub fn run(command: Command, limit: Duration) -> Finished {
    start(command, limit).finish()
}

impl Running {
    /// Waits for the process to exit, or for its time limit. Either way whatever is left of its
    /// group is killed, so that no helper it started lives on holding its pipes open.
    pub fn finish(mut self) -> Finished {
        let deadline = self.started + self.limit;
        let exited = loop {
            if self.has_exited() {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = self.kill_group_and_reap();
        let elapsed = self.started.elapsed();
        let stdout = self.stdout.take().map(join).unwrap_or_default();
        let stderr = self.stderr.take().map(join).unwrap_or_default();
        Finished {
            status: status.filter(|_| exited),
            stdout,
            stderr,
            elapsed,
            limit: self.limit,
        }
    }

    /// Whether the process has exited, without reaping it: until it is reaped its pid, which is
    /// its group's id, cannot be given to another process, so killing the group is safe.
    fn has_exited(&self) -> bool {
        // SAFETY: waitid writes only into `info`, a zeroed siginfo_t of our own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let polled = libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            polled == 0 && info.si_pid() != 0
        }
    }

    fn kill_group_and_reap(&mut self) -> Option<ExitStatus> {
        self.done = true;
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL);
        }
        match self.child.wait() {
            Ok(status) => Some(status),
            Err(e) => {
                eprintln!("could not reap {}: {e}", self.program);
                None
            }
        }
    }
}

impl Drop for Running {
    /// A test that fails between `start` and `finish` leaves nothing running behind it.
    fn drop(&mut self) {
        if !self.done {
            self.kill_group_and_reap();
        }
    }
}

fn read_to_end(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join(reader: JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}
