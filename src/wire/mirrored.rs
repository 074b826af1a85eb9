//! The 2026-07-28 revision's headers that mirror the body (`Mcp-Name`, and `Mcp-Param-*` for
//! the tool parameters a tool's schema marks with `x-mcp-header`): their `=?base64?…?=` form,
//! the parameters a schema marks, and whether a call's headers say what its arguments say.

use serde_json::Value;

/// A header value as sent, or decoded from the `=?base64?…?=` form clients use for values that
/// are not plain ASCII; `None` when that form does not decode (strict base64, padding included,
/// to UTF-8).
pub fn decode_sentinel(value: &str) -> Option<String> {
    use base64::Engine;
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_owned()),
    }
}

/// A tool parameter mirrored into a header: the header's name and where the value lies in the
/// arguments (a chain of `properties` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredParam {
    /// `mcp-param-{x-mcp-header}`, lowercase.
    pub header: String,
    pub path: Vec<String>,
}

/// The parameters `input_schema` marks with `x-mcp-header`, reachable from its root through
/// `properties` alone (the only place the revision allows the mark).
pub fn mirrored_params(input_schema: &Value) -> Vec<MirroredParam> {
    fn walk(schema: &Value, path: &mut Vec<String>, found: &mut Vec<MirroredParam>) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, property) in properties {
            path.push(name.clone());
            if let Some(header) = property.get("x-mcp-header").and_then(Value::as_str) {
                found.push(MirroredParam {
                    header: format!("mcp-param-{}", header.to_ascii_lowercase()),
                    path: path.clone(),
                });
            }
            walk(property, path, found);
            path.pop();
        }
    }
    let mut found = Vec::new();
    walk(input_schema, &mut Vec::new(), &mut found);
    found
}

/// Whether a call's mirrored headers (`header(name)`: the raw value, if sent) say what its
/// `arguments` say; the reason when they do not.
pub fn check_params<'a>(
    params: &[MirroredParam],
    arguments: Option<&Value>,
    header: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<(), String> {
    for param in params {
        let value = arguments
            .and_then(|arguments| param.path.iter().try_fold(arguments, |at, key| at.get(key)))
            .filter(|value| !value.is_null());
        let sent = header(&param.header);
        let (value, sent) = match (value, sent) {
            (None, None) => continue,
            (Some(_), None) => {
                return Err(format!(
                    "the {} header is missing but the arguments hold {}",
                    param.header,
                    param.path.join(".")
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "the {} header is sent but the arguments hold no {}",
                    param.header,
                    param.path.join(".")
                ));
            }
            (Some(value), Some(sent)) => (value, sent),
        };
        let sent = std::str::from_utf8(sent)
            .ok()
            .filter(|text| {
                text.bytes()
                    .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
            })
            .ok_or_else(|| format!("the {} header has invalid characters", param.header))?;
        let sent = decode_sentinel(sent).ok_or_else(|| {
            format!(
                "the {} header has a malformed =?base64?…?= value",
                param.header
            )
        })?;
        let matches = match value {
            Value::String(text) => *text == sent,
            Value::Bool(flag) => sent == if *flag { "true" } else { "false" },
            Value::Number(number) => sent
                .trim()
                .parse::<f64>()
                .ok()
                .zip(number.as_f64())
                .is_some_and(|(a, b)| a == b),
            _ => false,
        };
        if !matches {
            return Err(format!(
                "the {} header does not match the arguments' {}",
                param.header,
                param.path.join(".")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_base64_sentinel_strictly() {
        assert_eq!(decode_sentinel("plain").unwrap(), "plain");
        assert_eq!(
            decode_sentinel("=?base64?SGVsbG8sIOS4lueVjA==?=").unwrap(),
            "Hello, 世界"
        );
        assert_eq!(
            decode_sentinel("=?base64?IHBhZGRlZCA=?=").unwrap(),
            " padded "
        );
        assert!(decode_sentinel("=?base64?***?=").is_none());
        assert!(
            decode_sentinel("=?base64?SGVsbG8?=").is_none(),
            "no padding"
        );
        assert_eq!(
            decode_sentinel("=?base64?SGVsbG8=").unwrap(),
            "=?base64?SGVsbG8=",
            "not the sentinel form: a literal"
        );
    }

    #[test]
    fn finds_the_marked_parameters_reachable_through_properties() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "nested": {"type": "object", "properties": {
                "tenant": {"type": "string", "x-mcp-header": "Tenant"}}},
            "list": {"type": "array", "items": {"x-mcp-header": "Ignored"}}}});
        let found = mirrored_params(&schema);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].header, "mcp-param-region");
        assert_eq!(found[1].path, ["nested", "tenant"]);
    }

    #[test]
    fn mirrored_headers_must_say_what_the_arguments_say() {
        let params = mirrored_params(&json!({"properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"}}}));
        let arguments = json!({"region": "Hello", "count": 42});
        let with = |headers: &'static [(&'static str, &'static str)]| {
            check_params(&params, Some(&arguments), |name| {
                headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_bytes())
            })
        };
        assert!(with(&[("mcp-param-region", "Hello"), ("mcp-param-count", "42")]).is_ok());
        assert!(
            with(&[
                ("mcp-param-region", "=?base64?SGVsbG8=?="),
                ("mcp-param-count", "42.0")
            ])
            .is_ok()
        );
        assert!(with(&[("mcp-param-count", "42")]).is_err(), "missing");
        assert!(with(&[("mcp-param-region", "Bye"), ("mcp-param-count", "42")]).is_err());
        assert!(
            with(&[
                ("mcp-param-region", "=?base64?SGVs!!!bG8=?="),
                ("mcp-param-count", "42")
            ])
            .is_err()
        );
        let none = check_params(&params, Some(&json!({})), |_| None);
        assert!(none.is_ok(), "no value, no header");
    }
}
