#!/usr/bin/env python3
"""Drive an MCP endpoint with the third-party clients people connect with, to see what each one
gets: fastmcp (its Client, default "auto" mode or "legacy"), pydantic-ai, the OpenAI Agents SDK,
langchain-mcp-adapters, and mcp-remote (a stdio proxy, driven here by the Python SDK's stdio
client). Run with the interpreter of .test-deps/third-party (fastmcp, pydantic-ai, openai-agents
on the Python SDK 2.x), or of .test-deps/py1 for langchain-mcp-adapters (it needs the SDK 1.x):

    .test-deps/third-party/bin/python tests/clients/third_party_client.py SCENARIO URL [ARGS...]

The server behind URL is @modelcontextprotocol/server-everything unless a scenario says
otherwise. Scenarios:

    race N CALLS MODE        N fastmcp clients, each with its own sampling handler, make CALLS
                             concurrent calls of trigger-sampling-request whose prompts name the
                             client; one more client, with no handler, makes CALLS calls too.
                             Reports own/total answers and every prompt a handler saw that was
                             not its client's.
    features MODE            one fastmcp client with sampling, elicitation, roots and log
                             handlers: sampling, elicitation and roots requests answered by it,
                             and (in a 2025 session) a log message from the server. Reports the
                             protocol.
    tools MODE HANDLERS      the sorted tool names a fastmcp client sees; HANDLERS is `none` or
                             `all` (sampling, elicitation with URL mode, roots).
    pid MODE                 a fastmcp client calls the fixture server's `pid` tool twice and
                             its `counter` tool twice (URL serves tests/fixtures/fixture_server.py).
    pydantic-ai              pydantic-ai's MCPServerStreamableHTTP with a sampling model: lists
                             tools, calls trigger-sampling-request.
    openai-agents            the OpenAI Agents SDK's MCPServerStreamableHttp: lists tools, calls
                             echo.
    langchain                langchain-mcp-adapters' MultiServerMCPClient: loads the tools and
                             calls echo.
    mcp-remote MCP_REMOTE PROTOCOL
                             `node MCP_REMOTE URL --transport http-only --protocol PROTOCOL`,
                             used by the Python SDK's stdio client with sampling, elicitation,
                             roots and log callbacks, as a desktop host would.
    modern CLIENT            CLIENT (fastmcp, pydantic-ai or openai-agents) with its own handlers
                             where it has them, against tests/fixtures/fixture_server.py: the
                             protocol it picked; whether sampling, elicitation and roots reached
                             the child with this client's answers; whether a tools list change
                             arrived within 5 s (a subscriptions/listen stream on the client's
                             Python SDK session in 2026-07-28, its message handler in a 2025
                             session); whether the child got notifications/cancelled for a call
                             the client gave up on, within 10 s. What the client has no API for
                             is "not offered by the client" and named in `not_offered`; a check
                             that failed is false, with what was seen in `details`.

Output: informational lines, then one final line `OK <json>`; exit 0. Failure: `FAIL: <reason>`
on stderr, exit 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

warnings.simplefilter("ignore")

TIMEOUT = 60


class Failure(Exception):
    pass


def ok(report: dict[str, Any]) -> None:
    print("OK " + json.dumps(report, sort_keys=True), flush=True)


def texts(result: Any) -> str:
    """Every text content of a tool result, joined."""
    content = getattr(result, "content", None) or []
    return "\n".join(getattr(item, "text", "") or "" for item in content)


async def wait_for_a_log(logs: list[str]) -> None:
    """Waits up to 10 s for the server's log messages to reach the client."""
    for _ in range(100):
        if logs:
            return
        await asyncio.sleep(0.1)
    raise Failure("no log message from the server within 10 s")


# ---- fastmcp ------------------------------------------------------------------------------

def fastmcp_client(url: str, mode: str, **handlers: Any) -> Any:
    from fastmcp import Client

    return Client(url, mode=mode, timeout=TIMEOUT, **handlers)


