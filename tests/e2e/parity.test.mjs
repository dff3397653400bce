// Toolset parity: every call of parity/corpus.mjs goes through the SDK's own
// agent_toolset_20260401 (in this process, workdir A) and through
// `airlock sandbox-runner` (workdir B), each group from a fresh, identically
// prepared workdir. The answers must be equal call by call, as the worker
// puts them on the wire ({is_error, text}, "(no output)" for an empty text),
// after replacing the real paths of each side's workdir with <ROOT> and of its
// outside directory with <OUT> -- nothing else is normalised, except lines of
// a multi-file grep, which rg itself prints in no fixed order (opts.sortLines
// in the corpus). Afterwards the two workdirs and the two outside dirs must
// hold the same trees (types, modes, contents, link targets).
//
// Groups that differ on purpose are in EXPECTED_DIFFERENCES: their C answers
// are checked against the listed ones instead (docs/TOOLSET-PARITY.md keeps
// the same table). The symlink-swap race is a test of its own below.
//
// Every group runs a second time with the runner inside its level-B sandbox
// (--isolation B; as root with --uid/--gid SANDBOX.uid, which then owns the
// C side's tree). Its tools see the workdir as /workspace (the "ready"
// workdir, mapped to <ROOT> like the real one), and nothing of the host
// outside the workspace exists. The few calls that therefore answer
// differently are covered by the rules of SANDBOX_DIFFERENCES, each with the
// answer the runner must give instead. On a host that does not allow the
// sandbox (`airlock worker --check --min-isolation B` fails) that run is
// skipped with the reason, or fails under AIRLOCK_SANDBOX_MUST_WORK=1.
//
// Run just this: tests/e2e/run.sh build/airlock parity.test.mjs
// PARITY_REPORT=/path.json also writes every group's answers and mismatches.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync,
  realpathSync, rmSync, watch, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BIN, startRunner, wireText } from './lib/runner.mjs';
import { sdkToolset } from './lib/sdk-toolset.mjs';
import { GROUPS, countCalls, prepare } from './parity/corpus.mjs';

// The SDK's bash inherits this process's environment minus ANTHROPIC_*; the
// runner gets the same plus AIRLOCK_Y (lib/runner.mjs). Both must hide them.
process.env.ANTHROPIC_X = 'leak';
process.env.Anthropic_Mixed = 'leak';

const CALL_TIMEOUT_MS = 15000; // a call that takes longer is a mismatch, and the runner is killed
const NO_RG_PATH = '/nonexistent-parity-path'; // PATH of both sides in the noRg groups

// The second run: the C runner inside its level-B sandbox. As root the
// runner needs a non-zero host uid that owns its directory tree; the
// sandbox's uids start at 0x40000000 (the worker gives each session one).
// Without root, the runner maps the caller's own uid.
const SANDBOX_ROOT = process.getuid() === 0;
export const SANDBOX = {
  uid: SANDBOX_ROOT ? 0x40000000 + 4242 : null,
  args: ['--isolation', 'B', ...(SANDBOX_ROOT ? ['--uid', String(0x40000000 + 4242), '--gid', String(0x40000000 + 4242)] : [])],
  workdir: '/workspace', // the tool root inside, as the runner reports it in "ready"
  outputs: '/mnt/session/outputs',
};
const MUST_WORK = process.env.AIRLOCK_SANDBOX_MUST_WORK === '1';

// Why the host cannot run the sandbox (null: it can): `airlock worker
// --check --min-isolation B` exits 0 when the host allows the namespaces.
function sandboxUnavailable() {
  const r = spawnSync(BIN, ['worker', '--check', '--min-isolation', 'B'], {
    env: { ...process.env, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', ANTHROPIC_ENVIRONMENT_ID: 'env_check',
      ANTHROPIC_ENVIRONMENT_KEY: 'check' },
    encoding: 'utf8', timeout: 60000,
  });
  if (r.status === 0) return null;
  let missing = '';
  try { missing = ` (missing: ${JSON.stringify(JSON.parse(r.stdout.trim()).missing)})`; } catch { /* no JSON */ }
  return `\`airlock worker --check --min-isolation B\` exited ${r.status ?? r.signal}: this host does not allow `
    + `the level-B sandbox${missing}`;
}

