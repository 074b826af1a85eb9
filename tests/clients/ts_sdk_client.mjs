#!/usr/bin/env node
// Drive an MCP Streamable HTTP endpoint with the real TypeScript MCP SDK
// (Client + StreamableHTTPClientTransport), as installed by scripts/install-test-deps.
//
//   node tests/clients/ts_sdk_client.mjs [OPTIONS] URL SCENARIO [ARGS...]
//
// The SDK is loaded from <repo>/.test-deps/node/node_modules (found relative to this file),
// or from $MCP_TEST_NODE_MODULES if set. No NODE_PATH needed.
//
// Scenarios (same as python_sdk_client.py):
//   list-and-call TOOL JSON_ARGS EXPECT       list tools, call TOOL, its text must contain EXPECT
//   list-tools [NAME...]                      list tools (all pages, printed as tools_json=);
//                                             each NAME must be present
//   call-concurrent N TOOL JSON_ARGS EXPECT   N concurrent calls in one session, each must match
//   call-progress TOOL JSON_ARGS EXPECT       call with onprogress; >= 1 progress notification
//   sessions N TOOL JSON_ARGS EXPECT          N sequential sessions, each: connect, call, close
//   get-prompt NAME JSON_ARGS EXPECT          prompts/get; a message text must contain EXPECT
//   read-resource URI EXPECT                  resources/read; a text content must contain EXPECT
//
// Scenarios for the bridge's MCP features (against tests/fixtures/fixture_server.py; see
// python_sdk_client.py for what each checks):
//   progress-own STEPS TAG BARRIER_NAME BARRIER_COUNT
//   server-request sampling|elicitation|roots [TAG]
//                                                (declares sampling, elicitation and roots; the
//                                                answer names TAG)
//   list-changed
//   logging
//   subscribe URI
//   cancel-call                                  (AbortSignal: the SDK sends notifications/cancelled)
//   resume TAG                                   (TypeScript only: the SDK's own resumption of a
//                                                2025-11-25 answer stream. A `progress` call
//                                                tagged TAG is dropped, transport closed, after its
//                                                first progress event; a new transport on the same
//                                                session id resumes it with the last resumption
//                                                token (GET + Last-Event-ID) and must get the events
//                                                after that token, then the answer, exactly once)
//
// Options:
//   --timeout=SECONDS   overall deadline (default 60)
//   --transport=sse     URL is the legacy 2024-11-05 HTTP+SSE endpoint (SSEClientTransport)
//   --terminate         send DELETE (transport.terminateSession()) before closing. The SDK's
//                       Client.close() never sends DELETE by itself, so the default mimics
//                       ordinary TS apps: no DELETE.
//
// Output: info lines on stdout, then `OK <details>`, exit 0. Failure: `FAIL: <reason>` on
// stderr, exit 1. Usage errors exit 2.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.MCP_TEST_NODE_MODULES
  ? path.resolve(process.env.MCP_TEST_NODE_MODULES)
  : path.resolve(here, '..', '..', '.test-deps', 'node', 'node_modules');
const require = createRequire(path.join(nodeModules, '..', 'package.json'));

function fail(msg, code = 1) {
  process.stderr.write(`FAIL: ${msg}\n`);
  process.exit(code);
}

async function load(spec) {
  let resolved;
  try {
    resolved = require.resolve(spec);
  } catch (e) {
    fail(`cannot resolve ${spec} from ${nodeModules} (run scripts/install-test-deps): ${e.message}`);
  }
  return import(pathToFileURL(resolved).href);
}

const { Client } = await load('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await load('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { SSEClientTransport } = await load('@modelcontextprotocol/sdk/client/sse.js');
const T = await load('@modelcontextprotocol/sdk/types.js');
// Not require('…/package.json'): the SDK's exports map sends that to dist/cjs/package.json.
const SDK_VERSION = JSON.parse(
  readFileSync(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'package.json'), 'utf8'),
).version;
const SDK = `ts-sdk/${SDK_VERSION}`;

