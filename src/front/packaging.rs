//! Packaging helpers: shell completions and the man page generated from the clap definitions
//! (`mcp-bridge completions SHELL`, `mcp-bridge man`), and the tiny HTTP probe the Docker
//! image's `HEALTHCHECK` runs (`mcp-bridge healthcheck`), since the image has no curl.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Command, CommandFactory};
use http::{Request, StatusCode, Uri, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::cli::{Cli, CompletionsArgs, HealthcheckArgs, ManArgs};

/// The completion script for `shell`, for the command line as clap defines it.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = completion_command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "mcp-bridge", &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete's bash script spells the state of a subcommand of a hyphenated binary
        // two ways (`mcp__bridge__subcmd__man` in the loop, `mcp__subcmd__bridge__subcmd__man`
        // in the case arms; clap issue 6421), so nothing after a subcommand would complete.
        let text = String::from_utf8_lossy(&script).replace("mcp__subcmd__bridge", "mcp__bridge");
        script = text.into_bytes();
    }
    script
}

/// The command line without its hidden subcommands: clap_complete offers every subcommand,
/// hidden or not (clap issue 1335), and `clap::Command` cannot remove one, so the root is put
/// together again from the same arguments and the visible subcommands. Nothing is restated, so
/// it cannot drift from [`Cli`].
fn completion_command() -> Command {
    let full = Cli::command();
    let mut command = Command::new("mcp-bridge")
        .version(env!("CARGO_PKG_VERSION"))
        .args_conflicts_with_subcommands(true)
        .args(full.get_arguments().cloned())
        .groups(full.get_groups().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = full.get_about() {
        command = command.about(about.clone());
    }
    command
}

/// What the man pages describe: no `help` subcommand (it has no page of its own, and
/// `clap_mangen::generate_to` leaves it out too, so `man` and `man --dir` agree).
fn man_command() -> Command {
    Cli::command().disable_help_subcommand(true)
}

/// The man page (roff) for the command line as clap defines it.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(man_command()).render(&mut page)?;
    Ok(page)
}

/// `mcp-bridge completions SHELL`: the script on stdout.
pub fn completions(args: &CompletionsArgs) -> ExitCode {
    print(&completion_script(args.shell))
}

/// `mcp-bridge man`: the main page on stdout, or every page into `--dir`.
pub fn man(args: &ManArgs) -> ExitCode {
    let Some(dir) = &args.dir else {
        return match man_page() {
            Ok(page) => print(&page),
            Err(e) => {
                eprintln!("mcp-bridge man: {e}");
                ExitCode::FAILURE
            }
        };
    };
    match std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(man_command(), dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "mcp-bridge man: cannot write the pages to {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn print(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // `mcp-bridge man | head` is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-bridge: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `mcp-bridge healthcheck`: GET the URL, exit 0 on 2xx and 1 otherwise (with one line on
/// stderr saying why), as Docker's `HEALTHCHECK` expects.
pub fn healthcheck(args: &HealthcheckArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcp-bridge healthcheck: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limit = Duration::from_secs(args.timeout.max(1));
    let outcome = runtime.block_on(async {
        tokio::time::timeout(limit, get_status(&args.url))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs())))
    });
    match outcome {
        Ok(status) if status.is_success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("mcp-bridge healthcheck: {} answered {status}", args.url);
            ExitCode::FAILURE
        }
        Err(why) => {
            eprintln!("mcp-bridge healthcheck: {}: {why}", args.url);
            ExitCode::FAILURE
        }
    }
}

/// One plain-HTTP/1.1 GET; the answer's status.
async fn get_status(url: &str) -> Result<StatusCode, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("only http:// URLs are supported, not {other}://")),
        None => return Err("the URL needs http://".to_owned()),
    }
    let host = uri.host().ok_or("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let host_header = match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let address = host.trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((address, port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(header::HOST, host_header)
        .header(header::USER_AGENT, "mcp-bridge-healthcheck")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthcheck_refuses_what_it_cannot_fetch() {
        assert!(get_status("https://127.0.0.1/readyz").await.is_err());
        assert!(get_status("127.0.0.1:8000/readyz").await.is_err());
        assert!(get_status("not a url").await.is_err());
    }

    #[test]
    fn generated_files_name_the_options() {
        let bash = String::from_utf8(completion_script(clap_complete::Shell::Bash)).unwrap();
        assert!(bash.contains("--port"));
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.contains(".TH"));
    }
}