// Groups whose C answers deliberately differ from the SDK's, with the
// answers the C runner must give instead.
export const EXPECTED_DIFFERENCES = {
  'bash-kill-keeps-shell': {
    reason: 'On a timeout or a cancel the SDK SIGKILLs the shell\'s whole process group and starts a fresh shell, '
      + 'losing cwd, variables and functions. The C runner kills only the command\'s process tree and keeps the '
      + 'shell, by design (sandbox-notes §5.3, "timeout without losing the session"; bash.c). The answers to the '
      + 'timed-out and cancelled calls are the same; only what later calls see differs.',
    c: [
      { is_error: false, text: '(no output)' },
      { is_error: true, text: 'bash: bash command timed out after 300ms' },
      { is_error: false, text: '[1]\n<ROOT>/dir' },
      { is_error: true, text: 'bash: This operation was aborted' },
      { is_error: false, text: '[1]\n<ROOT>/dir' },
    ],
  },
  'grep-fallback-invalid-regex': {
    reason: 'Without rg both sides fall back to a walk of their own. The SDK matches with an ECMAScript RegExp, the C '
      + 'runner with PCRE2 (grep.c), so an invalid pattern is reported with PCRE2\'s message after the same prefix.',
    c: [
      { is_error: true, text: /^grep: invalid regex: \S/ },
      { is_error: true, text: /^grep: invalid regex: \S/ },
    ],
  },
  'bash-timeout-zero': {
    reason: 'The SDK passes timeout_ms 0 to setTimeout literally, so the call times out after ~0 ms (or not, '
      + 'racily) and the shell is lost. Spec §6.3 and the API docs say 0 means the default (120 s); the C runner '
      + 'follows the docs.',
    c: [
      { is_error: false, text: '(no output)' },
      { is_error: false, text: 'zero:[1]' },
      { is_error: false, text: '[1]' },
    ],
  },
};

// Calls whose C answers differ when the runner is sandboxed, because of
// what the sandbox is: inside it the tool root is /workspace, the runner's
// cwd and /proc are the sandbox's, and nothing outside the workspace exists.
// Each rule says exactly which calls it covers (applies) and what the C
// answer must be instead of the SDK's (check); a call a rule covers but has
// no stated expectation for fails. docs/TOOLSET-PARITY.md keeps the same
// table. The trees are still compared after every group, so whatever a
// covered call does to the workdir or the outside dir must match too.
const OUTSIDE_MSG = (p) => `path ${JSON.stringify(p)} is outside the session's working directory`;
const GREP_LIMIT = 100 * 1024;
const GREP_TRUNCATED = `[output truncated at ${GREP_LIMIT} bytes]`;
const pathArg = (tool, input) => (['read', 'write', 'edit'].includes(tool) ? input.file_path
  : ['glob', 'grep'].includes(tool) ? input.path : undefined);
const within = (root, p) => p === root || p.startsWith(`${root}/`);

