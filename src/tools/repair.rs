//! Schema repair for Dify: rewrites a tool's `inputSchema` so that Dify's narrow reading of it
//! (one form parameter per top-level property, its kind taken from `type` alone) comes out
//! right, and so that the nested schemas it hands the model are self-contained.

use std::collections::HashSet;
use std::ptr;

use serde_json::{Map, Value, json};

/// The JSON Schema types; Dify's form knows these and no others.
pub const STANDARD_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// How many `$ref`s may be inlined inside one another; a deeper one is cut to a plain object.
const MAX_REF_DEPTH: usize = 32;
/// How deep in the repaired schema a `$ref` may still be inlined. Without it, 32 nested refs
/// to deep definitions make a schema thousands of levels deep, and the recursion building it
/// would overflow a worker thread's stack.
const MAX_INLINE_NESTING: usize = 64;
/// How many schema nodes the repair writes before it stops inlining `$ref`s: refs that each
/// use the previous definition twice would otherwise expand exponentially ("billion laughs").
const MAX_NODES: usize = 20_000;
/// Where a root keeps the schemas that its local `$ref`s point at.
const DEFINITIONS: [&str; 2] = ["$defs", "definitions"];
/// The keywords offering a choice of schemas, in the order Dify looks at them.
const CHOICES: [&str; 2] = ["anyOf", "oneOf"];

/// A repaired schema and what the repair changed, one short line per change for `mcp-bridge doctor`
/// (e.g. `inlined $ref "#/$defs/Address"`, `merged allOf in "shipping"`, `flattened nullable anyOf of "note"`,
/// `gave "contact" the type "object" of its first choice`, `mapped type "file" of "upload" to "string"`,
/// `narrowed type list of "x" to "string"`, `cut recursive $ref "#/$defs/Node" to a plain object`).
/// Duplicates are collapsed (the same change once, in first-seen order).
#[derive(Debug, Clone, PartialEq)]
pub struct Repaired {
    pub schema: Value,
    pub changes: Vec<String>,
}

/// Repairs `schema` (a tool's inputSchema); when nothing needs repair returns it unchanged (equal) with no changes.
pub fn repair(schema: &Value) -> Repaired {
    // Most tools need nothing: one read-only walk and a clone, and no rebuilding.
    if !needs_repair(schema) {
        return Repaired {
            schema: schema.clone(),
            changes: Vec::new(),
        };
    }
    Repairer::new(schema).repair_root()
}

/// A schema object's keywords, borrowed from the document being repaired. A list rather than a
/// map so that a `$ref`'s siblings can be laid over the referenced schema without copying it.
type Keywords<'a> = Vec<(&'a str, &'a Value)>;

/// What a keyword's value holds that the repair walks into.
enum Subschemas<'a> {
    /// `properties`: schemas by property name.
    Named(&'a Map<String, Value>),
    /// `items` as one schema, `additionalProperties` when a schema.
    Single(&'a Value),
    /// `items` as a tuple (older drafts), `prefixItems`, `anyOf`, `oneOf`, `allOf`.
    Listed(&'a [Value]),
    /// Anything else, which is kept as it is.
    Plain,
}

fn subschemas<'a>(keyword: &str, value: &'a Value) -> Subschemas<'a> {
    match (keyword, value) {
        ("properties", Value::Object(named)) => Subschemas::Named(named),
        ("items" | "additionalProperties", Value::Object(_)) => Subschemas::Single(value),
        ("items" | "prefixItems" | "anyOf" | "oneOf" | "allOf", Value::Array(listed)) => {
            Subschemas::Listed(listed)
        }
        _ => Subschemas::Plain,
    }
}

/// Whether `repair` would change `schema`. It asks the same questions as the repair itself, on
/// the schema as it is, and stops at the first yes.
fn needs_repair(schema: &Value) -> bool {
    let Value::Object(root) = schema else {
        return true;
    };
    !root.contains_key("type")
        || node_needs_repair(root)
        || DEFINITIONS
            .iter()
            .any(|key| droppable_definitions(root, key))
}

fn node_needs_repair(schema: &Map<String, Value>) -> bool {
    matches!(schema.get("$ref"), Some(Value::String(_)))
        || mergeable_all_of(schema)
        || CHOICES
            .iter()
            .any(|key| nullable_choice(schema, key).is_some())
        || (!schema.contains_key("type") && first_choice_type(schema).is_some())
        || matches!(schema.get("type"), Some(Value::Array(_)))
        || nonstandard_type(schema).is_some()
        || schema
            .iter()
            .any(|(keyword, value)| match subschemas(keyword, value) {
                Subschemas::Named(named) => named.values().any(subschema_needs_repair),
                Subschemas::Single(single) => subschema_needs_repair(single),
                Subschemas::Listed(listed) => listed.iter().any(subschema_needs_repair),
                Subschemas::Plain => false,
            })
}

fn subschema_needs_repair(schema: &Value) -> bool {
    schema.as_object().is_some_and(node_needs_repair)
}

/// Whether `allOf` can be merged into its schema: only when every entry is an object schema
/// (a boolean entry has no keywords to merge).
fn mergeable_all_of(schema: &Map<String, Value>) -> bool {
    schema
        .get("allOf")
        .and_then(Value::as_array)
        .is_some_and(|entries| entries.iter().all(Value::is_object))
}

/// Where the one real choice is when `schema[key]` has the shape of pydantic's `Optional[X]`:
/// a single non-null object schema, every other entry `{"type": "null"}`.
fn nullable_choice(schema: &Map<String, Value>, key: &str) -> Option<usize> {
    let choices = schema.get(key)?.as_array()?;
    let mut non_null = choices
        .iter()
        .enumerate()
        .filter(|(_, choice)| choice.get("type").and_then(Value::as_str) != Some("null"));
    let (index, choice) = non_null.next()?;
    let only_choice = non_null.next().is_none() && choices.len() > 1 && choice.is_object();
    only_choice.then_some(index)
}

/// The kind Dify gives an untyped schema with choices: the type of the first non-null choice
/// that has a single type.
fn first_choice_type(schema: &Map<String, Value>) -> Option<&str> {
    CHOICES
        .iter()
        .filter_map(|key| schema.get(*key)?.as_array())
        .flatten()
        .filter_map(|choice| choice.get("type")?.as_str())
        .find(|kind| *kind != "null")
}