async def sc_race(url: str, n: str, calls: str, mode: str) -> None:
    clients, calls_each = int(n), int(calls)
    foreign: list[str] = []
    protocols: set[str] = set()

    async def one(index: int) -> tuple[int, int]:
        me = f"client-{index}"

        async def sampling(messages: Any, params: Any, context: Any) -> str:
            for message in messages:
                text = getattr(message.content, "text", "")
                if f"from {me} " not in text:
                    foreign.append(f"{me} was asked: {text}")
            return f"answer-of-{me}"

        own = 0
        async with fastmcp_client(url, mode, sampling_handler=sampling) as client:
            protocols.add(str(client.protocol_version))

            async def call(k: int) -> bool:
                result = await client.call_tool(
                    "trigger-sampling-request",
                    {"prompt": f"from {me} call {k}: my salary is {index}23", "maxTokens": 5},
                )
                text = texts(result)
                return f"answer-of-{me}" in text and text.count("answer-of-") == 1

            answers = await asyncio.gather(*(call(k) for k in range(calls_each)))
            own = sum(answers)
        return own, calls_each

    async def tools_only() -> list[str]:
        outcomes = []
        async with fastmcp_client(url, mode) as client:

            async def call(k: int) -> str:
                try:
                    result = await client.call_tool(
                        "trigger-sampling-request",
                        {"prompt": f"from tools-only call {k}: my salary is 123", "maxTokens": 5},
                        raise_on_error=False,
                    )
                    return texts(result)
                except Exception as e:  # an error is the right outcome here
                    return f"error: {e}"

            outcomes = await asyncio.gather(*(call(k) for k in range(calls_each)))
        return list(outcomes)

    results = await asyncio.gather(*(one(i) for i in range(clients)), tools_only())
    own = sum(r[0] for r in results[:-1])
    total = sum(r[1] for r in results[:-1])
    tools_only_outcomes = results[-1]
    answered_for_tools_only = [o for o in tools_only_outcomes if "answer-of-" in o]
    ok({
        "own": own,
        "total": total,
        "foreign": foreign,
        "protocols": sorted(protocols),
        "tools_only_answered_by_others": answered_for_tools_only,
        "tools_only_outcome": tools_only_outcomes[0][:300],
    })


async def sc_features(url: str, mode: str) -> None:
    from mcp_types import ElicitResult

    logs: list[str] = []
    asked: list[str] = []

    async def sampling(messages: Any, params: Any, context: Any) -> str:
        asked.append("sampling")
        return "sampled by the features client"

    async def elicitation(message: str, response_type: Any, params: Any, context: Any) -> Any:
        asked.append("elicitation")
        return ElicitResult(action="decline")

    async def log(message: Any) -> None:
        logs.append(str(message.data))

    async with fastmcp_client(
        url,
        mode,
        sampling_handler=sampling,
        elicitation_handler=elicitation,
        roots=["file:///tmp/features-root"],
        log_handler=log,
    ) as client:
        protocol = str(client.protocol_version)
        print(f"protocol={protocol}", flush=True)
        sampled = texts(
            await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
        )
        if "sampled by the features client" not in sampled:
            raise Failure(f"sampling did not reach this client's handler: {sampled}")
        elicited = texts(await client.call_tool("trigger-elicitation-request", {}))
        if "decline" not in elicited.lower():
            raise Failure(f"elicitation did not reach this client's handler: {elicited}")
        roots = texts(await client.call_tool("get-roots-list", {}))
        if "file:///tmp/features-root" not in roots:
            raise Failure(f"roots/list did not reach this client: {roots}")
        if protocol == "2026-07-28":
            # That revision has no session-wide logs (logging/setLevel is gone): a log reaches
            # a client only on the stream of a request that asked for it.
            ok({"protocol": protocol, "asked": asked, "log": None})
            return
        await client.set_logging_level("debug")
        await client.call_tool("toggle-simulated-logging", {})
        await wait_for_a_log(logs)
        ok({"protocol": protocol, "asked": asked, "log": logs[0][:200]})


