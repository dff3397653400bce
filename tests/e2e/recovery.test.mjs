// Recovery: a worker killed mid-item loses its lease and another worker
// finishes the session; a hub killed mid-session keeps every event it
// acknowledged and carries on after a restart on the same data directory.
// The scenarios with workers run once per kind in WORKER_KINDS (the
// unmodified SDK worker and airlock's C worker).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startHub, setup, http, history, until, tempDir, openStream } from './lib/hub.mjs';
import { startWorker, WORKER_KINDS } from './lib/worker.mjs';

const userMessage = (lines) => ({ type: 'user.message', content: [{ type: 'text', text: lines.join('\n') }] });

const workItems = async (hub, envId, envKey) => {
  const r = await http(hub, 'GET', `/v1/environments/${envId}/work`, { key: envKey });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data;
};

// Every agent.tool_use is answered exactly once, and no call has two
// different results.
function assertResultsUnique(events) {
  const calls = events.filter((e) => e.type === 'agent.tool_use');
  const results = events.filter((e) => e.type === 'user.tool_result');
  for (const call of calls) {
    const mine = results.filter((r) => r.tool_use_id === call.id);
    assert.equal(mine.length, 1, `tool_use ${call.id} (${call.name}) has ${mine.length} results`);
  }
  const byId = new Map();
  for (const r of results) {
    const key = JSON.stringify([r.content, r.is_error]);
    const prev = byId.get(r.tool_use_id);
    assert.ok(prev === undefined || prev === key, `tool_use ${r.tool_use_id} has two different results`);
    byId.set(r.tool_use_id, key);
  }
  return calls;
}

const endsIdle = (h) => {
  const last = h[h.length - 1];
  return last?.type === 'session.status_idle' && last.stop_reason?.type === 'end_turn';
};

for (const kind of WORKER_KINDS) test(`[${kind}] lease recovery: a killed worker's item is re-queued and another worker finishes it`, async () => {
  const hub = await startHub({ args: ['--lease-ttl', '10s'] });
  let w1, w2;
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const wd1 = join(hub.dataDir, 'wd1');
    const wd2 = join(hub.dataDir, 'wd2');
    mkdirSync(wd1);
    mkdirSync(wd2);
    const s = await c.beta.sessions.create({
      agent: agent.id, environment_id: environment.id,
      initial_events: [userMessage([
        'tool bash {"command":"touch started; sleep 3; echo one"}',
        'tool write {"file_path":"b.txt","content":"two\\n"}',
        'tool read {"file_path":"b.txt"}',
        'tool bash {"command":"echo three"}',
      ])],
    });
    w1 = startWorker({ hub, environmentId: environment.id, envKey, workdir: wd1, maxIdleMs: 1000, kind });

    // The worker is inside the slow step once its marker file exists.
    await until(() => existsSync(join(w1.workdirFor(s.id), 'started')), Boolean, { timeoutMs: 30000, what: 'worker 1 to start the slow tool' });
    const [item] = await workItems(hub, environment.id, envKey);
    assert.equal(item.data.id, s.id);
    assert.ok(['starting', 'active'].includes(item.state), `state ${item.state}`);
    await w1.kill9();

    const before = await history(hub, s.id);
    const firstCall = before.find((e) => e.type === 'agent.tool_use');
    assert.equal(firstCall.name, 'bash');
    assert.ok(!before.some((e) => e.type === 'user.tool_result'), 'the killed worker posted no result');

    // After the TTL the lease is cleared and the item is claimable again.
    const requeued = await until(() => workItems(hub, environment.id, envKey),
      (items) => items.find((w) => w.id === item.id)?.state === 'queued',
      { timeoutMs: 25000, intervalMs: 200, what: 'the item to be re-queued' });
    assert.equal(requeued.length, 1, 'no second work item was made');
    const stats = await c.beta.environments.work.stats(environment.id);
    assert.equal(stats.depth + stats.pending, 1);
    // The dead worker's next heartbeat (echoing its last lease) would get 412.
    assert.ok(item.latest_heartbeat_at, 'worker 1 had heartbeated');
    const hb = await http(hub, 'POST', `/v1/environments/${environment.id}/work/${item.id}/heartbeat?expected_last_heartbeat=${encodeURIComponent(item.latest_heartbeat_at)}`, { key: envKey });
    assert.equal(hb.status, 412, JSON.stringify(hb.body));
    assert.equal(hb.body.error.details.error_code, 'heartbeat_precondition_failed');
    assert.equal(hb.body.error.details.current_state.state, 'queued');
    assert.equal(hb.body.error.details.current_state.last_heartbeat, null);
    assert.equal(hb.body.error.details.current_state.lease_extended, false);

    w2 = startWorker({ hub, environmentId: environment.id, envKey, workdir: wd2, maxIdleMs: 1000, kind });
    const h = await until(() => history(hub, s.id), endsIdle, { timeoutMs: 40000, intervalMs: 100, what: 'the session to end its turn' });
    const calls = assertResultsUnique(h);
    assert.equal(calls.length, 4);
    const resultOf = (call) => h.find((e) => e.type === 'user.tool_result' && e.tool_use_id === call.id);
    assert.equal(resultOf(calls[0]).content[0].text, 'one');
    assert.equal(resultOf(calls[2]).content[0].text, 'two\n');
    assert.equal(resultOf(calls[3]).content[0].text, 'three');
    const done = h.filter((e) => e.type === 'agent.message').pop();
    assert.equal(done.content[0].text, 'done: 4 calls, 0 errors');

    const final = await until(() => workItems(hub, environment.id, envKey),
      (items) => items.length === 1 && items[0].state === 'stopped',
      { timeoutMs: 20000, intervalMs: 100, what: 'the work item to stop' });
    assert.equal(final[0].id, item.id);
    assert.ok(final[0].stopped_at);
  } catch (e) {
    console.log('worker 1 log:\n' + w1?.logs() + '\nworker 2 log:\n' + w2?.logs() + '\nhub log:\n' + hub.logs());
    throw e;
  } finally {
    await w1?.kill9();
    await w2?.stop();
    await hub.stop();
    hub.cleanup();
  }
});