/// A `type` that Dify's form does not know (and that raises when it reads the tool).
fn nonstandard_type(schema: &Map<String, Value>) -> Option<&str> {
    schema
        .get("type")?
        .as_str()
        .filter(|kind| !STANDARD_TYPES.contains(kind))
}

/// Whether the root's `$defs` (or `definitions`) can go: nothing outside them refers into them.
fn droppable_definitions(root: &Map<String, Value>, key: &str) -> bool {
    let prefix = format!("#/{key}");
    root.contains_key(key)
        && !root
            .iter()
            .any(|(keyword, value)| keyword != key && has_ref_under(value, &prefix))
}

/// Whether `value` holds, at any depth, a `$ref` to `prefix` or below it.
fn has_ref_under(value: &Value, prefix: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(keyword, value)| {
            let points_under = keyword == "$ref"
                && value
                    .as_str()
                    .and_then(|reference| reference.strip_prefix(prefix))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            points_under || has_ref_under(value, prefix)
        }),
        Value::Array(values) => values.iter().any(|value| has_ref_under(value, prefix)),
        _ => false,
    }
}

/// How a change names where it happened: by the property the schema belongs to.
fn place(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name:?}"),
        None => "the root".to_owned(),
    }
}

fn lookup<'a>(keywords: &Keywords<'a>, keyword: &str) -> Option<&'a Value> {
    keywords
        .iter()
        .find(|(present, _)| *present == keyword)
        .map(|(_, value)| *value)
}

/// Replaces `schema[keyword]` by what `merge` makes of its value, in its place: the keywords
/// `merge` adds to the schema are moved to where `keyword` was, so that the order stays.
fn replace_in_place(
    schema: &mut Map<String, Value>,
    keyword: &str,
    merge: impl FnOnce(&mut Map<String, Value>, Value),
) {
    let position = schema.keys().position(|present| present == keyword);
    let (Some(position), Some(value)) = (position, schema.shift_remove(keyword)) else {
        return;
    };
    let kept = schema.len();
    merge(schema, value);
    if schema.len() > kept && position < kept {
        let mut keywords: Vec<(String, Value)> = std::mem::take(schema).into_iter().collect();
        let added = keywords.split_off(kept);
        keywords.splice(position..position, added);
        schema.extend(keywords);
    }
}

