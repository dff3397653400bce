// A small, scriptable and deliberately hostile control plane in node:http,
// implementing just enough of spec §11 (poll, ack, heartbeat, stop, session
// GET, event stream/list/send, skill version/content) to hand a worker bad
// input a real hub would never produce. Every request is recorded with its
// bearer so that tests can see which credential a call carried.
//
// startFakeHub({ envId, envKey, ttlSeconds }) -> hub with
//   url, envId, envKey, requests[], waitRequest(pred, opts),
//   enqueue(work)          work: an object (sent as JSON) or a raw body string
//   workItem(id, sid, extra)  a well-formed session work object
//   addSession(sid, { history, skills, streams, onResult })
//       streams: per stream connection (index 0, 1, ...), an async
//         function ({ res, send, sendRaw, end, index, afterList }) that plays
//         that connection; connections past the list stay open (pings)
//       onResult(ev, session): called after a posted user.tool_result is
//         stored; the default ends the turn (agent.message, idle end_turn)
//   push(sid, ev)          store ev in history and send it to open streams
//   addSkill(id, { name, version, archive })
//   close()
import { createServer } from 'node:http';

let seqEvent = 0;
const nowIso = () => new Date().toISOString();
export const evId = () => `sevt_fake${String(++seqEvent).padStart(6, '0')}`;
export const frame = (ev) => `event: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`;
export const toolUse = (name, input, id = evId()) =>
  ({ type: 'agent.tool_use', id, name, input, processed_at: nowIso() });
export const userMessage = (text) =>
  ({ type: 'user.message', id: evId(), content: [{ type: 'text', text }], processed_at: nowIso() });
export const idleEndTurn = () =>
  ({ type: 'session.status_idle', id: evId(), stop_reason: { type: 'end_turn' }, processed_at: nowIso() });
export const b64url = (s) => Buffer.from(s).toString('base64url');

const json = (res, status, body, headers = {}) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
};
const notFound = (res, what) => json(res, 404, {
  type: 'error', error: { type: 'not_found_error', message: `${what} not found` }, request_id: 'req_fake',
});

