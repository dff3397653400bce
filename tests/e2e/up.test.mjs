// `airlock up`, the embedded default of `make run`: a hub, a C worker, an
// MCP tunnel (relay, gateway, and the private MCP server behind it) and a
// demo session whose scripted agent calls the private MCP tool through the
// tunnel and does real work in its workspace. The data directory is a
// temporary one, so the tests never touch ./var.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { BIN, tempDir } from './lib/hub.mjs';
import { startDaemon } from './lib/tunnel.mjs';

// Runs `airlock up ARGS`; resolves { code, signal, stdout, stderr } on exit.
// onStdout(text so far, proc) may signal it.
function up(args, { onStdout, timeoutMs = 150000 } = {}) {
  const proc = spawn(BIN, ['up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; onStdout?.(stdout, proc); });
  proc.stderr.on('data', (d) => { stderr += d; });
  const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  // 'close' comes after 'exit' and after the pipes are drained.
  return new Promise((resolve) => proc.on('close', (code, signal) => {
    clearTimeout(t);
    resolve({ code, signal, stdout, stderr });
  }));
}

// Processes whose command line mentions dir (a hub, worker, runner, relay
// or gateway of this data directory), other than us.
function processesUsing(dir) {
  const found = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd;
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { continue; }
    if (cmd.includes(dir) && Number(pid) !== process.pid) found.push(`${pid}: ${cmd}`);
  }
  return found;
}

const LOGS = ['hub.log', 'worker.log', 'relay.log', 'gateway.log', 'mcp-demo.log'];
const logsOf = (dir) => LOGS.map((f) => {
  try { return `--- ${f} ---\n${readFileSync(join(dir, f), 'utf8')}`; } catch { return ''; }
}).join('\n');

// Resolves true when something accepts a TCP connection on addr (host:port).
function accepts(addr) {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve) => {
    const c = connect(Number(addr.slice(i + 1)), addr.slice(0, i));
    c.on('connect', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
}

const auditOf = (dir) => readFileSync(join(dir, 'gateway-audit.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l));

test('airlock up runs the demo session with the C worker and the MCP tunnel, and exits 0 after it', async () => {
  const dir = tempDir('airlock-e2e-up-');
  try {
    const r = await up(['--listen', '127.0.0.1:0', '--data-dir', dir, '--exit-after-demo']);
    const why = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${logsOf(dir)}`;
    assert.equal(r.code, 0, why);
    assert.deepEqual(processesUsing(dir), [], 'a hub, worker or runner outlived airlock up');

    const out = r.stdout;
    const sid = out.match(/demo session (sesn_\w+)/)?.[1];
    assert.ok(sid, why);
    const url = out.match(/hub listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    assert.ok(url, why);
    assert.doesNotMatch(url, /:0$/, 'the real port is printed');

    // The timeline: every tool call, with its result, in order.
    const lines = out.split('\n');
    const idx = (re, from) => lines.findIndex((l, i) => i > from && re.test(l));
    const timeline = [
      // The private MCP tool, called by the hub through the relay and the gateway.
      /^\d\d:\d\d:\d\d\s+agent\.mcp_tool_use\s+tickets\/lookup_ticket \{"id":"TCK-1042"\}  id=sevt_/,
      /^\d\d:\d\d:\d\d\s+agent\.mcp_tool_result\s+ok: TCK-1042 \[open, high priority\] Checkout fails for cards issued in the EU; assignee dana/,
      /^\d\d:\d\d:\d\d\s+agent\.tool_use\s+write \{"file_path":"notes\.txt"/,
      /user\.tool_result\s+ok: wrote \d+ bytes to notes\.txt/,
      /agent\.tool_use\s+bash \{"command":"wc -l notes\.txt"\}/,
      /user\.tool_result\s+ok: 4 notes\.txt/,
      /agent\.tool_use\s+edit \{"file_path":"notes\.txt"/,
      /user\.tool_result\s+ok: edited notes\.txt \(1 replacement\(s\)\)/,
      /agent\.tool_use\s+grep \{"pattern":"edited"\}/,
      /user\.tool_result\s+ok: .*\/workspace\/notes\.txt:4:this/, // long lines are cut
      /agent\.tool_use\s+read \{"file_path":"notes\.txt"\}/,
      /user\.tool_result\s+ok: airlock demo notes/,
      /agent\.tool_use\s+bash \{"command":"out=/,
      /user\.tool_result\s+ok: wrote .*\/outputs\/report\.md/,
      /agent\.message\s+done: 7 calls, 0 errors/,
      /session\.status_idle\s+end_turn/,
    ];
    let at = -1;
    for (const re of timeline) {
      const i = idx(re, at);
      assert.ok(i > at, `timeline line ${re} missing or out of order:\n${why}`);
      at = i;
    }
    assert.doesNotMatch(out, /user\.tool_result\s+error/, why);
    assert.doesNotMatch(out, /agent\.mcp_tool_result\s+error/, why);
    assert.doesNotMatch(out, /session\.error/, why);

    // The tunnel: its hostname under tunnels.localhost, the relay's client
    // listener, and the gateway's audit line for this very call.
    const [, tunnelId, tunnelHost] = out.match(/tunnel (tnl_\w+) \(([0-9a-f]{16}\.tunnels\.localhost)\)/) ?? [];
    assert.ok(tunnelId, why);
    const relayClient = out.match(/relay listening on (127\.0\.0\.1:\d+) for clients/)?.[1];
    assert.ok(relayClient, why);
    const mcpUrl = out.match(/private MCP server \(tickets\) on (http:\/\/127\.0\.0\.1:\d+)\/mcp/)?.[1];
    assert.ok(mcpUrl, why);
    assert.ok(out.includes(`MCP server   https://tickets.${tunnelHost}/mcp (through the relay at ${relayClient}`), why);
    const calls = auditOf(dir).filter((l) => l.method === 'tools/call');
    assert.equal(calls.length, 1, why);
    const [call] = calls;
    assert.equal(call.tool, 'lookup_ticket');
    assert.equal(call.status, 'ok');
    assert.equal(call.is_error, false);
    assert.equal(call.http_status, 200);
    assert.equal(call.tunnel, tunnelId, 'the call came through this tunnel');
    assert.equal(call.sni, `tickets.${tunnelHost}`);
    assert.equal(call.route, 'tickets');
    assert.equal(call.upstream, mcpUrl);
    assert.match(call.conn, /^c-\d+$/, 'a relay connection, not the direct listener');
    assert.equal(typeof call.stream, 'number', 'an HTTP/2 stream the relay opened');
    assert.match(call.agent.client_info, /^airlock-hub\//);
    assert.match(call.args_hmac, /^hmac-sha256:k0:[0-9a-f]{64}$/);
    const init = auditOf(dir).filter((l) => l.method === 'initialize');
    assert.equal(init.length, 1, 'one MCP session');
    assert.equal(init[0].sni, call.sni);
    // The summary's audit line is this call's.
    assert.match(out, /last call    tools\/call lookup_ticket: ok, HTTP 200, [\d.]+ ms, route tickets, relay connection c-\d+ stream \d+/);
    assert.ok(out.includes(`audit log    ${join(dir, 'gateway-audit.jsonl')}`));

    // Secrets under DIR/tunnel are the owner's only; the token shows nowhere.
    for (const f of ['token', 'audit.key', 'relay.key', 'relay-ca.key', 'inner.key', 'operator-ca.key']) {
      assert.equal(statSync(join(dir, 'tunnel', f)).mode & 0o777, 0o600, f);
    }
    const token = readFileSync(join(dir, 'tunnel', 'token'), 'utf8').trim();
    assert.match(token, new RegExp(`^tnltok\\.${tunnelId}\\.`));
    assert.ok(!(out + r.stderr + logsOf(dir)).includes(token), 'the connector token is never printed or logged');

    // Every child stopped, and said so: nothing listens on the relay's or
    // the MCP server's port any more.
    for (const [f, ev] of [['hub.log', 'hub.stopped'], ['relay.log', 'relay.stopped'], ['gateway.log', 'gw.stopped'],
      ['mcp-demo.log', 'mcp.stopped']]) {
      const last = readFileSync(join(dir, f), 'utf8').trim().split('\n').at(-1);
      assert.equal(JSON.parse(last).event, ev, `${f}: ${last}`);
    }
    assert.equal(await accepts(relayClient), false, 'the relay is gone');
    assert.equal(await accepts(mcpUrl.replace('http://', '')), false, 'the MCP server is gone');

    // The summary after the demo.
    const report = join(dir, 'worker', 'sessions', sid, 'outputs', 'report.md');
    assert.match(out, new RegExp(`hub\\s+${url}`));
    assert.ok(out.includes(join(dir, 'hub', 'api.key')), 'the API key file is printed');
    assert.match(out, new RegExp(`session\\s+${sid}`));
    assert.ok(out.includes(`report       ${report}`), 'the report path is printed');

    // What the agent left: the edited workspace file and the report.
    assert.equal(readFileSync(join(dir, 'worker', 'sessions', sid, 'workspace', 'notes.txt'), 'utf8'),
      'airlock demo notes\nthe hub keeps the session\'s event log\nthe worker runs the agent\'s tools\n'
      + 'this line was edited by the agent\n');
    assert.equal(readFileSync(report, 'utf8'), `# airlock demo report\n\nsession: ${sid}\nnotes.txt: 4 lines\n`
      + 'the edited line:\n4:this line was edited by the agent\n');

    // The environment key never shows: not in the output, not in the logs.
    assert.doesNotMatch(out + r.stderr + logsOf(dir), /al-env-[A-Za-z0-9_-]{16}/);

    // A second run reuses the environment and the agent.
    const again = await up(['--listen', '127.0.0.1:0', '--data-dir', dir, '--exit-after-demo']);
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    const ids = (s) => s.match(/environment (env_\w+) \(airlock-up\), agent (agent_\w+)/)?.slice(1);
    assert.deepEqual(ids(again.stdout), ids(out));
    // ... and the tunnel, with the certificates made the first time.
    assert.ok(again.stdout.includes(`tunnel ${tunnelId} (${tunnelHost}), certificates and token under ${join(dir, 'tunnel')} `
      + '(kept from an earlier run)'), again.stdout);
    assert.match(again.stdout, /agent\.mcp_tool_result\s+ok: TCK-1042/);
    assert.equal(auditOf(dir).filter((l) => l.method === 'tools/call').length, 2, 'one more call through the tunnel');
    assert.notEqual(again.stdout.match(/demo session (sesn_\w+)/)?.[1], sid, 'each run has its own demo session');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('airlock up stops the worker, the hub, the gateway, the relay and the MCP server on SIGTERM and exits 0', async () => {
  const dir = tempDir('airlock-e2e-up-');
  try {
    let sent = false;
    const r = await up(['--listen', '127.0.0.1:0', '--data-dir', dir], {
      onStdout: (s, proc) => {
        if (!sent && s.includes('Ctrl-C stops the worker, the hub, the gateway, the relay and the MCP server.')) {
          sent = true;
          proc.kill('SIGTERM');
        }
      },
    });
    const why = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${logsOf(dir)}`;
    assert.ok(sent, why);
    assert.equal(r.code, 0, why);
    assert.match(r.stdout, /airlock up: stopped/);
    assert.deepEqual(processesUsing(dir), []);
    const mcpUrl = r.stdout.match(/private MCP server \(tickets\) on http:\/\/(127\.0\.0\.1:\d+)\/mcp/)?.[1];
    assert.ok(mcpUrl, why);
    assert.equal(await accepts(mcpUrl), false, 'the MCP server is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('airlock up says so plainly when the hub port is taken', async () => {
  const dir = tempDir('airlock-e2e-up-');
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = `127.0.0.1:${server.address().port}`;
  try {
    const r = await up(['--listen', addr, '--data-dir', dir, '--exit-after-demo']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`airlock up: ${addr} is already in use .*--listen`));
    assert.deepEqual(processesUsing(dir), []);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The private MCP server of `airlock up`, on its own: the official SDK's
// client speaks to it, and what the transport says to refuse is refused
// with a JSON-RPC error body.
test('airlock mcp-demo-server: the MCP SDK client lists and calls its tools; bad requests get JSON-RPC errors', async () => {
  const d = await startDaemon(['mcp-demo-server', '--listen', '127.0.0.1:0'], { what: 'mcp-demo-server' });
  try {
    assert.match(d.ready, /^http:\/\/127\.0\.0\.1:\d+$/);
    const url = `${d.ready}/mcp`;

    const client = new Client({ name: 'airlock-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    assert.equal(client.getServerVersion().name, 'airlock-demo-tickets');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['lookup_ticket', 'list_tickets']);
    assert.deepEqual(tools[0].inputSchema.required, ['id']);
    const found = await client.callTool({ name: 'lookup_ticket', arguments: { id: 'TCK-1042' } });
    assert.equal(found.isError, false);
    assert.match(found.content[0].text, /^TCK-1042 \[open, high priority\] Checkout fails/);
    assert.equal(found.structuredContent.ticket.assignee, 'dana');
    const missing = await client.callTool({ name: 'lookup_ticket', arguments: { id: 'TCK-1' } });
    assert.equal(missing.isError, true);
    assert.match(missing.content[0].text, /^no ticket TCK-1 \(known tickets: TCK-1040, /);
    const open = await client.callTool({ name: 'list_tickets', arguments: { status: 'open' } });
    assert.equal(open.structuredContent.tickets.length, 2);
    assert.match(open.content[0].text, /^2 tickets:\nTCK-1042 \[open\]/);
    await assert.rejects(client.callTool({ name: 'nope', arguments: {} }), /-32602.*Unknown tool: nope/);
    await client.ping();
    await client.close();

    // By hand: the session handshake, then each refusal.
    const post = (body, headers = {}) => fetch(url, {
      method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    });
    const rpcError = async (res, status, code) => {
      assert.equal(res.status, status);
      assert.match(res.headers.get('content-type'), /^application\/json/);
      const b = await res.json();
      assert.equal(b.jsonrpc, '2.0');
      assert.equal(b.error.code, code, JSON.stringify(b));
      return b;
    };
    const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e', version: '1' } } });
    assert.equal(init.status, 200);
    const sid = init.headers.get('mcp-session-id');
    assert.match(sid, /^[0-9a-f]{32}$/);
    assert.equal((await init.json()).result.protocolVersion, '2025-06-18', 'a version it speaks is kept');
    const s = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const note = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, s);
    assert.equal(note.status, 202);
    assert.equal(await note.text(), '');
    await rpcError(await post({ jsonrpc: '2.0', id: 2, method: 'resources/list' }, s), 200, -32601);
    await rpcError(await post({ jsonrpc: '2.0', id: 3, method: 'tools/list' }), 400, -32000);   // no session
    await rpcError(await post({ jsonrpc: '2.0', id: 4, method: 'tools/list' }, { 'mcp-session-id': 'f'.repeat(32) }), 404, -32001);
    await rpcError(await post({ jsonrpc: '2.0', id: 5, method: 'tools/list' }, { ...s, 'mcp-protocol-version': '1999-01-01' }), 400, -32000);
    await rpcError(await post('{"jsonrpc":', s), 400, -32700);
    await rpcError(await post([{ jsonrpc: '2.0', id: 6, method: 'ping' }], s), 400, -32600);
    await rpcError(await post({ jsonrpc: '1.0', id: 7, method: 'ping' }, s), 400, -32600);
    await rpcError(await post({ jsonrpc: '2.0', id: 8, method: 'ping', pad: 'x'.repeat(70000) }, s), 413, -32600);
    await rpcError(await post('{}', { ...s, 'content-type': 'text/plain' }), 415, -32000);
    await rpcError(await post({ jsonrpc: '2.0', id: 9, method: 'ping' }, { ...s, accept: 'text/html' }), 406, -32000);
    await rpcError(await post({ jsonrpc: '2.0', id: 10, method: 'ping' }, { ...s, origin: 'http://evil.example' }), 403, -32000);
    const get = await fetch(url, { headers: { accept: 'text/event-stream', ...s } });
    await rpcError(get, 405, -32000);
    assert.equal(get.headers.get('allow'), 'POST, DELETE');
    await rpcError(await fetch(`${d.ready}/other`, { method: 'POST' }), 404, -32000);
    // Still fine after all that; then the session ends and is gone.
    const ping = await post({ jsonrpc: '2.0', id: 11, method: 'ping' }, s);
    assert.deepEqual(await ping.json(), { jsonrpc: '2.0', id: 11, result: {} });
    assert.equal((await fetch(url, { method: 'DELETE', headers: s })).status, 204);
    await rpcError(await post({ jsonrpc: '2.0', id: 12, method: 'ping' }, s), 404, -32001);
  } finally {
    await d.stop();   // exits 0 on SIGTERM, or this throws with its log
  }
  assert.match(d.logs(), /"event":"mcp\.stopped","calls":3/, 'three tool calls ran (the unknown tool is no call)');
});
