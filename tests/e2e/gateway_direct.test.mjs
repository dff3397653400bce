// The gateway's stream side on its direct listener (docs/internals/GATEWAY_STREAM.md):
// `airlock gateway --listen-tls` terminates the inner TLS with an operator
// certificate made here, routes by SNI and proxies to a Node upstream. The
// client is Node's https with servername docs.gw.test and the operator CA.
// Checked: headers and statuses pass untouched both ways; each SSE event
// reaches the client before the upstream sends the next (the upstream waits
// for the test's ack on its stdin); 10 MB each way intact; an upstream
// outside --allowed-ips gets a 502; an unknown SNI gets a TLS alert; a
// client abort closes the upstream connection; one audit line per
// tools/call with the tool and the HMAC, and the argument text nowhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import dns from 'node:dns/promises';
import tls from 'node:tls';
import { join } from 'node:path';
import { tempDir } from './lib/hub.mjs';
import { issue, makeCa, startDaemon, startNodeUpstream } from './lib/tunnel.mjs';

const MARKER = 'secret-arg-marker-5d1c';
const AUDIT_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

const UPSTREAM = `
import http from 'node:http';
import { createHash } from 'node:crypto';
import readline from 'node:readline';
const acks = [];
let waiting = null;
readline.createInterface({ input: process.stdin }).on('line', () => {
  if (waiting) { const w = waiting; waiting = null; w(); } else acks.push(1);
});
const ack = () => new Promise((r) => { if (acks.length) { acks.pop(); r(); } else waiting = r; });
const s = http.createServer(async (req, res) => {
  const chunks = [];
  if (req.url === '/hang') {
    req.socket.on('close', () => console.log('CLOSED /hang'));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\\n\\n');
    return;
  }
  if (req.url === '/down') {
    /* 128 MiB as fast as the gateway takes it; "WRITTEN n" each time it pushes back. */
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(1 << 20, 0x61);
    let written = 0;
    for (let i = 0; i < 128; i++) {
      written += chunk.length;
      if (!res.write(chunk)) {
        console.log('WRITTEN ' + written);
        await new Promise((r) => res.once('drain', r));
      }
    }
    res.end();
    return;
  }
  if (req.url === '/up') {
    /* Reads nothing until the test says so on stdin. */
    req.pause();
    await ack();
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => res.end(String(n)));
    req.resume();
    return;
  }
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  if (req.url === '/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    for (let i = 0; i < 5; i++) {
      res.write('id: ' + i + '\\ndata: {"n":' + i + '}\\n\\n');
      await ack();
      await new Promise((r) => setTimeout(r, 10));
    }
    res.end();
    return;
  }
  if (req.url === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-sha256': createHash('sha256').update(body).digest('hex') });
    res.end(body);
    return;
  }
  const status = Number(req.headers['x-want-status'] || 200);
  let out = JSON.stringify({ raw: req.rawHeaders, method: req.method, url: req.url });
  try {
    const m = JSON.parse(body.toString());
    if (m.method === 'tools/call') out = JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'ok' }] } });
  } catch {}
  res.writeHead(status, { 'content-type': 'application/json', 'Mcp-Session-Id': 'sess-up-1',
    'MCP-Protocol-Version': '2025-11-25', 'WWW-Authenticate': 'Bearer resource_metadata="https://docs.gw.test/.well-known/oauth-protected-resource"' });
  res.end(status === 202 ? '' : out);
});
s.listen(0, process.env.UP_HOST || '127.0.0.1', () => console.log('PORT ' + s.address().port));
`;

function split(addr) {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

function request(gw, ca, { servername = 'docs.gw.test', path = '/mcp', method = 'POST', headers = {}, body = '' } = {}) {
  const { host, port } = split(gw.ready);
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port, servername, ca, path, method, agent: false, headers }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Waits for text in a growing log, failing after ms.
function waitFor(getLog, text, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = setInterval(() => {
      if (getLog().includes(text)) { clearInterval(tick); resolve(Date.now() - t0); }
      else if (Date.now() - t0 > ms) { clearInterval(tick); reject(new Error(`${what}: no "${text}" within ${ms} ms`)); }
    }, 5);
  });
}

