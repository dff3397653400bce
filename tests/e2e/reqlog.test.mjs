// The request-log comparison of spec §12 step 6: one hub behind a recording
// proxy (lib/reqlog.mjs); the same scenario (a session with a few tool calls
// on a skill-less agent, ending idle with end_turn, then a health-check
// item) is served first by the unmodified SDK worker, then by airlock's C
// worker, each pointed at the proxy; then the two request logs must be the
// same, modulo ids, timestamps, workspace paths and telemetry headers.
//
// Timing-dependent parts are taken out in a principled way and checked on
// their own:
//   * heartbeats run on their own timer, interleaved with everything else,
//     so they are a channel of their own per work item: the first carries
//     expected_last_heartbeat=NO_HEARTBEAT, every later one echoes the
//     previous answer's last_heartbeat exactly, at ttl/2 intervals, all
//     between the item's ack and its stop. For the comparison each item's
//     heartbeats collapse to [NO_HEARTBEAT, <echo>];
//   * the health-check item's one heartbeat is aborted by both workers as
//     soon as they see the item is not a session, so whether it reaches the
//     hub is a race (docs/PROTOCOL-NOTES.md): at most one, NO_HEARTBEAT;
//   * consecutive identical polls (empty long-polls) collapse into one.
//
// Deliberate differences are listed in docs/PROTOCOL-NOTES.md ("The C
// worker: where it differs from the SDK worker"); the one that shows on the
// wire here (the stream request's Accept header) is taken out of the
// comparison and pinned on its own, per kind, in DOCUMENTED below.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, realpathSync } from 'node:fs';
import { startHub, setup, http, history, until, tempDir } from './lib/hub.mjs';
import { startWorker } from './lib/worker.mjs';
import { startRecorder, normaliser, tokenOfSecret } from './lib/reqlog.mjs';

const LEASE_TTL_S = 10;
const MAX_IDLE_MS = 7000;      // the item outlives one heartbeat interval (ttl/2): its log has an echo
const DIRECTIVES = [
  'tool write {"file_path":"a.txt","content":"hello world\\n"}',
  'tool bash {"command":"cat a.txt; echo $ANTHROPIC_X"}',
  'tool edit {"file_path":"a.txt","old_string":"world","new_string":"there"}',
  'tool read {"file_path":"a.txt"}',
  'tool glob {"pattern":"*.txt"}',
];

// Documented differences on the wire: request header values per kind.
const DOCUMENTED = {
  // "The event stream request sends Accept: text/event-stream (the SDK sends application/json)".
  streamAccept: { sdk: 'application/json', c: 'text/event-stream' },
};
const isStream = (r) => /^\/v1\/sessions\/[^/]+\/events\/stream$/.test(r.path);
const isHeartbeat = (r) => /\/work\/[^/]+\/heartbeat$/.test(r.path);
const isPoll = (r) => /\/work\/poll$/.test(r.path);
const workOf = (r) => /\/work\/([^/]+)\/[a-z]+$/.exec(r.path)?.[1];

// One shared hub and proxy; the kinds run one after the other.
let shared;
async function world() {
  if (shared) return shared;
  const hub = await startHub({ args: ['--lease-ttl', `${LEASE_TTL_S}s`] });
  try {
    const s = await setup(hub);
    const rec = await startRecorder({ target: hub.url, envKey: s.envKey, apiKey: hub.apiKey });
    shared = { hub, rec, ...s, envId: s.environment.id, dirs: [], runs: {} };
    return shared;
  } catch (e) {
    await hub.stop();
    hub.cleanup();
    throw e;
  }
}
after(async () => {
  if (!shared) return;
  await shared.rec.close();
  await shared.hub.stop();
  shared.hub.cleanup();
  for (const d of shared.dirs) rmSync(d, { recursive: true, force: true });
});

