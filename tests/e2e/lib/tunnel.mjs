// The MCP tunnel harness: a test PKI made with the openssl CLI, a tunnel
// created through the hub's API, and the real relay, gateway and upstream
// processes on loopback, each reporting readiness on fd 3 (no sleeps, no
// guessed ports). See docs/internals/TUNNEL.md for the contract they follow.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Agent, fetch as ufetch } from 'undici';
import { ip } from './escape.mjs';
import { BIN, http, tempDir } from './hub.mjs';

export { canNetns, ip } from './escape.mjs';

export const TUNNEL_DOMAIN = 'tunnel.test';

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// A CA (ECDSA P-256) and a leaf it signs for the given DNS names and IPs.
// Returns { ca, cert, key, chain } (paths). The CA key stays in dir.
export function makeCa(dir, name) {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name} test CA`, '-keyout', `${name}-ca.key`, '-out', `${name}-ca.pem`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, name, ca: join(dir, `${name}-ca.pem`), caKey: join(dir, `${name}-ca.key`) };
}

export function issue(ca, leaf, { dns = [], ips = [] }) {
  const { dir } = ca;
  const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)].join(',');
  writeFileSync(join(dir, `${leaf}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${dns[0] ?? ips[0]}`,
    '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`], dir);
  openssl(['x509', '-req', '-in', `${leaf}.csr`, '-CA', ca.ca, '-CAkey', ca.caKey, '-CAcreateserial', '-days', '2',
    '-extfile', `${leaf}.ext`, '-out', `${leaf}.pem`], dir);
  return { cert: join(dir, `${leaf}.pem`), key: join(dir, `${leaf}.key`), ca: ca.ca };
}

