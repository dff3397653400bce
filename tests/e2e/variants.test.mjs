// The interop variants of spec §12 step 5, each against its own hub and its
// own worker process: every scenario with a worker runs once per kind in
// WORKER_KINDS (the unmodified SDK worker and airlock's C worker). The two
// kinds log the same message texts, under "msg" (SDK) or "event" (C).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startHub, setup, client, http, history, until, tempDir, openStream } from './lib/hub.mjs';
import { startWorker, WORKER_KINDS } from './lib/worker.mjs';
import { startRecorder } from './lib/reqlog.mjs';
import { tar } from './lib/archive.mjs';

const text = (ev) => (ev.content ?? []).map((b) => b.text ?? '').join('');
const message = (t) => ({ type: 'user.message', content: [{ type: 'text', text: t }] });
const hubEvents = (hub) => hub.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const reEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// The message text of a worker's log line, whichever kind wrote it.
const said = (l) => l.event ?? l.msg;
// A regex for a log line of worker w saying text, followed on the same
// line by each of the patterns in after.
const logged = (w, text, ...after) =>
  new RegExp(`"${w.kind === 'c' ? 'event' : 'msg'}":"${reEscape(text)}"${after.map((a) => `[^\\n]*${a}`).join('')}`);
// A field of a log line, as a regex fragment.
const field = (k, v) => `"${k}":"${reEscape(v)}"`;