async function setup(t, extra = []) {
  const dir = tempDir('airlock-gwd-');
  const ca = makeCa(join(dir, 'op'), 'operator');
  const inner = issue(ca, 'inner', { dns: ['docs.gw.test', '*.gw.test'] });
  const up = await startNodeUpstream(UPSTREAM);
  const auditLog = join(dir, 'audit.jsonl');
  const keyFile = join(dir, 'audit.key');
  writeFileSync(keyFile, AUDIT_KEY + '\n', { mode: 0o600 });
  const gw = await startDaemon(['gateway', '--listen-tls', '127.0.0.1:0', '--route', `docs=http://127.0.0.1:${up.port}`,
    '--cert', inner.cert, '--key', inner.key, '--audit-log', auditLog, '--audit-key-file', keyFile,
    '--audit-key-id', 'k9', ...extra], { what: 'gateway' });
  t.after(async () => {
    await gw.kill9();
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, ca: readFileSync(ca.ca), caPaths: ca, inner, up, gw, auditLog };
}

test('gateway direct: headers and statuses pass untouched both ways', async (t) => {
  const { ca, gw } = await setup(t);
  for (const status of [200, 202, 400, 401, 404, 405]) {
    const headers = {
      Host: 'docs.gw.test', 'Content-Type': 'application/json', 'Mcp-Session-Id': 'sess-abc-123', 'MCP-Protocol-Version': '2025-06-18',
      'Last-Event-ID': 'evt-41', Authorization: 'Bearer opaque.token.value', 'Mcp-Method': 'tools/list',
      'Mcp-Name': 'x', Origin: 'https://client.example', 'X-Want-Status': String(status),
    };
    const r = await request(gw, ca, { headers, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(r.status, status);
    assert.equal(r.headers['mcp-session-id'], 'sess-up-1');
    assert.equal(r.headers['mcp-protocol-version'], '2025-11-25');
    assert.match(r.headers['www-authenticate'], /resource_metadata=/);
    assert.ok(r.raw.includes('Mcp-Session-Id') && r.raw.includes('MCP-Protocol-Version'), 'header case kept');
    if (status === 202) { assert.equal(r.body.length, 0); continue; }
    const seen = JSON.parse(r.body.toString());
    const raw = seen.raw;
    for (const [k, v] of Object.entries(headers)) {
      const i = raw.indexOf(k);
      assert.ok(i >= 0 && raw[i + 1] === v, `${k} reached the upstream unchanged`);
    }
  }
  await gw.stop();
});

test('gateway direct: every SSE event reaches the client before the next is sent', async (t) => {
  const { ca, gw, up } = await setup(t);
  const { host, port } = split(gw.ready);
  const got = await new Promise((resolve, reject) => {
    const events = [];
    const req = https.request({ host, port, servername: 'docs.gw.test', ca, path: '/sse', method: 'POST', agent: false,
      headers: { accept: 'text/event-stream' } }, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream');
      let buf = '';
      let timer = setTimeout(() => reject(new Error('no SSE event within 3 s (buffered?)')), 3000);
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          events.push(buf.slice(0, k));
          buf = buf.slice(k + 2);
          clearTimeout(timer);
          timer = setTimeout(() => reject(new Error('next SSE event not delivered within 3 s')), 3000);
          up.proc.stdin.write('ack\n');   /* only now does the upstream send the next one */
        }
      });
      res.on('end', () => { clearTimeout(timer); resolve(events); });
    });
    req.on('error', reject);
    req.end('{}');
  });
  assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => `id: ${i}\ndata: {"n":${i}}`));
  await gw.stop();
});

