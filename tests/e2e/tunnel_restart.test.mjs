// The gateway across 20 relay restarts (kill -9, start on the same ports).
import assert from 'node:assert/strict';

import { rmSync } from 'node:fs';

import { join } from 'node:path';

import { after, before, describe, test } from 'node:test';
import { startGateway, startRelay } from './lib/tunnel.mjs';
import { client, faultSetup, untilTrue } from './lib/tunnel_faults.mjs';

describe('tunnel relay restarts', () => {
  let dir, hub, setup, rpki, up, hubHttp;

  before(async () => {
    ({ dir, hub, setup, rpki, up, hubHttp } = await faultSetup('airlock-e2e-trestart-'));
  });
  after(async () => {
    await up?.close();
    await hub?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('relay restarted 20 times: the gateway is ready again each time, first connection p50 <= 1 s', async () => {
    let relay = await startRelay(hub, rpki);
    const gw = await startGateway(relay, setup, rpki.ca, { routes: [`app=http://127.0.0.1:${up.port}`] });
    const get = client(relay.clientAddr, setup.operatorCa);
    const app = `app.${setup.tunnel.hostname}`;
    const times = [];
    try {
      assert.equal((await get(app, '/ok')).status, 200);
      for (let i = 0; i < 20; i++) {
        await relay.kill9();
        relay = await startRelay(hub, rpki, { listen: relay.clientAddr, gatewayListen: relay.gatewayAddr });
        const t0 = performance.now();
        await untilTrue(async () => (await get(app, '/ok', { timeoutMs: 2000 }).catch(() => ({}))).status === 200,
          { timeoutMs: 35000, intervalMs: 20, what: `the tunnel after relay restart ${i + 1}` });
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const p50 = times[Math.floor(times.length / 2)];
      assert.equal(times.length, 20);
      assert.ok(p50 <= 1000, `first working connection after a relay restart, p50 ${p50.toFixed(0)} ms (all: ${times.map((t) => t.toFixed(0)).join(' ')})`);
    } finally {
      await get.close();
      await gw.stop();
      await relay.stop();
    }
  });

});