const getItem = async (w, workId) => {
  const r = await http(w.hub, 'GET', `/v1/environments/${w.envId}/work/${workId}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

// Runs the scenario with one kind of worker behind the proxy and returns
// its slice of the request log.
async function runScenario(kind) {
  const wd = await world();
  const workdir = tempDir('airlock-e2e-wd-');
  wd.dirs.push(workdir);
  const from = wd.rec.records.length;
  const session = await wd.client.beta.sessions.create({
    agent: wd.agent.id, environment_id: wd.envId,
    initial_events: [{ type: 'user.message', content: [{ type: 'text', text: DIRECTIVES.join('\n') }] }],
  });
  let worker;
  try {
    worker = startWorker({ hub: { url: wd.rec.url }, environmentId: wd.envId, envKey: wd.envKey, workdir, kind,
      maxIdleMs: MAX_IDLE_MS });
    const list = await until(() => http(wd.hub, 'GET', `/v1/environments/${wd.envId}/work?limit=100`, { key: wd.envKey }),
      (r) => r.status === 200 && r.body.data.some((x) => x.data.id === session.id && x.state === 'stopped'),
      { timeoutMs: 60000, what: 'the session item stopped' });
    const item = list.body.data.find((x) => x.data.id === session.id);

    const hc = await http(wd.hub, 'POST', `/v1/environments/${wd.envId}/work/healthcheck`);
    assert.equal(hc.status, 200, JSON.stringify(hc.body));
    const hcItem = await until(() => getItem(wd, hc.body.id), (x) => x.state === 'stopped',
      { what: 'the health check stopped' });
    // The worker is back to polling after both items: a poll that arrived
    // after the health check's stop ends every run's log the same way.
    const hcStop = await wd.rec.waitFor((r) => r.seq >= from && r.path.endsWith(`/work/${hc.body.id}/stop`),
      { what: 'the health check stop' });
    await wd.rec.waitFor((r) => r.seq > hcStop.seq && isPoll(r), { what: 'a poll after the health check' });
    await worker.stop();
    const records = wd.rec.records.slice(from);
    const h = await history(wd.hub, session.id);
    return {
      kind, records, session, item, hcItem, history: h,
      root: worker.toolRootFor(session.id) === '/workspace' ? '/workspace' : realpathSync(worker.workdirFor(session.id)),
      logs: worker.logs(),
    };
  } catch (e) {
    if (worker) e.message += `\n--- ${kind} worker log ---\n${worker.logs()}`;
    e.message += `\n--- request log ---\n${wd.rec.records.slice(from).map((r) => `${r.method} ${r.path} ${JSON.stringify(r.query)} ${r.cred} ${r.status}`).join('\n')}`;
    throw e;
  } finally {
    await worker?.stop();
  }
}

// The kind-independent facts every run must show on its own (spec §12
// step 4, §8.2, §8.3): returns nothing, asserts.
function checkRun(run) {
  const { records, item, hcItem, history: h } = run;
  const all = records.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.query)} ${r.cred}`).join('\n');
  assert.equal(h.at(-1).type, 'session.status_idle');
  assert.deepEqual(h.at(-1).stop_reason, { type: 'end_turn' });
  assert.ok(!JSON.stringify(h).includes('leak'), 'ANTHROPIC_X reached the session');

  // Every request was answered 2xx, except none.
  for (const r of records) {
    if (!r.aborted) assert.ok(r.status >= 200 && r.status < 300, `${r.method} ${r.path} -> ${r.status}\n${all}`);
  }
  // Polls: environment key, block_ms=999, one stable worker id.
  const polls = records.filter(isPoll);
  assert.ok(polls.length >= 3, all);
  const ids = new Set(polls.map((r) => r.headers['anthropic-worker-id']));
  assert.equal(ids.size, 1, `worker ids ${[...ids]}`);
  assert.match([...ids][0], /\S/);
  for (const p of polls) {
    assert.equal(p.method, 'GET');
    assert.equal(p.cred, 'env_key');
    assert.deepEqual(p.query, { block_ms: '999' });
  }
  // Per-item calls: the sessions token minted for that delivery, or the
  // environment key for an item delivered without a secret (the hub mints
  // none for health checks).
  const delivery = (workId) => records.find((r) => isPoll(r) && r.response?.id === workId);
  assert.ok(tokenOfSecret(delivery(item.id)?.response.secret), 'the session item came without a sessions token');
  for (const r of records) {
    if (isPoll(r) || r.path.endsWith('/ack')) {
      assert.equal(r.cred, 'env_key', `${r.method} ${r.path}`);
      continue;
    }
    const workId = workOf(r) ?? item.id;          // session calls belong to the session item
    const d = delivery(workId);
    assert.ok(d, `${r.method} ${r.path}: no poll delivered ${workId}`);
    assert.equal(r.cred, tokenOfSecret(d.response.secret) ? 'sessions_token' : 'env_key', `${r.method} ${r.path}`);
  }

  // Heartbeats of the session item.
  const idx = (pred, what) => {
    const i = records.findIndex(pred);
    assert.ok(i >= 0, `no ${what}\n${all}`);
    return i;
  };
  const ack = idx((r) => r.path.endsWith(`/work/${item.id}/ack`), 'ack');
  const stream = idx((r) => r.path === `/v1/sessions/${run.session.id}/events/stream`, 'stream');
  const stop = idx((r) => r.path.endsWith(`/work/${item.id}/stop`), 'stop');
  const beats = records.filter((r) => isHeartbeat(r) && workOf(r) === item.id);
  assert.ok(beats.length >= 2, `${beats.length} heartbeats (an item of ${MAX_IDLE_MS} ms idle, ttl ${LEASE_TTL_S} s)\n${all}`);
  assert.ok(records.indexOf(beats[0]) > ack, 'a heartbeat before the ack');
  assert.ok(records.indexOf(beats[0]) < stream, 'the first heartbeat was not sent before the session work');
  assert.ok(records.indexOf(beats.at(-1)) < stop, 'a heartbeat after the stop');
  for (const [i, b] of beats.entries()) {
    assert.equal(b.method, 'POST');
    assert.equal(b.body, undefined, 'a heartbeat with a body');
    assert.deepEqual(Object.keys(b.query), ['expected_last_heartbeat'], 'desired_ttl_seconds is never sent');
    if (i === 0) {
      assert.equal(b.query.expected_last_heartbeat, 'NO_HEARTBEAT');
      continue;
    }
    const prev = beats[i - 1];
    assert.equal(prev.status, 200);
    assert.equal(typeof prev.response?.last_heartbeat, 'string');
    assert.equal(b.query.expected_last_heartbeat, prev.response.last_heartbeat, `heartbeat ${i} echo`);
    // Cadence: ttl/2 after the previous one (it is sent when its timer fires).
    const gap = b.t - prev.t;
    assert.ok(gap >= (LEASE_TTL_S * 1000) / 2 - 500 && gap <= (LEASE_TTL_S * 1000) / 2 + 1500,
      `heartbeat ${i} came ${gap} ms after the previous one, not ~${(LEASE_TTL_S * 1000) / 2}`);
  }
  assert.equal(beats[0].response?.ttl_seconds, LEASE_TTL_S);

  // The health check: ack, stop {force:true}, no session call; its
  // heartbeat, if it got out at all, is the first one.
  const hcRecords = records.filter((r) => r.path.includes(`/work/${hcItem.id}/`));
  const hcBeats = hcRecords.filter(isHeartbeat);
  assert.ok(hcBeats.length <= 1, all);
  for (const b of hcBeats) assert.equal(b.query.expected_last_heartbeat, 'NO_HEARTBEAT');
  assert.deepEqual(hcRecords.filter((r) => !isHeartbeat(r)).map((r) => [r.method, r.path.split('/').at(-1), r.body]),
    [['POST', 'ack', undefined], ['POST', 'stop', { force: true }]]);
  assert.equal(hcItem.stop_requested_at, null);
  assert.equal(typeof hcItem.stopped_at, 'string');
}

