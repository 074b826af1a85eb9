//! Checking one server as the bridge would run it: start it, run the handshake, list its tools
//! (every page), prompts and resources, stop it, and report what it found.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
/// Pages followed at most, against a server whose cursor never ends.
const MAX_PAGES: usize = 100;

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
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<Value> = None;
    loop {
        let params = cursor.as_ref().map_or_else(
            || "{}".to_owned(),
            |cursor| json!({ "cursor": cursor }).to_string(),
        );
        let mut result = request(checked, stdin, method, &params).await?;
        let page = match result.get_mut(key).map(Value::take) {
            Some(Value::Array(page)) => page,
            _ => return Err(format!("the result has no `{key}` list")),
        };
        pages.push(page.len());
        items.extend(page);
        let next = result
            .get("nextCursor")
            .filter(|c| !c.is_null() && c.as_str() != Some(""))
            .cloned();
        match next {
            // A cursor repeating itself would never end.
            Some(next) if pages.len() < MAX_PAGES && cursor.as_ref() != Some(&next) => {
                cursor = Some(next);
            }
            _ => return Ok((items, pages)),
        }
    }
}

/// One request of the doctor's own: its `result`, or why there is none, in a few words.
async fn request(
    checked: &Checked,
    stdin: &Stdin,
    method: &str,
    params: &str,
) -> Result<Value, String> {
    match requests::ask(&checked.mux, stdin, method, params, LIST_TIMEOUT).await {
        Ok(result) => {
            serde_json::from_str(result.get()).map_err(|e| format!("the answer is not JSON: {e}"))
        }
        Err(AskError::Refused(error)) => {
            let error: Value = serde_json::from_str(&error).unwrap_or_default();
            Err(match (error["code"].as_i64(), error["message"].as_str()) {
                (Some(code), Some(message)) => format!("{message} ({code})"),
                _ => error.to_string(),
            })
        }
        Err(AskError::Timeout(_)) => Err(format!("no answer within {} s", LIST_TIMEOUT.as_secs())),
        Err(AskError::NoAnswer(why)) => Err(why.message),
        Err(e) => Err(e.to_string()),
    }
}
