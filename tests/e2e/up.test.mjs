// `airlock up`, the embedded default of `make run`: a hub, a C worker and a
// demo session whose scripted agent does real work in its workspace. The
// data directory is a temporary one, so the tests never touch ./var.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, tempDir } from './lib/hub.mjs';

// Runs `airlock up ARGS`; resolves { code, signal, stdout, stderr } on exit.
// onStdout(text so far, proc) may signal it.
function up(args, { onStdout, timeoutMs = 150000 } = {}) {
  const proc = spawn(BIN, ['up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; onStdout?.(stdout, proc); });
  proc.stderr.on('data', (d) => { stderr += d; });
  const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  // 'close' comes after 'exit' and after the pipes are drained.
  return new Promise((resolve) => proc.on('close', (code, signal) => {
    clearTimeout(t);
    resolve({ code, signal, stdout, stderr });
  }));
}

// Processes whose command line mentions dir (a hub, worker or runner of
// this data directory), other than us.
function processesUsing(dir) {
  const found = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd;
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { continue; }
    if (cmd.includes(dir) && Number(pid) !== process.pid) found.push(`${pid}: ${cmd}`);
  }
  return found;
}

const logsOf = (dir) => ['hub.log', 'worker.log'].map((f) => {
  try { return `--- ${f} ---\n${readFileSync(join(dir, f), 'utf8')}`; } catch { return ''; }
}).join('\n');

test('airlock up runs the demo session with the C worker and exits 0 after it', async () => {
  const dir = tempDir('airlock-e2e-up-');
  try {
    const r = await up(['--listen', '127.0.0.1:0', '--data-dir', dir, '--exit-after-demo']);
    const why = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${logsOf(dir)}`;
    assert.equal(r.code, 0, why);
    assert.deepEqual(processesUsing(dir), [], 'a hub, worker or runner outlived airlock up');

    const out = r.stdout;
    const sid = out.match(/demo session (sesn_\w+)/)?.[1];
    assert.ok(sid, why);
    const url = out.match(/hub listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    assert.ok(url, why);
    assert.doesNotMatch(url, /:0$/, 'the real port is printed');

    // The timeline: every tool call, with its result, in order.
    const lines = out.split('\n');
    const idx = (re, from) => lines.findIndex((l, i) => i > from && re.test(l));
    const timeline = [
      /^\d\d:\d\d:\d\d\s+agent\.tool_use\s+write \{"file_path":"notes\.txt"/,
      /user\.tool_result\s+ok: wrote \d+ bytes to notes\.txt/,
      /agent\.tool_use\s+bash \{"command":"wc -l notes\.txt"\}/,
      /user\.tool_result\s+ok: 4 notes\.txt/,
      /agent\.tool_use\s+edit \{"file_path":"notes\.txt"/,
      /user\.tool_result\s+ok: edited notes\.txt \(1 replacement\(s\)\)/,
      /agent\.tool_use\s+grep \{"pattern":"edited"\}/,
      /user\.tool_result\s+ok: .*\/workspace\/notes\.txt:4:this/, // long lines are cut
      /agent\.tool_use\s+read \{"file_path":"notes\.txt"\}/,
      /user\.tool_result\s+ok: airlock demo notes/,
      /agent\.tool_use\s+bash \{"command":"out=/,
      /user\.tool_result\s+ok: wrote .*\/outputs\/report\.md/,
      /agent\.message\s+done: 6 calls, 0 errors/,
      /session\.status_idle\s+end_turn/,
    ];
    let at = -1;
    for (const re of timeline) {
      const i = idx(re, at);
      assert.ok(i > at, `timeline line ${re} missing or out of order:\n${why}`);
      at = i;
    }
    assert.doesNotMatch(out, /user\.tool_result\s+error/, why);

    // The summary after the demo.
    const report = join(dir, 'worker', 'sessions', sid, 'outputs', 'report.md');
    assert.match(out, new RegExp(`hub\\s+${url}`));
    assert.ok(out.includes(join(dir, 'hub', 'api.key')), 'the API key file is printed');
    assert.match(out, new RegExp(`session\\s+${sid}`));
    assert.ok(out.includes(`report       ${report}`), 'the report path is printed');

    // What the agent left: the edited workspace file and the report.
    assert.equal(readFileSync(join(dir, 'worker', 'sessions', sid, 'workspace', 'notes.txt'), 'utf8'),
      'airlock demo notes\nthe hub keeps the session\'s event log\nthe worker runs the agent\'s tools\n'
      + 'this line was edited by the agent\n');
    assert.equal(readFileSync(report, 'utf8'), `# airlock demo report\n\nsession: ${sid}\nnotes.txt: 4 lines\n`
      + 'the edited line:\n4:this line was edited by the agent\n');

    // The environment key never shows: not in the output, not in the logs.
    assert.doesNotMatch(out + r.stderr + logsOf(dir), /al-env-[A-Za-z0-9_-]{16}/);

    // A second run reuses the environment and the agent.
    const again = await up(['--listen', '127.0.0.1:0', '--data-dir', dir, '--exit-after-demo']);
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    const ids = (s) => s.match(/environment (env_\w+) \(airlock-up\), agent (agent_\w+)/)?.slice(1);
    assert.deepEqual(ids(again.stdout), ids(out));
    assert.notEqual(again.stdout.match(/demo session (sesn_\w+)/)?.[1], sid, 'each run has its own demo session');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('airlock up stops the worker and the hub on SIGTERM and exits 0', async () => {
  const dir = tempDir('airlock-e2e-up-');
  try {
    let sent = false;
    const r = await up(['--listen', '127.0.0.1:0', '--data-dir', dir], {
      onStdout: (s, proc) => {
        if (!sent && s.includes('Ctrl-C stops the worker and the hub.')) {
          sent = true;
          proc.kill('SIGTERM');
        }
      },
    });
    const why = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${logsOf(dir)}`;
    assert.ok(sent, why);
    assert.equal(r.code, 0, why);
    assert.match(r.stdout, /airlock up: stopped/);
    assert.deepEqual(processesUsing(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('airlock up says so plainly when the hub port is taken', async () => {
  const dir = tempDir('airlock-e2e-up-');
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = `127.0.0.1:${server.address().port}`;
  try {
    const r = await up(['--listen', addr, '--data-dir', dir, '--exit-after-demo']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`airlock up: ${addr} is already in use .*--listen`));
    assert.deepEqual(processesUsing(dir), []);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
