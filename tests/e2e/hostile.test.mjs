// The C worker (`airlock worker`) against a hostile control plane
// (lib/fakehub.mjs): malformed work items, malformed secrets, broken event
// streams and skill archives that try to escape. In every case nothing is
// written outside the worker's --root, no tool runs twice, and the worker is
// still alive afterwards and serves a well-formed item.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './lib/hub.mjs';
import { startWorker } from './lib/worker.mjs';
import { startFakeHub, toolUse, userMessage, idleEndTurn, evId, b64url } from './lib/fakehub.mjs';
import { tar } from './lib/archive.mjs';

const text = (ev) => (ev.content ?? []).map((b) => b.text ?? '').join('');
const results = (fake, sid) => fake.session(sid).history.filter((e) => e.type === 'user.tool_result');
const executions = (w, id) => w.lines().filter((l) => l.event === 'executing tool' && l.tool_use_id === id).length;

// A fake hub, a C worker on it with ROOT = BASE/root (cwd ROOT), and the
// checks every hostile case ends with: the worker alive, serving a good
// item, and BASE holding nothing but ROOT.
async function hostile({ args = [], maxIdleMs = 300 } = {}, fn) {
  const fake = await startFakeHub();
  const base = tempDir('airlock-e2e-hostile-');
  const root = join(base, 'root');
  mkdirSync(root);
  let w;
  let failure;
  try {
    w = startWorker({ hub: fake, environmentId: fake.envId, envKey: fake.envKey, workdir: root, kind: 'c',
      maxIdleMs, args });
    // fn may return checks to run last, after the follow-up item.
    const late = await fn({ fake, w, base, root });

    // Still alive, and a well-formed item after the hostile ones is served.
    assert.equal(w.proc.exitCode, null, 'the worker exited');
    assert.equal(w.proc.signalCode, null, 'the worker was killed');
    const sid = 'sesn_followup_good';
    const call = toolUse('bash', { command: 'echo good-after > after.txt; cat after.txt' });
    fake.addSession(sid, { history: [userMessage('go'), call] });
    const from = fake.requests.length;
    fake.enqueue(fake.workItem('work_followup_good', sid));
    await fake.waitRequest((r) => r.path === '/v1/environments/' + fake.envId + '/work/work_followup_good/stop',
      { from, what: 'the follow-up item to be stopped', timeoutMs: 30000 });
    const res = results(fake, sid);
    assert.equal(res.length, 1);
    assert.equal(res[0].tool_use_id, call.id);
    assert.equal(text(res[0]), 'good-after');
    assert.equal(executions(w, call.id), 1);
    assert.equal(w.proc.exitCode, null, 'the worker exited after the follow-up item');

    // Nothing outside --root.
    assert.deepEqual(readdirSync(base), ['root'], 'something was written outside --root');
    if (late) late();
  } catch (e) {
    failure = e;
  }
  try {
    await w?.stop();
  } catch (e) { failure ??= e; }
  await fake.close();
  if (failure) {
    failure.message += `\n--- worker log ---\n${w?.logs()}\n--- fake hub requests ---\n${
      fake.requests.map((r) => `${r.method} ${r.url} ${r.auth}`).join('\n')}`;
  }
  rmSync(base, { recursive: true, force: true });
  if (failure) throw failure;
}

