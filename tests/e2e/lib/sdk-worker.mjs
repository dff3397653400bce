// The official, unmodified @anthropic-ai/sdk environment worker in its own
// process, so that a test can SIGSTOP, SIGCONT or kill -9 it.
//
//   node sdk-worker.mjs WORKDIR [MAX_IDLE_MS]
//
// Configuration comes from the environment, under the names the SDK and the
// `ant` CLI use themselves (the bash tool scrubs every ANTHROPIC_* variable):
// ANTHROPIC_BASE_URL, ANTHROPIC_ENVIRONMENT_ID, ANTHROPIC_ENVIRONMENT_KEY;
// AIRLOCK_E2E_LOG_LEVEL (default info) filters the SDK's own log lines, which
// go to stderr as one JSON object per line. SIGTERM/SIGINT abort the run;
// the process exits 0 once run() has settled.
import Anthropic from '@anthropic-ai/sdk';

const [workdir, maxIdleArg] = process.argv.slice(2);
const baseURL = process.env.ANTHROPIC_BASE_URL;
const environmentId = process.env.ANTHROPIC_ENVIRONMENT_ID;
const environmentKey = process.env.ANTHROPIC_ENVIRONMENT_KEY;
if (!workdir || !baseURL || !environmentId || !environmentKey) {
  process.stderr.write('usage: ANTHROPIC_BASE_URL=... ANTHROPIC_ENVIRONMENT_ID=... ANTHROPIC_ENVIRONMENT_KEY=... ' +
    'node sdk-worker.mjs WORKDIR [MAX_IDLE_MS]\n');
  process.exit(2);
}

const line = (level, msg, fields) => {
  let rest = {};
  if (fields && typeof fields === 'object') rest = fields;
  else if (fields !== undefined) rest = { detail: String(fields) };
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level, msg: String(msg), ...rest })}\n`);
};
const logger = {
  error: (m, f) => line('error', m, f),
  warn: (m, f) => line('warn', m, f),
  info: (m, f) => line('info', m, f),
  debug: (m, f) => line('debug', m, f),
};

const client = new Anthropic({
  apiKey: environmentKey,
  baseURL,
  logger,
  logLevel: process.env.AIRLOCK_E2E_LOG_LEVEL || 'info',
});
const ac = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    line('info', `e2e worker: ${sig}, aborting`);
    ac.abort();
  });
}

line('info', 'e2e worker: starting', { pid: process.pid, environment_id: environmentId, workdir });
try {
  await client.beta.environments.work
    .worker({
      environmentId,
      environmentKey,
      workdir,
      maxIdleMs: maxIdleArg ? Number(maxIdleArg) : 1500,
      memorySyncIntervalMs: null,
      signal: ac.signal,
    })
    .run();
  line('info', 'e2e worker: run() resolved');
} catch (e) {
  if (!ac.signal.aborted) {
    line('error', 'e2e worker: run() rejected', { error: String(e?.stack ?? e) });
    process.exit(1);
  }
  line('info', 'e2e worker: run() ended by abort', { error: String(e) });
}
process.exit(0);
