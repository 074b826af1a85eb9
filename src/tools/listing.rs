//! A server's tools as its child listed them (every page), and the `tools/list` results each
//! kind of client gets from them: the child's own pages with the policy applied, or for a
//! client that needs repaired schemas one page with every tool, repaired. Each result is made
//! once per listing, on first use.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::policy::{ToolFacts, ToolPolicy};
use super::repair::repair;

/// How a client is shown the tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    /// As the child lists them, page by page.
    #[default]
    Plain,
    /// Every tool on one page, schemas repaired for clients that read them narrowly (Dify).
    Repaired,
}

/// One page of a list the child answered (`tools/list`, or another the bridge reads whole).
#[derive(Debug)]
pub struct Page {
    /// The cursor it was asked with (`None` for the first).
    pub cursor: Option<String>,
    /// Its `result`, as the child sent it.
    pub result: Box<RawValue>,
}

/// The child's tools, every page of them, and the results made from them.
#[derive(Debug)]
pub struct Listing {
    pages: Vec<Page>,
    /// Each page's `tools`, read.
    tools: Vec<Vec<Value>>,
    /// The child said more pages follow than were read (bounds).
    pub incomplete: bool,
    plain: OnceLock<Vec<Box<RawValue>>>,
    repaired: OnceLock<Box<RawValue>>,
}

impl Listing {
    /// A listing of `pages` (read in order, the first without a cursor). A page whose
    /// `result.tools` is not a list counts as one without tools.
    pub fn new(pages: Vec<Page>, incomplete: bool) -> Listing {
        let tools = pages
            .iter()
            .map(|page| {
                let result: Value = serde_json::from_str(page.result.get()).unwrap_or_default();
                match result.get("tools") {
                    Some(Value::Array(tools)) => tools.clone(),
                    _ => Vec::new(),
                }
            })
            .collect();
        Listing {
            pages,
            tools,
            incomplete,
            plain: OnceLock::new(),
            repaired: OnceLock::new(),
        }
    }

    /// Every tool of every page, in the child's order.
    pub fn tools(&self) -> impl Iterator<Item = &Value> {
        self.tools.iter().flatten()
    }

    /// Every tool the policy shows, as a client without repair sees it.
    pub fn shown_tools(&self, policy: &ToolPolicy) -> Vec<Value> {
        self.tools()
            .filter_map(|tool| shown(tool, policy))
            .collect()
    }

    /// The policy's facts about every tool.
    pub fn facts(&self) -> Vec<ToolFacts> {
        self.tools().filter_map(ToolFacts::of).collect()
    }

    /// The facts of the child's tool `name`, if it listed one.
    pub fn find(&self, name: &str) -> Option<ToolFacts> {
        self.tools()
            .filter_map(ToolFacts::of)
            .find(|facts| facts.name == name)
    }

    /// The `result` a client shown `view` gets for a `tools/list` with `cursor`; `None` when
    /// no page was read for that cursor (the request then goes to the child).
    pub fn result(
        &self,
        view: View,
        cursor: Option<&str>,
        policy: &ToolPolicy,
    ) -> Option<&RawValue> {
        match view {
            View::Plain => {
                let page = self
                    .pages
                    .iter()
                    .position(|page| page.cursor.as_deref() == cursor)?;
                let pages = self.plain.get_or_init(|| {
                    self.pages
                        .iter()
                        .zip(&self.tools)
                        .map(|(page, tools)| plain_page(page, tools, policy))
                        .collect()
                });
                Some(&pages[page])
            }
            View::Repaired if cursor.is_none() => {
                Some(self.repaired.get_or_init(|| self.repaired_result(policy)))
            }
            View::Repaired => None,
        }
    }

    /// One page with every tool the policy shows, repaired, and no `nextCursor`.
    fn repaired_result(&self, policy: &ToolPolicy) -> Box<RawValue> {
        let mut result = first_page_members(&self.pages);
        result.remove("nextCursor");
        let tools: Vec<Value> = self
            .tools()
            .filter_map(|tool| shown(tool, policy))
            .map(repaired)
            .collect();
        result.insert("tools".into(), Value::Array(tools));
        to_raw(&Value::Object(result))
    }
}

/// A `tools/list` answer (a whole JSON-RPC message, in chunks) the child gave a client's own
/// request: its tools shown as `view` and `policy` say. Anything that is not a list of tools
/// passes as it came.
pub fn adapt_page(answer: Vec<Bytes>, view: View, policy: &ToolPolicy) -> Vec<Bytes> {
    let Ok(mut message) = serde_json::from_slice::<Map<String, Value>>(&answer.concat()) else {
        return answer;
    };
    let Some(Value::Array(tools)) = message.get_mut("result").and_then(|r| r.get_mut("tools"))
    else {
        return answer;
    };
    let adapted = tools
        .iter()
        .filter_map(|tool| shown(tool, policy))
        .map(|tool| match view {
            View::Plain => tool,
            View::Repaired => repaired(tool),
        })
        .collect();
    *tools = adapted;
    match serde_json::to_vec(&message) {
        Ok(bytes) => vec![Bytes::from(bytes)],
        Err(_) => answer,
    }
}

