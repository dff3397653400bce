// The managed-agents API surface of the hub: CRUD and semantics through the
// official SDK client where it has methods, raw HTTP otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, setup, client, http, history, until, openStream } from './lib/hub.mjs';

const userMessage = (lines) => ({ type: 'user.message', content: [{ type: 'text', text: [].concat(lines).join('\n') }] });

async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail');
}

// The SDK's typed error: status and the body's error.type / details.error_code.
function assertApiError(e, status, type, code) {
  assert.equal(e.status, status, `status of ${e.message}`);
  assert.equal(e.error?.type, 'error');
  assert.equal(e.error.error.type, type);
  assert.equal(typeof e.error.error.message, 'string');
  if (code) assert.equal(e.error.error.details?.error_code, code);
  assert.equal(e.error.request_id, e.requestID);
}

function assertErrorBody(r, status, type, code) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, type);
  assert.equal(typeof r.body.error.message, 'string');
  if (code) assert.equal(r.body.error.details?.error_code, code);
  assert.equal(r.headers.get('request-id'), r.body.request_id);
}

const endsIdle = (h) => {
  const last = h[h.length - 1];
  return last?.type === 'session.status_idle' && last.stop_reason?.type === 'end_turn';
};
const settled = (hub, sid) => until(() => history(hub, sid), endsIdle, { timeoutMs: 20000, what: `session ${sid} to idle` });

