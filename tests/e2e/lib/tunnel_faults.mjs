// Shared pieces of the tunnel fault tests: an upstream inside the test
// process, a client that opens a fresh connection (a fresh CONNECT stream)
// per request, the raw gateway upgrade request, and small waits.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import tls from 'node:tls';
import { Agent, fetch as ufetch } from 'undici';
import { http as hubHttp, startHub, tempDir } from './hub.mjs';
import { TUNNEL_DOMAIN, createTunnel, relayPki } from './tunnel.mjs';

export const MUST = process.env.AIRLOCK_SANDBOX_MUST_WORK === '1';
export const tick = (ms) => new Promise((r) => setTimeout(r, ms));

// /ok, /slow?ms=N, /sse?n=N&ms=M
export async function upstream() {
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
export function client(addr, ca) {
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
export function upgrade(addr, ca, token) {
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

export async function readyz(addr) {
  try {
    const r = await fetch(`http://${addr}/readyz`, { signal: AbortSignal.timeout(2000) });
    return r.status;
  } catch { return 0; }
}

export async function untilTrue(fn, { timeoutMs = 30000, intervalMs = 50, what }) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await tick(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function rssKb(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// A hub with one tunnel, the relay's PKI and the upstream, for a test file.
export async function faultSetup(prefix) {
  const dir = tempDir(prefix);
  const hub = await startHub({ args: ['--tunnel-domain', TUNNEL_DOMAIN] });
  const setup = await createTunnel(hub, dir);
  const rpki = relayPki(dir);
  const up = await upstream();
  return { dir, hub, setup, rpki, up, hubHttp };
}