export const SANDBOX_DIFFERENCES = [
  {
    name: 'host-layout-path',
    reason: 'The input leaves the workdir with ".." and comes back into it by the workdir\'s host name '
      + '(../work/a.txt). Outside the sandbox that is the workdir; inside, the workspace\'s parent is the '
      + 'sandbox\'s own / and ../work is /work, outside the workspace. The runner refuses it like any '
      + 'outside path, with the SDK\'s own message for one.',
    // Lexically inside the SDK's workdir, lexically outside /workspace.
    applies: ({ tool, input, A }) => {
      const p = pathArg(tool, input);
      if (typeof p !== 'string' || p === '' || p.includes('<')) return false;
      return within(A.work, resolve(A.work, p)) && !within(SANDBOX.workdir, resolve(SANDBOX.workdir, p));
    },
    check: (c, { tool, input }, msg) => assert.deepEqual(c, { is_error: true, text: OUTSIDE_MSG(pathArg(tool, input)) }, msg),
  },
  {
    name: 'proc-self-cwd',
    reason: 'A path through /proc/self/cwd names the process\'s cwd. The SDK runs in the test process, whose '
      + 'cwd is not the workdir, so it refuses the path as outside. The sandboxed runner has its own /proc and '
      + 'its cwd is /workspace, so the path is inside the workspace: a read answers with the file\'s content.',
    applies: ({ tool, input }) => String(pathArg(tool, input)).startsWith('/proc/self/cwd/'),
    check: (c, { tool, input, B }, msg) => {
      assert.equal(tool, 'read', `${msg}\n  (no sandbox expectation stated for ${tool} through /proc/self/cwd)`);
      const rel = input.file_path.slice('/proc/self/cwd/'.length);
      assert.deepEqual(c, { is_error: false, text: wireText(readFileSync(join(B.work, rel), 'utf8')) }, msg);
    },
  },
  {
    name: 'bash-host-outside',
    reason: 'A shell command names ../outside, the workdir\'s sibling on the host. Inside the sandbox no host '
      + 'path outside the workspace exists (its parent is the sandbox\'s /), so the command finds nothing '
      + 'there and the file outside is untouched; the rest of its output is the SDK\'s.',
    applies: ({ tool, input }) => tool === 'bash' && String(input.command).includes('../outside'),
    // command -> [what the SDK prints for ../outside, what the runner prints instead]
    expect: {
      'ls -A ../outside; ls dir': ['secret.txt\nsub\n', "ls: cannot access '../outside': No such file or directory\n"],
      'cat ../outside/secret.txt; od -c binary.bin | head -3':
        ['TOP SECRET\n', 'cat: ../outside/secret.txt: No such file or directory\n'],
    },
    check(c, { input, sdk, B }, msg) {
      const e = this.expect[input.command];
      assert.ok(e, `${msg}\n  (no sandbox expectation stated for this command)`);
      assert.ok(sdk.text.startsWith(e[0]), `${msg}\n  (the SDK's answer does not start with ${JSON.stringify(e[0])})`);
      assert.deepEqual(c, { is_error: sdk.is_error, text: e[1] + sdk.text.slice(e[0].length) }, msg);
      assert.equal(readFileSync(join(B.out, 'secret.txt'), 'utf8'), 'TOP SECRET\n', 'the file outside is untouched');
    },
  },
  {
    name: 'grep-budget-path-length',
    reason: 'Without rg, grep prints each hit as <file>:<n>:<line> with the file\'s full path and stops at a '
      + '100 KiB budget that counts those paths. /workspace is shorter than the SDK\'s workdir path, so the '
      + 'runner fits more hits before the cut. The expected answer is the budget rule applied to the file\'s '
      + 'hits with each side\'s root; the same rule must reproduce the SDK\'s own answer.',
    applies: ({ group, tool, sdk }) => group.noRg && tool === 'grep' && sdk.text.endsWith(`\n${GREP_TRUNCATED}`)
      && sdk.text.includes('<ROOT>'),
    check: (c, { input, sdk, A }, msg) => {
      const file = input.path;
      assert.ok(typeof file === 'string' && lstatSync(join(A.work, file)).isFile(),
        `${msg}\n  (no sandbox expectation stated for a grep over more than one file)`);
      const re = new RegExp(input.pattern);
      const lines = readFileSync(join(A.work, file), 'utf8').split(/\r?\n/);
      if (lines.at(-1) === '') lines.pop();
      // The SDK's runWalkGrep: each hit costs its length + 1 until the budget goes negative.
      const cut = (root) => {
        const hits = [];
        let budget = GREP_LIMIT;
        for (const [i, line] of lines.entries()) {
          if (!re.test(line)) continue;
          const hit = `${root}/${file}:${i + 1}:${line}`;
          budget -= hit.length + 1;
          if (budget < 0) { hits.push(GREP_TRUNCATED); break; }
          hits.push(hit);
        }
        return hits.join('\n').replaceAll(root, '<ROOT>');
      };
      assert.deepEqual({ is_error: false, text: cut(A.work) }, sdk, `${msg}\n  (the budget rule does not reproduce the SDK's answer)`);
      assert.deepEqual(c, { is_error: false, text: cut(SANDBOX.workdir) }, msg);
    },
  },
];

const rulesUsed = new Set();
function sandboxDifference(ctx) {
  return SANDBOX_DIFFERENCES.find((r) => r.applies(ctx)) ?? null;
}

const report = { groups: {}, sandbox: {} };
const bases = [];
after(() => {
  for (const b of bases) rmSync(b, { recursive: true, force: true });
  if (process.env.PARITY_REPORT) writeFileSync(process.env.PARITY_REPORT, JSON.stringify(report, null, 1));
});

