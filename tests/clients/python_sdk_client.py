#!/usr/bin/env python3
"""Drive an MCP Streamable HTTP endpoint with the real Python MCP SDK (1.x or 2.x).

Run it with either venv's interpreter made by scripts/install-test-deps:

    .test-deps/py1/bin/python tests/clients/python_sdk_client.py [OPTIONS] URL SCENARIO [ARGS...]
    .test-deps/py2/bin/python tests/clients/python_sdk_client.py [OPTIONS] URL SCENARIO [ARGS...]

SDK 1.x: ClientSession over mcp.client.streamable_http.streamablehttp_client(url), initialize().
SDK 2.x: mcp.client.Client(url), which by default (mode "auto") first probes `server/discover`
         (MCP-Protocol-Version: 2026-07-28, no session) and falls back to `initialize`.
         `--mode legacy` skips the probe and sends `initialize` directly.

Scenarios:
    list-and-call TOOL JSON_ARGS EXPECT       list tools, call TOOL, its text must contain EXPECT
    list-tools [NAME...]                      list tools (all pages); each NAME must be present
    call-concurrent N TOOL JSON_ARGS EXPECT   N concurrent calls in one session, each must match
    call-progress TOOL JSON_ARGS EXPECT       call with a progress token; >= 1 progress
                                              notification must arrive, text must contain EXPECT
    sessions N TOOL JSON_ARGS EXPECT          N sequential sessions, each: connect, call, close
    get-prompt NAME JSON_ARGS EXPECT          prompts/get; a message text must contain EXPECT
    read-resource URI EXPECT                  resources/read; a text content must contain EXPECT

Options:
    --timeout SECONDS   overall deadline (default 60)
    --mode auto|legacy  SDK 2.x negotiation (default auto); ignored by SDK 1.x
    --no-terminate      do not DELETE the session at close (both SDKs DELETE by default)

Output: informational lines on stdout (`protocol=...`, `server=...`, `tools=...`,
`text=...`), then one final line `OK <details>`; exit 0. Any failure: `FAIL: <reason>` on
stderr, exit 1. Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import warnings
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio

MCP_VERSION = importlib.metadata.version("mcp")
MCP_MAJOR = int(MCP_VERSION.split(".")[0])
SDK = f"python-mcp/{MCP_VERSION}"

warnings.simplefilter("ignore", DeprecationWarning)


class Failure(Exception):
    pass


def out(line: str) -> None:
    print(line, flush=True)


def short(text: str, n: int = 200) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= n else text[:n] + "..."


# --------------------------------------------------------------------------------------------
# A thin facade over the two SDK generations: connect() yields a Conn with the same methods.
# --------------------------------------------------------------------------------------------


class Conn:
    protocol: str
    server_name: str
    negotiation: str

    async def list_tools(self) -> list[Any]: ...
    async def call_tool(self, name: str, args: dict[str, Any], progress=None) -> Any: ...
    async def get_prompt(self, name: str, args: dict[str, str]) -> Any: ...
    async def read_resource(self, uri: str) -> Any: ...


class Conn1(Conn):
    def __init__(self, session: Any, init: Any) -> None:
        self.s = session
        self.protocol = str(init.protocolVersion)
        self.server_name = init.serverInfo.name
        self.negotiation = "initialize"

    async def list_tools(self) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        while True:
            res = await self.s.list_tools(cursor=cursor) if cursor else await self.s.list_tools()
            tools.extend(res.tools)
            cursor = res.nextCursor
            if not cursor:
                return tools

    async def call_tool(self, name: str, args: dict[str, Any], progress=None) -> Any:
        return await self.s.call_tool(name, args, progress_callback=progress)

    async def get_prompt(self, name: str, args: dict[str, str]) -> Any:
        return await self.s.get_prompt(name, args)

    async def read_resource(self, uri: str) -> Any:
        return await self.s.read_resource(uri)


class Conn2(Conn):
    def __init__(self, client: Any) -> None:
        self.c = client
        self.protocol = str(client.protocol_version)
        info = client.server_info
        self.server_name = info.name if info is not None else "?"
        self.negotiation = "initialize" if client.session.initialize_result is not None else "discover"

    async def list_tools(self) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        while True:
            res = await self.c.list_tools(cursor=cursor)
            tools.extend(res.tools)
            cursor = res.next_cursor
            if not cursor:
                return tools

    async def call_tool(self, name: str, args: dict[str, Any], progress=None) -> Any:
        return await self.c.call_tool(name, args, progress_callback=progress)

    async def get_prompt(self, name: str, args: dict[str, str]) -> Any:
        return await self.c.get_prompt(name, args)

    async def read_resource(self, uri: str) -> Any:
        return await self.c.read_resource(uri)


@asynccontextmanager
async def connect(url: str, opts: argparse.Namespace) -> AsyncIterator[Conn]:
    terminate = not opts.no_terminate
    if MCP_MAJOR < 2:
        from mcp import ClientSession
        from mcp.client import streamable_http as sh

        if hasattr(sh, "streamablehttp_client"):
            transport = sh.streamablehttp_client(url, terminate_on_close=terminate)
        else:  # pragma: no cover - very old/new 1.x
            transport = sh.streamable_http_client(url, terminate_on_close=terminate)
        async with transport as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                yield Conn1(session, init)
    else:
        from mcp.client import Client
        from mcp.client.streamable_http import streamable_http_client

        transport = streamable_http_client(url, terminate_on_close=terminate)
        async with Client(transport, mode=opts.mode) as client:
            yield Conn2(client)


def announce(conn: Conn) -> None:
    out(f"sdk={SDK}")
    out(f"negotiation={conn.negotiation}")
    out(f"protocol={conn.protocol}")
    out(f"server={conn.server_name}")


# --------------------------------------------------------------------------------------------
# Result helpers (field names differ: isError/is_error, camelCase/snake_case)
# --------------------------------------------------------------------------------------------


def content_texts(items: Any) -> list[str]:
    texts = []
    for item in items or []:
        text = getattr(item, "text", None)
        if isinstance(text, str):
            texts.append(text)
        res = getattr(item, "resource", None)  # embedded resource
        if res is not None and isinstance(getattr(res, "text", None), str):
            texts.append(res.text)
    return texts


def tool_text(result: Any) -> str:
    is_error = getattr(result, "isError", None)
    if is_error is None:
        is_error = getattr(result, "is_error", False)
    text = "\n".join(content_texts(result.content))
    if is_error:
        raise Failure(f"tool returned isError=true: {short(text, 500)}")
    return text


def expect_in(text: str, expect: str, what: str) -> None:
    if expect not in text:
        raise Failure(f"{what}: expected substring {expect!r} not found in {short(text, 500)!r}")


def parse_json_args(raw: str) -> dict[str, Any]:
    try:
        val = json.loads(raw)
    except json.JSONDecodeError as e:
        raise Failure(f"JSON_ARGS is not JSON: {e}") from None
    if not isinstance(val, dict):
        raise Failure("JSON_ARGS must be a JSON object")
    return val


def need(args: list[str], n: int, usage: str) -> None:
    if len(args) != n:
        print(f"usage: ... {usage}", file=sys.stderr)
        sys.exit(2)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


async def sc_list_and_call(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 3, "list-and-call TOOL JSON_ARGS EXPECT")
    tool, jargs, expect = args[0], parse_json_args(args[1]), args[2]
    async with connect(url, opts) as conn:
        announce(conn)
        names = [t.name for t in await conn.list_tools()]
        out(f"tools={','.join(names)}")
        if tool not in names:
            raise Failure(f"tool {tool!r} not in tools/list")
        text = tool_text(await conn.call_tool(tool, jargs))
        out(f"text={short(text)}")
        expect_in(text, expect, f"tools/call {tool}")
        return f"sdk={SDK} negotiation={conn.negotiation} protocol={conn.protocol} server={conn.server_name} tools={len(names)} tool={tool}"


async def sc_list_tools(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    async with connect(url, opts) as conn:
        announce(conn)
        tools = await conn.list_tools()
        names = [t.name for t in tools]
        out(f"tools={','.join(names)}")
        for t in tools:
            schema = getattr(t, "inputSchema", None)
            if schema is None:
                schema = getattr(t, "input_schema", None)
            if not schema:
                raise Failure(f"tool {t.name!r} has no inputSchema")
        missing = [n for n in args if n not in names]
        if missing:
            raise Failure(f"missing tools: {missing}")
        return f"sdk={SDK} negotiation={conn.negotiation} protocol={conn.protocol} server={conn.server_name} tools={len(names)}"


async def sc_call_concurrent(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 4, "call-concurrent N TOOL JSON_ARGS EXPECT")
    n, tool, jargs, expect = int(args[0]), args[1], parse_json_args(args[2]), args[3]
    async with connect(url, opts) as conn:
        announce(conn)
        texts: list[str | None] = [None] * n
        errors: list[str] = []

        async def one(i: int) -> None:
            try:
                texts[i] = tool_text(await conn.call_tool(tool, jargs))
            except Exception as e:  # collect, report all below
                errors.append(f"call {i}: {describe(e)}")

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        if errors:
            raise Failure(f"{len(errors)}/{n} calls failed: {errors[:3]}")
        for i, t in enumerate(texts):
            expect_in(t or "", expect, f"call {i}")
        out(f"text={short(texts[0] or '')}")
        return f"sdk={SDK} protocol={conn.protocol} server={conn.server_name} calls={n} tool={tool}"


async def sc_call_progress(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 3, "call-progress TOOL JSON_ARGS EXPECT")
    tool, jargs, expect = args[0], parse_json_args(args[1]), args[2]
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        out(f"progress={progress}/{total}")

    async with connect(url, opts) as conn:
        announce(conn)
        text = tool_text(await conn.call_tool(tool, jargs, progress=on_progress))
        out(f"text={short(text)}")
        expect_in(text, expect, f"tools/call {tool}")
        if not seen:
            raise Failure("no progress notification arrived")
        return f"sdk={SDK} protocol={conn.protocol} server={conn.server_name} tool={tool} progress={len(seen)}"


async def sc_sessions(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 4, "sessions N TOOL JSON_ARGS EXPECT")
    n, tool, jargs, expect = int(args[0]), args[1], parse_json_args(args[2]), args[3]
    protocol = server = "?"
    for i in range(n):
        async with connect(url, opts) as conn:
            if i == 0:
                announce(conn)
            protocol, server = conn.protocol, conn.server_name
            text = tool_text(await conn.call_tool(tool, jargs))
            expect_in(text, expect, f"session {i}")
    return f"sdk={SDK} protocol={protocol} server={server} sessions={n} tool={tool}"


async def sc_get_prompt(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 3, "get-prompt NAME JSON_ARGS EXPECT")
    name, jargs, expect = args[0], parse_json_args(args[1]), args[2]
    async with connect(url, opts) as conn:
        announce(conn)
        res = await conn.get_prompt(name, {k: str(v) for k, v in jargs.items()})
        text = "\n".join(content_texts([m.content for m in res.messages]))
        out(f"text={short(text)}")
        expect_in(text, expect, f"prompts/get {name}")
        return f"sdk={SDK} protocol={conn.protocol} server={conn.server_name} prompt={name}"


async def sc_read_resource(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 2, "read-resource URI EXPECT")
    uri, expect = args[0], args[1]
    async with connect(url, opts) as conn:
        announce(conn)
        res = await conn.read_resource(uri)
        text = "\n".join(c.text for c in res.contents if isinstance(getattr(c, "text", None), str))
        out(f"text={short(text)}")
        expect_in(text, expect, f"resources/read {uri}")
        return f"sdk={SDK} protocol={conn.protocol} server={conn.server_name} uri={uri}"


SCENARIOS = {
    "list-and-call": sc_list_and_call,
    "list-tools": sc_list_tools,
    "call-concurrent": sc_call_concurrent,
    "call-progress": sc_call_progress,
    "sessions": sc_sessions,
    "get-prompt": sc_get_prompt,
    "read-resource": sc_read_resource,
}


def describe(exc: BaseException) -> str:
    """One line per leaf exception (task groups wrap errors in ExceptionGroups)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    if isinstance(exc, Failure):
        return str(exc)
    err = getattr(exc, "error", None)  # McpError / MCPError carry ErrorData
    code = getattr(err, "code", None)
    msg = f"{type(exc).__name__}: {exc}"
    if code is not None:
        msg += f" (code {code})"
    return msg


async def main_async(opts: argparse.Namespace) -> str:
    fn = SCENARIOS[opts.scenario]
    with anyio.fail_after(opts.timeout):
        return await fn(opts.url, opts, opts.args)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--mode", choices=["auto", "legacy"], default="auto")
    p.add_argument("--no-terminate", action="store_true")
    p.add_argument("url")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("args", nargs=argparse.REMAINDER)
    opts = p.parse_args()
    try:
        details = anyio.run(main_async, opts)
    except TimeoutError:
        print(f"FAIL: timed out after {opts.timeout:g}s ({SDK})", file=sys.stderr)
        return 1
    except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - report every failure as exit 1
        print(f"FAIL: {describe(e)} ({SDK})", file=sys.stderr)
        return 1
    out(f"OK {details}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
