//! What the child reports, and to whom: the [`Listener`] trait the layers above implement, the
//! child's answers as read (in pieces, never joined), and the lines that are no message.

use std::ops::Range;

use bytes::Bytes;

use super::stdin::Stdin;
use crate::wire::jsonrpc::Message;

/// Who hears what the child says: its answers, its other messages, the lines that are neither,
/// and its end. The bridge's upstream routes them; `mcp-bridge doctor` only counts them.
pub trait Listener: Send + Sync + 'static {
    /// The child's stdin is ready: the listener's own messages to the child go there.
    fn attached(&self, stdin: Stdin);
    /// The child answered request `bridge_id`; false if nobody waits for that answer.
    fn answer(&self, bridge_id: u64, answer: Answer) -> bool;
    /// Request `bridge_id` gets no answer: what the child wrote for it cannot be delivered
    /// (`code` and `message` say why, as a JSON-RPC error); false if nobody waits for it.
    fn no_answer(&self, bridge_id: u64, code: i64, message: String) -> bool;
    /// Any other message of the child's: a request or a notification.
    fn message(&self, line: &Bytes, message: &Message<'_>, stdin: &Stdin);
    /// A line that is no message for anyone.
    fn noise(&self, _noise: Noise<'_>) {}
    /// The child is gone, as `description` says.
    fn exited(&self, description: &str);
}

/// A line the child printed that is not a message for anyone.
#[derive(Debug, Clone, Copy)]
pub enum Noise<'a> {
    /// A stdout line that is not JSON-RPC (a banner, a stray print), skipped.
    Stdout(&'a [u8]),
    /// A line on stderr.
    Stderr(&'a str),
}

/// The child's answer to one request: the line, in one or more pieces as it was read (a long
/// answer is never joined), and where the bridge id sits: which piece, which bytes.
#[derive(Debug)]
pub struct Answer {
    pub pieces: Vec<Bytes>,
    pub id_piece: usize,
    pub id_span: Range<usize>,
}

impl Answer {
    pub fn whole(line: Bytes, id_span: Range<usize>) -> Self {
        Self {
            pieces: vec![line],
            id_piece: 0,
            id_span,
        }
    }

    /// The answer with `id` in place of the bridge id, as chunks to send without copying.
    pub fn with_id(mut self, id: Bytes) -> Vec<Bytes> {
        let piece = std::mem::take(&mut self.pieces[self.id_piece]);
        let mut chunks = Vec::with_capacity(self.pieces.len() + 2);
        chunks.extend(self.pieces.drain(..self.id_piece));
        chunks.push(piece.slice(..self.id_span.start));
        chunks.push(id);
        chunks.push(piece.slice(self.id_span.end..));
        chunks.extend(self.pieces.drain(1..));
        chunks
    }

    /// The whole line in one buffer (for the bridge's own requests, not the hot path).
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_spliced_into_the_right_piece() {
        let pieces = vec![
            Bytes::from_static(b"{\"id\":17,"),
            Bytes::from_static(b"\"result\":1}"),
        ];
        let answer = Answer {
            pieces,
            id_piece: 0,
            id_span: 6..8,
        };
        let chunks = answer.with_id(Bytes::from_static(b"\"a\""));
        assert_eq!(chunks.concat(), b"{\"id\":\"a\",\"result\":1}");
        let tail = Answer {
            pieces: vec![
                Bytes::from_static(b"{\"result\":1,"),
                Bytes::from_static(b"\"id\":9}"),
            ],
            id_piece: 1,
            id_span: 5..6,
        };
        assert_eq!(
            tail.with_id(Bytes::from_static(b"3")).concat(),
            b"{\"result\":1,\"id\":3}"
        );
    }
}
