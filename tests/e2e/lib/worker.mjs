// Runs the unmodified SDK environment worker (lib/sdk-worker.mjs) in a child
// Node process against a hub started by lib/hub.mjs.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./sdk-worker.mjs', import.meta.url));

// startWorker({ hub, environmentId, envKey, workdir, env, maxIdleMs, logLevel })
//   -> { proc, pid, exited, logs(), waitLog(re, opts), stop(), kill9(), signal(sig) }
// env is merged over the test's environment; by default the child also gets
// ANTHROPIC_X=leak so that tests can show the bash tool scrubs ANTHROPIC_*.
export function startWorker({ hub, environmentId, envKey, workdir, env = {}, maxIdleMs = 1500, logLevel = 'info' }) {
  const childEnv = { ...process.env };
  for (const k of Object.keys(childEnv)) if (k.toUpperCase().startsWith('ANTHROPIC_')) delete childEnv[k];
  Object.assign(childEnv, {
    ANTHROPIC_X: 'leak',
    ANTHROPIC_BASE_URL: hub.url,
    ANTHROPIC_ENVIRONMENT_ID: environmentId,
    ANTHROPIC_ENVIRONMENT_KEY: envKey,
    AIRLOCK_E2E_LOG_LEVEL: logLevel,
    ...env,
  });
  const proc = spawn(process.execPath, [SCRIPT, workdir, String(maxIdleMs)], {
    cwd: workdir,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const waiters = new Set();
  const onData = (d) => {
    log += d;
    for (const w of waiters) w();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    resolve({ code, signal });
    for (const w of waiters) w();
  }));
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;

  const w = {
    proc,
    pid: proc.pid,
    exited,
    logs: () => log,
    // The worker's log lines (JSON objects; other text is kept as {msg}).
    lines: () => log.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return { msg: l }; } }),
    // Resolves once the log (from offset `from`, default 0) matches re.
    waitLog(re, { timeoutMs = 30000, from = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = log.slice(from).match(re);
          if (m) { done(); resolve(m); } else if (gone()) { done(); reject(new Error(`worker exited before ${re}:\n${log}`)); }
        };
        const t = setTimeout(() => { done(); reject(new Error(`timed out waiting for worker log ${re}:\n${log}`)); }, timeoutMs);
        const done = () => { clearTimeout(t); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    signal(sig) { if (!gone()) proc.kill(sig); },
    // SIGTERM: the worker aborts its run (draining and stopping an item it
    // holds) and must exit 0.
    async stop() {
      if (gone()) return exited;
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 40000);
      const r = await exited;
      clearTimeout(t);
      if (r.code !== 0) throw new Error(`sdk worker exited ${r.code ?? r.signal}:\n${log}`);
      return r;
    },
    async kill9() {
      if (!gone()) proc.kill('SIGKILL');
      return exited;
    },
  };
  return w;
}
