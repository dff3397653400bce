// A recording reverse proxy (spec §12 step 6): sits in front of one hub,
// forwards every request as it arrives and every response chunk as it comes
// (the SSE stream goes through unbuffered), and records what the worker
// sent: method, path, query (parsed), JSON body (parsed), the kind of
// credential, and the protocol headers (never the telemetry ones:
// User-Agent, X-Stainless-*). Small JSON responses are kept too, so that a
// test can check what the worker echoed back (the heartbeat's
// last_heartbeat) and which sessions token a poll handed out.
//
//   const rec = await startRecorder({ target: hub.url, envKey, apiKey: hub.apiKey });
//   ... point a worker at rec.url ...
//   rec.records  -> [{ seq, t, method, path, query, body, cred, headers, status, response, aborted }]
//   await rec.close();
import http from 'node:http';

// The request headers that are part of the protocol (compared); the rest is
// telemetry or transport.
export const PROTOCOL_HEADERS = ['accept', 'anthropic-beta', 'anthropic-version', 'anthropic-worker-id', 'content-type'];

const MAX_KEPT_RESPONSE = 1 << 20;

function parseJson(buf) {
  if (!buf.length) return undefined;
  const text = buf.toString('utf8');
  try { return JSON.parse(text); } catch { return { unparsed: text }; }
}

// The sessions token inside a work item's secret (base64url JSON), if any.
export function tokenOfSecret(secret) {
  if (typeof secret !== 'string' || !secret) return undefined;
  try {
    return JSON.parse(Buffer.from(secret.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')).sessions_token;
  } catch { return undefined; }
}

// Query parameters as an object with sorted keys; a repeated key keeps
// every value (an array).
export function parseQuery(search) {
  const q = new URLSearchParams(search);
  const out = {};
  for (const k of [...new Set(q.keys())].sort()) {
    const all = q.getAll(k);
    out[k] = all.length === 1 ? all[0] : all;
  }
  return out;
}

export async function startRecorder({ target, envKey, apiKey }) {
  const up = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const records = [];
  const minted = new Set();        // sessions tokens handed out by polls seen here
  const waiters = new Set();
  const notify = () => { for (const w of waiters) w(); };
  let seq = 0;

  const classify = (authz) => {
    if (!authz) return 'none';
    const m = /^Bearer (.+)$/i.exec(authz);
    if (!m) return 'malformed';
    const cred = m[1];
    if (cred === envKey) return 'env_key';
    if (minted.has(cred)) return 'sessions_token';
    if (cred.startsWith('al-req-')) return 'unminted_sessions_token';
    if (cred === apiKey) return 'api_key';
    return 'other';
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://proxy');
    const headers = {};
    for (const h of PROTOCOL_HEADERS) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    const rec = {
      seq: seq++, t: Date.now(), method: req.method, path: url.pathname, query: parseQuery(url.search),
      body: undefined, cred: classify(req.headers.authorization), headers,
      status: undefined, response: undefined, aborted: false, done: false,
    };
    records.push(rec);
    const reqChunks = [];
    const fwdHeaders = { ...req.headers, host: up.host };
    const upReq = http.request({
      protocol: up.protocol, hostname: up.hostname, port: up.port, method: req.method,
      path: req.url, headers: fwdHeaders, agent,
    }, (upRes) => {
      rec.status = upRes.statusCode;
      const sse = /event-stream/.test(upRes.headers['content-type'] ?? '');
      rec.sse = sse;
      res.writeHead(upRes.statusCode, upRes.headers);
      res.flushHeaders();
      const resChunks = [];
      let kept = 0;
      upRes.on('data', (c) => {
        res.write(c);                 // each chunk goes out as it arrives
        if (!sse && kept < MAX_KEPT_RESPONSE) { resChunks.push(c); kept += c.length; }
      });
      upRes.on('end', () => {
        if (!sse) {
          rec.response = parseJson(Buffer.concat(resChunks));
          const tok = tokenOfSecret(rec.response?.secret);
          if (tok) minted.add(tok);
        }
        rec.done = true;
        res.end();
        notify();
      });
      upRes.on('error', () => res.destroy());
      upRes.on('aborted', () => res.destroy());
    });
    upReq.on('error', (e) => {
      rec.error = String(e.code ?? e);
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: `proxy: ${rec.error}` } }));
      } else {
        res.destroy();
      }
      notify();
    });
    req.on('data', (c) => { reqChunks.push(c); upReq.write(c); });
    req.on('end', () => {
      rec.body = parseJson(Buffer.concat(reqChunks));
      upReq.end();
      notify();
    });
    // The client went away (an aborted heartbeat, a closed stream).
    res.on('close', () => {
      if (!res.writableFinished) {
        rec.aborted = true;
        upReq.destroy();
        notify();
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    records,
    // Resolves once some record satisfies pred.
    waitFor(pred, { timeoutMs = 30000, what = 'a request' } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = records.find(pred);
          if (hit) { done(); resolve(hit); }
        };
        const t = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}`)); }, timeoutMs);
        const done = () => { clearTimeout(t); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      agent.destroy();
    },
  };
}

// --- normalisation ---------------------------------------------------------

const ID_RE = /\b(env|work|hc|sesn|sevt|skill|agent|sthr|sesrsc)_[A-Za-z0-9]+/g;

// Replaces ids by placeholders numbered in order of first appearance
// (<sesn#1>, <work#2>, ...), the same id always by the same placeholder, and
// the given literal strings (workspace roots) by their names.
export function normaliser(literals = {}) {
  const seen = new Map();
  const counts = {};
  const lits = Object.entries(literals).filter(([, v]) => v).sort((a, b) => b[1].length - a[1].length);
  const str = (s) => {
    for (const [name, v] of lits) s = s.split(v).join(`<${name}>`);
    return s.replace(ID_RE, (id, prefix) => {
      if (!seen.has(id)) {
        counts[prefix] = (counts[prefix] ?? 0) + 1;
        seen.set(id, `<${prefix}#${counts[prefix]}>`);
      }
      return seen.get(id);
    });
  };
  const deep = (v) => {
    if (typeof v === 'string') return str(v);
    if (Array.isArray(v)) return v.map(deep);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v).sort()) o[k] = deep(v[k]);
      return o;
    }
    return v;
  };
  return { str, deep };
}