/// Merges `from` into `into`: `properties` are united (one property in both merged the same
/// way), `required` united without duplicates, and any other keyword `into` already has wins.
fn merge_into(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (keyword, value) in from {
        match (keyword.as_str(), into.get_mut(&keyword), value) {
            (_, None, value) => {
                into.insert(keyword, value);
            }
            ("properties", Some(Value::Object(properties)), Value::Object(more)) => {
                for (name, schema) in more {
                    match (properties.get_mut(&name), schema) {
                        (Some(Value::Object(existing)), Value::Object(schema)) => {
                            merge_into(existing, schema);
                        }
                        // Both must hold: `true` (anything goes) gives way, `false` prevails.
                        (Some(existing @ Value::Bool(true)), schema)
                        | (Some(existing), schema @ Value::Bool(false)) => *existing = schema,
                        (Some(_), _) => {}
                        (None, schema) => {
                            properties.insert(name, schema);
                        }
                    }
                }
            }
            ("required", Some(Value::Array(required)), Value::Array(more)) => {
                for name in more {
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The state of one repair: the document, where inlining stands, and what has changed.
struct Repairer<'a> {
    root: &'a Value,
    /// The schemas being inlined, outermost first, with the root at the bottom: a `$ref` to
    /// any of them is a cycle.
    expanding: Vec<&'a Value>,
    /// Schema nodes written so far, for the bound on inlining.
    written: usize,
    /// How deep in the repaired schema the node being written is.
    nesting: usize,
    changes: Vec<String>,
    noted: HashSet<String>,
}

impl<'a> Repairer<'a> {
    fn new(root: &'a Value) -> Self {
        Repairer {
            root,
            expanding: vec![root],
            written: 0,
            nesting: 0,
            changes: Vec::new(),
            noted: HashSet::new(),
        }
    }

    fn note(&mut self, change: String) {
        if !self.noted.contains(&change) {
            self.noted.insert(change.clone());
            self.changes.push(change);
        }
    }

    fn repair_root(mut self) -> Repaired {
        let schema = match self.schema(self.root, None) {
            Value::Object(mut root) => {
                // The MCP spec requires an object schema, and Dify reads properties only then.
                if !root.contains_key("type") {
                    root.insert("type".to_owned(), json!("object"));
                    self.note("gave the root the type \"object\"".to_owned());
                }
                for key in DEFINITIONS {
                    if droppable_definitions(&root, key) {
                        root.shift_remove(key);
                        self.note(format!("dropped {key}"));
                    }
                }
                Value::Object(root)
            }
            _ => {
                self.note("replaced a non-object root with {\"type\": \"object\"}".to_owned());
                json!({"type": "object"})
            }
        };
        Repaired {
            schema,
            changes: self.changes,
        }
    }

    fn schema(&mut self, schema: &'a Value, name: Option<&'a str>) -> Value {
        match schema {
            Value::Object(keywords) => self.object(
                keywords
                    .iter()
                    .map(|(keyword, value)| (keyword.as_str(), value))
                    .collect(),
                name,
            ),
            boolean_or_malformed => boolean_or_malformed.clone(),
        }
    }

    /// Repairs one object schema; `name` is the property it belongs to, for the changes.
    fn object(&mut self, keywords: Keywords<'a>, name: Option<&'a str>) -> Value {
        if let Some(Value::String(reference)) = lookup(&keywords, "$ref") {
            return self.inline(reference, keywords, name);
        }
        self.written += 1;
        self.nesting += 1;
        let mut schema = Map::new();
        for (keyword, value) in keywords {
            let repaired = match subschemas(keyword, value) {
                Subschemas::Named(named) => Value::Object(
                    named
                        .iter()
                        .map(|(name, subschema)| (name.clone(), self.schema(subschema, Some(name))))
                        .collect(),
                ),
                Subschemas::Single(single) => self.schema(single, name),
                Subschemas::Listed(listed) => Value::Array(
                    listed
                        .iter()
                        .map(|subschema| self.schema(subschema, name))
                        .collect(),
                ),
                Subschemas::Plain => value.clone(),
            };
            schema.insert(keyword.to_owned(), repaired);
        }
        // In this order: merging and flattening bring in keywords (a `type` among them) that
        // the later steps must see.
        self.merge_all_of(&mut schema, name);
        self.settle_choices(&mut schema, name);
        self.settle_type(&mut schema, name);
        self.nesting -= 1;
        Value::Object(schema)
    }

    /// Replaces the `$ref` among `keywords` by the schema it points at, repaired, in its place;
    /// the ref's siblings go over the referenced schema's keywords.
    fn inline(
        &mut self,
        reference: &'a str,
        keywords: Keywords<'a>,
        name: Option<&'a str>,
    ) -> Value {
        let sibling_description = lookup(&keywords, "description").and_then(Value::as_str);
        let Some(target) = reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
        else {
            let kind = if reference.starts_with('#') {
                "unresolvable"
            } else {
                "external"
            };
            self.note(format!(
                "replaced {kind} $ref {reference:?} with a plain object"
            ));
            return self.plain_object(sibling_description, format!("(schema at {reference})"));
        };
        let description =
            sibling_description.or_else(|| target.get("description").and_then(Value::as_str));
        if self.expanding.iter().any(|open| ptr::eq(*open, target)) {
            self.note(format!(
                "cut recursive $ref {reference:?} to a plain object"
            ));
            return self.plain_object(description, format!("(recursive: {reference})"));
        }
        // `expanding` holds the root below the refs, hence `>`.
        let bound = if self.expanding.len() > MAX_REF_DEPTH {
            Some(format!("{MAX_REF_DEPTH} nested $refs"))
        } else if self.nesting >= MAX_INLINE_NESTING {
            Some(format!("{MAX_INLINE_NESTING} nested schemas"))
        } else if self.written >= MAX_NODES {
            Some(format!("{MAX_NODES} schema nodes"))
        } else {
            None
        };
        if let Some(bound) = bound {
            self.note(format!(
                "cut $ref {reference:?} past the bound of {bound} to a plain object"
            ));
            return self.plain_object(description, format!("(not inlined: {reference})"));
        }
        self.note(format!("inlined $ref {reference:?}"));
        self.expanding.push(target);
        let inlined = match target {
            Value::Object(referenced) => {
                // The referenced schema's own `$ref` (an alias of another) is no sibling: it stays.
                let overridden =
                    |keyword: &str| keyword != "$ref" && lookup(&keywords, keyword).is_some();
                let mut merged = Keywords::with_capacity(keywords.len() + referenced.len());
                for &(keyword, value) in &keywords {
                    if keyword == "$ref" {
                        merged.extend(
                            referenced
                                .iter()
                                .filter(|(keyword, _)| !overridden(keyword))
                                .map(|(keyword, value)| (keyword.as_str(), value)),
                        );
                    } else {
                        merged.push((keyword, value));
                    }
                }
                self.object(merged, name)
            }
            _ if keywords.len() == 1 => target.clone(),
            // A boolean schema has no keywords of its own for the siblings to go over.
            _ => {
                let siblings = keywords
                    .into_iter()
                    .filter(|(keyword, _)| *keyword != "$ref")
                    .collect();
                self.object(siblings, name)
            }
        };
        self.expanding.pop();
        inlined
    }

    /// What a `$ref` that is not inlined becomes: an object, with the ref named in its description.
    fn plain_object(&mut self, description: Option<&str>, why: String) -> Value {
        self.written += 1;
        let description = match description {
            Some(description) => format!("{description} {why}"),
            None => why,
        };
        json!({"type": "object", "description": description})
    }

    fn merge_all_of(&mut self, schema: &mut Map<String, Value>, name: Option<&str>) {
        if !mergeable_all_of(schema) {
            return;
        }
        replace_in_place(schema, "allOf", |schema, entries| {
            let Value::Array(entries) = entries else {
                return;
            };
            for entry in entries {
                if let Value::Object(entry) = entry {
                    merge_into(schema, entry);
                }
            }
        });
        self.note(format!("merged allOf in {}", place(name)));
    }

    fn settle_choices(&mut self, schema: &mut Map<String, Value>, name: Option<&str>) {
        for key in CHOICES {
            let Some(index) = nullable_choice(schema, key) else {
                continue;
            };
            replace_in_place(schema, key, |schema, mut choices| {
                let choice = choices.get_mut(index).and_then(Value::as_object_mut);
                for (keyword, value) in choice.map(std::mem::take).unwrap_or_default() {
                    // The parent's own keywords (description, default, title) win over the choice's.
                    schema.entry(keyword).or_insert(value);
                }
            });
            self.note(format!("flattened nullable {key} of {}", place(name)));
        }
        if !schema.contains_key("type") {
            if let Some(kind) = first_choice_type(schema).map(str::to_owned) {
                self.note(format!(
                    "gave {} the type {kind:?} of its first choice",
                    place(name)
                ));
                schema.insert("type".to_owned(), Value::String(kind));
            }
        }
    }

    fn settle_type(&mut self, schema: &mut Map<String, Value>, name: Option<&str>) {
        if let Some(Value::Array(kinds)) = schema.get("type") {
            // Dify takes the first non-null type of a list anyway; `["null"]` it reads as a string.
            let first = kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| *kind != "null")
                .unwrap_or("string")
                .to_owned();
            self.note(format!(
                "narrowed type list of {} to {first:?}",
                place(name)
            ));
            schema.insert("type".to_owned(), Value::String(first));
        }
        if let Some(kind) = nonstandard_type(schema).map(str::to_owned) {
            let description = match schema.get("description") {
                Some(Value::String(description)) => format!("{description} (type: {kind})"),
                _ => format!("type: {kind}"),
            };
            // Dify reads `float` as a number already; a string would make the model send one.
            let standard = if kind == "float" { "number" } else { "string" };
            schema.insert("description".to_owned(), Value::String(description));
            schema.insert("type".to_owned(), json!(standard));
            self.note(format!(
                "mapped type {kind:?} of {} to {standard:?}",
                place(name)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// `def place_order(order: Order) -> str` as FastMCP lists it (mcp 1.30.0, pydantic 2.14.3),
    /// with `Order(customer: Customer, items: list[Item], note: Optional[str] = None,
    /// gift: Optional[GiftWrap] = None)`, `Customer(name: str, address: Address,
    /// email: Optional[str] = None)`, `Item(sku: str, quantity: int, kind: Kind)` and `Kind` an Enum.
    const PLACE_ORDER: &str = r##"{"$defs": {"Address": {"properties": {"street": {"title": "Street", "type": "string"}, "city": {"title": "City", "type": "string"}, "zip_code": {"title": "Zip Code", "type": "string"}}, "required": ["street", "city", "zip_code"], "title": "Address", "type": "object"}, "Customer": {"properties": {"name": {"title": "Name", "type": "string"}, "address": {"$ref": "#/$defs/Address"}, "email": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "title": "Email"}}, "required": ["name", "address"], "title": "Customer", "type": "object"}, "GiftWrap": {"properties": {"paper": {"title": "Paper", "type": "string"}, "message": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "title": "Message"}}, "required": ["paper"], "title": "GiftWrap", "type": "object"}, "Item": {"properties": {"sku": {"title": "Sku", "type": "string"}, "quantity": {"title": "Quantity", "type": "integer"}, "kind": {"$ref": "#/$defs/Kind"}}, "required": ["sku", "quantity", "kind"], "title": "Item", "type": "object"}, "Kind": {"enum": ["book", "music", "other"], "title": "Kind", "type": "string"}, "Order": {"properties": {"customer": {"$ref": "#/$defs/Customer"}, "items": {"items": {"$ref": "#/$defs/Item"}, "title": "Items", "type": "array"}, "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "title": "Note"}, "gift": {"anyOf": [{"$ref": "#/$defs/GiftWrap"}, {"type": "null"}], "default": null}}, "required": ["customer", "items"], "title": "Order", "type": "object"}}, "properties": {"order": {"$ref": "#/$defs/Order"}}, "required": ["order"], "title": "place_orderArguments", "type": "object"}"##;

    /// `def add_tree(tree: Node) -> str` as FastMCP lists it, with
    /// `class Node(BaseModel): name: str; children: list["Node"] = []`.
    const ADD_TREE: &str = r##"{"$defs": {"Node": {"properties": {"name": {"title": "Name", "type": "string"}, "children": {"default": [], "items": {"$ref": "#/$defs/Node"}, "title": "Children", "type": "array"}}, "required": ["name"], "title": "Node", "type": "object"}}, "properties": {"tree": {"$ref": "#/$defs/Node"}}, "required": ["tree"], "title": "add_treeArguments", "type": "object"}"##;

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).expect("test schema is JSON")
    }

    /// Repairs `schema` the full way and checks what must hold of every repair: the quick check
    /// agrees with it, "no changes" means "unchanged", `repair` gives the same, and repairing
    /// again changes nothing.
    fn repaired(schema: &Value) -> Repaired {
        let full = Repairer::new(schema).repair_root();
        assert_eq!(
            needs_repair(schema),
            !full.changes.is_empty(),
            "the check and the repair disagree on {schema}"
        );
        assert_eq!(full.changes.is_empty(), full.schema == *schema);
        assert_eq!(repair(schema), full);
        let again = repair(&full.schema);
        assert_eq!(
            again.changes,
            Vec::<String>::new(),
            "not settled: {}",
            full.schema
        );
        full
    }

    fn assert_changed(repaired: &Repaired, change: &str) {
        assert!(
            repaired.changes.iter().any(|noted| noted == change),
            "{change:?} not among {:?}",
            repaired.changes
        );
    }

    /// The kind Dify gives a top-level property, by its rules; `Err` where Dify raises.
    fn dify_kind(property: &Value) -> Result<&str, String> {
        fn first_kind(choices: Option<&Value>) -> Option<&str> {
            choices?
                .as_array()?
                .iter()
                .filter_map(|choice| choice.get("type")?.as_str())
                .find(|kind| *kind != "null")
        }
        let kind = match property.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| *kind != "null")
                .unwrap_or("string"),
            _ => first_kind(property.get("anyOf"))
                .or_else(|| first_kind(property.get("oneOf")))
                .or_else(|| first_kind(property.get("allOf")))
                .unwrap_or("string"),
        };
        match kind {
            "null" | "string" => Ok("string"),
            "integer" | "float" | "number" => Ok("number"),
            "boolean" => Ok("boolean"),
            "array" => Ok("array"),
            "object" => Ok("object"),
            other => Err(format!("Dify raises on the type {other:?}")),
        }
    }

    fn dify_kinds(schema: &Value) -> Vec<(String, Result<&str, String>)> {
        schema["properties"]
            .as_object()
            .expect("properties")
            .iter()
            .map(|(name, property)| (name.clone(), dify_kind(property)))
            .collect()
    }

    /// Schema nodes, counted through the keywords the repair walks.
    fn count_schemas(schema: &Value) -> usize {
        let Value::Object(keywords) = schema else {
            return 1;
        };
        1 + keywords
            .iter()
            .map(|(keyword, value)| match subschemas(keyword, value) {
                Subschemas::Named(named) => named.values().map(count_schemas).sum(),
                Subschemas::Single(single) => count_schemas(single),
                Subschemas::Listed(listed) => listed.iter().map(count_schemas).sum(),
                Subschemas::Plain => 0,
            })
            .sum::<usize>()
    }

    fn has_key_anywhere(value: &Value, key: &str) -> bool {
        match value {
            Value::Object(map) => {
                map.contains_key(key) || map.values().any(|value| has_key_anywhere(value, key))
            }
            Value::Array(values) => values.iter().any(|value| has_key_anywhere(value, key)),
            _ => false,
        }
    }

    fn object_with(properties: Value, defs: Value) -> Value {
        json!({"type": "object", "properties": properties, "$defs": defs})
    }

    #[test]
    fn pydantic_order_is_inlined_into_what_dify_reads_as_an_object() {
        let schema = parse(PLACE_ORDER);
        assert_eq!(dify_kind(&schema["properties"]["order"]), Ok("string"));

        let fixed = repaired(&schema);
        let out = &fixed.schema;
        assert!(!has_key_anywhere(out, "$ref"), "{out}");
        assert!(!has_key_anywhere(out, "$defs"), "{out}");
        assert_eq!(dify_kinds(out), [("order".to_owned(), Ok("object"))]);
        assert_eq!(out["type"], "object");
        assert_eq!(out["title"], "place_orderArguments");
        assert_eq!(out["required"], json!(["order"]));

        let order = &out["properties"]["order"];
        assert_eq!(order["type"], "object");
        assert_eq!(order["title"], "Order");
        assert_eq!(order["required"], json!(["customer", "items"]));
        let customer = &order["properties"]["customer"];
        assert_eq!(customer["type"], "object");
        assert_eq!(customer["required"], json!(["name", "address"]));
        assert_eq!(
            customer["properties"]["address"],
            json!({
                "type": "object",
                "title": "Address",
                "properties": {
                    "street": {"title": "Street", "type": "string"},
                    "city": {"title": "City", "type": "string"},
                    "zip_code": {"title": "Zip Code", "type": "string"}
                },
                "required": ["street", "city", "zip_code"]
            })
        );
        assert_eq!(
            customer["properties"]["email"],
            json!({"type": "string", "default": null, "title": "Email"})
        );
        let items = &order["properties"]["items"];
        assert_eq!(items["type"], "array");
        assert_eq!(items["items"]["type"], "object");
        assert_eq!(
            items["items"]["required"],
            json!(["sku", "quantity", "kind"])
        );
        assert_eq!(
            items["items"]["properties"]["kind"],
            json!({"enum": ["book", "music", "other"], "title": "Kind", "type": "string"})
        );
        assert_eq!(
            order["properties"]["note"],
            json!({"type": "string", "default": null, "title": "Note"})
        );
        let gift = &order["properties"]["gift"];
        assert_eq!(gift["type"], "object");
        assert_eq!(gift["default"], Value::Null);
        assert_eq!(gift["required"], json!(["paper"]));
        assert_eq!(
            gift["properties"]["message"],
            json!({"type": "string", "default": null, "title": "Message"})
        );

        for change in [
            r##"inlined $ref "#/$defs/Order""##,
            r##"inlined $ref "#/$defs/Customer""##,
            r##"inlined $ref "#/$defs/Address""##,
            r##"inlined $ref "#/$defs/Item""##,
            r##"inlined $ref "#/$defs/Kind""##,
            r##"inlined $ref "#/$defs/GiftWrap""##,
            r#"flattened nullable anyOf of "email""#,
            r#"flattened nullable anyOf of "note""#,
            r#"flattened nullable anyOf of "gift""#,
            "dropped $defs",
        ] {
            assert_changed(&fixed, change);
        }
    }

    #[test]
    fn pydantic_tree_node_cycle_is_cut_to_a_plain_object() {
        let fixed = repaired(&parse(ADD_TREE));
        let tree = &fixed.schema["properties"]["tree"];
        assert_eq!(dify_kind(tree), Ok("object"));
        assert_eq!(tree["required"], json!(["name"]));
        let children = &tree["properties"]["children"];
        assert_eq!(children["type"], "array");
        assert_eq!(children["default"], json!([]));
        assert_eq!(
            children["items"],
            json!({"type": "object", "description": "(recursive: #/$defs/Node)"})
        );
        assert!(!has_key_anywhere(&fixed.schema, "$ref"));
        assert!(!has_key_anywhere(&fixed.schema, "$defs"));
        assert_changed(
            &fixed,
            r##"cut recursive $ref "#/$defs/Node" to a plain object"##,
        );
    }

    #[test]
    fn recursive_ref_keeps_the_description_before_naming_the_ref() {
        let schema = object_with(
            json!({
                "tree": {"$ref": "#/$defs/Node"},
                "other": {"$ref": "#/$defs/Node", "description": "Another tree."}
            }),
            json!({"Node": {
                "type": "object",
                "description": "A tree node.",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}
            }}),
        );
        let out = repaired(&schema).schema;
        assert_eq!(
            out["properties"]["tree"]["properties"]["children"]["items"],
            json!({"type": "object", "description": "A tree node. (recursive: #/$defs/Node)"})
        );
        assert_eq!(out["properties"]["other"]["description"], "Another tree.");
    }

    #[test]
    fn mutually_recursive_refs_are_cut_where_they_loop() {
        let schema = object_with(
            json!({"a": {"$ref": "#/$defs/A"}}),
            json!({
                "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
                "B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}
            }),
        );
        let out = repaired(&schema).schema;
        assert_eq!(
            out["properties"]["a"]["properties"]["b"]["properties"]["a"],
            json!({"type": "object", "description": "(recursive: #/$defs/A)"})
        );
    }

    #[test]
    fn self_reference_to_the_root_is_cut() {
        let schema = json!({
            "type": "object",
            "description": "A folder.",
            "properties": {"name": {"type": "string"}, "parent": {"$ref": "#"}}
        });
        let fixed = repaired(&schema);
        assert_eq!(
            fixed.schema["properties"]["parent"],
            json!({"type": "object", "description": "A folder. (recursive: #)"})
        );
        assert_eq!(
            fixed.schema["properties"]["name"],
            json!({"type": "string"})
        );
        assert_eq!(
            fixed.changes,
            [r##"cut recursive $ref "#" to a plain object"##]
        );
    }

    #[test]
    fn ref_siblings_go_over_the_referenced_schema() {
        let schema = object_with(
            json!({"home": {
                "$ref": "#/$defs/Address",
                "description": "Where you live.",
                "default": {"city": "Paris"}
            }}),
            json!({"Address": {
                "type": "object",
                "title": "Address",
                "description": "An address.",
                "properties": {"city": {"type": "string"}}
            }}),
        );
        assert_eq!(
            repaired(&schema).schema["properties"]["home"],
            json!({
                "type": "object",
                "title": "Address",
                "description": "Where you live.",
                "default": {"city": "Paris"},
                "properties": {"city": {"type": "string"}}
            })
        );
    }

    #[test]
    fn ref_chains_and_any_local_pointer_are_followed() {
        let schema = object_with(
            json!({
                "alias": {"$ref": "#/$defs/Alias"},
                "escaped": {"$ref": "#/$defs/a~1b~0c"},
                "sibling": {"$ref": "#/properties/plain"},
                "plain": {"type": "integer", "minimum": 1}
            }),
            json!({
                "Alias": {"$ref": "#/$defs/Target", "title": "Alias"},
                "Target": {"type": "boolean", "title": "Target"},
                "a/b~c": {"type": "number"}
            }),
        );
        let out = repaired(&schema).schema;
        assert_eq!(
            out["properties"]["alias"],
            json!({"type": "boolean", "title": "Alias"})
        );
        assert_eq!(out["properties"]["escaped"], json!({"type": "number"}));
        assert_eq!(
            out["properties"]["sibling"],
            json!({"type": "integer", "minimum": 1})
        );
        assert!(!has_key_anywhere(&out, "$defs"));
    }

    #[test]
    fn refs_that_cannot_be_followed_become_plain_objects() {
        let schema = object_with(
            json!({
                "remote": {"$ref": "https://example.com/a.json", "description": "An A."},
                "other_file": {"$ref": "other.json#/B"},
                "missing": {"$ref": "#/$defs/Missing"},
                "anchor": {"$ref": "#node"}
            }),
            json!({}),
        );
        let fixed = repaired(&schema);
        let properties = &fixed.schema["properties"];
        assert_eq!(
            properties["remote"],
            json!({"type": "object", "description": "An A. (schema at https://example.com/a.json)"})
        );
        assert_eq!(
            properties["other_file"],
            json!({"type": "object", "description": "(schema at other.json#/B)"})
        );
        assert_eq!(
            properties["missing"],
            json!({"type": "object", "description": "(schema at #/$defs/Missing)"})
        );
        assert_eq!(
            properties["anchor"],
            json!({"type": "object", "description": "(schema at #node)"})
        );
        assert_changed(
            &fixed,
            r#"replaced external $ref "https://example.com/a.json" with a plain object"#,
        );
        assert_changed(
            &fixed,
            r##"replaced unresolvable $ref "#/$defs/Missing" with a plain object"##,
        );
    }

    #[test]
    fn definitions_stay_while_a_ref_the_repair_does_not_walk_needs_them() {
        // `not` is not among the keywords the repair walks, so its `$ref` stays, and so must
        // what it points at.
        let clean = json!({
            "type": "object",
            "properties": {"x": {"type": "string", "not": {"$ref": "#/definitions/Bad"}}},
            "definitions": {"Bad": {"const": "bad"}}
        });
        assert_eq!(
            repaired(&clean),
            Repaired {
                schema: clean.clone(),
                changes: vec![]
            }
        );

        let mut needs_work = clean.clone();
        needs_work["properties"]["y"] = json!({"type": ["integer", "null"]});
        let fixed = repaired(&needs_work);
        assert_eq!(fixed.schema["definitions"], clean["definitions"]);
        assert_eq!(fixed.schema["properties"]["y"], json!({"type": "integer"}));
    }

    #[test]
    fn unused_definitions_are_dropped() {
        let schema = json!({
            "type": "object",
            "properties": {"x": {"type": "string"}},
            "$defs": {"Unused": {"type": "object"}},
            "definitions": {"Unused": {"type": "object"}}
        });
        let fixed = repaired(&schema);
        assert_eq!(
            fixed.schema,
            json!({"type": "object", "properties": {"x": {"type": "string"}}})
        );
        assert_eq!(fixed.changes, ["dropped $defs", "dropped definitions"]);
    }

    #[test]
    fn all_of_entries_are_merged() {
        let schema = object_with(
            json!({"shipping": {
                "description": "Where to ship.",
                "allOf": [
                    {"$ref": "#/$defs/Address"},
                    {
                        "properties": {
                            "floor": {"type": "integer"},
                            "anything": {"type": "string"},
                            "nothing": {"type": "string"},
                            "street": {"description": "Street and number.", "maxLength": 80}
                        },
                        "required": ["floor", "street"]
                    }
                ]
            }}),
            json!({"Address": {
                "type": "object",
                "title": "Address",
                "description": "An address.",
                "properties": {"street": {"type": "string"}, "anything": true, "nothing": false},
                "required": ["street"],
                "additionalProperties": false
            }}),
        );
        assert_eq!(dify_kind(&schema["properties"]["shipping"]), Ok("string"));
        let fixed = repaired(&schema);
        let shipping = &fixed.schema["properties"]["shipping"];
        assert_eq!(
            *shipping,
            json!({
                "type": "object",
                "title": "Address",
                "description": "Where to ship.",
                "properties": {
                    "street": {
                        "type": "string",
                        "description": "Street and number.",
                        "maxLength": 80
                    },
                    "anything": {"type": "string"},
                    "nothing": false,
                    "floor": {"type": "integer"}
                },
                "required": ["street", "floor"],
                "additionalProperties": false
            })
        );
        assert_eq!(dify_kind(shipping), Ok("object"));
        assert_changed(&fixed, r#"merged allOf in "shipping""#);
    }

    #[test]
    fn all_of_with_a_boolean_entry_is_left_alone() {
        let clean = json!({
            "type": "object",
            "properties": {"x": {"type": "object", "allOf": [true, {"type": "object"}]}}
        });
        assert_eq!(
            repaired(&clean),
            Repaired {
                schema: clean.clone(),
                changes: vec![]
            }
        );

        // Its entries are still repaired.
        let schema = object_with(
            json!({"x": {"type": "object", "allOf": [true, {"$ref": "#/$defs/A"}]}}),
            json!({"A": {"type": "object"}}),
        );
        assert_eq!(
            repaired(&schema).schema["properties"]["x"],
            json!({"type": "object", "allOf": [true, {"type": "object"}]})
        );
    }

    #[test]
    fn any_of_with_several_choices_gets_the_type_of_the_first() {
        let schema = object_with(
            json!({
                "contact": {"anyOf": [
                    {"$ref": "#/$defs/Person"},
                    {"type": "string", "format": "email"},
                    {"type": "null"}
                ]},
                "count": {"anyOf": [{"type": "null"}, {"enum": [1, 2]}, {"type": "integer"}, {"type": "string"}]},
                "typed": {"type": "string", "anyOf": [{"format": "email"}, {"format": "uri"}]},
                "untyped": {"anyOf": [{"enum": ["a"]}, {"const": 2}]}
            }),
            json!({"Person": {"type": "object", "properties": {"name": {"type": "string"}}}}),
        );
        let fixed = repaired(&schema);
        let properties = &fixed.schema["properties"];
        assert_eq!(properties["contact"]["type"], "object");
        assert_eq!(
            properties["contact"]["anyOf"][0]["properties"]["name"]["type"],
            "string"
        );
        assert_eq!(properties["contact"]["anyOf"][1]["format"], "email");
        assert_eq!(properties["count"]["type"], "integer");
        assert_eq!(properties["typed"], schema["properties"]["typed"]);
        assert_eq!(properties["untyped"], schema["properties"]["untyped"]);
        assert_changed(
            &fixed,
            r#"gave "contact" the type "object" of its first choice"#,
        );
        assert_changed(
            &fixed,
            r#"gave "count" the type "integer" of its first choice"#,
        );
        assert_eq!(dify_kind(&properties["contact"]), Ok("object"));
    }

    #[test]
    fn nullable_one_of_is_flattened_under_the_parents_keywords() {
        let schema = json!({
            "type": "object",
            "properties": {"note": {
                "oneOf": [
                    {"type": "null"},
                    {"type": "string", "maxLength": 200, "description": "Inner.", "title": "Inner"}
                ],
                "description": "A note.",
                "default": null
            }}
        });
        let fixed = repaired(&schema);
        assert_eq!(
            fixed.schema["properties"]["note"],
            json!({
                "type": "string",
                "maxLength": 200,
                "description": "A note.",
                "title": "Inner",
                "default": null
            })
        );
        assert_eq!(fixed.changes, [r#"flattened nullable oneOf of "note""#]);
    }

    #[test]
    fn nullable_choice_of_a_type_list_is_flattened_and_narrowed() {
        let schema = json!({
            "type": "object",
            "properties": {"n": {"anyOf": [{"type": ["number", "null"]}, {"type": "null"}]}}
        });
        assert_eq!(
            repaired(&schema).schema["properties"]["n"],
            json!({"type": "number"})
        );
    }

    #[test]
    fn type_lists_are_narrowed_to_the_first_non_null_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "x": {"type": ["string", "null"], "description": "X."},
                "y": {"type": ["null"]},
                "z": {"type": ["null", "integer"]},
                "w": {"type": ["date", "null"]},
                "list": {"type": "array", "items": {"type": ["boolean", "null"]}}
            }
        });
        let fixed = repaired(&schema);
        let properties = &fixed.schema["properties"];
        assert_eq!(
            properties["x"],
            json!({"type": "string", "description": "X."})
        );
        assert_eq!(properties["y"], json!({"type": "string"}));
        assert_eq!(properties["z"], json!({"type": "integer"}));
        assert_eq!(
            properties["w"],
            json!({"type": "string", "description": "type: date"})
        );
        assert_eq!(properties["list"]["items"], json!({"type": "boolean"}));
        assert_changed(&fixed, r#"narrowed type list of "x" to "string""#);
        assert_changed(&fixed, r#"narrowed type list of "y" to "string""#);
        assert_changed(&fixed, r#"narrowed type list of "w" to "date""#);
        assert_changed(&fixed, r#"mapped type "date" of "w" to "string""#);
        assert!(
            dify_kinds(&fixed.schema)
                .iter()
                .all(|(_, kind)| kind.is_ok())
        );
    }

    #[test]
    fn nonstandard_types_become_strings_that_say_what_they_were() {
        let schema = json!({
            "type": "object",
            "properties": {
                "upload": {"type": "file", "description": "The file."},
                "when": {"type": "date"},
                "ratio": {"type": "float"},
                "links": {"type": "array", "items": {"type": "uri"}}
            }
        });
        assert!(dify_kind(&schema["properties"]["upload"]).is_err());
        let fixed = repaired(&schema);
        let properties = &fixed.schema["properties"];
        assert_eq!(
            properties["upload"],
            json!({"type": "string", "description": "The file. (type: file)"})
        );
        assert_eq!(
            properties["when"],
            json!({"type": "string", "description": "type: date"})
        );
        assert_eq!(
            properties["ratio"],
            json!({"type": "number", "description": "type: float"})
        );
        assert_eq!(
            properties["links"]["items"],
            json!({"type": "string", "description": "type: uri"})
        );
        assert_changed(&fixed, r#"mapped type "file" of "upload" to "string""#);
        assert_changed(&fixed, r#"mapped type "uri" of "links" to "string""#);
        assert!(
            dify_kinds(&fixed.schema)
                .iter()
                .all(|(_, kind)| kind.is_ok())
        );
    }

    #[test]
    fn root_without_a_type_becomes_an_object() {
        let schema = json!({"properties": {"a": {"type": "string"}}, "required": ["a"]});
        let fixed = repaired(&schema);
        assert_eq!(
            fixed.schema,
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]})
        );
        assert_eq!(fixed.changes, [r#"gave the root the type "object""#]);
        assert_eq!(repaired(&json!({})).schema, json!({"type": "object"}));
    }

    #[test]
    fn root_that_is_no_object_becomes_an_empty_object_schema() {
        for root in [
            Value::Null,
            json!(true),
            json!([{"type": "object"}]),
            json!("object"),
        ] {
            let fixed = repaired(&root);
            assert_eq!(fixed.schema, json!({"type": "object"}), "from {root}");
            assert_eq!(
                fixed.changes,
                [r#"replaced a non-object root with {"type": "object"}"#]
            );
        }
    }

    #[test]
    fn root_that_is_a_ref_is_inlined() {
        let schema = json!({
            "$ref": "#/$defs/Args",
            "$defs": {"Args": {"type": "object", "properties": {"a": {"type": "string"}}}}
        });
        assert_eq!(
            repaired(&schema).schema,
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
    }

    #[test]
    fn clean_schema_comes_back_equal_with_no_changes() {
        let schema = json!({
            "type": "object",
            "title": "searchArguments",
            "properties": {
                "query": {"type": "string", "title": "Query", "minLength": 1},
                "limit": {"type": "integer", "default": 10, "maximum": 100},
                "mode": {"type": "string", "enum": ["fast", "exact"]},
                "since": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "filter": {
                    "type": "object",
                    "properties": {"owner": {"type": "string"}},
                    "additionalProperties": false
                },
                "extra": {"type": "object", "additionalProperties": {"type": "number"}},
                "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
                "either": {"type": "string", "anyOf": [{"format": "email"}, {"format": "uri"}]},
                "anything": true
            },
            "required": ["query"],
            "additionalProperties": false
        });
        assert_eq!(
            repair(&schema),
            Repaired {
                schema: schema.clone(),
                changes: vec![]
            }
        );
        repaired(&schema);
    }

    #[test]
    fn the_same_change_is_listed_once() {
        let schema = object_with(
            json!({
                "home": {"$ref": "#/$defs/Address"},
                "work": {"$ref": "#/$defs/Address"}
            }),
            json!({"Address": {"type": "object", "properties": {"zip": {"type": ["string", "null"]}}}}),
        );
        let fixed = repaired(&schema);
        assert_eq!(
            fixed.changes,
            [
                r##"inlined $ref "#/$defs/Address""##,
                r#"narrowed type list of "zip" to "string""#,
                "dropped $defs",
            ]
        );
    }

    #[test]
    fn ref_chain_deeper_than_the_bound_is_cut() {
        let mut defs = Map::new();
        for level in 0..40 {
            defs.insert(
                format!("D{level}"),
                json!({
                    "type": "object",
                    "properties": {"next": {"$ref": format!("#/$defs/D{}", level + 1)}}
                }),
            );
        }
        defs.insert("D40".to_owned(), json!({"type": "string"}));
        let schema = object_with(
            json!({"start": {"$ref": "#/$defs/D0"}}),
            Value::Object(defs),
        );
        let fixed = repaired(&schema);
        let mut node = &fixed.schema["properties"]["start"];
        for _ in 0..MAX_REF_DEPTH - 1 {
            node = &node["properties"]["next"];
            assert_eq!(node["type"], "object");
        }
        assert_eq!(
            node["properties"]["next"],
            json!({"type": "object", "description": "(not inlined: #/$defs/D32)"})
        );
        assert_changed(
            &fixed,
            r##"cut $ref "#/$defs/D32" past the bound of 32 nested $refs to a plain object"##,
        );
        assert!(!has_key_anywhere(&fixed.schema, "$ref"));
    }

    #[test]
    fn billion_laughs_of_refs_stops_at_the_node_bound() {
        // Each level uses the one below twice: fully inlined, 2^30 nodes.
        let mut defs = Map::new();
        defs.insert("L0".to_owned(), json!({"type": "string"}));
        for level in 1..=30 {
            let below = format!("#/$defs/L{}", level - 1);
            defs.insert(
                format!("L{level}"),
                json!({
                    "type": "object",
                    "properties": {"a": {"$ref": below}, "b": {"$ref": below}}
                }),
            );
        }
        let schema = object_with(
            json!({"bomb": {"$ref": "#/$defs/L30"}}),
            Value::Object(defs),
        );
        let started = Instant::now();
        let fixed = repair(&schema);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let nodes = count_schemas(&fixed.schema);
        assert!(nodes <= MAX_NODES + 100, "{nodes} nodes");
        assert!(nodes >= MAX_NODES, "{nodes} nodes");
        assert!(fixed.schema.to_string().contains("(not inlined: #/$defs/L"));
        assert!(!has_key_anywhere(&fixed.schema, "$ref"));
        assert!(fixed.changes.len() < 100, "{} changes", fixed.changes.len());
        assert!(fixed.changes.iter().any(|change| {
            change.ends_with("past the bound of 20000 schema nodes to a plain object")
        }));
    }

    #[test]
    fn pydantic_order_repairs_to_exactly_this_in_this_order() {
        // The keywords keep their order; inlined and flattened ones take the place of the
        // `$ref` or `anyOf` they replace.
        let expected = concat!(
            r#"{"properties":{"order":{"properties":{"customer":{"properties":{"#,
            r#""name":{"title":"Name","type":"string"},"#,
            r#""address":{"properties":{"street":{"title":"Street","type":"string"},"#,
            r#""city":{"title":"City","type":"string"},"zip_code":{"title":"Zip Code","type":"string"}},"#,
            r#""required":["street","city","zip_code"],"title":"Address","type":"object"},"#,
            r#""email":{"type":"string","default":null,"title":"Email"}},"#,
            r#""required":["name","address"],"title":"Customer","type":"object"},"#,
            r#""items":{"items":{"properties":{"sku":{"title":"Sku","type":"string"},"#,
            r#""quantity":{"title":"Quantity","type":"integer"},"#,
            r#""kind":{"enum":["book","music","other"],"title":"Kind","type":"string"}},"#,
            r#""required":["sku","quantity","kind"],"title":"Item","type":"object"},"#,
            r#""title":"Items","type":"array"},"#,
            r#""note":{"type":"string","default":null,"title":"Note"},"#,
            r#""gift":{"properties":{"paper":{"title":"Paper","type":"string"},"#,
            r#""message":{"type":"string","default":null,"title":"Message"}},"#,
            r#""required":["paper"],"title":"GiftWrap","type":"object","default":null}},"#,
            r#""required":["customer","items"],"title":"Order","type":"object"}},"#,
            r#""required":["order"],"title":"place_orderArguments","type":"object"}"#,
        );
        assert_eq!(repaired(&parse(PLACE_ORDER)).schema.to_string(), expected);
    }

    #[test]
    fn replaced_keywords_take_the_place_of_what_they_replace() {
        let schema = object_with(
            json!({
                "inlined": {"description": "Mine.", "$ref": "#/$defs/A", "default": {}},
                "merged": {"title": "M", "allOf": [{"$ref": "#/$defs/A"}], "description": "Mine."},
                "flattened": {"title": "F", "oneOf": [{"type": "integer", "title": "I"}, {"type": "null"}], "default": 1}
            }),
            json!({"A": {"type": "object", "description": "An A.", "properties": {"x": {"type": "string"}}}}),
        );
        let properties = &repaired(&schema).schema["properties"];
        assert_eq!(
            properties["inlined"].to_string(),
            r#"{"description":"Mine.","type":"object","properties":{"x":{"type":"string"}},"default":{}}"#
        );
        assert_eq!(
            properties["merged"].to_string(),
            r#"{"title":"M","type":"object","properties":{"x":{"type":"string"}},"description":"Mine."}"#
        );
        assert_eq!(
            properties["flattened"].to_string(),
            r#"{"title":"F","type":"integer","default":1}"#
        );
    }

    #[test]
    fn deep_definitions_are_cut_before_the_stack_runs_out() {
        // 33 definitions, each 60 schemas deep with a `$ref` to the next at the bottom: fully
        // inlined, about 2,000 levels, more than a worker thread's stack holds.
        fn nested(depth: usize, innermost: Value) -> Value {
            (0..depth).fold(
                innermost,
                |inner, _| json!({"type": "object", "properties": {"p": inner}}),
            )
        }
        fn depth(schema: &Value) -> usize {
            1 + schema["properties"]["p"]
                .as_object()
                .map_or(0, |_| depth(&schema["properties"]["p"]))
        }
        let defs = (0..33)
            .map(|level| {
                let next = json!({"$ref": format!("#/$defs/D{}", level + 1)});
                (format!("D{level}"), nested(60, next))
            })
            .collect();
        let schema = json!({
            "type": "object",
            "properties": {"p": {"$ref": "#/$defs/D0"}},
            "$defs": Value::Object(defs)
        });
        let fixed = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || repair(&schema))
            .expect("thread")
            .join()
            .expect("repair within a 1 MiB stack");
        assert!(
            depth(&fixed.schema) <= MAX_INLINE_NESTING + 62,
            "{}",
            depth(&fixed.schema)
        );
        assert!(!has_key_anywhere(&fixed.schema, "$ref"));
        assert_changed(
            &fixed,
            r##"cut $ref "#/$defs/D2" past the bound of 64 nested schemas to a plain object"##,
        );
    }
}
