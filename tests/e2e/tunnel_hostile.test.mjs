// Hostile input at both relay listeners: garbage and truncated
// ClientHellos, unknown SNI, wrong tokens, thousands of connections.
import assert from 'node:assert/strict';

import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';

import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { TUNNEL_DOMAIN, startGateway, startRelay } from './lib/tunnel.mjs';
import { client, faultSetup, rssKb, upgrade } from './lib/tunnel_faults.mjs';

describe('tunnel hostile input', () => {
  let dir, hub, setup, rpki, up, hubHttp;

  before(async () => {
    ({ dir, hub, setup, rpki, up, hubHttp } = await faultSetup('airlock-e2e-thostile-'));
  });
  after(async () => {
    await up?.close();
    await hub?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('hostile input at the relay', () => {
    let relay, gw, get, app;
    before(async () => {
      // RSS is compared below: keep AddressSanitizer's quarantine of freed
      // memory (256 MiB by default) out of the number.
      const asan = process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : '';
      relay = await startRelay(hub, rpki, {
        args: ['--handshake-timeout', '1s', '--max-pending-per-ip', '16'],
        env: { ASAN_OPTIONS: `${asan}quarantine_size_mb=1:thread_local_quarantine_size_kb=64` },
      });
      gw = await startGateway(relay, setup, rpki.ca, { routes: [`app=http://127.0.0.1:${up.port}`], args: ['--connections', '1'] });
      get = client(relay.clientAddr, setup.operatorCa);
      app = `app.${setup.tunnel.hostname}`;
      assert.equal((await get(app, '/ok')).status, 200);
    });
    after(async () => {
      await get?.close();
      await gw?.stop();
      await relay?.stop();
    });

    const raw = (addr, bytes, { end = true } = {}) => new Promise((resolve) => {
      const i = addr.lastIndexOf(':');
      const s = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i), () => { s.write(bytes); if (end) s.end(); });
      const t0 = performance.now();
      let got = Buffer.alloc(0);
      s.on('data', (d) => { got = Buffer.concat([got, d]); });
      s.on('error', () => {});
      s.on('close', () => resolve({ got, ms: performance.now() - t0 }));
    });

    test('garbage and truncated ClientHellos are closed; a stalled one at the deadline', async () => {
      const g = await raw(relay.clientAddr, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      assert.ok(g.got.length === 0 || g.got[0] === 0x15, 'garbage gets nothing or a TLS alert');
      // A record header promising 512 bytes of handshake, then silence.
      const trunc = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
      const s = await raw(relay.clientAddr, trunc, { end: false });
      assert.ok(s.ms >= 800 && s.ms < 5000, `stalled ClientHello closed at the 1 s deadline (${s.ms.toFixed(0)} ms)`);
      // A ClientHello with a server_name extension whose lengths lie.
      const lie = Buffer.from('160301002f0100002b0303' + '00'.repeat(32) + '000002130101000000' + '00000008ffff', 'hex');
      await raw(relay.clientAddr, lie);
      assert.equal((await get(app, '/ok')).status, 200, 'the relay still serves');
    });

    test('an unknown SNI is refused with a TLS alert', async () => {
      const i = relay.clientAddr.lastIndexOf(':');
      const err = await new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: Number(relay.clientAddr.slice(i + 1)), servername: `nope.unknown.${TUNNEL_DOMAIN}`, ca: readFileSync(setup.operatorCa) },
          () => { s.destroy(); resolve(null); });
        s.on('error', resolve);
      });
      assert.ok(err, 'the handshake failed');
      assert.match(String(err.code ?? err.message), /UNRECOGNIZED_NAME|ALERT|ECONNRESET|socket hang up|disconnected/i);
    });

    test('wrong tokens are refused in the platform error shape', async () => {
      for (const bad of ['nope', `tnltok.${setup.tunnel.id}.0.AAAA`, `${setup.token}x`, 'a'.repeat(6000)]) {
        const r = await upgrade(relay.gatewayAddr, rpki.ca, bad);
        assert.ok([400, 401, 431].includes(r.status), `refused: ${r.status} ${r.text.slice(0, 200)}`);
        if (r.status === 401) {
          const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
          assert.equal(body.type, 'error');
          assert.equal(body.error.type, 'authentication_error');
        }
        assert.ok(!r.text.includes(bad.slice(0, 40)) || bad === 'nope', 'the token is not echoed');
      }
    });

    test('thousands of connections (bad gateways, idle and garbage clients): refused, memory bounded, service intact', async () => {
      const before0 = rssKb(relay.pid);
      // 1500 bad-token gateway connections, 50 at a time.
      let refused = 0;
      for (let k = 0; k < 30; k++) {
        const rs = await Promise.all(Array.from({ length: 50 }, () => upgrade(relay.gatewayAddr, rpki.ca, 'tnltok.x.0.y').catch(() => ({ status: -1 }))));
        refused += rs.filter((r) => r.status !== 101).length;
      }
      assert.equal(refused, 1500);
      // 2000 garbage client connections.
      for (let k = 0; k < 20; k++) {
        await Promise.all(Array.from({ length: 100 }, () => raw(relay.clientAddr, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))));
      }
      // More pending handshakes from one address than the cap: the excess is closed at once.
      const held = [];
      const closedEarly = await new Promise((resolve) => {
        let early = 0;
        let n = 0;
        for (let k = 0; k < 40; k++) {
          const i = relay.clientAddr.lastIndexOf(':');
          const s = net.connect(Number(relay.clientAddr.slice(i + 1)), '127.0.0.1');
          const t0 = performance.now();
          s.on('error', () => {});
          s.on('close', () => { if (performance.now() - t0 < 700) early++; if (++n === 40) resolve(early); });
          held.push(s);
        }
      });
      for (const h of held) h.destroy();
      assert.ok(closedEarly >= 40 - 16 - 2, `connections beyond the per-address cap closed promptly (${closedEarly})`);
      const grown = rssKb(relay.pid) - before0;
      assert.ok(grown < 20 * 1024, `relay RSS grew by ${grown} KiB`);
      assert.equal(relay.proc.exitCode, null, 'the relay is alive');
      assert.equal((await get(app, '/ok')).status, 200, 'and serves');
    });
  });
});
