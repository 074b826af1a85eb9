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
//   list-tools [NAME...]                      list tools (all pages); each NAME must be present
//   call-concurrent N TOOL JSON_ARGS EXPECT   N concurrent calls in one session, each must match
//   call-progress TOOL JSON_ARGS EXPECT       call with onprogress; >= 1 progress notification
//   sessions N TOOL JSON_ARGS EXPECT          N sequential sessions, each: connect, call, close
//   get-prompt NAME JSON_ARGS EXPECT          prompts/get; a message text must contain EXPECT
//   read-resource URI EXPECT                  resources/read; a text content must contain EXPECT
//
// Options:
//   --timeout=SECONDS   overall deadline (default 60)
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
// Not require('…/package.json'): the SDK's exports map sends that to dist/cjs/package.json.
const SDK_VERSION = JSON.parse(
  readFileSync(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'package.json'), 'utf8'),
).version;
const SDK = `ts-sdk/${SDK_VERSION}`;

// ---- arguments --------------------------------------------------------------------------
let timeoutSec = 60;
let terminate = false;
const positional = [];
for (const a of process.argv.slice(2)) {
  if (positional.length < 2 && a.startsWith('--timeout=')) timeoutSec = Number(a.slice(10));
  else if (positional.length < 2 && a === '--terminate') terminate = true;
  else positional.push(a);
}
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

async function withConn(fn) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'mcp-bridge-test-ts-client', version: '0.0.0' });
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
    if (terminate && transport.sessionId) {
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
