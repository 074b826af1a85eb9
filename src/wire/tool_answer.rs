//! What the answer to a `tools/call` says, read without parsing its result: a JSON-RPC error
//! (and its code), a result the tool marked `"isError": true`, or a result. The answer comes as
//! the chunks it is sent in (a long one is never joined): its first bytes say which member it
//! has, and `isError` is searched for in every chunk at memchr speed.

use bytes::Bytes;
use memchr::memmem;

use super::sniff::{string_end, value_start};

/// What a `tools/call` answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolAnswer {
    /// A JSON-RPC error, with its code when it can be read.
    Error(Option<i64>),
    /// A result; `is_error` when the tool said its call failed.
    Result { is_error: bool },
}

/// How many of an answer's first bytes are read for its top-level `error` or `result`: the
/// envelope's members come first in every answer seen in practice.
const PREFIX: usize = 1024;

const IS_ERROR: &[u8] = b"\"isError\"";

/// Reads the answer in `chunks` (one JSON-RPC message). An answer whose first bytes show
/// neither member counts as a result. `isError` is looked for anywhere in a result: a nested
/// object of the tool's own with that key would read as the tool's failure.
pub fn read(chunks: &[Bytes]) -> ToolAnswer {
    let mut prefix = [0u8; PREFIX];
    let mut filled = 0;
    for chunk in chunks {
        let take = chunk.len().min(PREFIX - filled);
        prefix[filled..filled + take].copy_from_slice(&chunk[..take]);
        filled += take;
        if filled == PREFIX {
            break;
        }
    }
    let prefix = &prefix[..filled];
    let start = prefix.iter().position(|b| !b.is_ascii_whitespace());
    if let Some(start) = start.filter(|&at| prefix[at] == b'{')
        && let Some((key, value)) = member(prefix, start, &[b"error", b"result"])
        && key == 0
    {
        return ToolAnswer::Error(error_code(prefix, value));
    }
    ToolAnswer::Result {
        is_error: marks_is_error(chunks),
    }
}

