// Interop: the unmodified @anthropic-ai/sdk 1.10.0 environment worker, in its
// own process, serves a session on airlock's hub (spec §11, §12 steps 1-4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startHub, setup, http, history, until, tempDir, openStream } from './lib/hub.mjs';
import { startWorker, WORKER_KINDS } from './lib/worker.mjs';

const text = (ev) => (ev.content ?? []).map((b) => b.text ?? '').join('');

for (const kind of WORKER_KINDS) test(`[${kind}] the worker serves bash, write, read, edit, glob and grep calls`, async () => {
  const hub = await startHub();
  const workdir = tempDir('airlock-e2e-wd-');
  let worker, stream;
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const envId = environment.id;
    const session = await c.beta.sessions.create({ agent: agent.id, environment_id: envId });

    // Before any worker: the session's item waits in the queue.
    const before = await c.beta.environments.work.stats(envId);
    assert.equal(before.type, 'work_queue_stats');
    assert.equal(before.depth, 1);
    assert.equal(before.pending, 0);
    assert.equal(typeof before.oldest_queued_at, 'string');

    // The test's own stream sees the whole turn, from the user.message on.
    stream = await openStream(hub, session.id);
    assert.equal(stream.status, 200);
    const directives = [
      'tool write {"file_path":"a.txt","content":"hello world\\n"}',
      'tool bash {"command":"cat a.txt; echo $ANTHROPIC_X"}',
      'tool edit {"file_path":"a.txt","old_string":"world","new_string":"there"}',
      'tool read {"file_path":"a.txt"}',
      'tool glob {"pattern":"*.txt"}',
      'tool grep {"pattern":"there"}',
    ];
    await c.beta.sessions.events.send(session.id, {
      events: [{ type: 'user.message', content: [{ type: 'text', text: directives.join('\n') }] }],
    });

    worker = startWorker({ hub, environmentId: envId, envKey, workdir, env: { ANTHROPIC_X: 'leak' }, kind });

    // During: the worker holds the item and is counted as polling.
    await stream.waitFor((e) => e.type === 'user.tool_result', { what: 'the first tool result' });
    const during = await c.beta.environments.work.stats(envId);
    assert.equal(during.depth, 0);
    assert.equal(during.pending, 0);
    assert.ok(during.workers_polling >= 1, `workers_polling ${during.workers_polling}`);

    const idle = await stream.waitFor((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn',
      { timeoutMs: 60000, what: 'end_turn idle' });
    assert.ok(idle.id);

    // The worker force-stops its item maxIdleMs after the end_turn idle.
    const items = await until(() => http(hub, 'GET', `/v1/environments/${envId}/work`, { key: envKey }),
      (r) => r.status === 200 && r.body.data.length === 1 && r.body.data[0].state === 'stopped',
      { timeoutMs: 30000, what: 'work item stopped' });
    const item = items.body.data[0];
    assert.deepEqual(item.data, { type: 'session', id: session.id });
    assert.equal(item.secret, null);
    for (const f of ['acknowledged_at', 'started_at', 'latest_heartbeat_at', 'stopped_at']) {
      assert.equal(typeof item[f], 'string', f);
    }
    assert.equal(item.stop_requested_at, null);

    const after = await c.beta.environments.work.stats(envId);
    assert.equal(after.depth, 0);
    assert.equal(after.pending, 0);
    assert.equal(after.oldest_queued_at, null);

    const sess = await c.beta.sessions.retrieve(session.id);
    assert.equal(sess.status, 'idle');

    // History: every agent.tool_use answered by exactly one user.tool_result
    // with the toolset's own texts.
    const h = await history(hub, session.id);
    const last = h.at(-1);
    assert.equal(last.type, 'session.status_idle');
    assert.deepEqual(last.stop_reason, { type: 'end_turn' });
    const calls = h.filter((e) => e.type === 'agent.tool_use');
    assert.deepEqual(calls.map((e) => e.name), ['write', 'bash', 'edit', 'read', 'glob', 'grep']);
    const results = new Map();
    for (const e of h.filter((x) => x.type === 'user.tool_result')) {
      assert.ok(!results.has(e.tool_use_id), `two results for ${e.tool_use_id}`);
      results.set(e.tool_use_id, e);
    }
    assert.equal(results.size, calls.length);
    const root = worker.toolRootFor(session.id);
    const expected = {
      write: 'wrote 12 bytes to a.txt',
      bash: 'hello world',
      edit: 'edited a.txt (1 replacement(s))',
      read: 'hello there\n',
      glob: join(root, 'a.txt'),
      grep: `${join(root, 'a.txt')}:1:hello there\n`, // ripgrep (scripts/deps.sh installs it) ends its lines
    };
    for (const call of calls) {
      const r = results.get(call.id);
      assert.ok(r, `no user.tool_result for ${call.name} ${call.id}`);
      assert.equal(r.is_error, false, `${call.name}: ${text(r)}`);
      assert.equal(text(r), expected[call.name], call.name);
    }
    assert.ok(!h.some((e) => JSON.stringify(e).includes('leak')), 'ANTHROPIC_X reached the session');
    const done = h.filter((e) => e.type === 'agent.message').at(-1);
    assert.equal(text(done), 'done: 6 calls, 0 errors');

    // Stream and list agree on ids: every event the test's stream carried is
    // in history under the same id, and the whole turn was streamed.
    const historyIds = new Set(h.map((e) => e.id));
    assert.ok(stream.events.length > 0);
    for (const e of stream.events) assert.ok(historyIds.has(e.id), `streamed ${e.type} ${e.id} not in history`);
    const streamed = new Set(stream.events.map((e) => e.id));
    const turnStart = h.findIndex((e) => e.type === 'user.message');
    for (const e of h.slice(turnStart)) assert.ok(streamed.has(e.id), `${e.type} ${e.id} never streamed`);
    for (const e of stream.events) assert.deepEqual(e, h.find((x) => x.id === e.id), `${e.type} differs`);
  } catch (e) {
    if (worker) e.message += `\n--- worker log ---\n${worker.logs()}`;
    throw e;
  } finally {
    stream?.close();
    await worker?.stop();
    await hub.stop();
    hub.cleanup();
    rmSync(workdir, { recursive: true, force: true });
  }
});
