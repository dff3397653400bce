// The tunnel under faults, with real processes: token rotation with open
// streams, 20 relay restarts, a planned relay shutdown (GOAWAY drain) with
// two relays, a silently dropped link (packets discarded by nftables in a
// network namespace the test makes), and hostile input at both relay
// listeners. The upstream is an HTTP server inside this test process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch as ufetch } from 'undici';
import { http as hubHttp, startHub, tempDir } from './lib/hub.mjs';
import {
  TUNNEL_DOMAIN, canNetns, createTunnel, freePort, netns, relayPki, startGateway, startRelay,
} from './lib/tunnel.mjs';

const MUST = process.env.AIRLOCK_SANDBOX_MUST_WORK === '1';
const tick = (ms) => new Promise((r) => setTimeout(r, ms));

// /ok, /slow?ms=N, /sse?n=N&ms=M
async function upstream() {
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/slow') {
      setTimeout(() => res.end('slow'), Number(u.searchParams.get('ms') ?? 1000));
    } else if (u.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const n = Number(u.searchParams.get('n') ?? 10);
      const ms = Number(u.searchParams.get('ms') ?? 10);
      let i = 0;
      const t = setInterval(() => {
        res.write(`data: ${i}\n\n`);
        if (++i === n) { clearInterval(t); res.end(); }
      }, ms);
      res.on('close', () => clearInterval(t));
    } else {
      res.end('ok');
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, port: srv.address().port, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }) };
}

// A client of https://NAME.<hostname> through the relay at addr: every
// request on a fresh connection (a fresh CONNECT stream).
function client(addr, ca) {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i);
  const agent = new Agent({
    pipelining: 0,
    connect: { ca: readFileSync(ca), lookup: (_n, o, cb) => (o?.all ? cb(null, [{ address: host, family: 4 }]) : cb(null, host, 4)) },
  });
  const get = async (hostname, path, { timeoutMs = 10000 } = {}) => {
    const res = await ufetch(`https://${hostname}:${addr.slice(i + 1)}${path}`, {
      dispatcher: agent, headers: { connection: 'close' }, signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: await res.text() };
  };
  get.stream = async (hostname, path) => ufetch(`https://${hostname}:${addr.slice(i + 1)}${path}`, { dispatcher: agent });
  get.close = () => agent.close();
  return get;
}

// The raw upgrade request of the gateway link (TUNNEL.md §2): status and body.
function upgrade(addr, ca, token) {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)), ca: readFileSync(ca), servername: 'relay.test' }, () => {
      s.write(`GET /v1/tunnel/connect HTTP/1.1\r\nHost: relay.test\r\nAuthorization: Bearer ${token}\r\n`
        + 'Connection: Upgrade\r\nUpgrade: airlock-tunnel/1\r\nAirlock-Connector-Id: e2e\r\nAirlock-Connection-Slot: 0\r\n\r\n');
    });
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m && m[1] === '101') { s.destroy(); resolve({ status: 101, text: buf }); }
    });
    s.on('end', () => { const m = /^HTTP\/1\.1 (\d{3})/.exec(buf); resolve({ status: m ? Number(m[1]) : 0, text: buf }); });
    s.on('error', (e) => (buf ? resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0), text: buf }) : reject(e)));
  });
}

async function readyz(addr) {
  try {
    const r = await fetch(`http://${addr}/readyz`, { signal: AbortSignal.timeout(2000) });
    return r.status;
  } catch { return 0; }
}

