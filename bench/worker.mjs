// SPDX-License-Identifier: Apache-2.0
// The worker benchmark: airlock's C environment worker (`airlock worker`, with
// its `airlock sandbox-runner` children) against the official SDK's worker
// (@anthropic-ai/sdk, tests/e2e/lib/sdk-worker.mjs), one after the other on
// the same hub, in one run. bench/run.sh starts the hub and runs this as its
// `worker` stage; see docs/BENCHMARKS.md for what each number is.
//
//   node bench/worker.mjs --url URL --api-key-file FILE --airlock BIN
//        [--hub-pid PID] [--calls 200] [--sessions 50] [--starts 5] [--kinds c,sdk] [--json FILE]
//
// The driver only sets things up and reads the results: call overheads come
// from the hub's own processed_at stamps (µs), CPU and memory from /proc of
// the worker's process tree. It must run on the hub's machine.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SDK_WORKER = path.join(HERE, '..', 'tests', 'e2e', 'lib', 'sdk-worker.mjs');

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    url: '', apiKeyFile: '', airlock: '', hubPid: 0,
    calls: Number(process.env.BENCH_WORKER_CALLS || 200),
    sessions: Number(process.env.BENCH_WORKER_SESSIONS || 50),
    starts: Number(process.env.BENCH_WORKER_STARTS || 5),
    kinds: (process.env.BENCH_WORKER_KINDS || 'c,sdk').split(',').filter(Boolean),
    node: process.execPath, json: '', verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--url': o.url = v(); break;
      case '--api-key-file': o.apiKeyFile = v(); break;
      case '--airlock': o.airlock = v(); break;
      case '--hub-pid': o.hubPid = Number(v()); break;
      case '--calls': o.calls = Number(v()); break;
      case '--sessions': o.sessions = Number(v()); break;
      case '--starts': o.starts = Number(v()); break;
      case '--kinds': o.kinds = v().split(',').filter(Boolean); break;
      case '--node': o.node = v(); break;
      case '--json': o.json = v(); break;
      case '--verbose': o.verbose = true; break;
      case '--help':
        process.stdout.write('usage: node bench/worker.mjs --url URL --api-key-file FILE --airlock BIN [--hub-pid PID]\n' +
          '  [--calls N (200)] [--sessions N (50)] [--starts N (5)] [--kinds c,sdk] [--node NODE] [--json FILE] [--verbose]\n' +
          'env: BENCH_WORKER_CALLS, BENCH_WORKER_SESSIONS, BENCH_WORKER_STARTS, BENCH_WORKER_KINDS\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.url || !o.apiKeyFile || !o.airlock) throw new Error('--url, --api-key-file and --airlock are required');
  if (!(o.calls >= 1 && o.sessions >= 1 && o.starts >= 1)) throw new Error('--calls, --sessions and --starts must be >= 1');
  for (const k of o.kinds) if (k !== 'c' && k !== 'sdk') throw new Error(`unknown worker kind ${k}`);
  return o;
}