/// The `code` of the error object whose value starts at `at`, if `buf` holds it.
fn error_code(buf: &[u8], at: usize) -> Option<i64> {
    if buf.get(at) != Some(&b'{') {
        return None;
    }
    let (_, value) = member(buf, at, &[b"code"])?;
    let digits = &buf[value..];
    let sign = usize::from(digits.first() == Some(&b'-'));
    let length = sign
        + digits[sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    std::str::from_utf8(&digits[..length]).ok()?.parse().ok()
}

/// The first of `wanted` among the keys of the object opening at `open` (its own members
/// only, not nested ones): which one, and where its value starts.
fn member(buf: &[u8], open: usize, wanted: &[&[u8]]) -> Option<(usize, usize)> {
    let (mut depth, mut expect_key, mut i) = (0usize, false, open);
    while i < buf.len() {
        match buf[i] {
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            b',' => expect_key = depth == 1,
            b'"' => {
                let end = string_end(buf, i)?;
                if depth == 1 && expect_key {
                    let key = &buf[i + 1..end - 1];
                    if let Some(which) = wanted.iter().position(|w| *w == key) {
                        return Some((which, value_start(buf, end)?));
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
    None
}

/// Whether `"isError"` followed by `: true` is in the chunks, also across a chunk boundary.
/// Inside a JSON string a quote is escaped, so the key matches only as a key.
fn marks_is_error(chunks: &[Bytes]) -> bool {
    let finder = memmem::Finder::new(IS_ERROR);
    for (index, chunk) in chunks.iter().enumerate() {
        for at in finder.find_iter(chunk) {
            if is_true_at(chunks, index, at + IS_ERROR.len()) {
                return true;
            }
        }
    }
    // A key split between two chunks: its start in the last bytes of one, its end in the next.
    chunks.windows(2).enumerate().any(|(index, pair)| {
        let tail = &pair[0][pair[0].len().saturating_sub(IS_ERROR.len() - 1)..];
        let head = &pair[1][..pair[1].len().min(IS_ERROR.len() - 1)];
        let mut joined = [0u8; 2 * (IS_ERROR.len() - 1)];
        joined[..tail.len()].copy_from_slice(tail);
        joined[tail.len()..tail.len() + head.len()].copy_from_slice(head);
        let joined = &joined[..tail.len() + head.len()];
        finder.find_iter(joined).any(|at| {
            let end = at + IS_ERROR.len();
            at < tail.len() && end > tail.len() && is_true_at(chunks, index + 1, end - tail.len())
        })
    })
}

/// Whether `: true` (whitespace allowed) follows position `at` of chunk `index`, reading on
/// into the next chunks.
fn is_true_at(chunks: &[Bytes], index: usize, at: usize) -> bool {
    let mut bytes = chunks[index][at..]
        .iter()
        .chain(chunks[index + 1..].iter().flat_map(|chunk| chunk.iter()))
        .copied()
        .filter(|b| !b.is_ascii_whitespace());
    bytes.next() == Some(b':') && bytes.take(4).eq(b"true".iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_one(answer: &str) -> ToolAnswer {
        read(&[Bytes::copy_from_slice(answer.as_bytes())])
    }

    /// `answer` cut into pieces at every position, as a long answer may be read.
    fn every_split(answer: &str) -> impl Iterator<Item = ToolAnswer> + '_ {
        (0..=answer.len()).map(move |at| {
            let bytes = Bytes::copy_from_slice(answer.as_bytes());
            read(&[bytes.slice(..at), bytes.slice(at..)])
        })
    }

    #[test]
    fn errors_are_told_from_results_by_the_top_level_member() {
        assert_eq!(
            read_one(
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"unknown tool: x"}}"#
            ),
            ToolAnswer::Error(Some(-32602))
        );
        assert_eq!(
            read_one(
                r#" { "error" : { "message": "m", "code" : -32001 }, "id": 1, "jsonrpc": "2.0"}"#
            ),
            ToolAnswer::Error(Some(-32001))
        );
        assert_eq!(
            read_one(r#"{"jsonrpc":"2.0","id":3,"error":{"message":"no code"}}"#),
            ToolAnswer::Error(None)
        );
        // A result that mentions errors is still a result.
        assert_eq!(
            read_one(
                r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"\"error\":{\"code\":1} \"isError\": true"}],"error":1}}"#
            ),
            ToolAnswer::Result { is_error: false }
        );
        // An id that is a string naming a member is only an id.
        assert_eq!(
            read_one(r#"{"id":"error","result":{"content":[]}}"#),
            ToolAnswer::Result { is_error: false }
        );
    }

    #[test]
    fn a_tool_error_is_a_result_marked_is_error() {
        for answer in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"bad"}],"isError":true}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"isError" :
                true,"content":[]}}"#,
        ] {
            assert_eq!(read_one(answer), ToolAnswer::Result { is_error: true });
            assert!(
                every_split(answer).all(|read| read == ToolAnswer::Result { is_error: true }),
                "{answer}"
            );
        }
        assert_eq!(
            read_one(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}"#),
            ToolAnswer::Result { is_error: false }
        );
        let error = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}"#;
        assert!(every_split(error).all(|read| read == ToolAnswer::Error(Some(-32000))));
    }

    #[test]
    fn a_long_answer_is_read_from_its_first_bytes_and_searched_whole() {
        let filler = "x".repeat(3 * PREFIX);
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"content":[{{"type":"text","text":"{filler}"}}],"isError":true}}}}"#
        );
        let bytes = Bytes::from(long);
        let pieces: Vec<Bytes> = (0..bytes.len())
            .step_by(700)
            .map(|at| bytes.slice(at..(at + 700).min(bytes.len())))
            .collect();
        assert_eq!(read(&pieces), ToolAnswer::Result { is_error: true });
        // Members past the bytes read say nothing: a result.
        let late = format!(r#"{{"_meta":{{"pad":"{filler}"}},"error":{{"code":1}}}}"#);
        assert_eq!(read_one(&late), ToolAnswer::Result { is_error: false });
    }
}
