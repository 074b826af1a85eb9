//! The command line's own value types: `KEY=VALUE`, `NAME=VALUE`, seconds, sizes with units, protocol
//! versions and endpoint paths, each refused with a message that says what was expected.

use std::ffi::OsString;
use std::time::Duration;

use crate::wire::versions;

pub fn parse_env(text: &str) -> Result<(OsString, OsString), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

/// `NAME=VALUE` where NAME is a tool's name (the value may hold `=` and spaces).
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

/// `VAR=Header-Name`: the header's name checked and lowercased.
pub fn parse_env_from_header(text: &str) -> Result<(String, String), String> {
    let (var, header) = text
        .split_once('=')
        .filter(|(var, header)| !var.is_empty() && !header.is_empty())
        .ok_or_else(|| format!("expected VAR=HEADER, got `{text}`"))?;
    let header = http::HeaderName::from_bytes(header.trim().as_bytes())
        .map_err(|_| format!("`{header}` is not an HTTP header name"))?;
    Ok((var.to_owned(), header.as_str().to_owned()))
}

pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("expected a positive number of seconds, got `{text}`"))
}

/// `1048576`, `512KiB`, `16MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`, as powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("expected a size such as 16MiB, got `{text}`"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .filter(|size| *size > 0)
        .ok_or_else(|| format!("`{text}` is not a usable size"))
}

pub fn parse_protocol_version(text: &str) -> Result<&'static str, String> {
    versions::ALL_VERSIONS
        .iter()
        .find(|known| **known == text.trim())
        .copied()
        .ok_or_else(|| {
            format!(
                "unknown protocol version `{text}`; the bridge speaks {}",
                versions::ALL_VERSIONS.join(", ")
            )
        })
}

pub fn parse_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("the path must start with `/`, got `{text}`"));
    }
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_seconds() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
    }
}