// One side's directories: <base>/work (the workdir), <base>/outside,
// <base>/outputs. Returned paths are real (no symlink in them). For a
// sandboxed runner (sandbox set) the base is 0711 and, when the test runs as
// root, the whole tree belongs to the sandbox's uid (SANDBOX.uid).
function sideDirs(label, fixture, sandbox = false) {
  const base = realpathSync(mkdtempSync(join(tmpdir(), `airlock-parity-${label}-`)));
  bases.push(base);
  const d = { base, work: join(base, 'work'), out: join(base, 'outside'), outputs: join(base, 'outputs') };
  mkdirSync(d.work);
  mkdirSync(d.outputs);
  prepare(d.work, d.out, fixture);
  if (sandbox) {
    chmodSync(base, 0o711);
    if (SANDBOX.uid !== null) chownTree(base, SANDBOX.uid);
  }
  return d;
}

function chownTree(p, uid) {
  lchownSync(p, uid, uid);
  if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n), uid);
}

function subst(v, d) {
  if (typeof v === 'string') return v.replaceAll('<ROOT>', d.work).replaceAll('<OUT>', d.out);
  if (Array.isArray(v)) return v.map((x) => subst(x, d));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x, d)]));
  return v;
}

function normalise(r, d, roots, opts) {
  let text = r.text;
  for (const root of roots) text = text.replaceAll(root, '<ROOT>');
  text = text.replaceAll(d.out, '<OUT>');
  if (opts?.sortLines) text = text.split('\n').sort().join('\n');
  return { is_error: r.is_error, text };
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`no answer to ${what} within ${ms} ms`)), ms); }),
  ]);
}

// Resolves once `file` exists: a watch on its directory, checked once after
// the watch is in place so that a file created before it is seen too.
function fileAppears(file, ms = 10000) {
  const dir = join(file, '..');
  return new Promise((resolve, reject) => {
    const w = watch(dir, () => { if (existsSync(file)) done(null); });
    const t = setTimeout(() => done(new Error(`${file} did not appear within ${ms} ms`)), ms);
    function done(err) {
      clearTimeout(t);
      w.close();
      if (err) reject(err); else resolve();
    }
    if (existsSync(file)) done(null);
  });
}

// Runs a group's calls on one side; returns { results, closeError }.
// PARITY_BOTH_SDK=1 puts the SDK on both sides: a check that the corpus is
// deterministic (every group must then pass), independent of the runner.
async function runSide(kind, group, d, sandbox = false) {
  if (process.env.PARITY_BOTH_SDK === '1') kind = 'sdk';
  const results = [];
  let side = null;
  let dead = null;
  try {
    side = kind === 'sdk' ? sdkToolset({ workdir: d.work })
      : await startRunner({ workdir: d.work, outputs: d.outputs, env: group.noRg ? { PATH: NO_RG_PATH } : {},
        args: sandbox ? SANDBOX.args : [] });
  } catch (e) {
    dead = e.message;
  }
  // The runner says which path its tools print: the real workdir, or
  // /workspace in the sandbox. <ROOT> in inputs is that path too.
  const toolRoot = side?.ready?.workdir || d.work;
  const roots = toolRoot !== d.work ? [toolRoot, d.work] : [d.work];
  let closeError = null;
  try {
    for (const [i, [tool, input, opts]] of group.calls.entries()) {
      if (dead) {
        results.push({ is_error: null, text: `<harness: runner unavailable: ${dead}>` });
        continue;
      }
      let r;
      try {
        const h = side.start(tool, subst(input, { ...d, work: toolRoot }));
        if (opts?.cancelOn) {
          await fileAppears(join(d.work, opts.cancelOn));
          if (kind === 'sdk') h.abort(); else side.cancel(h.id);
        }
        r = await withTimeout(h.result, CALL_TIMEOUT_MS, `${group.name}[${i}]`);
        // The worker sends an empty runner text as "(no output)" (spec §6.1).
        if (kind === 'c') r = { is_error: r.is_error, text: wireText(r.text) };
      } catch (e) {
        r = { is_error: null, text: `<harness: ${e.message}>` };
        if (kind === 'c') {
          dead = e.message;
          await side.kill9();
        }
      }
      results.push(normalise(r, d, roots, opts));
    }
  } finally {
    if (side && kind === 'sdk') await side.close();
    else if (side && !dead) {
      try { await side.close(); } catch (e) { closeError = e.message; }
    }
  }
  return { results, closeError, ready: side?.ready ?? null };
}