test('gateway direct: 10 MB up and down intact', async (t) => {
  const { ca, gw } = await setup(t);
  const body = randomBytes(10 * 1024 * 1024);
  const r = await request(gw, ca, { path: '/big', body, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-sha256'], createHash('sha256').update(body).digest('hex'));
  assert.equal(r.body.length, body.length);
  assert.ok(r.body.equals(body));
  await gw.stop();
});

test('gateway direct: an upstream outside --allowed-ips gets 502, an unknown SNI a TLS alert', async (t) => {
  const { ca, gw } = await setup(t, ['--allowed-ips', '10.0.0.0/8', '--admin-listen', '127.0.0.1:0']);
  const admin = JSON.parse(gw.logs().split('\n').find((l) => l.includes('"gw.admin"'))).url;
  const r = await request(gw, ca, { body: '{}' });
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body.toString()).error.reason, 'ip_not_allowed');
  await assert.rejects(request(gw, ca, { servername: 'wiki.gw.test' }),
    (e) => /unrecognized name|UNRECOGNIZED_NAME/i.test(`${e.code} ${e.message}`));
  assert.match(gw.logs(), /"reason":"ip_not_allowed"/);
  const metrics = await (await fetch(`${admin.replace(/\/$/, '')}/metrics`)).text();
  assert.match(metrics, /^upstream_connect_errors_total\{route="docs",reason="ip_not_allowed"\} 1$/m);
  assert.match(metrics, /^inner_tls_handshakes_total\{result="unknown_sni"\} 1$/m);
  assert.match(metrics, /^inner_tls_handshakes_total\{result="ok"\} 1$/m);
  await gw.stop();
});

test('gateway direct: a client abort closes the upstream connection', async (t) => {
  const { ca, gw, up } = await setup(t);
  const { host, port } = split(gw.ready);
  await new Promise((resolve, reject) => {
    const req = https.request({ host, port, servername: 'docs.gw.test', ca, path: '/hang', method: 'GET', agent: false }, (res) => {
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    req.end();
  });
  await waitFor(up.logs, 'CLOSED /hang', 2000, 'upstream close after the client abort');
  await gw.stop();
});

test('gateway direct: one audit line per tools/call, argument text nowhere', async (t) => {
  const { ca, gw, auditLog } = await setup(t);
  const args = { query: MARKER, limit: 10.50, nested: { b: [1, 'x'], a: null } };
  for (const id of [1, 2]) {
    const r = await request(gw, ca, {
      headers: { 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': 'sess-9' },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'search_docs', arguments: args } }),
    });
    assert.equal(r.status, 200);
  }
  await gw.stop();   /* flushes the audit writer */
  const raw = readFileSync(auditLog, 'utf8').trim().split('\n');
  const lines = raw.map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  /* hash chain: each line names the SHA-256 of the one before */
  assert.equal(lines[0].prev, null);
  assert.equal(lines[1].prev, 'sha256:' + createHash('sha256').update(raw[0]).digest('hex'));
  const canon = `{"limit":10.5,"nested":{"a":null,"b":[1,"x"]},"query":"${MARKER}"}`;
  const want = 'hmac-sha256:k9:' + createHmac('sha256', Buffer.from(AUDIT_KEY, 'hex')).update(canon).digest('hex');
  for (const [i, l] of lines.entries()) {
    assert.equal(l.method, 'tools/call');
    assert.equal(l.tool, 'search_docs');
    assert.equal(l.rpc_id, String(i + 1));
    assert.equal(l.args_hmac, want);
    assert.equal(l.args_bytes, Buffer.byteLength(canon));
    assert.equal(l.status, 'ok');
    assert.equal(l.http_status, 200);
    assert.equal(l.route, 'docs');
    assert.equal(l.sni, 'docs.gw.test');
    assert.equal(l.proto_ver, '2025-11-25');
    assert.equal(l.session, 'hmac-sha256:k9:' + createHmac('sha256', Buffer.from(AUDIT_KEY, 'hex')).update('sess-9').digest('hex'));
  }
  assert.ok(!readFileSync(auditLog, 'utf8').includes(MARKER), 'argument text in the audit log');
  assert.ok(!gw.logs().includes(MARKER), 'argument text in the gateway log');
});

function peerFingerprint(gw, ca) {
  const { host, port } = split(gw.ready);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host, port, servername: 'docs.gw.test', ca, ALPNProtocols: ['http/1.1'] }, () => {
      const fp = sock.getPeerCertificate().fingerprint256;
      assert.equal(sock.alpnProtocol, 'http/1.1');
      sock.end();
      resolve(fp);
    });
    sock.on('error', reject);
  });
}

