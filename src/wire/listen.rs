//! `subscriptions/listen` (2026-07-28) in wire form: the notifications a client asks for, the
//! part of them a handshake-era child can send (what its `initialize` declared), and the
//! stream's messages, each tagged with the subscription it belongs to.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// The `_meta` key naming the subscription a message belongs to.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// What a child declared it notifies its clients of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Announces {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    /// `resources.subscribe`: it tells subscribers when a resource changes.
    pub resource_updates: bool,
}

impl Announces {
    /// Reads an `initialize` result's `capabilities`.
    pub fn of(capabilities: Option<&Value>) -> Self {
        let flag = |pointer: &str| {
            capabilities
                .and_then(|c| c.pointer(pointer))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        Self {
            tools: flag("/tools/listChanged"),
            prompts: flag("/prompts/listChanged"),
            resources: flag("/resources/listChanged"),
            resource_updates: flag("/resources/subscribe"),
        }
    }
}

/// The notifications one subscription is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenFilter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    /// Resources whose updates are wanted.
    pub uris: Vec<String>,
}

impl ListenFilter {
    /// Reads a `subscriptions/listen` request's params: the filter, or why it is unusable.
    pub fn read(params: Option<&RawValue>) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Params {
            notifications: Option<Notifications>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Notifications {
            tools_list_changed: Option<bool>,
            prompts_list_changed: Option<bool>,
            resources_list_changed: Option<bool>,
            resource_subscriptions: Option<Vec<String>>,
        }
        let Some(params) = params else {
            return Ok(Self::default());
        };
        let params: Params = serde_json::from_str(params.get())
            .map_err(|e| format!("invalid params: subscriptions/listen: {e}"))?;
        let Some(wanted) = params.notifications else {
            return Ok(Self::default());
        };
        Ok(Self {
            tools: wanted.tools_list_changed.unwrap_or(false),
            prompts: wanted.prompts_list_changed.unwrap_or(false),
            resources: wanted.resources_list_changed.unwrap_or(false),
            uris: wanted.resource_subscriptions.unwrap_or_default(),
        })
    }

    /// The part of this filter a child that announces `announces` can honour.
    pub fn honored(&self, announces: Announces) -> Self {
        Self {
            tools: self.tools && announces.tools,
            prompts: self.prompts && announces.prompts,
            resources: self.resources && announces.resources,
            uris: if announces.resource_updates {
                self.uris.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// Whether the child's notification `message` is for this subscription.
    pub fn wants(&self, message: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Notification {
            method: String,
            params: Option<Params>,
        }
        #[derive(Deserialize)]
        struct Params {
            uri: Option<String>,
        }
        let Ok(notification) = serde_json::from_slice::<Notification>(message) else {
            return false;
        };
        match notification.method.as_str() {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => notification
                .params
                .and_then(|params| params.uri)
                .is_some_and(|uri| self.uris.contains(&uri)),
            _ => false,
        }
    }

    fn to_json(&self) -> Value {
        let mut notifications = Map::new();
        for (key, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                notifications.insert(key.into(), Value::from(true));
            }
        }
        if !self.uris.is_empty() {
            notifications.insert("resourceSubscriptions".into(), json!(self.uris));
        }
        Value::Object(notifications)
    }
}

/// The subscription's first message: what of the filter it honours. `id` is the raw JSON id
/// of the `subscriptions/listen` request, which names the subscription.
pub fn acknowledged(id: &str, honored: &ListenFilter) -> Bytes {
    let message = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {
            "_meta": { SUBSCRIPTION_ID: raw_id(id) },
            "notifications": honored.to_json(),
        },
    });
    Bytes::from(message.to_string())
}

/// The child's notification `message` as the subscription `id` delivers it.
pub fn tagged(message: &[u8], id: &str) -> Option<Bytes> {
    let mut notification: Map<String, Value> = serde_json::from_slice(message).ok()?;
    let params = notification
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(params) = params else {
        return None;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return None;
    };
    meta.insert(SUBSCRIPTION_ID.into(), raw_id(id));
    serde_json::to_vec(&notification).ok().map(Bytes::from)
}

/// The answer that ends subscription `id` gracefully (the bridge is stopping).
pub fn closed(id: &str) -> Bytes {
    let result = json!({
        "resultType": "complete",
        "_meta": { SUBSCRIPTION_ID: raw_id(id) },
    });
    crate::wire::jsonrpc::result_response(id, result.to_string().as_bytes())
}

fn raw_id(id: &str) -> Value {
    serde_json::from_str(id).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> ListenFilter {
        let params = RawValue::from_string(text.to_owned()).unwrap();
        ListenFilter::read(Some(&params)).unwrap()
    }

    #[test]
    fn a_filter_honours_only_what_the_child_announces() {
        let asked = filter(
            r#"{"notifications":{"toolsListChanged":true,"promptsListChanged":true,
            "resourceSubscriptions":["file:///a"]}}"#,
        );
        let announces = Announces::of(Some(&json!({"tools": {"listChanged": true}})));
        let honored = asked.honored(announces);
        assert!(honored.tools && !honored.prompts && honored.uris.is_empty());
        let ack: Value = serde_json::from_slice(&acknowledged("7", &honored)).unwrap();
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 7);
        assert_eq!(
            ack["params"]["notifications"],
            json!({"toolsListChanged": true})
        );
    }

    #[test]
    fn only_the_notifications_asked_for_are_wanted_and_each_is_tagged() {
        let wanted = filter(r#"{"notifications":{"resourceSubscriptions":["file:///a"]}}"#);
        let update_a = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#;
        let update_b = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///b"}}"#;
        let tools = br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
        assert!(wanted.wants(update_a));
        assert!(!wanted.wants(update_b));
        assert!(!wanted.wants(tools));
        let tagged: Value = serde_json::from_slice(&tagged(tools, "\"s\"").unwrap()).unwrap();
        assert_eq!(tagged["params"]["_meta"][SUBSCRIPTION_ID], "s");
        let end: Value = serde_json::from_slice(&closed("\"s\"")).unwrap();
        assert_eq!(end["id"], "s");
        assert_eq!(end["result"]["_meta"][SUBSCRIPTION_ID], "s");
    }

    #[test]
    fn a_filter_that_is_not_one_is_refused() {
        let params =
            RawValue::from_string(r#"{"notifications":{"toolsListChanged":"yes"}}"#.into())
                .unwrap();
        assert!(ListenFilter::read(Some(&params)).is_err());
    }
}
