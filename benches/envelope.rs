//! Micro-benchmark of the pure parts of the hot path: reading a message's envelope, splicing
//! ids in and out, and recognising a long answer by its ends. `cargo bench --bench envelope`
//! (`-- --quick` for a short run); prints nanoseconds per operation.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_bridge::child::Answer;
use mcp_bridge::wire::jsonrpc::{self, Kind};
use mcp_bridge::wire::sniff;

fn measure(name: &str, budget: Duration, mut operation: impl FnMut()) {
    for _ in 0..1000 {
        operation();
    }
    let started = Instant::now();
    let mut runs: u64 = 0;
    while started.elapsed() < budget {
        for _ in 0..1000 {
            operation();
        }
        runs += 1000;
    }
    let nanos = started.elapsed().as_nanos() as f64 / runs as f64;
    println!("{name:<48} {nanos:>10.1} ns/op");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 100 } else { 1000 });

    let request: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello, bridge"}}}"#;
    let answer: &[u8] = br#"{"jsonrpc":"2.0","id":123456,"result":{"content":[{"type":"text","text":"hello, bridge"}]}}"#;
    let big_text = "x".repeat(1_000_000);
    let big_answer = format!(
        r#"{{"jsonrpc":"2.0","id":77,"result":{{"content":[{{"type":"text","text":"{big_text}"}}]}}}}"#
    );

    measure("parse a client request (envelope only)", budget, || {
        black_box(jsonrpc::parse_from_client(black_box(request)).unwrap());
    });
    measure("parse + give the request a bridge id", budget, || {
        let message = jsonrpc::parse_from_client(black_box(request)).unwrap();
        let Kind::Request { id, .. } = message.kind else {
            unreachable!()
        };
        black_box(jsonrpc::to_line_with_id(request, id.span, b"123456"));
    });
    measure("parse the child's answer", budget, || {
        black_box(jsonrpc::parse(black_box(answer)).unwrap());
    });
    let line = Bytes::from_static(answer);
    measure("parse the answer + restore the client's id", budget, || {
        let message = jsonrpc::parse(&line).unwrap();
        let Kind::Response { id } = message.kind else {
            unreachable!()
        };
        let chunks = Answer::whole(line.clone(), id.span).with_id(Bytes::from_static(b"1"));
        black_box(chunks);
    });
    let big = big_answer.as_bytes();
    measure("parse a 1 MB answer (full envelope parse)", budget, || {
        black_box(jsonrpc::parse(black_box(big)).unwrap());
    });
    measure(
        "recognise a 1 MB answer by its ends (sniff)",
        budget,
        || {
            let start = &big[..64 * 1024];
            let end = &big[big.len() - 256..];
            black_box(sniff::sniff_response(black_box(start), black_box(end)).unwrap());
        },
    );
}
