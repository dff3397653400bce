// The tunnel transport on its own (docs/internals/TUNNEL.md §2, §3): a real
// hub, a tunnel made through its API, the real relay and gateway, and a
// small Node upstream. A request with Node's https client (SNI
// docs.<hostname>, verified against the operator CA) gets its answer through
// relay -> HTTP/2 CONNECT stream -> gateway -> upstream; a wrong token gets
// 401 at the upgrade; an unknown SNI gets a TLS alert from the relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { BIN, http as hubHttp, startHub, tempDir } from './lib/hub.mjs';
import { TUNNEL_DOMAIN, createTunnel, relayPki, startRelay, startGateway, startNodeUpstream } from './lib/tunnel.mjs';

const UPSTREAM = `
import http from 'node:http';
const s = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const out = JSON.stringify({ path: req.url, method: req.method, body, big: 'x'.repeat(Number(req.headers['x-size'] || 0)) });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  });
});
s.listen(0, '127.0.0.1', () => console.log('PORT ' + s.address().port));
`;

function split(addr) {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

function request(relay, servername, ca, { path = '/mcp', body = '', size = 0 } = {}) {
  const { host, port } = split(relay.clientAddr);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host, port, servername, ca, path, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'x-size': String(size), host: servername },
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function metric(url, name) {
  const text = await (await fetch(url + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : NaN;
}

test('tunnel transport: a request through relay and gateway, a wrong token, an unknown SNI', async (t) => {
  const dir = tempDir('airlock-tr-');
  const hub = await startHub({ args: ['--tunnel-domain', TUNNEL_DOMAIN] });
  const daemons = [];
  t.after(async () => {
    for (const d of daemons.reverse()) await d.stop().catch((e) => { throw e; });
    await hub.stop();
    hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const setup = await createTunnel(hub, dir);
  const pki = relayPki(dir);
  const relay = await startRelay(hub, pki, { args: ['--admin-listen', '127.0.0.1:0', '--refresh', '500ms'] });
  daemons.push(relay);
  const upstream = await startNodeUpstream(UPSTREAM);
  daemons.push({ stop: () => upstream.stop() });
  const gateway = await startGateway(relay, setup, pki.ca, {
    routes: [`docs=${upstream.url}`], args: ['--connections', '2', '--admin-listen', '127.0.0.1:0'],
  });
  daemons.push(gateway);
  assert.equal(gateway.ready, relay.gatewayAddr, 'the gateway reports the relay it is connected to');

  const ca = readFileSync(setup.operatorCa);
  const sni = `docs.${setup.tunnel.hostname}`;

  // One request, then a larger body both ways (several DATA frames).
  const r1 = await request(relay, sni, ca, { body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
  assert.equal(r1.status, 200);
  const j1 = JSON.parse(r1.body);
  assert.equal(j1.path, '/mcp');
  assert.equal(j1.body, '{"jsonrpc":"2.0","id":1,"method":"ping"}');
  const big = 'y'.repeat(300000);
  const r2 = await request(relay, sni, ca, { body: big, size: 500000 });
  assert.equal(r2.status, 200);
  const j2 = JSON.parse(r2.body);
  assert.equal(j2.body.length, big.length);
  assert.equal(j2.big.length, 500000);

  // Several at once over the two connections.
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => request(relay, sni, ca, { path: `/p${i}` })));
  many.forEach((r, i) => { assert.equal(r.status, 200); assert.equal(JSON.parse(r.body).path, `/p${i}`); });

  // Unknown SNI: the relay answers a TLS alert (unrecognized_name) and closes.
  const { host, port } = split(relay.clientAddr);
  const err = await new Promise((resolve) => {
    const s = tls.connect({ host, port, servername: `docs.0000000000000000.${TUNNEL_DOMAIN}`, ca });
    s.on('secureConnect', () => { s.destroy(); resolve(null); });
    s.on('error', (e) => resolve(e));
  });
  assert.ok(err, 'the handshake with an unknown SNI must fail');
  assert.match(String(err.code || err.message), /UNRECOGNIZED_NAME|alert number 112|unrecognized name/i);

  // A gateway with a wrong token is refused with 401 at the upgrade and
  // never becomes ready; it keeps retrying (with backoff) until stopped.
  const badTok = join(dir, 'bad-token');
  writeFileSync(badTok, setup.token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) + '\n');
  const bad = spawn(BIN, ['gateway', '--relay', relay.gatewayAddr, '--relay-ca', pki.ca, '--relay-name', 'relay.test',
    '--token-file', badTok, '--cert', setup.inner.cert, '--key', setup.inner.key, '--route', `docs=${upstream.url}`],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  let badLog = '';
  bad.stderr.on('data', (d) => { badLog += d; });
  const badExit = new Promise((r) => bad.on('exit', (code, signal) => r({ code, signal })));
  const adminUrl = relay.logs().match(/"event":"relay.admin"[^\n]*"url":"([^"]+)"/)[1];
  for (let i = 0; i < 200 && !(await metric(adminUrl, 'relay_gateway_accepts_total{result="auth"}') >= 1); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(await metric(adminUrl, 'relay_gateway_accepts_total{result="auth"}') >= 1, 'the relay counted a 401');
  const rawAnswer = await upgradeAnswer(relay.gatewayAddr, pki.ca, readFileSync(badTok, 'utf8').trim());
  assert.match(rawAnswer, /^HTTP\/1\.1 401 /);
  assert.match(rawAnswer, /"authentication_error"/);
  assert.doesNotMatch(rawAnswer, /tnltok\./, 'the answer never echoes the token');
  bad.kill('SIGTERM');
  const be = await badExit;
  assert.equal(be.code, 0, `the refused gateway exits 0 on SIGTERM:\n${badLog}`);
  assert.match(badLog, /"event":"gw.connect_failed"[^\n]*"stage":"auth"/);
  assert.doesNotMatch(badLog, /tnltok\./, 'the gateway never logs the token');
  assert.doesNotMatch(relay.logs(), /tnltok\./, 'the relay never logs the token');
  assert.match(relay.logs(), /"event":"relay.hub_ok"/, 'the relay checked its hub API key at start');
  // A relay with a wrong hub API key says so at start, instead of only
  // refusing every gateway with 401.
  const wrongKey = await startRelay({ ...hub, apiKey: 'sk-wrong' }, pki);
  for (let i = 0; i < 100 && !/relay.hub_auth_failed/.test(wrongKey.logs()); i++) await new Promise((res) => setTimeout(res, 50));
  assert.match(wrongKey.logs(), /"event":"relay.hub_auth_failed"/);
  assert.doesNotMatch(wrongKey.logs(), /sk-wrong/, 'the API key is not logged');
  await wrongKey.stop();
  // The relay's view: 2 ready connections of one tunnel.
  assert.equal(await metric(adminUrl, 'relay_tunnels_online'), 1);
  assert.equal(await metric(adminUrl, 'relay_gateway_connections{state="ready"}'), 2);
  assert.ok(await metric(adminUrl, 'relay_sni_unknown_total') >= 1);
});

// Sends the upgrade request by hand over outer TLS and returns the answer head+body.
function upgradeAnswer(addr, caFile, token) {
  const { host, port } = split(addr);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, servername: 'relay.test', ca: readFileSync(caFile) }, () => {
      s.write(`GET /v1/tunnel/connect HTTP/1.1\r\nHost: relay.test\r\nAuthorization: Bearer ${token}\r\n`
        + 'Connection: Upgrade\r\nUpgrade: airlock-tunnel/1\r\nAirlock-Connector-Id: e2e\r\nAirlock-Connection-Slot: 0\r\n\r\n');
    });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('close', () => resolve(data));
    s.on('error', reject);
  });
}

// A minimal HTTP CONNECT proxy that records the targets and auth it saw.
function connectProxy() {
  const seen = [];
  const srv = net.createServer((c) => {
    let head = Buffer.alloc(0);
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      c.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      const m = /^CONNECT (\S+) HTTP\/1\.1/.exec(text);
      const auth = /\r\nProxy-Authorization: Basic (\S+)/i.exec(text);
      seen.push({ target: m?.[1], auth: auth ? Buffer.from(auth[1], 'base64').toString() : null });
      const i = m ? m[1].lastIndexOf(':') : -1;
      if (!m) { c.end('HTTP/1.1 400 Bad Request\r\n\r\n'); return; }
      const up = net.connect(Number(m[1].slice(i + 1)), m[1].slice(0, i).replace(/^\[|\]$/g, ''), () => {
        c.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length) up.write(rest);
        c.pipe(up);
        up.pipe(c);
      });
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
    };
    c.on('data', onData);
  });
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r({ srv, seen, port: srv.address().port })));
}

