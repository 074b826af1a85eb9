//! Starting the child's process: finding its program as `execvp` would (so a typo is the
//! bridge's one-line error), the command line under the guard, in a process group of its own
//! with a parent-death signal, and that group, killed when the last handle goes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::command::ChildCommand;

/// Finds the program the way `execvp` would, so that a typo is reported by the bridge itself
/// and not, later and less clearly, by the guard.
pub(super) fn resolve_program(command: &ChildCommand) -> std::io::Result<PathBuf> {
    let program = Path::new(&command.program);
    if command.program.as_encoded_bytes().contains(&b'/') {
        let path = match &command.cwd {
            Some(dir) if program.is_relative() => dir.join(program),
            _ => program.to_path_buf(),
        };
        return executable(path);
    }
    let search_path = command
        .env
        .iter()
        .rev()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut denied = None;
    for dir in std::env::split_paths(&search_path) {
        match executable(dir.join(program)) {
            Ok(path) => return Ok(path),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT)))
}

fn executable(path: PathBuf) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(&path)?;
    if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
        Ok(path)
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EACCES))
    }
}

pub(super) fn build_command(command: &ChildCommand, program: &Path) -> Command {
    let mut cmd = match &command.guard {
        Some(bridge) => {
            let mut cmd = Command::new(bridge);
            cmd.arg("guard")
                .arg("--bridge-pid")
                .arg(std::process::id().to_string())
                .arg("--")
                .arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the grandchildren (npx → node, uvx → python) are stopped
        // together with it.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &command.cwd {
        cmd.current_dir(dir);
    }
    let bridge_pid = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // If the bridge dies without cleaning up (SIGKILL), the kernel kills the child.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The bridge may already have died between fork and prctl.
            if libc::getppid() != bridge_pid {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
}

/// The child's process group; every member is killed when the last handle is dropped.
#[derive(Debug)]
pub(super) struct ProcessGroup {
    pub(super) pgid: i32,
    /// Led by the guard, which also reaches the processes that left the group.
    pub(super) guarded: bool,
}

/// How long the guard gets to kill what left the group before the group itself is killed.
const GUARD_CLEANUP: Duration = Duration::from_millis(300);

impl ProcessGroup {
    pub(super) fn signal(&self, signal: i32) {
        // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
        unsafe {
            libc::killpg(self.pgid, signal);
        }
    }

    /// Kills everything the server started. The guard kills its descendants (those that left
    /// the group with setsid too) and exits; the group is killed after a moment in any case, in
    /// case the guard cannot.
    pub(super) fn kill(&self) {
        if !self.guarded {
            self.signal(libc::SIGKILL);
            return;
        }
        // SAFETY: kill has no memory-safety preconditions; the guard leads the group.
        unsafe {
            libc::kill(self.pgid, super::guard::STOP_EVERYTHING);
        }
        let pgid = self.pgid;
        std::thread::spawn(move || {
            std::thread::sleep(GUARD_CLEANUP);
            // SAFETY: as above.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        });
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