// A tree as { relpath: description } without following symlinks.
function snapshot(root) {
  const out = {};
  const walk = (dir, rel) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[r] = `link -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) { out[r] = `dir ${mode}`; walk(p, r); }
      else if (st.isFile()) {
        out[r] = `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
      } else if (st.isFIFO()) out[r] = `fifo ${mode}`;
      else out[r] = `other ${mode}`;
    }
  };
  walk(root, '');
  return out;
}

// abs_out_link points at the side's own outside dir; compare it as <OUT>.
function treeOf(d) {
  const fix = (t) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.replaceAll(d.out, '<OUT>')]));
  return { work: fix(snapshot(d.work)), outside: fix(snapshot(d.out)) };
}

const show = (v) => JSON.stringify(v).slice(0, 600);

test('the corpus has at least 200 calls in named groups', () => {
  const names = GROUPS.map((g) => g.name);
  assert.equal(new Set(names).size, names.length, 'group names are unique');
  assert.ok(countCalls() >= 200, `corpus has ${countCalls()} calls`);
  for (const name of Object.keys(EXPECTED_DIFFERENCES)) assert.ok(names.includes(name), `${name} is a corpus group`);
});

// Compares one group: C answers against the SDK's (or the listed ones).
// sandbox: the C runner runs inside its level-B sandbox, and the calls
// SANDBOX_DIFFERENCES names are checked against its expectations instead.
async function checkGroup(group, sandbox = false) {
  // Labels of one length: a path's length shows in texts (grep's 100 KiB budget counts it).
  const A = sideDirs('A', group.fixture);
  const B = sideDirs(sandbox ? 'S' : 'B', group.fixture, sandbox);
  // The SDK's grep looks rg up in this process's PATH when it runs.
  const saved = process.env.PATH;
  if (group.noRg) process.env.PATH = NO_RG_PATH;
  let sdk, c;
  try {
    [sdk, c] = await Promise.all([runSide('sdk', group, A), runSide('c', group, B, sandbox)]);
  } finally {
    process.env.PATH = saved;
  }
  const expected = EXPECTED_DIFFERENCES[group.name];
  const want = expected ? expected.c : sdk.results;
  const mismatches = [];
  const sandboxed = [];
  // The harness's <ROOT> mapping relies on this; a runner that ignored
  // --isolation would report its host workdir here.
  if (sandbox && c.ready && (c.ready.workdir !== SANDBOX.workdir || c.ready.outputs !== SANDBOX.outputs)) {
    mismatches.push({ message: `${group.name}: the sandboxed runner reported ${show(c.ready)}, not workdir `
      + `${SANDBOX.workdir} and outputs ${SANDBOX.outputs}` });
  }
  for (const [i, [tool, input]] of group.calls.entries()) {
    const ctx = { group, index: i, tool, input, sdk: sdk.results[i], A, B };
    const rule = sandbox && !expected ? sandboxDifference(ctx) : null;
    if (rule) {
      // The SDK's answer is not the reference: the rule's own check is.
      const msg = `${group.name}[${i}] ${tool} ${show(input)} (sandbox: ${rule.name})\n  SDK: ${show(sdk.results[i])}\n  C:   ${show(c.results[i])}`;
      try {
        rule.check(c.results[i], ctx, msg);
        sandboxed.push({ index: i, rule: rule.name });
        rulesUsed.add(rule.name);
      } catch (e) {
        mismatches.push({ index: i, tool, input, rule: rule.name, sdk: sdk.results[i], c: c.results[i], message: e.message });
      }
      continue;
    }
    const msg = `${group.name}[${i}] ${tool} ${show(input)}\n  ${expected ? 'expected' : 'SDK'}: ${show(want[i])}\n  C:   ${show(c.results[i])}`;
    try {
      if (want[i].text instanceof RegExp) {
        assert.equal(c.results[i].is_error, want[i].is_error, msg);
        assert.match(c.results[i].text, want[i].text, msg);
      } else {
        assert.deepEqual(c.results[i], want[i], msg);
      }
    } catch (e) {
      mismatches.push({ index: i, tool, input, want: want[i], c: c.results[i], message: e.message });
    }
  }
  const trees = { sdk: treeOf(A), c: treeOf(B) };
  const entry = { sdk: sdk.results, c: c.results, mismatches, closeError: c.closeError };
  if (sandbox) entry.sandboxDifferences = sandboxed;
  (sandbox ? report.sandbox : report.groups)[group.name] = entry;
  if (!expected) {
    try {
      assert.deepEqual(trees.c, trees.sdk, `${group.name}: the workdir and outside trees differ after the group`);
    } catch (e) {
      mismatches.push({ tree: true, message: e.message });
      entry.treeDiff = e.message;
    }
  }
  if (c.closeError) mismatches.push({ message: `${group.name}: ${c.closeError}` });
  if (mismatches.length) {
    assert.fail(`${mismatches.length} mismatch(es) in ${group.name}${sandbox ? ' (sandboxed runner)' : ''}:\n\n`
      + `${mismatches.map((m) => m.message).join('\n\n')}`);
  }
}