// Creates a tunnel, reveals its token into a file, registers the operator CA
// and issues the inner certificate for *.<hostname>. The operator CA's key
// and the inner key live under dir/operator, the relay's under dir/relay.
export async function createTunnel(hub, dir, { name = 'e2e' } = {}) {
  const t = await http(hub, 'POST', '/v1/tunnels', { body: { name } });
  if (t.status !== 200) throw new Error(`tunnel create: ${t.status} ${JSON.stringify(t.body)}`);
  const tunnel = t.body;
  const tok = await http(hub, 'POST', `/v1/tunnels/${tunnel.id}/reveal_token`);
  if (tok.status !== 200) throw new Error(`reveal_token: ${tok.status} ${JSON.stringify(tok.body)}`);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${tok.body.token}\n`, { mode: 0o600 });
  const opCa = makeCa(join(dir, 'operator'), 'operator');
  const inner = issue(opCa, 'inner', { dns: [`*.${tunnel.hostname}`, tunnel.hostname] });
  const c = await http(hub, 'POST', `/v1/tunnels/${tunnel.id}/certificates`,
    { body: { certificate_pem: readFileSync(opCa.ca, 'utf8') } });
  if (c.status !== 200) throw new Error(`certificate: ${c.status} ${JSON.stringify(c.body)}`);
  return { tunnel, token: tok.body.token, tokenFile, operatorCa: opCa.ca, inner, certificate: c.body };
}

export function relayPki(dir) {
  const ca = makeCa(join(dir, 'relay'), 'relay');
  return issue(ca, 'relay', { dns: ['relay.test', 'localhost'], ips: ['127.0.0.1', '::1'] });
}

// Starts `airlock <args>` (behind prefix, e.g. ['ip','netns','exec',NS]) with
// --ready-fd 3; resolves once the ready line arrived.
// -> { proc, pid, ready, logs(), exited, stop(), kill9(), signal(s) }
export async function startDaemon(args, { env = {}, prefix = [], what = args[0], cwd } = {}) {
  const cmd = prefix.length ? prefix[0] : BIN;
  const argv = prefix.length ? [...prefix.slice(1), BIN, ...args] : args;
  const proc = spawn(cmd, [...argv, '--ready-fd', '3'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd,
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdio[3].on('data', (d) => { buf += d; });
    proc.stdio[3].on('end', () => (buf.trim() ? resolve(buf.trim())
      : reject(new Error(`${what} exited before ready:\n${log}`))));
    proc.on('error', reject);
  });
  const d = {
    proc, pid: proc.pid, ready, exited,
    logs: () => log,
    signal: (s) => proc.kill(s),
    async stop({ timeoutMs = 10000 } = {}) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      if (r.code !== 0) throw new Error(`${what} exited ${r.code ?? r.signal}:\n${log}`);
      return r;
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      return exited;
    },
  };
  return d;
}

// `airlock relay` against hub with its own certificate; client listener and
// gateway listener on free loopback ports unless given.
export async function startRelay(hub, pki, { listen = '127.0.0.1:0', gatewayListen = '127.0.0.1:0', args = [], prefix = [], env = {} } = {}) {
  const d = await startDaemon(['relay', '--listen', listen, '--gateway-listen', gatewayListen, '--hub', hub.innerUrl ?? hub.url,
    '--cert', pki.cert, '--key', pki.key, ...args], { env: { AIRLOCK_API_KEY: hub.apiKey, ...env }, prefix, what: 'relay' });
  const [clientAddr, gatewayAddr] = d.ready.split(/\s+/);
  return Object.assign(d, { clientAddr, gatewayAddr });
}

// `airlock gateway` dialling relay with the tunnel's token and inner cert.
export async function startGateway(relay, setup, relayCa, { routes = [], args = [], prefix = [], env = {} } = {}) {
  const relays = (Array.isArray(relay) ? relay : [relay]).flatMap((r) => ['--relay', r.gatewayAddr ?? r]);
  const d = await startDaemon(['gateway', ...relays, '--relay-ca', relayCa, '--relay-name', 'relay.test',
    '--token-file', setup.tokenFile, '--cert', setup.inner.cert, '--key', setup.inner.key,
    ...routes.flatMap((r) => ['--route', r]), ...args], { prefix, env, what: 'gateway' });
  return d;
}

// A Node upstream process (script text) on a free loopback port, which must
// print "PORT <n>" on stdout once listening. -> { port, url, proc, logs(), stop() }
export async function startNodeUpstream(script, { args = [], env = {}, prefix = [] } = {}) {
  const argv = [...prefix, process.execPath, '--input-type=module', '-e', script, ...args];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => {
      log += d;
      const m = /PORT (\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    });
    proc.stderr.on('data', (d) => { log += d; });
    proc.on('exit', () => reject(new Error(`upstream exited before ready:\n${log}`)));
  });
  return {
    port, url: `http://127.0.0.1:${port}`, proc, exited, logs: () => log,
    async stop() { if (proc.exitCode === null) proc.kill('SIGKILL'); await exited; },
  };
}