test('malformed work items are dropped without a request built from their ids', async () => {
  await hostile({}, async ({ fake, w, root }) => {
    const env = fake.envId;
    // Refused at the poll: never acked.
    const pollBad = [
      '"a work item that is a JSON string"',
      '[{"id":"work_in_array"}]',
      { id: '../x', environment_id: env, data: { type: 'session', id: 'sesn_dotdot' } },
      { id: 'work/evil?x=1', environment_id: env, data: { type: 'session', id: 'sesn_slash' } },
      { id: 'work_badenv', environment_id: '../../v1/sessions', data: { type: 'session', id: 'sesn_badenv' } },
    ];
    // Accepted at the poll (good work id), bad or non-session data: acked,
    // then ended with a stop and no session fetch.
    const ackedBad = [
      fake.workItem('work_sid_dotdot', '../../etc'),
      fake.workItem('work_sid_slash', 'sesn_a/b?c=d'),
      { ...fake.workItem('work_hc', 'hc_1'), data: { type: 'healthcheck', id: 'hc_1' } },
      { ...fake.workItem('work_notype', 'sesn_x'), data: { id: 'sesn_x' } },
      { ...fake.workItem('work_nodata', 'sesn_y'), data: null },
    ];
    for (const item of pollBad) {
      const from = w.logs().length;
      fake.enqueue(item);
      await w.waitLog(/malformed work item/, { from, timeoutMs: 15000 });
    }
    // A truncated JSON body: no item, no ack, and the worker polls on.
    const fromTrunc = fake.requests.length;
    const logTrunc = w.logs().length;
    fake.enqueue('{"type":"work","id":"work_truncated","data":');
    await fake.waitRequest((r) => r.path.endsWith('/work/poll') &&
      fake.requests.slice(fromTrunc).filter((x) => x.path.endsWith('/work/poll')).length >= 2,
    { from: fromTrunc, what: 'polling to go on after a truncated body' });
    const truncLines = w.logs().slice(logTrunc).split('\n').filter((l) => /"lvl":"(warn|error)"/.test(l));
    for (const item of ackedBad) {
      const from = fake.requests.length;
      fake.enqueue(item);
      await fake.waitRequest((r) => r.method === 'POST' && r.path === `/v1/environments/${env}/work/${item.id}/stop`,
        { from, what: `stop of ${item.id}` });
    }

    const acked = fake.requests.filter((r) => r.path.endsWith('/ack')).map((r) => r.path.split('/')[5]);
    assert.deepEqual(acked, ackedBad.map((i) => i.id));
    // Every request the worker made is one of the protocol's, for an id it accepted.
    const okPath = new RegExp(`^/v1/environments/${env}/work/(poll|work_[a-z_]+/(ack|heartbeat|stop))$`);
    for (const r of fake.requests) {
      assert.match(r.path, okPath, `unexpected request ${r.method} ${r.url}`);
      assert.ok(!/\.\.|%2e|%2f/i.test(r.url), `request built from a hostile id: ${r.url}`);
    }
    // Each acked item was stopped with force, once.
    for (const i of ackedBad) {
      const stops = fake.requests.filter((r) => r.path.endsWith(`/work/${i.id}/stop`));
      assert.equal(stops.length, 1, `${i.id} stopped ${stops.length} times`);
      assert.deepEqual(stops[0].json, { force: true });
    }
    assert.ok(w.lines().filter((l) => /malformed work item/.test(l.event ?? '')).length >= pollBad.length + 2,
      'a clear log line for each malformed item');
    assert.ok(!existsSync(join(root, 'sessions')) || readdirSync(join(root, 'sessions')).length === 0,
      'a session directory was made for a malformed item');
    // The SDK counts an unparsable poll body as a failed poll (spec §3.2);
    // the worker must at least say so rather than take it for "no work".
    return () => assert.ok(truncLines.length > 0, 'a poll body that is not JSON passed silently as "no work"');
  });
});

