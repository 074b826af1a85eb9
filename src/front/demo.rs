//! The built-in demo MCP server (`mcp-bridge demo-server`, run as the child by `--demo`): a
//! small stdio server with a few tools, so the bridge can be tried with nothing else installed.

use std::io::{self, BufRead, Write};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::wire::rfc3339;
use crate::wire::versions::KNOWN_VERSIONS;

/// Serves MCP on stdin/stdout until stdin closes.
pub fn serve_stdio() -> io::Result<()> {
    let stdin = io::stdin().lock();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    eprintln!("mcp-bridge demo server ready (tools: echo, add, current_time)");
    for line in stdin.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(reply) = answer(&line) {
            serde_json::to_writer(&mut stdout, &reply)?;
            stdout.write_all(b"\n")?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// The reply to one line, if it is a request.
pub fn answer(line: &str) -> Option<Value> {
    let message: Value = match serde_json::from_str(line) {
        Ok(message) => message,
        Err(e) => return Some(error(Value::Null, -32700, &format!("parse error: {e}"))),
    };
    let id = message.get("id")?.clone();
    let method = message.get("method")?.as_str()?;
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    Some(match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked
                .filter(|v| KNOWN_VERSIONS.contains(v))
                .unwrap_or(KNOWN_VERSIONS[KNOWN_VERSIONS.len() - 1]);
            success(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "mcp-bridge-demo", "version": env!("CARGO_PKG_VERSION")},
                    "instructions": "A demo server built into mcp-bridge: echo text, add numbers, tell the time."
                }),
            )
        }
        "ping" => success(id, json!({})),
        "tools/list" => success(id, json!({ "tools": tools() })),
        "tools/call" => match call_tool(&params) {
            Ok(text) => success(id, json!({"content": [{"type": "text", "text": text}]})),
            Err(ToolError::Unknown(name)) => error(id, -32602, &format!("unknown tool: {name}")),
            Err(ToolError::BadArguments(why)) => success(
                id,
                json!({"content": [{"type": "text", "text": why}], "isError": true}),
            ),
        },
        other => error(id, -32601, &format!("method not found: {other}")),
    })
}

fn tools() -> Value {
    json!([
        {
            "name": "echo",
            "title": "Echo",
            "description": "Returns the message it is given.",
            "inputSchema": {
                "type": "object",
                "properties": {"message": {"type": "string", "description": "Text to send back"}},
                "required": ["message"]
            }
        },
        {
            "name": "add",
            "title": "Add",
            "description": "Adds two numbers.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "First number"},
                    "b": {"type": "number", "description": "Second number"}
                },
                "required": ["a", "b"]
            }
        },
        {
            "name": "current_time",
            "title": "Current time",
            "description": "The current date and time in UTC, as RFC 3339.",
            "inputSchema": {"type": "object", "properties": {}}
        }
    ])
}

enum ToolError {
    Unknown(String),
    BadArguments(String),
}

fn call_tool(params: &Value) -> Result<String, ToolError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    match name {
        "echo" => args
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ToolError::BadArguments("echo needs a string `message`".into())),
        "add" => {
            let number = |key: &str| args.get(key).and_then(Value::as_f64);
            match (number("a"), number("b")) {
                (Some(a), Some(b)) => Ok(format_number(a + b)),
                _ => Err(ToolError::BadArguments(
                    "add needs numbers `a` and `b`".into(),
                )),
            }
        }
        "current_time" => Ok(rfc3339::utc_seconds(SystemTime::now())),
        other => Err(ToolError::Unknown(other.to_owned())),
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn success(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_answer() {
        let reply = answer(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}"#).unwrap();
        assert_eq!(reply["result"]["content"][0]["text"], "42");
        assert_eq!(reply["id"], 3);
        let reply = answer(r#"{"jsonrpc":"2.0","id":"x","method":"nope"}"#).unwrap();
        assert_eq!(reply["error"]["code"], -32601);
        assert!(answer(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_none());
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        for tool in tools().as_array().unwrap() {
            assert_eq!(tool["inputSchema"]["type"], "object", "{}", tool["name"]);
        }
    }
}