fn repaired(mut tool: Value) -> Value {
    if let Some(schema) = tool.get("inputSchema") {
        let schema = repair(schema).schema;
        tool["inputSchema"] = schema;
    }
    tool
}

/// A page as every client but a repaired one gets it: the child's bytes when neither the
/// policy nor a missing schema changes it.
fn plain_page(page: &Page, tools: &[Value], policy: &ToolPolicy) -> Box<RawValue> {
    let schema_missing = tools.iter().any(lacks_schema);
    if policy.is_empty() && !schema_missing {
        return page.result.clone();
    }
    let mut result: Map<String, Value> =
        serde_json::from_str(page.result.get()).unwrap_or_default();
    let tools = tools
        .iter()
        .filter_map(|tool| shown(tool, policy))
        .collect();
    result.insert("tools".into(), Value::Array(tools));
    to_raw(&Value::Object(result))
}

/// `tool` as clients see it, or `None` when the policy hides it. A tool without `inputSchema`
/// gets `{"type": "object"}`: the spec requires one, and clients that validate the list (Dify,
/// the Python SDK) reject every tool for the lack of it.
fn shown(tool: &Value, policy: &ToolPolicy) -> Option<Value> {
    let facts = ToolFacts::of(tool);
    if let Some(facts) = &facts
        && !policy.shows(facts)
    {
        return None;
    }
    let mut tool = tool.clone();
    if lacks_schema(&tool)
        && let Some(object) = tool.as_object_mut()
    {
        object.insert("inputSchema".into(), serde_json::json!({"type": "object"}));
    }
    if let Some(facts) = facts {
        let shown_name = policy.shown_name(&facts.name);
        if shown_name != facts.name {
            tool["name"] = Value::String(shown_name.to_owned());
        }
        if let Some(text) = policy.description(&facts.name) {
            tool["description"] = Value::String(text.to_owned());
        }
    }
    Some(tool)
}

fn lacks_schema(tool: &Value) -> bool {
    tool.get("inputSchema").is_none_or(Value::is_null)
}

/// The first page's members (its `_meta` and the like), to carry over.
fn first_page_members(pages: &[Page]) -> Map<String, Value> {
    pages
        .first()
        .and_then(|page| serde_json::from_str(page.result.get()).ok())
        .unwrap_or_default()
}

fn to_raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(cursor: Option<&str>, result: Value) -> Page {
        Page {
            cursor: cursor.map(str::to_owned),
            result: to_raw(&result),
        }
    }

    fn listing() -> Listing {
        Listing::new(
            vec![
                page(
                    None,
                    json!({"tools": [
                        {"name": "get_weather", "annotations": {"readOnlyHint": true},
                         "inputSchema": {"type": "object", "properties": {"at": {"$ref": "#/$defs/Place"}},
                                         "$defs": {"Place": {"type": "object"}}}},
                        {"name": "bare"}
                    ], "nextCursor": "2"}),
                ),
                page(
                    Some("2"),
                    json!({"tools": [{"name": "delete", "inputSchema": {"type": "object"}}]}),
                ),
            ],
            false,
        )
    }

    fn parsed(raw: Option<&RawValue>) -> Value {
        serde_json::from_str(raw.expect("a result").get()).unwrap()
    }

    #[test]
    fn plain_pages_are_the_childs_own_bytes_unless_something_changes_them() {
        let listing = listing();
        let policy = ToolPolicy::default();
        let second = listing.result(View::Plain, Some("2"), &policy).unwrap();
        assert_eq!(second.get(), listing.pages[1].result.get());
        let first = parsed(listing.result(View::Plain, None, &policy));
        assert_eq!(first["nextCursor"], "2");
        assert_eq!(first["tools"][1]["inputSchema"], json!({"type": "object"}));
        assert_eq!(
            first["tools"][0]["inputSchema"]["properties"]["at"]["$ref"],
            "#/$defs/Place"
        );
        assert!(listing.result(View::Plain, Some("3"), &policy).is_none());
    }

    #[test]
    fn the_repaired_view_is_one_page_of_every_shown_tool() {
        let listing = listing();
        let policy = ToolPolicy {
            rename: vec![("get_weather".into(), "weather".into())],
            deny: vec!["delete".into()],
            ..ToolPolicy::default()
        };
        let result = parsed(listing.result(View::Repaired, None, &policy));
        assert!(result.get("nextCursor").is_none());
        let names: Vec<&str> = result["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["weather", "bare"]);
        assert_eq!(
            result["tools"][0]["inputSchema"]["properties"]["at"]["type"],
            "object"
        );
        assert!(listing.result(View::Repaired, Some("2"), &policy).is_none());
    }
}
