// The Tunnels API of the hub (docs/internals/TUNNEL.md §1, docs/API.md) and
// the `airlock tunnel` verbs, against a real hub: tunnels and hostnames,
// connector tokens (reveal, rotate, verify), CA certificates and their rules
// (one per PEM, 8 KiB, two active, fingerprint of the DER), archive, and
// bad input. Certificates are made with the openssl CLI in a temp dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startHub, http, tempDir } from './lib/hub.mjs';

const HOST_RE = /^[0-9a-f]{16}\.tunnels\.localhost$/;
const TOKEN_RE = /^tnltok\.tnl_[A-Za-z0-9]+\.[1-9][0-9]*\.[A-Za-z0-9_-]{43}$/;

// A self-signed EC CA: { pem, der sha256 (by openssl), subject, notAfter }.
function makeCa(dir, name, { days = 30 } = {}) {
  const key = join(dir, `${name}.key`), crt = join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', crt, '-days', String(days), '-subj', `/O=airlock e2e/CN=${name}`], { stdio: 'ignore' });
  const der = execFileSync('openssl', ['x509', '-in', crt, '-outform', 'DER']);
  const end = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-enddate']).toString().trim().replace('notAfter=', '');
  return {
    file: crt, keyFile: key, pem: readFileSync(crt, 'utf8'), keyPem: readFileSync(key, 'utf8'),
    sha256: createHash('sha256').update(der).digest('hex'), notAfter: new Date(end), name,
  };
}

function cli(hub, args, { input, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = execFile(BIN, args, {
      env: { ...process.env, AIRLOCK_URL: hub.url, AIRLOCK_API_KEY: hub.apiKey, ...env },
      timeout: 60000,
    }, (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }));
    if (input !== undefined) child.stdin.end(input);
  });
}

async function withHub(fn, opts) {
  const hub = await startHub(opts);
  try {
    await fn(hub);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
}

const post = (hub, path, body, opts = {}) => http(hub, 'POST', path, { body, ...opts });
const get = (hub, path, opts = {}) => http(hub, 'GET', path, opts);

function assertError(r, status, type, code) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, type);
  if (code) assert.equal(r.body.error.details?.error_code, code, JSON.stringify(r.body));
  assert.equal(r.body.request_id, r.headers.get('request-id'));
}