export async function startFakeHub({ envId = 'env_fakehub01', envKey = 'sk-ant-oat01-fakehub-ENVKEY', ttlSeconds = 30 } = {}) {
  const requests = [];
  const waiters = new Set();
  const queue = [];
  const parked = [];
  const items = new Map();
  const sessions = new Map();
  const skills = new Map();
  const openStreams = new Set();
  let seq = 0;
  let beat = 0;

  const notify = () => { for (const w of waiters) w(); };

  const deliver = (res, work) => {
    if (typeof work === 'string') json(res, 200, work);
    else json(res, 200, work);
  };

  const hub = {
    envId, envKey, requests,
    enqueue(work) {
      if (work && typeof work === 'object' && typeof work.id === 'string') items.set(work.id, work);
      const p = parked.shift();
      if (p) { clearTimeout(p.timer); deliver(p.res, work); } else queue.push(work);
    },
    workItem(id, sid, extra = {}) {
      return { type: 'work', id, environment_id: envId, data: { type: 'session', id: sid }, state: 'queued',
        metadata: {}, secret: null, created_at: nowIso(), acknowledged_at: null, started_at: null,
        latest_heartbeat_at: null, stop_requested_at: null, stopped_at: null, ...extra };
    },
    addSession(sid, { history = [], skills: sk = [], streams = [], onResult } = {}) {
      const s = { id: sid, history: [...history], skills: sk, streams, connections: 0, open: new Set(),
        onResult: onResult ?? ((ev, sess) => {
          hub.push(sess.id, { type: 'agent.message', id: evId(), content: [{ type: 'text', text: 'ok' }], processed_at: nowIso() });
          hub.push(sess.id, idleEndTurn());
        }) };
      sessions.set(sid, s);
      return s;
    },
    session: (sid) => sessions.get(sid),
    push(sid, ev) {
      const s = sessions.get(sid);
      s.history.push(ev);
      for (const res of s.open) res.write(frame(ev));
    },
    addSkill(id, { name, version = 'skillver_1', archive }) { skills.set(id, { id, name, version, archive }); },
    // Resolves with the first recorded request (from index `from`) matching pred.
    waitRequest(pred, { timeoutMs = 30000, what = 'request', from = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = requests.slice(from).find(pred);
          if (hit) { done(); resolve(hit); }
        };
        const t = setTimeout(() => {
          done();
          reject(new Error(`fake hub: timed out waiting for ${what}; saw:\n${requests.map((r) => `${r.method} ${r.url}`).join('\n')}`));
        }, timeoutMs);
        const done = () => { clearTimeout(t); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const p of parked.splice(0)) { clearTimeout(p.timer); p.res.destroy(); }
      for (const res of openStreams) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const [path, qs = ''] = req.url.split('?');
      const r = {
        seq: seq++, t: Date.now(), method: req.method, url: req.url, path, query: new URLSearchParams(qs),
        auth: req.headers.authorization ?? null, headers: req.headers, body,
      };
      try { r.json = body ? JSON.parse(body) : undefined; } catch { /* raw */ }
      requests.push(r);
      try { route(req, res, r); } catch (e) { json(res, 500, { type: 'error', error: { type: 'api_error', message: String(e) } }); }
      notify();
    });
  });

  function route(req, res, r) {
    let m;
    const p = r.path;
    if ((m = p.match(/^\/v1\/environments\/([^/]+)\/work\/poll$/)) && req.method === 'GET') {
      if (queue.length) return deliver(res, queue.shift());
      const ms = Math.min(Number(r.query.get('block_ms') ?? 0) || 0, 999);
      const entry = { res, timer: null };
      entry.timer = setTimeout(() => {
        parked.splice(parked.indexOf(entry), 1);
        json(res, 200, 'null');
      }, ms);
      parked.push(entry);
      res.on('close', () => { const i = parked.indexOf(entry); if (i >= 0) { clearTimeout(entry.timer); parked.splice(i, 1); } });
      return undefined;
    }
    if ((m = p.match(/^\/v1\/environments\/([^/]+)\/work\/([^/]+)\/ack$/)) && req.method === 'POST') {
      const w = items.get(m[2]);
      if (!w) return notFound(res, 'work');
      return json(res, 200, { ...w, secret: null, state: 'starting', acknowledged_at: nowIso() });
    }
    if ((m = p.match(/^\/v1\/environments\/([^/]+)\/work\/([^/]+)\/heartbeat$/)) && req.method === 'POST') {
      if (!items.get(m[2])) return notFound(res, 'work');
      return json(res, 200, { type: 'work_heartbeat', last_heartbeat: `${nowIso()}#${++beat}`, lease_extended: true,
        state: 'active', ttl_seconds: ttlSeconds });
    }
    if ((m = p.match(/^\/v1\/environments\/([^/]+)\/work\/([^/]+)\/stop$/)) && req.method === 'POST') {
      const w = items.get(m[2]);
      if (!w) return notFound(res, 'work');
      return json(res, 200, { ...w, secret: null, state: 'stopped', stopped_at: nowIso() });
    }
    if ((m = p.match(/^\/v1\/sessions\/([^/]+)$/)) && req.method === 'GET') {
      const s = sessions.get(m[1]);
      if (!s) return notFound(res, 'session');
      return json(res, 200, { type: 'session', id: s.id, status: 'idle', agent: { skills: s.skills }, resources: [],
        metadata: {} });
    }
    if ((m = p.match(/^\/v1\/sessions\/([^/]+)\/events\/stream$/)) && req.method === 'GET') {
      const s = sessions.get(m[1]);
      if (!s) return notFound(res, 'session');
      return stream(s, req, res, r);
    }
    if ((m = p.match(/^\/v1\/sessions\/([^/]+)\/events$/))) {
      const s = sessions.get(m[1]);
      if (!s) return notFound(res, 'session');
      if (req.method === 'GET') return json(res, 200, { data: s.history, next_page: null });
      const evs = r.json?.events ?? [];
      const stored = evs.map((e) => ({ ...e, id: evId(), processed_at: nowIso() }));
      for (const e of stored) hub.push(s.id, e);
      json(res, 200, { data: stored });
      for (const e of stored) if (e.type === 'user.tool_result') setImmediate(() => s.onResult(e, s));
      return undefined;
    }
    if ((m = p.match(/^\/v1\/skills\/([^/]+)\/versions\/([^/]+)(\/content)?$/)) && req.method === 'GET') {
      const sk = skills.get(m[1]);
      if (!sk) return notFound(res, 'skill');
      if (m[3]) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': sk.archive.length });
        return res.end(sk.archive);
      }
      return json(res, 200, { type: 'skill_version', id: sk.version, skill_id: sk.id, name: sk.name,
        description: 'fake', created_at: nowIso() });
    }
    return notFound(res, `${req.method} ${p}`);
  }

  function stream(s, req, res, r) {
    const index = s.connections++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    openStreams.add(res);
    let ended = false;
    const ping = setInterval(() => { if (!ended) res.write('event: ping\ndata: {}\n\n'); }, 5000);
    const end = () => { if (!ended) { ended = true; clearInterval(ping); s.open.delete(res); openStreams.delete(res); res.end(); } };
    res.on('close', () => { ended = true; clearInterval(ping); s.open.delete(res); openStreams.delete(res); });
    const ctx = {
      res, index, end, hub, session: s, openedAt: r.seq,
      send: (ev) => { if (!ended) res.write(frame(ev)); },
      // From now on this connection carries pushed events like any other.
      live: () => { if (!ended) s.open.add(res); },
      sendRaw: (text) => { if (!ended) res.write(text); },
      // The reconcile list this connection triggers.
      afterList: () => hub.waitRequest((x) => x.seq > r.seq && x.method === 'GET' && x.path === `/v1/sessions/${s.id}/events`,
        { what: `list after stream ${index}` }),
    };
    const play = s.streams[index];
    if (!play) { s.open.add(res); return; }
    Promise.resolve().then(() => play(ctx)).catch((e) => { console.error('fake hub stream script failed:', e); end(); });
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.url = `http://127.0.0.1:${server.address().port}`;
  return hub;
}
