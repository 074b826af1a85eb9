#!/usr/bin/env node
// List an MCP endpoint's tools with the real TypeScript MCP SDK (Client +
// StreamableHTTPClientTransport) and print their schemas, for tests/schema_repair.rs.
//
//   node tests/clients/tool_schemas_client.mjs [--timeout=SECONDS] URL
//
// The SDK is loaded as ts_sdk_client.mjs loads it (<repo>/.test-deps/node/node_modules, or
// $MCP_TEST_NODE_MODULES). Lists every page through the SDK's own `listTools` (which validates
// the result against its schema), prints one line `tools_json=[{"name", "inputSchema"}, ...]` with
// each schema as the SDK returned it, then `OK tools=N`; exit 0. Any failure (the SDK refusing
// the list included): `FAIL: <reason>` on stderr, exit 1.
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
const SDK_VERSION = JSON.parse(
  readFileSync(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'package.json'), 'utf8'),
).version;
const SDK = `ts-sdk/${SDK_VERSION}`;

let timeoutSec = 40;
const positional = [];
for (const a of process.argv.slice(2)) {
  if (a.startsWith('--timeout=')) timeoutSec = Number(a.slice(10));
  else positional.push(a);
}
const [url] = positional;
if (!url || positional.length !== 1) fail('usage: tool_schemas_client.mjs [--timeout=S] URL', 2);

const out = (line) => process.stdout.write(line + '\n');
const timer = setTimeout(() => fail(`timed out after ${timeoutSec}s (${SDK})`), timeoutSec * 1000);

try {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'mcp-bridge-test-ts-schemas', version: '0.0.0' });
  await client.connect(transport);
  out(`sdk=${SDK}`);
  out(`protocol=${transport.protocolVersion ?? '?'}`);
  const reqOpts = { timeout: timeoutSec * 1000 };
  const tools = [];
  let cursor;
  do {
    const res = await client.listTools(cursor ? { cursor } : undefined, reqOpts);
    tools.push(...res.tools);
    cursor = res.nextCursor;
  } while (cursor);
  out(`tools_json=${JSON.stringify(tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })))}`);
  await transport.terminateSession().catch(() => {});
  await client.close();
  clearTimeout(timer);
  out(`OK sdk=${SDK} tools=${tools.length}`);
  process.exit(0);
} catch (e) {
  const code = e?.code !== undefined ? ` (code ${e.code})` : '';
  fail(`${e?.message ?? e}${code} (${SDK})`);
}