// @modelcontextprotocol/server-everything in Streamable HTTP mode on a port
// picked here (it takes PORT from the environment and logs when listening).
export async function startEverything({ prefix = [] } = {}) {
  const port = await freePort();
  const main = new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url).pathname;
  const argv = [...prefix, process.execPath, main, 'streamableHttp'];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port) } });
  let log = '';
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  await new Promise((resolve, reject) => {
    const on = (d) => { log += d; if (/listening on port/i.test(log)) resolve(); };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', () => reject(new Error(`server-everything exited before ready:\n${log}`)));
  });
  return {
    port, url: `http://127.0.0.1:${port}`, proc, exited, logs: () => log,
    async stop() { if (proc.exitCode === null) proc.kill('SIGTERM'); await exited; },
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// undici fetch that dials addr ("host:port") for every name and verifies
// the server against ca: a client of https://docs.<hostname>/mcp through
// the relay without touching any hosts file.
export function tunnelFetch(addr, ca) {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  const agent = new Agent({
    connect: {
      ca: readFileSync(ca),
      lookup: (_name, opts, cb) => (opts?.all ? cb(null, [{ address: host, family: net.isIP(host) }]) : cb(null, host, net.isIP(host))),
    },
  });
  const f = (url, init = {}) => {
    const u = new URL(url);
    u.port = String(port);
    return ufetch(u, { ...init, dispatcher: agent });
  };
  f.agent = agent;
  f.port = port;
  return f;
}

// ---- network namespaces ----------------------------------------------------

// A fresh namespace with lo up and /etc/netns/<ns>/hosts mapping each name
// to 127.0.0.1 (ip netns exec bind-mounts it over /etc/hosts for the
// commands it runs; the machine's own /etc/hosts is never touched).
// -> { ns, prefix, bridge(port, target), close() }
export async function netns(names) {
  const ns = `airlock-tun-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  ip('netns', 'add', ns);
  const etc = `/etc/netns/${ns}`;
  const helpers = [];
  const servers = [];
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, 'hosts'), `127.0.0.1 localhost\n${names.map((n) => `127.0.0.1 ${n}`).join('\n')}\n`);
  } catch (e) {
    ip('netns', 'del', ns);
    rmSync(etc, { recursive: true, force: true });
    throw e;
  }
  const sockDir = tempDir('airlock-tun-ns-');
  return {
    ns,
    prefix: ['ip', 'netns', 'exec', ns],
    // Makes 127.0.0.1:port inside the namespace reach target ("host:port" on
    // this machine's loopback), through a Unix socket: bytes pass unchanged.
    async bridge(port, target) {
      const sock = join(sockDir, `b${port}.sock`);
      const i = target.lastIndexOf(':');
      const srv = net.createServer((c) => {
        const u = net.connect(Number(target.slice(i + 1)), target.slice(0, i));
        c.pipe(u); u.pipe(c);
        c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
        c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
      });
      await new Promise((r) => srv.listen(sock, r));
      servers.push(srv);
      const script = `const net=require('net');const [p,s]=process.argv.slice(1);
net.createServer((c)=>{const u=net.connect(s);c.pipe(u);u.pipe(c);
c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());c.on('close',()=>u.destroy());u.on('close',()=>c.destroy());})
.listen(Number(p),'127.0.0.1',()=>process.stdout.write('READY\\n'));`;
      const h = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, String(port), sock], { stdio: ['ignore', 'pipe', 'pipe'] });
      helpers.push(h);
      let out = '';
      await new Promise((resolve, reject) => {
        h.stdout.on('data', (d) => { out += d; if (out.includes('READY')) resolve(); });
        h.stderr.on('data', (d) => { out += d; });
        h.on('exit', () => reject(new Error(`netns bridge exited: ${out}`)));
      });
    },
    // The other way round: a loopback address on this machine that reaches
    // 127.0.0.1:port inside the namespace. Resolves to "127.0.0.1:<port>".
    async expose(port) {
      const sock = join(sockDir, `e${port}.sock`);
      const script = `const net=require('net');const [p,s]=process.argv.slice(1);
net.createServer((c)=>{const u=net.connect(Number(p),'127.0.0.1');c.pipe(u);u.pipe(c);
c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());c.on('close',()=>u.destroy());u.on('close',()=>c.destroy());})
.listen(s,()=>process.stdout.write('READY\\n'));`;
      const h = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, String(port), sock], { stdio: ['ignore', 'pipe', 'pipe'] });
      helpers.push(h);
      let out = '';
      await new Promise((resolve, reject) => {
        h.stdout.on('data', (d) => { out += d; if (out.includes('READY')) resolve(); });
        h.stderr.on('data', (d) => { out += d; });
        h.on('exit', () => reject(new Error(`netns expose helper exited: ${out}`)));
      });
      const srv = net.createServer((c) => {
        const u = net.connect(sock);
        c.pipe(u); u.pipe(c);
        c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
        c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
      });
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      servers.push(srv);
      return `127.0.0.1:${srv.address().port}`;
    },
    // Runs a command inside the namespace and returns its stdout.
    exec(cmd, ...args) {
      const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: ${r.stderr || r.error}`);
      return r.stdout;
    },
    async close() {
      for (const h of helpers) h.kill('SIGKILL');
      for (const s of servers) s.close();
      try { ip('netns', 'del', ns); } finally {
        rmSync(etc, { recursive: true, force: true });
        rmSync(sockDir, { recursive: true, force: true });
      }
    },
  };
}
