// Helpers for escape.test.mjs: the isolation probe (`airlock worker --check`)
// and skip-or-fail, C workers started with sandbox flags (optionally inside a
// network namespace), sessions driven through the scripted model, the
// health checks every escape row ends with, and the test network namespace
// whose loopback carries 169.254.169.254 with a stand-in listener.
//
// AIRLOCK_SANDBOX_MUST_WORK=1 turns every "this host lacks layer X" skip
// into a failure (CI sets it).
//
// AIRLOCK_E2E_ESCAPE_SELFTEST=1 checks the probes themselves: the workers
// are started from AIRLOCK_E2E_ESCAPE_SELFTEST_BIN (an airlock built before
// the sandbox) WITHOUT the sandbox flags and the probe is taken as level A,
// so against a worker with no sandbox every escape row must FAIL (and must
// leave the machine as it was: each probe is harmless when not blocked).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { BIN, setup, http, history, until, tempDir } from './hub.mjs';

export const MUST_WORK = process.env.AIRLOCK_SANDBOX_MUST_WORK === '1';
export const SELFTEST = process.env.AIRLOCK_E2E_ESCAPE_SELFTEST === '1';
const WORKER_BIN = (SELFTEST && process.env.AIRLOCK_E2E_ESCAPE_SELFTEST_BIN) || BIN;
// Every worker started, for the logs a failing row reports.
export const workersStarted = [];
const RANK = { D: 0, C: 1, B: 2, A: 3 };
export const rank = (l) => (l in RANK ? RANK[l] : -1);
// Markers: digits only, so they also fit in `sleep 1000.<marker>`.
export const marker = () => String(100000000 + Math.floor(Math.random() * 899999999));

// The environment for worker children: the test's, less every ANTHROPIC_*
// and AIRLOCK_* variable (a stray AIRLOCK_SANDBOX_FORCE_LEVEL or AIRLOCK_ROOT
// must not change what a test runs), plus extra.
export function childEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    const u = k.toUpperCase();
    if (u.startsWith('ANTHROPIC_') || u.startsWith('AIRLOCK_')) delete env[k];
  }
  return { ...env, ...extra };
}

// `airlock worker --check ARGS` with env: { code, stdout, stderr, json }.
// Nothing is contacted: the base URL is a closed loopback port.
export function check(args = [], env = {}) {
  const r = spawnSync(BIN, ['worker', '--check', ...args], {
    env: childEnv({
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', ANTHROPIC_ENVIRONMENT_ID: 'env_check', ANTHROPIC_ENVIRONMENT_KEY: 'check',
      ...env,
    }),
    encoding: 'utf8', timeout: 60000,
  });
  let json = null;
  const out = (r.stdout ?? '').trim();
  try { json = JSON.parse(out); } catch {
    for (const l of out.split('\n')) {
      try { const j = JSON.parse(l); if (j && typeof j === 'object' && 'level' in j) json = j; } catch { /* not JSON */ }
    }
  }
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json, error: r.error };
}

let probed;
// The host's isolation level as the worker sees it, once per process.
export function probe() {
  if (SELFTEST) return { code: 0, json: { level: 'A', features: {}, missing: [], fixes: [] }, stdout: '', stderr: '' };
  probed ??= check(['--min-isolation', 'C']);
  return probed;
}

// Skips the test with reason, or fails it under AIRLOCK_SANDBOX_MUST_WORK=1.
// Returns false when the caller must return.
export function skipOr(t, reason) {
  if (MUST_WORK) throw new Error(`AIRLOCK_SANDBOX_MUST_WORK=1, but ${reason}`);
  t.skip(reason);
  return false;
}

// True when the host gives at least level min; else skips (or fails). A
// worker without --check (the sandbox not landed) is a failure, not a skip.
export function needLevel(t, min, what, p = probe()) {
  if (!p.json) {
    throw new Error(`\`airlock worker --check\` printed no probe JSON (exit ${p.code ?? p.signal}):\n` +
      `${p.stdout.slice(0, 2000)}\n${p.stderr.slice(0, 2000)}`);
  }
  if (rank(p.json.level) >= rank(min)) return true;
  return skipOr(t, `${what} needs isolation level ${min}; this host gives ${p.json.level} ` +
    `(missing: ${JSON.stringify(p.json.missing)})`);
}

