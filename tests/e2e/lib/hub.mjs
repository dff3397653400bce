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

// startHub({ dataDir, args, env }) -> { url, apiKey, dataDir, proc, logs(), stop(), kill9(), exited }
export async function startHub({ dataDir = tempDir(), args = [], env = {} } = {}) {
  const proc = spawn(BIN, ['hub', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--ready-fd', '3', ...args], {
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