async function untilTrue(fn, { timeoutMs = 30000, intervalMs = 50, what }) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await tick(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function rssKb(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

describe('tunnel faults', () => {
  const dir = tempDir('airlock-e2e-tfault-');
  let hub, setup, rpki, up;

  before(async () => {
    hub = await startHub({ args: ['--tunnel-domain', TUNNEL_DOMAIN] });
    setup = await createTunnel(hub, dir);
    rpki = relayPki(dir);
    up = await upstream();
  });
  after(async () => {
    await up?.close();
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('rotate_token: open streams continue, the old token is refused, the gateway given the new token serves every request', async () => {
    const relay = await startRelay(hub, rpki);
    const tokenFile = join(dir, 'rotate.token');
    writeFileSync(tokenFile, readFileSync(setup.tokenFile));
    const gw = await startGateway(relay, { ...setup, tokenFile }, rpki.ca, {
      routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '2', '--drain-timeout', '10s'],
    });
    const get = client(relay.clientAddr, setup.operatorCa);
    const app = `app.${setup.tunnel.hostname}`;
    let stop = false;
    try {
      assert.equal((await get(app, '/ok')).status, 200);
      // A 4 s event stream opened before the rotation.
      const sse = await get.stream(app, '/sse?n=400&ms=10');
      const sseText = sse.text();
      // Requests on fresh connections all through the rotation.
      const results = [];
      const loop = (async () => {
        while (!stop) {
          const r = await get(app, '/ok').catch((e) => ({ status: 0, body: String(e) }));
          results.push(r);
          await tick(5);
        }
      })();
      const rot = await hubHttp(hub, 'POST', `/v1/tunnels/${setup.tunnel.id}/rotate_token`);
      assert.equal(rot.status, 200);
      const newToken = rot.body.token;
      assert.notEqual(newToken, setup.token);
      const old = await upgrade(relay.gatewayAddr, rpki.ca, setup.token);
      assert.equal(old.status, 401, `old token refused for a new connection: ${old.text}`);
      assert.match(old.text, /authentication_error/);
      assert.ok(!old.text.includes(setup.token), 'the refusal does not echo the token');
      assert.equal((await upgrade(relay.gatewayAddr, rpki.ca, newToken)).status, 101, 'the new token is accepted');
      writeFileSync(tokenFile, `${newToken}\n`);
      const body = await sseText;
      assert.equal(body.match(/^data: /gm)?.length, 400, 'the stream opened before the rotation delivered every event');
      // A while longer on the new connections, then stop the loop.
      await tick(1000);
      stop = true;
      await loop;
      assert.ok(results.length > 50, `requests ran through the rotation (${results.length})`);
      assert.deepEqual(results.filter((r) => r.status !== 200), [], 'no request failed during the rotation');
      // The old connections are gone: a restarted relay only lets the new token in,
      // and the gateway gets ready again, so it holds the new token.
      await relay.kill9();
      const relay2 = await startRelay(hub, rpki, { listen: relay.clientAddr, gatewayListen: relay.gatewayAddr });
      try {
        await untilTrue(async () => (await get(app, '/ok', { timeoutMs: 2000 }).catch(() => ({}))).status === 200,
          { timeoutMs: 20000, intervalMs: 100, what: 'the gateway back with the new token' });
      } finally {
        await relay2.stop();
      }
    } finally {
      stop = true;
      await get.close();
      await gw.stop();
      await relay.kill9();
      // Restore: later tests use setup.token.
      setup.token = (await hubHttp(hub, 'POST', `/v1/tunnels/${setup.tunnel.id}/reveal_token`)).body.token;
      writeFileSync(setup.tokenFile, `${setup.token}\n`);
    }
  });

  test('relay restarted 20 times: the gateway is ready again each time, first connection p50 <= 1 s', async () => {
    let relay = await startRelay(hub, rpki);
    const gw = await startGateway(relay, setup, rpki.ca, { routes: [`app=http://127.0.0.1:${up.port}`] });
    const get = client(relay.clientAddr, setup.operatorCa);
    const app = `app.${setup.tunnel.hostname}`;
    const times = [];
    try {
      assert.equal((await get(app, '/ok')).status, 200);
      for (let i = 0; i < 20; i++) {
        await relay.kill9();
        relay = await startRelay(hub, rpki, { listen: relay.clientAddr, gatewayListen: relay.gatewayAddr });
        const t0 = performance.now();
        await untilTrue(async () => (await get(app, '/ok', { timeoutMs: 2000 }).catch(() => ({}))).status === 200,
          { timeoutMs: 35000, intervalMs: 20, what: `the tunnel after relay restart ${i + 1}` });
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const p50 = times[Math.floor(times.length / 2)];
      assert.equal(times.length, 20);
      assert.ok(p50 <= 1000, `first working connection after a relay restart, p50 ${p50.toFixed(0)} ms (all: ${times.map((t) => t.toFixed(0)).join(' ')})`);
    } finally {
      await get.close();
      await gw.stop();
      await relay.stop();
    }
  });

  test('planned relay shutdown (GOAWAY drain, two relays): no request fails', async () => {
    const a = await startRelay(hub, rpki, { args: ['--drain-timeout', '10s'] });
    const b = await startRelay(hub, rpki);
    const admin = `127.0.0.1:${await freePort()}`;
    const gw = await startGateway([a, b], setup, rpki.ca, {
      routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '2', '--admin-listen', admin],
    });
    const viaA = client(a.clientAddr, setup.operatorCa);
    const viaB = client(b.clientAddr, setup.operatorCa);
    const app = `app.${setup.tunnel.hostname}`;
    try {
      // Both relays carry the tunnel (slots spread over the relays).
      await untilTrue(async () => (await viaB(app, '/ok').catch(() => ({}))).status === 200, { what: 'relay B ready', timeoutMs: 10000 });
      assert.equal((await viaA(app, '/ok')).status, 200);
      const inflight = Array.from({ length: 5 }, () => viaA(app, '/slow?ms=1500'));
      // In flight at the gateway before the shutdown starts.
      await tick(300);
      a.signal('SIGTERM');
      const during = [];
      for (let i = 0; i < 20; i++) during.push(await viaB(app, '/ok').catch((e) => ({ status: 0, body: String(e) })));
      const done = await Promise.all(inflight.map((p) => p.catch((e) => ({ status: 0, body: String(e) }))));
      assert.deepEqual(done.map((r) => r.status), [200, 200, 200, 200, 200], `in-flight requests finished: ${JSON.stringify(done)}`);
      assert.deepEqual(during.filter((r) => r.status !== 200), [], 'requests through the other relay never failed');
      const ex = await a.exited;
      assert.equal(ex.code, 0, `relay A drained and exited cleanly:\n${a.logs().slice(-2000)}`);
      assert.equal(await readyz(admin), 200, 'the gateway stays ready on relay B');
      assert.equal((await viaB(app, '/ok')).status, 200);
    } finally {
      await viaA.close();
      await viaB.close();
      await gw.stop();
      await a.kill9();
      await b.stop();
    }
  });

  test('a silently dropped link (packets discarded) is detected within 25 s, and the gateway recovers', async (t) => {
    const why = canNetns() ?? (spawnSync('nft', ['--version']).status === 0 ? null : 'nft (nftables) is not installed');
    if (why) {
      if (MUST) assert.fail(why);
      t.skip(why);
      return;
    }
    const n = await netns([]);
    let relay, gw;
    try {
      const hubPort = new URL(hub.url).port;
      await n.bridge(Number(hubPort), `127.0.0.1:${hubPort}`);
      await n.bridge(up.port, `127.0.0.1:${up.port}`);
      relay = await startRelay({ ...hub, url: `http://127.0.0.1:${hubPort}` }, rpki,
        { prefix: n.prefix, listen: '127.0.0.1:8443', gatewayListen: '127.0.0.1:7844' });
      gw = await startGateway('127.0.0.1:7844', setup, rpki.ca, {
        prefix: n.prefix, routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '1', '--admin-listen', '127.0.0.1:9901'],
      });
      const admin = await n.expose(9901);
      const clientAddr = await n.expose(8443);
      const get = client(clientAddr, setup.operatorCa);
      const app = `app.${setup.tunnel.hostname}`;
      try {
        assert.equal((await get(app, '/ok')).status, 200);
        assert.equal(await readyz(admin), 200);
        n.exec('nft', 'add', 'table', 'inet', 'airlock_e2e');
        n.exec('nft', 'add', 'chain', 'inet', 'airlock_e2e', 'out', '{ type filter hook output priority 0; }');
        n.exec('nft', 'add', 'rule', 'inet', 'airlock_e2e', 'out', 'tcp', 'dport', '7844', 'drop');
        n.exec('nft', 'add', 'rule', 'inet', 'airlock_e2e', 'out', 'tcp', 'sport', '7844', 'drop');
        const t0 = performance.now();
        await untilTrue(async () => (await readyz(admin)) === 503, { timeoutMs: 30000, intervalMs: 200, what: 'the gateway to notice the dead link' });
        const detected = performance.now() - t0;
        assert.ok(detected <= 25000, `detected after ${(detected / 1000).toFixed(1)} s`);
        n.exec('nft', 'delete', 'table', 'inet', 'airlock_e2e');
        await untilTrue(async () => (await get(app, '/ok', { timeoutMs: 2000 }).catch(() => ({}))).status === 200,
          { timeoutMs: 40000, intervalMs: 200, what: 'the tunnel back after the link returns' });
        assert.equal(await readyz(admin), 200);
      } finally {
        await get.close();
      }
    } finally {
      await gw?.stop();
      await relay?.stop();
      await n.close();
    }
  });

  describe('hostile input at the relay', () => {
    let relay, gw, get, app;
    before(async () => {
      // RSS is compared below: keep AddressSanitizer's quarantine of freed
      // memory (256 MiB by default) out of the number.
      const asan = process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : '';
      relay = await startRelay(hub, rpki, {
        args: ['--handshake-timeout', '1s', '--max-pending-per-ip', '16'],
        env: { ASAN_OPTIONS: `${asan}quarantine_size_mb=1:thread_local_quarantine_size_kb=64` },
      });
      gw = await startGateway(relay, setup, rpki.ca, { routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '1'] });
      get = client(relay.clientAddr, setup.operatorCa);
      app = `app.${setup.tunnel.hostname}`;
      assert.equal((await get(app, '/ok')).status, 200);
    });
    after(async () => {
      await get?.close();
      await gw?.stop();
      await relay?.stop();
    });

    const raw = (addr, bytes, { end = true } = {}) => new Promise((resolve) => {
      const i = addr.lastIndexOf(':');
      const s = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i), () => { s.write(bytes); if (end) s.end(); });
      const t0 = performance.now();
      let got = Buffer.alloc(0);
      s.on('data', (d) => { got = Buffer.concat([got, d]); });
      s.on('error', () => {});
      s.on('close', () => resolve({ got, ms: performance.now() - t0 }));
    });

    test('garbage and truncated ClientHellos are closed; a stalled one at the deadline', async () => {
      const g = await raw(relay.clientAddr, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      assert.ok(g.got.length === 0 || g.got[0] === 0x15, 'garbage gets nothing or a TLS alert');
      // A record header promising 512 bytes of handshake, then silence.
      const trunc = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
      const s = await raw(relay.clientAddr, trunc, { end: false });
      assert.ok(s.ms >= 800 && s.ms < 5000, `stalled ClientHello closed at the 1 s deadline (${s.ms.toFixed(0)} ms)`);
      // A ClientHello with a server_name extension whose lengths lie.
      const lie = Buffer.from('160301002f0100002b0303' + '00'.repeat(32) + '000002130101000000' + '00000008ffff', 'hex');
      await raw(relay.clientAddr, lie);
      assert.equal((await get(app, '/ok')).status, 200, 'the relay still serves');
    });

    test('an unknown SNI is refused with a TLS alert', async () => {
      const i = relay.clientAddr.lastIndexOf(':');
      const err = await new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: Number(relay.clientAddr.slice(i + 1)), servername: `nope.unknown.${TUNNEL_DOMAIN}`, ca: readFileSync(setup.operatorCa) },
          () => { s.destroy(); resolve(null); });
        s.on('error', resolve);
      });
      assert.ok(err, 'the handshake failed');
      assert.match(String(err.code ?? err.message), /UNRECOGNIZED_NAME|ALERT|ECONNRESET|socket hang up|disconnected/i);
    });

    test('wrong tokens are refused in the platform error shape', async () => {
      for (const bad of ['nope', `tnltok.${setup.tunnel.id}.0.AAAA`, `${setup.token}x`, 'a'.repeat(6000)]) {
        const r = await upgrade(relay.gatewayAddr, rpki.ca, bad);
        assert.ok([400, 401, 431].includes(r.status), `refused: ${r.status} ${r.text.slice(0, 200)}`);
        if (r.status === 401) {
          const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
          assert.equal(body.type, 'error');
          assert.equal(body.error.type, 'authentication_error');
        }
        assert.ok(!r.text.includes(bad.slice(0, 40)) || bad === 'nope', 'the token is not echoed');
      }
    });

    test('thousands of connections (bad gateways, idle and garbage clients): refused, memory bounded, service intact', async () => {
      const before0 = rssKb(relay.pid);
      // 1500 bad-token gateway connections, 50 at a time.
      let refused = 0;
      for (let k = 0; k < 30; k++) {
        const rs = await Promise.all(Array.from({ length: 50 }, () => upgrade(relay.gatewayAddr, rpki.ca, 'tnltok.x.0.y').catch(() => ({ status: -1 }))));
        refused += rs.filter((r) => r.status !== 101).length;
      }
      assert.equal(refused, 1500);
      // 2000 garbage client connections.
      for (let k = 0; k < 20; k++) {
        await Promise.all(Array.from({ length: 100 }, () => raw(relay.clientAddr, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))));
      }
      // More pending handshakes from one address than the cap: the excess is closed at once.
      const held = [];
      const closedEarly = await new Promise((resolve) => {
        let early = 0;
        let n = 0;
        for (let k = 0; k < 40; k++) {
          const i = relay.clientAddr.lastIndexOf(':');
          const s = net.connect(Number(relay.clientAddr.slice(i + 1)), '127.0.0.1');
          const t0 = performance.now();
          s.on('error', () => {});
          s.on('close', () => { if (performance.now() - t0 < 700) early++; if (++n === 40) resolve(early); });
          held.push(s);
        }
      });
      for (const h of held) h.destroy();
      assert.ok(closedEarly >= 40 - 16 - 2, `connections beyond the per-address cap closed promptly (${closedEarly})`);
      const grown = rssKb(relay.pid) - before0;
      assert.ok(grown < 20 * 1024, `relay RSS grew by ${grown} KiB`);
      assert.equal(relay.proc.exitCode, null, 'the relay is alive');
      assert.equal((await get(app, '/ok')).status, 200, 'and serves');
    });
  });
});