describe('toolset parity: SDK vs airlock sandbox-runner', { concurrency: 6 }, () => {
  for (const group of GROUPS.filter((g) => !g.noRg)) test(group.name, () => checkGroup(group));
});

// One at a time, after the groups above: checkGroup changes this process's
// PATH, which the SDK's grep reads, while these run.
describe('toolset parity without rg (grep fallback)', () => {
  for (const group of GROUPS.filter((g) => g.noRg)) test(group.name, () => checkGroup(group));
});

// The same comparison with the runner inside its level-B sandbox
// (--isolation B). Skipped, with the reason, on a host that does not allow
// the sandbox -- a failure under AIRLOCK_SANDBOX_MUST_WORK=1.
let sandboxSkip;
// True when the host allows the sandbox; else skips t with the reason (or
// throws under AIRLOCK_SANDBOX_MUST_WORK=1) and returns false.
function needSandbox(t) {
  sandboxSkip ??= { reason: sandboxUnavailable() };
  if (!sandboxSkip.reason) return true;
  if (MUST_WORK) throw new Error(`AIRLOCK_SANDBOX_MUST_WORK=1, but ${sandboxSkip.reason}`);
  t.skip(sandboxSkip.reason);
  return false;
}
const sandboxTest = (group) => (t) => (needSandbox(t) ? checkGroup(group, true) : undefined);

// PARITY_BOTH_SDK=1 (the SDK on both sides) has no runner to sandbox: the
// sandboxed run is then not defined at all.
if (process.env.PARITY_BOTH_SDK !== '1') {
  describe('toolset parity, runner sandboxed (--isolation B)', { concurrency: 6 }, () => {
    for (const group of GROUPS.filter((g) => !g.noRg)) test(group.name, sandboxTest(group));
  });

  describe('toolset parity without rg, runner sandboxed (--isolation B)', () => {
    for (const group of GROUPS.filter((g) => g.noRg)) test(group.name, sandboxTest(group));
  });

  // The table stays small: a rule no corpus call needs any more goes.
  test('every SANDBOX_DIFFERENCES rule covers a corpus call', (t) => {
    if (!needSandbox(t)) return;
    assert.equal(Object.keys(report.sandbox).length, GROUPS.length, 'every group ran sandboxed before this test');
    for (const r of SANDBOX_DIFFERENCES) assert.ok(rulesUsed.has(r.name), `sandbox rule ${r.name} covered no call`);
  });
}

