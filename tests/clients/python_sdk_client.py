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
    list-tools [NAME...]                      list tools (all pages, printed as tools_json=); each
                                              NAME must be present
    call-concurrent N TOOL JSON_ARGS EXPECT   N concurrent calls in one session, each must match
    call-progress TOOL JSON_ARGS EXPECT       call with a progress token; >= 1 progress
                                              notification must arrive, text must contain EXPECT
    sessions N TOOL JSON_ARGS EXPECT          N sequential sessions, each: connect, call, close
    get-prompt NAME JSON_ARGS EXPECT          prompts/get; a message text must contain EXPECT
    read-resource URI EXPECT                  resources/read; a text content must contain EXPECT

Scenarios for the bridge's MCP features (against tests/fixtures/fixture_server.py):
    progress-own STEPS TAG BARRIER_NAME BARRIER_COUNT
                                              call the fixture's `progress` tool (waiting in the
                                              fixture until BARRIER_COUNT such calls run), with a
                                              progress callback: exactly STEPS notifications, in
                                              order, each carrying TAG (no one else's)
    server-request sampling|elicitation|roots [TAG]
                                              connect with sampling, elicitation and roots
                                              callbacks; call `sample` / `elicit` / `list_roots`:
                                              the child must get this client's answer (naming TAG),
                                              under the id it used
    list-changed                              tools/resources/prompts list_changed notifications
                                              emitted by the child reach the message handler
                                              (the GET stream)
    logging                                   logging/setLevel reaches the child; a log message
                                              sent during a call and one sent with no call in
                                              flight both reach the logging callback
    subscribe URI                             resources/subscribe URI; `touch URI` must bring a
                                              notifications/resources/updated for URI; unsubscribe
    cancel-call                               start a 30 s `sleep`, cancel it (SDK 1.x: sends
                                              notifications/cancelled itself and expects the call
                                              to end with an error; 2.x: cancels the task): the
                                              child must get notifications/cancelled with ITS id

    `server-request`, `logging`, `cancel-call`, `call-progress` also run on a 2026-07-28 connection
    (SDK 2.x, --mode auto): server requests come back as InputRequiredResult (MRTR) and the SDK
    runs the callbacks and retries; `logging` then opts in per request (_meta logLevel) instead of
    logging/setLevel and checks only the log sent during a call (2026 has no other channel).

Scenarios for the 2026-07-28 revision (SDK 2.x, --mode auto; any other connection fails at once):
    rounds twice|both [TAG]                   call `ask_twice` (the child asks elicitation/create,
                                              and once answered, sampling/createMessage) or
                                              `ask_both` (both at once): each callback must run
                                              exactly once and the child get exactly this client's
                                              two answers (naming TAG), under ids it used
    listen-changed                            subscriptions/listen for tools, prompts and resources
                                              list_changed; `notify` each: its event must arrive
                                              within 5 s
    listen-filter                             a tools-only and a prompts-only listener; prompts
                                              list_changed must reach only the prompts one, tools
                                              list_changed only the tools one (also checked on the
                                              wire, by the subscriptionId in _meta)
    listen-subscribe URI [OTHER_URI]          subscriptions/listen for resource URI (and a witness
                                              listener for OTHER_URI); `touch URI` must bring its
                                              update within 5 s; `touch OTHER_URI` must not reach
                                              the URI listener

Options:
    --timeout SECONDS      overall deadline (default 60)
    --mode auto|legacy     SDK 2.x negotiation (default auto); ignored by SDK 1.x
    --no-terminate         do not DELETE the session at close (both SDKs DELETE by default)
    --transport streamable|sse
                           streamable (default): URL is the Streamable HTTP endpoint;
                           sse: URL is the legacy 2024-11-05 HTTP+SSE endpoint (GET URL, then POST
                           to the `endpoint` it announces), via mcp.client.sse.sse_client

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
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator

import anyio

MCP_VERSION = importlib.metadata.version("mcp")
MCP_MAJOR = int(MCP_VERSION.split(".")[0])
SDK = f"python-mcp/{MCP_VERSION}"

warnings.simplefilter("ignore")  # DeprecationWarning, and 2.x's MCPDeprecationWarning for 2025-era methods


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
    async def set_logging_level(self, level: str) -> Any: ...
    async def subscribe(self, uri: str) -> Any: ...
    async def unsubscribe(self, uri: str) -> Any: ...


class Callbacks:
    """What a scenario wants the client to declare and handle (None: not declared)."""

    def __init__(self) -> None:
        self.sampling = None
        self.elicitation = None
        self.roots = None
        self.logging = None
        self.messages = None
        self.log_level = None  # SDK 2.x: the 2026-07-28 per-request log opt-in (no effect before)

    def session_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.sampling is not None:
            kw["sampling_callback"] = self.sampling
        if self.elicitation is not None:
            kw["elicitation_callback"] = self.elicitation
        if self.roots is not None:
            kw["list_roots_callback"] = self.roots
        if self.logging is not None:
            kw["logging_callback"] = self.logging
        if self.messages is not None:
            kw["message_handler"] = self.messages
        if self.log_level is not None and MCP_MAJOR >= 2:
            kw["log_level"] = self.log_level
        return kw


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

    async def set_logging_level(self, level: str) -> Any:
        return await self.s.set_logging_level(level)

    async def subscribe(self, uri: str) -> Any:
        from pydantic import AnyUrl

        return await self.s.subscribe_resource(AnyUrl(uri))

    async def unsubscribe(self, uri: str) -> Any:
        from pydantic import AnyUrl

        return await self.s.unsubscribe_resource(AnyUrl(uri))


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

    async def set_logging_level(self, level: str) -> Any:
        return await self.c.set_logging_level(level)

    async def subscribe(self, uri: str) -> Any:
        return await self.c.subscribe_resource(uri)

    async def unsubscribe(self, uri: str) -> Any:
        return await self.c.unsubscribe_resource(uri)


@asynccontextmanager
async def connect(url: str, opts: argparse.Namespace, callbacks: Callbacks | None = None) -> AsyncIterator[Conn]:
    terminate = not opts.no_terminate
    kw = (callbacks or Callbacks()).session_kwargs()
    if MCP_MAJOR < 2:
        from mcp import ClientSession

        if opts.transport == "sse":
            from mcp.client.sse import sse_client

            transport = sse_client(url)
        else:
            from mcp.client import streamable_http as sh

            if hasattr(sh, "streamablehttp_client"):
                transport = sh.streamablehttp_client(url, terminate_on_close=terminate)
            else:  # pragma: no cover - very old/new 1.x
                transport = sh.streamable_http_client(url, terminate_on_close=terminate)
        async with transport as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write, **kw) as session:
                init = await session.initialize()
                yield Conn1(session, init)
    else:
        from mcp.client import Client

        if opts.transport == "sse":
            from mcp.client.sse import sse_client

            transport = sse_client(url)
        else:
            from mcp.client.streamable_http import streamable_http_client

            transport = streamable_http_client(url, terminate_on_close=terminate)
        async with Client(transport, mode=opts.mode, **kw) as client:
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


