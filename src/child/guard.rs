//! The guard: a tiny process (`mcp-bridge guard -- COMMAND…`) that the bridge starts in place of
//! the server. It leads the server's process group and is its subreaper: every process the server
//! starts, even one that leaves the group with `setsid` (Node's `detached: true`, Python's
//! `start_new_session`), stays its descendant. When the server exits, when the bridge asks
//! (`SIGUSR2`), or when the bridge dies, even by SIGKILL, the guard kills every descendant, so
//! nothing outlives the bridge. It keeps no copy of the server's stdin, stdout or stderr, so a
//! server that closes its stdout is seen to have done so.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The signal the kernel sends the guard when the bridge dies.
const PARENT_DIED: libc::c_int = libc::SIGUSR1;
/// The signal the bridge sends to have every descendant killed now.
pub const STOP_EVERYTHING: libc::c_int = libc::SIGUSR2;

/// Runs `program` as the guard's child and exits the way it exits. Never returns.
pub fn run(bridge_pid: libc::pid_t, program: &OsString, args: &[OsString]) -> ! {
    let waited = waited_signals();
    // SAFETY: plain libc calls on this single-threaded process before it starts the server.
    unsafe {
        // Orphans of the server (a double fork, a setsid helper) are re-parented to the guard,
        // not to init, so the guard can find them and kill them.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        // Waited for below rather than handled; the server gets an empty mask back.
        libc::sigprocmask(libc::SIG_BLOCK, &waited, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DIED);
        // The bridge may have died before the line above.
        if libc::getppid() != bridge_pid {
            std::process::exit(1);
        }
    }
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let server = match command.spawn() {
        Ok(server) => server.id() as libc::pid_t,
        Err(e) => {
            eprintln!("cannot start `{}`: {e}", program.to_string_lossy());
            std::process::exit(127);
        }
    };
    let_go_of_stdio();
    loop {
        // SAFETY: waiting for a signal of a set built above.
        let signal = unsafe { libc::sigwaitinfo(&waited, std::ptr::null_mut()) };
        match signal {
            libc::SIGCHLD => {
                if let Some(status) = reap_until(server) {
                    kill_descendants();
                    exit_like(status);
                }
            }
            PARENT_DIED | STOP_EVERYTHING => {
                kill_descendants();
                std::process::exit(1);
            }
            // SIGTERM, SIGINT and SIGHUP sent to the group reach the server too; it decides.
            _ => {}
        }
    }
}

fn waited_signals() -> libc::sigset_t {
    // SAFETY: initialising a sigset_t on the stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [
            libc::SIGCHLD,
            PARENT_DIED,
            STOP_EVERYTHING,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
        ] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Points the guard's own stdio at /dev/null: the server has its copies, and a copy kept here
/// would hide the server closing its stdout from the bridge.
fn let_go_of_stdio() {
    // SAFETY: opening /dev/null and duplicating it over the guard's own descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            return;
        }
        for fd in 0..=2 {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
    }
}

/// Reaps every child that has exited; the server's wait status once it has.
fn reap_until(server: libc::pid_t) -> Option<libc::c_int> {
    let mut server_status = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child, without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return server_status;
        }
        if pid == server {
            server_status = Some(status);
        }
    }
}

/// Kills every descendant of the guard, over and over until none is left: a process killed
/// here may have children of its own, which are then re-parented to the guard.
fn kill_descendants() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    for _ in 0..100 {
        let descendants = descendants_of(me);
        if descendants.is_empty() {
            return;
        }
        for pid in descendants {
            // SAFETY: kill has no memory-safety preconditions; ESRCH (already gone) is fine.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        reap_until(0);
        std::thread::sleep(std::time::Duration::from_millis(10));
        reap_until(0);
    }
}

/// The live processes below `root`, read from /proc (zombies left out: they are only waiting
/// to be reaped).
fn descendants_of(root: libc::pid_t) -> Vec<libc::pid_t> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let Some(after) = stat.rfind(')').map(|end| &stat[end + 1..]) else {
                continue;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next().unwrap_or("");
            let ppid = fields.next().and_then(|p| p.parse::<libc::pid_t>().ok());
            if let Some(ppid) = ppid
                && state != "Z"
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

/// Exits with the server's status, or dies of the signal that killed it, so that the bridge
/// reports it as the server's.
fn exit_like(status: libc::c_int) -> ! {
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: resetting a disposition, unblocking and raising a signal on ourselves.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        std::process::exit(128 + signal);
    }
    std::process::exit(1)
}
