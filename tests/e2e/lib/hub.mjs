// Starts the real airlock hub on loopback for a test, with its own data
// directory, and hands back its URL and API key. The hub reports readiness
// on fd 3 (--ready-fd 3): no sleeps, no guessed ports.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';

export const BIN = process.env.AIRLOCK_BIN;
if (!BIN) throw new Error('AIRLOCK_BIN is not set (run through tests/e2e/run.sh)');

export function tempDir(prefix = 'airlock-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// startHub({ dataDir, args, env, listen }) -> { url, apiKey, dataDir, proc, logs(), stop(), kill9(), exited }
// listen: 'HOST:PORT' to restart a hub on the address a previous one had
// (e.g. `new URL(hub.url).host`); the default picks a free port.
export async function startHub({ dataDir = tempDir(), args = [], env = {}, listen = '127.0.0.1:0' } = {}) {
  const proc = spawn(BIN, ['hub', '--listen', listen, '--data-dir', dataDir, '--ready-fd', '3', ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, AIRLOCK_API_KEY: '', ...env },
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdio[3].on('data', (d) => { buf += d; });
    proc.stdio[3].on('end', () => (buf.trim() ? resolve(buf.trim()) : reject(new Error(`hub exited before ready:\n${log}`))));
    proc.on('error', reject);
  });
  const apiKey = env.AIRLOCK_API_KEY || readFileSync(join(dataDir, 'api.key'), 'utf8').trim();
  const hub = {
    url, apiKey, dataDir, proc, exited,
    logs: () => log,
    // SIGTERM, then require a clean exit (sanitizer reports make it non-zero).
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(t);
      if (r.code !== 0) throw new Error(`hub exited ${r.code ?? r.signal}:\n${log}`);
      return r;
    },
    async kill9() {
      proc.kill('SIGKILL');
      return exited;
    },
    cleanup() { rmSync(dataDir, { recursive: true, force: true }); },
  };
  return hub;
}

// The official SDK client, pointed at the hub.
export function client(hub, apiKey = hub.apiKey, opts = {}) {
  return new Anthropic({ apiKey, baseURL: hub.url, maxRetries: 0, ...opts });
}

// Raw HTTP against the hub: returns { status, headers, body (parsed JSON or text) }.
export async function http(hub, method, path, { key = hub.apiKey, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  let payload = body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(hub.url + path, { method, headers: h, body: payload });
  const text = await res.text();
  let parsed = text;
  try { parsed = text.length ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed };
}

// Creates a self_hosted environment, an environment key, and a scripted agent.
export async function setup(hub, { agent = {}, env = {} } = {}) {
  const c = client(hub);
  const environment = await c.beta.environments.create({ name: 'e2e', config: { type: 'self_hosted' }, ...env });
  const key = await http(hub, 'POST', `/v1/environments/${environment.id}/keys`);
  if (key.status !== 200) throw new Error(`key create: ${key.status} ${JSON.stringify(key.body)}`);
  const created = await c.beta.agents.create({
    name: 'e2e-agent', model: 'airlock-scripted', tools: [{ type: 'agent_toolset_20260401' }], ...agent,
  });
  return { client: c, environment, envKey: key.body.key, agent: created };
}

// Polls GET fn() until pred(value) holds; a real await loop on the hub's own
// state, bounded by timeoutMs. Used where no event exists to wait on.
export async function until(fn, pred, { timeoutMs = 30000, intervalMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 2000)}`);
}

// All events of a session, following next_page.
export async function history(hub, sessionId, key = hub.apiKey) {
  const out = [];
  let page;
  for (;;) {
    const q = new URLSearchParams({ limit: '1000' });
    if (page) q.set('page', page);
    const r = await http(hub, 'GET', `/v1/sessions/${sessionId}/events?${q}`, { key });
    if (r.status !== 200) throw new Error(`events list ${r.status}: ${JSON.stringify(r.body)}`);
    out.push(...r.body.data);
    if (!r.body.next_page) return out;
    page = r.body.next_page;
  }
}

// Opens GET /v1/sessions/{id}/events/stream with a raw fetch and parses the
// SSE body as it arrives: { status, headers, raw, frames, events, closed,
// ended, waitFor(pred, {timeoutMs}), close() }. frames holds every block between
// blank lines as { text, comment, event, data }; events holds the parsed
// data of every frame with an event name other than "ping".
export async function openStream(hub, sessionId, { key = hub.apiKey, query = '' } = {}) {
  const ac = new AbortController();
  const res = await fetch(`${hub.url}/v1/sessions/${sessionId}/events/stream${query}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: ac.signal,
  });
  const s = { status: res.status, headers: res.headers, raw: '', frames: [], events: [], closed: false };
  const waiters = new Set();
  const notify = () => { for (const w of waiters) w(); };
  const parse = (text) => {
    const f = { text, comment: [], event: undefined, data: undefined };
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) f.comment.push(line.slice(1));
      else if (line.startsWith('event:')) f.event = line.slice(6).replace(/^ /, '');
      else if (line.startsWith('data:')) f.data = (f.data === undefined ? '' : `${f.data}\n`) + line.slice(5).replace(/^ /, '');
    }
    s.frames.push(f);
    if (f.event && f.event !== 'ping' && f.data !== undefined) {
      try { s.events.push(JSON.parse(f.data)); } catch { /* the framing test looks at frames */ }
    }
  };
  // Resolves 'eof' when the hub ends the stream, 'aborted' after close().
  s.ended = (async () => {
    const dec = new TextDecoder();
    let buf = '';
    let how = 'eof';
    try {
      for await (const chunk of res.body) {
        const t = dec.decode(chunk, { stream: true });
        s.raw += t;
        buf += t;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          parse(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
        notify();
      }
    } catch { how = ac.signal.aborted ? 'aborted' : 'reset'; }
    s.closed = true;
    notify();
    return how;
  })();
  // Resolves with the first event (in stream order) satisfying pred.
  s.waitFor = (pred, { timeoutMs = 30000, what = 'stream event' } = {}) => new Promise((resolve, reject) => {
    const check = () => {
      const hit = s.events.find(pred);
      if (hit) { done(); resolve(hit); } else if (s.closed) { done(); reject(new Error(`stream closed before ${what}`)); }
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${what}; saw ${s.events.map((e) => e.type).join(', ')}`));
    }, timeoutMs);
    const done = () => { clearTimeout(t); waiters.delete(check); };
    waiters.add(check);
    check();
  });
  s.close = () => ac.abort();
  return s;
}