test('gateway direct: SIGHUP reloads the inner certificate for new connections', async (t) => {
  const { ca, caPaths, inner, gw } = await setup(t);
  const before = await peerFingerprint(gw, ca);
  const next = issue(caPaths, 'inner2', { dns: ['docs.gw.test'] });
  copyFileSync(next.cert, inner.cert);
  copyFileSync(next.key, inner.key);
  gw.signal('SIGHUP');
  await waitFor(gw.logs, '"event":"gateway.cert_reload"', 5000, 'certificate reload');
  const after = await peerFingerprint(gw, ca);
  assert.notEqual(after, before);
  const r = await request(gw, ca, { body: '{}' });
  assert.equal(r.status, 200);
  await gw.stop();
});

// The last "WRITTEN n" / progress value once it has stopped growing for
// quietMs (bounded by deadlineMs): how far a sender got before backpressure.
async function stalledAt(read, quietMs = 400, deadlineMs = 20000) {
  const t0 = Date.now();
  let last = -1, since = Date.now();
  for (;;) {
    const v = read();
    if (v !== last) { last = v; since = Date.now(); }
    if (Date.now() - since >= quietMs && last > 0) return last;
    if (Date.now() - t0 > deadlineMs) throw new Error(`still moving after ${deadlineMs} ms (at ${last})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('gateway direct: a paused client stops the upstream, a paused upstream stops the client (bounded buffering)', async (t) => {
  const { ca, gw, up } = await setup(t);
  const { host, port } = split(gw.ready);
  const TOTAL = 128 << 20, BOUND = 48 << 20;

  /* upstream -> client */
  let res;
  await new Promise((resolve, reject) => {
    const req = https.request({ host, port, servername: 'docs.gw.test', ca, path: '/down', method: 'GET', agent: false }, (r) => {
      res = r;
      r.pause();
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
  const lastWritten = () => {
    const m = [...up.logs().matchAll(/WRITTEN (\d+)/g)];
    return m.length ? Number(m[m.length - 1][1]) : 0;
  };
  const stalled = await stalledAt(lastWritten);
  t.diagnostic(`upstream stalled after ${stalled} bytes`);
  assert.ok(stalled < BOUND, `the upstream got ${stalled} bytes out to a paused client`);
  const got = await new Promise((resolve, reject) => {
    let n = 0;
    res.on('data', (d) => { n += d.length; });
    res.on('end', () => resolve(n));
    res.on('error', reject);
    res.resume();
  });
  assert.equal(got, TOTAL);

  /* client -> upstream */
  let sent = 0;
  const reply = new Promise((resolve, reject) => {
    const req = https.request({ host, port, servername: 'docs.gw.test', ca, path: '/up', method: 'POST', agent: false,
      headers: { 'content-length': String(TOTAL) } }, (r) => {
      let b = '';
      r.on('data', (d) => { b += d; });
      r.on('end', () => resolve(b));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(1 << 20, 0x62);
    (async () => {
      for (let i = 0; i < 128; i++) {
        sent += chunk.length;
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })();
  });
  const sentStalled = await stalledAt(() => sent);
  t.diagnostic(`client stalled after ${sentStalled} bytes`);
  assert.ok(sentStalled < BOUND, `the client got ${sentStalled} bytes into a paused upstream`);
  up.proc.stdin.write('resume\n');
  assert.equal(await reply, String(TOTAL));
  await gw.stop();
});

test('gateway direct: an upstream that refuses the connection gets 502, other routes unaffected', async (t) => {
  const { ca, gw } = await setup(t, ['--route', 'dead=http://127.0.0.1:1']);
  const r = await request(gw, ca, { servername: 'dead.gw.test', body: '{}', headers: { host: 'dead.gw.test' } });
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body.toString()).error.reason, 'connect');
  const ok = await request(gw, ca, { body: '{}' });
  assert.equal(ok.status, 200);
  await gw.stop();
});

test('gateway direct: keep-alive: several requests on one connection, each audited', async (t) => {
  const { ca, gw, auditLog } = await setup(t);
  const { host, port } = split(gw.ready);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const reused = [];
  for (const id of [1, 2, 3]) {
    const r = await new Promise((resolve, reject) => {
      const req = https.request({ host, port, servername: 'docs.gw.test', ca, path: '/mcp', method: 'POST', agent,
        headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: `tool${id}`, arguments: { i: id } } }));
      reused.push(req);
    });
    assert.equal(r, 200);
  }
  assert.deepEqual(reused.map((r) => r.reusedSocket), [false, true, true]);
  agent.destroy();
  await gw.stop();
  const lines = readFileSync(auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.tool, l.rpc_id, l.stream]), [['tool1', '1', 1], ['tool2', '2', 1], ['tool3', '3', 1]]);
});

test('gateway direct: an upstream by name (localhost) is reached whichever of its addresses listens', async (t) => {
  /* When localhost has both an IPv4 and an IPv6 address, the upstream
   * listens on the IPv6 one only, so the IPv4 address refuses and the next
   * is dialled; with one address, it listens there. */
  const dir = tempDir('airlock-gwd-lh-');
  const addrs = (await dns.lookup('localhost', { all: true })).map((a) => a.address);
  const host = addrs.find((a) => a.includes(':')) ?? addrs[0];
  const up = await startNodeUpstream(UPSTREAM, { env: { UP_HOST: host } });
  const ca = makeCa(join(dir, 'op'), 'operator');
  const inner = issue(ca, 'inner', { dns: ['lh.gw.test'] });
  const gw = await startDaemon(['gateway', '--listen-tls', '127.0.0.1:0', '--route', `lh=http://localhost:${up.port}`,
    '--cert', inner.cert, '--key', inner.key, '--log-level', 'debug'], { what: 'gateway' });
  t.after(async () => {
    await gw.kill9();
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const r = await request(gw, readFileSync(ca.ca), { servername: 'lh.gw.test', body: '{}', headers: { host: 'lh.gw.test' } });
  assert.equal(r.status, 200, r.body.toString());
  const dialled = gw.logs().split('\n').filter((l) => l.includes('"stream.upstream_connect"')).map((l) => JSON.parse(l).addr);
  t.diagnostic(`dialled ${dialled.join(', ')}`);
  assert.equal(dialled[dialled.length - 1], host);
  await gw.stop();
});

test('gateway direct: bytes the observer cannot frame are still forwarded both ways (and counted)', async (t) => {
  const { ca, gw } = await setup(t, ['--admin-listen', '127.0.0.1:0']);
  const admin = JSON.parse(gw.logs().split('\n').find((l) => l.includes('"gw.admin"'))).url;
  const { host, port } = split(gw.ready);
  const reply = await new Promise((resolve, reject) => {
    const sock = tls.connect({ host, port, servername: 'docs.gw.test', ca }, () => sock.write('\x00\x01 not http at all\r\n\r\n'));
    let got = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => { got += d; });
    sock.on('end', () => resolve(got));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
  /* Node's HTTP parser upstream answers the garbage; the answer comes back untouched. */
  assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
  const metrics = await (await fetch(`${admin.replace(/\/$/, '')}/metrics`)).text();
  assert.match(metrics, /^mcp_observer_gave_up_total 1$/m);
  await gw.stop();
});