// ---- arguments --------------------------------------------------------------------------
let timeoutSec = 60;
let terminate = false;
let transportKind = 'streamable';
const positional = [];
for (const a of process.argv.slice(2)) {
  if (positional.length < 2 && a.startsWith('--timeout=')) timeoutSec = Number(a.slice(10));
  else if (positional.length < 2 && a === '--terminate') terminate = true;
  else if (positional.length < 2 && a.startsWith('--transport=')) transportKind = a.slice(12);
  else positional.push(a);
}
if (!['streamable', 'sse'].includes(transportKind)) fail(`unknown --transport=${transportKind}`, 2);
const [url, scenario, ...args] = positional;
if (!url || !scenario) fail('usage: ts_sdk_client.mjs [--timeout=S] [--terminate] URL SCENARIO [ARGS...]', 2);

const out = (line) => process.stdout.write(line + '\n');
const short = (s, n = 200) => {
  s = String(s).replace(/\n/g, '\\n');
  return s.length <= n ? s : s.slice(0, n) + '...';
};
class Failure extends Error {}

function need(n, usage) {
  if (args.length !== n) fail(`usage: ... ${usage}`, 2);
}
function parseJsonArgs(raw) {
  let v;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new Failure(`JSON_ARGS is not JSON: ${e.message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Failure('JSON_ARGS must be a JSON object');
  return v;
}
function contentTexts(items) {
  const texts = [];
  for (const it of items ?? []) {
    if (typeof it?.text === 'string') texts.push(it.text);
    if (typeof it?.resource?.text === 'string') texts.push(it.resource.text);
  }
  return texts;
}
function toolText(result) {
  const text = contentTexts(result.content).join('\n');
  if (result.isError) throw new Failure(`tool returned isError=true: ${short(text, 500)}`);
  return text;
}
function expectIn(text, expect, what) {
  if (!text.includes(expect)) throw new Failure(`${what}: expected substring ${JSON.stringify(expect)} not found in ${JSON.stringify(short(text, 500))}`);
}

// ---- connection -------------------------------------------------------------------------
const openTransports = new Set();

// setup: { capabilities, configure(client) } for scenarios that declare client capabilities or
// install request/notification handlers before connecting.
async function withConn(fn, setup = {}) {
  const transport =
    transportKind === 'sse' ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
  const client = new Client(
    { name: 'mcp-bridge-test-ts-client', version: '0.0.0' },
    setup.capabilities ? { capabilities: setup.capabilities } : undefined,
  );
  setup.configure?.(client);
  openTransports.add(transport);
  let closing = false;
  // Errors on the background GET stream etc. are reported via onerror; they must not kill the
  // run (the SDK treats them as non-fatal too) but are shown for debugging, except the
  // AbortErrors that close() itself causes.
  client.onerror = (e) => {
    if (!closing) process.stderr.write(`note: transport error: ${e?.message ?? e}\n`);
  };
  await client.connect(transport);
  const conn = {
    client,
    transport,
    protocol: transport.protocolVersion ?? '?',
    server: client.getServerVersion()?.name ?? '?',
    sessionId: transport.sessionId,
  };
  try {
    return await fn(conn);
  } finally {
    closing = true;
    if (terminate && transport.sessionId && transport.terminateSession) {
      try {
        await transport.terminateSession();
      } catch (e) {
        process.stderr.write(`note: DELETE failed: ${e?.message ?? e}\n`);
      }
    }
    await client.close();
    openTransports.delete(transport);
  }
}

function announce(c) {
  out(`sdk=${SDK}`);
  out(`protocol=${c.protocol}`);
  out(`server=${c.server}`);
  out(`session=${c.sessionId ?? ''}`);
}

async function listAllTools(client) {
  const tools = [];
  let cursor;
  do {
    const res = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...res.tools);
    cursor = res.nextCursor;
  } while (cursor);
  return tools;
}

// Generous per-request timeout: the overall deadline below is the real bound.
const reqOpts = () => ({ timeout: timeoutSec * 1000, maxTotalTimeout: timeoutSec * 1000 });

// ---- scenarios --------------------------------------------------------------------------
const scenarios = {
  async 'list-and-call'() {
    need(3, 'list-and-call TOOL JSON_ARGS EXPECT');
    const [tool, rawArgs, expect] = args;
    const jargs = parseJsonArgs(rawArgs);
    return withConn(async (c) => {
      announce(c);
      const names = (await listAllTools(c.client)).map((t) => t.name);
      out(`tools=${names.join(',')}`);
      if (!names.includes(tool)) throw new Failure(`tool ${JSON.stringify(tool)} not in tools/list`);
      const text = toolText(await c.client.callTool({ name: tool, arguments: jargs }, undefined, reqOpts()));
      out(`text=${short(text)}`);
      expectIn(text, expect, `tools/call ${tool}`);
      return `sdk=${SDK} protocol=${c.protocol} server=${c.server} tools=${names.length} tool=${tool}`;
    });
  },

  async 'list-tools'() {
    return withConn(async (c) => {
      announce(c);
      const tools = await listAllTools(c.client);
      const names = tools.map((t) => t.name);
      out(`tools=${names.join(',')}`);
      out(`tools_json=${JSON.stringify(tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })))}`);
      for (const t of tools) if (!t.inputSchema) throw new Failure(`tool ${t.name} has no inputSchema`);
      const missing = args.filter((n) => !names.includes(n));
      if (missing.length) throw new Failure(`missing tools: ${missing.join(',')}`);
      return `sdk=${SDK} protocol=${c.protocol} server=${c.server} tools=${names.length}`;
    });
  },

  async 'call-concurrent'() {
    need(4, 'call-concurrent N TOOL JSON_ARGS EXPECT');
    const [nRaw, tool, rawArgs, expect] = args;
    const n = Number(nRaw);
    const jargs = parseJsonArgs(rawArgs);
    return withConn(async (c) => {
      announce(c);
      const results = await Promise.allSettled(
        Array.from({ length: n }, () => c.client.callTool({ name: tool, arguments: jargs }, undefined, reqOpts())),
      );
      const errors = [];
      results.forEach((r, i) => {
        if (r.status === 'rejected') errors.push(`call ${i}: ${r.reason?.message ?? r.reason}`);
        else {
          try {
            expectIn(toolText(r.value), expect, `call ${i}`);
          } catch (e) {
            errors.push(e.message);
          }
        }
      });
      if (errors.length) throw new Failure(`${errors.length}/${n} calls failed: ${errors.slice(0, 3).join('; ')}`);
      out(`text=${short(toolText(results[0].value))}`);
      return `sdk=${SDK} protocol=${c.protocol} server=${c.server} calls=${n} tool=${tool}`;
    });
  },

  async 'call-progress'() {
    need(3, 'call-progress TOOL JSON_ARGS EXPECT');
    const [tool, rawArgs, expect] = args;
    const jargs = parseJsonArgs(rawArgs);
    return withConn(async (c) => {
      announce(c);
      let seen = 0;
      const onprogress = (p) => {
        seen++;
        out(`progress=${p.progress}/${p.total}`);
      };
      const text = toolText(
        await c.client.callTool({ name: tool, arguments: jargs }, undefined, { ...reqOpts(), onprogress }),
      );
      out(`text=${short(text)}`);
      expectIn(text, expect, `tools/call ${tool}`);
      if (!seen) throw new Failure('no progress notification arrived');
      return `sdk=${SDK} protocol=${c.protocol} server=${c.server} tool=${tool} progress=${seen}`;
    });
  },

  async sessions() {
    need(4, 'sessions N TOOL JSON_ARGS EXPECT');
    const [nRaw, tool, rawArgs, expect] = args;
    const n = Number(nRaw);
    const jargs = parseJsonArgs(rawArgs);
    let last;
    for (let i = 0; i < n; i++) {
      last = await withConn(async (c) => {
        if (i === 0) announce(c);
        expectIn(toolText(await c.client.callTool({ name: tool, arguments: jargs }, undefined, reqOpts())), expect, `session ${i}`);
        return c;
      });
    }
    return `sdk=${SDK} protocol=${last?.protocol} server=${last?.server} sessions=${n} tool=${tool}`;
  },

  async 'get-prompt'() {
    need(3, 'get-prompt NAME JSON_ARGS EXPECT');
    const [name, rawArgs, expect] = args;
    const jargs = Object.fromEntries(Object.entries(parseJsonArgs(rawArgs)).map(([k, v]) => [k, String(v)]));
    return withConn(async (c) => {
      announce(c);
      const res = await c.client.getPrompt({ name, arguments: jargs }, reqOpts());
      const text = contentTexts(res.messages.map((m) => m.content)).join('\n');
      out(`text=${short(text)}`);
      expectIn(text, expect, `prompts/get ${name}`);
      return `sdk=${SDK} protocol=${c.protocol} server=${c.server} prompt=${name}`;
    });
  },

  async 'read-resource'() {
    need(2, 'read-resource URI EXPECT');
    const [uri, expect] = args;
    return withConn(async (c) => {
      announce(c);
      const res = await c.client.readResource({ uri }, reqOpts());
      const text = res.contents.filter((x) => typeof x.text === 'string').map((x) => x.text).join('\n');
      out(`text=${short(text)}`);
      expectIn(text, expect, `resources/read ${uri}`);
      return `sdk=${SDK} protocol=${c.protocol} server=${c.server} uri=${uri}`;
    });
  },
};

// ---- scenarios for the bridge's MCP features (fixture server tools) ----------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(20);
  }
  return pred();
}
async function toolJson(client, name, args = {}) {
  return JSON.parse(toolText(await client.callTool({ name, arguments: args }, undefined, reqOpts())));
}
const call = (client, name, args = {}, opts = {}) =>
  client.callTool({ name, arguments: args }, undefined, { ...reqOpts(), ...opts });

Object.assign(scenarios, {
  async 'progress-own'() {
    need(4, 'progress-own STEPS TAG BARRIER_NAME BARRIER_COUNT');
    const [stepsRaw, tag, barrierName, barrierRaw] = args;
    const steps = Number(stepsRaw);
    return withConn(async (c) => {
      announce(c);
      const seen = [];
      const onprogress = (p) => {
        seen.push(p);
        out(`progress=${p.progress}/${p.total} message=${p.message}`);
      };
      const text = toolText(
        await call(
          c.client,
          'progress',
          { steps, ms: 100, message: tag, barrier: Number(barrierRaw), barrier_name: barrierName },
          { onprogress },
        ),
      );
      out(`text=${short(text)}`);
      const foreign = seen.filter((p) => !String(p.message ?? '').includes(tag));
      if (foreign.length) throw new Failure(`got another session's progress notifications: ${JSON.stringify(foreign)}`);
      const got = seen.map((p) => p.progress);
      const want = Array.from({ length: steps }, (_, i) => i + 1);
      if (JSON.stringify(got) !== JSON.stringify(want))
        throw new Failure(`expected exactly progress 1..${steps} in order, got ${JSON.stringify(seen)}`);
      return `sdk=${SDK} protocol=${c.protocol} progress=${seen.length} tag=${tag} child_token=${JSON.parse(text).progressToken}`;
    });
  },

  async 'server-request'() {
    if (args.length !== 1 && args.length !== 2) need(1, 'server-request sampling|elicitation|roots [TAG]');
    const [kind, tag = ''] = args;
    const tools = { sampling: 'sample', elicitation: 'elicit', roots: 'list_roots' };
    if (!tools[kind]) fail(`unknown kind ${kind}`, 2);
    const answer = `answered by ${SDK} ${tag}`.trim();
    const rootUri = tag ? `file:///tmp/mcp-bridge-test-root/${tag}` : 'file:///tmp/mcp-bridge-test-root';
    const calls = [];
    const setup = {
      capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } },
      configure(client) {
        client.setRequestHandler(T.CreateMessageRequestSchema, async () => {
          calls.push('sampling');
          return { role: 'assistant', content: { type: 'text', text: answer }, model: 'test-model', stopReason: 'endTurn' };
        });
        client.setRequestHandler(T.ElicitRequestSchema, async () => {
          calls.push('elicitation');
          return { action: 'accept', content: { name: answer } };
        });
        client.setRequestHandler(T.ListRootsRequestSchema, async () => {
          calls.push('roots');
          return { roots: [{ uri: rootUri, name: answer }] };
        });
      },
    };
    return withConn(async (c) => {
      announce(c);
      const response = await toolJson(c.client, tools[kind]);
      out(`child_got=${short(JSON.stringify(response), 400)}`);
      if (JSON.stringify(calls) !== JSON.stringify([kind]))
        throw new Failure(`expected the ${kind} handler to run once, ran: ${JSON.stringify(calls)}; the child got ${JSON.stringify(response)}`);
      if (!('result' in response)) throw new Failure(`the child got no result for its ${kind} request: ${JSON.stringify(response)}`);
      if (!String(response.id ?? '').startsWith('fixture-'))
        throw new Failure(`the child got the answer under an id it never used: ${JSON.stringify(response)}`);
      const got = response.result;
      const ok =
        kind === 'sampling'
          ? got.content?.text === answer
          : kind === 'elicitation'
            ? got.action === 'accept' && got.content?.name === answer
            : JSON.stringify((got.roots ?? []).map((r) => r.uri)) === JSON.stringify([rootUri]);
      if (!ok) throw new Failure(`the child got a different ${kind} answer than this client's: ${JSON.stringify(got)}`);
      return `sdk=${SDK} protocol=${c.protocol} kind=${kind} child_request_id=${response.id}`;
    }, setup);
  },

  async 'list-changed'() {
    need(0, 'list-changed');
    const seen = [];
    const setup = {
      configure(client) {
        for (const schema of [T.ToolListChangedNotificationSchema, T.ResourceListChangedNotificationSchema, T.PromptListChangedNotificationSchema]) {
          client.setNotificationHandler(schema, (n) => {
            seen.push(n.method);
            out(`notification=${n.method}`);
          });
        }
      },
    };
    return withConn(async (c) => {
      announce(c);
      for (const kind of ['tools', 'resources', 'prompts']) {
        const method = `notifications/${kind}/list_changed`;
        let ok = false;
        // The SDK opens its GET stream in the background after initialize: trigger until it is
        // there and the notification arrives (at most 10 tries).
        for (let i = 0; i < 10 && !ok; i++) {
          await call(c.client, 'notify', { method });
          ok = await waitUntil(() => seen.includes(method), 1000);
        }
        if (!ok) throw new Failure(`${method} never reached the client (seen: ${JSON.stringify(seen)})`);
      }
      return `sdk=${SDK} protocol=${c.protocol} notifications=${[...new Set(seen)].sort().join(',')}`;
    }, setup);
  },

  async logging() {
    need(0, 'logging');
    const logs = [];
    const setup = {
      configure(client) {
        client.setNotificationHandler(T.LoggingMessageNotificationSchema, (n) => {
          logs.push(n.params.data);
          out(`log=${n.params.level}:${n.params.data}`);
        });
      },
    };
    return withConn(async (c) => {
      announce(c);
      await c.client.setLoggingLevel('debug', reqOpts());
      const levels = await toolJson(c.client, 'log_levels_seen');
      if (!levels.includes('debug')) throw new Failure(`logging/setLevel did not reach the child: it saw levels ${JSON.stringify(levels)}`);
      const during = `during a call (${SDK})`;
      await call(c.client, 'log', { level: 'warning', data: during, logger: 'fixture' });
      if (!(await waitUntil(() => logs.includes(during), 5000)))
        throw new Failure(`a log message sent during the call never arrived (got ${JSON.stringify(logs)})`);
      const idle = `with no call in flight (${SDK})`;
      let ok = false;
      for (let i = 0; i < 6 && !ok; i++) {
        await call(c.client, 'notify', { method: 'notifications/message', delay_ms: 200, params: { level: 'error', data: idle } });
        ok = await waitUntil(() => logs.includes(idle), 1500);
      }
      if (!ok) throw new Failure(`a log message sent with no call in flight never arrived (got ${JSON.stringify(logs)})`);
      return `sdk=${SDK} protocol=${c.protocol} levels=${JSON.stringify(levels)} logs=${logs.length}`;
    }, setup);
  },

  async subscribe() {
    need(1, 'subscribe URI');
    const [uri] = args;
    const updates = [];
    const setup = {
      configure(client) {
        client.setNotificationHandler(T.ResourceUpdatedNotificationSchema, (n) => {
          updates.push(n.params.uri);
          out(`updated=${n.params.uri}`);
        });
      },
    };
    return withConn(async (c) => {
      announce(c);
      await c.client.subscribeResource({ uri }, reqOpts());
      let ok = false;
      for (let i = 0; i < 10 && !ok; i++) {
        await call(c.client, 'touch', { uri });
        ok = await waitUntil(() => updates.includes(uri), 1000);
      }
      if (!ok) throw new Failure(`no notifications/resources/updated for ${uri} arrived (got ${JSON.stringify(updates)})`);
      await c.client.unsubscribeResource({ uri }, reqOpts());
      return `sdk=${SDK} protocol=${c.protocol} uri=${uri} updates=${updates.length}`;
    }, setup);
  },

  async 'cancel-call'() {
    need(0, 'cancel-call');
    const tag = `cancel-me-${Math.random().toString(16).slice(2, 10)}`;
    return withConn(async (c) => {
      announce(c);
      const abort = new AbortController();
      const pending = call(c.client, 'sleep', { ms: 30000, message: tag }, { signal: abort.signal }).then(
        () => 'answered',
        (e) => `error: ${e?.message ?? e}`,
      );
      let childId;
      const end = Date.now() + 10000;
      while (childId === undefined && Date.now() < end) {
        await sleep(100);
        for (const r of await toolJson(c.client, 'requests_seen')) if (r.arguments?.message === tag) childId = r.id;
      }
      if (childId === undefined) throw new Failure('the sleep call never reached the child');
      out(`child_id=${childId}`);
      abort.abort('test cancels the call'); // the SDK sends notifications/cancelled
      out(`call=${await pending}`);
      let cancelled = [];
      for (let i = 0; i < 50; i++) {
        cancelled = await toolJson(c.client, 'cancelled_seen');
        if (cancelled.includes(childId)) break;
        await sleep(100);
      }
      if (!cancelled.includes(childId))
        throw new Failure(`the child never got notifications/cancelled for its id ${JSON.stringify(childId)} (it got requestIds ${JSON.stringify(cancelled)})`);
      return `sdk=${SDK} protocol=${c.protocol} child_id=${childId} cancelled=${JSON.stringify(cancelled)}`;
    });
  },

  async resume() {
    need(1, 'resume TAG');
    const [tag] = args;
    if (transportKind !== 'streamable') fail('resume needs the Streamable HTTP transport', 2);
    // 8 progress events 300 ms apart: the answer comes more than 2 s after the drop.
    const steps = 8;
    const toolArgs = { steps, ms: 300, message: tag };
    const callRequest = { method: 'tools/call', params: { name: 'progress', arguments: toolArgs } };
    const quiet = (e) =>
      // The resumed stream replays progress for the first client's request id, which the second
      // client never sent: its Protocol reports those as unknown tokens (counted below instead).
      /unknown token|AbortError|aborted|SSE stream disconnected/i.test(String(e?.message ?? e));

    // First connection: initialize (the SDK asks for its newest version), then the call,
    // dropped (transport closed) as soon as its first progress event and token arrived.
    const first = new StreamableHTTPClientTransport(new URL(url));
    openTransports.add(first);
    const client1 = new Client({ name: 'mcp-bridge-test-ts-client', version: '0.0.0' });
    client1.onerror = (e) => {
      if (!quiet(e)) process.stderr.write(`note: first transport: ${e?.message ?? e}\n`);
    };
    await client1.connect(first);
    const c = {
      protocol: first.protocolVersion ?? '?',
      server: client1.getServerVersion()?.name ?? '?',
      sessionId: first.sessionId,
    };
    announce(c);
    if (c.protocol !== '2025-11-25')
      throw new Failure(`the SDK negotiated ${c.protocol}, not 2025-11-25: answer streams are resumable only from 2025-11-25`);
    if (!c.sessionId) throw new Failure('no session id after initialize');

    const tokensBefore = [];
    const progressBefore = [];
    let droppedAt;
    const dropped = new Promise((resolve) => (droppedAt = resolve));
    const firstCall = client1
      .request(callRequest, T.CallToolResultSchema, {
        ...reqOpts(),
        onresumptiontoken: (token) => tokensBefore.push(token),
        onprogress: (p) => {
          progressBefore.push(p.progress);
          if (progressBefore.length === 1) droppedAt();
        },
      })
      .then(
        (result) => ({ answered: result }),
        (e) => ({ error: e?.message ?? String(e) }),
      );
    await Promise.race([
      dropped,
      firstCall.then((r) => {
        throw new Failure(`the call ended before its first progress event: ${JSON.stringify(r)}`);
      }),
    ]);
    await client1.close(); // aborts the POST's stream: the bridge sees the connection drop
    openTransports.delete(first);
    const firstOutcome = await firstCall;
    if (firstOutcome.answered)
      throw new Failure(`the answer arrived before the drop, nothing to resume: ${JSON.stringify(firstOutcome.answered)}`);
    out(`first_call=${short(firstOutcome.error)}`);
    out(`tokens_before=${tokensBefore.join(',')}`);
    const priming = /^(\d+)-0$/.exec(tokensBefore[0] ?? '');
    if (!priming) throw new Failure(`the first resumption token is not a priming event's STREAM-0: ${JSON.stringify(tokensBefore)}`);
    const stream = priming[1];
    const numberOf = (token) => {
      const m = /^(\d+)-(\d+)$/.exec(token);
      if (!m || m[1] !== stream) throw new Failure(`token ${JSON.stringify(token)} is not an event of stream ${stream}`);
      return Number(m[2]);
    };
    const lastToken = tokensBefore[tokensBefore.length - 1];
    const seenBefore = numberOf(lastToken);
    const want = (from, to) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
    if (JSON.stringify(tokensBefore.map(numberOf)) !== JSON.stringify(want(0, seenBefore)))
      throw new Failure(`tokens before the drop are not STREAM-0..N in order: ${JSON.stringify(tokensBefore)}`);
    // Event N of the stream is progress N (the priming event is 0, the answer steps + 1).
    if (JSON.stringify(progressBefore) !== JSON.stringify(want(1, seenBefore)))
      throw new Failure(`progress before the drop ${JSON.stringify(progressBefore)} does not match the tokens ${JSON.stringify(tokensBefore)}`);

    // Second connection: a new transport on the same session (no initialize), after the
    // server's retry hint, resuming the request with the last token.
    await sleep(1000);
    const second = new StreamableHTTPClientTransport(new URL(url), { sessionId: c.sessionId });
    openTransports.add(second);
    second.setProtocolVersion(c.protocol);
    const received = [];
    second.onmessage = (message) => received.push(message); // chained by connect, called first
    const client2 = new Client({ name: 'mcp-bridge-test-ts-client', version: '0.0.0' });
    let refused;
    client2.onerror = (e) => {
      if (/Failed to open SSE stream/.test(String(e?.message))) refused ??= e;
      if (!quiet(e)) process.stderr.write(`note: second transport: ${e?.message ?? e}\n`);
    };
    await client2.connect(second);
    if (second.sessionId !== c.sessionId) throw new Failure('the second transport is not on the first session');
    const tokensAfter = [];
    const resumed = client2.request(callRequest, T.CallToolResultSchema, {
      ...reqOpts(),
      resumptionToken: lastToken,
      onresumptiontoken: (token) => tokensAfter.push(token),
    });
    // A refused GET is only reported through onerror: the request itself would wait forever.
    const result = await Promise.race([
      resumed,
      waitUntil(() => refused !== undefined, timeoutSec * 1000).then(() => {
        throw new Failure(`the resuming GET (Last-Event-ID: ${lastToken}) was refused: ${refused?.message ?? refused}`);
      }),
    ]);
    const text = toolText(result);
    out(`text=${short(text)}`);
    const answer = JSON.parse(text);
    if (answer.message !== tag || answer.steps !== steps)
      throw new Failure(`the resumed answer is not the call's: ${text}`);
    out(`tokens_after=${tokensAfter.join(',')}`);
    const progressAfter = received.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress);
    const answers = received.filter((m) => 'result' in m || 'error' in m);
    if (answers.length !== 1) throw new Failure(`expected the answer exactly once on the resumed stream, got ${JSON.stringify(answers)}`);
    if (JSON.stringify(progressAfter) !== JSON.stringify(want(seenBefore + 1, steps)))
      throw new Failure(`the resumed stream replayed progress ${JSON.stringify(progressAfter)}, not ${seenBefore + 1}..${steps} (the events after ${lastToken})`);
    // SDK 1.x does not pass onresumptiontoken on to the resuming GET (transport.send keeps only
    // the token): check the resumed stream's tokens only if an SDK reports them.
    if (tokensAfter.length && JSON.stringify(tokensAfter.map(numberOf)) !== JSON.stringify(want(seenBefore + 1, steps + 1)))
      throw new Failure(`the resumed stream's tokens ${JSON.stringify(tokensAfter)} are not ${stream}-${seenBefore + 1}..${stream}-${steps + 1}`);
    await client2.close();
    openTransports.delete(second);
    return `sdk=${SDK} protocol=${c.protocol} stream=${stream} resumed_after=${lastToken} progress_before=${progressBefore.length} progress_after=${progressAfter.length} tag=${tag}`;
  },
});

if (!scenarios[scenario]) fail(`unknown scenario ${JSON.stringify(scenario)}; one of: ${Object.keys(scenarios).join(', ')}`, 2);

let timer;
const deadline = new Promise((_, reject) => {
  timer = setTimeout(() => reject(new Failure(`timed out after ${timeoutSec}s`)), timeoutSec * 1000);
});
try {
  const details = await Promise.race([scenarios[scenario](), deadline]);
  clearTimeout(timer);
  out(`OK ${details}`);
  process.exit(0);
} catch (e) {
  const code = e?.code !== undefined ? ` (code ${e.code})` : '';
  process.stderr.write(`FAIL: ${e?.message ?? e}${code} (${SDK})\n`);
  for (const t of openTransports) t.close().catch(() => {});
  process.exit(1);
}