async def sc_tools(url: str, mode: str, handlers: str) -> None:
    from mcp_types import ElicitResult, SamplingCapability

    kw: dict[str, Any] = {}
    if handlers == "all":

        async def sampling(messages: Any, params: Any, context: Any) -> str:
            return "x"

        async def elicitation(message: str, response_type: Any, params: Any, context: Any) -> Any:
            return ElicitResult(action="decline")

        kw = {
            "sampling_handler": sampling,
            "sampling_capabilities": SamplingCapability(),
            "elicitation_handler": elicitation,
            "roots": ["file:///tmp"],
        }
    async with fastmcp_client(url, mode, **kw) as client:
        tools = sorted(tool.name for tool in await client.list_tools())
        ok({"protocol": str(client.protocol_version), "tools": tools})


async def sc_pid(url: str, mode: str) -> None:
    async with fastmcp_client(url, mode) as client:
        pids = [texts(await client.call_tool("pid", {})) for _ in range(2)]
        counters = [texts(await client.call_tool("counter", {})) for _ in range(2)]
        ok({"protocol": str(client.protocol_version), "pids": pids, "counters": counters})


# ---- pydantic-ai, the OpenAI Agents SDK, langchain ------------------------------------------

async def sc_pydantic_ai(url: str) -> None:
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import FunctionModel

    def answer(messages: Any, info: Any) -> ModelResponse:
        return ModelResponse(parts=[TextPart("sampled by pydantic-ai")])

    toolset = MCPToolset(url, sampling_model=FunctionModel(answer), read_timeout=TIMEOUT)
    async with toolset:
        tools = await toolset.list_tools()
        result = await toolset.direct_call_tool(
            "trigger-sampling-request", {"prompt": "hi", "maxTokens": 5}
        )
        text = json.dumps(result, default=str)
        if "sampled by pydantic-ai" not in text:
            raise Failure(f"sampling did not reach pydantic-ai's model: {text[:500]}")
        client = getattr(toolset, "client", None) or getattr(toolset, "_client", None)
        protocol = getattr(client, "protocol_version", None)
        ok({"tools": len(tools), "protocol": str(protocol), "sampled": True})


async def sc_openai_agents(url: str) -> None:
    from agents.mcp import MCPServerStreamableHttp

    server = MCPServerStreamableHttp(
        params={"url": url, "timeout": TIMEOUT}, client_session_timeout_seconds=TIMEOUT
    )
    async with server:
        tools = await server.list_tools()
        result = await server.call_tool("echo", {"message": "from openai-agents"})
        text = texts(result)
        if "from openai-agents" not in text:
            raise Failure(f"echo answered {text!r}")
        # A 2026-07-28 connection has no initialize result: the session knows the version.
        initialized = server.server_initialize_result
        protocol = (
            initialized.protocol_version
            if initialized is not None
            else getattr(server.session, "protocol_version", None)
        )
        ok({"tools": len(tools), "protocol": str(protocol), "text": text})


async def sc_langchain(url: str) -> None:
    from langchain_mcp_adapters.client import MultiServerMCPClient

    client = MultiServerMCPClient({"bridge": {"url": url, "transport": "streamable_http"}})
    tools = await client.get_tools()
    echo = next((t for t in tools if t.name == "echo"), None)
    if echo is None:
        raise Failure(f"no echo tool among {[t.name for t in tools]}")
    text = json.dumps(await echo.ainvoke({"message": "from langchain"}), default=str)
    if "from langchain" not in text:
        raise Failure(f"echo answered {text}")
    ok({"tools": len(tools), "text": text[:200]})


# ---- mcp-remote ---------------------------------------------------------------------------