test('tunnel transport: through an HTTPS_PROXY (CONNECT, Basic auth), NO_PROXY bypass, archive closes the tunnel', async (t) => {
  const dir = tempDir('airlock-tr2-');
  const hub = await startHub({ args: ['--tunnel-domain', TUNNEL_DOMAIN] });
  const proxy = await connectProxy();
  const daemons = [];
  t.after(async () => {
    for (const d of daemons.reverse()) await d.stop();
    proxy.srv.close();
    await hub.stop();
    hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const setup = await createTunnel(hub, dir);
  const pki = relayPki(dir);
  const relay = await startRelay(hub, pki, { args: ['--admin-listen', '127.0.0.1:0', '--refresh', '300ms'] });
  daemons.push(relay);
  const upstream = await startNodeUpstream(UPSTREAM);
  daemons.push({ stop: () => upstream.stop() });
  const env = { HTTPS_PROXY: `http://us%40er:p%3Ass@127.0.0.1:${proxy.port}`, NO_PROXY: 'example.invalid' };
  const gateway = await startGateway(relay, setup, pki.ca, {
    routes: [`docs=${upstream.url}`], args: ['--connections', '1'], env,
  });
  daemons.push(gateway);
  assert.equal(proxy.seen.length, 1, 'one connection, through the proxy');
  assert.equal(proxy.seen[0].target, relay.gatewayAddr);
  assert.equal(proxy.seen[0].auth, 'us@er:p:ss', 'Basic auth from the proxy URL, percent-decoded');
  const ca = readFileSync(setup.operatorCa);
  const sni = `docs.${setup.tunnel.hostname}`;
  const r = await request(relay, sni, ca, { body: 'via proxy' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).body, 'via proxy');

  // NO_PROXY naming the relay host: a second gateway dials directly.
  const direct = await startGateway(relay, setup, pki.ca, {
    routes: [`docs=${upstream.url}`], args: ['--connections', '1'],
    env: { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, NO_PROXY: 'localhost,127.0.0.1' },
  });
  daemons.push(direct);
  assert.equal(proxy.seen.length, 1, 'NO_PROXY bypassed the proxy');

  // Archiving the tunnel: the relay's refresh closes its gateway connections,
  // and a client of the tunnel's hostname is refused from then on.
  const adminUrl = relay.logs().match(/"event":"relay.admin"[^\n]*"url":"([^"]+)"/)[1];
  assert.equal(await metric(adminUrl, 'relay_tunnels_online'), 1);
  assert.equal((await hubHttp(hub, 'POST', `/v1/tunnels/${setup.tunnel.id}/archive`)).status, 200);
  for (let i = 0; i < 200 && (await metric(adminUrl, 'relay_tunnels_online')) !== 0; i++) {
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(await metric(adminUrl, 'relay_tunnels_online'), 0, 'the archived tunnel went offline at the relay');
  const { host, port } = split(relay.clientAddr);
  const err = await new Promise((resolve) => {
    const s = tls.connect({ host, port, servername: sni, ca });
    s.on('secureConnect', () => { s.destroy(); resolve(null); });
    s.on('error', (e) => resolve(e));
  });
  assert.ok(err, 'a client of the archived tunnel is refused');
  assert.match(relay.logs(), /"event":"tunnel.archived"/);
});

test('tunnel transport over IPv6: relay listeners on [::1], the gateway dials [::1]:port, the client address is reported as [v6]:port', async (t) => {
  const dir = tempDir('airlock-tr6-');
  const hub = await startHub({ args: ['--tunnel-domain', TUNNEL_DOMAIN] });
  const daemons = [];
  t.after(async () => {
    for (const d of daemons.reverse()) await d.stop();
    await hub.stop();
    hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const setup = await createTunnel(hub, dir);
  const pki = relayPki(dir);
  const relay = await startRelay(hub, pki, { listen: '[::1]:0', gatewayListen: '[::1]:0', args: ['--log-level', 'debug'] });
  daemons.push(relay);
  assert.match(relay.clientAddr, /^\[::1\]:\d+$/);
  assert.match(relay.gatewayAddr, /^\[::1\]:\d+$/);
  const upstream = await startNodeUpstream(UPSTREAM);
  daemons.push({ stop: () => upstream.stop() });
  const gateway = await startGateway(relay, setup, pki.ca, { routes: [`docs=${upstream.url}`], args: ['--connections', '1'] });
  daemons.push(gateway);
  assert.equal(gateway.ready, relay.gatewayAddr);
  const r = await request(relay, `docs.${setup.tunnel.hostname}`, readFileSync(setup.operatorCa), { body: 'six' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).body, 'six');
  assert.match(relay.logs(), /"event":"client.routed"/);
});
