// The C worker inside a perimeter: the API behind TLS with a private CA
// (--cacert), reached directly and through an HTTPS_PROXY that only speaks
// CONNECT. The test makes its own CA and server certificate with openssl,
// puts a TLS front on loopback that forwards to a real hub (streams too),
// and runs a session through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { startHub, setup, history, until, tempDir, http as hubHttp } from './lib/hub.mjs';
import { startWorker } from './lib/worker.mjs';

const text = (ev) => (ev.content ?? []).map((b) => b.text ?? '').join('');

function makeCerts(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=airlock e2e CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-keyout', 'srv.key', '-out', 'srv.csr');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'ext.cnf', '-out', 'srv.pem');
  return { ca: join(dir, 'ca.pem'), key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) };
}

// A TLS front that forwards every request to the hub and pipes the answer
// back unbuffered (SSE included). Counts the requests it served.
async function tlsFront(hub, { key, cert }) {
  const target = new URL(hub.url);
  const front = { requests: 0 };
  const server = https.createServer({ key, cert }, (req, res) => {
    front.requests++;
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: target.host } }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      res.flushHeaders();
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  front.url = `https://127.0.0.1:${server.address().port}`;
  front.close = () => { server.closeAllConnections(); server.close(); };
  return front;
}

// A forward proxy that allows CONNECT to one address only and refuses
// everything else, recording what it was asked.
async function connectProxy(allowed) {
  const p = { connects: [], refused: [] };
  const server = http.createServer((req, res) => {
    p.refused.push(`${req.method} ${req.url}`);
    res.writeHead(405).end();
  });
  const sockets = new Set();
  server.on('connect', (req, client, head) => {
    p.connects.push(req.url);
    if (req.url !== allowed) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const [host, port] = req.url.split(':');
    const up = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up).add(client);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  p.url = `http://127.0.0.1:${server.address().port}`;
  p.close = () => { for (const s of sockets) s.destroy(); server.close(); };
  return p;
}

async function runSession({ viaProxy }) {
  const dir = tempDir('airlock-e2e-tls-');
  const certs = makeCerts(dir);
  const hub = await startHub();
  const front = await tlsFront(hub, certs);
  const proxy = viaProxy ? await connectProxy(new URL(front.url).host) : null;
  const root = tempDir('airlock-e2e-wd-');
  let worker;
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const session = await c.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    await c.beta.sessions.events.send(session.id, { events: [{ type: 'user.message', content: [{ type: 'text',
      text: 'tool write {"file_path":"t.txt","content":"through tls\\n"}\ntool bash {"command":"cat t.txt"}' }] }] });
    const env = { ANTHROPIC_BASE_URL: front.url };
    if (viaProxy) Object.assign(env, { HTTPS_PROXY: proxy.url, https_proxy: proxy.url, NO_PROXY: '', no_proxy: '' });
    worker = startWorker({ hub: { url: front.url }, environmentId: environment.id, envKey, workdir: root, kind: 'c',
      env, args: ['--cacert', certs.ca] });
    const done = await until(() => history(hub, session.id),
      (h) => h.some((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn'),
      { timeoutMs: 30000, what: 'end_turn' });
    const results = done.filter((e) => e.type === 'user.tool_result');
    assert.deepEqual(results.map((r) => [r.is_error, text(r)]),
      [[false, 'wrote 12 bytes to t.txt'], [false, 'through tls']]);
    await until(() => hubHttp(hub, 'GET', `/v1/environments/${environment.id}/work`, { key: envKey }),
      (r) => r.status === 200 && r.body.data[0]?.state === 'stopped', { what: 'item stopped' });
    assert.ok(front.requests > 5, `the TLS front served ${front.requests} requests`);
    if (viaProxy) {
      assert.ok(proxy.connects.length >= 1, 'no CONNECT reached the proxy');
      assert.ok(proxy.connects.every((u) => u === new URL(front.url).host), proxy.connects.join(','));
      assert.deepEqual(proxy.refused, []);
    }
    assert.ok(!worker.logs().includes(envKey), 'the environment key reached the log');
  } catch (e) {
    if (worker) e.message += `\n--- worker log ---\n${worker.logs()}`;
    throw e;
  } finally {
    await worker?.stop();
    proxy?.close();
    front.close();
    await hub.stop();
    hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

test('[c] the worker reaches a TLS API with a private CA (--cacert)', () => runSession({ viaProxy: false }));
test('[c] the worker reaches the TLS API through an HTTPS_PROXY (CONNECT only)', () => runSession({ viaProxy: true }));

test('[c] without the CA the TLS API is refused and the worker says so', async () => {
  const dir = tempDir('airlock-e2e-tls-');
  const certs = makeCerts(dir);
  const hub = await startHub();
  const front = await tlsFront(hub, certs);
  const root = tempDir('airlock-e2e-wd-');
  let worker;
  try {
    const { environment, envKey } = await setup(hub);
    worker = startWorker({ hub: { url: front.url }, environmentId: environment.id, envKey, workdir: root, kind: 'c',
      env: { ANTHROPIC_BASE_URL: front.url } });
    await worker.waitLog(/"event":"poll failed, backing off"[^\n]*EPROTO|"event":"poll failed, backing off"[^\n]*connection error/);
    assert.equal(front.requests, 0);
  } finally {
    await worker?.stop();
    front.close();
    await hub.stop();
    hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
});