async def sc_mcp_remote(url: str, mcp_remote: str, protocol: str) -> None:
    import mcp_types as mtypes
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    asked: list[str] = []
    logs: list[str] = []

    async def sampling(context: Any, params: Any) -> Any:
        asked.append("sampling")
        return mtypes.CreateMessageResult.model_validate(
            {"role": "assistant", "content": {"type": "text", "text": "sampled through mcp-remote"},
             "model": "test-model", "stopReason": "endTurn"}
        )

    async def elicitation(context: Any, params: Any) -> Any:
        asked.append("elicitation")
        return mtypes.ElicitResult.model_validate({"action": "decline"})

    async def roots(context: Any) -> Any:
        asked.append("roots")
        return mtypes.ListRootsResult.model_validate({"roots": [{"uri": "file:///tmp/remote-root"}]})

    async def logging(params: Any) -> None:
        logs.append(str(params.data))

    config = tempfile.mkdtemp(prefix="mcp-remote-")
    server = StdioServerParameters(
        command="node",
        args=[mcp_remote, url, "--transport", "http-only", "--protocol", protocol],
        env={**os.environ, "MCP_REMOTE_CONFIG_DIR": config},
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(
            read,
            write,
            sampling_callback=sampling,
            elicitation_callback=elicitation,
            list_roots_callback=roots,
            logging_callback=logging,
        ) as session:
            hello = await session.initialize()
            sampled = await session.call_tool(
                "trigger-sampling-request", {"prompt": "hi", "maxTokens": 5}
            )
            if "sampled through mcp-remote" not in texts(sampled):
                raise Failure(f"sampling did not reach the client: {texts(sampled)}")
            listed = await session.call_tool("get-roots-list", {})
            if "file:///tmp/remote-root" not in texts(listed):
                raise Failure(f"roots/list did not reach the client: {texts(listed)}")
            await session.set_logging_level("debug")
            await session.call_tool("toggle-simulated-logging", {})
            await wait_for_a_log(logs)
            ok({"protocol": hello.protocol_version, "asked": asked, "log": logs[0][:200]})


# ---- modern: every capability of a dual-mode client, against the fixture server -------------

NOT_OFFERED = "not offered by the client"
FEATURES = ("sampling", "elicitation", "roots", "list_changed", "cancelled")


def answers_of(client: str) -> dict[str, str]:
    """What this client's handlers answer, so the child's report names the client."""
    return {
        "sampling": f"sampled by {client}",
        "elicitation": f"elicited by {client}",
        "root": f"file:///tmp/{client}-root",
    }


@dataclass
class Modern:
    """One connected client, as the `modern` checks drive it."""

    protocol: str
    # The Python SDK 2.x ClientSession underneath the client's own API.
    session: Any
    # A tool call through the client's own API: the result's text (JSON for structured ones).
    call: Callable[[str, dict[str, Any]], Awaitable[str]]
    # The same call, given up by the client after about a second (its timeout, or its task
    # cancelled); returns once the client gave up.
    give_up: Callable[[str, dict[str, Any]], Awaitable[None]]
    # Set by the client's message handler when a notifications/tools/list_changed arrives.
    list_changed: asyncio.Event
    not_offered: list[str] = field(default_factory=list)


def is_tools_list_changed(message: Any) -> bool:
    import mcp_types

    return isinstance(getattr(message, "root", message), mcp_types.ToolListChangedNotification)


async def cancel_after_a_second(call: Awaitable[Any]) -> None:
    """Runs `call` as a task and cancels it after 1 s, as an application gives up on a call."""
    task = asyncio.ensure_future(call)
    await asyncio.sleep(1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


@asynccontextmanager
async def modern_fastmcp(url: str) -> AsyncIterator[Modern]:
    answers = answers_of("fastmcp")
    changed = asyncio.Event()

    async def sampling(messages: Any, params: Any, context: Any) -> str:
        return answers["sampling"]

    async def elicitation(message: str, response_type: Any, params: Any, context: Any) -> Any:
        return {"name": answers["elicitation"]}

    async def on_message(message: Any) -> None:
        if is_tools_list_changed(message):
            changed.set()

    async with fastmcp_client(
        url,
        "auto",
        sampling_handler=sampling,
        elicitation_handler=elicitation,
        roots=[answers["root"]],
        message_handler=on_message,
    ) as client:

        async def call(name: str, args: dict[str, Any]) -> str:
            return texts(await client.call_tool(name, args))

        async def give_up(name: str, args: dict[str, Any]) -> None:
            try:
                await client.call_tool(name, args, timeout=1)
            except Exception as e:  # the timeout it was meant to hit
                print(f"fastmcp gave up: {type(e).__name__}: {e}", flush=True)

        yield Modern(str(client.protocol_version), client.session, call, give_up, changed)


@asynccontextmanager
async def modern_pydantic_ai(url: str) -> AsyncIterator[Modern]:
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import FunctionModel

    answers = answers_of("pydantic-ai")
    changed = asyncio.Event()

    def model(messages: Any, info: Any) -> ModelResponse:
        return ModelResponse(parts=[TextPart(answers["sampling"])])

    async def elicitation(message: str, response_type: Any, params: Any, context: Any) -> Any:
        return {"name": answers["elicitation"]}

    async def on_message(message: Any) -> None:
        if is_tools_list_changed(message):
            changed.set()

    toolset = MCPToolset(
        url,
        sampling_model=FunctionModel(model),
        elicitation_handler=elicitation,
        roots=[answers["root"]],
        message_handler=on_message,
        read_timeout=TIMEOUT,
        tool_error_behavior="error",
    )
    async with toolset:

        async def call(name: str, args: dict[str, Any]) -> str:
            result = await toolset.direct_call_tool(name, args)
            return result if isinstance(result, str) else json.dumps(result, default=str)

        async def give_up(name: str, args: dict[str, Any]) -> None:
            await cancel_after_a_second(toolset.direct_call_tool(name, args))

        protocol = str(toolset.client.protocol_version)
        yield Modern(protocol, toolset.client.session, call, give_up, changed)


@asynccontextmanager
async def modern_openai_agents(url: str) -> AsyncIterator[Modern]:
    from agents.mcp import MCPServerStreamableHttp

    changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        if is_tools_list_changed(message):
            changed.set()

    server = MCPServerStreamableHttp(
        params={"url": url, "timeout": TIMEOUT},
        client_session_timeout_seconds=TIMEOUT,
        message_handler=on_message,
    )
    async with server:
        await server.list_tools()

        async def call(name: str, args: dict[str, Any]) -> str:
            return texts(await server.call_tool(name, args))

        async def give_up(name: str, args: dict[str, Any]) -> None:
            await cancel_after_a_second(server.call_tool(name, args))

        # A 2026-07-28 connection has no initialize result: the session knows the version.
        protocol = str(server.session.protocol_version)
        # MCPServerStreamableHttp takes a message handler and nothing else a server may ask
        # through: no sampling, elicitation or roots callback (agents/mcp/server.py).
        yield Modern(protocol, server.session, call, give_up, changed,
                     ["sampling", "elicitation", "roots"])


MODERN_CLIENTS = {
    "fastmcp": modern_fastmcp,
    "pydantic-ai": modern_pydantic_ai,
    "openai-agents": modern_openai_agents,
}


async def check_answered(client: Modern, tool: str, wanted: list[str]) -> tuple[bool, str]:
    """Calls `tool`, whose text is the answer the child got: true when it holds `wanted`."""
    text = await client.call(tool, {})
    return all(w in text for w in wanted), text[:400]


async def check_list_changed(client: Modern) -> tuple[bool, str]:
    notify = {"method": "notifications/tools/list_changed"}
    if client.protocol == "2026-07-28":
        from mcp.client.subscriptions import ToolsListChanged, listen

        async with listen(client.session, tools_list_changed=True) as subscription:
            if not subscription.honored.tools_list_changed:
                return False, f"listen acknowledged without tools: {subscription.honored}"
            await client.call("notify", notify)
            try:
                event = await asyncio.wait_for(subscription.__anext__(), 5)
            except asyncio.TimeoutError:
                return False, "no event on the subscriptions/listen stream within 5 s"
            return isinstance(event, ToolsListChanged), f"listen: {event!r}"
    # A 2025 session: the change comes on the session's GET stream, to the message handler.
    client.list_changed.clear()
    await client.call("notify", notify)
    try:
        await asyncio.wait_for(client.list_changed.wait(), 5)
    except asyncio.TimeoutError:
        return False, "no notifications/tools/list_changed to the message handler within 5 s"
    return True, "message handler"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie not yet reaped by its guard counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def check_cancelled(client: Modern, name: str) -> tuple[bool, str]:
    """Gives up on a 20 s `sleep`, then sees the call end in the server: the server lent to it
    stopped (a 2026 call of a client that answers the server's requests), or the call's id
    among the cancellations the child got (found among its requests by its tag)."""
    tag = f"cancel-{name}-{uuid.uuid4().hex[:8]}"
    # The server the next call runs on: a lent server goes back to its pool after a call, and
    # one whose call was given up is stopped rather than lent again.
    ran_on = int(await client.call("pid", {}))
    await asyncio.wait_for(client.give_up("sleep", {"ms": 20000, "message": tag}), 10)
    width, child_id, cancelled = 1, None, []
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        if not process_alive(ran_on):
            return True, f"the lent server that ran it (pid {ran_on}) was stopped"
        for seen in await asyncio.gather(*(client.call("requests_seen", {}) for _ in range(width))):
            for request in json.loads(seen):
                if (request.get("arguments") or {}).get("message") == tag:
                    child_id = request["id"]
        if child_id is not None:
            lists = await asyncio.gather(*(client.call("cancelled_seen", {}) for _ in range(width)))
            cancelled = [i for text in lists for i in json.loads(text)]
            if child_id in cancelled:
                return True, f"the child's id {child_id!r} cancelled"
        width = min(width + 1, 3)
        await asyncio.sleep(0.1)
    if child_id is None:
        return False, f"the call tagged {tag} never showed among the child's requests"
    return False, f"the child's id {child_id!r} not among the cancelled ones {cancelled} in 10 s"


async def sc_modern(url: str, name: str) -> None:
    if name not in MODERN_CLIENTS:
        raise Failure(f"unknown client {name!r}: one of {sorted(MODERN_CLIENTS)}")
    answers = answers_of(name)
    async with MODERN_CLIENTS[name](url) as client:
        print(f"{name}: protocol={client.protocol}", flush=True)
        report: dict[str, Any] = {"client": name, "protocol": client.protocol,
                                  "not_offered": client.not_offered}
        details: dict[str, str] = {}
        checks = {
            "sampling": lambda: check_answered(client, "sample", [answers["sampling"]]),
            "elicitation": lambda: check_answered(
                client, "elicit", ['"accept"', answers["elicitation"]]
            ),
            "roots": lambda: check_answered(client, "list_roots", [answers["root"]]),
            "list_changed": lambda: check_list_changed(client),
            "cancelled": lambda: check_cancelled(client, name),
        }
        for feature in FEATURES:
            if feature in client.not_offered:
                report[feature] = NOT_OFFERED
                continue
            try:
                passed, seen = await asyncio.wait_for(checks[feature](), 25)
            except Exception as e:  # noqa: BLE001 - reported as the check's outcome
                passed, seen = False, f"{type(e).__name__}: {e}"
            report[feature] = passed
            details[feature] = seen
            print(f"{name}: {feature}={passed} ({seen})", flush=True)
        report["details"] = details
        ok(report)


SCENARIOS = {
    "race": sc_race,
    "features": sc_features,
    "tools": sc_tools,
    "pid": sc_pid,
    "pydantic-ai": sc_pydantic_ai,
    "openai-agents": sc_openai_agents,
    "langchain": sc_langchain,
    "mcp-remote": sc_mcp_remote,
    "modern": sc_modern,
}


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    scenario, url, args = sys.argv[1], sys.argv[2], sys.argv[3:]

    async def bounded() -> None:
        with_deadline = asyncio.wait_for(SCENARIOS[scenario](url, *args), TIMEOUT + 20)
        await with_deadline

    try:
        asyncio.run(bounded())
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except BaseException as e:  # noqa: BLE001 - any other failure, reported in one line
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
