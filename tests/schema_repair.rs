//! `--repair-schemas` (and a `--config` server's `"repairSchemas"`): Dify, which reads tool
//! schemas in its own narrow way (shared/docs/dify.md), gets them repaired: a real FastMCP
//! server's nested pydantic models (tests/fixtures/pydantic_server.py) inlined without
//! `$ref`/`$defs`, the recursive model cut with `(recursive: …)`, so that Dify sees an object
//! where it would have seen a string, and a call built from the repaired schema validates in the
//! server; every page of a paging server in one answer; a `"type": "file"` property as a string;
//! the server's `elicitation/create` declined for it by the bridge. Every other client gets the
//! server's tools exactly as the server sent them (compared with the server asked directly over
//! stdio), the official SDKs (Python `mcp` 1.x and 2.x, TypeScript) included, except that a tool
//! without `inputSchema` gets `{"type": "object"}` for everyone. `always` and `never` override
//! the client check. Against the real binary over HTTP; needs `scripts/install-test-deps` (the
//! SDK 1.x venv runs the pydantic server).

mod support;

use serde_json::{Value, json};
use support::calls::{expect_ok, secs, text_json};
use support::dify::{dify_call, dify_list, dify_session};
use support::dify_schema::{read_tools, tool};
use support::sdk::{ALL_SDKS, Opts, Sdk, run_client};
use support::session::Session;
use support::stdio_server::{own_tools, own_tools_pages, pydantic_command, toolbox_command};
use support::{Bridge, Http, config_file};

/// `mcp-bridge --port 0 EXTRA... -- COMMAND`, with `env` for the bridge (and so its child).
fn bridge_on(command: &[String], extra: &[&str], env: &[(&str, &str)]) -> Bridge {
    let mut args: Vec<&str> = extra.to_vec();
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    Bridge::start_with(&args, env)
}

fn pydantic(extra: &[&str]) -> Bridge {
    bridge_on(&pydantic_command(), extra, &[])
}

fn toolbox(extra: &[&str]) -> Bridge {
    bridge_on(&toolbox_command(), extra, &[])
}

/// Whether `key` is an object key anywhere in `value`.
fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// Every `description` string anywhere in `value`.
fn descriptions(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get("description") {
                found.push(d.clone());
            }
            for v in map.values() {
                found.extend(descriptions(v));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| found.extend(descriptions(v))),
        _ => {}
    }
    found
}

/// The tool `name` of a tools/list answer (or result).
fn listed<'a>(answer: &'a Value, name: &str) -> &'a Value {
    let result = answer.get("result").unwrap_or(answer);
    result["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {answer}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {answer}"))
}

/// An instance of a schema without `$ref`: every property filled in (strings named after their
/// property), enums by their first value, an array with one element unless its items are a cut
/// recursion (an object schema with no properties). Panics on what a repaired schema should not
/// have.
fn example(schema: &Value, name: &str) -> Value {
    assert!(
        schema.get("$ref").is_none() && schema.get("anyOf").is_none(),
        "{name}: an unrepaired schema {schema}"
    );
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut object = serde_json::Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (property, sub) in properties {
                    object.insert(property.clone(), example(sub, property));
                }
            }
            Value::Object(object)
        }
        Some("array") => {
            let items = &schema["items"];
            let cut = items["type"] == "object" && !items["properties"].is_object();
            if cut {
                json!([])
            } else {
                json!([example(items, name)])
            }
        }
        Some("string") => json!(format!("v-{name}")),
        Some("integer") => json!(2),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        _ => panic!("{name}: no example for {schema}"),
    }
}