const opt = parseArgs(process.argv.slice(2));
const apiKey = fs.readFileSync(opt.apiKeyFile, 'utf8').trim();
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const NS_PER_TICK = 1e9 / CLK_TCK;
const log = (...a) => { if (opt.verbose) process.stderr.write(`${a.join(' ')}\n`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

// ---------------------------------------------------------------- hub API

async function api(method, p, { key = apiKey, body } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  let payload;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(opt.url + p, { method, headers, body: payload });
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 500)}`);
  return parsed;
}

async function history(sessionId) {
  const out = [];
  let page;
  for (;;) {
    const q = new URLSearchParams({ limit: '1000' });
    if (page) q.set('page', page);
    const r = await api('GET', `/v1/sessions/${sessionId}/events?${q}`);
    out.push(...r.data);
    if (!r.next_page) return out;
    page = r.next_page;
  }
}

// A session's SSE stream, read until close(); waitIdle(n) resolves once n
// turn-ending (end_turn) idles have arrived on it.
async function openStream(sessionId) {
  const ac = new AbortController();
  const res = await fetch(`${opt.url}/v1/sessions/${sessionId}/events/stream`, {
    headers: { authorization: `Bearer ${apiKey}` }, signal: ac.signal,
  });
  if (res.status !== 200) throw new Error(`stream ${sessionId}: ${res.status}`);
  const s = { idles: 0, waiters: new Set(), ended: false };
  const notify = () => { for (const w of s.waiters) w(); };
  (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!/^event: session\.status_idle$/m.test(frame)) continue;
          const data = frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          try { if (JSON.parse(data).stop_reason?.type === 'end_turn') s.idles++; } catch { /* ignore */ }
          notify();
        }
      }
    } catch { /* aborted */ }
    s.ended = true;
    notify();
  })();
  s.waitIdle = (n, timeoutMs = 300000) => new Promise((resolve, reject) => {
    const check = () => {
      if (s.idles >= n) { done(); resolve(); } else if (s.ended) { done(); reject(new Error(`stream of ${sessionId} ended`)); }
    };
    const t = setTimeout(() => { done(); reject(new Error(`timed out waiting for end_turn idle ${n} of ${sessionId}`)); },
      timeoutMs);
    const done = () => { clearTimeout(t); s.waiters.delete(check); };
    s.waiters.add(check);
    check();
  });
  s.close = () => ac.abort();
  return s;
}

const sendText = (sessionId, text) => api('POST', `/v1/sessions/${sessionId}/events`, {
  body: { events: [{ type: 'user.message', content: [{ type: 'text', text }] }] },
});

// ---------------------------------------------------------------- /proc

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { pid, comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), ppid: Number(f[1]),
      utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch { return null; }
}

// Every live process under root (root included), each with a role.
function tree(root) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d));
    if (!st) continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(st);
  }
  const rootSt = procStat(root);
  if (!rootSt) return [];
  const out = [rootSt];
  for (let i = 0; i < out.length; i++) for (const k of kids.get(out[i].pid) || []) out.push(k);
  for (const p of out) {
    let cmd = '';
    try { cmd = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8'); } catch { /* gone */ }
    p.role = p.pid === root ? 'worker' : cmd.includes('sandbox-runner') ? 'runner' : p.comm === 'bash' ? 'bash' : p.comm;
  }
  return out;
}

// CPU time of a process tree, ns. precise: per-thread schedstat of every live
// task plus the (tick-resolution) cutime/cstime of descendants that a tree
// member already reaped; ticks: utime+stime+cutime+cstime from stat alone.
function cpu(root) {
  let precise = 0, ticks = 0;
  const roles = {};
  for (const p of tree(root)) {
    ticks += (p.utime + p.stime + p.cutime + p.cstime) * NS_PER_TICK;
    let tasks = 0;
    try {
      for (const t of fs.readdirSync(`/proc/${p.pid}/task`)) {
        try { tasks += Number(fs.readFileSync(`/proc/${p.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
      }
    } catch { /* gone */ }
    precise += tasks + (p.cutime + p.cstime) * NS_PER_TICK;
    roles[p.role] = (roles[p.role] || 0) + tasks + (p.cutime + p.cstime) * NS_PER_TICK;
  }
  return { precise, ticks, roles };
}

