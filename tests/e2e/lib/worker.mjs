// Runs an environment worker in a child process against a hub started by
// lib/hub.mjs: the unmodified SDK worker (lib/sdk-worker.mjs, kind 'sdk') or
// airlock's own (`airlock worker`, kind 'c'). Both get the same environment
// variables, and the handle hides the differences tests do not care about.
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './hub.mjs';

const SCRIPT = fileURLToPath(new URL('./sdk-worker.mjs', import.meta.url));

// The kinds a test file runs its worker scenarios with: both by default,
// or one named by AIRLOCK_E2E_WORKERS (comma-separated).
export const WORKER_KINDS = (process.env.AIRLOCK_E2E_WORKERS || 'sdk,c').split(',').filter(Boolean);

// startWorker({ hub, environmentId, envKey, workdir, env, maxIdleMs, logLevel, kind, args })
//   -> { kind, proc, pid, exited, logs(), lines(), waitLog(re, opts), workdirFor(sessionId), toolRootFor(sessionId),
//        stop(), kill9(), signal(sig) }
// workdir is the SDK worker's workdir, or the C worker's --root (its
// sessions' workspaces are ROOT/sessions/<id>/workspace: workdirFor()).
// env is merged over the test's environment; by default the child also gets
// ANTHROPIC_X=leak so that tests can show the bash tool scrubs ANTHROPIC_*.
// args are extra flags for the C worker.
export function startWorker({ hub, environmentId, envKey, workdir, env = {}, maxIdleMs = 1500, logLevel = 'info',
  kind = 'sdk', args = [] }) {
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
  const proc = kind === 'c'
    ? spawn(BIN, ['worker', '--root', workdir, '--max-idle', `${maxIdleMs}ms`, '--log-level', logLevel, ...args], {
      cwd: workdir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'],
    })
    : spawn(process.execPath, [SCRIPT, workdir, String(maxIdleMs)], {
      cwd: workdir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'],
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

  const root = realpathSync(workdir);
  const w = {
    kind,
    workdirFor: (sessionId) => (kind === 'c' ? join(root, 'sessions', sessionId, 'workspace') : root),
    // The workspace as the tools see it (paths in glob/grep results, pwd):
    // /workspace when the C worker's runners have namespaces (the worker's
    // "isolation" log line says level A or B), else the host path.
    toolRootFor: (sessionId) => {
      if (kind !== 'c') return root;
      const iso = log.match(/"event":"isolation"[^\n]*"level":"([A-D])"/);
      return iso && (iso[1] === 'A' || iso[1] === 'B') ? '/workspace' : join(root, 'sessions', sessionId, 'workspace');
    },
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
      if (r.code !== 0) throw new Error(`${kind} worker exited ${r.code ?? r.signal}:\n${log}`);
      return r;
    },
    async kill9() {
      if (!gone()) proc.kill('SIGKILL');
      return exited;
    },
  };
  return w;
}
