//! What the doctor says about a server's tools as the bridge will show them: how the pages
//! reach Dify, what the tool policy hides and renames (and which of its names match nothing),
//! and the schemas, judged as Dify gets them (repaired, unless `--repair-schemas never`) while
//! the problems other clients still see are warnings, with one line per repaired tool saying
//! what the repair changed.

use serde_json::{Value, json};

use super::report::{Finding, Level};
use super::schemas::check_schemas;
use super::text::{list, plural, text};
use crate::tools::repair::repair;
use crate::tools::{ToolFacts, ToolPolicy};
use crate::upstream::settings::RepairSchemas;

/// The findings on `tools` (every page; `pages` holds how many each page had).
pub fn tool_findings(
    tools: &[Value],
    pages: &[usize],
    policy: &ToolPolicy,
    repair_for: RepairSchemas,
) -> Vec<Finding> {
    let repairs = repair_for != RepairSchemas::Never;
    let mut findings = vec![pages_finding(tools.len(), pages, repairs)];
    findings.extend(policy_findings(tools, policy));
    let shown: Vec<Value> = tools
        .iter()
        .filter(|tool| ToolFacts::of(tool).is_none_or(|facts| policy.shows(&facts)))
        .cloned()
        .collect();
    let as_sent = check_schemas(&shown).findings();
    let clean = as_sent.iter().all(|finding| finding.level == Level::Pass);
    if !repairs || clean {
        findings.extend(as_sent.into_iter().map(filled_in));
        return findings;
    }
    let mut changed = Vec::new();
    let repaired: Vec<Value> = shown
        .iter()
        .map(|tool| {
            let mut tool = tool.clone();
            match tool.get("inputSchema").filter(|s| !s.is_null()) {
                Some(schema) => {
                    let repaired = repair(schema);
                    if !repaired.changes.is_empty() {
                        changed.push((text(&tool["name"]), repaired.changes));
                    }
                    tool["inputSchema"] = repaired.schema;
                }
                None => tool["inputSchema"] = json!({"type": "object"}),
            }
            tool
        })
        .collect();
    let for_dify = check_schemas(&repaired).findings();
    let sent_messages: Vec<String> = as_sent.iter().map(|f| f.message.clone()).collect();
    for finding in as_sent.into_iter().map(filled_in) {
        let unchanged = for_dify
            .iter()
            .any(|after| after.message == finding.message);
        if finding.level == Level::Pass || unchanged {
            continue;
        }
        if finding.message.contains("without inputSchema") {
            // Filled in for every client, not only Dify.
            findings.push(finding);
        } else {
            findings.push(Finding::warning(
                format!("as the server sends them: {}", finding.message),
                format!(
                    "Dify gets them repaired by the bridge; other clients get them as sent. {}",
                    finding.hint.unwrap_or_default()
                ),
            ));
        }
    }
    // What the repair left as it was is the same for every client; the rest is Dify's.
    findings.extend(for_dify.into_iter().map(|finding| {
        if sent_messages.contains(&finding.message) {
            finding
        } else {
            Finding {
                message: format!("for Dify: {}", finding.message),
                ..finding
            }
        }
    }));
    for (name, changes) in changed {
        findings.push(Finding::pass(format!(
            "repaired for Dify: {name}: {}",
            grouped(&changes)
        )));
    }
    findings
}

/// The repair's changes of one tool, those of a kind together: `inlined $ref "#/$defs/A",
/// "#/$defs/B"; dropped $defs`.
fn grouped(changes: &[String]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for change in changes {
        let (kind, subject) = match change.find('"') {
            Some(at) => change.split_at(at),
            None => (change.as_str(), ""),
        };
        match groups.iter_mut().find(|(known, _)| *known == kind) {
            Some((_, subjects)) => subjects.push(subject),
            None => groups.push((kind, vec![subject])),
        }
    }
    let groups: Vec<String> = groups
        .into_iter()
        .map(|(kind, subjects)| format!("{kind}{}", subjects.join(", ")))
        .collect();
    groups.join("; ")
}

/// Tools spread over pages: the bridge gives Dify one page with all of them, unless told not
/// to repair.
fn pages_finding(tools: usize, pages: &[usize], repairs: bool) -> Finding {
    let total = plural(tools, "tool", "tools");
    match pages {
        [] | [_] if tools == 0 => Finding::warning(
            "the server lists no tools",
            "Dify shows an empty tool list; check the server's configuration (some servers \
             enable tools through environment variables, set with --env)",
        ),
        [] | [_] => Finding::pass(format!("{total} in one page")),
        _ if repairs => Finding::pass(format!(
            "{total} in {} pages: the bridge gives Dify every tool on one page",
            pages.len()
        )),
        [first, ..] => Finding::warning(
            format!(
                "{total} in {} pages: Dify reads only the first page ({})",
                pages.len(),
                plural(*first, "tool", "tools")
            ),
            "Dify never asks for the next page (nextCursor); let the bridge repair for Dify \
             (--repair-schemas auto, the default) or return every tool in one page",
        ),
    }
}

