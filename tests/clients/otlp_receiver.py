#!/usr/bin/env python3
"""A real OTLP/HTTP trace receiver for tests/traces.rs.

Listens on 127.0.0.1 on a free port and prints `listening PORT` on stdout once it accepts.
Every POST to /v1/traces is decoded as an ExportTraceServiceRequest (protobuf) and each of its
spans is appended to the file named by its one argument, as one JSON line: name, trace_id,
span_id, parent_span_id (hex, "" for a root), kind (SERVER, CLIENT, ...), attributes (a map),
status_code, service_name. Any request it gets, to any path, is also recorded as a line
{"request": PATH}, so a test can tell that nothing was sent at all.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

OUT = sys.argv[1]
out_lock = threading.Lock()


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value", "bytes_value"):
        return str(getattr(any_value, kind))
    return getattr(any_value, kind)


def record(lines):
    with out_lock, open(OUT, "a") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        lines = [{"request": self.path}]
        if self.path != "/v1/traces":
            record(lines)
            self.send_response(404)
            self.end_headers()
            return
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append({
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        "attributes": {kv.key: value_of(kv.value) for kv in span.attributes},
                        "status_code": Status.StatusCode.Name(span.status.code),
                        "service_name": resource.get("service.name"),
                    })
        record(lines)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def main():
    open(OUT, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print("listening %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