// The comparable form of a run: one line per request (heartbeats apart,
// consecutive identical polls as one), ids and paths normalised, and each
// item's heartbeats collapsed.
function comparable(run) {
  const n = normaliser({ workdir: run.root });
  const lines = [];
  const beats = new Map();
  for (const r of run.records) {
    const path = n.str(r.path);
    if (isHeartbeat(r)) {
      if (r.path.includes(`/work/${run.hcItem.id}/`)) continue;        // racy, see the top
      const q = r.query.expected_last_heartbeat === 'NO_HEARTBEAT' ? 'NO_HEARTBEAT' : '<echo>';
      const list = beats.get(path) ?? [];
      if (list.at(-1) !== q) list.push(q);
      beats.set(path, list);
      continue;
    }
    const headers = { ...r.headers };
    if (headers['anthropic-worker-id']) headers['anthropic-worker-id'] = '<worker-id>';
    if (isStream(r)) {
      assert.equal(headers.accept, DOCUMENTED.streamAccept[run.kind], `${run.kind}: the stream request's Accept`);
      headers.accept = '<documented: streamAccept>';
    }
    const query = Object.keys(r.query).length ? `?${new URLSearchParams(n.deep(r.query))}` : '';
    const body = r.body === undefined ? '' : ` ${JSON.stringify(n.deep(r.body))}`;
    const line = `${r.method} ${path}${query} [${r.cred}] ${JSON.stringify(headers)}${body}`;
    if (isPoll(r) && lines.at(-1) === line) continue;
    lines.push(line);
  }
  return { requests: lines, heartbeats: Object.fromEntries([...beats].map(([p, l]) => [p, l.join(' ')])) };
}

const runs = {};
for (const kind of ['sdk', 'c']) {
  test(`[${kind}] request log of a session and a health check`, async () => {
    const run = await runScenario(kind);
    runs[kind] = run;
    try {
      checkRun(run);
    } catch (e) {
      e.message += `\n--- ${kind} worker log ---\n${run.logs}`;
      throw e;
    }
  });
}

test('the C worker\'s request log equals the SDK worker\'s', () => {
  assert.ok(runs.sdk && runs.c, 'both runs are needed (see the two tests above)');
  const sdk = comparable(runs.sdk);
  const c = comparable(runs.c);
  // Sanity of the baseline itself: the scenario's shape.
  assert.equal(sdk.requests.filter((l) => l.startsWith('POST /v1/sessions/<sesn#1>/events ')).length, DIRECTIVES.length);
  assert.deepEqual(Object.values(sdk.heartbeats), ['NO_HEARTBEAT <echo>']);
  // Line by line: assert's diff shows the differing requests (+ C, - SDK).
  assert.deepEqual(c.heartbeats, sdk.heartbeats, 'heartbeats per item (actual: C worker, expected: SDK worker)');
  assert.deepEqual(c.requests, sdk.requests, 'requests (actual: C worker, expected: SDK worker)');
});