for (const kind of WORKER_KINDS) test(`[${kind}] durability: events acknowledged before a kill -9 of the hub survive a restart, and the session completes`, async () => {
  let hub = await startHub();
  const dataDir = hub.dataDir;
  const port = new URL(hub.url).port;
  let worker, stream;
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const s = await c.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    stream = await openStream(hub, s.id);
    const wdRoot = join(dataDir, 'wd');
    mkdirSync(wdRoot);
    worker = startWorker({ hub, environmentId: environment.id, envKey, workdir: wdRoot, maxIdleMs: 1500, kind });
    const wd = worker.workdirFor(s.id);
    const sent = await c.beta.sessions.events.send(s.id, {
      events: [userMessage([
        'tool write {"file_path":"a.txt","content":"alpha\\n"}',
        'tool bash {"command":"echo one"}',
        'tool bash {"command":"touch slow; sleep 1; echo two; touch slow-done"}',
        'tool read {"file_path":"a.txt"}',
        'say bye',
      ])],
    });
    const acked = new Map(sent.data.map((e) => [e.id, e]));
    assert.equal(acked.size, 1);

    // Two results are posted and the worker is inside the third call.
    await until(() => stream.events.filter((e) => e.type === 'user.tool_result').length >= 2 && existsSync(join(wd, 'slow')),
      Boolean, { timeoutMs: 30000, what: 'two results and the slow call' });
    stream.close();
    await stream.ended;
    for (const e of stream.events) acked.set(e.id, e);
    assert.ok(stream.events.some((e) => e.type === 'agent.tool_use'));
    await hub.kill9();
    // The worker finishes the call while the hub is down, so its result
    // post fails and has to be retried against the restarted hub.
    await until(() => existsSync(join(wd, 'slow-done')), Boolean, { timeoutMs: 10000, what: 'the slow call to finish' });

    hub = await startHub({ dataDir, args: ['--listen', `127.0.0.1:${port}`] });
    assert.equal(new URL(hub.url).port, port);
    const after = await history(hub, s.id);
    const byId = new Map(after.map((e) => [e.id, e]));
    for (const [id, e] of acked) assert.deepEqual(byId.get(id), e, `event ${id} (${e.type}) after restart`);
    // History order is the order the stream delivered.
    const order = after.map((e) => e.id).filter((id) => acked.has(id));
    assert.deepEqual(order, [...acked.keys()].filter((id) => byId.has(id)));

    const h = await until(() => history(hub, s.id), endsIdle, { timeoutMs: 60000, intervalMs: 100, what: 'the session to end its turn after restart' });
    const calls = assertResultsUnique(h);
    assert.equal(calls.length, 4);
    const resultOf = (call) => h.find((e) => e.type === 'user.tool_result' && e.tool_use_id === call.id);
    assert.equal(resultOf(calls[2]).content[0].text, 'two');
    assert.equal(resultOf(calls[3]).content[0].text, 'alpha\n');
    const msgs = h.filter((e) => e.type === 'agent.message').map((e) => e.content[0].text);
    assert.deepEqual(msgs.slice(-2), ['bye', 'done: 4 calls, 0 errors']);
    for (const [id] of acked) assert.ok(h.some((e) => e.id === id));

    if (process.env.E2E_DEBUG) console.log(worker.logs());
    await until(() => workItems(hub, environment.id, envKey), (items) => items.length === 1 && items[0].state === 'stopped',
      { timeoutMs: 20000, intervalMs: 100, what: 'the work item to stop' });
    const sess = await c.beta.sessions.retrieve(s.id);
    assert.equal(sess.status, 'idle');
  } catch (e) {
    console.log('worker log:\n' + worker?.logs() + '\nhub log:\n' + hub.logs());
    throw e;
  } finally {
    stream?.close();
    await worker?.stop();
    await hub.stop();
    hub.cleanup();
  }
});

test('a hub restart gives every lease holder one full TTL to heartbeat again', async () => {
  const dataDir = tempDir();
  let hub = await startHub({ dataDir, args: ['--lease-ttl', '10s'] });
  const port = new URL(hub.url).port;
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    await c.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    const poll = await http(hub, 'GET', `/v1/environments/${environment.id}/work/poll`, { key: envKey });
    const work = poll.body;
    const base = `/v1/environments/${environment.id}/work/${work.id}`;
    assert.equal((await http(hub, 'POST', `${base}/ack`, { key: envKey })).status, 200);
    const hb = await http(hub, 'POST', `${base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT`, { key: envKey });
    assert.equal(hb.status, 200);
    assert.equal(hb.body.ttl_seconds, 10);
    const leaseEnd = Date.parse(hb.body.last_heartbeat) + 10000;

    await hub.kill9();
    // The hub stays down past the lease's end: time itself is what is under test.
    await new Promise((r) => setTimeout(r, Math.max(0, leaseEnd - Date.now()) + 500));
    hub = await startHub({ dataDir, listen: `127.0.0.1:${port}`, args: ['--lease-ttl', '10s'] });

    const again = await http(hub, 'POST', `${base}/heartbeat?expected_last_heartbeat=${encodeURIComponent(hb.body.last_heartbeat)}`,
      { key: envKey });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.state, 'active');
    assert.equal(again.body.lease_extended, true);
    assert.match(hub.logs(), /work\.leases_extended/);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});
