// The tunnel under faults, with real processes: token rotation with open
// streams, a planned relay shutdown (GOAWAY drain) with two relays, and a
// silently dropped link (packets discarded by nftables in a network
// namespace the test makes). The upstream is an HTTP server in this process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

import { join } from 'node:path';

import { after, before, describe, test } from 'node:test';
import { canNetns, freePort, netns, startGateway, startRelay } from './lib/tunnel.mjs';
import { MUST, client, faultSetup, readyz, tick, untilTrue, upgrade } from './lib/tunnel_faults.mjs';

describe('tunnel faults', () => {
  let dir, hub, setup, rpki, up, hubHttp;

  before(async () => {
    ({ dir, hub, setup, rpki, up, hubHttp } = await faultSetup('airlock-e2e-tfault-'));
  });
  after(async () => {
    await up?.close();
    await hub?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('rotate_token: open streams continue, the old token is refused, the gateway given the new token serves every request', async () => {
    const relay = await startRelay(hub, rpki);
    const tokenFile = join(dir, 'rotate.token');
    writeFileSync(tokenFile, readFileSync(setup.tokenFile));
    const gw = await startGateway(relay, { ...setup, tokenFile }, rpki.ca, {
      routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '2', '--drain-timeout', '10s'],
    });
    const get = client(relay.clientAddr, setup.operatorCa);
    const app = `app.${setup.tunnel.hostname}`;
    let stop = false;
    try {
      assert.equal((await get(app, '/ok')).status, 200);
      // A 4 s event stream opened before the rotation.
      const sse = await get.stream(app, '/sse?n=400&ms=10');
      const sseText = sse.text();
      // Requests on fresh connections all through the rotation.
      const results = [];
      const loop = (async () => {
        while (!stop) {
          const r = await get(app, '/ok').catch((e) => ({ status: 0, body: String(e) }));
          results.push(r);
          await tick(5);
        }
      })();
      const rot = await hubHttp(hub, 'POST', `/v1/tunnels/${setup.tunnel.id}/rotate_token`);
      assert.equal(rot.status, 200);
      const newToken = rot.body.token;
      assert.notEqual(newToken, setup.token);
      const old = await upgrade(relay.gatewayAddr, rpki.ca, setup.token);
      assert.equal(old.status, 401, `old token refused for a new connection: ${old.text}`);
      assert.match(old.text, /authentication_error/);
      assert.ok(!old.text.includes(setup.token), 'the refusal does not echo the token');
      assert.equal((await upgrade(relay.gatewayAddr, rpki.ca, newToken)).status, 101, 'the new token is accepted');
      writeFileSync(tokenFile, `${newToken}\n`);
      const body = await sseText;
      assert.equal(body.match(/^data: /gm)?.length, 400, 'the stream opened before the rotation delivered every event');
      // A while longer on the new connections, then stop the loop.
      await tick(1000);
      stop = true;
      await loop;
      assert.ok(results.length > 50, `requests ran through the rotation (${results.length})`);
      assert.deepEqual(results.filter((r) => r.status !== 200), [], 'no request failed during the rotation');
      // The old connections are gone: a restarted relay only lets the new token in,
      // and the gateway gets ready again, so it holds the new token.
      await relay.kill9();
      const relay2 = await startRelay(hub, rpki, { listen: relay.clientAddr, gatewayListen: relay.gatewayAddr });
      try {
        await untilTrue(async () => (await get(app, '/ok', { timeoutMs: 2000 }).catch(() => ({}))).status === 200,
          { timeoutMs: 20000, intervalMs: 100, what: 'the gateway back with the new token' });
      } finally {
        await relay2.stop();
      }
    } finally {
      stop = true;
      await get.close();
      await gw.stop();
      await relay.kill9();
      // Restore: later tests use setup.token.
      setup.token = (await hubHttp(hub, 'POST', `/v1/tunnels/${setup.tunnel.id}/reveal_token`)).body.token;
      writeFileSync(setup.tokenFile, `${setup.token}\n`);
    }
  });

  test('planned relay shutdown (GOAWAY drain, two relays): no request fails', async () => {
    const a = await startRelay(hub, rpki, { args: ['--drain-timeout', '10s'] });
    const b = await startRelay(hub, rpki);
    const admin = `127.0.0.1:${await freePort()}`;
    const gw = await startGateway([a, b], setup, rpki.ca, {
      routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '2', '--admin-listen', admin],
    });
    const viaA = client(a.clientAddr, setup.operatorCa);
    const viaB = client(b.clientAddr, setup.operatorCa);
    const app = `app.${setup.tunnel.hostname}`;
    try {
      // Both relays carry the tunnel (slots spread over the relays).
      await untilTrue(async () => (await viaB(app, '/ok').catch(() => ({}))).status === 200, { what: 'relay B ready', timeoutMs: 10000 });
      assert.equal((await viaA(app, '/ok')).status, 200);
      const inflight = Array.from({ length: 5 }, () => viaA(app, '/slow?ms=1500'));
      // In flight at the gateway before the shutdown starts.
      await tick(300);
      a.signal('SIGTERM');
      const during = [];
      for (let i = 0; i < 20; i++) during.push(await viaB(app, '/ok').catch((e) => ({ status: 0, body: String(e) })));
      const done = await Promise.all(inflight.map((p) => p.catch((e) => ({ status: 0, body: String(e) }))));
      assert.deepEqual(done.map((r) => r.status), [200, 200, 200, 200, 200], `in-flight requests finished: ${JSON.stringify(done)}`);
      assert.deepEqual(during.filter((r) => r.status !== 200), [], 'requests through the other relay never failed');
      const ex = await a.exited;
      assert.equal(ex.code, 0, `relay A drained and exited cleanly:\n${a.logs().slice(-2000)}`);
      assert.equal(await readyz(admin), 200, 'the gateway stays ready on relay B');
      assert.equal((await viaB(app, '/ok')).status, 200);
    } finally {
      await viaA.close();
      await viaB.close();
      await gw.stop();
      await a.kill9();
      await b.stop();
    }
  });

  test('a silently dropped link (packets discarded) is detected within 25 s, and the gateway recovers', async (t) => {
    const why = canNetns() ?? (spawnSync('nft', ['--version']).status === 0 ? null : 'nft (nftables) is not installed');
    if (why) {
      if (MUST) assert.fail(why);
      t.skip(why);
      return;
    }
    const n = await netns([]);
    let relay, gw;
    try {
      const hubPort = new URL(hub.url).port;
      await n.bridge(Number(hubPort), `127.0.0.1:${hubPort}`);
      await n.bridge(up.port, `127.0.0.1:${up.port}`);
      relay = await startRelay({ ...hub, url: `http://127.0.0.1:${hubPort}` }, rpki,
        { prefix: n.prefix, listen: '127.0.0.1:8443', gatewayListen: '127.0.0.1:7844' });
      gw = await startGateway('127.0.0.1:7844', setup, rpki.ca, {
        prefix: n.prefix, routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '1', '--admin-listen', '127.0.0.1:9901'],
      });
      const admin = await n.expose(9901);
      const clientAddr = await n.expose(8443);
      const get = client(clientAddr, setup.operatorCa);
      const app = `app.${setup.tunnel.hostname}`;
      try {
        assert.equal((await get(app, '/ok')).status, 200);
        assert.equal(await readyz(admin), 200);
        n.exec('nft', 'add', 'table', 'inet', 'airlock_e2e');
        n.exec('nft', 'add', 'chain', 'inet', 'airlock_e2e', 'out', '{ type filter hook output priority 0; }');
        n.exec('nft', 'add', 'rule', 'inet', 'airlock_e2e', 'out', 'tcp', 'dport', '7844', 'drop');
        n.exec('nft', 'add', 'rule', 'inet', 'airlock_e2e', 'out', 'tcp', 'sport', '7844', 'drop');
        const t0 = performance.now();
        await untilTrue(async () => (await readyz(admin)) === 503, { timeoutMs: 30000, intervalMs: 200, what: 'the gateway to notice the dead link' });
        const detected = performance.now() - t0;
        assert.ok(detected <= 25000, `detected after ${(detected / 1000).toFixed(1)} s`);
        n.exec('nft', 'delete', 'table', 'inet', 'airlock_e2e');
        await untilTrue(async () => (await get(app, '/ok', { timeoutMs: 2000 }).catch(() => ({}))).status === 200,
          { timeoutMs: 40000, intervalMs: 200, what: 'the tunnel back after the link returns' });
        assert.equal(await readyz(admin), 200);
      } finally {
        await get.close();
      }
    } finally {
      await gw?.stop();
      await relay?.stop();
      await n.close();
    }
  });

});
