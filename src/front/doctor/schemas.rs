//! Tool schemas as Dify reads them: every tool needs an `inputSchema` of type `object`, and
//! its form is built from the top-level properties, whose types must be JSON Schema's own.

use serde_json::Value;

use super::report::Finding;
use super::text::{list, plural};

/// The types JSON Schema defines; Dify's form handles these and no others.
const STANDARD_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// What is wrong with a list of tools, by kind: each entry names the tool (and property).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaProblems {
    /// Tools without `inputSchema`.
    pub no_schema: Vec<String>,
    /// Tools whose `inputSchema` is not `{"type": "object", …}`.
    pub not_object: Vec<String>,
    /// Properties whose `type` is not a JSON Schema type.
    pub odd_type: Vec<String>,
    /// Properties with `$ref` or without `type`: Dify shows them as plain strings.
    pub untyped: Vec<String>,
    /// Whether any tool was checked at all.
    checked: bool,
}

/// Checks each tool's `inputSchema` and its top-level properties (what Dify's form is built
/// from).
pub fn check_schemas(tools: &[Value]) -> SchemaProblems {
    let mut problems = SchemaProblems {
        checked: !tools.is_empty(),
        ..SchemaProblems::default()
    };
    for tool in tools {
        let name = tool["name"].as_str().unwrap_or("(unnamed)");
        let Some(schema) = tool.get("inputSchema").filter(|s| !s.is_null()) else {
            problems.no_schema.push(name.to_owned());
            continue;
        };
        match schema.get("type") {
            Some(Value::String(kind)) if kind == "object" => {}
            Some(kind) => problems.not_object.push(format!("{name} (type {kind})")),
            None if schema.is_object() => problems.not_object.push(format!("{name} (no type)")),
            None => problems.not_object.push(format!("{name} ({schema})")),
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (property, spec) in properties {
            let at = format!("{name}.{property}");
            if spec.get("$ref").is_some() {
                problems.untyped.push(format!("{at} ($ref)"));
                continue;
            }
            match spec.get("type") {
                None => problems.untyped.push(format!("{at} (no type)")),
                Some(Value::String(kind)) if STANDARD_TYPES.contains(&kind.as_str()) => {}
                // A list of types is standard JSON Schema when each of them is.
                Some(Value::Array(kinds))
                    if kinds
                        .iter()
                        .all(|k| k.as_str().is_some_and(|k| STANDARD_TYPES.contains(&k))) => {}
                Some(kind) => problems.odd_type.push(format!("{at} ({kind})")),
            }
        }
    }
    problems
}

impl SchemaProblems {
    /// The report's lines: one per kind of problem (naming every case), or one ✓ per check.
    pub fn findings(&self) -> Vec<Finding> {
        if !self.checked {
            return Vec::new();
        }
        let mut findings = Vec::new();
        if self.no_schema.is_empty() && self.not_object.is_empty() {
            findings.push(Finding::pass(
                "every tool has an inputSchema of type \"object\"",
            ));
        }
        if !self.no_schema.is_empty() {
            findings.push(Finding::blocking(
                format!(
                    "{} without inputSchema: {}",
                    plural(self.no_schema.len(), "tool", "tools"),
                    list(&self.no_schema)
                ),
                "one tool without inputSchema makes Dify drop the whole tool list; give every \
                 tool one, at least {\"type\": \"object\", \"properties\": {}}",
            ));
        }
        if !self.not_object.is_empty() {
            findings.push(Finding::blocking(
                format!(
                    "{} with an inputSchema whose type is not \"object\": {}",
                    plural(self.not_object.len(), "tool", "tools"),
                    list(&self.not_object)
                ),
                "MCP requires tool arguments to be an object: use {\"type\": \"object\", \
                 \"properties\": {...}}",
            ));
        }
        if self.odd_type.is_empty() && self.untyped.is_empty() {
            findings.push(Finding::pass("every property has a standard type"));
        }
        if !self.odd_type.is_empty() {
            findings.push(Finding::blocking(
                format!(
                    "{} with a non-standard type: {}",
                    plural(self.odd_type.len(), "property", "properties"),
                    list(&self.odd_type)
                ),
                "Dify's tool form fails on types other than string, number, integer, boolean, \
                 array, object and null; use one of those (a file path or URL is a string)",
            ));
        }
        if !self.untyped.is_empty() {
            findings.push(Finding::warning(
                format!(
                    "{} with $ref or without type, plain strings in Dify: {}",
                    plural(self.untyped.len(), "property", "properties"),
                    list(&self.untyped)
                ),
                "Dify gives a property with $ref or without type a text field; inline referenced \
                 schemas and give every property a type",
            ));
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::doctor::report::Level;
    use serde_json::json;

    #[test]
    fn schema_checks_name_each_problem() {
        let tools = json!([
            {"name": "fine", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string"}, "b": {"type": ["integer", "null"]}}}},
            {"name": "bare"},
            {"name": "nulled", "inputSchema": null},
            {"name": "array", "inputSchema": {"type": "array"}},
            {"name": "typeless", "inputSchema": {"properties": {}}},
            {"name": "upload", "inputSchema": {"type": "object", "properties": {
                "file": {"type": "file"},
                "target": {"$ref": "#/$defs/target"},
                "anything": {},
                "mixed": {"type": ["string", "blob"]}}}},
        ]);
        let problems = check_schemas(tools.as_array().unwrap());
        assert_eq!(problems.no_schema, ["bare", "nulled"]);
        assert_eq!(
            problems.not_object,
            ["array (type \"array\")", "typeless (no type)"]
        );
        assert_eq!(
            problems.odd_type,
            [
                "upload.file (\"file\")",
                "upload.mixed ([\"string\",\"blob\"])"
            ]
        );
        let mut untyped = problems.untyped.clone();
        untyped.sort();
        assert_eq!(
            untyped,
            ["upload.anything (no type)", "upload.target ($ref)"]
        );
        let levels: Vec<Level> = problems.findings().iter().map(|f| f.level).collect();
        assert_eq!(
            levels,
            [
                Level::Blocking,
                Level::Blocking,
                Level::Blocking,
                Level::Warning
            ]
        );
    }

    #[test]
    fn good_schemas_pass() {
        let tools = json!([
            {"name": "echo", "inputSchema": {"type": "object", "properties": {
                "message": {"type": "string"}}, "required": ["message"]}},
            {"name": "now", "inputSchema": {"type": "object"}},
        ]);
        let problems = check_schemas(tools.as_array().unwrap());
        assert_eq!(
            problems,
            SchemaProblems {
                checked: true,
                ..Default::default()
            }
        );
        let findings = problems.findings();
        assert_eq!(findings.len(), 2);
        assert!(
            findings
                .iter()
                .all(|f| f.level == Level::Pass && f.hint.is_none())
        );
        assert!(check_schemas(&[]).findings().is_empty());
    }
}
