//! The guard: a tiny process (`mcp-bridge guard -- COMMAND…`) that the bridge starts in place of
//! the server. It leads the server's process group and kills the whole group when the bridge
//! dies, even by SIGKILL, so grandchildren (`npx` → `node`, `uvx` → `python`) never outlive it.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// The signal the kernel sends the guard when the bridge dies.
const PARENT_DIED: libc::c_int = libc::SIGUSR1;

extern "C" fn kill_process_group(_: libc::c_int) {
    // SAFETY: killpg is async-signal-safe; 0 means the caller's own group.
    unsafe {
        libc::killpg(0, libc::SIGKILL);
    }
}

extern "C" fn let_the_server_handle_it(_: libc::c_int) {
    // SIGTERM/SIGINT/SIGHUP sent to the group reach the server too; the guard stays to report
    // how the server ended. (A handler, not SIG_IGN, so the server does not inherit "ignore".)
}

/// Runs `program` with the guard's stdio and exits the way it exits. Never returns.
pub fn run(bridge_pid: libc::pid_t, program: &OsString, args: &[OsString]) -> ! {
    // SAFETY: installing handlers that only call async-signal-safe functions.
    unsafe {
        libc::signal(
            PARENT_DIED,
            kill_process_group as *const () as libc::sighandler_t,
        );
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(
                signal,
                let_the_server_handle_it as *const () as libc::sighandler_t,
            );
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DIED);
        // The bridge may have died before the line above.
        if libc::getppid() != bridge_pid {
            std::process::exit(1);
        }
    }
    let status = match Command::new(program).args(args).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("cannot start `{}`: {e}", program.to_string_lossy());
            std::process::exit(127);
        }
    };
    if let Some(code) = status.code() {
        std::process::exit(code);
    }
    if let Some(signal) = status.signal() {
        // Die of the same signal so the bridge reports it as the server's.
        // SAFETY: resetting a disposition and raising a signal on ourselves.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        std::process::exit(128 + signal);
    }
    std::process::exit(1)
}