// A path flipped between a real directory and a symlink to the outside
// directory while writes into it run. The SDK's own confinement has a
// documented TOCTOU window here (fs-util.ts), so its outcome is only
// recorded; the C runner must never create a file outside.
describe('symlink swapped in during writes', { concurrency: 2 }, () => {
  const WRITES = 300;

  async function race(kind) {
    const d = sideDirs(`swap-${kind}`);
    const side = kind === 'sdk' ? sdkToolset({ workdir: d.work }) : await startRunner({ workdir: d.work, outputs: d.outputs });
    const script = 'cd "$1" || exit 1; echo go; while :; do rm -rf swap; mkdir swap; '
      + 'rm -rf swap; ln -s "$2" swap; done';
    const flipper = spawn('/bin/bash', ['-c', script, 'flip', d.work, d.out], { stdio: ['ignore', 'pipe', 'ignore'] });
    const flipperExit = new Promise((r) => flipper.on('exit', r));
    const results = [];
    try {
      await new Promise((resolve, reject) => {
        flipper.stdout.once('data', resolve);
        flipper.once('exit', () => reject(new Error('flipper exited early')));
      });
      for (let i = 0; i < WRITES; i++) {
        results.push(await withTimeout(side.call('write', { file_path: `swap/f${i}.txt`, content: `w${i}\n` }),
          CALL_TIMEOUT_MS, `swap write ${i}`));
      }
    } finally {
      flipper.kill('SIGKILL');
      await flipperExit;
      await side.close();
    }
    const outside = Object.keys(snapshot(d.out)).filter((p) => !['secret.txt', 'sub', 'sub/s.txt'].includes(p));
    return { results, outside, wrote: results.filter((r) => !r.is_error).length };
  }

  test('C runner: no file ever appears outside the workdir', async (t) => {
    const r = await race('c');
    t.diagnostic(`C: ${r.wrote}/${WRITES} writes succeeded, ${r.outside.length} files outside`);
    assert.equal(r.results.length, WRITES);
    for (const x of r.results) assert.equal(typeof x.is_error, 'boolean');
    assert.deepEqual(r.outside, [], 'files written through the swapped-in symlink');
    report.swap = { ...report.swap, c: { wrote: r.wrote, outside: r.outside.length } };
  });

  test('SDK (recorded only): how many writes escaped', async (t) => {
    const r = await race('sdk');
    t.diagnostic(`SDK: ${r.wrote}/${WRITES} writes succeeded, ${r.outside.length} files landed outside`);
    assert.equal(r.results.length, WRITES);
    report.swap = { ...report.swap, sdk: { wrote: r.wrote, outside: r.outside.length } };
  });
});

test('runner protocol basics the parity harness relies on', async () => {
  const d = sideDirs('proto');
  const runner = await startRunner({ workdir: d.work, outputs: d.outputs });
  try {
    assert.equal(runner.ready.op, 'ready');
    assert.equal(typeof runner.ready.pid, 'number');
    assert.equal(realpathSync(runner.ready.workdir), d.work);
    assert.equal(realpathSync(runner.ready.outputs), d.outputs);
    const unknown = await runner.call('web_fetch', { url: 'http://example.invalid/' });
    assert.equal(unknown.is_error, true);
    assert.equal(typeof unknown.text, 'string');
    assert.deepEqual(await runner.call('bash', { command: 'echo ok' }), { is_error: false, text: 'ok' });
  } finally {
    await runner.close();
  }
});

// What the sandboxed run relies on: the runner reports /workspace and
// /mnt/session/outputs, its tools work there, and the host around the
// workdir is really gone (else the sandboxed comparison would prove little).
test('sandboxed runner basics the parity harness relies on', async (t) => {
  if (!needSandbox(t)) return;
  const d = sideDirs('sbox', undefined, true);
  const runner = await startRunner({ workdir: d.work, outputs: d.outputs, args: SANDBOX.args });
  try {
    assert.equal(runner.ready.op, 'ready');
    assert.equal(runner.ready.workdir, SANDBOX.workdir);
    assert.equal(runner.ready.outputs, SANDBOX.outputs);
    assert.deepEqual(await runner.call('bash', { command: 'pwd' }), { is_error: false, text: SANDBOX.workdir });
    assert.deepEqual(await runner.call('bash', { command: `test -e ${d.base} && echo visible || echo hidden` }),
      { is_error: false, text: 'hidden' });
    assert.deepEqual(await runner.call('read', { file_path: `${SANDBOX.workdir}/a.txt` }),
      { is_error: false, text: 'row1\nrow2\nrow3\nrow4\nrow5\n' });
    assert.deepEqual(await runner.call('write', { file_path: 'made.txt', content: 'm' }).then((r) => r.is_error), false);
    if (SANDBOX.uid !== null) assert.equal(lstatSync(join(d.work, 'made.txt')).uid, SANDBOX.uid, 'owner of a file made inside');
  } finally {
    await runner.close();
  }
});
