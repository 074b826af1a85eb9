//! `mcp-bridge doctor` as a command: the servers to check from its arguments (a command, the
//! demo, or every server of a config file), each checked in turn, the reports printed, and the
//! exit status.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::check::{Target, check};
use crate::child::ChildCommand;
use crate::front::cli::DoctorArgs;
use crate::servers::config;
use crate::upstream::ServerSettings;

/// Runs `mcp-bridge doctor`: checks every target, prints each report on stdout, and exits 0
/// when nothing blocks clients, 1 otherwise, 2 for a usage error.
pub fn run(args: &DoctorArgs) -> ExitCode {
    let targets = match targets(args) {
        Ok(targets) => targets,
        Err(e) => {
            eprintln!("mcp-bridge doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcp-bridge doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_secs(args.startup_timeout);
    let blocked = runtime.block_on(async {
        let mut blocked = false;
        for (i, target) in targets.iter().enumerate() {
            let report = check(target, timeout).await;
            // A closed stdout (`| head`) must not stop the checks or their exit code.
            let separator = if i > 0 { "\n" } else { "" };
            let _ = write!(std::io::stdout().lock(), "{separator}{report}");
            blocked |= report.blocking() > 0;
        }
        blocked
    });
    if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The servers to check, as the command line gives them.
pub fn targets(args: &DoctorArgs) -> Result<Vec<Target>, String> {
    let me = std::env::current_exe()
        .map_err(|e| format!("cannot find the mcp-bridge executable: {e}"))?;
    if let Some(path) = &args.config {
        let defaults = ServerSettings::new(ChildCommand {
            program: OsString::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            guard: Some(me),
            label: None,
        });
        let mut defaults = defaults;
        defaults.repair_schemas = args.repair_schemas;
        let servers = config::load(path, &defaults).map_err(|e| e.to_string())?;
        return Ok(servers
            .into_iter()
            .map(|server| Target {
                name: server.name,
                command: server.child,
                tools: server.tools,
                repair_schemas: server.repair_schemas,
            })
            .collect());
    }
    let (program, rest, label) = if args.demo {
        (
            me.clone().into_os_string(),
            vec![OsString::from("demo-server")],
            Some("demo".to_owned()),
        )
    } else {
        let mut command = args.command.iter().cloned();
        let program = command.next().ok_or(
            "no MCP server to check: give its command after `--` (e.g. `mcp-bridge doctor -- \
             npx -y @modelcontextprotocol/server-everything`) or use --demo",
        )?;
        (program, command.collect(), None)
    };
    let command = ChildCommand {
        program,
        args: rest,
        env: args.env.clone(),
        cwd: args.cwd.clone(),
        guard: Some(me),
        label,
    };
    let tools = args.tools.policy();
    tools
        .check()
        .map_err(|e| format!("the tool policy cannot apply: {e}"))?;
    Ok(vec![Target {
        name: command.name(),
        command,
        tools,
        repair_schemas: args.repair_schemas,
    }])
}