/// Asserts that the pydantic server's tools are repaired for Dify in `answer`.
fn assert_repaired_pydantic(answer: &Value) {
    let tools = &answer["result"]["tools"];
    assert!(!has_key(tools, "$ref"), "a $ref left: {tools}");
    assert!(!has_key(tools, "$defs"), "$defs left: {tools}");
    let dify = read_tools(answer).unwrap_or_else(|why| panic!("Dify's refresh breaks: {why}"));
    let order = tool(&dify, "place_order").param("order");
    assert_eq!(order.kind, "object", "{order:?}");
    assert!(order.required);
    let tree = tool(&dify, "tree_size").param("tree");
    assert_eq!(tree.kind, "object", "{tree:?}");

    let order = &listed(answer, "place_order")["inputSchema"]["properties"]["order"];
    assert_eq!(order["type"], "object", "{order}");
    assert_eq!(order["required"], json!(["customer", "items"]), "{order}");
    let customer = &order["properties"]["customer"];
    assert_eq!(customer["type"], "object", "{customer}");
    assert_eq!(
        customer["properties"]["address"]["properties"]["city"]["type"], "string",
        "{customer}"
    );
    // Optional[str]: anyOf [string, null] flattened to a string.
    assert_eq!(
        customer["properties"]["email"]["type"], "string",
        "{customer}"
    );
    assert_eq!(order["properties"]["note"]["type"], "string", "{order}");
    let item = &order["properties"]["items"]["items"];
    assert_eq!(order["properties"]["items"]["type"], "array", "{order}");
    assert_eq!(item["type"], "object", "{item}");
    assert_eq!(item["properties"]["quantity"]["type"], "integer", "{item}");
    assert_eq!(
        item["properties"]["kind"]["enum"],
        json!(["book", "game", "tool"]),
        "{item}"
    );

    let tree = &listed(answer, "tree_size")["inputSchema"];
    assert!(
        descriptions(tree).iter().any(|d| d.contains("(recursive:")),
        "the recursive Node is cut with (recursive: …) in a description: {tree}"
    );
}

/// The pydantic server's tools/list result, asked directly over stdio.
fn own_pydantic_result() -> Value {
    let pages = own_tools_pages(&pydantic_command(), &[]);
    assert_eq!(pages.len(), 1, "FastMCP answers one page: {pages:?}");
    pages[0].clone()
}