def schema_of(tool: Any) -> Any:
    """A tool's inputSchema as the SDK kept it, as plain JSON (SDK 2.x may hold a model)."""
    schema = getattr(tool, "inputSchema", None)
    if schema is None:
        schema = getattr(tool, "input_schema", None)
    if schema is not None and not isinstance(schema, dict):
        schema = schema.model_dump(by_alias=True, exclude_none=True)
    return schema


async def sc_list_tools(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    async with connect(url, opts) as conn:
        announce(conn)
        tools = await conn.list_tools()
        names = [t.name for t in tools]
        out(f"tools={','.join(names)}")
        listed = [{"name": t.name, "inputSchema": schema_of(t)} for t in tools]
        out("tools_json=" + json.dumps(listed, separators=(",", ":")))
        for t in listed:
            if not t["inputSchema"]:
                raise Failure(f"tool {t['name']!r} has no inputSchema")
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


# --------------------------------------------------------------------------------------------
# Scenarios for the bridge's MCP features (fixture server tools)
# --------------------------------------------------------------------------------------------

try:  # SDK 2.x keeps the types in their own package
    import mcp_types as mtypes
except ImportError:  # SDK 1.x
    import mcp.types as mtypes  # type: ignore[no-redef]


def notification_of(message: Any) -> tuple[str | None, Any]:
    """(method, params) of a server notification as either SDK hands it to message_handler."""
    inner = getattr(message, "root", message)  # 1.x wraps it in ServerNotification(root=...)
    return getattr(inner, "method", None), getattr(inner, "params", None)


async def wait_until(predicate, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        while not predicate():
            await anyio.sleep(0.02)
        return True
    return False


async def tool_json(conn: Conn, tool: str, args: dict[str, Any] | None = None) -> Any:
    return json.loads(tool_text(await conn.call_tool(tool, args or {})))


async def sc_progress_own(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 4, "progress-own STEPS TAG BARRIER_NAME BARRIER_COUNT")
    steps, tag, barrier_name, barrier = int(args[0]), args[1], args[2], int(args[3])
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        out(f"progress={progress}/{total} message={message}")

    async with connect(url, opts) as conn:
        announce(conn)
        result = await conn.call_tool(
            "progress",
            {"steps": steps, "ms": 100, "message": tag, "barrier": barrier, "barrier_name": barrier_name},
            progress=on_progress,
        )
        text = tool_text(result)
        out(f"text={short(text)}")
        foreign = [m for (_, _, m) in seen if tag not in (m or "")]
        if foreign:
            raise Failure(f"got another session's progress notifications: {foreign} (all: {seen})")
        if [p for (p, _, _) in seen] != list(range(1, steps + 1)):
            raise Failure(f"expected exactly progress 1..{steps} in order, got {seen}")
        return f"sdk={SDK} protocol={conn.protocol} progress={len(seen)} tag={tag} child_token={json.loads(text)['progressToken']}"


async def sc_server_request(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    if len(args) not in (1, 2):
        need(args, 1, "server-request sampling|elicitation|roots [TAG]")
    kind = args[0]
    tools = {"sampling": "sample", "elicitation": "elicit", "roots": "list_roots"}
    if kind not in tools:
        print(f"usage: unknown kind {kind!r}", file=sys.stderr)
        sys.exit(2)
    tag = args[1] if len(args) > 1 else ""
    answer = f"answered by {SDK} {tag}".strip()
    root_uri = f"file:///tmp/mcp-bridge-test-root/{tag}".rstrip("/")
    calls: list[str] = []

    async def sampling(context: Any, params: Any) -> Any:
        calls.append("sampling")
        return mtypes.CreateMessageResult.model_validate(
            {"role": "assistant", "content": {"type": "text", "text": answer}, "model": "test-model",
             "stopReason": "endTurn"}
        )

    async def elicitation(context: Any, params: Any) -> Any:
        calls.append("elicitation")
        return mtypes.ElicitResult.model_validate({"action": "accept", "content": {"name": answer}})

    async def roots(context: Any) -> Any:
        calls.append("roots")
        return mtypes.ListRootsResult.model_validate({"roots": [{"uri": root_uri, "name": answer}]})

    cb = Callbacks()
    cb.sampling, cb.elicitation, cb.roots = sampling, elicitation, roots
    async with connect(url, opts, cb) as conn:
        announce(conn)
        response = await tool_json(conn, tools[kind])
        out(f"child_got={short(json.dumps(response), 400)}")
        if calls != [kind]:
            raise Failure(f"expected the {kind} callback to run once, ran: {calls}; the child got {response}")
        if "result" not in response:
            raise Failure(f"the child got no result for its {kind} request: {response}")
        if not str(response.get("id", "")).startswith("fixture-"):
            raise Failure(f"the child got the answer under an id it never used: {response}")
        got = response["result"]
        if kind == "sampling":
            ok = (got.get("content") or {}).get("text") == answer
        elif kind == "elicitation":
            ok = got.get("action") == "accept" and (got.get("content") or {}).get("name") == answer
        else:
            ok = [r.get("uri") for r in got.get("roots", [])] == [root_uri]
        if not ok:
            raise Failure(f"the child got a different {kind} answer than this client's: {got}")
        return f"sdk={SDK} protocol={conn.protocol} kind={kind} child_request_id={response['id']}"


async def sc_everything_requests(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    """server-everything's own tools that ask the client: sampling, elicitation, roots."""
    need(args, 1, "everything-requests TAG")
    tag = args[0]
    answer = f"answered by {SDK} {tag}"
    root_uri = f"file:///tmp/everything-root/{tag}"
    calls: list[str] = []

    async def sampling(context: Any, params: Any) -> Any:
        calls.append("sampling")
        return mtypes.CreateMessageResult.model_validate(
            {"role": "assistant", "content": {"type": "text", "text": answer}, "model": "test-model",
             "stopReason": "endTurn"}
        )

    async def elicitation(context: Any, params: Any) -> Any:
        calls.append("elicitation")
        return mtypes.ElicitResult.model_validate({"action": "decline"})

    async def roots(context: Any) -> Any:
        calls.append("roots")
        return mtypes.ListRootsResult.model_validate({"roots": [{"uri": root_uri, "name": tag}]})

    cb = Callbacks()
    cb.sampling, cb.elicitation, cb.roots = sampling, elicitation, roots
    async with connect(url, opts, cb) as conn:
        announce(conn)
        sampled = tool_text(await conn.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5}))
        expect_in(sampled, answer, "trigger-sampling-request")
        elicited = tool_text(await conn.call_tool("trigger-elicitation-request", {}))
        expect_in(elicited.lower(), "decline", "trigger-elicitation-request")
        listed = tool_text(await conn.call_tool("get-roots-list", {}))
        expect_in(listed, root_uri, "get-roots-list")
        if sorted(calls) != ["elicitation", "roots", "sampling"]:
            raise Failure(f"expected each callback to run once, ran: {calls}")
        return f"sdk={SDK} protocol={conn.protocol} asked={','.join(calls)} tag={tag}"


async def sc_list_changed(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 0, "list-changed")
    seen: list[str] = []

    async def messages(message: Any) -> None:
        method, _ = notification_of(message)
        if method:
            seen.append(method)
            out(f"notification={method}")

    cb = Callbacks()
    cb.messages = messages
    async with connect(url, opts, cb) as conn:
        announce(conn)
        kinds = ["tools", "resources", "prompts"]
        for kind in kinds:
            method = f"notifications/{kind}/list_changed"
            # The SDK opens its GET stream in the background after initialize: trigger until it
            # is there and the notification arrives (at most 10 tries).
            for _ in range(10):
                await conn.call_tool("notify", {"method": method})
                if await wait_until(lambda: method in seen, 1.0):
                    break
            else:
                raise Failure(f"{method} never reached the client (seen: {seen})")
        return f"sdk={SDK} protocol={conn.protocol} notifications={','.join(sorted(set(seen)))}"


async def sc_logging(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 0, "logging")
    logs: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params.data)
        out(f"log={params.level}:{params.data}")

    cb = Callbacks()
    cb.logging = on_log
    cb.log_level = "debug"
    async with connect(url, opts, cb) as conn:
        announce(conn)
        if conn.protocol == MODERN:
            # 2026-07-28: no logging/setLevel; every request carries _meta logLevel=debug, and a
            # log reaches the client only on the stream of the request it was sent during.
            during = f"during a call ({SDK})"
            await conn.call_tool("log", {"level": "warning", "data": during, "logger": "fixture"})
            if not await wait_until(lambda: during in logs, 5):
                raise Failure(f"a log message sent during the call never arrived (got {logs})")
            return f"sdk={SDK} protocol={conn.protocol} opt_in=_meta logs={len(logs)} idle=n/a"
        await conn.set_logging_level("debug")
        levels = await tool_json(conn, "log_levels_seen")
        if "debug" not in levels:
            raise Failure(f"logging/setLevel did not reach the child: it saw levels {levels}")
        during = f"during a call ({SDK})"
        await conn.call_tool("log", {"level": "warning", "data": during, "logger": "fixture"})
        if not await wait_until(lambda: during in logs, 5):
            raise Failure(f"a log message sent during the call never arrived (got {logs})")
        idle = f"with no call in flight ({SDK})"
        for _ in range(6):
            await conn.call_tool("notify", {"method": "notifications/message", "delay_ms": 200,
                                            "params": {"level": "error", "data": idle}})
            if await wait_until(lambda: idle in logs, 1.5):
                break
        else:
            raise Failure(f"a log message sent with no call in flight never arrived (got {logs})")
        return f"sdk={SDK} protocol={conn.protocol} levels={levels} logs={len(logs)}"


async def sc_subscribe(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 1, "subscribe URI")
    uri = args[0]
    updates: list[str] = []

    async def messages(message: Any) -> None:
        method, params = notification_of(message)
        if method == "notifications/resources/updated":
            updates.append(str(params.uri))
            out(f"updated={params.uri}")

    cb = Callbacks()
    cb.messages = messages
    async with connect(url, opts, cb) as conn:
        announce(conn)
        await conn.subscribe(uri)
        for _ in range(10):
            await conn.call_tool("touch", {"uri": uri})
            if await wait_until(lambda: uri in updates, 1.0):
                break
        else:
            raise Failure(f"no notifications/resources/updated for {uri} arrived (got {updates})")
        await conn.unsubscribe(uri)
        return f"sdk={SDK} protocol={conn.protocol} uri={uri} updates={len(updates)}"


async def sc_cancel_call(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 0, "cancel-call")
    import secrets

    tag = f"cancel-me-{secrets.token_hex(4)}"
    outcome: list[str] = []
    async with connect(url, opts) as conn:
        announce(conn)
        scope = anyio.CancelScope()
        sdk_id: list[Any] = []

        async def the_call() -> None:
            with scope:
                if isinstance(conn, Conn1):
                    sdk_id.append(conn.s._request_id)  # the id the SDK is about to use
                try:
                    await conn.call_tool("sleep", {"ms": 30000, "message": tag})
                    outcome.append("answered")
                except Exception as e:  # noqa: BLE001
                    outcome.append(f"error: {describe(e)}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(the_call)
            child_id = None
            with anyio.move_on_after(10):
                while child_id is None:
                    await anyio.sleep(0.1)
                    seen = await tool_json(conn, "requests_seen")
                    for r in seen:
                        if (r.get("arguments") or {}).get("message") == tag:
                            child_id = r["id"]
            if child_id is None:
                raise Failure("the sleep call never reached the child")
            out(f"child_id={child_id}")
            if isinstance(conn, Conn1):
                # SDK 1.x never sends notifications/cancelled by itself: send it as an app would.
                await conn.s.send_notification(
                    mtypes.ClientNotification(
                        mtypes.CancelledNotification(
                            params=mtypes.CancelledNotificationParams(requestId=sdk_id[0], reason="test")
                        )
                    )
                )
                if not await wait_until(lambda: bool(outcome), 5):
                    scope.cancel()
                    raise Failure("the cancelled call's pending response did not end within 5 s")
                if not outcome[0].startswith("error"):
                    raise Failure(f"the cancelled call should end with a JSON-RPC error, got: {outcome}")
                out(f"call={outcome[0]}")
            else:
                scope.cancel()  # SDK 2.x sends notifications/cancelled itself
        cancelled: list[Any] = []
        for _ in range(50):
            cancelled = await tool_json(conn, "cancelled_seen")
            if child_id in cancelled:
                break
            await anyio.sleep(0.1)
        else:
            raise Failure(
                f"the child never got notifications/cancelled for its id {child_id!r} "
                f"(it got requestIds {cancelled})"
            )
        return f"sdk={SDK} protocol={conn.protocol} child_id={child_id} cancelled={cancelled}"


# --------------------------------------------------------------------------------------------
# Scenarios for the 2026-07-28 revision: MRTR (InputRequiredResult) and subscriptions/listen
# --------------------------------------------------------------------------------------------

MODERN = "2026-07-28"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"


def need_modern(conn: Conn, opts: argparse.Namespace, scenario: str) -> None:
    if not isinstance(conn, Conn2):
        raise Failure(f"{scenario} needs the Python SDK 2.x on a {MODERN} connection ({SDK} speaks {conn.protocol})")
    if conn.protocol != MODERN:
        raise Failure(
            f"{scenario} needs a {MODERN} connection; negotiated {conn.protocol} via "
            f"{conn.negotiation} (--mode {opts.mode})"
        )


class Wire:
    """Every server notification the SDK hands message_handler: (method, subscriptionId, uri).

    SDK 2.x tees listen events there too, with their _meta, so a notification the server sent
    on a stream that did not ask for it shows here even where the SDK would drop it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, str | None]] = []

    async def __call__(self, message: Any) -> None:
        method, params = notification_of(message)
        if not method:
            return
        meta = getattr(params, "meta", None)
        sub = meta.get(SUBSCRIPTION_ID) if isinstance(meta, dict) else None
        uri = getattr(params, "uri", None)
        self.seen.append((method, sub, None if uri is None else str(uri)))

    def stamped(self, subscription_id: Any) -> list[tuple[str, str | None]]:
        return [(m, u) for (m, sub, u) in self.seen if sub == subscription_id]


def event_kind(event: Any) -> str:
    """tools | prompts | resources | updated:URI, from a mcp.client.subscriptions event."""
    name = type(event).__name__
    if name == "ResourceUpdated":
        return f"updated:{event.uri}"
    return {"ToolsListChanged": "tools", "PromptsListChanged": "prompts",
            "ResourcesListChanged": "resources"}.get(name, name)


class Listener:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sub: Any = None
        self.kinds: list[str] = []
        self.ended: str | None = None

    def got(self, kind: str) -> bool:
        return kind in self.kinds

    def honored(self) -> dict[str, Any]:
        return self.sub.honored.model_dump(by_alias=True, exclude_none=True)


@asynccontextmanager
async def listening(conn: Conn, name: str, **wanted: Any) -> AsyncIterator[Listener]:
    """Open `client.listen(**wanted)` (10 s for its acknowledgment) and collect its events."""
    assert isinstance(conn, Conn2)
    ev = Listener(name)
    async with AsyncExitStack() as stack:
        with anyio.move_on_after(10):
            ev.sub = await stack.enter_async_context(conn.c.listen(**wanted))
        if ev.sub is None:
            raise Failure(f"subscriptions/listen ({name}) was not acknowledged within 10 s")
        out(f"listen[{name}]=id:{ev.sub.subscription_id} honored:{json.dumps(ev.honored(), separators=(',', ':'))}")

        async def pump() -> None:
            try:
                async for event in ev.sub:
                    ev.kinds.append(event_kind(event))
                    out(f"event[{name}]={event_kind(event)}")
                ev.ended = "closed by the server"
            except Exception as e:  # noqa: BLE001 - SubscriptionLost and the like: report, do not crash
                ev.ended = f"lost: {describe(e)}"
            if ev.ended:
                out(f"listen[{name}] ended: {ev.ended}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            try:
                yield ev
            finally:
                tg.cancel_scope.cancel()


def check_honored(ev: Listener, field: str, value: Any = True) -> None:
    got = ev.honored().get(field)
    ok = value in (got or []) if isinstance(value, str) else got is True
    if not ok:
        raise Failure(f"the server did not honor {field}={value!r} on listener {ev.name!r}: it acknowledged {ev.honored()}")


async def wait_event(ev: Listener, kind: str, wire: Wire, what: str, seconds: float = 5) -> None:
    if not await wait_until(lambda: ev.got(kind), seconds):
        ended = f"; the stream ended: {ev.ended}" if ev.ended else ""
        raise Failure(
            f"{what}: no {kind} event on listener {ev.name!r} within {seconds:g} s "
            f"(its events: {ev.kinds}; notifications on the wire: {wire.seen}){ended}"
        )


def must_not_have(ev: Listener, kind: str, method: str, wire: Wire, uri: str | None = None) -> None:
    on_wire = [(m, u) for (m, u) in wire.stamped(ev.sub.subscription_id) if m == method and (uri is None or u == uri)]
    if ev.got(kind) or on_wire:
        raise Failure(
            f"listener {ev.name!r} (acknowledged {ev.honored()}) got {kind} it did not ask for "
            f"(its events: {ev.kinds}; stamped with its id on the wire: {on_wire})"
        )


async def sc_rounds(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    if len(args) not in (1, 2):
        need(args, 1, "rounds twice|both [TAG]")
    kind = args[0]
    tools = {"twice": "ask_twice", "both": "ask_both"}
    if kind not in tools:
        print(f"usage: unknown kind {kind!r}", file=sys.stderr)
        sys.exit(2)
    tag = args[1] if len(args) > 1 else ""
    sampled = f"sampling answered by {SDK} {tag}".strip()
    elicited = f"elicitation answered by {SDK} {tag}".strip()
    calls: list[str] = []
    keys: list[str] = []

    async def sampling(context: Any, params: Any) -> Any:
        calls.append("sampling")
        keys.append(str(getattr(context, "request_id", "?")))
        return mtypes.CreateMessageResult.model_validate(
            {"role": "assistant", "content": {"type": "text", "text": sampled}, "model": "test-model",
             "stopReason": "endTurn"}
        )

    async def elicitation(context: Any, params: Any) -> Any:
        calls.append("elicitation")
        keys.append(str(getattr(context, "request_id", "?")))
        return mtypes.ElicitResult.model_validate({"action": "accept", "content": {"name": elicited}})

    async def roots(context: Any) -> Any:
        calls.append("roots")
        return mtypes.ListRootsResult.model_validate({"roots": []})

    cb = Callbacks()
    cb.sampling, cb.elicitation, cb.roots = sampling, elicitation, roots
    async with connect(url, opts, cb) as conn:
        announce(conn)
        need_modern(conn, opts, "rounds")
        assert isinstance(conn, Conn2)
        # Watch the rounds the SDK's MRTR driver sends (each one a tools/call of its own).
        session = conn.c.session
        plain_call = session.call_tool
        rounds: list[dict[str, Any]] = []

        async def watched_call(*a: Any, **kw: Any) -> Any:
            sent = {"inputResponses": sorted((kw.get("input_responses") or {}).keys()),
                    "requestState": kw.get("request_state") is not None}
            rounds.append(sent)
            res = await plain_call(*a, **kw)
            asked = getattr(res, "input_requests", None)
            if getattr(res, "result_type", None) == "input_required" or asked is not None:
                sent["inputRequired"] = {k: v.method for k, v in (asked or {}).items()}
            out(f"round={json.dumps(sent, separators=(',', ':'))}")
            return res

        session.call_tool = watched_call  # type: ignore[method-assign]
        try:
            response = await tool_json(conn, tools[kind])
        finally:
            session.call_tool = plain_call  # type: ignore[method-assign]
        out(f"child_got={short(json.dumps(response), 600)}")
        if sorted(calls) != ["elicitation", "sampling"]:
            raise Failure(
                f"expected the elicitation and sampling callbacks to run once each, ran: {calls}; "
                f"rounds sent: {rounds}; the child got {response}"
            )
        if kind == "twice" and calls != ["elicitation", "sampling"]:
            raise Failure(f"ask_twice asks elicitation first, then sampling; the callbacks ran {calls}")
        for field in ("elicitation", "sampling", "ids"):
            if field not in response:
                raise Failure(f"the child's answer has no {field!r}: {response}")
        e, smp, ids = response["elicitation"], response["sampling"], response["ids"]
        if not (e.get("action") == "accept" and (e.get("content") or {}).get("name") == elicited):
            raise Failure(f"the child got a different elicitation answer than this client's: {e}")
        if (smp.get("content") or {}).get("text") != sampled:
            raise Failure(f"the child got a different sampling answer than this client's: {smp}")
        if len(ids) != 2 or len(set(map(str, ids))) != 2 or not all(str(i).startswith("fixture-") for i in ids):
            raise Failure(f"the child's two requests should have two ids of its own, it reports {ids}")
        batches = [sorted(r["inputRequired"].values()) for r in rounds if "inputRequired" in r]
        return (f"sdk={SDK} protocol={conn.protocol} kind={kind} rounds={len(rounds)} "
                f"input_batches={json.dumps(batches, separators=(',', ':'))} input_keys={','.join(keys)} "
                f"child_request_ids={','.join(map(str, ids))}")


async def sc_listen_changed(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 0, "listen-changed")
    wire = Wire()
    cb = Callbacks()
    cb.messages = wire
    async with connect(url, opts, cb) as conn:
        announce(conn)
        need_modern(conn, opts, "listen-changed")
        async with listening(conn, "all", tools_list_changed=True, prompts_list_changed=True,
                             resources_list_changed=True) as ev:
            for field in ("toolsListChanged", "promptsListChanged", "resourcesListChanged"):
                check_honored(ev, field)
            for kind in ("tools", "prompts", "resources"):
                method = f"notifications/{kind}/list_changed"
                tool_text(await conn.call_tool("notify", {"method": method}))
                await wait_event(ev, kind, wire, f"after notify {method}")
            return f"sdk={SDK} protocol={conn.protocol} listen={ev.sub.subscription_id} events={','.join(ev.kinds)}"


async def sc_listen_filter(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    need(args, 0, "listen-filter")
    wire = Wire()
    cb = Callbacks()
    cb.messages = wire
    async with connect(url, opts, cb) as conn:
        announce(conn)
        need_modern(conn, opts, "listen-filter")
        async with listening(conn, "tools-only", tools_list_changed=True) as tools_only, \
                listening(conn, "prompts-only", prompts_list_changed=True) as prompts_only:
            check_honored(tools_only, "toolsListChanged")
            check_honored(prompts_only, "promptsListChanged")
            # The prompts listener is the witness: once it has its event, the tools-only one
            # would have had it too (give it 0.5 s more).
            tool_text(await conn.call_tool("notify", {"method": "notifications/prompts/list_changed"}))
            await wait_event(prompts_only, "prompts", wire, "after notify notifications/prompts/list_changed")
            await anyio.sleep(0.5)
            must_not_have(tools_only, "prompts", "notifications/prompts/list_changed", wire)
            tool_text(await conn.call_tool("notify", {"method": "notifications/tools/list_changed"}))
            await wait_event(tools_only, "tools", wire, "after notify notifications/tools/list_changed")
            await anyio.sleep(0.5)
            must_not_have(prompts_only, "tools", "notifications/tools/list_changed", wire)
            return (f"sdk={SDK} protocol={conn.protocol} tools_only={','.join(tools_only.kinds)} "
                    f"prompts_only={','.join(prompts_only.kinds)}")


async def sc_listen_subscribe(url: str, opts: argparse.Namespace, args: list[str]) -> str:
    if len(args) not in (1, 2):
        need(args, 1, "listen-subscribe URI [OTHER_URI]")
    import secrets

    uri = args[0]
    other = args[1] if len(args) > 1 else f"fixture://not-subscribed-{secrets.token_hex(4)}"
    if other == uri:
        raise Failure("OTHER_URI must differ from URI")
    wire = Wire()
    cb = Callbacks()
    cb.messages = wire
    async with connect(url, opts, cb) as conn:
        announce(conn)
        need_modern(conn, opts, "listen-subscribe")
        async with listening(conn, "uri", resource_subscriptions=[uri]) as mine, \
                listening(conn, "other", resource_subscriptions=[other]) as witness:
            check_honored(mine, "resourceSubscriptions", uri)
            check_honored(witness, "resourceSubscriptions", other)
            tool_text(await conn.call_tool("touch", {"uri": uri}))
            await wait_event(mine, f"updated:{uri}", wire, f"after touch {uri}")
            tool_text(await conn.call_tool("touch", {"uri": other}))
            await wait_event(witness, f"updated:{other}", wire, f"after touch {other}")
            await anyio.sleep(0.5)
            must_not_have(mine, f"updated:{other}", "notifications/resources/updated", wire, other)
            must_not_have(witness, f"updated:{uri}", "notifications/resources/updated", wire, uri)
            return f"sdk={SDK} protocol={conn.protocol} uri={uri} events={','.join(mine.kinds)} other={other}"


SCENARIOS = {
    "list-and-call": sc_list_and_call,
    "list-tools": sc_list_tools,
    "call-concurrent": sc_call_concurrent,
    "call-progress": sc_call_progress,
    "sessions": sc_sessions,
    "get-prompt": sc_get_prompt,
    "read-resource": sc_read_resource,
    "progress-own": sc_progress_own,
    "server-request": sc_server_request,
    "list-changed": sc_list_changed,
    "everything-requests": sc_everything_requests,
    "logging": sc_logging,
    "subscribe": sc_subscribe,
    "cancel-call": sc_cancel_call,
    "rounds": sc_rounds,
    "listen-changed": sc_listen_changed,
    "listen-filter": sc_listen_filter,
    "listen-subscribe": sc_listen_subscribe,
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
    p.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
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
