//! Checking one server as the bridge would run it: start it, run the handshake, list its tools
//! (every page), prompts and resources, stop it, and report what it found.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::findings::{
    DIFY_NEWEST, initialize_finding, protocol_finding, start_failure, start_finding,
};
use super::listener::Checked;
use super::report::{Finding, Report};
use super::text::text;
use super::tools::tool_findings;
use crate::child::stdin::Stdin;
use crate::child::{ChildCommand, ChildLimits};
use crate::sync::Lock;
use crate::tools::{ToolFacts, ToolPolicy};
use crate::upstream::handshake::{self, StartError, Startup};
use crate::upstream::requests::{self, AskError};
use crate::upstream::settings::RepairSchemas;

/// How long each list request may take once the server is up.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// One server to check, as the bridge would run it.
pub struct Target {
    pub name: String,
    pub command: ChildCommand,
    pub tools: ToolPolicy,
    pub repair_schemas: RepairSchemas,
}

/// Starts the server as the bridge would, runs the handshake and the list requests, stops it,
/// and reports what it found.
pub async fn check(target: &Target, startup_timeout: Duration) -> Report {
    let command = &target.command;
    let mut report = Report {
        name: target.name.clone(),
        command: command.display(),
        ..Report::default()
    };
    let checked = Arc::new(Checked::default());
    let startup = Startup {
        command,
        limits: ChildLimits {
            max_message_bytes: 64 * 1024 * 1024,
        },
        timeout: startup_timeout,
    };
    let started = Instant::now();
    match handshake::start(startup, checked.clone(), &checked.mux).await {
        Ok(serving) => {
            let took = started.elapsed();
            report.findings.push(start_finding(took));
            let (answer, _) = serving.hello.answer("0", Some(DIFY_NEWEST), DIFY_NEWEST);
            let initialize: Value = serde_json::from_slice(&answer).unwrap_or_default();
            let result = &initialize["result"];
            report.server = Some((
                text(&result["serverInfo"]["name"]),
                text(&result["serverInfo"]["version"]),
            ));
            let version = serving.hello.child_version().to_owned();
            report.findings.push(protocol_finding(&version));
            report.protocol = Some(version);
            report.findings.push(initialize_finding(result));
            let capabilities = &result["capabilities"];
            let stdin = serving.child.stdin();
            list_everything(&mut report, &checked, stdin, capabilities, target).await;
            serving.child.shutdown(Duration::from_secs(5)).await;
        }
        Err(e) => {
            let last_stderr = checked.heard.locked().last_stderr.clone();
            report
                .findings
                .push(start_failure(&e, startup_timeout, last_stderr));
            if matches!(e, StartError::Spawn(_)) {
                // Nothing ran, so there is nothing it printed.
                return report;
            }
        }
    }
    let heard = checked.heard.locked();
    report.findings.push(heard.stdout_finding());
    report.findings.push(heard.stderr_finding());
    report
}

/// Lists tools (when offered; all pages), prompts and resources (when offered), and checks the
/// tools' schemas.
async fn list_everything(
    report: &mut Report,
    checked: &Checked,
    stdin: &Stdin,
    capabilities: &Value,
    target: &Target,
) {
    if capabilities.get("tools").is_some() {
        match list_all(checked, stdin, "tools/list", "tools").await {
            Ok((tools, pages)) => {
                let policy = &target.tools;
                report.findings.extend(tool_findings(
                    &tools,
                    &pages,
                    policy,
                    target.repair_schemas,
                ));
                // The names clients are shown.
                let shown = tools.iter().filter_map(ToolFacts::of).filter(|t| policy.shows(t));
                report.tools = Some(
                    shown
                        .map(|t| policy.shown_name(&t.name).to_owned())
                        .collect(),
                );
            }
            Err(e) => report.findings.push(Finding::blocking(
                format!("tools/list failed: {e}"),
                "clients cannot see any tool; the server must answer tools/list with {\"tools\": [...]}",
            )),
        }
    } else {
        report.tools = Some(Vec::new());
        report.findings.push(Finding::warning(
            "the server does not declare the tools capability",
            "Dify lists no tools for it; a server with tools declares capabilities.tools in its \
             initialize result",
        ));
    }
    for (method, key, field) in [
        ("prompts/list", "prompts", &mut report.prompts),
        ("resources/list", "resources", &mut report.resources),
    ] {
        if capabilities.get(key).is_none() {
            continue;
        }
        match list_all(checked, stdin, method, key).await {
            Ok((items, _)) => *field = Some(items.len()),
            Err(e) => report.findings.push(Finding::warning(
                format!("{method} failed: {e}"),
                format!("the server declares {key} but does not list them; clients show none"),
            )),
        }
    }
}

/// Asks `method` page after page; the items of every page, and how many each page had.
async fn list_all(
    checked: &Checked,
    stdin: &Stdin,
    method: &str,
    key: &str,
) -> Result<(Vec<Value>, Vec<usize>), String> {
    let (pages, _) = requests::ask_every_page(&checked.mux, stdin, method, LIST_TIMEOUT)
        .await
        .map_err(|e| in_a_few_words(e, LIST_TIMEOUT))?;
    let mut items = Vec::new();
    let mut counts = Vec::new();
    for page in pages {
        let mut result: Value = serde_json::from_str(page.result.get())
            .map_err(|e| format!("the answer is not JSON: {e}"))?;
        let Some(Value::Array(page)) = result.get_mut(key).map(Value::take) else {
            return Err(format!("the result has no `{key}` list"));
        };
        counts.push(page.len());
        items.extend(page);
    }
    Ok((items, counts))
}

/// Why one of the doctor's requests has no result, in a few words.
fn in_a_few_words(e: AskError, within: Duration) -> String {
    match e {
        AskError::Refused(error) => {
            let error: Value = serde_json::from_str(&error).unwrap_or_default();
            match (error["code"].as_i64(), error["message"].as_str()) {
                (Some(code), Some(message)) => format!("{message} ({code})"),
                _ => error.to_string(),
            }
        }
        AskError::Timeout(_) => format!("no answer within {} s", within.as_secs()),
        AskError::NoAnswer(why) => why.message,
        e => e.to_string(),
    }
}