function hubCpu() {
  if (!opt.hubPid) return 0;
  let ns = 0;
  try {
    for (const t of fs.readdirSync(`/proc/${opt.hubPid}/task`)) {
      try { ns += Number(fs.readFileSync(`/proc/${opt.hubPid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
    }
  } catch { /* gone */ }
  return ns;
}

function memOf(pid) {
  const m = { rss: 0, pss: 0, anon: 0, private: 0 };
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    m.rss = Number(/^VmRSS:\s+(\d+)/m.exec(st)?.[1] || 0) * 1024;
  } catch { /* gone */ }
  try {
    const sr = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(sr)?.[1] || 0) * 1024;
    m.pss = kb('Pss');
    m.anon = kb('Anonymous');
    m.private = kb('Private_Clean') + kb('Private_Dirty');
  } catch { /* gone */ }
  return m;
}

// Memory of a worker's tree by role: { worker: {n, rss, pss}, runner: ..., bash: ... }.
function memory(root) {
  const by = {};
  for (const p of tree(root)) {
    const m = memOf(p.pid);
    const r = (by[p.role] ||= { n: 0, rss: 0, pss: 0, anon: 0, private: 0 });
    r.n++;
    for (const k of ['rss', 'pss', 'anon', 'private']) r[k] += m[k];
  }
  return by;
}

// Samples memory() every 250 ms for ms and keeps, per role, the sample with the largest PSS.
async function memoryPeak(root, ms) {
  const best = {};
  const end = now() + ms;
  do {
    const m = memory(root);
    for (const [k, v] of Object.entries(m)) if (!best[k] || v.pss > best[k].pss) best[k] = v;
    await sleep(250);
  } while (now() < end);
  return best;
}

// ---------------------------------------------------------------- workers

const tmpRoot = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'airlock-bench-worker-'));
const live = new Set();

function startWorker(kind, { baseURL, envId, envKey, maxSessions, maxIdleMs, tag }) {
  const root = fs.mkdtempSync(path.join(tmpRoot, `${kind}-${tag}-`));
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.toUpperCase().startsWith('ANTHROPIC_') || k.startsWith('AIRLOCK_')) delete env[k];
  Object.assign(env, {
    ANTHROPIC_BASE_URL: baseURL, ANTHROPIC_ENVIRONMENT_ID: envId, ANTHROPIC_ENVIRONMENT_KEY: envKey,
    AIRLOCK_E2E_LOG_LEVEL: 'warn', NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost',
  });
  const logFile = path.join(tmpRoot, `${kind}-${tag}.log`);
  const fd = fs.openSync(logFile, 'w');
  const argv = kind === 'c'
    ? [opt.airlock, ['worker', '--root', root, '--max-sessions', String(maxSessions), '--max-idle', `${maxIdleMs}ms`,
      '--log-level', 'warn']]
    : [opt.node, [SDK_WORKER, root, String(maxIdleMs)]];
  const t0 = now();
  const proc = spawn(argv[0], argv[1], { cwd: root, env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const w = { kind, proc, pid: proc.pid, root, t0, exited, logFile };
  live.add(w);
  w.stop = async (sig = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    const t = setTimeout(() => proc.kill('SIGKILL'), 40000);
    const r = await exited;
    clearTimeout(t);
    live.delete(w);
    return r;
  };
  return w;
}

async function waitPolling(envId, envKey, w, timeoutMs = 30000) {
  const end = now() + timeoutMs;
  while (now() < end) {
    if (w.proc.exitCode !== null) throw new Error(`${w.kind} worker exited:\n${fs.readFileSync(w.logFile, 'utf8')}`);
    const s = await api('GET', `/v1/environments/${envId}/work/stats`, { key: envKey });
    if (s.workers_polling >= 1) return;
    await sleep(50);
  }
  throw new Error(`${w.kind} worker never polled`);
}

// ---------------------------------------------------------------- start-up

// A forwarding proxy in front of the hub that notes when the first
// /work/poll request's headers arrive.
async function startProxy() {
  const hub = new URL(opt.url);
  const p = { onPoll: null };
  const server = http.createServer((req, res) => {
    if (req.url.includes('/work/poll') && p.onPoll) {
      const f = p.onPoll;
      p.onPoll = null;
      f(now());
    }
    const up = http.request({ host: hub.hostname, port: hub.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  p.url = `http://127.0.0.1:${server.address().port}`;
  p.close = () => { server.closeAllConnections(); server.close(); };
  return p;
}

async function startupOnce(kind, proxy, envId, envKey, i) {
  const polled = new Promise((resolve) => { proxy.onPoll = resolve; });
  const w = startWorker(kind, { baseURL: proxy.url, envId, envKey, maxSessions: 1, maxIdleMs: 60000, tag: `start${i}` });
  const t = await Promise.race([polled, w.exited.then(() => null), sleep(30000).then(() => undefined)]);
  proxy.onPoll = null;
  await w.stop();
  if (t === null || t === undefined) throw new Error(`${kind} worker: no poll within 30 s:\n${fs.readFileSync(w.logFile, 'utf8')}`);
  return t - w.t0;
}

// ---------------------------------------------------------------- one worker

const FILE_4K = `${'0123456789abcdef'.repeat(4).slice(0, 63)}\n`.repeat(64); // 4096 bytes, 64 lines
const PHASES = [
  { name: 'bash', label: 'bash {"command":"true"}', line: 'tool bash {"command":"true"}' },
  { name: 'write', label: 'write 4 KiB', line: `tool write ${JSON.stringify({ file_path: 'f4k.txt', content: FILE_4K })}` },
  { name: 'read', label: 'read 4 KiB', line: 'tool read {"file_path":"f4k.txt"}' },
];

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// processed_at → µs since the epoch (the hub writes 6 fractional digits).
function stampUs(s) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})Z$/.exec(s);
  if (!m) throw new Error(`processed_at ${s} has no µs resolution`);
  return Date.parse(`${m[1]}Z`) * 1000 + Number(m[2]);
}

async function benchWorker(kind, agentId, startups) {
  const r = { kind, startup_ms: startups };
  const env = await api('POST', '/v1/environments', { body: { name: `bench-worker-${kind}`, config: { type: 'self_hosted' } } });
  const envKey = (await api('POST', `/v1/environments/${env.id}/keys`)).key;
  const maxSessions = kind === 'c' ? opt.sessions : 1;
  const w = startWorker(kind, { baseURL: opt.url, envId: env.id, envKey, maxSessions, maxIdleMs: 600000, tag: 'main' });
  const streams = [];
  try {
    await waitPolling(env.id, envKey, w);
    // Idle: polling, no session.
    await sleep(2000);
    const c0 = cpu(w.pid), t0 = now();
    r.idle_mem = await memoryPeak(w.pid, 3000);
    r.idle_cpu_pct = ((cpu(w.pid).precise - c0.precise) / 1e6 / (now() - t0)) * 100;
    log(kind, 'idle', JSON.stringify(r.idle_mem), `cpu ${r.idle_cpu_pct.toFixed(2)}%`);

    // One session: a warm-up turn, then one turn per phase.
    const session = await api('POST', '/v1/sessions', { body: { agent: agentId, environment_id: env.id } });
    const st = await openStream(session.id);
    streams.push(st);
    let turns = 0;
    await sendText(session.id, Array(5).fill(PHASES[0].line).concat(Array(2).fill(PHASES[1].line), PHASES[2].line).join('\n'));
    await st.waitIdle(++turns);
    r.phases = {};
    for (const ph of PHASES) {
      const c1 = cpu(w.pid), h1 = hubCpu(), t1 = now();
      await sendText(session.id, Array(opt.calls).fill(ph.line).join('\n'));
      await st.waitIdle(++turns);
      const c2 = cpu(w.pid), h2 = hubCpu();
      r.phases[ph.name] = {
        wall_ms: now() - t1,
        cpu_us_per_call: (c2.precise - c1.precise) / 1e3 / opt.calls,
        cpu_ticks_us_per_call: (c2.ticks - c1.ticks) / 1e3 / opt.calls,
        hub_cpu_us_per_call: (h2 - h1) / 1e3 / opt.calls,
        cpu_us_per_call_by_process: Object.fromEntries(Object.keys({ ...c1.roles, ...c2.roles })
          .map((k) => [k, ((c2.roles[k] || 0) - (c1.roles[k] || 0)) / 1e3 / opt.calls])),
      };
      log(kind, ph.name, JSON.stringify(r.phases[ph.name]));
    }
    r.one_session_mem = await memoryPeak(w.pid, 1000);

    // Per-call overhead from the hub's stamps: agent.tool_use → user.tool_result.
    const h = await history(session.id);
    if (process.env.BENCH_WORKER_DUMP) fs.writeFileSync(`${process.env.BENCH_WORKER_DUMP}.${kind}.json`, JSON.stringify(h));
    const uses = new Map();
    const byTurn = [];
    let turn = -1;
    for (const e of h) {
      if (e.type === 'user.message') byTurn[++turn] = [];
      else if (e.type === 'agent.tool_use') uses.set(e.id, { e, turn });
      else if (e.type === 'user.tool_result') {
        const u = uses.get(e.tool_use_id);
        if (!u) throw new Error(`tool_result for unknown ${e.tool_use_id}`);
        if (e.is_error) throw new Error(`${kind} ${u.e.name} failed: ${JSON.stringify(e.content).slice(0, 300)}`);
        byTurn[u.turn].push({ name: u.e.name, us: stampUs(e.processed_at) - stampUs(u.e.processed_at) });
      }
    }
    PHASES.forEach((ph, i) => {
      const xs = byTurn[i + 1] || [];
      if (xs.length !== opt.calls || xs.some((x) => x.name !== ph.name)) {
        throw new Error(`${kind} ${ph.name}: ${xs.length} of ${opt.calls} results`);
      }
      const us = xs.map((x) => x.us).sort((a, b) => a - b);
      Object.assign(r.phases[ph.name], {
        samples_us: xs.map((x) => x.us),
        n: us.length, p50_us: pct(us, 50), p99_us: pct(us, 99), max_us: us.at(-1),
        mean_us: us.reduce((a, b) => a + b, 0) / us.length,
      });
    });

    // 50 concurrent sessions (the C worker only; the SDK's serves one at a time).
    if (kind === 'c' && opt.sessions > 1) {
      const more = [];
      for (let i = 1; i < opt.sessions; i++) {
        const s = await api('POST', '/v1/sessions', { body: { agent: agentId, environment_id: env.id } });
        const ss = await openStream(s.id);
        streams.push(ss);
        more.push({ s, ss });
      }
      await Promise.all(more.map(({ s }) => sendText(s.id, 'tool bash {"command":"true"}')));
      await Promise.all(more.map(({ ss }) => ss.waitIdle(1, 120000)));
      const m = memory(w.pid);
      if ((m.runner?.n || 0) !== opt.sessions) throw new Error(`c worker: ${m.runner?.n || 0} runners, want ${opt.sessions}`);
      r.sessions_mem = await memoryPeak(w.pid, 2000);
      log(kind, 'sessions', JSON.stringify(r.sessions_mem));
    }
  } finally {
    for (const s of streams) s.close();
    const x = await w.stop();
    r.exit = x.code ?? x.signal;
    if (x.code !== 0) process.stderr.write(`bench: ${kind} worker exited ${r.exit}; its log:\n${fs.readFileSync(w.logFile, 'utf8').slice(-3000)}\n`);
  }
  return r;
}

// ---------------------------------------------------------------- report

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const ms = (us) => `${(us / 1000).toFixed(3)} ms`;
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const ratio = (a, b) => (a !== undefined && b ? `${(a / b).toFixed(3)}×` : 'n/a');
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

function report(res) {
  const c = res.c, s = res.sdk;
  const row = (cells) => `| ${cells.join(' | ')} |`;
  const lines = [];
  lines.push(row(['measurement', 'C worker', 'SDK worker', 'C / SDK', 'target', '']));
  lines.push(row(['---', '---', '---', '---', '---', '---']));
  const met = (x, lim) => (x === undefined || !Number.isFinite(x) ? '' : x <= lim ? '**met**' : '**not met**');
  for (const ph of PHASES) {
    const a = c?.phases[ph.name], b = s?.phases[ph.name];
    const q = a && b ? a.p50_us / b.p50_us : undefined;
    lines.push(row([`call overhead, ${ph.label}`, a ? `p50 **${ms(a.p50_us)}**, p99 ${ms(a.p99_us)}` : '',
      b ? `p50 **${ms(b.p50_us)}**, p99 ${ms(b.p99_us)}` : '', a && b ? `p50 ${ratio(a.p50_us, b.p50_us)}, p99 ${ratio(a.p99_us, b.p99_us)}` : '',
      'p50 ≤ 0.25×', met(q, 0.25)]));
  }
  for (const ph of PHASES) {
    const a = c?.phases[ph.name], b = s?.phases[ph.name];
    const q = a && b ? a.cpu_us_per_call / b.cpu_us_per_call : undefined;
    lines.push(row([`worker CPU per call, ${ph.label}`, a ? `**${f1(a.cpu_us_per_call)} µs**` : '', b ? `**${f1(b.cpu_us_per_call)} µs**` : '',
      ratio(a?.cpu_us_per_call, b?.cpu_us_per_call), '≤ 0.1×', met(q, 0.1)]));
  }
  const split = (x) => (x ? Object.entries(x.cpu_us_per_call_by_process).filter(([, v]) => Math.abs(v) >= 0.05)
    .map(([k, v]) => `${k} ${f1(v)}`).join(', ') : '');
  for (const ph of PHASES) {
    const a = c?.phases[ph.name], b = s?.phases[ph.name];
    lines.push(row([`… by process (µs), ${ph.label}`, split(a), split(b), '', '', '']));
  }
  for (const ph of PHASES) {
    const a = c?.phases[ph.name], b = s?.phases[ph.name];
    lines.push(row([`… hub CPU per call, ${ph.label}`, a ? `${f1(a.hub_cpu_us_per_call)} µs` : '', b ? `${f1(b.hub_cpu_us_per_call)} µs` : '',
      '', '', '']));
  }
  const role = (m, k) => (m && m[k] ? m[k] : undefined);
  const memCell = (m) => (m ? `PSS **${mb(m.pss)}** (RSS ${mb(m.rss)})` : '');
  const ci = role(c?.idle_mem, 'worker'), si = role(s?.idle_mem, 'worker');
  lines.push(row(['worker memory, idle (polling, no session)', memCell(ci), memCell(si), ratio(ci?.pss, si?.pss),
    'C RSS ≤ 5 MB', ci ? (ci.rss <= 5e6 ? '**met**' : '**not met**') : '']));
  const anon = (m) => (m ? `${mb(m.private)} private, ${mb(m.anon)} anonymous` : '');
  lines.push(row(['… of the idle RSS', anon(ci), anon(si), '', '', '']));
  lines.push(row(['… worker CPU while idle', c ? `${c.idle_cpu_pct.toFixed(2)}% of a core` : '', s ? `${s.idle_cpu_pct.toFixed(2)}% of a core` : '', '', '', '']));
  const per = (m, n) => (m ? `${memCell(m)}${n > 1 ? ` over ${m.n}` : ''}` : '—');
  for (const [label, key] of [['worker memory, 1 session', 'worker'], ['… its runner', 'runner'], ['… its bash', 'bash']]) {
    const a = role(c?.one_session_mem, key), b = role(s?.one_session_mem, key);
    lines.push(row([label, per(a, a?.n), per(b, b?.n), '', '', '']));
  }
  if (c?.sessions_mem) {
    const m = c.sessions_mem;
    const each = (x) => (x ? `${memCell(x)} in all, ${mb(x.pss / x.n)} PSS each` : '—');
    lines.push(row([`worker memory, ${opt.sessions} sessions (C: one worker; SDK: serves one at a time)`, memCell(m.worker),
      's. 1 session', '', '', '']));
    lines.push(row([`… ${m.runner?.n ?? 0} runners`, each(m.runner), '', '', '', '']));
    lines.push(row([`… ${m.bash?.n ?? 0} bash shells`, each(m.bash), '', '', '', '']));
  }
  const su = (x) => (x ? `median **${f1(median(x.startup_ms))} ms** (${f1(Math.min(...x.startup_ms))}–${f1(Math.max(...x.startup_ms))})` : '');
  lines.push(row([`start-up: exec → first poll at the hub, ${opt.starts} starts`, su(c), su(s),
    c && s ? ratio(median(c.startup_ms), median(s.startup_ms)) : '', 'none', '']));
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

let status = 0;
const cleanup = async () => {
  for (const w of [...live]) await w.stop('SIGKILL');
  fs.rmSync(tmpRoot, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup().finally(() => process.exit(1)); });

try {
  const agent = await api('POST', '/v1/agents', {
    body: { name: 'bench-worker', model: 'airlock-scripted', tools: [{ type: 'agent_toolset_20260401' }] },
  });
  // Start-up: alternate the kinds, through the proxy, each with its own environment.
  const proxy = await startProxy();
  const startups = {};
  try {
    const envs = {};
    for (const k of opt.kinds) {
      const e = await api('POST', '/v1/environments', { body: { name: `bench-start-${k}`, config: { type: 'self_hosted' } } });
      envs[k] = { id: e.id, key: (await api('POST', `/v1/environments/${e.id}/keys`)).key };
      startups[k] = [];
    }
    for (let i = 0; i < opt.starts; i++) {
      for (const k of opt.kinds) {
        const t = await startupOnce(k, proxy, envs[k].id, envs[k].key, i);
        startups[k].push(t);
        log(k, 'start-up', t.toFixed(1), 'ms');
      }
    }
  } finally {
    proxy.close();
  }
  const res = {};
  for (const k of opt.kinds) {
    res[k] = await benchWorker(k, agent.id, startups[k]);
    if (res[k].exit !== 0) status = 1;
  }
  process.stdout.write(`workers: C \`${opt.airlock} worker --max-sessions ${opt.sessions} --max-idle 600s --log-level warn\`; ` +
    `SDK \`${opt.node} tests/e2e/lib/sdk-worker.mjs\` (@anthropic-ai/sdk ` +
    `${JSON.parse(fs.readFileSync(path.join(HERE, '..', 'tests', 'e2e', 'node_modules', '@anthropic-ai', 'sdk', 'package.json'), 'utf8')).version}` +
    `, Node ${process.version}); ${opt.calls} calls per tool, one session\n\n`);
  process.stdout.write(`${report(res)}\n`);
  if (opt.json) fs.writeFileSync(opt.json, `${JSON.stringify(res, null, 2)}\n`);
} catch (e) {
  process.stderr.write(`bench: worker stage failed: ${e.stack || e}\n`);
  for (const w of live) process.stderr.write(`--- ${w.kind} worker log ---\n${fs.readFileSync(w.logFile, 'utf8').slice(-3000)}\n`);
  status = 1;
} finally {
  await cleanup();
}
process.exit(status);