// Runs fn(ctx) against a fresh hub (ctx.hub; a test that restarts the hub
// replaces it), an environment with a key, and a scripted agent. ctx.worker()
// starts workers of ctx.kind and ctx.workdir() makes directories; all are
// stopped or removed afterwards, workers before the hub, and both must exit
// cleanly. ctx.cleanup(fn) adds a step run after the workers are stopped.
async function scenario({ hubArgs = [], agent = {}, kind = 'sdk' } = {}, fn) {
  const hub = await startHub({ args: hubArgs });
  const dirs = [];
  const workers = [];
  const cleanups = [];
  const ctx = {
    hub,
    hubArgs,
    kind,
    cleanup(f) { cleanups.push(f); },
    workdir() {
      const d = tempDir('airlock-e2e-wd-');
      dirs.push(d);
      return d;
    },
    worker(opts = {}) {
      const w = startWorker({ hub: ctx.hub, environmentId: ctx.environment.id, envKey: ctx.envKey,
        workdir: opts.workdir ?? ctx.workdir(), kind, ...opts });
      workers.push(w);
      return w;
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
  for (const f of cleanups) {
    try { await f(); } catch (e) { failure ??= e; }
  }
  try { await ctx.hub.stop(); } catch (e) { failure ??= e; }
  if (failure) {
    for (const [i, w] of workers.entries()) failure.message += `\n--- worker ${i} log ---\n${w.logs()}`;
    failure.message += `\n--- hub log ---\n${ctx.hub.logs()}`;
  }
  ctx.hub.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (failure) throw failure;
}

async function newSession(ctx, lines) {
  return ctx.client.beta.sessions.create({
    agent: ctx.agent.id, environment_id: ctx.envId, initial_events: [message(lines.join('\n'))],
  });
}

const waitHistory = (ctx, sid, pred, what, timeoutMs = 30000) =>
  until(() => history(ctx.hub, sid), pred, { what, timeoutMs });
const endedTurn = (h) => h.some((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn');

// The work item of session sid, as the API key sees it.
async function itemOf(ctx, sid) {
  const list = await http(ctx.hub, 'GET', `/v1/environments/${ctx.envId}/work?limit=100`, { key: ctx.envKey });
  assert.equal(list.status, 200);
  const w = list.body.data.find((x) => x.data.id === sid);
  assert.ok(w, `no work item for ${sid}`);
  return w;
}
async function getItem(ctx, workId) {
  const r = await http(ctx.hub, 'GET', `/v1/environments/${ctx.envId}/work/${workId}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}
const waitItem = (ctx, workId, pred, what, timeoutMs = 30000) =>
  until(() => getItem(ctx, workId), pred, { what, timeoutMs });

// Results keyed by tool_use_id, failing on a second result for one call.
function resultsById(h) {
  const m = new Map();
  for (const e of h.filter((x) => x.type === 'user.tool_result')) {
    assert.ok(!m.has(e.tool_use_id), `two user.tool_result events for ${e.tool_use_id}`);
    m.set(e.tool_use_id, e);
  }
  return m;
}

const SKILL_MD = '---\nname: demo-skill\ndescription: An e2e test skill.\n---\n\n# Demo\n\nSays hello.\n';

test('(a) an empty poll is 200 with a JSON null body, with and without block_ms', async () => {
  await scenario({}, async (ctx) => {
    const path = `/v1/environments/${ctx.envId}/work/poll`;
    for (const q of ['', '?block_ms=300']) {
      const t0 = Date.now();
      const res = await fetch(ctx.hub.url + path + q, {
        headers: { authorization: `Bearer ${ctx.envKey}`, 'anthropic-worker-id': 'e2e-raw-poller' },
      });
      const body = await res.text();
      const elapsed = Date.now() - t0;
      assert.equal(res.status, 200, q);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/, q);
      assert.equal(body, 'null', q);
      assert.notEqual(res.headers.get('content-length'), '0', q);
      if (q) assert.ok(elapsed >= 250, `block_ms=300 answered after ${elapsed} ms`);
    }
    // The SDK's own poll call sees "no work" as null, blocking or not.
    const wc = client(ctx.hub, ctx.envKey);
    assert.equal(await wc.beta.environments.work.poll(ctx.envId), null);
    assert.equal(await wc.beta.environments.work.poll(ctx.envId, { block_ms: 100 }), null);
    const stats = await ctx.client.beta.environments.work.stats(ctx.envId);
    assert.equal(stats.depth, 0);
    assert.equal(stats.oldest_queued_at, null);
    assert.ok(stats.workers_polling >= 1);
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (b) a heartbeat answered 412 makes the worker walk away without stopping the item`, async () => {
  await scenario({ kind, hubArgs: ['--lease-ttl', '10s'] }, async (ctx) => {
    const s = await newSession(ctx, ['tool bash {"command":"echo one"}']);
    const w = ctx.worker({ maxIdleMs: 120000 });
    await waitHistory(ctx, s.id, endedTurn, 'end_turn');
    const { id: workId } = await itemOf(ctx, s.id);
    const held = await waitItem(ctx, workId, (x) => x.state === 'active', 'item active');

    // Freeze the worker past the lease TTL: the hub re-queues the item.
    w.signal('SIGSTOP');
    const requeued = await waitItem(ctx, workId, (x) => x.state === 'queued', 'lease expiry', 30000);
    assert.equal(requeued.stopped_at, null);
    assert.equal(requeued.stop_requested_at, null);
    assert.equal((await ctx.client.beta.environments.work.stats(ctx.envId)).depth, 1);
    const logFrom = w.logs().length;
    w.signal('SIGCONT');

    // Its next heartbeat gets 412; it releases the item without a stop call.
    await w.waitLog(logged(w, 'lease lost; released without stopping it'), { from: logFrom });
    const lost = w.lines().find((l) => said(l) === 'lease lost: heartbeat precondition failed');
    assert.ok(lost, 'no 412 log line');
    assert.equal(lost.work_id, workId);
    assert.equal(lost.server_state, 'queued');
    const ev = hubEvents(ctx.hub);
    assert.ok(ev.some((e) => e.event === 'work.lease_expired' && e.work === workId && e.to === 'queued'));
    assert.ok(ev.some((e) => e.event === 'work.heartbeat_precondition_failed' && e.work === workId));
    assert.ok(!ev.some((e) => e.event === 'work.stop'), 'the worker stopped an item it no longer held');
    const after = await getItem(ctx, workId);
    assert.notEqual(after.state, 'stopped');
    assert.equal(after.stopped_at, null);

    // The item is claimable again: the same worker, back to polling, takes it.
    await waitItem(ctx, workId, (x) => x.state === 'active' && x.acknowledged_at !== held.acknowledged_at,
      'the item claimed again');
    const h = await history(ctx.hub, s.id);
    assert.equal(h.filter((e) => e.type === 'user.tool_result').length, 1, 'the tool ran again');
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (c) a graceful stop reaches the worker as "stopping" and it force-stops`, async () => {
  await scenario({ kind, hubArgs: ['--lease-ttl', '10s'] }, async (ctx) => {
    const s = await newSession(ctx, ['tool bash {"command":"echo one"}']);
    const w = ctx.worker({ maxIdleMs: 120000 });
    await waitHistory(ctx, s.id, endedTurn, 'end_turn');
    const { id: workId } = await itemOf(ctx, s.id);
    await waitItem(ctx, workId, (x) => x.state === 'active', 'item active');

    const r = await http(ctx.hub, 'POST', `/v1/environments/${ctx.envId}/work/${workId}/stop`, { body: { force: false } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.state, 'stopping');
    assert.equal(typeof r.body.stop_requested_at, 'string');
    assert.equal(r.body.stopped_at, null);

    const stopped = await waitItem(ctx, workId, (x) => x.state === 'stopped', 'item stopped', 20000);
    assert.equal(stopped.stop_requested_at, r.body.stop_requested_at);
    assert.equal(typeof stopped.stopped_at, 'string');
    await w.waitLog(logged(w, 'heartbeat signals shutdown', field('state', 'stopping')));
    const ev = hubEvents(ctx.hub).filter((e) => e.event === 'work.stop' && e.work === workId);
    assert.deepEqual(ev.map((e) => [e.force, e.state]), [[false, 'stopping'], [true, 'stopped']]);
    assert.ok(!hubEvents(ctx.hub).some((e) => e.event === 'work.lease_expired'), 'stopped by expiry, not by the worker');
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (d) a hub restart drops the stream; the worker reconnects and runs no tool twice`, async () => {
  const agent = {
    tools: [{
      type: 'agent_toolset_20260401',
      default_config: { permission_policy: { type: 'always_allow' } },
      configs: [{ name: 'read', permission_policy: { type: 'always_ask' } }],
    }],
  };
  await scenario({ kind, agent }, async (ctx) => {
    const workdir = ctx.workdir();
    const s = await newSession(ctx, ['tool bash {"command":"echo x >> runs.log"}', 'tool read {"file_path":"runs.log"}']);
    // The C worker says when a stream is established at debug level.
    const w = ctx.worker({ workdir, logLevel: kind === 'c' ? 'debug' : 'info' });
    // The bash call ran; the read call waits on the user's confirmation.
    const h1 = await waitHistory(ctx, s.id, (h) => h.some((e) => e.type === 'session.status_idle' &&
      e.stop_reason?.type === 'requires_action'), 'requires_action');
    const [bash, read] = h1.filter((e) => e.type === 'agent.tool_use');
    assert.equal(bash.name, 'bash');
    assert.equal(read.name, 'read');
    assert.equal(read.evaluated_permission, 'ask');
    await w.waitLog(logged(w, 'tool call awaiting confirmation; holding', field('tool_use_id', read.id)));
    assert.ok(resultsById(h1).has(bash.id));

    // kill -9 the hub and start it again on the same data dir and address.
    const listen = new URL(ctx.hub.url).host;
    const logFrom = w.logs().length;
    await ctx.hub.kill9();
    await w.waitLog(logged(w, 'stream disconnected, reconnecting'), { from: logFrom });
    ctx.hub = await startHub({ dataDir: ctx.hub.dataDir, listen, args: ctx.hubArgs });
    assert.equal(ctx.hub.url, `http://${listen}`);
    const reopened = kind === 'c' ? logged(w, 'event stream open') : /events\/stream succeeded with status 200/;
    await w.waitLog(reopened, { from: w.logs().indexOf('stream disconnected', logFrom) });

    // The confirmation exists only on the new hub: acting on it proves the reconnect.
    const sent = await http(ctx.hub, 'POST', `/v1/sessions/${s.id}/events`,
      { body: { events: [{ type: 'user.tool_confirmation', tool_use_id: read.id, result: 'allow' }] } });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const h = await waitHistory(ctx, s.id, endedTurn, 'end_turn after the restart');
    const results = resultsById(h);
    const calls = h.filter((e) => e.type === 'agent.tool_use');
    assert.equal(calls.length, 2);
    for (const c of calls) assert.ok(results.has(c.id), `no result for ${c.name}`);
    assert.equal(text(results.get(read.id)), 'x\n');
    assert.equal(readFileSync(join(w.workdirFor(s.id), 'runs.log'), 'utf8'), 'x\n');
    for (const c of calls) {
      const runs = w.lines().filter((l) => said(l) === 'executing tool' && l.tool_use_id === c.id);
      assert.equal(runs.length, 1, `${c.name} executed ${runs.length} times`);
    }
    const { id: workId } = await itemOf(ctx, s.id);
    await waitItem(ctx, workId, (x) => x.state === 'stopped', 'item stopped');
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (e) always_ask: allow runs the call, deny runs nothing and posts nothing`, async () => {
  const agent = { tools: [{ type: 'agent_toolset_20260401', default_config: { permission_policy: { type: 'always_ask' } } }] };
  await scenario({ kind, agent }, async (ctx) => {
    const workdir = ctx.workdir();
    const s = await newSession(ctx, [
      'tool bash {"command":"echo allowed > allowed.txt; echo ran"}',
      'tool bash {"command":"echo denied > denied.txt; echo ran"}',
    ]);
    const w = ctx.worker({ workdir });
    const confirm = (id, result) => ctx.client.beta.sessions.events.send(s.id,
      { events: [{ type: 'user.tool_confirmation', tool_use_id: id, result }] });
    const waiting = (id) => (h) => h.some((e) => e.type === 'session.status_idle' &&
      e.stop_reason?.type === 'requires_action' && e.stop_reason.event_ids?.includes(id));

    // First call: held by the worker until the user allows it.
    const h1 = await waitHistory(ctx, s.id, (h) => h.some((e) => e.type === 'agent.tool_use'), 'first call');
    const first = h1.find((e) => e.type === 'agent.tool_use');
    assert.equal(first.evaluated_permission, 'ask');
    await waitHistory(ctx, s.id, waiting(first.id), 'requires_action for the first call');
    await w.waitLog(logged(w, 'tool call awaiting confirmation; holding', field('tool_use_id', first.id)));
    const root = w.workdirFor(s.id);
    assert.equal(existsSync(join(root, 'allowed.txt')), false, 'ran before confirmation');
    assert.equal(resultsById(await history(ctx.hub, s.id)).size, 0);
    assert.equal((await ctx.client.beta.sessions.retrieve(s.id)).status, 'idle');
    await confirm(first.id, 'allow');

    // Second call: denied; the hub resolves it, the worker posts nothing.
    const h2 = await waitHistory(ctx, s.id, (h) => h.filter((e) => e.type === 'agent.tool_use').length === 2,
      'second call');
    const second = h2.filter((e) => e.type === 'agent.tool_use')[1];
    await waitHistory(ctx, s.id, waiting(second.id), 'requires_action for the second call');
    await w.waitLog(logged(w, 'tool call awaiting confirmation; holding', field('tool_use_id', second.id)));
    await confirm(second.id, 'deny');
    await w.waitLog(logged(w, 'tool call denied; not executing', field('tool_use_id', second.id)));
    const h = await waitHistory(ctx, s.id, endedTurn, 'end_turn');

    const results = resultsById(h);
    assert.equal(text(results.get(first.id)), 'ran');
    assert.equal(results.has(second.id), false, 'a user.tool_result for the denied call');
    const resolved = h.filter((e) => e.type === 'agent.tool_result' && e.tool_use_id === second.id);
    assert.equal(resolved.length, 1);
    assert.equal(resolved[0].is_error, true);
    assert.equal(readFileSync(join(root, 'allowed.txt'), 'utf8'), 'allowed\n');
    assert.equal(existsSync(join(root, 'denied.txt')), false);
    assert.equal(text(h.filter((e) => e.type === 'agent.message').at(-1)), 'done: 2 calls, 1 errors');
    assert.ok(w.lines().some((l) => said(l) === 'executing tool' && l.tool_use_id === first.id), 'no "executing tool" line');
    assert.ok(!w.lines().some((l) => said(l) === 'executing tool' && l.tool_use_id === second.id));
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (f) an unknown tool name is left pending for its owner`, async () => {
  await scenario({ kind }, async (ctx) => {
    const s = await newSession(ctx, ['tool bash {"command":"echo before"}', 'tool web_search {"query":"airlock"}']);
    const w = ctx.worker({ maxIdleMs: 120000 });
    const h1 = await waitHistory(ctx, s.id, (h) => h.some((e) => e.type === 'agent.tool_use' && e.name === 'web_search'),
      'the web_search call');
    const call = h1.find((e) => e.name === 'web_search');
    await w.waitLog(logged(w, 'tool not owned by this runner; leaving the tool_use_id pending for its owner',
      field('tool_use_id', call.id)));
    // The worker has passed over the call (that log line is on the path that
    // returns without posting): nothing answers it, the session stays waiting.
    const h = await history(ctx.hub, s.id);
    const results = resultsById(h);
    assert.equal(results.size, 1, 'only the bash call is answered');
    assert.equal(results.has(call.id), false);
    assert.equal(h.some((e) => e.tool_use_id === call.id), false, 'something answered web_search');
    assert.equal(endedTurn(h), false);
    assert.equal((await ctx.client.beta.sessions.retrieve(s.id)).status, 'running');
    const item = await itemOf(ctx, s.id);
    assert.equal(item.state, 'active', 'the worker still holds the session');
    assert.equal(w.lines().filter((l) => said(l) === 'executing tool' && l.tool_use_id === call.id).length, 1);
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (g) skill archives: a symlink member is excluded, a ".." member is refused`, async () => {
  await scenario({ kind }, async (ctx) => {
    const upload = (body) => http(ctx.hub, 'POST', '/v1/skills', { body, headers: { 'content-type': 'application/x-tar' } });
    for (const bad of [
      [{ name: 'demo/SKILL.md', body: SKILL_MD }, { name: '../evil.txt', body: 'x' }],
      [{ name: 'demo/SKILL.md', body: SKILL_MD }, { name: 'demo/../../evil.txt', body: 'x' }],
      [{ name: 'SKILL.md', body: SKILL_MD }, { name: '/tmp/evil.txt', body: 'x' }],
    ]) {
      const r = await upload(tar(bad));
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.details?.error_code, 'invalid_skill_archive', JSON.stringify(r.body));
    }
    const up = await upload(tar([
      { name: 'demo/', type: '5' },
      { name: 'demo/SKILL.md', body: SKILL_MD },
      { name: 'demo/run.sh', body: '#!/bin/sh\necho hi\n' },
      { name: 'demo/link', type: '2', linkname: 'SKILL.md' },
      { name: 'demo/escape', type: '2', linkname: '/etc/passwd' },
    ]));
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const skill = up.body;
    assert.match(skill.id, /^skill_/);
    assert.equal(typeof skill.latest_version, 'string');
    const ver = await http(ctx.hub, 'GET', `/v1/skills/${skill.id}/versions/latest`);
    assert.equal(ver.status, 200, JSON.stringify(ver.body));
    assert.equal(ver.body.name, 'demo-skill');
    assert.equal(ver.body.id, skill.latest_version);
    assert.equal(ver.body.excluded_members, 2);

    const agent = await ctx.client.beta.agents.create({
      name: 'e2e-skilled', model: 'airlock-scripted', tools: [{ type: 'agent_toolset_20260401' }],
      skills: [{ type: 'custom', skill_id: skill.id, version: 'latest' }],
    });
    const workdir = ctx.workdir();
    const s = await ctx.client.beta.sessions.create({
      agent: agent.id, environment_id: ctx.envId,
      initial_events: [message([
        'tool bash {"command":"ls -la skills/*/"}',
        'tool bash {"command":"ls -A skills/demo-skill | sort; test -e skills/demo-skill/link || test -L skills/demo-skill/link || echo no-link"}',
      ].join('\n'))],
    });
    const w = ctx.worker({ workdir });

    // While the item runs the skill is in <workdir>/skills/<name>/, minus the symlinks.
    const h = await waitHistory(ctx, s.id, endedTurn, 'end_turn');
    const [listCall, checkCall] = h.filter((e) => e.type === 'agent.tool_use');
    const results = resultsById(h);
    assert.equal(results.get(listCall.id).is_error, false, text(results.get(listCall.id)));
    const listing = text(results.get(listCall.id));
    assert.match(listing, /SKILL\.md/);
    assert.match(listing, /run\.sh/);
    assert.doesNotMatch(listing, /\blink\b|escape/);
    assert.equal(text(results.get(checkCall.id)), 'SKILL.md\nrun.sh\nno-link');
    assert.ok(w.lines().some((l) => said(l) === 'downloaded skill'), 'no "downloaded skill" log line');

    // After the item the worker removes the skill (the skills/ parent stays).
    const { id: workId } = await itemOf(ctx, s.id);
    await waitItem(ctx, workId, (x) => x.state === 'stopped', 'item stopped');
    const root = w.workdirFor(s.id);
    await until(async () => existsSync(join(root, 'skills', 'demo-skill')), (x) => x === false,
      { what: 'skill dir removed' });
    assert.deepEqual(readdirSync(join(root, 'skills')), []);
  });
});

for (const kind of WORKER_KINDS) test(`[${kind}] (h) a health-check item: ack, force stop, no session fetch`, async () => {
  await scenario({ kind }, async (ctx) => {
    const r = await http(ctx.hub, 'POST', `/v1/environments/${ctx.envId}/work/healthcheck`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.state, 'queued');
    assert.equal(r.body.data.type, 'healthcheck');
    const workId = r.body.id;
    // The worker talks to the hub through a recording proxy (lib/reqlog.mjs):
    // the requests that reached the hub's side, whichever kind sent them.
    const rec = await startRecorder({ target: ctx.hub.url, envKey: ctx.envKey, apiKey: ctx.hub.apiKey });
    ctx.cleanup(() => rec.close());
    const w = ctx.worker({ logLevel: 'debug', hub: { url: rec.url } });
    const item = await waitItem(ctx, workId, (x) => x.state === 'stopped', 'health check stopped');
    assert.equal(typeof item.acknowledged_at, 'string');
    assert.equal(typeof item.stopped_at, 'string');
    assert.equal(item.stop_requested_at, null);
    await w.waitLog(logged(w, 'skipping non-session work item'));
    // Once its stop is answered and the worker polls again, the item is
    // done with: one ack, one stop {force:true}, not a single session call.
    // Both workers start one heartbeat but, with no session work to wait
    // on, usually abort it before it is sent (spec §3.4 says "sends the
    // first heartbeat"; docs/PROTOCOL-NOTES.md); the hub's started_at
    // reflects whichever happened.
    const stop = await rec.waitFor((x) => x.path.endsWith(`/work/${workId}/stop`) && x.done, { what: 'the stop' });
    assert.equal(stop.status, 200);
    await rec.waitFor((x) => x.seq > stop.seq && x.path.endsWith('/work/poll'), { what: 'a poll after the stop' });
    const sent = rec.records;
    const all = sent.map((x) => `${x.method} ${x.path} ${JSON.stringify(x.query)} ${x.cred} ${x.status}`).join('\n');
    const to = (re) => sent.filter((x) => re.test(x.path));
    const acks = to(new RegExp(`/work/${workId}/ack$`));
    assert.equal(acks.length, 1, all);
    assert.equal(acks[0].method, 'POST');
    assert.equal(acks[0].cred, 'env_key');
    const stops = to(new RegExp(`/work/${workId}/stop$`));
    assert.equal(stops.length, 1, all);
    assert.equal(stops[0].method, 'POST');
    assert.deepEqual(stops[0].body, { force: true });
    assert.equal(stops[0].cred, 'env_key', 'no secret came with the item: the environment key');
    assert.equal(to(/^\/v1\/sessions/).length, 0, all);
    assert.equal(to(/^\/v1\/skills/).length, 0, all);
    const beats = to(new RegExp(`/work/${workId}/heartbeat$`));
    assert.ok(beats.length <= 1, all);
    if (beats.length) {
      assert.equal(beats[0].query.expected_last_heartbeat, 'NO_HEARTBEAT');
      assert.ok(sent.indexOf(beats[0]) < sent.indexOf(stops[0]), 'a heartbeat after the stop');
      if (beats[0].response?.state === 'active') assert.equal(typeof item.started_at, 'string');
    } else {
      assert.equal(item.started_at, null);
    }
    for (const x of sent) if (x.path.includes(workId)) assert.ok(!x.aborted || x === beats[0], `${x.method} ${x.path} aborted`);
  });
});

test('(i) SSE framing: "event: <type>\\ndata: <json>\\n\\n", JSON type equal to the event name', async () => {
  await scenario({ hubArgs: ['--ping-interval', '1s'] }, async (ctx) => {
    const s = await ctx.client.beta.sessions.create({ agent: ctx.agent.id, environment_id: ctx.envId });
    const stream = await openStream(ctx.hub, s.id);
    try {
      assert.equal(stream.status, 200);
      assert.match(stream.headers.get('content-type'), /^text\/event-stream/);
      await ctx.client.beta.sessions.events.send(s.id, { events: [message('say hello\nsay world')] });
      await stream.waitFor((e) => e.type === 'session.status_idle', { what: 'idle' });
      await until(async () => stream.frames.some((f) => f.event === 'ping'), Boolean, { what: 'a ping frame' });
      const raw = stream.raw;
      assert.ok(!raw.includes('\r'), 'CR in the stream');
      assert.ok(raw.endsWith('\n\n'), 'a partial frame at rest');
      const frames = raw.slice(0, -2).split('\n\n');
      let named = 0;
      for (const f of frames) {
        const lines = f.split('\n');
        if (lines.every((l) => l.startsWith(':'))) continue;   // comments
        const m = f.match(/^event: ([^\n]+)\ndata: ([^\n]*)$/);
        assert.ok(m, `malformed frame ${JSON.stringify(f)}`);
        const data = JSON.parse(m[2]);
        if (m[1] === 'ping') continue;
        assert.equal(data.type, m[1], f);
        assert.match(data.id, /^sevt_/);
        named++;
      }
      const h = await history(ctx.hub, s.id);
      assert.equal(named, h.length);
      assert.deepEqual(stream.events.map((e) => e.id), h.map((e) => e.id));
      assert.deepEqual(h.filter((e) => e.type === 'agent.message').map(text), ['hello', 'world', 'done: 0 calls, 0 errors']);
    } finally {
      stream.close();
    }
  });
});