test('malformed secrets fall back to the environment key and are never logged', async () => {
  await hostile({ args: ['--max-sessions', '8'] }, async ({ fake, w }) => {
    const good = 'sk-ant-req-GOODTOKEN-7c1e';
    const std = 'sk-ant-req-STD?>?>TOKEN';   // standard base64 of its JSON has "+" or "/"
    const cases = [
      { name: 'bad-base64', secret: '%%%not*base64%%%SECRETA', bearer: fake.envKey },
      { name: 'not-json', secret: b64url('not json at all SECRETB'), bearer: fake.envKey, plain: 'SECRETB' },
      { name: 'json-array', secret: b64url('["sk-ant-req-ARRAYTOKEN"]'), bearer: fake.envKey, plain: 'ARRAYTOKEN' },
      { name: 'empty-token', secret: b64url('{"sessions_token":"","x":"SECRETD"}'), bearer: fake.envKey, plain: 'SECRETD' },
      { name: 'number-token', secret: b64url('{"sessions_token":42,"x":"SECRETE"}'), bearer: fake.envKey, plain: 'SECRETE' },
      { name: 'good', secret: b64url(JSON.stringify({ sessions_token: good, extra: 'ignored' })), bearer: good, plain: good },
      { name: 'std-b64', secret: Buffer.from(JSON.stringify({ sessions_token: std })).toString('base64'), bearer: std, plain: std },
    ];
    assert.match(cases.at(-1).secret, /[+/]/);
    for (const [i, c] of cases.entries()) {
      c.sid = `sesn_secret_${i}`;
      c.wid = `work_secret_${i}`;
      c.call = toolUse('bash', { command: `echo ${c.name}` });
      fake.addSession(c.sid, { history: [userMessage('go'), c.call] });
      fake.enqueue(fake.workItem(c.wid, c.sid, { secret: c.secret }));
    }
    for (const c of cases) {
      await fake.waitRequest((r) => r.path === `/v1/environments/${fake.envId}/work/${c.wid}/stop`,
        { what: `stop of ${c.name}` });
    }
    for (const c of cases) {
      const res = results(fake, c.sid);
      assert.equal(res.length, 1, `${c.name}: results`);
      assert.equal(text(res[0]), c.name);
      const mine = fake.requests.filter((r) => r.path.includes(`/${c.sid}`) || r.path.includes(`/${c.wid}/`));
      const perItem = mine.filter((r) => !r.path.endsWith('/ack'));
      const kinds = new Set(perItem.map((r) => `${r.method} ${r.path.replace(c.sid, 'S').replace(c.wid, 'W')}`));
      for (const k of [`POST /v1/environments/${fake.envId}/work/W/heartbeat`, 'GET /v1/sessions/S',
        'GET /v1/sessions/S/events/stream', 'GET /v1/sessions/S/events', 'POST /v1/sessions/S/events',
        `POST /v1/environments/${fake.envId}/work/W/stop`]) assert.ok(kinds.has(k), `${c.name}: no ${k}`);
      for (const r of perItem) assert.equal(r.auth, `Bearer ${c.bearer}`, `${c.name}: ${r.method} ${r.path}`);
      for (const r of mine.filter((x) => x.path.endsWith('/ack'))) assert.equal(r.auth, `Bearer ${fake.envKey}`);
    }
    const fallbacks = w.lines().filter((l) => /falling back to the environment key/.test(l.event ?? ''));
    assert.equal(fallbacks.length, 5, 'one warning per unusable secret');
    const log = w.logs();
    for (const c of cases) {
      assert.ok(!log.includes(c.secret), `${c.name}: the secret is in the log`);
      if (c.plain) assert.ok(!log.includes(c.plain), `${c.name}: the secret's payload is in the log`);
    }
    assert.ok(!log.includes(fake.envKey), 'the environment key is in the log');
  });
});

test('broken event streams: reconnect with backoff, no tool twice, clear log lines', async () => {
  await hostile({ maxIdleMs: 300 }, async ({ fake, w, root }) => {
    const sid = 'sesn_sse_hostile';
    const t1 = toolUse('bash', { command: 'echo t1 >> runs.log; echo one' });
    const ghost = toolUse('bash', { command: 'echo ghost >> runs.log' });
    const t3 = toolUse('bash', { command: 'echo t3 >> runs.log; echo three' });
    const posted = (id) => fake.waitRequest((r) => r.method === 'POST' && r.path === `/v1/sessions/${sid}/events` &&
      r.json?.events?.[0]?.tool_use_id === id, { what: `result of ${id}` });
    const opened = [];
    const streams = [
      // 0: closes at once.
      async (c) => { opened.push(Date.now()); c.end(); },
      // 1: the list after it runs t1; then a frame without "event:" (dropped),
      // then one frame over the worker's 16 MiB cap.
      async (c) => {
        opened.push(Date.now());
        await c.afterList();
        await posted(t1.id);
        c.sendRaw(`data: ${JSON.stringify(ghost)}\n\n`);
        c.sendRaw(`event: agent.tool_use\ndata: ${'x'.repeat((16 << 20) + 4096)}`);
        c.sendRaw('\n\n');
        c.end();
      },
      // 2: data that is not JSON.
      async (c) => {
        opened.push(Date.now());
        await c.afterList();
        c.sendRaw('event: agent.tool_use\ndata: {"type":"agent.tool_use","id":\n\n');
        c.end();
      },
      // 3: event: error.
      async (c) => {
        opened.push(Date.now());
        await c.afterList();
        c.sendRaw('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"overloaded"}}\n\n');
      },
      // 4: a good stream: t3 arrives live.
      async (c) => {
        opened.push(Date.now());
        await c.afterList();
        c.live();
        fake.push(sid, t3);
      },
    ];
    fake.addSession(sid, { history: [userMessage('go'), t1], streams,
      onResult: (ev) => { if (ev.tool_use_id === t3.id) fake.push(sid, idleEndTurn()); } });
    fake.enqueue(fake.workItem('work_sse_hostile', sid));
    await fake.waitRequest((r) => r.path === `/v1/environments/${fake.envId}/work/work_sse_hostile/stop`,
      { what: 'the item to be stopped', timeoutMs: 60000 });

    assert.equal(fake.session(sid).connections, 5, 'stream connections');
    for (const [id, n] of [[t1.id, 1], [t3.id, 1], [ghost.id, 0]]) {
      assert.equal(executions(w, id), n, `${id} executed ${executions(w, id)} times`);
      const posts = fake.requests.filter((r) => r.method === 'POST' && r.json?.events?.[0]?.tool_use_id === id);
      assert.equal(posts.length, n, `${id} posted ${posts.length} times`);
    }
    assert.equal(readFileSync(join(w.workdirFor(sid), 'runs.log'), 'utf8'), 't1\nt3\n');

    // Reconnects back off (500 ms doubling, no event resets it here).
    const disc = w.lines().filter((l) => l.event === 'stream disconnected, reconnecting');
    assert.ok(disc.length >= 4, `${disc.length} reconnect lines`);
    assert.deepEqual(disc.slice(0, 4).map((l) => l.backoff_ms), [500, 1000, 2000, 4000]);
    for (let i = 1; i < opened.length; i++) {
      assert.ok(opened[i] - opened[i - 1] >= 450, `reconnect ${i} after ${opened[i] - opened[i - 1]} ms`);
    }
    assert.ok(disc.some((l) => /EMSGSIZE/.test(l.error)), 'no clear line for the oversized frame');
    assert.match(w.logs(), /"event":"malformed event on the stream"/, 'no line for non-JSON data');
    assert.ok(w.lines().some((l) => l.event === 'event stream reported an error'), 'no line for event: error');
    assert.ok(existsSync(root));
    // The line must also parse to that message: a second "event" key (the SSE
    // event name) must not overwrite it.
    return () => assert.ok(w.lines().some((l) => l.event === 'malformed event on the stream'),
      'the "malformed event on the stream" line parses to another "event" (duplicate JSON key)');
  });
});

