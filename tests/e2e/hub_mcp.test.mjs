// The hub's MCP client, end to end: the scripted agent's `mcp SERVER TOOL
// {json}` directive makes the hub call the tool itself over Streamable HTTP,
//   - through the tunnel (hub --tunnel-relay → relay → gateway → the real
//     @modelcontextprotocol/server-everything), verifying the gateway's inner
//     certificate against the tunnel's registered CA only;
//   - directly, over plain http;
//   - against a small MCP server of the test's own that answers with
//     application/json or text/event-stream, keeps streams open after the
//     response, forgets sessions, refuses credentials or never answers.
// The hub reaches the relay through a counting TCP proxy, so a test can tell
// whether a connection was made at all.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { http as hubHttp, history, setup as hubSetup, startHub, tempDir, until } from './lib/hub.mjs';
import {
  TUNNEL_DOMAIN, createTunnel, freePort, issue, makeCa, relayPki, startDaemon, startEverything, startGateway, startRelay,
} from './lib/tunnel.mjs';

const text = (t) => [{ type: 'user.message', content: [{ type: 'text', text: t }] }];

// A TCP proxy whose target is set later; counts the connections it accepted.
async function countingProxy() {
  const p = { conns: 0, target: null };
  const srv = net.createServer((c) => {
    p.conns++;
    const i = p.target.lastIndexOf(':');
    const u = net.connect(Number(p.target.slice(i + 1)), p.target.slice(0, i));
    c.pipe(u); u.pipe(c);
    c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
    c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  p.addr = `127.0.0.1:${srv.address().port}`;
  p.close = () => new Promise((r) => { srv.close(r); });
  return p;
}

// A minimal Streamable HTTP MCP server (no SDK: the test decides every byte).
// mode 'json' answers application/json; 'sse' answers tools/call with an
// event stream: a notification, a server request that reuses the call's id,
// then the response, and keeps the stream open afterwards (a client that
// waits for the end of the stream never finishes). Records every request.
async function miniMcp({ mode = 'json' } = {}) {
  const m = { mode, requests: [], sessions: new Set(), held: [], forgetAll() { this.sessions.clear(); } };
  let n = 0;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let msg = null;
      try { msg = JSON.parse(body); } catch { /* recorded as null */ }
      m.requests.push({ path: req.url, headers: req.headers, msg });
      if (req.url === '/auth') { res.writeHead(401, { 'www-authenticate': 'Bearer' }); res.end(); return; }
      const sid = req.headers['mcp-session-id'];
      if (msg?.method === 'initialize') {
        const id = `s-${++n}`;
        m.sessions.add(id);
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': id });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'mini', version: '1' } } }));
        return;
      }
      if (!sid || !m.sessions.has(sid)) { res.writeHead(404); res.end(); return; }
      if (msg?.method === 'notifications/initialized') { res.writeHead(202); res.end(); return; }
      if (msg?.method !== 'tools/call') { res.writeHead(400); res.end(); return; }
      const name = msg.params?.name;
      if (name === 'big') {   // a result larger than the hub's default --mcp-max-response (4 MiB)
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'x'.repeat(5 << 20) }] } }));
        return;
      }
      if (name === 'hang') {   // never answered; counts the client hanging up
        m.held.push(res);
        res.on('close', () => { m.hangClosed = (m.hangClosed ?? 0) + 1; });
        return;
      }
      const result = name === 'fail'
        ? { content: [{ type: 'text', text: 'the tool failed on purpose' }], isError: true }
        : name === 'rpcerror' ? null
          : { content: [{ type: 'text', text: `mini:${JSON.stringify(msg.params.arguments)}` }], isError: false };
      const reply = result ? { jsonrpc: '2.0', id: msg.id, result } : { jsonrpc: '2.0', id: msg.id, error: { code: -32602, message: 'no such tool' } };
      if (m.mode === 'json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, method: 'ping' })}\n\n`);
      res.write(`: a comment\nid: 7\ndata: ${JSON.stringify(reply)}\n\n`);
      m.held.push(res);   // left open on purpose
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  m.url = `http://127.0.0.1:${srv.address().port}`;
  m.close = () => {
    for (const r of m.held) r.destroy();
    srv.closeAllConnections();
    return new Promise((r) => { srv.close(r); });
  };
  return m;
}