test('environments: create, retrieve, list, update, archive, delete', async () => {
  const hub = await startHub();
  try {
    const c = client(hub);
    const env = await c.beta.environments.create({
      name: 'one', description: 'first', config: { type: 'self_hosted' }, metadata: { a: '1', b: '2', c: '3' },
    });
    assert.equal(env.type, 'environment');
    assert.match(env.id, /^env_/);
    assert.deepEqual(env.config, { type: 'self_hosted' });
    assert.deepEqual(env.metadata, { a: '1', b: '2', c: '3' });
    assert.equal(env.archived_at, null);
    assert.deepEqual(await c.beta.environments.retrieve(env.id), env);

    const upd = await c.beta.environments.update(env.id, { name: 'uno', description: null, metadata: { a: null, b: '', d: '4' } });
    assert.equal(upd.name, 'uno');
    assert.equal(upd.description, null);
    assert.deepEqual(upd.metadata, { c: '3', d: '4' });
    assert.deepEqual(upd.config, { type: 'self_hosted' });
    assert.deepEqual(await c.beta.environments.retrieve(env.id), upd);
    // Omitted fields are preserved.
    const same = await c.beta.environments.update(env.id, {});
    assert.equal(same.name, 'uno');
    assert.deepEqual(same.metadata, { c: '3', d: '4' });

    assertApiError(await rejects(c.beta.environments.update(env.id, { config: { type: 'cloud' } })),
      400, 'invalid_request_error', 'invalid_config_type_change');
    assert.deepEqual((await c.beta.environments.retrieve(env.id)).config, { type: 'self_hosted' });

    const two = await c.beta.environments.create({ name: 'two' });
    assert.equal(two.config.type, 'cloud');
    const archived = await c.beta.environments.archive(two.id);
    assert.ok(archived.archived_at);
    const ids = (page) => page.data.map((e) => e.id).sort();
    assert.deepEqual(ids(await c.beta.environments.list()), [env.id]);
    assert.deepEqual(ids(await c.beta.environments.list({ include_archived: true })), [env.id, two.id].sort());
    assertApiError(await rejects(c.beta.environments.update(two.id, { name: 'x' })), 400, 'invalid_request_error', 'environment_archived');
    assert.equal((await c.beta.environments.retrieve(two.id)).name, 'two');
    // An archived environment takes no new sessions.
    const agent = await c.beta.agents.create({ name: 'a', model: 'airlock-scripted' });
    assertApiError(await rejects(c.beta.sessions.create({ agent: agent.id, environment_id: two.id })), 400, 'invalid_request_error', 'environment_archived');

    const del = await c.beta.environments.delete(two.id);
    assert.deepEqual(del, { id: two.id, type: 'environment_deleted' });
    assertApiError(await rejects(c.beta.environments.retrieve(two.id)), 404, 'not_found_error');
    assert.deepEqual(ids(await c.beta.environments.list({ include_archived: true })), [env.id]);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('agents: update makes a new version, older versions stay retrievable', async () => {
  const hub = await startHub();
  try {
    const c = client(hub);
    const a1 = await c.beta.agents.create({ name: 'agent', model: 'airlock-scripted', tools: [{ type: 'agent_toolset_20260401' }] });
    assert.equal(a1.version, 1);
    assert.equal(a1.description, null);
    const a2 = await c.beta.agents.update(a1.id, { description: 'second', version: 1 });
    assert.equal(a2.id, a1.id);
    assert.equal(a2.version, 2);
    assert.equal(a2.description, 'second');
    assert.deepEqual(a2.model, a1.model);
    const v1 = await c.beta.agents.retrieve(a1.id, { version: 1 });
    assert.equal(v1.version, 1);
    assert.equal(v1.description, null);
    const latest = await c.beta.agents.retrieve(a1.id);
    assert.equal(latest.version, 2);
    assert.equal(latest.description, 'second');
    // A stale version is a conflict, not an overwrite.
    const stale = await rejects(c.beta.agents.update(a1.id, { description: 'third', version: 1 }));
    assertApiError(stale, 409, 'conflict_error');
    assert.equal((await c.beta.agents.retrieve(a1.id)).version, 2);
    const list = await c.beta.agents.list();
    assert.deepEqual(list.data.map((a) => [a.id, a.version]), [[a1.id, 2]]);
    // A session binds to a snapshot of the version it names.
    const env = await c.beta.environments.create({ name: 'e', config: { type: 'self_hosted' } });
    const s = await c.beta.sessions.create({ agent: { type: 'agent', id: a1.id, version: 1 }, environment_id: env.id });
    assert.equal(s.agent.version, 1);
    assert.equal(s.agent.description, null);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('sessions: create, list filters and pages, metadata onto the work item, archive, delete', async () => {
  const hub = await startHub();
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const other = await c.beta.agents.create({ name: 'other', model: 'airlock-scripted' });

    const s1 = await c.beta.sessions.create({ agent: agent.id, environment_id: environment.id, initial_events: [userMessage('say hi')] });
    assert.equal(s1.status, 'running');
    assert.equal(s1.environment_id, environment.id);
    assert.equal(s1.agent.id, agent.id);
    assert.deepEqual(s1.resources, []);
    const h1 = await settled(hub, s1.id);
    assert.equal(h1[0].type, 'user.message');
    assert.equal(h1[0].content[0].text, 'say hi');
    assert.deepEqual(h1.filter((e) => e.type === 'agent.message').map((e) => e.content[0].text), ['hi', 'done: 0 calls, 0 errors']);
    assert.equal((await c.beta.sessions.retrieve(s1.id)).status, 'idle');

    const s2 = await c.beta.sessions.create({ agent: agent.id, environment_id: environment.id, metadata: { k: 'v', keep: 'yes' }, title: 't2' });
    assert.equal(s2.status, 'idle');
    assert.deepEqual(s2.metadata, { k: 'v', keep: 'yes' });
    const s3 = await c.beta.sessions.create({ agent: other.id, environment_id: environment.id, initial_events: [userMessage('tool bash {"command":"true"}')] });
    await until(() => c.beta.sessions.retrieve(s3.id), (s) => s.status === 'running', { what: 's3 running' });

    const ids = (page) => page.data.map((s) => s.id);
    // Default order: newest first.
    assert.deepEqual(ids(await c.beta.sessions.list()), [s3.id, s2.id, s1.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ order: 'asc' })), [s1.id, s2.id, s3.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ statuses: ['idle'] })), [s2.id, s1.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ statuses: ['running', 'terminated'] })), [s3.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ agent_id: other.id })), [s3.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ 'created_at[gte]': s2.created_at })), [s3.id, s2.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ 'created_at[gt]': s2.created_at, order: 'asc' })), [s3.id]);
    // Both encodings of statuses[] on the wire.
    const raw = await http(hub, 'GET', '/v1/sessions?statuses[]=running&statuses%5B%5D=idle&order=asc');
    assert.deepEqual(raw.body.data.map((s) => s.id), [s1.id, s2.id, s3.id]);

    // Pagination through next_page, by hand and through the SDK's iterator.
    const paged = [];
    let page = await c.beta.sessions.list({ limit: 1 });
    for (;;) {
      assert.ok(page.data.length <= 1);
      paged.push(...ids(page));
      if (!page.hasNextPage()) break;
      page = await page.getNextPage();
    }
    assert.deepEqual(paged, [s3.id, s2.id, s1.id]);
    const iterated = [];
    for await (const s of c.beta.sessions.list({ limit: 2, order: 'asc' })) iterated.push(s.id);
    assert.deepEqual(iterated, [s1.id, s2.id, s3.id]);

    // Session metadata is projected onto its work item.
    const items = (await http(hub, 'GET', `/v1/environments/${environment.id}/work`, { key: envKey })).body.data;
    const w2 = items.find((w) => w.data.id === s2.id);
    assert.deepEqual(w2.metadata, { k: 'v', keep: 'yes' });
    const upd = await c.beta.sessions.update(s2.id, { metadata: { k: null, x: 'y' } });
    assert.deepEqual(upd.metadata, { keep: 'yes', x: 'y' });
    const w2b = await c.beta.environments.work.retrieve(w2.id, { environment_id: environment.id });
    assert.deepEqual(w2b.metadata, { keep: 'yes', x: 'y' });
    const updEvent = (await history(hub, s2.id)).find((e) => e.type === 'session.updated');
    assert.deepEqual(updEvent.metadata, { keep: 'yes', x: 'y' });

    // Archive: reported as terminated, its open stream gets the event and closes.
    const st = await openStream(hub, s1.id);
    assert.equal(st.status, 200);
    const arch = await c.beta.sessions.archive(s1.id);
    assert.equal(arch.status, 'terminated');
    assert.ok(arch.archived_at);
    assert.equal(await st.ended, 'eof');
    assert.deepEqual(st.events.map((e) => e.type), ['session.status_terminated']);
    assert.equal((await c.beta.sessions.retrieve(s1.id)).status, 'terminated');
    assert.deepEqual(ids(await c.beta.sessions.list()), [s3.id, s2.id]);
    assert.deepEqual(ids(await c.beta.sessions.list({ include_archived: true })), [s3.id, s2.id, s1.id]);
    const w1 = (await http(hub, 'GET', `/v1/environments/${environment.id}/work`, { key: envKey })).body.data.find((w) => w.data.id === s1.id);
    assert.equal(w1.state, 'stopped');
    // A stream opened on an ended session closes at once.
    const st2 = await openStream(hub, s1.id);
    assert.equal(await st2.ended, 'eof');
    assertErrorBody(await http(hub, 'POST', `/v1/sessions/${s1.id}/events`, { body: { events: [userMessage('say again')] } }), 400, 'invalid_request_error');

    // Delete: gone, its stream ends, its history with it.
    const st3 = await openStream(hub, s3.id);
    assert.equal(st3.status, 200);
    const del = await c.beta.sessions.delete(s3.id);
    assert.deepEqual(del, { id: s3.id, type: 'session_deleted' });
    assert.equal(await st3.ended, 'eof');
    assert.deepEqual(st3.events.map((e) => e.type), ['session.deleted']);
    assertApiError(await rejects(c.beta.sessions.retrieve(s3.id)), 404, 'not_found_error');
    assertErrorBody(await http(hub, 'GET', `/v1/sessions/${s3.id}/events`), 404, 'not_found_error');
    assert.deepEqual(ids(await c.beta.sessions.list({ include_archived: true })), [s2.id, s1.id]);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('events: list pagination, order, types[] filter in both encodings', async () => {
  const hub = await startHub();
  try {
    const { client: c, environment, agent } = await setup(hub);
    const s = await c.beta.sessions.create({
      agent: agent.id, environment_id: environment.id,
      initial_events: [userMessage(['say one', 'say two', 'say three', 'say four', 'say five'])],
    });
    const all = await settled(hub, s.id);
    assert.ok(all.length >= 12, `only ${all.length} events`);
    assert.equal(new Set(all.map((e) => e.id)).size, all.length);
    for (const e of all) assert.ok(e.processed_at, `${e.type} has processed_at`);

    const walk = async (query) => {
      const out = [];
      let pageTok = null;
      for (let n = 0; n < 100; n++) {
        const r = await http(hub, 'GET', `/v1/sessions/${s.id}/events?${query}${pageTok ? `&page=${encodeURIComponent(pageTok)}` : ''}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(r.body.data.length <= 2);
        out.push(...r.body.data);
        if (!r.body.next_page) return out;
        pageTok = r.body.next_page;
      }
      assert.fail('pagination did not end');
    };
    assert.deepEqual(await walk('limit=2'), all);
    assert.deepEqual(await walk('limit=2&order=desc'), [...all].reverse());
    const desc = await http(hub, 'GET', `/v1/sessions/${s.id}/events?order=desc&limit=1000`);
    assert.deepEqual(desc.body.data, [...all].reverse());

    // The SDK's iterator pages through the same history.
    const sdk = [];
    for await (const e of c.beta.sessions.events.list(s.id, { limit: 3 })) sdk.push(e);
    assert.deepEqual(sdk, all);

    const want = all.filter((e) => e.type === 'agent.message' || e.type === 'session.status_idle');
    const r1 = await http(hub, 'GET', `/v1/sessions/${s.id}/events?types[]=agent.message&types[]=session.status_idle`);
    assert.deepEqual(r1.body.data, want);
    const r2 = await http(hub, 'GET', `/v1/sessions/${s.id}/events?types%5B%5D=agent.message&types%5B%5D=session.status_idle`);
    assert.deepEqual(r2.body.data, want);
    assert.deepEqual(await walk('types%5B%5D=agent.message&types%5B%5D=session.status_idle&limit=2'), want);
    const sdkTyped = await c.beta.sessions.events.list(s.id, { types: ['agent.message'] });
    assert.deepEqual(sdkTyped.data.map((e) => e.content[0].text), ['one', 'two', 'three', 'four', 'five', 'done: 0 calls, 0 errors']);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

const b64urlJson = (s) => JSON.parse(Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
const metric = async (hub, name) => {
  const r = await http(hub, 'GET', '/metrics', { key: null });
  const m = r.body.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
};

test('work queue: long-poll wake, reclaim, ack, heartbeat, stop, stats, re-enqueue, secrets', async () => {
  const hub = await startHub();
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const env = environment.id;
    const W = `/v1/environments/${env}/work`;
    const poll = (q = 'block_ms=0', headers = {}) => http(hub, 'GET', `${W}/poll?${q}`, { key: envKey, headers });

    // Nothing queued: an empty poll answers JSON null.
    const empty = await poll();
    assert.equal(empty.status, 200);
    assert.equal(empty.body, null);

    // A parked long-poll is woken by the enqueue, well before its 999 ms.
    const parked = poll('block_ms=999');
    await until(() => metric(hub, 'airlock_hub_poll_waiters'), (n) => n === 1, { what: 'the poll to park' });
    const t0 = performance.now();
    const s1 = await c.beta.sessions.create({ agent: agent.id, environment_id: env, metadata: { bucket: 's3://b' } });
    const got = await parked;
    const waited = performance.now() - t0;
    assert.equal(got.status, 200);
    assert.ok(waited < 500, `poll returned ${waited.toFixed(0)} ms after the enqueue`);
    const item = got.body;
    assert.equal(item.type, 'work');
    assert.equal(item.environment_id, env);
    assert.deepEqual(item.data, { type: 'session', id: s1.id });
    assert.equal(item.state, 'queued');
    assert.deepEqual(item.metadata, { bucket: 's3://b' });
    assert.equal(typeof item.secret, 'string');
    const firstDelivery = performance.now();

    // The secret carries a sessions token scoped to this session.
    const secret = b64urlJson(item.secret);
    assert.equal(typeof secret.sessions_token, 'string');
    const tok = secret.sessions_token;
    const other = await c.beta.sessions.create({ agent: agent.id, environment_id: env });
    assert.equal((await http(hub, 'GET', `/v1/sessions/${s1.id}`, { key: tok })).body.id, s1.id);
    assert.equal((await http(hub, 'GET', `/v1/sessions/${s1.id}/events`, { key: tok })).status, 200);
    const cross = await http(hub, 'GET', `/v1/sessions/${other.id}`, { key: tok });
    assertErrorBody(cross, 404, 'not_found_error');
    const absent = await http(hub, 'GET', '/v1/sessions/sesn_doesnotexist');
    assert.deepEqual(cross.body.error, absent.body.error);
    assertErrorBody(await http(hub, 'GET', `/v1/sessions/${other.id}/events`, { key: tok }), 404, 'not_found_error');

    // Polled but not acked: pending, not handed out again inside the reclaim window.
    let stats = await c.beta.environments.work.stats(env);
    assert.equal(stats.type, 'work_queue_stats');
    assert.equal(stats.pending, 1);
    assert.ok(stats.oldest_queued_at);
    const again = await poll('block_ms=0&reclaim_older_than_ms=1500');
    assert.notEqual(again.body?.id, item.id, 'redelivered inside the reclaim window');
    assert.equal(again.body?.data.id, other.id);   // the next item is delivered instead
    const re = await until(() => poll('block_ms=0&reclaim_older_than_ms=1500'), (r) => r.body?.id === item.id,
      { timeoutMs: 10000, intervalMs: 100, what: 'redelivery after the reclaim window' });
    assert.ok(performance.now() - firstDelivery >= 1400, 'redelivered after the window');
    assert.notEqual(b64urlJson(re.body.secret).sessions_token, tok, 'a fresh secret per delivery');

    // ack: queued -> starting, once.
    const ack = await http(hub, 'POST', `${W}/${item.id}/ack`, { key: envKey });
    assert.equal(ack.status, 200);
    assert.equal(ack.body.state, 'starting');
    assert.ok(ack.body.acknowledged_at);
    assert.equal(ack.body.secret, null);
    assertErrorBody(await http(hub, 'POST', `${W}/${item.id}/ack`, { key: envKey }), 409, 'conflict_error');

    // Heartbeats: NO_HEARTBEAT first, then echo; a stale echo is 412 with the exact body.
    const hb = (expected) => http(hub, 'POST', `${W}/${item.id}/heartbeat?expected_last_heartbeat=${encodeURIComponent(expected)}`, { key: tok });
    const b1 = await hb('NO_HEARTBEAT');
    assert.equal(b1.status, 200, JSON.stringify(b1.body));
    assert.equal(b1.body.type, 'work_heartbeat');
    assert.equal(b1.body.state, 'active');
    assert.equal(b1.body.lease_extended, true);
    assert.ok(b1.body.ttl_seconds > 0);
    assert.equal(typeof b1.body.last_heartbeat, 'string');
    const b2 = await hb(b1.body.last_heartbeat);
    assert.equal(b2.status, 200);
    assert.notEqual(b2.body.last_heartbeat, b1.body.last_heartbeat);
    const stale = await hb(b1.body.last_heartbeat);
    assert.equal(stale.status, 412);
    assert.equal(stale.headers.get('request-id'), stale.body.request_id);
    assert.deepEqual(Object.keys(stale.body).sort(), ['error', 'request_id', 'type']);
    assert.equal(stale.body.type, 'error');
    assert.deepEqual(Object.keys(stale.body.error).sort(), ['details', 'message', 'type']);
    assert.equal(stale.body.error.type, 'invalid_request_error');
    assert.equal(typeof stale.body.error.message, 'string');
    assert.equal(stale.body.error.details.error_code, 'heartbeat_precondition_failed');
    assert.deepEqual(stale.body.error.details.current_state, {
      state: 'active', last_heartbeat: b2.body.last_heartbeat, lease_extended: false, ttl_seconds: b2.body.ttl_seconds,
    });
    const wk = await c.beta.environments.work.retrieve(item.id, { environment_id: env });
    assert.equal(wk.state, 'active');
    assert.equal(wk.latest_heartbeat_at, b2.body.last_heartbeat);
    assert.equal(wk.secret, null);

    // stop: force-stop once; a second stop is a final 409.
    const stop = await http(hub, 'POST', `${W}/${item.id}/stop`, { key: tok, body: { force: true } });
    assert.equal(stop.status, 200);
    assert.equal(stop.body.state, 'stopped');
    assert.ok(stop.body.stopped_at);
    const stop2 = await http(hub, 'POST', `${W}/${item.id}/stop`, { key: envKey, body: { force: true } });
    assertErrorBody(stop2, 409, 'conflict_error');
    assert.equal(stop2.headers.get('x-should-retry'), 'false');

    // A session whose item stopped gets a new item on its next user message.
    await c.beta.sessions.events.send(s1.id, { events: [userMessage('say back')] });
    const mine = (await http(hub, 'GET', W, { key: envKey })).body.data.filter((w) => w.data.id === s1.id);
    assert.equal(mine.length, 2);
    const fresh = mine.find((w) => w.id !== item.id);
    assert.equal(fresh.state, 'queued');
    await settled(hub, s1.id);
    const sameSession = (await http(hub, 'GET', W, { key: envKey })).body.data.filter((w) => w.data.id === s1.id);
    assert.equal(sameSession.length, 2, 'a live item is not duplicated');

    // workers_polling counts distinct Anthropic-Worker-ID values.
    for (const id of ['worker-a', 'worker-b', 'worker-a']) await poll('block_ms=0&reclaim_older_than_ms=600000', { 'Anthropic-Worker-ID': id });
    stats = await c.beta.environments.work.stats(env);
    assert.equal(stats.workers_polling, 2);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('tool results: an identical duplicate is idempotent, a conflicting one is 400', async () => {
  const hub = await startHub();
  try {
    const { client: c, environment, envKey, agent } = await setup(hub);
    const s = await c.beta.sessions.create({
      agent: agent.id, environment_id: environment.id, initial_events: [userMessage('tool bash {"command":"echo x"}')],
    });
    const h = await until(() => history(hub, s.id), (h) => h.some((e) => e.type === 'agent.tool_use'), { what: 'the tool call' });
    const call = h.find((e) => e.type === 'agent.tool_use');
    assert.equal(call.name, 'bash');
    assert.deepEqual(call.input, { command: 'echo x' });
    const result = { type: 'user.tool_result', tool_use_id: call.id, is_error: false, content: [{ type: 'text', text: 'x' }] };
    const send = (ev) => http(hub, 'POST', `/v1/sessions/${s.id}/events`, { key: envKey, body: { events: [ev] } });
    const r1 = await send(result);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    const stored = r1.body.data[0];
    assert.match(stored.id, /^sevt_/);
    assert.equal(stored.tool_use_id, call.id);
    const r2 = await send(result);
    assert.equal(r2.status, 200);
    assert.equal(r2.body.data[0].id, stored.id);
    const r3 = await send({ ...result, content: [{ type: 'text', text: 'different' }] });
    assertErrorBody(r3, 400, 'invalid_request_error');
    const r4 = await send({ ...result, is_error: true });
    assertErrorBody(r4, 400, 'invalid_request_error');
    const done = await settled(hub, s.id);
    const results = done.filter((e) => e.type === 'user.tool_result');
    assert.equal(results.length, 1);
    assert.equal(results[0].id, stored.id);
    assert.equal(done.filter((e) => e.type === 'agent.message').pop().content[0].text, 'done: 1 calls, 0 errors');
    // A duplicate after the turn ended is still the same stored event.
    const r5 = await send(result);
    assert.equal(r5.status, 200);
    assert.equal(r5.body.data[0].id, stored.id);
    assert.equal((await history(hub, s.id)).length, done.length);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('healthz and metrics', async () => {
  const hub = await startHub();
  try {
    const h = await http(hub, 'GET', '/healthz', { key: null });
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    const m = await http(hub, 'GET', '/metrics', { key: null });
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type'), /^text\/plain/);
    for (const name of ['airlock_hub_http_requests_total', 'airlock_hub_polls_total', 'airlock_hub_events_appended_total',
      'airlock_hub_event_streams', 'airlock_hub_auth_failures_total']) {
      assert.match(m.body, new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'));
      assert.match(m.body, new RegExp(`^${name} \\d+$`, 'm'));
    }
    const before = await metric(hub, 'airlock_hub_auth_failures_total');
    assert.equal((await http(hub, 'GET', '/v1/environments', { key: 'nope-nope-nope-nope' })).status, 401);
    assert.equal(await metric(hub, 'airlock_hub_auth_failures_total'), before + 1);
    // Every pass that served a /v1 request committed once.
    const commits = await metric(hub, 'airlock_hub_store_commits_total');
    await client(hub).beta.environments.create({ name: 'counted' });
    assert.ok(await metric(hub, 'airlock_hub_store_commits_total') > commits);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});