test('skill archives with ../ and absolute members are refused; nothing lands outside the session', async () => {
  await hostile({}, async ({ fake, w, base, root }) => {
    const md = '---\nname: fine\ndescription: ok\n---\nfine skill\n';
    fake.addSkill('skill_dotdot', { name: 'dotdot', archive: tar([
      { name: 'dotdot/SKILL.md', body: md }, { name: '../../../../escape-dotdot.txt', body: 'x' }]) });
    fake.addSkill('skill_hidden', { name: 'hidden', archive: tar([
      { name: 'hidden/SKILL.md', body: md }, { name: 'hidden/../../../escape-hidden.txt', body: 'x' }]) });
    fake.addSkill('skill_abs', { name: 'abs', archive: tar([
      { name: 'SKILL.md', body: md }, { name: `${base}/escape-abs.txt`, body: 'x' }]) });
    fake.addSkill('skill_fine', { name: 'fine', archive: tar([
      { name: 'fine/', type: '5' }, { name: 'fine/SKILL.md', body: md }]) });
    const sid = 'sesn_skills_hostile';
    const call = toolUse('bash', { command: 'ls -R skills' });
    fake.addSession(sid, {
      history: [userMessage('go'), call],
      skills: ['skill_dotdot', 'skill_hidden', 'skill_abs', 'skill_fine'].map((id) => ({ type: 'custom', skill_id: id, version: 'latest' })),
    });
    fake.enqueue(fake.workItem('work_skills_hostile', sid));
    await fake.waitRequest((r) => r.path === `/v1/environments/${fake.envId}/work/work_skills_hostile/stop`,
      { what: 'the item to be stopped' });

    const res = results(fake, sid);
    assert.equal(res.length, 1);
    assert.equal(res[0].is_error, false, text(res[0]));
    assert.equal(text(res[0]), 'skills:\nfine\n\nskills/fine:\nSKILL.md');
    const failed = w.lines().filter((l) => l.event === 'failed to download skill');
    assert.deepEqual(failed.map((l) => l.skill_id).sort(), ['skill_abs', 'skill_dotdot', 'skill_hidden']);
    for (const l of failed) assert.match(l.error, /refusing to extract unsafe archive member/, JSON.stringify(l));
    for (const f of ['escape-dotdot.txt', 'escape-hidden.txt', 'escape-abs.txt']) {
      const found = [];
      const walk = (d) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.name === f) found.push(join(d, e.name));
          if (e.isDirectory()) walk(join(d, e.name));
        }
      };
      walk(base);
      assert.deepEqual(found, [], `${f} was written`);
    }
    // The session's skills are removed after the item.
    assert.deepEqual(readdirSync(join(w.workdirFor(sid), 'skills')), []);
    assert.deepEqual(readdirSync(join(root, 'sessions')), [sid]);
  });
});
