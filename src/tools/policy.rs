//! The operator's tool policy for one server: which of the child's tools clients are shown
//! (allow and deny lists of names and globs, read-only tools only), under which names, with
//! which descriptions. Every name in a policy is the child's own.

use serde_json::Value;

use super::glob;

/// Which tools clients see, and how. The default shows every tool as the child lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    /// Names or globs; when any is given, only the tools matching one are shown.
    pub allow: Vec<String>,
    /// Names or globs of tools never shown (this wins over `allow`).
    pub deny: Vec<String>,
    /// Only tools whose annotations say `readOnlyHint: true`.
    pub read_only: bool,
    /// The child's name, then the name clients see and call it by.
    pub rename: Vec<(String, String)>,
    /// The child's name, then the description clients see instead of the child's.
    pub descriptions: Vec<(String, String)>,
}

/// What the policy needs to know of one tool of the child's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFacts {
    pub name: String,
    /// `annotations.readOnlyHint` is `true`.
    pub read_only: bool,
}

impl ToolFacts {
    /// Reads a tool of `tools/list`; `None` for an entry without a name.
    pub fn of(tool: &Value) -> Option<ToolFacts> {
        Some(ToolFacts {
            name: tool.get("name")?.as_str()?.to_owned(),
            read_only: tool
                .pointer("/annotations/readOnlyHint")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// A policy that cannot be applied, said in the words of its flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("a tool name or pattern is empty")]
    EmptyName,
    #[error("tool {0:?} is renamed twice")]
    RenamedTwice(String),
    #[error("tools {0:?} and {1:?} are both renamed to {2:?}")]
    SameNewName(String, String, String),
    #[error("tool {0:?} is renamed to {1:?}, the name of a tool that is renamed too")]
    RenamedOnto(String, String),
    #[error("tool {0:?} has two descriptions")]
    DescribedTwice(String),
}

/// What becomes of a call for a tool, by the name the client called it.
#[derive(Debug, PartialEq, Eq)]
pub enum CallDecision<'a> {
    /// The child knows the tool by this name.
    Allowed(&'a str),
    /// The policy hides it, or it is a renamed tool's old name.
    Hidden,
}

impl ToolPolicy {
    /// Whether the policy leaves every tool as the child lists it.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && !self.read_only
            && self.rename.is_empty()
            && self.descriptions.is_empty()
    }

    /// Whether whether a tool is shown depends on its annotations, not only on its name.
    pub fn needs_annotations(&self) -> bool {
        self.read_only
    }

    /// Refuses a policy that cannot be applied: an empty name, a tool renamed twice, two
    /// tools under one new name, a tool given two descriptions.
    pub fn check(&self) -> Result<(), PolicyError> {
        let names = self.allow.iter().chain(&self.deny);
        let pairs = self.rename.iter().chain(&self.descriptions);
        if names
            .chain(pairs.map(|(name, _)| name))
            .any(String::is_empty)
            || self.rename.iter().any(|(_, new)| new.is_empty())
        {
            return Err(PolicyError::EmptyName);
        }
        for (n, (old, new)) in self.rename.iter().enumerate() {
            for (other_old, other_new) in &self.rename[..n] {
                if other_old == old {
                    return Err(PolicyError::RenamedTwice(old.clone()));
                }
                if other_new == new {
                    return Err(PolicyError::SameNewName(
                        other_old.clone(),
                        old.clone(),
                        new.clone(),
                    ));
                }
            }
            if new != old && self.rename.iter().any(|(other_old, _)| other_old == new) {
                return Err(PolicyError::RenamedOnto(old.clone(), new.clone()));
            }
        }
        for (n, (name, _)) in self.descriptions.iter().enumerate() {
            if self.descriptions[..n]
                .iter()
                .any(|(other, _)| other == name)
            {
                return Err(PolicyError::DescribedTwice(name.clone()));
            }
        }
        Ok(())
    }

    /// Whether clients are shown the tool.
    pub fn shows(&self, tool: &ToolFacts) -> bool {
        self.passes_lists(&tool.name) && (!self.read_only || tool.read_only)
    }

    /// Whether the allow and deny lists let the tool named `name` (the child's name) through.
    pub fn passes_lists(&self, name: &str) -> bool {
        let listed = |patterns: &[String]| patterns.iter().any(|p| glob::matches(p, name));
        (self.allow.is_empty() || listed(&self.allow)) && !listed(&self.deny)
    }

    /// The name clients see for the child's tool `name`.
    pub fn shown_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.rename
            .iter()
            .find(|(old, _)| old == name)
            .map_or(name, |(_, new)| new)
    }

    /// The description clients see instead of the child's, if the policy gives one.
    pub fn description(&self, name: &str) -> Option<&str> {
        self.descriptions
            .iter()
            .find(|(tool, _)| tool == name)
            .map(|(_, text)| text.as_str())
    }

    /// The child's name for a tool clients call `called`, if the lists let it through; the
    /// annotations, when [`Self::needs_annotations`], are the caller's to check.
    pub fn call<'a>(&'a self, called: &'a str) -> CallDecision<'a> {
        let child_name = match self.rename.iter().find(|(_, new)| new == called) {
            Some((old, _)) => old.as_str(),
            // A renamed tool is called by its new name only.
            None if self.rename.iter().any(|(old, _)| old == called) => {
                return CallDecision::Hidden;
            }
            None => called,
        };
        if self.passes_lists(child_name) {
            CallDecision::Allowed(child_name)
        } else {
            CallDecision::Hidden
        }
    }

    /// The names and patterns in the policy that match none of `tools` (the child's names):
    /// each worth a warning, as a typo would silently hide or show a tool.
    pub fn unknown_names(&self, tools: &[&str]) -> Vec<String> {
        let mut unknown = Vec::new();
        let mut note = |what: &str, pattern: &str| {
            let matched = tools.iter().any(|tool| glob::matches(pattern, tool));
            let entry = format!("{what} {pattern:?}");
            if !matched && !unknown.contains(&entry) {
                unknown.push(entry);
            }
        };
        for pattern in &self.allow {
            note("allowed", pattern);
        }
        for pattern in &self.deny {
            note("denied", pattern);
        }
        for (name, _) in &self.rename {
            note("renamed", name);
        }
        for (name, _) in &self.descriptions {
            note("described", name);
        }
        unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, read_only: bool) -> ToolFacts {
        ToolFacts {
            name: name.into(),
            read_only,
        }
    }

    fn policy() -> ToolPolicy {
        ToolPolicy {
            allow: vec!["get_*".into(), "search".into()],
            deny: vec!["get_secret".into()],
            read_only: false,
            rename: vec![("get_weather".into(), "weather".into())],
            descriptions: vec![("search".into(), "Search the docs".into())],
        }
    }

    #[test]
    fn deny_wins_over_allow_and_globs_match_whole_names() {
        let policy = policy();
        assert!(policy.shows(&facts("get_weather", false)));
        assert!(policy.shows(&facts("search", false)));
        assert!(!policy.shows(&facts("get_secret", true)));
        assert!(!policy.shows(&facts("delete_file", false)));
        assert!(!policy.shows(&facts("research", false)));
        assert!(ToolPolicy::default().shows(&facts("anything", false)));
    }

    #[test]
    fn read_only_shows_only_tools_that_say_so() {
        let policy = ToolPolicy {
            read_only: true,
            ..ToolPolicy::default()
        };
        assert!(policy.shows(&facts("get", true)));
        assert!(!policy.shows(&facts("delete", false)));
        let tool = serde_json::json!({"name": "get", "annotations": {"readOnlyHint": true}});
        assert_eq!(ToolFacts::of(&tool), Some(facts("get", true)));
        let tool = serde_json::json!({"name": "set", "annotations": {"readOnlyHint": "yes"}});
        assert_eq!(ToolFacts::of(&tool), Some(facts("set", false)));
    }

    #[test]
    fn a_renamed_tool_is_called_by_its_new_name_only() {
        let policy = policy();
        assert_eq!(policy.shown_name("get_weather"), "weather");
        assert_eq!(policy.call("weather"), CallDecision::Allowed("get_weather"));
        assert_eq!(policy.call("get_weather"), CallDecision::Hidden);
        assert_eq!(policy.call("get_secret"), CallDecision::Hidden);
        assert_eq!(policy.call("get_time"), CallDecision::Allowed("get_time"));
        assert_eq!(policy.call("delete_file"), CallDecision::Hidden);
        assert_eq!(policy.description("search"), Some("Search the docs"));
    }

    #[test]
    fn policies_that_cannot_be_applied_are_refused() {
        assert_eq!(policy().check(), Ok(()));
        let twice = ToolPolicy {
            rename: vec![("a".into(), "x".into()), ("b".into(), "x".into())],
            ..ToolPolicy::default()
        };
        assert!(matches!(twice.check(), Err(PolicyError::SameNewName(..))));
        let chain = ToolPolicy {
            rename: vec![("a".into(), "b".into()), ("b".into(), "c".into())],
            ..ToolPolicy::default()
        };
        assert!(matches!(chain.check(), Err(PolicyError::RenamedOnto(..))));
        let empty = ToolPolicy {
            deny: vec![String::new()],
            ..ToolPolicy::default()
        };
        assert_eq!(empty.check(), Err(PolicyError::EmptyName));
    }

    #[test]
    fn names_that_match_no_tool_are_reported() {
        let unknown = policy().unknown_names(&["get_weather", "search"]);
        assert_eq!(unknown, ["denied \"get_secret\""]);
        assert!(ToolPolicy::default().unknown_names(&["a"]).is_empty());
    }
}