/// What the policy does: how many tools it shows, which it hides and renames, and each of its
/// names that matches no tool.
fn policy_findings(tools: &[Value], policy: &ToolPolicy) -> Vec<Finding> {
    if policy.is_empty() {
        return Vec::new();
    }
    let facts: Vec<ToolFacts> = tools.iter().filter_map(ToolFacts::of).collect();
    let hidden: Vec<String> = facts
        .iter()
        .filter(|facts| !policy.shows(facts))
        .map(|facts| facts.name.clone())
        .collect();
    let renamed: Vec<String> = facts
        .iter()
        .filter(|facts| policy.shows(facts))
        .filter_map(|facts| {
            let shown = policy.shown_name(&facts.name);
            (shown != facts.name).then(|| format!("{} as {shown}", facts.name))
        })
        .collect();
    let mut findings = vec![Finding::pass(format!(
        "the tool policy shows {} of {}",
        facts.len() - hidden.len(),
        plural(facts.len(), "tool", "tools")
    ))];
    if !hidden.is_empty() {
        findings.push(Finding::pass(format!(
            "hidden (not listed, calls refused): {}",
            list(&hidden)
        )));
    }
    if !renamed.is_empty() {
        findings.push(Finding::pass(format!("renamed: {}", list(&renamed))));
    }
    let names: Vec<&str> = facts.iter().map(|facts| facts.name.as_str()).collect();
    for unknown in policy.unknown_names(&names) {
        findings.push(Finding::warning(
            format!("the tool policy names a tool the server does not list: {unknown}"),
            "check the spelling against the server's tool names (the policy uses the server's \
             own names, not renamed ones)",
        ));
    }
    findings
}

/// The bridge gives a tool without `inputSchema` `{"type": "object"}` for every client, so its
/// lack no longer breaks a list.
fn filled_in(finding: Finding) -> Finding {
    if finding.level == Level::Blocking && finding.message.contains("without inputSchema") {
        Finding::warning(
            format!(
                "{} (the bridge gives them {{\"type\": \"object\"}})",
                finding.message
            ),
            "give every tool an inputSchema, at least {\"type\": \"object\", \"properties\": {}}",
        )
    } else {
        finding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken() -> Vec<Value> {
        vec![
            json!({"name": "search", "annotations": {"readOnlyHint": true},
                   "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}),
            json!({"name": "no_schema"}),
            json!({"name": "upload", "inputSchema": {"type": "object",
                   "$defs": {"target": {"type": "string"}},
                   "properties": {"file": {"type": "file"}, "target": {"$ref": "#/$defs/target"}}}}),
        ]
    }

    fn levels(findings: &[Finding]) -> Vec<Level> {
        findings.iter().map(|f| f.level).collect()
    }

    #[test]
    fn the_repair_leaves_nothing_that_blocks_dify() {
        let findings = tool_findings(
            &broken(),
            &[2, 1],
            &ToolPolicy::default(),
            RepairSchemas::Auto,
        );
        assert!(
            !levels(&findings).contains(&Level::Blocking),
            "{findings:#?}"
        );
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            messages.contains(&"3 tools in 2 pages: the bridge gives Dify every tool on one page")
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("repaired for Dify: upload: ")),
            "{messages:#?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m
                    .starts_with("as the server sends them: 1 property with a non-standard type")),
            "{messages:#?}"
        );
    }

    #[test]
    fn changes_of_a_kind_are_said_together() {
        let changes = [
            r##"inlined $ref "#/$defs/A""##,
            r#"flattened nullable anyOf of "x""#,
            r##"inlined $ref "#/$defs/B""##,
            "dropped $defs",
        ]
        .map(String::from);
        assert_eq!(
            grouped(&changes),
            r##"inlined $ref "#/$defs/A", "#/$defs/B"; flattened nullable anyOf of "x"; dropped $defs"##
        );
    }

    #[test]
    fn without_repair_the_problems_block_as_before() {
        let findings = tool_findings(
            &broken(),
            &[2, 1],
            &ToolPolicy::default(),
            RepairSchemas::Never,
        );
        assert!(levels(&findings).contains(&Level::Blocking));
        let no_schema = findings
            .iter()
            .find(|f| f.message.contains("without inputSchema"))
            .unwrap();
        assert_eq!(no_schema.level, Level::Warning);
    }

    #[test]
    fn the_policy_says_what_it_hides_renames_and_does_not_find() {
        let policy = ToolPolicy {
            deny: vec!["upload".into(), "delete".into()],
            rename: vec![("search".into(), "find".into())],
            ..ToolPolicy::default()
        };
        let findings = policy_findings(&broken(), &policy);
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the tool policy shows 2 of 3 tools",
                "hidden (not listed, calls refused): upload",
                "renamed: search as find",
                "the tool policy names a tool the server does not list: denied \"delete\"",
            ]
        );
    }
}
