// Runs the official SDK's environment worker, unmodified, in a child Node
// process, so that a test can kill it with SIGKILL mid-item (an in-process
// worker cannot be killed without killing the test). The configuration,
// environment key included, goes to the child on stdin, never through its
// environment (which the worker's bash tool would inherit).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tempDir } from './hub.mjs';

const SDK_URL = import.meta.resolve('@anthropic-ai/sdk');

const CHILD = `
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const cfg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const { default: Anthropic } = await import(cfg.sdkUrl);
const client = new Anthropic({ apiKey: cfg.environmentKey, baseURL: cfg.url, logLevel: cfg.logLevel });
const ac = new AbortController();
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => ac.abort());
console.log('sdkproc: worker starting');
try {
  await client.beta.environments.work.worker({
    environmentId: cfg.environmentId, environmentKey: cfg.environmentKey, workdir: cfg.workdir,
    maxIdleMs: cfg.maxIdleMs, memorySyncIntervalMs: null, signal: ac.signal,
  }).run();
  console.log('sdkproc: run resolved');
  process.exit(0);
} catch (e) {
  console.log('sdkproc: run rejected: ' + (e && e.stack || e));
  process.exit(ac.signal.aborted ? 0 : 1);
}
`;

// startSdkWorker({ url, environmentId, environmentKey, workdir?, maxIdleMs?, logLevel? })
//   -> { proc, workdir, exited, logs(), kill9(), stop() }
export function startSdkWorker({ url, environmentId, environmentKey, workdir = tempDir('airlock-wd-'),
  maxIdleMs = 1000, logLevel = 'info' }) {
  mkdirSync(workdir, { recursive: true, mode: 0o700 });
  const proc = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR ?? '/tmp' },
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  proc.stdin.end(JSON.stringify({ sdkUrl: SDK_URL, url, environmentId, environmentKey, workdir, maxIdleMs, logLevel }));
  return {
    proc, workdir, exited,
    logs: () => log,
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      return exited;
    },
    // Aborts run() (SIGTERM) and waits for the child to exit.
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 40000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}
