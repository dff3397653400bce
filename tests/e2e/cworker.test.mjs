// The C worker (`airlock worker`) end to end on a real hub: many sessions at
// once, faults (hub killed, stream cut, lease lost, SIGTERM drains, runner
// killed), the --on-work / `worker run` modes, and skills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startHub, setup, http, history, until, tempDir } from './lib/hub.mjs';
import { startWorker } from './lib/worker.mjs';
import { startFakeHub } from './lib/fakehub.mjs';
import { tar } from './lib/archive.mjs';

const text = (ev) => (ev.content ?? []).map((b) => b.text ?? '').join('');
const message = (lines) => ({ type: 'user.message', content: [{ type: 'text', text: lines.join('\n') }] });
const hubEvents = (hub) => hub.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const endedTurn = (h) => h.some((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn');
const executions = (w, id) => w.lines().filter((l) => l.event === 'executing tool' && l.tool_use_id === id).length;

// Results keyed by tool_use_id, failing on a second result for one call.
function resultsById(h) {
  const m = new Map();
  for (const e of h.filter((x) => x.type === 'user.tool_result')) {
    assert.ok(!m.has(e.tool_use_id), `two user.tool_result events for ${e.tool_use_id}`);
    m.set(e.tool_use_id, e);
  }
  return m;
}

// Runs fn(ctx) on a fresh hub with an environment, a key and a scripted
// agent; ctx.worker() starts C workers, ctx.workdir() makes directories.
// Workers are stopped (SIGTERM, exit 0 required unless already gone) before
// the hub, and everything is removed afterwards.
async function scenario({ hubArgs = [], agent = {} } = {}, fn) {
  const hub = await startHub({ args: hubArgs });
  const dirs = [];
  const workers = [];
  const ctx = {
    hub,
    hubArgs,
    workdir() {
      const d = tempDir('airlock-e2e-cw-');
      dirs.push(d);
      return d;
    },
    worker(opts = {}) {
      const w = startWorker({ hub: ctx.hub, environmentId: ctx.envId, envKey: ctx.envKey, kind: 'c',
        workdir: opts.workdir ?? ctx.workdir(), ...opts });
      workers.push(w);
      return w;
    },
    session(lines, a = ctx.agent) {
      return ctx.client.beta.sessions.create({ agent: a.id, environment_id: ctx.envId, initial_events: [message(lines)] });
    },
    waitHistory(sid, pred, what, timeoutMs = 30000) {
      return until(() => history(ctx.hub, sid), pred, { what, timeoutMs });
    },
    async items() {
      const r = await http(ctx.hub, 'GET', `/v1/environments/${ctx.envId}/work?limit=100`, { key: ctx.envKey });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data;
    },
    async itemOf(sid) {
      const w = (await ctx.items()).find((x) => x.data.id === sid);
      assert.ok(w, `no work item for ${sid}`);
      return w;
    },
    waitItem(sid, pred, what, timeoutMs = 30000) {
      return until(() => ctx.itemOf(sid), pred, { what, timeoutMs });
    },
  };
  let failure;
  try {
    Object.assign(ctx, await setup(hub, { agent }));
    ctx.envId = ctx.environment.id;
    await fn(ctx);
  } catch (e) {
    failure = e;
  }
  for (const w of workers) {
    try { await w.stop(); } catch (e) { failure ??= e; }
  }
  try { await ctx.hub.stop(); } catch (e) { failure ??= e; }
  if (failure) {
    for (const [i, w] of workers.entries()) failure.message += `\n--- worker ${i} log ---\n${w.logs().slice(-20000)}`;
    failure.message += `\n--- hub log ---\n${ctx.hub.logs().slice(-10000)}`;
  }
  ctx.hub.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (failure) throw failure;
}

// A process's children with their command lines.
function childrenOf(pid) {
  const out = [];
  for (const t of existsSync(`/proc/${pid}/task`) ? readdirSync(`/proc/${pid}/task`) : []) {
    let kids = '';
    try { kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8'); } catch { /* gone */ }
    for (const k of kids.split(/\s+/).filter(Boolean)) {
      let cmd = '';
      try { cmd = readFileSync(`/proc/${k}/cmdline`, 'utf8'); } catch { /* gone */ }
      out.push({ pid: Number(k), args: cmd.split('\0') });
    }
  }
  return out;
}
// The worker's runner processes: its children running `airlock-sandbox-runner`
// (or `airlock sandbox-runner`), but not the zygote they are forked from
// (`--zygote`; a forked runner shows `--runner` in its place).
const runnersOf = (pid) => childrenOf(pid)
  .filter(({ args }) => (args.includes('sandbox-runner') || args[0] === 'airlock-sandbox-runner') && !args.includes('--zygote'))
  .map((c) => c.pid);
const b64 = (s) => Buffer.from(s).toString('base64url');
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('concurrency: one worker with --max-sessions 50 serves 50 sessions at once, each on its own', async () => {
  await scenario({}, async (ctx) => {
    const N = 50;
    const tag = Math.random().toString(36).slice(2, 8);
    const sessions = [];
    for (let i = 0; i < N; i++) {
      sessions.push(await ctx.session([
        `tool write {"file_path":"mine-${i}.txt","content":"marker-${i}-${tag}\\n"}`,
        'tool grep {"pattern":"marker-"}',
        `tool bash {"command":"cat mine-${i}.txt; pwd; ls -A"}`,
      ]));
    }
    const w = ctx.worker({ maxIdleMs: 500, args: ['--max-sessions', '50'] });
    const items = await until(() => ctx.items(), (xs) => xs.length === N && xs.every((x) => x.state === 'stopped'),
      { timeoutMs: 120000, intervalMs: 250, what: 'all 50 items stopped' });
    assert.equal(new Set(items.map((x) => x.data.id)).size, N);
    // The sessions really overlapped: more than one held at a time.
    const claimed = w.lines().filter((l) => l.event === 'claimed work').length;
    assert.equal(claimed, N);
    const firstStop = w.lines().findIndex((l) => l.event === 'session idle after its turn ended; stopping');
    const claimedBeforeFirstStop = w.lines().slice(0, firstStop).filter((l) => l.event === 'claimed work').length;
    assert.ok(claimedBeforeFirstStop > 1, `only ${claimedBeforeFirstStop} claimed before the first stop`);

    for (const [i, s] of sessions.entries()) {
      const h = await history(ctx.hub, s.id);
      assert.ok(endedTurn(h), `${s.id}: no end_turn`);
      const calls = h.filter((e) => e.type === 'agent.tool_use');
      assert.deepEqual(calls.map((c) => c.name), ['write', 'grep', 'bash']);
      const res = resultsById(h);
      const wd = w.toolRootFor(s.id);
      const marker = `marker-${i}-${tag}`;
      const [write, grep, bash] = calls.map((c) => res.get(c.id));
      for (const r of [write, grep, bash]) assert.equal(r?.is_error, false, `${s.id}: ${r && text(r)}`);
      assert.equal(text(write), `wrote ${marker.length + 1} bytes to mine-${i}.txt`);
      assert.equal(text(grep).trimEnd(), `${join(wd, `mine-${i}.txt`)}:1:${marker}`);
      assert.equal(text(bash), `${marker}\n${wd}\nmine-${i}.txt`);
      const host = w.workdirFor(s.id);
      assert.deepEqual(readdirSync(host), [`mine-${i}.txt`], `${s.id}: workspace`);
      assert.equal(readFileSync(join(host, `mine-${i}.txt`), 'utf8'), `${marker}\n`);
      for (const c of calls) assert.equal(executions(w, c.id), 1, `${c.name} of ${s.id}`);
    }
    assert.equal(w.lines().filter((l) => l.event === 'executing tool').length, 3 * N);

    // Still polling: a session created now is served by the same worker.
    const late = await ctx.session(['tool bash {"command":"echo late"}']);
    const h = await ctx.waitHistory(late.id, endedTurn, 'the late session to end its turn');
    assert.equal(text([...resultsById(h).values()][0]), 'late');
    await ctx.waitItem(late.id, (x) => x.state === 'stopped', 'the late item stopped');
    assert.equal(w.proc.exitCode, null);
  });
});

test('fault: the hub killed -9 mid-tool and restarted; the worker reconnects, retries its post, runs nothing twice', async () => {
  await scenario({}, async (ctx) => {
    const s = await ctx.session([
      'tool bash {"command":"touch started; sleep 2; echo one >> runs.log; echo one"}',
      'tool bash {"command":"echo two >> runs.log; echo two"}',
    ]);
    const w = ctx.worker({ maxIdleMs: 500 });
    const wd = () => w.workdirFor(s.id);
    await w.waitLog(/"event":"executing tool"/);
    await until(() => existsSync(join(wd(), 'started')), Boolean, { what: 'the slow tool to start' });

    const listen = new URL(ctx.hub.url).host;
    const from = w.logs().length;
    await ctx.hub.kill9();
    // Once the tool ends, posting its result fails; the hub comes back while
    // the worker retries. (The stream's end is handled in order, after the
    // call in flight, so it is logged only once the post went through.)
    await w.waitLog(/tool result send failed; retrying/, { from, timeoutMs: 15000 });
    ctx.hub = await startHub({ dataDir: ctx.hub.dataDir, listen, args: ctx.hubArgs });
    await w.waitLog(/stream disconnected, reconnecting/, { from, timeoutMs: 15000 });

    const h = await ctx.waitHistory(s.id, endedTurn, 'end_turn after the restart', 40000);
    const calls = h.filter((e) => e.type === 'agent.tool_use');
    assert.equal(calls.length, 2);
    const res = resultsById(h);
    assert.deepEqual(calls.map((c) => text(res.get(c.id))), ['one', 'two']);
    for (const c of calls) assert.equal(executions(w, c.id), 1, `${c.id} executed ${executions(w, c.id)} times`);
    assert.equal(readFileSync(join(wd(), 'runs.log'), 'utf8'), 'one\ntwo\n');
    await ctx.waitItem(s.id, (x) => x.state === 'stopped', 'item stopped');
  });
});

test('fault: the event stream cut by a hub restart while a call awaits confirmation; no call runs twice', async () => {
  const agent = {
    tools: [{
      type: 'agent_toolset_20260401',
      default_config: { permission_policy: { type: 'always_allow' } },
      configs: [{ name: 'read', permission_policy: { type: 'always_ask' } }],
    }],
  };
  await scenario({ agent }, async (ctx) => {
    const s = await ctx.session(['tool bash {"command":"echo x >> runs.log"}', 'tool read {"file_path":"runs.log"}']);
    const w = ctx.worker({ maxIdleMs: 500 });
    const h1 = await ctx.waitHistory(s.id, (h) => h.some((e) => e.type === 'session.status_idle' &&
      e.stop_reason?.type === 'requires_action'), 'requires_action');
    const [bash, read] = h1.filter((e) => e.type === 'agent.tool_use');
    await w.waitLog(new RegExp(`awaiting confirmation[^\\n]*${read.id}`));

    // A graceful restart: the hub ends the stream itself.
    const listen = new URL(ctx.hub.url).host;
    const from = w.logs().length;
    await ctx.hub.stop();
    await w.waitLog(/stream disconnected, reconnecting/, { from });
    ctx.hub = await startHub({ dataDir: ctx.hub.dataDir, listen, args: ctx.hubArgs });
    const sent = await http(ctx.hub, 'POST', `/v1/sessions/${s.id}/events`,
      { body: { events: [{ type: 'user.tool_confirmation', tool_use_id: read.id, result: 'allow' }] } });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));

    const h = await ctx.waitHistory(s.id, endedTurn, 'end_turn after the restart', 40000);
    const res = resultsById(h);
    assert.equal(text(res.get(read.id)), 'x\n');
    assert.ok(res.has(bash.id));
    for (const c of [bash, read]) assert.equal(executions(w, c.id), 1, `${c.name} executed ${executions(w, c.id)} times`);
    assert.equal(readFileSync(join(w.workdirFor(s.id), 'runs.log'), 'utf8'), 'x\n');
    await ctx.waitItem(s.id, (x) => x.state === 'stopped', 'item stopped');
  });
});

test('fault: a 412 heartbeat (lease lost while frozen) — released without a stop, and the worker keeps serving', async () => {
  await scenario({ hubArgs: ['--lease-ttl', '10s'] }, async (ctx) => {
    const s = await ctx.session(['tool bash {"command":"echo one"}']);
    const w = ctx.worker({ maxIdleMs: 120000 });
    await ctx.waitHistory(s.id, endedTurn, 'end_turn');
    const held = await ctx.waitItem(s.id, (x) => x.state === 'active', 'item active');

    w.signal('SIGSTOP');
    const requeued = await ctx.waitItem(s.id, (x) => x.state === 'queued', 'lease expiry');
    assert.equal(requeued.stopped_at, null);
    const from = w.logs().length;
    w.signal('SIGCONT');
    await w.waitLog(/lease lost; released without stopping it/, { from });
    const lost = w.lines().find((l) => l.event === 'lease lost: heartbeat precondition failed');
    assert.ok(lost, 'no 412 log line');
    assert.equal(lost.work_id, held.id);
    assert.ok(hubEvents(ctx.hub).some((e) => e.event === 'work.heartbeat_precondition_failed' && e.work === held.id));
    assert.ok(!hubEvents(ctx.hub).some((e) => e.event === 'work.stop'), 'the worker stopped an item it no longer held');

    // Back to polling: it claims the item again and serves a new turn.
    await ctx.waitItem(s.id, (x) => x.state === 'active' && x.acknowledged_at !== held.acknowledged_at, 'claimed again');
    await ctx.client.beta.sessions.events.send(s.id, { events: [message(['tool bash {"command":"echo two"}'])] });
    const h = await ctx.waitHistory(s.id, (x) => x.filter((e) => e.type === 'user.tool_result').length === 2 &&
      x.filter((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn').length === 2, 'second turn');
    const calls = h.filter((e) => e.type === 'agent.tool_use');
    const res = resultsById(h);
    assert.deepEqual(calls.map((c) => text(res.get(c.id))), ['one', 'two']);
    for (const c of calls) assert.equal(executions(w, c.id), 1);

    const r = await w.stop();
    assert.equal(r.code, 0);
    await ctx.waitItem(s.id, (x) => x.state === 'stopped', 'stopped on SIGTERM', 5000);
  });
});

test('fault: SIGTERM drains a running command, posts it, force-stops and exits 0; --drain 1s bounds a long one', async () => {
  await scenario({}, async (ctx) => {
    // Within --drain: the command finishes and its result is posted.
    const s1 = await ctx.session(['tool bash {"command":"touch started; sleep 3; echo slept"}', 'tool bash {"command":"echo next"}']);
    const w1 = ctx.worker({ maxIdleMs: 60000, args: ['--drain', '10s'] });
    await w1.waitLog(/"event":"executing tool"/);
    await until(() => existsSync(join(w1.workdirFor(s1.id), 'started')), Boolean, { what: 'sleep 3 to start' });
    const runner1 = runnersOf(w1.pid);
    assert.equal(runner1.length, 1, 'one runner');
    const t0 = Date.now();
    w1.signal('SIGTERM');
    const r1 = await w1.exited;
    const took1 = Date.now() - t0;
    assert.deepEqual(r1, { code: 0, signal: null });
    assert.ok(took1 >= 1500 && took1 < 10000, `exited after ${took1} ms`);
    assert.match(w1.logs(), /shutting down; draining in-flight tools/);
    const h1 = await history(ctx.hub, s1.id);
    const [slow, next] = h1.filter((e) => e.type === 'agent.tool_use');
    const res1 = resultsById(h1);
    assert.equal(res1.get(slow.id)?.is_error, false);
    assert.equal(text(res1.get(slow.id)), 'slept');
    // The drain stops after the call in flight.
    if (next) assert.equal(executions(w1, next.id), 0, 'a new call was started while draining');
    assert.equal((await ctx.itemOf(s1.id)).state, 'stopped');
    for (const p of runner1) assert.ok(!alive(p), `runner ${p} outlived the worker`);

    // Beyond --drain 1s: exits within the bound, the item stopped.
    const s2 = await ctx.session(['tool bash {"command":"touch started; sleep 30; echo never"}']);
    const w2 = ctx.worker({ maxIdleMs: 60000, args: ['--drain', '1s'] });
    await w2.waitLog(/"event":"executing tool"/);
    await until(() => existsSync(join(w2.workdirFor(s2.id), 'started')), Boolean, { what: 'sleep 30 to start' });
    const runner2 = runnersOf(w2.pid);
    const t1 = Date.now();
    w2.signal('SIGTERM');
    const r2 = await w2.exited;
    const took2 = Date.now() - t1;
    assert.deepEqual(r2, { code: 0, signal: null });
    assert.ok(took2 >= 900 && took2 < 5000, `exited after ${took2} ms with --drain 1s`);
    assert.match(w2.logs(), /drain timeout exceeded/);
    assert.equal((await ctx.itemOf(s2.id)).state, 'stopped');
    const h2 = await history(ctx.hub, s2.id);
    assert.ok(!h2.some((e) => e.type === 'user.tool_result' && text(e).includes('never')));
    for (const p of runner2) assert.ok(!alive(p), `runner ${p} outlived the worker`);
  });
});

test('fault: the runner killed -9 mid-call — that call gets an Error: result, the next call gets a fresh runner', async () => {
  await scenario({}, async (ctx) => {
    const s = await ctx.session(['tool bash {"command":"touch started; sleep 5; echo never"}', 'tool bash {"command":"echo after"}']);
    const w = ctx.worker({ maxIdleMs: 500 });
    await w.waitLog(/"event":"executing tool"/);
    await until(() => existsSync(join(w.workdirFor(s.id), 'started')), Boolean, { what: 'sleep 5 to start' });
    const [runner] = runnersOf(w.pid);
    assert.ok(runner, 'no sandbox-runner child of the worker');
    process.kill(runner, 'SIGKILL');

    const h = await ctx.waitHistory(s.id, endedTurn, 'end_turn');
    const [first, second] = h.filter((e) => e.type === 'agent.tool_use');
    const res = resultsById(h);
    assert.equal(res.get(first.id).is_error, true);
    assert.match(text(res.get(first.id)), /^Error:/);
    assert.equal(res.get(second.id).is_error, false, text(res.get(second.id)));
    assert.equal(text(res.get(second.id)), 'after');
    assert.match(w.logs(), /tool runner exited unexpectedly/);
    assert.equal(executions(w, first.id), 1);
    assert.equal(w.proc.exitCode, null, 'the worker died with its runner');
    await ctx.waitItem(s.id, (x) => x.state === 'stopped', 'item stopped');
    assert.ok(!alive(runner));
  });
});

// The worker's children whose command line says `--zygote`.
const zygotesOf = (pid) => childrenOf(pid).filter(({ args }) => args.includes('--zygote')).map((c) => c.pid);
const fdsOf = (pid) => readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
// The zygote waits for a request in recvmsg(2) (x86-64: 47) only once its
// start-up, or the pool refill due after a request, is over.
const idleZygote = (pid) => until(() => readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0], (n) => n === '47',
  { what: `zygote ${pid} waiting in recvmsg` });
// What the zygote may hold: stdio, its socket (3), and fresh network
// namespaces for the next runners (as root), nothing else.
function zygoteFdsOk(pid) {
  const fds = fdsOf(pid);
  const extra = fds.filter((f) => f > 3);
  return [0, 1, 2, 3].every((f) => fds.includes(f)) &&
    extra.every((f) => { try { return readlinkSync(`/proc/${pid}/fd/${f}`).startsWith('net:['); } catch { return false; } });
}

test('zygote: runners are forked from one zygote as the worker\'s own children; a killed or stuck zygote is replaced; --runner-zygote=false execs; the multi-call binary works as one', async () => {
  await scenario({}, async (ctx) => {
    const w = ctx.worker({ maxIdleMs: 500 });
    await until(() => zygotesOf(w.pid), (z) => z.length === 1, { what: 'the worker\'s zygote' });
    const [z1] = zygotesOf(w.pid);
    const [, level] = await w.waitLog(/"event":"isolation","level":"([A-D])"/);
    await idleZygote(z1);
    assert.deepEqual(fdsOf(z1), [0, 1, 2, 3], 'no network namespace pool before a runner wanted one');

    const s1 = await ctx.session(['tool bash {"command":"touch started; sleep 1; echo one"}']);
    await until(() => existsSync(join(w.workdirFor(s1.id), 'started')), Boolean, { what: 'the first call to start' });
    const [runner] = runnersOf(w.pid);
    assert.ok(runner, 'the runner is the worker\'s child, not the zygote\'s');
    const cmd = readFileSync(`/proc/${runner}/cmdline`, 'utf8').split('\0');
    assert.ok(cmd.includes('--runner') && !cmd.includes('--zygote'), cmd.join(' '));
    assert.ok(zygoteFdsOk(z1), `the zygote kept a session descriptor: ${fdsOf(z1).map((f) => readlinkSync(`/proc/${z1}/fd/${f}`))}`);
    let h = await ctx.waitHistory(s1.id, endedTurn, 'end_turn');
    assert.equal(text([...resultsById(h).values()][0]), 'one');
    if (level !== 'C') {
      await until(() => fdsOf(z1).length, (n) => n === 6, { what: 'a pool of two network namespaces (the worker runs as root)' });
      assert.ok(zygoteFdsOk(z1));
    }

    process.kill(z1, 'SIGKILL');
    await w.waitLog(/"event":"runner zygote exited"/);
    const s2 = await ctx.session(['tool bash {"command":"echo two"}']);
    h = await ctx.waitHistory(s2.id, endedTurn, 'end_turn');
    const [r2] = resultsById(h).values();
    assert.equal(r2.is_error, false, text(r2));
    assert.equal(text(r2), 'two');
    const z2 = zygotesOf(w.pid);
    assert.equal(z2.length, 1, 'a new zygote');
    assert.notEqual(z2[0], z1);

    // A zygote that takes the request and never answers (stopped): the worker
    // gives up on it after 2 s, execs that runner on a fresh socketpair, and
    // the session is served.
    await idleZygote(z2[0]);
    process.kill(z2[0], 'SIGSTOP');
    const s3 = await ctx.session(['tool bash {"command":"echo three"}']);
    h = await ctx.waitHistory(s3.id, endedTurn, 'end_turn');
    const [r3] = resultsById(h).values();
    assert.equal(r3.is_error, false, text(r3));
    assert.equal(text(r3), 'three');
    assert.match(w.logs(), /"event":"runner zygote failed; exec'ing this runner".*"err":"ETIMEDOUT"/);
    assert.ok(!alive(z2[0]) || readFileSync(`/proc/${z2[0]}/stat`, 'utf8').includes(') Z '), 'the stuck zygote was killed');
    assert.equal(w.proc.exitCode, null);
    await w.stop();
    for (const z of zygotesOf(w.pid)) assert.ok(!alive(z), 'a zygote outlived the worker');

    const w2 = ctx.worker({ maxIdleMs: 500, args: ['--runner-zygote=false'] });
    const s4 = await ctx.session(['tool bash {"command":"touch started; sleep 1; echo four"}']);
    await until(() => existsSync(join(w2.workdirFor(s4.id), 'started')), Boolean, { what: 'the exec\'d runner\'s call' });
    assert.deepEqual(zygotesOf(w2.pid), []);
    const [r4pid] = runnersOf(w2.pid);
    assert.ok(readFileSync(`/proc/${r4pid}/cmdline`, 'utf8').split('\0').includes('--workdir'), 'an exec\'d runner');
    h = await ctx.waitHistory(s4.id, endedTurn, 'end_turn');
    assert.equal(text([...resultsById(h).values()][0]), 'four');
    await w2.stop();

    // The multi-call binary as the zygote: `airlock sandbox-runner --zygote`.
    const w3 = ctx.worker({ maxIdleMs: 500, args: ['--runner-exe', BIN] });
    const s5 = await ctx.session(['tool bash {"command":"touch started; sleep 1; echo five"}']);
    await until(() => existsSync(join(w3.workdirFor(s5.id), 'started')), Boolean, { what: 'the call under airlock sandbox-runner' });
    const [z3] = zygotesOf(w3.pid);
    assert.ok(z3, 'no zygote');
    assert.deepEqual(readFileSync(`/proc/${z3}/cmdline`, 'utf8').split('\0').slice(1, 3), ['sandbox-runner', '--zygote']);
    const [r5pid] = runnersOf(w3.pid);
    assert.deepEqual(readFileSync(`/proc/${r5pid}/cmdline`, 'utf8').split('\0').slice(1, 3), ['sandbox-runner', '--runner']);
    h = await ctx.waitHistory(s5.id, endedTurn, 'end_turn');
    assert.equal(text([...resultsById(h).values()][0]), 'five');
    await w3.stop();

    // Sessions on the host's network: the zygote never makes a namespace.
    const w4 = ctx.worker({ maxIdleMs: 500, args: ['--network', 'host'] });
    const s6 = await ctx.session(['tool bash {"command":"echo six"}']);
    h = await ctx.waitHistory(s6.id, endedTurn, 'end_turn');
    assert.equal(text([...resultsById(h).values()][0]), 'six');
    const [z4] = zygotesOf(w4.pid);
    await idleZygote(z4);
    assert.deepEqual(fdsOf(z4), [0, 1, 2, 3], 'a --network host worker\'s zygote made network namespaces');
  });
});

test('mode: --on-work hands the item to a command that runs `worker run` keyless, with the secret in a file', async () => {
  await scenario({}, async (ctx) => {
    const dir = ctx.workdir();
    const node = process.execPath;
    const extract = 'const f=require("fs");const j=JSON.parse(f.readFileSync(process.argv[1],"utf8"));' +
      'f.writeFileSync(process.argv[2],j.secret??"",{mode:0o600})';
    const script = join(dir, 'on-work.sh');
    writeFileSync(script, [
      '#!/bin/sh',
      'set -e',
      `d='${dir}'`,
      'w="$ANTHROPIC_WORK_ID"',
      'cat > "$d/stdin-$w.json"',
      'env > "$d/env-$w.txt"',
      `'${node}' -e '${extract}' "$d/stdin-$w.json" "$d/secret-$w"`,
      `exec '${BIN}' worker run --work-secret-file "$d/secret-$w" --root "$d/root" --max-idle 500ms 2> "$d/run-$w.log"`,
      '',
    ].join('\n'));
    chmodSync(script, 0o755);

    for (const withKey of [false, true]) {
      const s = await ctx.session([`tool bash {"command":"echo served-${withKey}; env | grep -c ^ANTHROPIC_ || true"}`]);
      const w = ctx.worker({ workdir: dir, args: ['--on-work', script, ...(withKey ? ['--on-work-key'] : [])] });
      const h = await ctx.waitHistory(s.id, endedTurn, 'end_turn');
      const item = await ctx.waitItem(s.id, (x) => x.state === 'stopped', 'item stopped');
      await w.waitLog(/"event":"on-work command exited"/);
      const exitedLine = w.lines().find((l) => l.event === 'on-work command exited');
      assert.equal(exitedLine.status, 0, JSON.stringify(exitedLine));
      await w.stop();

      const [res] = resultsById(h).values();
      assert.equal(text(res), `served-${withKey}\n0`);
      const stdin = JSON.parse(readFileSync(join(dir, `stdin-${item.id}.json`), 'utf8'));
      assert.equal(stdin.id, item.id);
      assert.deepEqual(stdin.data, { type: 'session', id: s.id });
      assert.equal(typeof stdin.secret, 'string');
      assert.ok(stdin.secret.length > 0);
      const env = Object.fromEntries(readFileSync(join(dir, `env-${item.id}.txt`), 'utf8').split('\n')
        .filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      assert.equal(env.ANTHROPIC_SESSION_ID, s.id);
      assert.equal(env.ANTHROPIC_WORK_ID, item.id);
      assert.equal(env.ANTHROPIC_ENVIRONMENT_ID, ctx.envId);
      assert.equal(env.ANTHROPIC_X, undefined, 'the poller passed ANTHROPIC_X through');
      if (withKey) assert.equal(env.ANTHROPIC_ENVIRONMENT_KEY, ctx.envKey);
      else assert.ok(!('ANTHROPIC_ENVIRONMENT_KEY' in env), 'the key reached the command without --on-work-key');
      const runLog = readFileSync(join(dir, `run-${item.id}.log`), 'utf8');
      assert.match(runLog, /serving one work item/);
      assert.ok(!runLog.includes(stdin.secret), 'worker run logged the secret');
      assert.ok(!runLog.includes(ctx.envKey), 'worker run logged the key');
      assert.ok(!w.logs().includes(stdin.secret), 'the poller logged the secret');
      assert.ok(existsSync(join(dir, 'root', 'sessions', s.id, 'workspace')));
    }
  });
});

test('mode: `worker run` with no usable secret and no key fails clearly with exit 2', async () => {
  const dir = tempDir('airlock-e2e-run-');
  try {
    const base = { PATH: process.env.PATH, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', ANTHROPIC_WORK_ID: 'work_x1',
      ANTHROPIC_SESSION_ID: 'sesn_x1', ANTHROPIC_ENVIRONMENT_ID: 'env_x1' };
    const secretFile = (name, body) => { const p = join(dir, name); writeFileSync(p, body); return p; };
    const cases = [
      { name: 'no secret at all', args: [], want: /environment key is required/ },
      { name: 'missing secret file', args: ['--work-secret-file', join(dir, 'nope')], want: /cannot read the work secret file/ },
      { name: 'bad base64 secret', args: ['--work-secret-file', secretFile('bad', '%%%SECRET-not-b64%%%')], secret: 'SECRET-not-b64' },
      { name: 'secret without a token', args: ['--work-secret-file', secretFile('notok', b64(JSON.stringify({ x: 'SECRET-no-token' })))], secret: b64(JSON.stringify({ x: 'SECRET-no-token' })) },
      { name: 'empty secret file', args: ['--work-secret-file', secretFile('empty', '')] },
    ];
    // Every case is run; the failures are reported together.
    const problems = [];
    for (const c of cases) {
      const r = spawnSync(BIN, ['worker', 'run', '--root', join(dir, 'root'), ...c.args],
        { env: base, encoding: 'utf8', timeout: 20000 });
      const out = `${r.stdout}${r.stderr}`;
      if (r.status !== 2) problems.push(`${c.name}: exit ${r.status ?? r.signal}, want 2\n${out}`);
      if (c.want && !c.want.test(out)) problems.push(`${c.name}: no ${c.want}\n${out}`);
      if (!c.want && !/no sessions token|environment key/.test(out)) problems.push(`${c.name}: no clear message\n${out}`);
      if (c.secret && out.includes(c.secret)) problems.push(`${c.name}: the secret was printed`);
      if (existsSync(join(dir, 'root', 'sessions'))) problems.push(`${c.name}: a session directory was made`);
    }
    assert.deepEqual(problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
test('mode: `worker --help` documents the modes and exits 0', () => {
  const r = spawnSync(BIN, ['worker', '--help'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout + r.stderr;
  for (const flag of ['--max-sessions', '--on-work', '--on-work-key', '--work-secret-file', '--drain', '--root',
    '--runner-exe', '--ready-fd']) assert.ok(out.includes(flag), `--help lacks ${flag}`);
  assert.match(out, /airlock worker run/);
  assert.match(out.split('\n')[0], /^usage: airlock worker/, `first line: ${out.split('\n')[0]}`);
});

test('mode: --ready-fd N gets the base URL once the first poll answered, then closes', async () => {
  const fake = await startFakeHub();
  const root = tempDir('airlock-e2e-cw-ready-');
  const proc = spawn(BIN, ['worker', '--root', root, '--ready-fd', '3', '--base-url', fake.url], {
    env: { PATH: process.env.PATH, ANTHROPIC_ENVIRONMENT_ID: fake.envId, ANTHROPIC_ENVIRONMENT_KEY: fake.envKey },
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const ready = await new Promise((resolve, reject) => {
      let buf = '';
      proc.stdio[3].on('data', (d) => { buf += d; });
      proc.stdio[3].on('end', () => resolve(buf));
      proc.on('error', reject);
    });
    assert.equal(ready.trim(), fake.url);
    // The fake hub holds an empty poll for its block_ms (999) before answering null.
    const polls = fake.requests.filter((r) => r.path.endsWith('/work/poll'));
    assert.ok(polls.length >= 1, 'ready before any poll');
    assert.ok(Date.now() - polls[0].t >= 900, `ready ${Date.now() - polls[0].t} ms after the poll, before its answer`);
    proc.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null }, log);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    await fake.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('skills: the C worker extracts an uploaded skill (wrapper stripped, symlink absent) and removes it after', async () => {
  await scenario({}, async (ctx) => {
    const md = '---\nname: demo-skill\ndescription: A C-worker skill.\n---\n\n# Demo\n';
    const up = await http(ctx.hub, 'POST', '/v1/skills', { headers: { 'content-type': 'application/x-tar' }, body: tar([
      { name: 'demo/', type: '5' },
      { name: 'demo/SKILL.md', body: md },
      { name: 'demo/bin/', type: '5' },
      { name: 'demo/bin/run.sh', body: '#!/bin/sh\necho hi\n' },
      { name: 'demo/link', type: '2', linkname: 'SKILL.md' },
    ]) });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const agent = await ctx.client.beta.agents.create({
      name: 'e2e-cw-skilled', model: 'airlock-scripted', tools: [{ type: 'agent_toolset_20260401' }],
      skills: [{ type: 'custom', skill_id: up.body.id, version: 'latest' }],
    });
    const s = await ctx.session(['tool bash {"command":"ls -R skills; cat skills/demo-skill/SKILL.md"}'], agent);
    const w = ctx.worker({ maxIdleMs: 500 });
    const h = await ctx.waitHistory(s.id, endedTurn, 'end_turn');
    const [res] = resultsById(h).values();
    assert.equal(res.is_error, false, text(res));
    assert.equal(text(res), `skills:\ndemo-skill\n\nskills/demo-skill:\nSKILL.md\nbin\n\nskills/demo-skill/bin:\nrun.sh\n${md}`.trimEnd());
    assert.ok(w.lines().some((l) => l.event === 'downloaded skill' && l.skill_id === up.body.id));
    await ctx.waitItem(s.id, (x) => x.state === 'stopped', 'item stopped');
    const skills = join(w.workdirFor(s.id), 'skills');
    assert.ok(!existsSync(join(skills, 'demo-skill')), 'the skill outlived its item');
    assert.deepEqual(readdirSync(skills), []);
  });
});

test('poll: a rejected environment key is permanent — the worker says so and exits 1 without retrying forever', async () => {
  const hub = await startHub();
  const root = tempDir('airlock-e2e-wd-');
  let w;
  try {
    const { environment } = await setup(hub);
    w = startWorker({ hub, environmentId: environment.id, envKey: 'sk-ant-oat01-not-a-key', workdir: root, kind: 'c' });
    const r = await w.exited;
    assert.equal(r.code, 1, w.logs());
    assert.match(w.logs(), /"event":"poll failed permanently, stopping poller"[^\n]*HTTP 401 authentication_error/);
    assert.ok(!w.logs().includes('not-a-key'), 'the rejected key reached the log');
  } finally {
    await w?.kill9();
    await hub.stop();
    hub.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
});

test('admin: --admin-listen serves /healthz and /metrics with the isolation level and the counters', async () => {
  const hub = await startHub();
  const root = tempDir('airlock-e2e-wd-');
  let w;
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    w = startWorker({ hub, environmentId: environment.id, envKey, workdir: root, kind: 'c',
      args: ['--admin-listen', '127.0.0.1:0'] });
    const [, url] = await w.waitLog(/"event":"admin address","url":"([^"]+)"/);
    const [, level] = await w.waitLog(/"event":"isolation","level":"([A-D])"/);
    assert.equal((await (await fetch(`${url}/healthz`)).text()), 'ok\n');
    const s = await c.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    await c.beta.sessions.events.send(s.id, { events: [{ type: 'user.message',
      content: [{ type: 'text', text: 'tool bash {"command":"true"}' }] }] });
    await until(() => history(hub, s.id), (h) => h.some((e) => e.type === 'user.tool_result'), { what: 'a result' });
    const metrics = await until(async () => (await fetch(`${url}/metrics`)).text(),
      (t) => /airlock_worker_results_posted_total 1\b/.test(t), { what: 'the posted result counted' });
    assert.match(metrics, new RegExp(`airlock_worker_isolation_level\\{level="${level}"\\} 1`));
    assert.match(metrics, /airlock_worker_items_claimed_total 1\b/);
    assert.match(metrics, /airlock_worker_tools_run_total 1\b/);
    assert.match(metrics, /airlock_worker_runner_zygote_up 1\b/);
    assert.match(metrics, /airlock_worker_runners_started_total\{via="zygote"\} 1\b/);
    assert.match(metrics, /airlock_worker_runners_started_total\{via="exec"\} 0\b/);
    assert.equal((await fetch(`${url}/v1/environments`)).status, 404);
  } finally {
    await w?.stop();
    await hub.stop();
    hub.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
});