async function turnEnded(hub, sid, n = 1) {
  return until(() => history(hub, sid), (h) => h.filter((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn').length >= n,
    { what: `end_turn in ${sid}`, timeoutMs: 60000 });
}

function sub(dir, name) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

function auditLines(file) {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

describe('the hub calls MCP tools itself', () => {
  const dir = tempDir('airlock-e2e-hubmcp-');
  const auditFile = join(dir, 'audit.jsonl');
  let hub, tun, rpki, rogue, relay, gateway, everything, proxy, mini, miniSse, env;
  let docsUrl;

  before(async () => {
    proxy = await countingProxy();
    // A CA the hub trusts for MCP servers outside tunnels (--mcp-cacert), and
    // that OpenSSL's default verify paths would trust too (SSL_CERT_FILE): a
    // tunnel's certificate check must use neither.
    rogue = makeCa(sub(dir, 'rogue'), 'rogue');
    hub = await startHub({
      args: ['--tunnel-domain', TUNNEL_DOMAIN, '--tunnel-relay', proxy.addr, '--mcp-timeout', '20s', '--mcp-cacert', rogue.ca],
      env: { SSL_CERT_FILE: rogue.ca, SSL_CERT_DIR: sub(dir, 'rogue-dir') },
    });
    tun = await createTunnel(hub, sub(dir, 't1'));
    rpki = relayPki(dir);
    everything = await startEverything();
    relay = await startRelay(hub, rpki);
    proxy.target = relay.clientAddr;
    gateway = await startGateway(relay, tun, rpki.ca, {
      routes: [`docs=${everything.url}`], args: ['--audit-log', auditFile, '--connections', '1'],
    });
    mini = await miniMcp({ mode: 'json' });
    miniSse = await miniMcp({ mode: 'sse' });
    docsUrl = `https://docs.${tun.tunnel.hostname}/mcp`;
    env = await hubSetup(hub);
  });

  after(async () => {
    await gateway?.stop();
    await relay?.stop();
    await everything?.stop();
    await mini?.close();
    await miniSse?.close();
    await hub?.stop();
    await proxy?.close();
    hub?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  // An agent with the given servers, and a session that runs message.
  async function run(servers, message) {
    const agent = await env.client.beta.agents.create({
      name: 'mcp', model: 'airlock-scripted', mcp_servers: servers,
      tools: [{ type: 'agent_toolset_20260401' }, ...servers.map((s) => ({ type: 'mcp_toolset', mcp_server_name: s.name }))],
    });
    const s = await env.client.beta.sessions.create({ agent: agent.id, environment_id: env.environment.id, initial_events: text(message) });
    const h = await turnEnded(hub, s.id);
    return { session: s, h };
  }
  const results = (h) => h.filter((e) => e.type === 'agent.mcp_tool_result');
  const summary = (h) => h.filter((e) => e.type === 'agent.message').at(-1).content[0].text;

  test('(a) through the tunnel: echo comes back, is_error false, the turn ends', async () => {
    const before = proxy.conns;
    const { h } = await run([{ type: 'url', name: 'docs', url: docsUrl }], 'mcp docs echo {"message":"hello"}');
    const use = h.find((e) => e.type === 'agent.mcp_tool_use');
    const [res] = results(h);
    assert.ok(res, `a result: ${JSON.stringify(h)}`);
    assert.equal(res.mcp_tool_use_id, use.id);
    assert.equal(res.is_error, false, JSON.stringify(res));
    assert.match(JSON.stringify(res.content), /hello/);
    assert.equal(res.content[0].type, 'text');
    assert.equal(summary(h), 'done: 1 calls, 0 errors');
    assert.ok(!h.some((e) => e.type === 'session.error'));
    assert.ok(proxy.conns > before, 'the hub dialled the relay (through the counting proxy)');
    // The call waited outside the model turn: span end, then the result.
    const types = h.map((e) => e.type);
    assert.ok(types.indexOf('span.model_request_end', types.indexOf('agent.mcp_tool_use')) < types.indexOf('agent.mcp_tool_result'));
    assert.equal(h.at(-1).type, 'session.status_idle');
  });

  test('(b) two calls in one turn share one MCP session (one initialize in the gateway audit)', async () => {
    // (a)'s call went through this gateway; its audit lines are written
    // asynchronously: count from after them.
    await until(() => auditLines(auditFile), (l) => l.some((x) => x.method === 'tools/call'), { what: "(a)'s audit line" });
    const tcBefore = auditLines(auditFile).filter((l) => l.method === 'tools/call').length;
    const initBefore = auditLines(auditFile).filter((l) => l.method === 'initialize').length;
    const { h } = await run([{ type: 'url', name: 'docs', url: docsUrl }],
      'mcp docs echo {"message":"one"}\nmcp docs echo {"message":"two"}');
    const rs = results(h);
    assert.equal(rs.length, 2);
    assert.match(JSON.stringify(rs[0].content), /one/);
    assert.match(JSON.stringify(rs[1].content), /two/);
    assert.equal(summary(h), 'done: 2 calls, 0 errors');
    const lines = await until(() => auditLines(auditFile), (l) => l.filter((x) => x.method === 'tools/call').length >= tcBefore + 2,
      { what: 'two tools/call audit lines' });
    const calls = lines.filter((l) => l.method === 'tools/call').slice(tcBefore);
    assert.equal(calls.length, 2);
    assert.equal(lines.filter((l) => l.method === 'initialize').length - initBefore, 1, 'exactly one initialize for the two calls');
    assert.ok(calls[0].session && calls[0].session === calls[1].session, 'both calls in the same MCP session');
    assert.equal(calls[0].agent?.client_info?.startsWith('airlock-hub/'), true, JSON.stringify(calls[0]));
  });

  test('(c) the same server directly over plain http', async () => {
    const { h } = await run([{ type: 'url', name: 'local', url: `${everything.url}/mcp` }], 'mcp local echo {"message":"direct"}');
    const [res] = results(h);
    assert.equal(res.is_error, false, JSON.stringify(res));
    assert.match(JSON.stringify(res.content), /direct/);
    assert.equal(summary(h), 'done: 1 calls, 0 errors');
  });

  test('(d) a tunnel whose CA is archived, and an archived tunnel: is_error, and no connection to the relay', async () => {
    const t2 = await createTunnel(hub, sub(dir, 't2'));
    const a = await hubHttp(hub, 'POST', `/v1/tunnels/${t2.tunnel.id}/certificates/${t2.certificate.id}/archive`);
    assert.equal(a.status, 200);
    const t3 = await createTunnel(hub, sub(dir, 't3'));
    assert.equal((await hubHttp(hub, 'POST', `/v1/tunnels/${t3.tunnel.id}/archive`)).status, 200);
    const before = proxy.conns;
    const { h } = await run([
      { type: 'url', name: 'noca', url: `https://docs.${t2.tunnel.hostname}/mcp` },
      { type: 'url', name: 'gone', url: `https://docs.${t3.tunnel.hostname}/mcp` },
    ], 'mcp noca echo {"message":"x"}\nmcp gone echo {"message":"y"}');
    const rs = results(h);
    assert.equal(rs.length, 2);
    for (const r of rs) assert.equal(r.is_error, true);
    assert.match(rs[0].content[0].text, new RegExp(`tunnel ${t2.tunnel.id} has no active CA certificate`));
    assert.match(rs[1].content[0].text, new RegExp(`tunnel ${t3.tunnel.id} has no active CA certificate`));
    assert.equal(summary(h), 'done: 2 calls, 2 errors');
    const errs = h.filter((e) => e.type === 'session.error');
    assert.equal(errs.length, 2);
    for (const e of errs) assert.equal(e.error.type, 'mcp_connection_failed_error');
    assert.equal(proxy.conns, before, 'no connection reached the relay');
  });

  test('(e) a gateway whose inner certificate is signed by another CA than the registered one: is_error, never a success', async () => {
    const t4 = await createTunnel(hub, sub(dir, 't4'));
    // Swap the registered CA for an unrelated one: the inner cert no longer chains to it.
    assert.equal((await hubHttp(hub, 'POST', `/v1/tunnels/${t4.tunnel.id}/certificates/${t4.certificate.id}/archive`)).status, 200);
    const other = makeCa(join(dir, 't4', 'other'), 'other');
    const c = await hubHttp(hub, 'POST', `/v1/tunnels/${t4.tunnel.id}/certificates`, { body: { certificate_pem: readFileSync(other.ca, 'utf8') } });
    assert.equal(c.status, 200);
    const audit4 = join(dir, 'audit4.jsonl');
    const gw = await startGateway(relay, t4, rpki.ca, {
      routes: [`docs=${everything.url}`], args: ['--audit-log', audit4, '--connections', '1'],
    });
    try {
      const before = proxy.conns;
      const { h } = await run([{ type: 'url', name: 'docs', url: `https://docs.${t4.tunnel.hostname}/mcp` }], 'mcp docs echo {"message":"nope"}');
      const [res] = results(h);
      assert.equal(res.is_error, true, JSON.stringify(res));
      assert.match(res.content[0].text, /TLS|certificate/);
      assert.ok(!JSON.stringify(res.content).includes('Echo'), 'no tool output');
      assert.equal(h.find((e) => e.type === 'session.error')?.error.type, 'mcp_connection_failed_error');
      assert.ok(proxy.conns > before, 'the hub did reach the relay: the refusal is its own certificate check');
      assert.ok(!auditLines(audit4).some((l) => l.method === 'tools/call'), 'no tools/call reached the server');
    } finally {
      await gw.stop();
    }
  });

  test('(c2) https outside a tunnel, verified against --mcp-cacert', async () => {
    const leaf = issue(rogue, 'direct', { dns: ['localhost'] });
    const gw = await startDaemon(['gateway', '--listen-tls', '127.0.0.1:0', '--cert', leaf.cert, '--key', leaf.key,
      '--route', `localhost=${everything.url}`], { what: 'gateway (direct)' });
    try {
      const port = gw.ready.split(':').at(-1);
      const { h } = await run([{ type: 'url', name: 'tls', url: `https://localhost:${port}/mcp` }], 'mcp tls echo {"message":"over tls"}');
      const [res] = results(h);
      assert.equal(res.is_error, false, JSON.stringify(res));
      assert.match(JSON.stringify(res.content), /over tls/);
    } finally {
      await gw.stop();
    }
  });

  test('(e2) a gateway presenting a certificate from --mcp-cacert\'s CA (also in SSL_CERT_FILE), not the tunnel\'s: is_error', async () => {
    const t5 = await createTunnel(hub, sub(dir, 't5'));
    const inner = issue(rogue, 't5-inner', { dns: [`*.${t5.tunnel.hostname}`] });
    const audit5 = join(dir, 'audit5.jsonl');
    const gw = await startGateway(relay, { ...t5, inner }, rpki.ca, {
      routes: [`docs=${everything.url}`], args: ['--audit-log', audit5, '--connections', '1'],
    });
    try {
      const before = proxy.conns;
      const { h } = await run([{ type: 'url', name: 'docs', url: `https://docs.${t5.tunnel.hostname}/mcp` }], 'mcp docs echo {"message":"nope"}');
      const [res] = results(h);
      assert.equal(res.is_error, true, JSON.stringify(res));
      assert.match(res.content[0].text, /TLS handshake failed/);
      assert.ok(proxy.conns > before, 'the hub reached the relay');
      assert.ok(!auditLines(audit5).some((l) => l.method === 'tools/call'), 'no tools/call reached the server');
    } finally {
      await gw.stop();
    }
  });

  test('(d2) a tunnel with an active CA but no gateway connected: is_error, a connection error', async () => {
    const t6 = await createTunnel(hub, sub(dir, 't6'));
    const before = proxy.conns;
    const { h } = await run([{ type: 'url', name: 'docs', url: `https://docs.${t6.tunnel.hostname}/mcp` }], 'mcp docs echo {"message":"x"}');
    const [res] = results(h);
    assert.equal(res.is_error, true, JSON.stringify(res));
    assert.match(res.content[0].text, /^MCP server "docs": /);
    assert.equal(h.find((e) => e.type === 'session.error')?.error.type, 'mcp_connection_failed_error');
    assert.ok(proxy.conns > before, 'the hub tried the relay');
    assert.equal(summary(h), 'done: 1 calls, 1 errors');
  });

  test('(f) an unknown server name', async () => {
    const { h } = await run([{ type: 'url', name: 'docs', url: docsUrl }], 'mcp nope echo {"message":"x"}');
    const [res] = results(h);
    assert.equal(res.is_error, true);
    assert.match(res.content[0].text, /"nope" is not one of this agent's mcp_servers/);
    assert.ok(!h.some((e) => e.type === 'session.error'), 'a model-side mistake is no connection error');
    assert.equal(summary(h), 'done: 1 calls, 1 errors');
  });

  test('(g) a server that answers with an event stream it keeps open; notifications and server requests are skipped', async () => {
    miniSse.requests.length = 0;
    const { h } = await run([{ type: 'url', name: 'mini', url: `${miniSse.url}/mcp` }],
      'mcp mini echo {"message":"sse"}\nmcp mini echo {"message":"again"}');
    const rs = results(h);
    assert.equal(rs.length, 2);
    assert.equal(rs[0].is_error, false, JSON.stringify(rs[0]));
    assert.equal(rs[0].content[0].text, 'mini:{"message":"sse"}');
    assert.equal(rs[1].content[0].text, 'mini:{"message":"again"}');
    // The protocol as the server saw it.
    const methods = miniSse.requests.map((r) => r.msg?.method);
    assert.deepEqual(methods, ['initialize', 'notifications/initialized', 'tools/call', 'tools/call']);
    const [init, notif, call1, call2] = miniSse.requests;
    assert.equal(init.msg.params.protocolVersion, '2025-11-25');
    assert.match(init.msg.params.clientInfo.name, /^airlock-hub$/);
    assert.ok(init.msg.params.clientInfo.version);
    assert.equal(init.headers['mcp-session-id'], undefined);
    for (const r of miniSse.requests) {
      assert.match(r.headers.accept, /application\/json/);
      assert.match(r.headers.accept, /text\/event-stream/);
      assert.equal(r.headers['content-type'], 'application/json');
    }
    for (const r of [notif, call1, call2]) {
      assert.equal(r.headers['mcp-session-id'], 's-1');
      assert.equal(r.headers['mcp-protocol-version'], '2025-11-25');
    }
    assert.equal(notif.msg.id, undefined, 'a notification has no id');
    assert.deepEqual(call1.msg.params, { name: 'echo', arguments: { message: 'sse' } });
  });

  test('(h) a tool result with isError, a JSON-RPC error, and the same over application/json', async () => {
    const { h } = await run([{ type: 'url', name: 'mini', url: `${mini.url}/mcp` }],
      'mcp mini fail {}\nmcp mini rpcerror {}\nmcp mini echo {"k":1}');
    const rs = results(h);
    assert.equal(rs.length, 3);
    assert.equal(rs[0].is_error, true);
    assert.equal(rs[0].content[0].text, 'the tool failed on purpose');
    assert.equal(rs[1].is_error, true);
    assert.match(rs[1].content[0].text, /MCP error -32602: no such tool/);
    assert.equal(rs[2].is_error, false);
    assert.equal(rs[2].content[0].text, 'mini:{"k":1}');
    assert.ok(!h.some((e) => e.type === 'session.error'), 'the server answered: no connection error');
    assert.equal(summary(h), 'done: 3 calls, 2 errors');
  });

  test('an expired MCP session (404) is initialized again, once, and the call goes through', async () => {
    mini.requests.length = 0;
    const agent = await env.client.beta.agents.create({
      name: 'mcp', model: 'airlock-scripted', mcp_servers: [{ type: 'url', name: 'mini', url: `${mini.url}/mcp` }],
    });
    const s = await env.client.beta.sessions.create({ agent: agent.id, environment_id: env.environment.id, initial_events: text('mcp mini echo {"n":1}') });
    await turnEnded(hub, s.id);
    mini.forgetAll();
    await env.client.beta.sessions.events.send(s.id, { events: text('mcp mini echo {"n":2}') });
    const h = await turnEnded(hub, s.id, 2);
    const rs = results(h);
    assert.equal(rs.length, 2);
    assert.equal(rs[1].is_error, false, JSON.stringify(rs[1]));
    assert.equal(rs[1].content[0].text, 'mini:{"n":2}');
    assert.deepEqual(mini.requests.map((r) => r.msg?.method),
      ['initialize', 'notifications/initialized', 'tools/call', 'tools/call', 'initialize', 'notifications/initialized', 'tools/call']);
    const first = mini.requests[2].headers['mcp-session-id'];
    assert.ok(first);
    assert.equal(mini.requests[3].headers['mcp-session-id'], first, 'the second call tried the cached session');
    const second = mini.requests.at(-1).headers['mcp-session-id'];
    assert.ok(second && second !== first, 'then a new one');
  });

  test('mcp_toolset permission policies: always_ask waits for a confirmation, deny never calls, a disabled tool is refused', async () => {
    const calls = () => mini.requests.filter((r) => r.msg?.method === 'tools/call').map((r) => JSON.stringify(r.msg.params.arguments));
    const agent = await env.client.beta.agents.create({
      name: 'mcp-ask', model: 'airlock-scripted', mcp_servers: [{ type: 'url', name: 'mini', url: `${mini.url}/mcp` }],
      tools: [{ type: 'mcp_toolset', mcp_server_name: 'mini', default_config: { permission_policy: { type: 'always_ask' } },
        configs: [{ name: 'fail', enabled: false }] }],
    });
    const s = await env.client.beta.sessions.create({ agent: agent.id, environment_id: env.environment.id, initial_events: text('mcp mini echo {"ask":1}') });
    const waiting = async (n) => until(() => history(hub, s.id), (h) => h.filter((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'requires_action').length >= n,
      { what: 'requires_action' });
    let h = await waiting(1);
    const use1 = h.filter((e) => e.type === 'agent.mcp_tool_use').at(-1);
    assert.equal(use1.evaluated_permission, 'ask');
    assert.deepEqual(h.at(-1).stop_reason.event_ids, [use1.id]);
    assert.ok(!calls().includes('{"ask":1}'), 'nothing called before the confirmation');
    await env.client.beta.sessions.events.send(s.id, { events: [{ type: 'user.tool_confirmation', tool_use_id: use1.id, result: 'allow' }] });
    h = await turnEnded(hub, s.id, 1);
    assert.equal(results(h).at(-1).is_error, false, JSON.stringify(results(h)));
    assert.equal(results(h).at(-1).content[0].text, 'mini:{"ask":1}');
    assert.equal(calls().filter((c) => c === '{"ask":1}').length, 1);

    await env.client.beta.sessions.events.send(s.id, { events: text('mcp mini echo {"ask":2}') });
    h = await waiting(2);
    const use2 = h.filter((e) => e.type === 'agent.mcp_tool_use').at(-1);
    await env.client.beta.sessions.events.send(s.id, { events: [{ type: 'user.tool_confirmation', tool_use_id: use2.id, result: 'deny', deny_message: 'not now' }] });
    h = await turnEnded(hub, s.id, 2);
    assert.equal(results(h).at(-1).is_error, true);
    assert.equal(results(h).at(-1).content[0].text, 'The user denied this tool call: not now');
    assert.ok(!calls().includes('{"ask":2}'), 'a denied call is never made');

    await env.client.beta.sessions.events.send(s.id, { events: text('mcp mini fail {"ask":3}') });
    h = await turnEnded(hub, s.id, 3);
    const use3 = h.filter((e) => e.type === 'agent.mcp_tool_use').at(-1);
    assert.equal(use3.evaluated_permission, 'deny');
    assert.match(results(h).at(-1).content[0].text, /tool fail of MCP server mini is disabled/);
    assert.ok(!calls().includes('{"ask":3}'));
  });

  test('user.interrupt during an MCP call ends the turn and hangs up on the server; no result is appended', async () => {
    const closedBefore = mini.hangClosed ?? 0;
    const hangs = () => mini.requests.filter((r) => r.msg?.params?.name === 'hang').length;
    const hangsBefore = hangs();
    const agent = await env.client.beta.agents.create({
      name: 'mcp', model: 'airlock-scripted', mcp_servers: [{ type: 'url', name: 'mini', url: `${mini.url}/mcp` }],
    });
    const s = await env.client.beta.sessions.create({ agent: agent.id, environment_id: env.environment.id, initial_events: text('mcp mini hang {}\nsay never') });
    await until(async () => hangs(), (n) => n === hangsBefore + 1, { what: 'the hanging tools/call' });
    await env.client.beta.sessions.events.send(s.id, { events: [{ type: 'user.interrupt' }] });
    const h = await turnEnded(hub, s.id);
    await until(async () => mini.hangClosed ?? 0, (n) => n > closedBefore, { what: 'the hub hanging up' });
    assert.equal(results(h).length, 0, 'an abandoned call gets no result');
    assert.ok(!h.some((e) => e.type === 'agent.message' && e.content[0].text === 'never'));
  });

  test('the servers of a session\'s updated agent are the ones called; a response over --mcp-max-response is refused', async () => {
    const agent = await env.client.beta.agents.create({
      name: 'mcp', model: 'airlock-scripted', mcp_servers: [{ type: 'url', name: 'm', url: `http://127.0.0.1:${await freePort()}/mcp` }],
    });
    const s = await env.client.beta.sessions.create({ agent: agent.id, environment_id: env.environment.id });
    const u = await hubHttp(hub, 'POST', `/v1/sessions/${s.id}`, { body: { agent: { mcp_servers: [{ type: 'url', name: 'm', url: `${mini.url}/mcp` }] } } });
    assert.equal(u.status, 200, JSON.stringify(u.body));
    await env.client.beta.sessions.events.send(s.id, { events: text('mcp m echo {"over":"ride"}\nmcp m big {}') });
    const h = await turnEnded(hub, s.id);
    const rs = results(h);
    assert.equal(rs.length, 2);
    assert.equal(rs[0].is_error, false, JSON.stringify(rs[0]));
    assert.equal(rs[0].content[0].text, 'mini:{"over":"ride"}');
    assert.equal(rs[1].is_error, true);
    assert.match(rs[1].content[0].text, /response too large/);
    assert.ok(JSON.stringify(h).length < (1 << 20), 'nothing of the big answer was stored');
    assert.equal(h.find((e) => e.type === 'session.error')?.error.type, 'mcp_connection_failed_error');
  });

  test('401 from the server is an authentication error; a refused connection a connection error', async () => {
    const dead = await freePort();
    const { h } = await run([
      { type: 'url', name: 'auth', url: `${mini.url}/auth` },
      { type: 'url', name: 'dead', url: `http://127.0.0.1:${dead}/mcp` },
    ], 'mcp auth echo {}\nmcp dead echo {}');
    const rs = results(h);
    assert.equal(rs.length, 2);
    assert.match(rs[0].content[0].text, /HTTP 401/);
    assert.match(rs[1].content[0].text, /connection refused/);
    assert.deepEqual(h.filter((e) => e.type === 'session.error').map((e) => e.error.type),
      ['mcp_authentication_failed_error', 'mcp_connection_failed_error']);
    assert.equal(summary(h), 'done: 2 calls, 2 errors');
  });
});

for (const how of ['kill9', 'stop', 'confirmed']) test(`a hub restarted (${how}) while an MCP call is in flight resolves it as interrupted and never calls twice`, async () => {
  const mini = await miniMcp({ mode: 'json' });
  const dataDir = tempDir();
  let hub = await startHub({ dataDir });
  try {
    // 'confirmed': an always_ask call, allowed, then in flight when the hub dies.
    const tools = how === 'confirmed'
      ? [{ type: 'mcp_toolset', mcp_server_name: 'mini', default_config: { permission_policy: { type: 'always_ask' } } }]
      : [{ type: 'agent_toolset_20260401' }];
    const env = await hubSetup(hub, { agent: { mcp_servers: [{ type: 'url', name: 'mini', url: `${mini.url}/mcp` }], tools } });
    const s = await env.client.beta.sessions.create({
      agent: env.agent.id, environment_id: env.environment.id, initial_events: text('mcp mini hang {}\nsay after'),
    });
    if (how === 'confirmed') {
      const h0 = await until(() => history(hub, s.id), (h) => h.some((e) => e.stop_reason?.type === 'requires_action'), { what: 'requires_action' });
      const use = h0.find((e) => e.type === 'agent.mcp_tool_use');
      await env.client.beta.sessions.events.send(s.id, { events: [{ type: 'user.tool_confirmation', tool_use_id: use.id, result: 'allow' }] });
    }
    await until(async () => mini.requests.filter((r) => r.msg?.method === 'tools/call').length, (n) => n === 1, { what: 'the tools/call' });
    if (how !== 'stop') await hub.kill9();
    else {
      await hub.stop();   // SIGTERM: exits 0 (sanitizers included) with the call abandoned
      assert.match(hub.logs(), /mcp\.calls_abandoned/);
    }
    hub = await startHub({ dataDir, listen: new URL(hub.url).host });
    const h = await turnEnded(hub, s.id);
    const rs = results(h);
    assert.equal(rs.length, 1);
    assert.equal(rs[0].is_error, true);
    assert.equal(rs[0].content[0].text, 'interrupted by a hub restart');
    assert.ok(h.some((e) => e.type === 'agent.message' && e.content[0].text === 'after'), 'the turn went on');
    assert.equal(summary(h), 'done: 1 calls, 1 errors');
    assert.equal(mini.requests.filter((r) => r.msg?.method === 'tools/call').length, 1, 'called once');
  } finally {
    await hub.stop();
    await mini.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  function results(h) { return h.filter((e) => e.type === 'agent.mcp_tool_result'); }
  function summary(h) { return h.filter((e) => e.type === 'agent.message').at(-1).content[0].text; }
});

test('--mcp-timeout bounds a call to a server that never answers; the turn goes on', async () => {
  const mini = await miniMcp({ mode: 'json' });
  const hub = await startHub({ args: ['--mcp-timeout', '1s'] });
  try {
    const env = await hubSetup(hub, { agent: { mcp_servers: [{ type: 'url', name: 'mini', url: `${mini.url}/mcp` }] } });
    const t0 = Date.now();
    const s = await env.client.beta.sessions.create({
      agent: env.agent.id, environment_id: env.environment.id, initial_events: text('mcp mini hang {}\nmcp mini echo {"x":1}'),
    });
    const h = await turnEnded(hub, s.id);
    const rs = h.filter((e) => e.type === 'agent.mcp_tool_result');
    assert.equal(rs.length, 2);
    assert.equal(rs[0].is_error, true);
    assert.match(rs[0].content[0].text, /timed out/);
    assert.ok(Date.now() - t0 >= 1000, 'not before the timeout');
    assert.equal(h.find((e) => e.type === 'session.error')?.error.type, 'mcp_connection_failed_error');
    assert.equal(rs[1].is_error, false, 'the next call initializes afresh and succeeds');
    assert.equal(rs[1].content[0].text, 'mini:{"x":1}');
  } finally {
    await hub.stop();
    hub.cleanup();
    await mini.close();
  }
});