// The sandbox flags, dropped in self-test mode (the worker then has none).
// AIRLOCK_E2E_ESCAPE_WORKER_ARGS (self-test only) adds flags, e.g. a
// --runner-exe that wraps the runner in a stand-in sandbox.
export function sandboxArgs(args) {
  if (!SELFTEST) return args;
  const extra = (process.env.AIRLOCK_E2E_ESCAPE_WORKER_ARGS ?? '').split(' ').filter(Boolean);
  const out = [];
  const valued = new Set(['--min-isolation', '--network', '--memory-max', '--pids-max', '--tmp-size', '--nofile', '--fsize']);
  for (let i = 0; i < args.length; i++) {
    if (valued.has(args[i])) i++;
    else out.push(args[i]);
  }
  return [...out, ...extra];
}

// Starts `airlock worker` (behind prefix, e.g. ['ip','netns','exec',NS])
// against baseUrl with root as --root: { proc, pid, root, exited, logs(),
// lines(), waitLog(re), workdirFor(sid), stop(), kill9() }.
export function launchWorker({ prefix = [], bin = WORKER_BIN, baseUrl, environmentId, envKey, root, args = [], env = {},
  maxIdleMs = 300 }) {
  const argv = [...prefix, bin, 'worker', '--root', root, '--max-idle', `${maxIdleMs}ms`, '--log-level', 'info',
    ...sandboxArgs(args)];
  const proc = spawn(argv[0], argv.slice(1), {
    cwd: root,
    env: childEnv({
      ANTHROPIC_BASE_URL: baseUrl, ANTHROPIC_ENVIRONMENT_ID: environmentId, ANTHROPIC_ENVIRONMENT_KEY: envKey, ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const waiters = new Set();
  const onData = (d) => { log += d; for (const w of waiters) w(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  // 'close', not 'exit': the log is complete only once stdout/stderr ended.
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => {
    resolve({ code, signal });
    for (const w of waiters) w();
  }));
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  const real = realpathSync(root);
  const w = {
    proc, pid: proc.pid, root: real, exited, gone,
    logs: () => log,
    lines: () => log.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return { msg: l }; } }),
    workdirFor: (sid) => join(real, 'sessions', sid, 'workspace'),
    waitLog(re, { timeoutMs = 30000, from = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const done = () => { clearTimeout(t); waiters.delete(chk); };
        const chk = () => {
          const m = log.slice(from).match(re);
          if (m) { done(); resolve(m); } else if (gone()) { done(); reject(new Error(`worker exited before ${re}:\n${log}`)); }
        };
        const t = setTimeout(() => { done(); reject(new Error(`timed out waiting for worker log ${re}:\n${log}`)); }, timeoutMs);
        waiters.add(chk);
        chk();
      });
    },
    async stop() {
      if (gone()) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    async kill9() { if (!gone()) proc.kill('SIGKILL'); return exited; },
  };
  workersStarted.push(w);
  return w;
}

// The warn/error lines of every worker's log, for a failure message.
export function workerTrouble(max = 6000) {
  let s = '';
  for (const [i, w] of workersStarted.entries()) {
    const bad = w.logs().split('\n').filter((l) => /"lvl":"(warn|error)"/.test(l) || (l && !l.startsWith('{')));
    if (bad.length) s += `\n--- worker ${i} (pid ${w.pid}) ---\n${bad.slice(-30).join('\n')}`;
  }
  return s.length > max ? s.slice(-max) : s;
}

// The worker's start-up line {"event":"isolation","level":..,"missing":..}.
export async function isolationLine(w) {
  if (SELFTEST) return { level: 'A', missing: [] };
  const m = await w.waitLog(/^.*"event":"isolation".*$/m);
  return JSON.parse(m[0]);
}

// An environment (with key and scripted agent) on hub, and helpers to drive
// sessions of it: { hub, client, envId, envKey, agent, run(), start(), ... }.
export async function environment(hub) {
  const s = await setup(hub);
  const ctx = {
    hub, client: s.client, envId: s.environment.id, envKey: s.envKey, agent: s.agent,
    async start(calls) {
      const text = calls.map(([name, input]) => `tool ${name} ${JSON.stringify(input)}`).join('\n');
      const sess = await ctx.client.beta.sessions.create({
        agent: ctx.agent.id, environment_id: ctx.envId,
        initial_events: [{ type: 'user.message', content: [{ type: 'text', text }] }],
      });
      return sess.id;
    },
    // The calls' results in order: [{ name, input, isError, text }] (text
    // undefined for a call without a result yet).
    async results(sid) {
      return resultsOf(await history(hub, sid));
    },
    waitResults(sid, n, { timeoutMs = 60000, what } = {}) {
      return until(() => ctx.results(sid), (r) => r.filter((x) => x.text !== undefined).length >= n,
        { timeoutMs, intervalMs: 100, what: what ?? `${n} results of ${sid}` });
    },
    async waitEnd(sid, { timeoutMs = 90000 } = {}) {
      const h = await until(() => history(hub, sid), endedTurn, { timeoutMs, intervalMs: 100, what: `${sid} to end its turn` });
      return resultsOf(h);
    },
    // Runs calls ([[name, input], ...]) in a new session to the end of its turn.
    async run(calls, opts) {
      const sid = await ctx.start(calls);
      const results = await ctx.waitEnd(sid, opts);
      return { sid, results, out: results.map((r) => r.text ?? '').join('\n') };
    },
    async item(sid) {
      const r = await http(hub, 'GET', `/v1/environments/${ctx.envId}/work?limit=100`, { key: ctx.envKey });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data.find((x) => x.data?.id === sid);
    },
    waitStopped(sid, { timeoutMs = 30000 } = {}) {
      return until(() => ctx.item(sid), (x) => x?.state === 'stopped', { timeoutMs, intervalMs: 100, what: `${sid} stopped` });
    },
  };
  return ctx;
}

export const textOf = (ev) => (ev.content ?? []).map((b) => b.text ?? '').join('');
export const endedTurn = (h) => h.some((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn');
export function resultsOf(h) {
  const res = new Map();
  for (const e of h) if (e.type === 'user.tool_result') res.set(e.tool_use_id, e);
  return h.filter((e) => e.type === 'agent.tool_use').map((c) => {
    const r = res.get(c.id);
    return { name: c.name, input: c.input, isError: r?.is_error, text: r ? textOf(r) : undefined };
  });
}

// Host processes whose command line holds any of the markers (not this one).
export function procsWith(markers) {
  const out = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    let cmd;
    try { cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { continue; }
    if (markers.some((m) => cmd.includes(m))) out.push({ pid: Number(p), cmd: cmd.slice(0, 200) });
  }
  return out;
}

// SIGKILLs the processes a broken sandbox let a probe leave behind (found
// by the probe's own marker, killed by pid).
export function killMarked(markers) {
  for (const p of procsWith(markers)) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
}

// Removes files a broken sandbox let a probe create outside (exact paths).
export function removeAll(paths) {
  for (const p of paths) { try { rmSync(p, { recursive: true, force: true }); } catch { /* not ours to fail on */ } }
}

// What every escape row ends with: the sessions stopped, no process with the
// row's markers left on the host, the machine healthy (this process can
// fork, load average sane), the worker alive, and a fresh session on the
// same worker runs a trivial bash call.
export async function assertHealthy(ctx, w, { sids = [], markers = [] } = {}) {
  for (const sid of sids) await ctx.waitStopped(sid);
  const left = await until(() => procsWith(markers), (ps) => ps.length === 0,
    { timeoutMs: 5000, intervalMs: 100, what: `no process left with marker ${markers.join(',')}` }).catch((e) => e);
  if (left instanceof Error) {
    const ps = procsWith(markers);
    killMarked(markers);
    assert.fail(`processes of the session outlived it: ${JSON.stringify(ps).slice(0, 1500)}`);
  }
  const f = spawnSync('/bin/true');
  assert.equal(f.status, 0, `the test process cannot fork: ${f.error}`);
  const load = os.loadavg()[0];
  assert.ok(load < 8 * os.cpus().length + 8, `load average ${load}`);
  assert.equal(w.proc.exitCode, null, `the worker exited:\n${w.logs().slice(-4000)}`);
  assert.equal(w.proc.signalCode, null, 'the worker was killed');
  const tag = marker();
  const next = await ctx.run([['bash', { command: `echo next-${tag}` }]]);
  assert.equal(next.results[0]?.isError, false, `the next session's call failed: ${next.out}`);
  assert.equal(next.results[0]?.text.trim(), `next-${tag}`);
}

// ---- the test network namespace ----------------------------------------

export function ip(...args) {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

export function canNetns() {
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns unavailable: ${r.stderr || r.error}`;
  return null;
}

// Runs fn(ns) with a fresh network namespace whose lo is up and also holds
// 169.254.169.254/32; deletes it afterwards.
export async function withNetns(fn) {
  const ns = `airlock-e2e-${marker()}`;
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo');
    return await fn(ns);
  } finally {
    try { ip('netns', 'del', ns); } catch { /* reported by the caller's leftovers */ }
  }
}

// Inside ns: a stand-in metadata listener on 169.254.169.254:80 that answers
// LEAK and reports each connection on stdout, and a relay from a Unix socket
// (reachable from the host's namespace) to 127.0.0.1:port in ns.
const HELPER = `
const net = require('net');
const [port, sock] = process.argv.slice(1);
net.createServer((s) => { process.stdout.write('CONN ' + s.remoteAddress + '\\n'); s.on('error', () => {}); s.end('LEAK\\n'); })
  .listen(80, '169.254.169.254', () => {
    net.createServer((c) => {
      const u = net.connect(Number(port), '127.0.0.1');
      c.pipe(u); u.pipe(c);
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
    }).listen(sock, () => process.stdout.write('READY\\n'));
  });
`;

// A hub inside ns, reachable from this process through a relay:
// { url (host side), innerUrl (inside ns), apiKey, conns(), logs(), stop() }.
export async function startHubInNetns(ns) {
  const dataDir = tempDir('airlock-e2e-esc-hub-');
  const proc = spawn('ip', ['netns', 'exec', ns, BIN, 'hub', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--ready-fd', '3'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, AIRLOCK_API_KEY: '' },
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const hubExited = new Promise((r) => proc.on('exit', r));
  const innerUrl = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdio[3].on('data', (d) => { buf += d; });
    proc.stdio[3].on('end', () => (buf.trim() ? resolve(buf.trim()) : reject(new Error(`hub in ${ns} exited before ready:\n${log}`))));
    proc.on('error', reject);
  });
  const sock = join(dataDir, 'relay.sock');
  const helper = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', HELPER, new URL(innerUrl).port, sock], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let hlog = '';
  const helperExited = new Promise((r) => helper.on('exit', r));
  await new Promise((resolve, reject) => {
    helper.stdout.on('data', (d) => { hlog += d; if (hlog.includes('READY')) resolve(); });
    helper.stderr.on('data', (d) => { hlog += d; });
    helper.on('exit', () => reject(new Error(`netns helper exited: ${hlog}`)));
  });
  const relay = net.createServer((c) => {
    const u = net.connect(sock);
    c.pipe(u); u.pipe(c);
    c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  });
  await new Promise((r) => relay.listen(0, '127.0.0.1', r));
  const apiKey = readFileSync(join(dataDir, 'api.key'), 'utf8').trim();
  return {
    url: `http://127.0.0.1:${relay.address().port}`, innerUrl, apiKey, dataDir,
    logs: () => log,
    conns: () => hlog.split('\n').filter((l) => l.startsWith('CONN')),
    async stop() {
      relay.close();
      helper.kill('SIGKILL');
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await Promise.all([hubExited, helperExited]);
      clearTimeout(t);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// A TCP listener on host loopback that counts connections.
export async function loopbackListener() {
  const seen = [];
  const srv = net.createServer((s) => { seen.push(s.remoteAddress); s.on('error', () => {}); s.end('LEAK\n'); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { port: srv.address().port, seen, close: () => new Promise((r) => srv.close(r)) };
}

export { existsSync, unlinkSync, tempDir };
