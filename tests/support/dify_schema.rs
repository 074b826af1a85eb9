//! A `tools/list` result read the way Dify reads it (shared/docs/dify.md, `tools/list`): one page
//! only, the whole list refused when a tool has no `inputSchema` or a property whose kind is not
//! one of Dify's, and each top-level property turned into one form parameter of a kind resolved
//! by Dify's rules. What a test gets from [`read_tools`] is what a Dify user would see, or the
//! error that would break the tool refresh.

use serde_json::Value;

/// Dify's parameter kinds; any other breaks the tool refresh.
pub const DIFY_KINDS: [&str; 5] = ["string", "number", "boolean", "array", "object"];

/// A tool as Dify shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DifyTool {
    pub name: String,
    pub description: String,
    /// One per top-level property of `inputSchema`, in the schema's order.
    pub params: Vec<DifyParam>,
}

/// One form parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct DifyParam {
    pub name: String,
    /// string, number, boolean, array or object.
    pub kind: String,
    /// Named in `inputSchema.required`.
    pub required: bool,
    /// The property's `description` ("" without one).
    pub description: String,
    /// The property itself for `array` and `object` parameters (Dify keeps it as their schema).
    pub schema: Option<Value>,
}

impl DifyTool {
    pub fn param(&self, name: &str) -> &DifyParam {
        self.params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("tool {} has no parameter {name}: {self:?}", self.name))
    }
}

/// Finds `name` among `tools`.
pub fn tool<'a>(tools: &'a [DifyTool], name: &str) -> &'a DifyTool {
    tools.iter().find(|t| t.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        panic!("Dify sees no tool {name}; it sees {names:?}")
    })
}

/// Reads a `tools/list` answer (the whole JSON-RPC message, or its `result`) as Dify does: the
/// `tools` of this one page (a `nextCursor` is not followed). Err when Dify's refresh would
/// break: no `tools` array, a tool without a name or without `inputSchema`, a property whose
/// kind is not one of [`DIFY_KINDS`].
pub fn read_tools(answer: &Value) -> Result<Vec<DifyTool>, String> {
    let result = answer.get("result").unwrap_or(answer);
    let tools = result["tools"]
        .as_array()
        .ok_or_else(|| format!("no tools array in {answer}"))?;
    tools.iter().map(read_tool).collect()
}

fn read_tool(tool: &Value) -> Result<DifyTool, String> {
    let name = tool["name"]
        .as_str()
        .ok_or_else(|| format!("a tool without a name: {tool}"))?
        .to_owned();
    let schema = tool
        .get("inputSchema")
        .filter(|s| s.is_object())
        .ok_or_else(|| format!("tool {name} has no inputSchema: the whole list breaks"))?;
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut params = Vec::new();
    if let Some(properties) = schema["properties"].as_object() {
        for (param, property) in properties {
            let kind = kind_of(property)
                .map_err(|why| format!("tool {name}, parameter {param}: {why}"))?;
            params.push(DifyParam {
                name: param.clone(),
                required: required.contains(&param.as_str()),
                description: property["description"].as_str().unwrap_or("").to_owned(),
                schema: matches!(kind.as_str(), "array" | "object").then(|| property.clone()),
                kind,
            });
        }
    }
    Ok(DifyTool {
        name,
        description: tool["description"].as_str().unwrap_or("").to_owned(),
        params,
    })
}

/// A property's kind by Dify's rules: `type` as a string as is (`"null"` → string); a list of
/// types → its first non-null one; no `type` → the first non-null kind in `anyOf`/`oneOf`, then
/// in `allOf`, else string. `integer` and `float` → number. Err for anything not in
/// [`DIFY_KINDS`].
pub fn kind_of(property: &Value) -> Result<String, String> {
    let raw = match property.get("type") {
        Some(declared) => type_of(declared)
            .ok_or_else(|| format!("a type that is neither a string nor a list: {declared}"))?,
        None => ["anyOf", "oneOf"]
            .iter()
            .chain(["allOf"].iter())
            .filter_map(|key| property[*key].as_array())
            .flatten()
            .filter_map(|choice| choice.get("type").and_then(type_of))
            .find(|kind| kind != "null")
            .unwrap_or_else(|| "string".to_owned()),
    };
    let kind = match raw.as_str() {
        "null" => "string".to_owned(),
        "integer" | "float" => "number".to_owned(),
        _ => raw,
    };
    if DIFY_KINDS.contains(&kind.as_str()) {
        Ok(kind)
    } else {
        Err(format!(
            "kind {kind:?} is not one of Dify's parameter types: the tool refresh breaks"
        ))
    }
}

/// `type` as Dify takes it: a string as is, a list → its first non-null entry (or "null").
fn type_of(declared: &Value) -> Option<String> {
    match declared {
        Value::String(kind) => Some(kind.clone()),
        Value::Array(kinds) => Some(
            kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|k| *k != "null")
                .unwrap_or("null")
                .to_owned(),
        ),
        _ => None,
    }
}
