//! Recognising a long answer of the child's without parsing it: its top-level keys near its
//! start, and its id there or as the last member before its closing brace. A 10 MB answer is
//! then routed having read its first and last bytes only.

use std::ops::Range;

/// Where the id of a long answer was found: in its first piece or in its last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdAt {
    Start(Range<usize>),
    End(Range<usize>),
}

/// A response too long to parse cheaply, recognised by its first and last bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub bridge_id: u64,
    pub at: IdAt,
    /// It carries both `result` and `error` (as far as its first bytes show).
    pub ambiguous: bool,
}

/// Recognises a response without parsing it: a top-level `"result"` or `"error"` key and no
/// `"method"` near the start, and a top-level `"id"` either near the start or as the last
/// member before the closing brace. `None` when that cannot be told from these bytes.
pub fn sniff_response(start: &[u8], end: &[u8]) -> Option<Sniffed> {
    let top = scan_top_level(start);
    if top.has_method || !top.has_result_or_error {
        return None;
    }
    let ambiguous = top.has_both;
    match top.id {
        Some((bridge_id, span)) => Some(Sniffed {
            bridge_id,
            at: IdAt::Start(span),
            ambiguous,
        }),
        None => id_in_suffix(end).map(|(bridge_id, span)| Sniffed {
            bridge_id,
            at: IdAt::End(span),
            ambiguous,
        }),
    }
}

/// The bridge id of a response, from its first and last bytes (see [`sniff_response`]).
pub fn sniff_bridge_id(start: &[u8], end: &[u8]) -> Option<u64> {
    sniff_response(start, end).map(|s| s.bridge_id)
}

#[derive(Default)]
struct TopLevel {
    id: Option<(u64, Range<usize>)>,
    has_method: bool,
    has_result_or_error: bool,
    /// Both `result` and `error` were seen: an answer JSON-RPC does not allow.
    has_both: bool,
}

/// The top-level keys in `prefix`, read until it ends or a value runs past it.
fn scan_top_level(prefix: &[u8]) -> TopLevel {
    let mut top = TopLevel::default();
    let (mut depth, mut expect_key, mut i) = (0usize, false, 0);
    while i < prefix.len() {
        match prefix[i] {
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return top,
            },
            b',' => expect_key = depth == 1,
            b'"' => {
                let Some(end) = string_end(prefix, i) else {
                    return top;
                };
                if depth == 1 && expect_key {
                    match &prefix[i..end] {
                        b"\"id\"" => top.id = id_value_after_key(prefix, end),
                        b"\"method\"" => top.has_method = true,
                        b"\"result\"" | b"\"error\"" => {
                            top.has_both = top.has_result_or_error;
                            top.has_result_or_error = true;
                        }
                        _ => {}
                    }
                }
                expect_key = false;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    top
}

/// The id value (an integer, possibly quoted) after the key ending at `key_end`, with its span.
fn id_value_after_key(buf: &[u8], key_end: usize) -> Option<(u64, Range<usize>)> {
    let i = value_start(buf, key_end)?;
    let quoted = buf[i] == b'"';
    let digits_start = i + usize::from(quoted);
    let digits = buf[digits_start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let digits_end = digits_start + digits;
    if quoted && buf.get(digits_end) != Some(&b'"') {
        return None;
    }
    let number = std::str::from_utf8(&buf[digits_start..digits_end])
        .ok()?
        .parse()
        .ok()?;
    Some((number, i..digits_end + usize::from(quoted)))
}

/// `"id":N}` (or `"id":"N"}`) at the very end of `suffix`, as a member of the top-level object.
fn id_in_suffix(suffix: &[u8]) -> Option<(u64, Range<usize>)> {
    let body = suffix.trim_ascii_end().strip_suffix(b"}")?.trim_ascii_end();
    let quoted = body.ends_with(b"\"");
    let value_end = body.len();
    let digits_end = value_end - usize::from(quoted);
    let digits = body[..digits_end]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let digits_start = digits_end - digits;
    let value_start = digits_start - usize::from(quoted);
    if quoted && body.get(value_start) != Some(&b'"') {
        return None;
    }
    let before = body[..value_start]
        .trim_ascii_end()
        .strip_suffix(b":")?
        .trim_ascii_end()
        .strip_suffix(b"\"id\"")?
        .trim_ascii_end();
    // Only a member of the top-level object: right after its `{` or a `,` at that level.
    if !(before.ends_with(b",") || before == b"{") {
        return None;
    }
    let number = std::str::from_utf8(&body[digits_start..digits_end])
        .ok()?
        .parse()
        .ok()?;
    Some((number, value_start..value_end))
}

/// Where the value after the key ending at `key_end` starts (past the colon and whitespace).
pub(super) fn value_start(buf: &[u8], key_end: usize) -> Option<usize> {
    let colon = key_end
        + buf[key_end..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())?;
    if buf[colon] != b':' {
        return None;
    }
    let after = colon + 1;
    Some(after + buf[after..].iter().position(|b| !b.is_ascii_whitespace())?)
}

/// The index just past the string literal starting at `start`.
pub(super) fn string_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < buf.len() {
        // Jump to the next quote or backslash: long strings are scanned at memchr speed.
        i += memchr::memchr2(b'"', b'\\', &buf[i..])?;
        match buf[i] {
            b'\\' => i += 2,
            _ => return Some(i + 1),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_long_answers_by_their_ends() {
        let start = br#"{"jsonrpc":"2.0","id":17,"result":{"x":"#;
        let at_start = |bridge_id, span| {
            Some(Sniffed {
                bridge_id,
                at: IdAt::Start(span),
                ambiguous: false,
            })
        };
        let at_end = |bridge_id, span| {
            Some(Sniffed {
                bridge_id,
                at: IdAt::End(span),
                ambiguous: false,
            })
        };
        assert!(
            sniff_response(br#"{"id":3,"result":{},"error":{}"#, b"")
                .unwrap()
                .ambiguous
        );
        assert_eq!(sniff_response(start, b""), at_start(17, 22..24));
        assert_eq!(
            sniff_response(br#"{"id" : "17","result":"#, b""),
            at_start(17, 8..12)
        );
        // A nested "id" is not the message's; without a top-level result it is no response.
        let result_first = br#"{"result":{"id":5,"content":"#;
        assert_eq!(sniff_bridge_id(result_first, b"xx"), None);
        assert_eq!(sniff_bridge_id(br#"{"result":{"a":"\"id\":4"#, b""), None);
        let end = br#"xxxx"}]},"jsonrpc":"2.0","id":23}"#;
        assert_eq!(sniff_response(result_first, end), at_end(23, 30..32));
        let end = br#"xxx","id":"23"} "#;
        assert_eq!(sniff_response(result_first, end), at_end(23, 10..14));
        assert_eq!(sniff_bridge_id(result_first, br#"{"a":{"id":23}}"#), None);
        assert_eq!(sniff_bridge_id(result_first, br#"x"id":23}"#), None);
        // Requests and notifications are not answers, however long.
        assert_eq!(
            sniff_bridge_id(br#"{"id":3,"method":"x","params":"#, b""),
            None
        );
    }
}