// ---------------------------------------------------------------------------------------------
// Pydantic models
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_gets_pydantic_models_inlined_and_a_call_built_from_them_validates() {
    let mut bridge = pydantic(&[]);
    let http = Http::new();
    let answer = dify_list(&http, &bridge.url).await;
    assert_repaired_pydantic(&answer);

    let order_schema = &listed(&answer, "place_order")["inputSchema"];
    let arguments = example(order_schema, "place_order");
    let placed = dify_call(&http, &bridge.url, "place_order", arguments.clone()).await;
    assert!(placed["result"]["isError"] != true, "{placed}");
    assert_eq!(
        text_json(&placed),
        arguments,
        "the server validated the order built from Dify's schema and got it whole"
    );

    let tree_schema = &listed(&answer, "tree_size")["inputSchema"];
    let arguments = example(tree_schema, "tree_size");
    let sized = dify_call(&http, &bridge.url, "tree_size", arguments.clone()).await;
    assert!(sized["result"]["isError"] != true, "{sized}");
    assert_eq!(text_json(&sized), arguments);

    // A hand-written order, as a model would fill Dify's object parameter.
    let order = json!({"order": {
        "customer": {"name": "Ada", "address": {"street": "1 Main St", "city": "Oslo", "zip": "0150"}},
        "items": [{"sku": "B-1", "quantity": 3, "kind": "game"}]
    }});
    let placed = dify_call(&http, &bridge.url, "place_order", order).await;
    let validated = text_json(&placed);
    assert_eq!(
        validated["order"]["customer"]["email"],
        Value::Null,
        "{validated}"
    );
    assert_eq!(
        validated["order"]["items"][0]["kind"], "game",
        "{validated}"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_is_not_dify_gets_the_servers_schemas_exactly() {
    let own = own_pydantic_result();
    assert!(
        has_key(&own, "$defs"),
        "the server itself sends $defs: {own}"
    );
    let mut bridge = pydantic(&[]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let answer = session.request("tools/list", json!({})).await;
    assert_eq!(answer["result"], own, "what the server said, unchanged");
    let (sdk_like, _) = Session::open_as(&http, &bridge.url, "2025-06-18", json!({}), "mcp").await;
    let answer = sdk_like.request("tools/list", json!({})).await;
    assert_eq!(answer["result"], own);
    // The client check is on the name, whatever its case.
    let (lower, _) = Session::open_as(&http, &bridge.url, "2025-06-18", json!({}), "dify").await;
    assert_repaired_pydantic(&lower.request("tools/list", json!({})).await);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_schemas_always_repairs_them_for_every_client() {
    let mut bridge = pydantic(&["--repair-schemas", "always"]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let answer = session.request("tools/list", json!({})).await;
    assert_repaired_pydantic(&answer);
    let order_schema = &listed(&answer, "place_order")["inputSchema"];
    let arguments = example(order_schema, "place_order");
    assert_eq!(
        session.json("place_order", arguments.clone()).await,
        arguments
    );
    assert_repaired_pydantic(&dify_list(&http, &bridge.url).await);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_schemas_never_leaves_dify_the_servers_schemas_which_dify_reads_as_strings() {
    let own = own_pydantic_result();
    let mut bridge = pydantic(&["--repair-schemas", "never"]);
    let http = Http::new();
    let answer = dify_list(&http, &bridge.url).await;
    assert_eq!(answer["result"], own);
    let dify = read_tools(&answer).expect("a $ref does not break the list, it misleads");
    assert_eq!(
        tool(&dify, "place_order").param("order").kind,
        "string",
        "Dify would ask the model for a string where an Order is needed"
    );
    assert_eq!(tool(&dify, "tree_size").param("tree").kind, "string");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_server_repairs_as_its_repair_schemas_key_says() {
    let own = own_pydantic_result();
    let command = pydantic_command();
    let server = |repair: &str| json!({"command": command[0], "args": [command[1]], "repairSchemas": repair});
    let path = config_file(
        "config",
        json!({"fixed": server("always"), "raw": server("never"), "auto": server("auto")}),
    );
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let base = bridge.url.trim_end_matches('/').to_owned();
    let http = Http::new();
    let url = |name: &str| format!("{base}/servers/{name}/mcp");

    let plain = Session::open(&http, &url("fixed")).await;
    assert_repaired_pydantic(&plain.request("tools/list", json!({})).await);
    assert_eq!(dify_list(&http, &url("raw")).await["result"], own);
    assert_repaired_pydantic(&dify_list(&http, &url("auto")).await);
    let plain = Session::open(&http, &url("auto")).await;
    assert_eq!(plain.request("tools/list", json!({})).await["result"], own);
    let children = bridge.descendants().to_vec();
    bridge.stop();
    support::assert_no_survivors(&children);
}

// ---------------------------------------------------------------------------------------------
// Pages, a missing inputSchema, a non-standard type
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_gets_every_page_in_one_answer_and_other_clients_get_the_servers_pages() {
    let env = [("TOOLBOX_PAGE_SIZE", "2")];
    let mut own_pages = own_tools_pages(&toolbox_command(), &env);
    assert_eq!(own_pages.len(), 6, "11 tools, 2 a page: {own_pages:?}");
    // The one change for everybody: no_schema (the 6th tool, on the 3rd page) gets a schema.
    assert_eq!(own_pages[2]["tools"][1]["name"], "no_schema");
    own_pages[2]["tools"][1]["inputSchema"] = json!({"type": "object"});
    let all: Vec<Value> = own_pages
        .iter()
        .flat_map(|p| p["tools"].as_array().unwrap().clone())
        .collect();

    let mut bridge = bridge_on(&toolbox_command(), &[], &env);
    let http = Http::new();
    let answer = dify_list(&http, &bridge.url).await;
    let tools = answer["result"]["tools"].as_array().expect("tools");
    let names: Vec<&Value> = tools.iter().map(|t| &t["name"]).collect();
    let expected: Vec<&Value> = all.iter().map(|t| &t["name"]).collect();
    assert_eq!(names, expected, "every tool, in order, in one page");
    assert!(
        answer["result"].get("nextCursor").is_none(),
        "no nextCursor for Dify: {answer}"
    );
    let dify = read_tools(&answer).unwrap_or_else(|why| panic!("Dify's refresh breaks: {why}"));
    assert_eq!(dify.len(), 11);

    let session = Session::open(&http, &bridge.url).await;
    let mut cursor: Option<Value> = None;
    for (n, own) in own_pages.iter().enumerate() {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let page = session.request("tools/list", params).await;
        assert_eq!(&page["result"], own, "page {n} as the server sent it");
        cursor = page["result"].get("nextCursor").cloned();
    }
    assert!(cursor.is_none());
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_without_input_schema_gets_an_object_schema_for_every_client() {
    let own = own_tools(&toolbox_command(), &[]);
    let no_schema = own.iter().find(|t| t["name"] == "no_schema").unwrap();
    assert!(no_schema.get("inputSchema").is_none(), "{no_schema}");
    let mut expected = own.clone();
    for tool in &mut expected {
        if tool["name"] == "no_schema" {
            tool["inputSchema"] = json!({"type": "object"});
        }
    }

    let http = Http::new();
    for repair in ["auto", "never"] {
        let mut bridge = toolbox(&["--repair-schemas", repair]);
        let session = Session::open(&http, &bridge.url).await;
        let answer = session.request("tools/list", json!({})).await;
        assert_eq!(
            answer["result"]["tools"],
            json!(expected),
            "--repair-schemas {repair}: the server's tools, no_schema given a schema"
        );
        let dify = dify_list(&http, &bridge.url).await;
        assert_eq!(
            listed(&dify, "no_schema")["inputSchema"],
            json!({"type": "object"}),
            "--repair-schemas {repair}"
        );
        if repair == "never" {
            // Unrepaired, the "file" property still breaks Dify's refresh: the reader sees it.
            let why = read_tools(&dify).expect_err("a \"file\" kind breaks Dify's list");
            assert!(why.contains("upload") && why.contains("file"), "{why}");
        }
        bridge.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_of_type_file_becomes_a_string_for_dify_that_says_it_is_a_file() {
    let mut bridge = toolbox(&[]);
    let http = Http::new();
    let answer = dify_list(&http, &bridge.url).await;
    let dify = read_tools(&answer).unwrap_or_else(|why| panic!("Dify's refresh breaks: {why}"));
    let file = tool(&dify, "upload").param("file");
    assert_eq!(file.kind, "string", "{file:?}");
    assert!(file.required, "{file:?}");
    assert!(file.description.contains("type: file"), "{file:?}");
    assert_eq!(tool(&dify, "upload").param("name").kind, "string");
    let schema = &listed(&answer, "upload")["inputSchema"]["properties"]["file"];
    assert_eq!(schema["type"], "string", "{schema}");
    // Everything else Dify reads is as the server sent it.
    assert_eq!(
        listed(&answer, "get_weather"),
        own_tools(&toolbox_command(), &[])
            .iter()
            .find(|t| t["name"] == "get_weather")
            .unwrap()
    );
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// The official SDKs
// ---------------------------------------------------------------------------------------------

/// The tools (name and inputSchema) an official SDK client lists at `url` (its `list-tools`
/// scenario); panics if the SDK refuses the list.
fn sdk_schemas(sdk: Sdk, url: &str) -> Vec<Value> {
    let stdout = run_client(sdk, url, Opts::default(), &["list-tools"]);
    let listed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tools_json="))
        .unwrap_or_else(|| panic!("{sdk:?} printed no tools_json=:\n{stdout}"));
    serde_json::from_str::<Vec<Value>>(listed).expect("tools_json is a JSON list")
}

/// (name, inputSchema) of `tools`, `no_schema`'s given `{"type":"object"}`.
fn name_and_schema(tools: &[Value]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| {
            json!({"name": t["name"], "inputSchema": t.get("inputSchema").cloned()
                .unwrap_or_else(|| json!({"type": "object"}))})
        })
        .collect()
}

#[test]
fn every_official_sdk_lists_the_tools_with_the_schemas_the_server_sent() {
    let own_pydantic = name_and_schema(&own_tools(&pydantic_command(), &[]));
    let own_toolbox = name_and_schema(&own_tools(&toolbox_command(), &[]));
    let mut pydantic = pydantic(&[]);
    let mut toolbox = toolbox(&[]);
    for sdk in ALL_SDKS {
        let listed = sdk_schemas(sdk, &pydantic.url);
        assert_eq!(
            listed, own_pydantic,
            "{sdk:?} sees the pydantic schemas untouched, $defs and all"
        );
        assert!(
            listed.iter().all(|t| has_key(t, "$defs")),
            "{sdk:?}: {listed:?}"
        );
        // A tool without inputSchema would make the SDK refuse the whole list.
        let listed = sdk_schemas(sdk, &toolbox.url);
        assert_eq!(listed, own_toolbox, "{sdk:?}");
    }
    pydantic.stop();
    toolbox.stop();
}

// ---------------------------------------------------------------------------------------------
// Elicitation
// ---------------------------------------------------------------------------------------------

/// A Dify session calls `confirm`: the bridge declines the server's elicitation for it, the call
/// completes, and neither its reply nor its GET stream carries the request.
async fn assert_dify_confirm_declined(http: &Http, url: &str) {
    let request = json!({
        "jsonrpc": "2.0", "method": "tools/call",
        "params": {"name": "confirm", "arguments": {"question": "Delete everything?"}}
    });
    let exchange = dify_session(http, url, request).await;
    assert_eq!(
        text_json(&exchange.answer),
        json!({"action": "decline"}),
        "the server got the bridge's decline: {exchange:?}"
    );
    let asked: Vec<&Value> = exchange
        .others()
        .into_iter()
        .filter(|m| m["method"] == "elicitation/create")
        .collect();
    assert!(asked.is_empty(), "Dify was sent {asked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_elicitation_during_a_dify_call_is_declined_and_dify_never_sees_it() {
    let mut shared = toolbox(&[]);
    let http = Http::new();
    assert_dify_confirm_declined(&http, &shared.url).await;
    shared.stop();

    // With a server of its own, the request would be Dify's; it is still declined for it.
    let mut isolated = toolbox(&["--isolate"]);
    assert_dify_confirm_declined(&http, &isolated.url).await;

    // The control: a client that is not Dify and can answer gets the request and answers it.
    let (session, _) = Session::open_as(
        &http,
        &isolated.url,
        "2025-06-18",
        json!({"elicitation": {}}),
        "elicitor",
    )
    .await;
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "confirm", "arguments": {"question": "Sure?"}}
    });
    let mut call = http
        .open_post(&isolated.url, Some(&session.id), body.to_string())
        .await;
    expect_ok(&mut call, "the confirm call").await;
    let (_, asked) = call
        .next_message(secs(10))
        .await
        .expect("the server's elicitation/create on the call's stream");
    assert_eq!(asked["method"], "elicitation/create", "{asked}");
    let answer = json!({
        "jsonrpc": "2.0", "id": asked["id"], "result": {"action": "accept", "content": {"ok": true}}
    });
    let posted = http
        .post(&isolated.url, Some(&session.id), answer.to_string())
        .await;
    assert_eq!(posted.status, hyper::StatusCode::ACCEPTED);
    let rest = call.messages(secs(10)).await;
    let last = rest.last().expect("the call's answer");
    assert_eq!(last["id"], 7, "{rest:?}");
    assert_eq!(
        text_json(last),
        json!({"action": "accept", "content": {"ok": true}})
    );
    isolated.stop();
}
