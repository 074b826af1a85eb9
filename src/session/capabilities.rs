//! What a client's `initialize` says about it: the requests of the server's it can answer
//! (sampling, elicitation, roots) and its name.

use std::collections::HashMap;

/// What a client said it can answer when the child asks (its `initialize` capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClientCapabilities {
    pub sampling: bool,
    pub elicitation: bool,
    pub roots: bool,
}

/// What a client's `initialize` says about it: what it can answer, and its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub capabilities: ClientCapabilities,
    /// `clientInfo.name`, empty when missing.
    pub client_name: String,
}

impl ClientHello {
    /// Reads a client's `initialize` params.
    pub fn from_initialize(params: Option<&serde_json::value::RawValue>) -> Self {
        #[derive(serde::Deserialize)]
        struct Params {
            capabilities: Option<HashMap<String, serde::de::IgnoredAny>>,
            #[serde(rename = "clientInfo")]
            client_info: Option<ClientInfo>,
        }
        #[derive(serde::Deserialize)]
        struct ClientInfo {
            name: Option<String>,
        }
        let params = params.and_then(|raw| serde_json::from_str::<Params>(raw.get()).ok());
        let (declared, client_info) = match params {
            Some(params) => (params.capabilities.unwrap_or_default(), params.client_info),
            None => (HashMap::new(), None),
        };
        Self {
            capabilities: ClientCapabilities {
                sampling: declared.contains_key("sampling"),
                elicitation: declared.contains_key("elicitation"),
                roots: declared.contains_key("roots"),
            },
            client_name: client_info.and_then(|info| info.name).unwrap_or_default(),
        }
    }
}

impl ClientCapabilities {
    /// Whether the client declared any of the requests a child may send it.
    pub fn answers_any(&self) -> bool {
        self.sampling || self.elicitation || self.roots
    }

    /// Whether the client can answer the child's request `method`.
    pub fn answers(&self, method: &str) -> bool {
        match method {
            "sampling/createMessage" => self.sampling,
            "elicitation/create" => self.elicitation,
            "roots/list" => self.roots,
            // Every client answers ping, and other methods are the client's to refuse.
            _ => true,
        }
    }
}