async function create(hub, body = {}) {
  const r = await post(hub, '/v1/tunnels', body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function count(hub) {
  const r = await get(hub, '/v1/tunnels?include_archived=true&limit=100');
  assert.equal(r.status, 200);
  return r.body.data.length;
}

test('tunnels: create, get, list (newest first, pages, include_archived)', () => withHub(async (hub) => {
  const t = await create(hub, { name: 'first', metadata: { team: 'infra' } });
  assert.equal(t.type, 'tunnel');
  assert.match(t.id, /^tnl_[A-Za-z0-9]{24}$/);
  assert.match(t.hostname, HOST_RE);
  assert.equal(t.domain, t.hostname, 'the hosted API calls the hostname "domain"');
  assert.equal(t.name, 'first');
  assert.equal(t.display_name, 'first');
  assert.deepEqual(t.metadata, { team: 'infra' });
  assert.equal(t.archived_at, null);
  assert.equal(t.active_certificates, 0);
  assert.ok(!Number.isNaN(Date.parse(t.created_at)));
  assert.ok(!Object.keys(t).some((k) => k.startsWith('_')), 'no internal field leaks');

  const g = await get(hub, `/v1/tunnels/${t.id}`);
  assert.equal(g.status, 200);
  assert.deepEqual(g.body, t);

  // No body at all, and the hosted API's display_name.
  const bare = await http(hub, 'POST', '/v1/tunnels');
  assert.equal(bare.status, 200, JSON.stringify(bare.body));
  assert.equal(bare.body.name, null);
  const hosted = await create(hub, { display_name: 'hosted-style' });
  assert.equal(hosted.name, 'hosted-style');

  const more = [];
  for (let i = 0; i < 4; i++) more.push(await create(hub, { name: `t${i}` }));
  const all = [t, bare.body, hosted, ...more];
  assert.equal(new Set(all.map((x) => x.hostname)).size, all.length, 'every hostname is different');

  // Newest first, two per page, following next_page to the end.
  const seen = [];
  let page = null;
  for (let i = 0; i < 10; i++) {
    const r = await get(hub, `/v1/tunnels?limit=2${page ? `&page=${encodeURIComponent(page)}` : ''}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.data.length <= 2);
    seen.push(...r.body.data.map((x) => x.id));
    page = r.body.next_page;
    if (!page) break;
  }
  assert.deepEqual(seen, all.map((x) => x.id).reverse());

  const arch = await post(hub, `/v1/tunnels/${more[0].id}/archive`);
  assert.equal(arch.status, 200);
  const live = await get(hub, '/v1/tunnels?limit=100');
  assert.ok(!live.body.data.some((x) => x.id === more[0].id), 'archived tunnels are not listed by default');
  assert.equal(live.body.data.length, all.length - 1);
  const every = await get(hub, '/v1/tunnels?limit=100&include_archived=true');
  assert.equal(every.body.data.length, all.length);
  assert.ok(every.body.data.find((x) => x.id === more[0].id).archived_at);

  assertError(await get(hub, '/v1/tunnels/tnl_doesnotexist'), 404, 'not_found_error', 'tunnel_not_found');
  assertError(await get(hub, '/v1/tunnels?limit=0'), 400, 'invalid_request_error', 'invalid_parameter');
  assertError(await get(hub, '/v1/tunnels?include_archived=maybe'), 400, 'invalid_request_error', 'invalid_parameter');
  assertError(await get(hub, '/v1/tunnels?page=bogus'), 400, 'invalid_request_error', 'invalid_parameter');
}));

test('tunnels: --tunnel-domain sets the hostnames; a bad one stops start-up', async () => {
  await withHub(async (hub) => {
    const t = await create(hub);
    assert.match(t.hostname, /^[0-9a-f]{16}\.mcp\.example\.com$/);
  }, { args: ['--tunnel-domain', 'mcp.example.com'] });

  for (const bad of ['Upper.example', 'a..b', '-lead.example', 'trail-.example', 'dot.', 'x'.repeat(64) + '.com', 'sp ace']) {
    await assert.rejects(startHub({ args: ['--tunnel-domain', bad] }), /tunnel-domain/, bad);
  }
  const help = execFileSync(BIN, ['hub', '--help']).toString();
  assert.match(help, /--tunnel-domain DOMAIN/);
  assert.match(help, /tunnels\.localhost/);
});

test('tunnels: tokens are derived, stable until rotated, verified, and never logged', async () => {
  const dataDir = tempDir();
  let hub = await startHub({ dataDir });
  let t, tok1, tok2;
  try {
    t = await create(hub, { name: 'tok' });
    const key = statSync(join(dataDir, 'tunnel.key'));
    assert.equal(key.size, 32);
    assert.equal(key.mode & 0o777, 0o600);

    const r1 = await post(hub, `/v1/tunnels/${t.id}/reveal_token`);
    assert.equal(r1.status, 200);
    assert.deepEqual(Object.keys(r1.body).sort(), ['token', 'type']);
    assert.equal(r1.body.type, 'tunnel_token');
    tok1 = r1.body.token;
    assert.match(tok1, TOKEN_RE);
    assert.ok(tok1.startsWith(`tnltok.${t.id}.1.`));
    assert.equal((await post(hub, `/v1/tunnels/${t.id}/reveal_token`)).body.token, tok1, 'reveal is stable');

    const v1 = await post(hub, '/v1/tunnels/connect/verify', { token: tok1 });
    assert.equal(v1.status, 200, JSON.stringify(v1.body));
    assert.deepEqual(v1.body, { type: 'tunnel_connect', tunnel_id: t.id, hostname: t.hostname, active_certificates: 0 });

    const rot = await post(hub, `/v1/tunnels/${t.id}/rotate_token`);
    assert.equal(rot.status, 200);
    assert.equal(rot.body.type, 'tunnel_token');
    tok2 = rot.body.token;
    assert.notEqual(tok2, tok1);
    assert.ok(tok2.startsWith(`tnltok.${t.id}.2.`));
    assert.equal((await post(hub, `/v1/tunnels/${t.id}/reveal_token`)).body.token, tok2);

    const stale = await post(hub, '/v1/tunnels/connect/verify', { token: tok1 });
    assertError(stale, 401, 'authentication_error', 'invalid_tunnel_token');
    assert.ok(!JSON.stringify(stale.body).includes(tok1), 'the 401 never echoes the token');
    assert.ok(!JSON.stringify(stale.body).includes(tok1.split('.')[3]));
    assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok2 })).status, 200);

    // Tampering with any part fails the same way.
    const [p, id, gen, mac] = tok2.split('.');
    const flip = (s) => s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    for (const bad of [
      `${p}.${id}.${gen}.${flip(mac)}`, `${p}.${id}.3.${mac}`, `${p}.tnl_doesnotexist.${gen}.${mac}`,
      `${p}.${id}.${gen}.${mac}x`, 'tnltok.', '', 'al-api-not-a-token', tok2.toUpperCase(), `${tok2} `,
    ]) {
      const r = await post(hub, '/v1/tunnels/connect/verify', { token: bad });
      assertError(r, 401, 'authentication_error', 'invalid_tunnel_token');
      if (bad.length > 8) assert.ok(!r.body.error.message.includes(bad), 'message does not echo the token');
    }
    // A token of another hub (another secret) does not verify here.
    const other = await startHub();
    try {
      const ot = await post(other, '/v1/tunnels', {});
      const otok = (await post(other, `/v1/tunnels/${ot.body.id}/reveal_token`)).body.token;
      assertError(await post(hub, '/v1/tunnels/connect/verify', { token: otok }), 401, 'authentication_error');
    } finally {
      await other.stop();
      other.cleanup();
    }

    // The secret survives a restart: the same token still verifies.
    await hub.stop();
    hub = await startHub({ dataDir });
    assert.equal((await post(hub, `/v1/tunnels/${t.id}/reveal_token`)).body.token, tok2);
    assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok2 })).status, 200);
    assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok1 })).status, 401);

    // Archive: every token of the tunnel stops verifying.
    assert.equal((await post(hub, `/v1/tunnels/${t.id}/archive`)).status, 200);
    assertError(await post(hub, '/v1/tunnels/connect/verify', { token: tok2 }), 401, 'authentication_error');
    assertError(await post(hub, `/v1/tunnels/${t.id}/reveal_token`), 400, 'invalid_request_error', 'tunnel_archived');
    assertError(await post(hub, `/v1/tunnels/${t.id}/rotate_token`), 400, 'invalid_request_error', 'tunnel_archived');
  } finally {
    await hub.stop();
    const logs = hub.logs();
    hub.cleanup();
    for (const tok of [tok1, tok2].filter(Boolean)) {
      assert.ok(!logs.includes(tok.split('.')[3]), 'no token MAC in the hub log');
    }
  }
});

test('tunnels: a corrupt or shared tunnel.key stops start-up', async () => {
  const dataDir = tempDir();
  const hub = await startHub({ dataDir });
  await hub.stop();
  const path = join(dataDir, 'tunnel.key');
  writeFileSync(path, 'short', { mode: 0o600 });
  await assert.rejects(startHub({ dataDir }), /tunnel_key/);
  writeFileSync(path, Buffer.alloc(32, 7));
  execFileSync('chmod', ['0644', path]);
  await assert.rejects(startHub({ dataDir }), /tunnel_key/);
  hub.cleanup();
});

test('tunnels: certificates (fingerprint of the DER, one per PEM, 8 KiB, two active)', () => withHub(async (hub) => {
  const dir = tempDir();
  const [ca1, ca2, ca3] = ['ca-one', 'ca-two', 'ca-three'].map((n) => makeCa(dir, n));
  const t = await create(hub, { name: 'certs' });
  const base = `/v1/tunnels/${t.id}/certificates`;

  const c1 = await post(hub, base, { ca_certificate_pem: ca1.pem });
  assert.equal(c1.status, 200, JSON.stringify(c1.body));
  assert.equal(c1.body.type, 'tunnel_certificate');
  assert.match(c1.body.id, /^tcrt_/);
  assert.equal(c1.body.tunnel_id, t.id);
  assert.equal(c1.body.fingerprint_sha256, ca1.sha256, 'SHA-256 of `openssl x509 -outform DER`');
  assert.equal(c1.body.fingerprint, ca1.sha256);
  assert.equal(c1.body.subject, 'CN=ca-one,O=airlock e2e');
  assert.equal(Date.parse(c1.body.not_after), ca1.notAfter.getTime());
  assert.equal(c1.body.expires_at, c1.body.not_after);
  assert.equal(c1.body.archived_at, null);
  assert.ok(!('_pem' in c1.body) && !('ca_certificate_pem' in c1.body));
  assert.equal((await get(hub, `/v1/tunnels/${t.id}`)).body.active_certificates, 1);

  // airlock's field name works too.
  const c2 = await post(hub, base, { certificate_pem: ca2.pem });
  assert.equal(c2.status, 200, JSON.stringify(c2.body));
  assert.equal(c2.body.fingerprint_sha256, ca2.sha256);
  assert.equal((await get(hub, `/v1/tunnels/${t.id}`)).body.active_certificates, 2);

  // A third active one is refused, and nothing is added.
  const c3 = await post(hub, base, { ca_certificate_pem: ca3.pem });
  assertError(c3, 400, 'invalid_request_error', 'too_many_certificates');
  assert.match(c3.body.error.message, /2 active certificates/);
  assert.equal((await get(hub, `${base}?include_archived=true`)).body.data.length, 2);

  const g = await get(hub, `${base}/${c1.body.id}`);
  assert.equal(g.status, 200);
  assert.deepEqual(g.body, c1.body);
  const list = await get(hub, base);
  assert.deepEqual(list.body.data.map((c) => c.id), [c2.body.id, c1.body.id], 'newest first');
  assert.equal(list.body.next_page, null);
  const page1 = await get(hub, `${base}?limit=1`);
  assert.equal(page1.body.data.length, 1);
  assert.ok(page1.body.next_page);

  // Archive one: idempotent, no longer active, and room for the third.
  const a1 = await post(hub, `${base}/${c1.body.id}/archive`);
  assert.equal(a1.status, 200);
  assert.ok(a1.body.archived_at);
  const a1again = await post(hub, `${base}/${c1.body.id}/archive`);
  assert.deepEqual(a1again.body, a1.body, 'archiving again returns the record unchanged');
  assert.equal((await get(hub, `/v1/tunnels/${t.id}`)).body.active_certificates, 1);
  assert.deepEqual((await get(hub, base)).body.data.map((c) => c.id), [c2.body.id]);
  assert.equal((await get(hub, `${base}?include_archived=true`)).body.data.length, 2);
  const c3b = await post(hub, base, { ca_certificate_pem: ca3.pem });
  assert.equal(c3b.status, 200, JSON.stringify(c3b.body));
  assert.equal(c3b.body.fingerprint_sha256, ca3.sha256);

  // verify reports the live count.
  const tok = (await post(hub, `/v1/tunnels/${t.id}/reveal_token`)).body.token;
  assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok })).body.active_certificates, 2);

  // Another tunnel's certificate reads as missing under this one.
  const t2 = await create(hub);
  assertError(await get(hub, `/v1/tunnels/${t2.id}/certificates/${c2.body.id}`), 404, 'not_found_error',
    'tunnel_certificate_not_found');
  assertError(await post(hub, `/v1/tunnels/${t2.id}/certificates/${c2.body.id}/archive`), 404, 'not_found_error');
  assertError(await get(hub, `${base}/tcrt_nope`), 404, 'not_found_error', 'tunnel_certificate_not_found');
  assertError(await get(hub, '/v1/tunnels/tnl_nope/certificates'), 404, 'not_found_error', 'tunnel_not_found');
  assertError(await post(hub, '/v1/tunnels/tnl_nope/certificates', { ca_certificate_pem: ca1.pem }), 404,
    'not_found_error', 'tunnel_not_found');

  // The PEM rules, on a tunnel with room, each refused with nothing added.
  const t3 = await create(hub);
  const b3 = `/v1/tunnels/${t3.id}/certificates`;
  const refused = async (body, code, re) => {
    const r = await post(hub, b3, body);
    assertError(r, 400, 'invalid_request_error', code);
    if (re) assert.match(r.body.error.message, re);
  };
  await refused({ ca_certificate_pem: ca1.pem + ca2.pem }, 'invalid_certificate', /exactly one certificate/);
  await refused({ ca_certificate_pem: ca1.pem + ca1.keyPem }, 'invalid_certificate', /private-key/);
  await refused({ ca_certificate_pem: ca1.keyPem }, 'invalid_certificate', /private-key/);
  await refused({ ca_certificate_pem: 'hello' }, 'invalid_certificate', /no PEM certificate/);
  await refused({ ca_certificate_pem: '' }, 'invalid_certificate');
  await refused({ ca_certificate_pem: ca1.pem.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!') }, 'invalid_certificate',
    /not a PEM-encoded X\.509/);
  await refused({ ca_certificate_pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
    'invalid_certificate');
  // 8 KiB: explanatory text before the PEM counts. 8192 bytes pass, 8193 do not.
  const pad = (n) => `${'#'.repeat(n - ca1.pem.length - 1)}\n${ca1.pem}`;
  await refused({ ca_certificate_pem: pad(8193) }, 'certificate_too_large', /8192/);
  await refused({ ca_certificate_pem: 42 }, 'invalid_request', /must be a string/);
  await refused({}, 'invalid_request', /is required/);
  await refused({ ca_certificate_pem: ca1.pem, certificate_pem: ca1.pem }, 'invalid_request', /not both/);
  await refused({ ca_certificate_pem: ca1.pem, extra: 1 }, 'invalid_request', /extra: unknown field/);
  assertError(await post(hub, b3, '{"ca_certificate_pem": '), 400, 'invalid_request_error', 'invalid_json');
  assertError(await post(hub, b3, '["x"]'), 400, 'invalid_request_error', 'invalid_request');
  assert.equal((await get(hub, `${b3}?include_archived=true`)).body.data.length, 0, 'nothing was added');
  const exact = await post(hub, b3, { ca_certificate_pem: pad(8192) });
  assert.equal(exact.status, 200, JSON.stringify(exact.body));
  assert.equal(exact.body.fingerprint_sha256, ca1.sha256);
  // A body far over the route's cap is refused before it is parsed.
  const huge = await post(hub, b3, { ca_certificate_pem: 'x'.repeat(70000) });
  assertError(huge, 413, 'invalid_request_error', 'request_too_large');
}));

test('tunnels: archive is irreversible, archives the certificates, keeps the hostname', () => withHub(async (hub) => {
  const dir = tempDir();
  const [ca1, ca2] = ['arch-one', 'arch-two'].map((n) => makeCa(dir, n));
  const t = await create(hub, { name: 'to-archive' });
  const base = `/v1/tunnels/${t.id}/certificates`;
  const c1 = (await post(hub, base, { ca_certificate_pem: ca1.pem })).body;
  const c2 = (await post(hub, base, { ca_certificate_pem: ca2.pem })).body;
  const tok = (await post(hub, `/v1/tunnels/${t.id}/reveal_token`)).body.token;

  const verifications = async () => {
    const m = (await http(hub, 'GET', '/metrics', { key: null })).body;
    const v = (result) => Number(m.match(new RegExp(`^airlock_hub_tunnel_verifications_total\\{result="${result}"\\} (\\d+)$`, 'm'))[1]);
    return { ok: v('ok'), rejected: v('rejected') };
  };
  const m0 = await verifications();
  assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok })).status, 200);

  const a = await post(hub, `/v1/tunnels/${t.id}/archive`);
  assert.equal(a.status, 200);
  assert.ok(a.body.archived_at);
  assert.equal(a.body.active_certificates, 0);
  assert.equal(a.body.hostname, t.hostname, 'the archived tunnel keeps its hostname');
  for (const c of [c1, c2]) {
    const g = await get(hub, `${base}/${c.id}`);
    assert.equal(g.body.archived_at, a.body.archived_at, 'certificates are archived with the tunnel');
  }
  assert.equal((await get(hub, base)).body.data.length, 0);

  const again = await post(hub, `/v1/tunnels/${t.id}/archive`);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, a.body, 'archiving again returns the record unchanged');

  assertError(await post(hub, '/v1/tunnels/connect/verify', { token: tok }), 401, 'authentication_error');
  assert.deepEqual(await verifications(), { ok: m0.ok + 1, rejected: m0.rejected + 1 }, 'verify outcomes are counted');
  assertError(await post(hub, base, { ca_certificate_pem: ca1.pem }), 400, 'invalid_request_error', 'tunnel_archived');
  assertError(await post(hub, `/v1/tunnels/${t.id}/rotate_token`), 400, 'invalid_request_error', 'tunnel_archived');
  assertError(await post(hub, '/v1/tunnels/tnl_nope/archive'), 404, 'not_found_error', 'tunnel_not_found');
  // Archived certificates stay archived and readable.
  const ca = await post(hub, `${base}/${c1.id}/archive`);
  assert.equal(ca.status, 200);
  assert.equal(ca.body.archived_at, a.body.archived_at);

  const later = [];
  for (let i = 0; i < 5; i++) later.push(await create(hub));
  assert.ok(!later.some((x) => x.hostname === t.hostname), 'no new tunnel gets the retired hostname');
}));

test('tunnels: bad input and credentials change nothing', () => withHub(async (hub) => {
  const before = await count(hub);
  const bad = [
    ['{"name": ', 'invalid_json'],
    ['[1]', 'invalid_request'],
    ['"x"', 'invalid_request'],
    [{ name: 5 }, 'invalid_request'],
    [{ name: '' }, 'invalid_request'],
    [{ name: 'x'.repeat(256) }, 'invalid_request'],
    [{ display_name: ['x'] }, 'invalid_request'],
    [{ name: 'a', display_name: 'b' }, 'invalid_request'],
    [{ hostname: 'mine.tunnels.localhost' }, 'invalid_request'],
    [{ id: 'tnl_mine' }, 'invalid_request'],
    [{ metadata: { k: 5 } }, 'invalid_metadata'],
    [{ metadata: 'x' }, 'invalid_metadata'],
  ];
  for (const [body, code] of bad) {
    const r = await post(hub, '/v1/tunnels', body);
    assertError(r, 400, 'invalid_request_error', code);
  }
  const big = await post(hub, '/v1/tunnels', { name: 'x', metadata: { k: 'v'.repeat(5 << 20) } });
  assertError(big, 413, 'invalid_request_error', 'request_too_large');
  assert.equal(await count(hub), before, 'no tunnel was created');
  assert.equal((await create(hub, { name: 'x'.repeat(255) })).name.length, 255);

  // verify's own input.
  for (const [body, code] of [['{', 'invalid_json'], [{}, 'invalid_request'], [{ token: 5 }, 'invalid_request'],
    [{ token: 'x', extra: true }, 'invalid_request'], ['null', 'invalid_request']]) {
    assertError(await post(hub, '/v1/tunnels/connect/verify', body), 400, 'invalid_request_error', code);
  }
  assertError(await http(hub, 'POST', '/v1/tunnels/connect/verify'), 400, 'invalid_request_error');
  assertError(await post(hub, '/v1/tunnels/connect/verify', { token: 'x'.repeat(100000) }), 401,
    'authentication_error', 'invalid_tunnel_token');
  // "connect" is not a tunnel id: the verify route is matched first, and
  // other methods or paths under it are not verify.
  assertError(await get(hub, '/v1/tunnels/connect/verify'), 405, 'invalid_request_error');
  assertError(await get(hub, '/v1/tunnels/connect'), 404, 'not_found_error', 'tunnel_not_found');

  // Credentials: none, wrong, and an environment key (not the API key).
  const t = await create(hub);
  const tok = (await post(hub, `/v1/tunnels/${t.id}/reveal_token`)).body.token;
  assertError(await http(hub, 'GET', '/v1/tunnels', { key: null }), 401, 'authentication_error');
  assertError(await http(hub, 'POST', '/v1/tunnels/connect/verify', { key: null, body: { token: tok } }), 401,
    'authentication_error', 'missing_credential');
  assertError(await http(hub, 'POST', '/v1/tunnels/connect/verify', { key: 'al-api-wrong-0123456789', body: { token: tok } }),
    401, 'authentication_error', 'invalid_credential');
  assertError(await http(hub, 'POST', '/v1/tunnels/connect/verify', { key: tok, body: { token: tok } }), 401,
    'authentication_error', 'invalid_credential');
  const env = await post(hub, '/v1/environments', { name: 'e', config: { type: 'self_hosted' } });
  const envKey = (await post(hub, `/v1/environments/${env.body.id}/keys`)).body.key;
  for (const [m, p, b] of [['POST', '/v1/tunnels', {}], ['GET', '/v1/tunnels'], ['GET', `/v1/tunnels/${t.id}`],
    ['POST', `/v1/tunnels/${t.id}/reveal_token`], ['POST', `/v1/tunnels/${t.id}/rotate_token`],
    ['POST', `/v1/tunnels/${t.id}/archive`], ['GET', `/v1/tunnels/${t.id}/certificates`],
    ['POST', '/v1/tunnels/connect/verify', { token: tok }]]) {
    assertError(await http(hub, m, p, { key: envKey, body: b }), 403, 'permission_error', 'permission_denied');
  }
  const still = await get(hub, `/v1/tunnels/${t.id}`);
  assert.equal(still.body.archived_at, null, 'the refused archive did nothing');
  assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok })).status, 200, 'nor the refused rotate');
}));

test('tunnels: the airlock tunnel verbs', () => withHub(async (hub) => {
  const dir = tempDir();
  const [ca1, ca2, ca3] = ['cli-one', 'cli-two', 'cli-three'].map((n) => makeCa(dir, n));

  const c = await cli(hub, ['tunnel', 'create', '--name', 'from-cli']);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  assert.match(id, /^tnl_[A-Za-z0-9]{24}$/, 'create prints the id alone');
  const t = (await get(hub, `/v1/tunnels/${id}`)).body;
  assert.equal(t.name, 'from-cli');

  const g = await cli(hub, ['tunnel', 'get', id]);
  assert.equal(g.code, 0, g.stderr);
  assert.match(g.stdout, new RegExp(`^${id}  hostname=${t.hostname.replace(/\./g, '\\.')}  name=from-cli  active_certificates=0\\n$`));
  const gj = await cli(hub, ['tunnel', 'get', id, '--json']);
  assert.deepEqual(JSON.parse(gj.stdout), t);

  const other = await cli(hub, ['tunnel', 'create']);
  assert.equal(other.code, 0, other.stderr);
  const l = await cli(hub, ['tunnel', 'list']);
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual(l.stdout.trim().split('\n').map((line) => line.split(' ')[0]), [other.stdout.trim(), id]);

  const rv = await cli(hub, ['tunnel', 'token', 'reveal', id]);
  assert.equal(rv.code, 0, rv.stderr);
  const tok1 = rv.stdout.trim();
  assert.match(tok1, TOKEN_RE);
  assert.equal(rv.stdout, `${tok1}\n`, 'the token alone, for a --token-file');
  assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok1 })).status, 200);
  const rt = await cli(hub, ['tunnel', 'token', 'rotate', id]);
  assert.equal(rt.code, 0, rt.stderr);
  const tok2 = rt.stdout.trim();
  assert.notEqual(tok2, tok1);
  assert.equal((await post(hub, '/v1/tunnels/connect/verify', { token: tok1 })).status, 401);
  assert.equal((await cli(hub, ['tunnel', 'token', 'reveal', id])).stdout.trim(), tok2);

  const add = await cli(hub, ['tunnel', 'cert', 'add', id, ca1.file]);
  assert.equal(add.code, 0, add.stderr);
  const certId = add.stdout.split(' ')[0];
  assert.match(certId, /^tcrt_/);
  assert.match(add.stdout, new RegExp(`fingerprint_sha256=${ca1.sha256}`));
  assert.match(add.stdout, /subject=CN=cli-one,O=airlock e2e/);
  const add2 = await cli(hub, ['tunnel', 'cert', 'add', id, '-'], { input: ca2.pem });
  assert.equal(add2.code, 0, add2.stderr);
  const add3 = await cli(hub, ['tunnel', 'cert', 'add', id, ca3.file]);
  assert.equal(add3.code, 1);
  assert.match(add3.stderr, /error: invalid_request_error: the tunnel already has 2 active certificates/);
  const two = await cli(hub, ['tunnel', 'cert', 'add', id, '-'], { input: ca1.pem + ca2.pem });
  assert.equal(two.code, 1);
  assert.match(two.stderr, /exactly one certificate/);
  const bigFile = join(dir, 'big.pem');
  writeFileSync(bigFile, `${'#'.repeat(9000)}\n${ca1.pem}`);
  const big = await cli(hub, ['tunnel', 'cert', 'add', id, bigFile]);
  assert.equal(big.code, 1);
  assert.match(big.stderr, /at most 8192/);
  const missing = await cli(hub, ['tunnel', 'cert', 'add', id, join(dir, 'nope.pem')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot open/);

  const cl = await cli(hub, ['tunnel', 'cert', 'list', id]);
  assert.equal(cl.code, 0, cl.stderr);
  assert.equal(cl.stdout.trim().split('\n').length, 2);
  const cg = await cli(hub, ['tunnel', 'cert', 'get', id, certId, '--json']);
  assert.equal(JSON.parse(cg.stdout).fingerprint_sha256, ca1.sha256);
  const ca = await cli(hub, ['tunnel', 'cert', 'archive', id, certId]);
  assert.equal(ca.code, 0, ca.stderr);
  assert.match(ca.stdout, /archived_at=/);
  assert.equal((await cli(hub, ['tunnel', 'cert', 'list', id])).stdout.trim().split('\n').length, 1);
  assert.equal((await cli(hub, ['tunnel', 'cert', 'list', id, '--include-archived'])).stdout.trim().split('\n').length, 2);

  const ar = await cli(hub, ['tunnel', 'archive', id]);
  assert.equal(ar.code, 0, ar.stderr);
  assert.match(ar.stdout, /archived_at=/);
  const la = await cli(hub, ['tunnel', 'list', '--include-archived']);
  assert.equal(la.stdout.trim().split('\n').length, 2);
  const ld = await cli(hub, ['tunnel', 'list']);
  assert.equal(ld.stdout.trim().split('\n').map((line) => line.split(' ')[0]).join(), other.stdout.trim(),
    'archived tunnels are not listed by default');
  const after = await cli(hub, ['tunnel', 'token', 'reveal', id]);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /error: invalid_request_error: the tunnel is archived/);

  const nf = await cli(hub, ['tunnel', 'get', 'tnl_nope']);
  assert.equal(nf.code, 1);
  assert.match(nf.stderr, /error: not_found_error: tunnel not found/);

  // --help everywhere, and usage errors.
  const top = await cli(hub, ['tunnel', '--help']);
  assert.equal(top.code, 0);
  for (const v of ['create', 'list', 'get TUNNEL_ID', 'archive TUNNEL_ID', 'token reveal TUNNEL_ID',
    'token rotate TUNNEL_ID', 'cert add TUNNEL_ID FILE', 'cert list TUNNEL_ID', 'cert get TUNNEL_ID CERT_ID',
    'cert archive TUNNEL_ID CERT_ID']) {
    assert.ok(top.stdout.includes(`  ${v} `), `tunnel --help lists "${v}"`);
    const words = v.split(' ').filter((w) => w === w.toLowerCase());
    const h = await cli(hub, ['tunnel', ...words, '--help']);
    assert.equal(h.code, 0, `${v} --help`);
    assert.match(h.stdout, new RegExp(`^usage: airlock tunnel ${v.replace(/ /g, ' ')} `));
    assert.match(h.stdout, /--url URL/);
  }
  assert.match((await cli(hub, ['tunnel', 'create', '--help'])).stdout, /--name NAME/);
  assert.match((await cli(hub, ['tunnel', 'list', '--help'])).stdout, /--include-archived/);
  assert.equal((await cli(hub, ['tunnel'])).code, 2);
  const unk = await cli(hub, ['tunnel', 'frobnicate']);
  assert.equal(unk.code, 2);
  assert.match(unk.stderr, /unknown verb "frobnicate"/);
  const use = await cli(hub, ['tunnel', 'get']);
  assert.equal(use.code, 2);
  assert.match(use.stderr, /usage: airlock tunnel get TUNNEL_ID/);
  assert.equal((await cli(hub, ['tunnel', 'cert', 'add', id])).code, 2);
  assert.equal((await cli(hub, ['tunnel', 'list'], { env: { AIRLOCK_API_KEY: 'al-api-wrong-0123456789' } })).code, 1);
}));
