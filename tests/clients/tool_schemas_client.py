#!/usr/bin/env python3
"""List an MCP endpoint's tools with the real Python MCP SDK (1.x or 2.x) and print their schemas.

    .test-deps/py1/bin/python tests/clients/tool_schemas_client.py [--timeout S] URL
    .test-deps/py2/bin/python tests/clients/tool_schemas_client.py [--timeout S] URL

Connects as python_sdk_client.py does (SDK 2.x in `--mode legacy`: initialize, a session), lists
the tools through the SDK's own models (every page), and prints one line
`tools_json=[{"name": ..., "inputSchema": ...}, ...]` with each schema exactly as the SDK kept
it, then `OK tools=N`; exit 0. If the SDK refuses the list (a tool it cannot parse) or anything
else fails: `FAIL: <reason>` on stderr, exit 1. For tests/schema_repair.rs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio  # noqa: E402

import python_sdk_client as base  # noqa: E402


def schema_of(tool):
    schema = getattr(tool, "inputSchema", None)
    if schema is None:
        schema = getattr(tool, "input_schema", None)
    if schema is not None and not isinstance(schema, dict):
        schema = schema.model_dump(by_alias=True, exclude_none=True)
    return schema


async def run(opts: argparse.Namespace) -> str:
    with anyio.fail_after(opts.timeout):
        async with base.connect(opts.url, opts) as conn:
            base.announce(conn)
            tools = await conn.list_tools()
            listed = [{"name": t.name, "inputSchema": schema_of(t)} for t in tools]
            base.out("tools_json=" + json.dumps(listed, separators=(",", ":")))
            return f"sdk={base.SDK} tools={len(listed)}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=40.0)
    p.add_argument("url")
    opts = p.parse_args()
    opts.mode = "legacy"
    opts.no_terminate = False
    opts.transport = "streamable"
    try:
        details = anyio.run(run, opts)
    except TimeoutError:
        print(f"FAIL: timed out after {opts.timeout:g}s ({base.SDK})", file=sys.stderr)
        return 1
    except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - every failure is exit 1
        print(f"FAIL: {base.describe(e)} ({base.SDK})", file=sys.stderr)
        return 1
    base.out(f"OK {details}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
