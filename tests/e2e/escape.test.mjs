// Escape attempts against the session sandbox (sandbox-notes §3, one test per
// row; §5.2 levels; §5.4 limits), each made through the real tool path: a
// bash or file tool call that `airlock worker` serves for a session of the
// real hub. Each asserts the attempt was blocked and then that the machine is
// healthy and the next session on the same worker works (lib/escape.mjs
// assertHealthy).
//
// Every probe is harmless where it is NOT blocked (§5.6): counts, sizes and
// times are bounded, mount targets do not exist, unshare affects only the
// probe, ptrace is TRACEME or the probe's own child, the metadata address is
// only ever tried inside a network namespace this test creates, where a
// stand-in listener holds it. AIRLOCK_E2E_ESCAPE_SELFTEST=1 runs the rows
// against a worker without the sandbox flags: then every escape row must fail.
//
// When the host lacks a layer, the rows needing it skip with the reason;
// AIRLOCK_SANDBOX_MUST_WORK=1 makes those skips failures.
import { describe, test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { BIN, startHub, until, tempDir } from './lib/hub.mjs';
import {
  SELFTEST, rank, marker, check, probe, skipOr, needLevel, launchWorker, isolationLine, environment,
  procsWith, killMarked, removeAll, assertHealthy, canNetns, withNetns, startHubInNetns, loopbackListener, workerTrouble,
} from './lib/escape.mjs';

// A failing row reports the workers' warnings and errors with its own.
const test = (name, fn) => nodeTest(name, async (t) => {
  try {
    return await fn(t);
  } catch (e) {
    e.message += workerTrouble();
    throw e;
  }
});

const MiB = 1 << 20;
const CANARY = `canary-${marker()}${marker()}`;
// Secret-shaped names (§3.17: *_TOKEN, *SECRET*, AWS_*) a worker's host may have.
const SECRETISH = {
  GITHUB_TOKEN: `ghtok-${marker()}${marker()}`,
  AWS_SECRET_ACCESS_KEY: `awssec-${marker()}${marker()}`,
  E2E_DB_SECRET: `dbsec-${marker()}${marker()}`,
};
const EPERM = '1';
const ENOSYS = '38';

// ---- fixtures ---------------------------------------------------------------

const cleanups = [];
const allMarkers = [];
const mark = () => { const m = marker(); allMarkers.push(m); return m; };

// One hub; the main worker (level ≥ B, small limits, canaries in its env)
// serves most rows at once, each row in sessions of its own.
let mainP;
function main() {
  mainP ??= (async () => {
    const hub = await startHub();
    cleanups.push(async () => { await hub.stop().catch(() => {}); hub.cleanup(); });
    const ctx = await environment(hub);
    const root = tempDir('airlock-e2e-esc-root-');
    const w = launchWorker({
      baseUrl: hub.url, environmentId: ctx.envId, envKey: ctx.envKey, root,
      args: ['--max-sessions', '32', '--pids-max', '64', '--tmp-size', String(64 * MiB), '--nofile', '256'],
      env: { AIRLOCK_CANARY_SECRET: CANARY, ...SECRETISH },
    });
    cleanups.push(async () => { await w.stop(); removeAll([root]); });
    const iso = await isolationLine(w);
    return { hub, ctx, w, root, iso };
  })();
  return mainP;
}

// Another environment on the main hub with a worker of its own (own flags/env).
async function sideWorker(args, env = {}) {
  const { hub } = await main();
  const ctx = await environment(hub);
  const root = tempDir('airlock-e2e-esc-root-');
  const w = launchWorker({ baseUrl: hub.url, environmentId: ctx.envId, envKey: ctx.envKey, root, args, env });
  cleanups.push(async () => { await w.stop(); removeAll([root]); });
  return { ctx, w, root, iso: await isolationLine(w) };
}

// The host's secrets a sandbox must not show (the test runs as root).
const hostShadowLine = (() => { try { return readFileSync('/etc/shadow', 'utf8').split('\n')[0] || null; } catch { return null; } })();
const hostRootEntries = (() => { try { return readdirSync('/root').filter((e) => e.length >= 3); } catch { return []; } })();

// Sections of an output made with `echo ==name==` lines.
function sections(out) {
  const s = {};
  let cur = '';
  for (const l of out.split('\n')) {
    const m = l.match(/^==(\w+)==$/);
    if (m) { cur = m[1]; s[cur] = []; } else if (cur) s[cur].push(l);
  }
  return s;
}
// The text of result i, which must show the probe ran to its end (a row
// whose probe never ran, e.g. the runner died, must not pass).
function ranOut(r, i, D) {
  const txt = r.results[i]?.text ?? '';
  assert.ok(txt.includes(`end-${D}`), `the probe did not run to its end:\n${clip(txt)}`);
  return txt;
}
const clip = (s, n = 3000) => (s.length > n ? `${s.slice(0, n)}…[${s.length - n} more]` : s);

// Raw syscall probes through perl's syscall() (x86_64 numbers). Arguments
// make each call fail harmlessly when it is NOT blocked (the kernel answers
// EINVAL/EFAULT/ENOENT/EBADF/ENOTTY, or the call affects only this process);
// seccomp answers EPERM (clone3: ENOSYS). ptrace last: TRACEME, then an
// attach to the probe's own child.
const PERL_SYSCALLS = [
  'use POSIX ();', '$| = 1;', 'my $m = $ARGV[0];',
  // syscall() has prototype ($@): the number must be a scalar of its own.
  'sub probe { my ($name, $nr, @a) = @_; $! = 0; my $r = syscall($nr, @a); my $e = $! + 0; print "$name=", ($r == -1 ? $e : "ok"), "\\n"; }',
  'open(my $null, "<", "/dev/null") or die "open /dev/null: $!";',
  'my $nfd = fileno($null); my $ch = "x"; my $uring = "\\0" x 120;',
  'probe("unshare_user", 272, 0x10000000);',
  'probe("unshare_mnt", 272, 0x20000);',
  'probe("unshare_net", 272, 0x40000000);',
  'probe("setns", 308, -1, 0);',
  'probe("clone_newuser", 56, 0x10000200, 0, 0, 0, 0);',
  'probe("clone3", 435, 0, 0);',
  'probe("mount", 165, "none", "/nonexistent-$m", "tmpfs", 0, 0);',
  'probe("umount2", 166, "/nonexistent-$m", 0);',
  'probe("pivot_root", 155, "/nonexistent-$m", "/nonexistent-$m");',
  'probe("open_tree", 428, -100, "/nonexistent-$m", 0);',
  'probe("move_mount", 429, -1, "", -1, "", 0);',
  'probe("io_uring_setup", 425, 0, $uring);',
  'probe("bpf", 321, 9999, 0, 0);',
  'probe("userfaultfd", 323, 1);',
  'probe("perf_event_open", 298, 0, 0, -1, -1, 0);',
  'probe("keyctl", 250, 9999, 0, 0, 0, 0);',
  'probe("add_key", 248, 0, 0, 0, 0, 0);',
  'probe("request_key", 249, 0, 0, 0, 0);',
  'probe("kexec_load", 246, 0, 1000, 0, 0x100);',
  'probe("init_module", 175, 0, 0, 0);',
  'probe("finit_module", 313, -1, 0, 0);',
  'probe("process_vm_readv", 310, $$, 0, 0, 0, 0, 0);',
  'probe("process_vm_writev", 311, $$, 0, 0, 0, 0, 0);',
  'probe("tiocsti", 16, $nfd, 0x5412, $ch);',
  // TIOCSTI with high bits set: the kernel takes the low 32 (CVE-2019-10063).
  'probe("tiocsti_hi", 16, $nfd, -4294945774, $ch);',
  'probe("tioclinux", 16, $nfd, 0x541C, $ch);',
  'for my $s (["packet", 17, 3, 0], ["raw_inet", 2, 3, 1]) { my ($n, @a) = @$s; $! = 0;',
  '  my $ok = socket(my $fh, $a[0], $a[1], $a[2]); print "socket_$n=", ($ok ? "ok" : $! + 0), "\\n"; close($fh) if $ok; }',
  'my $c = fork(); if (defined $c && $c == 0) { sleep 3; POSIX::_exit(0); }',
  'probe("ptrace_attach_child", 101, 16, $c, 0, 0); kill 9, $c; waitpid($c, 0);',
  'probe("ptrace_traceme", 101, 0, 0, 0, 0);',
  // What the process holds, asked of the kernel (not /proc, which Landlock
  // may hide at level C): prctl NNP and seccomp mode, capget, bounding and
  // ambient sets.
  'print "nnp=", syscall(157, 39, 0, 0, 0, 0), "\\n"; print "seccomp_mode=", syscall(157, 21, 0, 0, 0, 0), "\\n";',
  'my $hdr = pack("LL", 0x20080522, 0); my $data = "\\0" x 24; my $cg = syscall(125, $hdr, $data);',
  'print "capget=", ($cg == 0 ? join(",", unpack("L6", $data)) : "err$!"), "\\n";',
  'my ($bnd, $amb) = (0, 0); for my $cap (0..63) { $bnd++ if syscall(157, 23, $cap, 0, 0, 0) == 1;',
  '  $amb++ if syscall(157, 47, 1, $cap, 0, 0) == 1 } print "capbnd=$bnd\\ncapamb=$amb\\n";',
].join(' ');
const SYSCALL_EXPECT = {
  unshare_user: EPERM, unshare_mnt: EPERM, unshare_net: EPERM, setns: EPERM, clone_newuser: EPERM, clone3: ENOSYS,
  mount: EPERM, umount2: EPERM, pivot_root: EPERM, open_tree: EPERM, move_mount: EPERM, io_uring_setup: EPERM,
  bpf: EPERM, userfaultfd: EPERM, perf_event_open: EPERM, keyctl: EPERM, add_key: EPERM, request_key: EPERM,
  kexec_load: EPERM, init_module: EPERM, finit_module: EPERM, process_vm_readv: EPERM, process_vm_writev: EPERM,
  tiocsti: EPERM, tiocsti_hi: EPERM, tioclinux: EPERM, socket_packet: EPERM, socket_raw_inet: EPERM,
  ptrace_attach_child: EPERM, ptrace_traceme: EPERM,
};
const syscallCommand = (m) => [
  `perl -e '${PERL_SYSCALLS}' ${m} 2>&1`,
  'echo ==bins==',
  'unshare -U true 2>&1; echo unshare_U_rc=$?',
  'unshare -m true 2>&1; echo unshare_m_rc=$?',
  'unshare -n true 2>&1; echo unshare_n_rc=$?',
  `mount -t tmpfs x /nonexistent-${m} 2>&1; echo mount_rc=$?`,
  'echo ==end==', `echo end-${m}`,
].join('\n');

function assertSyscallsBlocked(out) {
  const got = {};
  for (const l of out.split('\n')) {
    const m = l.match(/^(\w+)=(\S+)$/);
    if (m) got[m[1]] = m[2];
  }
  const wrong = Object.entries(SYSCALL_EXPECT).filter(([k, v]) => got[k] !== v).map(([k, v]) => `${k}: ${got[k]} (want ${v})`);
  assert.deepEqual(wrong, [], `syscalls not blocked as expected:\n${out}`);
  const s = sections(out);
  const bins = (s.bins ?? []).join('\n');
  for (const k of ['unshare_U', 'unshare_m', 'unshare_n', 'mount']) {
    const m = bins.match(new RegExp(`^${k}_rc=(\\d+)$`, 'm'));
    assert.ok(m && m[1] !== '0', `${k} succeeded:\n${bins}`);
  }
  // mount(2) let through fails on the missing target ("does not exist");
  // refused it never looks at the path (libmount then guesses other words).
  assert.doesNotMatch(bins, /mount point does not exist/, `mount(2) got as far as the path lookup:\n${bins}`);
  const held = { nnp: got.nnp, seccomp_mode: got.seccomp_mode, capget: got.capget, capbnd: got.capbnd, capamb: got.capamb };
  assert.deepEqual(held, { nnp: '1', seccomp_mode: '2', capget: '0,0,0,0,0,0', capbnd: '0', capamb: '0' },
    'no_new_privs, seccomp filter mode, no capabilities (effective, permitted, inheritable, bounding, ambient)');
}

before(() => {
  // Show why everything fails when the sandbox is not there yet.
  if (!SELFTEST) {
    const p = probe();
    if (p.json) console.log(`# isolation probe: level ${p.json.level}, missing ${JSON.stringify(p.json.missing)}`);
  }
});

after(async () => {
  for (const c of cleanups.reverse()) { try { await c(); } catch { /* keep cleaning */ } }
  killMarked(allMarkers);
});

describe('sandbox escapes', { concurrency: true }, () => {
  // ---- §3.1 / file system ----------------------------------------------------

  test("§3.1 another session's workspace: B cannot read A's file by host path, /proc/*/root or /proc/*/cwd", async (t) => {
    if (!needLevel(t, 'B', 'cross-session isolation')) return;
    const { ctx, w, root } = await main();
    const D = mark();
    const secret = `xsecret-${D}-${marker()}`;
    const a = await ctx.start([
      ['write', { file_path: `secret-${D}.txt`, content: `${secret}\n` }],
      ['bash', { command: `for i in $(seq 1 600); do [ -e release-${D} ] && break; sleep 0.05; done; echo released`, timeout_ms: 60000 }],
    ]);
    // A is alive (its runner and shell exist) while B probes.
    const ra = await ctx.waitResults(a, 1, { what: "A's write" });
    assert.equal(ra[0].isError, false, `A's write failed: ${ra[0].text}`);
    await until(() => ctx.results(a), (r) => r.length === 2, { what: "A's second call to start" });
    const wsA = w.workdirFor(a);
    try {
      const b = await ctx.run([
        ['bash', {
          command: [
            `cat ${wsA}/secret-${D}.txt`,
            `cat /proc/[0-9]*/root${wsA}/secret-${D}.txt`,
            `cat /proc/[0-9]*/cwd/secret-${D}.txt`,
            `cat /proc/[0-9]*/root/workspace/secret-${D}.txt`,
            `grep -rs xsecret- ${root}`,
          ].map((c) => `${c} 2>&1 | head -c 3000`).join('; echo; ') +
            `; echo; echo ==ls==; ls -A ${root}/sessions ${wsA} 2>/dev/null | head -100; echo ==end==; echo end-${D}`,
        }],
        ['read', { file_path: `${wsA}/secret-${D}.txt` }],
        ['grep', { pattern: 'xsecret-', path: wsA }],
        ['glob', { pattern: '**/*', path: wsA }],
      ]);
      ranOut(b, 0, D);
      assert.ok(!b.out.includes(secret), `B read A's file:\n${clip(b.out)}`);
      // (B's own command names A's path, so its error messages do too.)
      const listed = (sections(b.results[0].text ?? '').ls ?? []).filter((l) => l === a || l === `secret-${D}.txt`);
      assert.deepEqual(listed, [], `B listed A's session or files:\n${clip(b.out)}`);
      for (const r of b.results.slice(1)) assert.equal(r.isError, true, `${r.name} of A's workspace succeeded: ${r.text}`);
      writeFileSync(join(wsA, `release-${D}`), '');
      const ea = await ctx.waitEnd(a);
      assert.equal(ea[1].text, 'released');
      await assertHealthy(ctx, w, { sids: [a, b.sid], markers: [D] });
    } finally {
      if (existsSync(wsA)) writeFileSync(join(wsA, `release-${D}`), '');
    }
  });

  test('§3.1 host files: /etc/shadow, /root and the worker --root are not readable', async (t) => {
    if (!needLevel(t, 'B', 'host file isolation')) return;
    const { ctx, w, root } = await main();
    const D = mark();
    const r = await ctx.run([
      ['bash', {
        command: [
          'echo ==shadow==', 'cat /etc/shadow 2>&1 | head -c 3000',
          'echo ==root==', 'ls -A /root 2>&1 | head -100',
          'echo ==wroot==', `ls -A ${root} ${root}/sessions 2>&1 | head -100`,
          'echo ==p1==', 'cat /proc/1/root/etc/shadow 2>&1 | head -c 3000',
          'echo ==end==', `echo end-${D}`,
        ].join('\n'),
      }],
      ['read', { file_path: '/etc/shadow' }],
      ['glob', { pattern: '*', path: '/root' }],
    ]);
    ranOut(r, 0, D);
    if (hostShadowLine) assert.ok(!r.out.includes(hostShadowLine), 'the host /etc/shadow was readable (content not shown)');
    const s = sections(r.results[0].text ?? '');
    const leakedRoot = (s.root ?? []).filter((l) => hostRootEntries.includes(l.trim()));
    assert.deepEqual(leakedRoot, [], `the host /root was listable:\n${(s.root ?? []).join('\n')}`);
    const wroot = (s.wroot ?? []).join('\n');
    assert.ok(!/^sessions$/m.test(wroot) && !wroot.includes(r.sid), `the worker --root was listable:\n${wroot}`);
    for (const x of r.results.slice(1)) assert.equal(x.isError, true, `${x.name} ${JSON.stringify(x.input)} succeeded: ${clip(x.text ?? '')}`);
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.1 writing outside the workspace: /usr, /etc, the --root, `..` and a symlink, by bash and by the file tools', async (t) => {
    if (!needLevel(t, 'B', 'file-system confinement')) return;
    const { ctx, w, root } = await main();
    const D = mark();
    const outside = join(root, `outside-${D}.txt`);
    writeFileSync(outside, 'old\n');
    const fixed = [`/usr/x-${D}`, `/etc/x-${D}`, `/etc/y-${D}`, `/etc/z-${D}`, `${root}/x-${D}`, `${root}/sessions/x-${D}`,
      `/x-${D}`, `/tmp/x-${D}`];
    let ws;
    const candidates = () => [...fixed, ...(ws ? [1, 2, 3].map((n) => resolve(ws, '../'.repeat(n), `x-${D}`)) : [])];
    try {
      const r = await ctx.run([
        ['bash', {
          command: `for p in /usr/x-${D} /etc/x-${D} ${root}/x-${D} ${root}/sessions/x-${D} ../x-${D} ../../x-${D} ../../../x-${D}; do ` +
            'if (echo pwn > "$p") 2>/dev/null; then echo "wrote $p"; else echo "denied $p"; fi; done; ' +
            `ln -s /etc etc-${D}; (echo pwn > etc-${D}/y-${D}) 2>/dev/null && echo wrote-link || echo denied-link; ` +
            `(echo pwned >> ${outside}) 2>/dev/null && echo wrote-outside || echo denied-outside; echo end-${D}`,
        }],
        ['write', { file_path: `/etc/x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `/usr/x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `../x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `../../x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `../../../x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `a/../../x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `${root}/x-${D}`, content: 'pwn\n' }],
        ['write', { file_path: `etc-${D}/z-${D}`, content: 'pwn\n' }],
        ['edit', { file_path: `../../../outside-${D}.txt`, old_string: 'old', new_string: 'pwned' }],
        ['edit', { file_path: outside, old_string: 'old', new_string: 'pwned' }],
      ]);
      ws = w.workdirFor(r.sid);
      const bash = ranOut(r, 0, D);
      assert.match(bash, new RegExp(`^denied /usr/x-${D}$`, 'm'), `bash wrote to /usr:\n${bash}`);
      assert.match(bash, new RegExp(`^denied /etc/x-${D}$`, 'm'), `bash wrote to /etc:\n${bash}`);
      for (const x of r.results.slice(1)) assert.equal(x.isError, true, `${x.name} ${x.input.file_path} succeeded: ${x.text}`);
      const made = candidates().filter((p) => existsSync(p));
      assert.deepEqual(made, [], `files appeared outside the workspace:\n${bash}`);
      assert.equal(readFileSync(outside, 'utf8'), 'old\n', `a file outside the workspace was changed:\n${bash}`);
      await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
    } finally {
      removeAll(candidates());
    }
  });

  test('§3.1 symlink swap during write: a link flipped to /etc, .., /tmp while write calls run; nothing lands outside', async (t) => {
    if (!needLevel(t, 'B', 'file-system confinement')) return;
    const { ctx, w, root } = await main();
    const D = mark();
    const N = 30;
    const names = Array.from({ length: N }, (_, i) => `f-${D}-${i}`);
    let ws;
    const dirs = () => ['/etc', '/usr', '/tmp', '/', root, join(root, 'sessions'), ...(ws ? [resolve(ws, '..')] : [])];
    const landed = () => dirs().flatMap((d) => names.map((n) => join(d, n))).filter((p) => existsSync(p));
    try {
      const r = await ctx.run([
        ['bash', {
          command: `mkdir -p in-${D}; (exec -a flip-${D} bash -c 'end=$((SECONDS+20)); ` +
            `while [ $SECONDS -lt $end ] && [ ! -e stop-${D} ]; do ln -sfn in-${D} d-${D}; ln -sfn /etc d-${D}; ` +
            `ln -sfn .. d-${D}; ln -sfn /tmp d-${D}; done') >/dev/null 2>&1 & FLIP=$!; echo started`,
        }],
        ...names.map((n, i) => ['write', { file_path: `d-${D}/${n}`, content: `x${i}\n` }]),
        ['bash', { command: `touch stop-${D}; wait $FLIP; echo inside=$(ls in-${D} | wc -l); echo outside=$(ls -A / /etc /tmp /usr .. 2>/dev/null | grep -c f-${D}); echo end-${D}` }],
      ], { timeoutMs: 120000 });
      ws = w.workdirFor(r.sid);
      assert.equal(r.results[0].text, 'started');
      const last = ranOut(r, r.results.length - 1, D);
      assert.match(last, /^outside=0$/m, `writes landed outside /workspace inside the sandbox:\n${last}`);
      assert.deepEqual(landed(), [], 'writes landed outside the workspace on the host');
      await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
    } finally {
      removeAll(landed());
    }
  });

  // ---- §3.2 /proc, §3.17 secrets ------------------------------------------------

  test("§3.2 /proc: pid 1's and every readable environ hold neither the worker's canary nor its key; no host pids, no /sys", async (t) => {
    if (!needLevel(t, 'B', 'a private /proc')) return;
    const { ctx, w } = await main();
    const D = mark();
    const r = await ctx.run([['bash', {
      command: [
        'echo ==environ1==', "tr '\\0' '\\n' < /proc/1/environ 2>&1 | head -c 20000",
        'echo ==environs==', "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done 2>/dev/null | sort -u | head -c 40000",
        'echo ==cmdlines==', "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null | head -c 20000",
        'echo ==npids==', 'ls -d /proc/[0-9]* | wc -l',
        'echo ==sys==', 'ls -A /sys 2>&1 | head -20',
        'echo ==mounts==', "awk '{ for (i = 1; i <= NF; i++) if ($i == \"-\") print $(i+1), $5 }' /proc/self/mountinfo",
        'echo ==end==', `echo end-${D}`,
      ].join('\n'),
    }]]);
    const out = ranOut(r, 0, D);
    assert.ok(!out.includes(CANARY), `the worker's canary was readable:\n${clip(out)}`);
    assert.ok(!out.includes(ctx.envKey), 'the environment key was readable (not shown)');
    const s = sections(out);
    const n = Number((s.npids ?? [])[0]);
    assert.ok(n > 0 && n <= 30, `the sandbox sees ${n} processes (host pids?)`);
    const cmd = (s.cmdlines ?? []).join('\n');
    assert.ok(!/airlock[^\n]* (worker --root|hub --listen)/.test(cmd), `host processes visible:\n${clip(cmd)}`);
    const sys = (s.sys ?? []).filter((l) => ['fs', 'kernel', 'class', 'devices', 'block', 'bus', 'module'].includes(l.trim()));
    assert.deepEqual(sys, [], `/sys is there:\n${(s.sys ?? []).join('\n')}`);
    const cg = (s.mounts ?? []).filter((l) => /^cgroup2? /.test(l));
    assert.deepEqual(cg, [], 'cgroupfs is mounted inside');
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.17 credentials: env, /proc and the session directories hold no key, canary or ANTHROPIC_/AIRLOCK_ variable', async (t) => {
    if (!needLevel(t, 'B', 'secret isolation')) return;
    const { ctx, w } = await main();
    const D = mark();
    assert.ok(ctx.envKey.length >= 16, 'the environment key is too short to search for');
    const r = await ctx.run([['bash', {
      command: [
        'echo ==env==', 'env',
        'echo ==grep==',
        "timeout 20 grep -rIaso -E '(AIRLOCK_[A-Z_]*|ANTHROPIC_[A-Z_]*)=[^[:space:]]{0,120}' . /mnt/session /tmp " +
          "/proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | head -50",
        'echo ==end==', `echo end-${D}`,
      ].join('\n'),
    }], ['grep', { pattern: 'ANTHROPIC_|AIRLOCK_|sk-ant', path: '.' }]]);
    ranOut(r, 0, D);
    assert.ok(!r.out.includes(CANARY), `the canary leaked:\n${clip(r.out)}`);
    assert.ok(!r.out.includes(ctx.envKey), 'the environment key leaked (not shown)');
    const s = sections(r.results[0].text ?? '');
    const env = (s.env ?? []).filter((l) => /^(ANTHROPIC|AIRLOCK)_/i.test(l));
    assert.deepEqual(env, [], 'ANTHROPIC_/AIRLOCK_ variables in the sandbox env');
    assert.deepEqual((s.grep ?? []).filter(Boolean), [], 'ANTHROPIC_/AIRLOCK_ assignments found in files or /proc');
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.17 host variables with secret-shaped names (*_TOKEN, *SECRET*, AWS_*) are not passed into the sandbox', async (t) => {
    if (!needLevel(t, 'B', 'the env allowlist')) return;
    const { ctx, w } = await main();
    const D = mark();
    const r = await ctx.run([['bash', { command: `env; echo end-${D}` }]]);
    ranOut(r, 0, D);
    const leaked = Object.entries(SECRETISH).filter(([, v]) => r.out.includes(v)).map(([k]) => k);
    assert.deepEqual(leaked, [], 'secret-shaped host variables reached the sandbox env');
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  // ---- §3.3-10, 19, 20: syscalls ------------------------------------------------

  test('§3.3-10,19,20 dangerous syscalls: ptrace, process_vm_*, keyctl, mount family, unshare/setns/clone ns, clone3, bpf, userfaultfd, io_uring, perf, kexec/modules, TIOCSTI/TIOCLINUX, raw sockets; NNP, no caps', async (t) => {
    if (!needLevel(t, 'B', 'seccomp')) return;
    const { ctx, w } = await main();
    const D = mark();
    const r = await ctx.run([['bash', { command: syscallCommand(D), timeout_ms: 30000 }]]);
    assertSyscallsBlocked(ranOut(r, 0, D));
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  // ---- §3.11-16: resources and processes -----------------------------------------

  test('§3.11 fork bomb: 2000 bounded forks stop at --pids-max 64', async (t) => {
    if (!needLevel(t, 'B', 'a process limit')) return;
    const { ctx, w } = await main();
    const D = mark();
    const r = await ctx.run([['bash', {
      command: "perl -e 'use POSIX (); $| = 1; my @k; my $n = 0; my $err = \"none\"; " +
        'for (1..2000) { my $p = fork(); if (!defined $p) { $err = "$!"; last } ' +
        'if (!$p) { exec("sleep", "5.$ARGV[0]"); POSIX::_exit(0) } push @k, $p; $n++ } ' +
        `print "forked=$n err=$err\\n"; kill 9, @k; 1 while waitpid(-1, 0) > 0;' ${D} 2>&1`,
      timeout_ms: 60000,
    }]]);
    const out = r.results[0].text ?? '';
    const m = out.match(/forked=(\d+) err=(.*)/);
    assert.ok(m, `no result:\n${out}`);
    assert.ok(Number(m[1]) < 64, `forked ${m[1]} processes:\n${out}`);
    assert.match(m[2], /Resource temporarily unavailable/, out);
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.12 memory bomb: allocating up to 4 GiB in 64 MiB steps is stopped near --memory-max 256 MiB', async (t) => {
    if (!needLevel(t, 'B', 'a memory limit')) return;
    const { ctx, w } = await sideWorker(['--max-sessions', '4', '--memory-max', String(256 * MiB)]);
    const D = mark();
    const r = await ctx.run([
      ['bash', {
        command: "perl -e 'open(my $log, \">\", \"mem-$ARGV[0].log\") or die; select($log); $| = 1; my @a; " +
          'for my $i (1..64) { push @a, "x" x (64 << 20); print "alloc=", $i * 64, "\\n" } ' +
          `print "done\\n"' ${D} 2>&1; echo rc=$?; cat mem-${D}.log`,
        timeout_ms: 60000,
      }],
      ['bash', { command: `echo after-${D}` }],
    ], { timeoutMs: 120000 });
    // The probe's own log, written as it goes, in the workspace on the host.
    const log = readFileSync(join(w.workdirFor(r.sid), `mem-${D}.log`), 'utf8');
    assert.match(log, /^alloc=64$/m, `the probe did not start allocating: ${log}`);
    const out = `${r.results[0].text ?? ''}\n${log}`;
    assert.ok(!/^done$/m.test(out), `the 4 GiB allocation completed:\n${clip(out)}`);
    const allocs = [...out.matchAll(/^alloc=(\d+)$/gm)].map((x) => Number(x[1]));
    const max = allocs.length ? Math.max(...allocs) : 0;
    assert.ok(max <= 512, `allocated ${max} MiB under a 256 MiB limit`);
    t.diagnostic(`stopped after ${max} MiB; result: ${clip(out, 300)}; next call: ${r.results[1]?.text}`);
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.13 disk fill: /tmp is a tmpfs of --tmp-size 64 MiB (100 MB write gets ENOSPC)', async (t) => {
    if (!needLevel(t, 'B', 'a private /tmp')) return;
    const { ctx, w } = await main();
    const D = mark();
    try {
      const r = await ctx.run([['bash', {
        command: `{ head -c 100000000 /dev/zero > /tmp/fill-${D}; echo rc=$?; } 2>&1; echo size=$(stat -c %s /tmp/fill-${D}); ` +
          `rm -f /tmp/fill-${D}; df -B1 /tmp | tail -1`,
        timeout_ms: 60000,
      }]]);
      const out = r.results[0].text ?? '';
      assert.match(out, /No space left on device/, out);
      assert.doesNotMatch(out, /^rc=0$/m, out);
      const size = Number(out.match(/^size=(\d+)$/m)?.[1]);
      assert.ok(size > 0 && size <= 64 * MiB, `wrote ${size} bytes to /tmp:\n${out}`);
      await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
    } finally {
      removeAll([`/tmp/fill-${D}`]);
    }
  });

  test('§3.13 disk fill: the workspace is bounded by --fsize 1 MiB (bash gets EFBIG/SIGXFSZ, the write tool an error, the runner lives)', async (t) => {
    if (!needLevel(t, 'B', 'a file-size limit')) return;
    const { ctx, w } = await sideWorker(['--max-sessions', '4', '--fsize', String(MiB)]);
    const D = mark();
    const r = await ctx.run([
      ['bash', {
        command: `{ head -c 3000000 /dev/zero > big-${D}; echo rc=$?; yes | head -c 3000000 > yes-${D}; echo rc2=$?; } 2>&1; ` +
          `echo size=$(stat -c %s big-${D}) size2=$(stat -c %s yes-${D}); rm -f big-${D} yes-${D}`,
        timeout_ms: 30000,
      }],
      ['write', { file_path: `bigw-${D}`, content: 'a'.repeat(1500000) }],
      ['bash', { command: `echo size3=$(stat -c %s bigw-${D} 2>/dev/null || echo 0); echo alive-${D}` }],
    ]);
    const out = r.results[0].text ?? '';
    assert.doesNotMatch(out, /^rc2?=0$/m, `a 3 MB write went through:\n${out}`);
    const m = out.match(/size=(\d+) size2=(\d+)/);
    assert.ok(m && Number(m[1]) <= MiB && Number(m[2]) <= MiB, `file sizes over 1 MiB:\n${out}`);
    assert.equal(r.results[1].isError, true, `the 1.5 MB write tool call succeeded: ${r.results[1].text}`);
    const last = r.results[2].text ?? '';
    assert.match(last, new RegExp(`^alive-${D}$`, 'm'), `the session did not survive: ${last}`);
    assert.ok(Number(last.match(/size3=(\d+)/)?.[1]) <= MiB, last);
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.14 fd exhaustion: --nofile 256 holds (cannot raise, opening more fails) and no fd beyond 0-2 leaks in', async (t) => {
    if (!needLevel(t, 'B', 'an fd limit')) return;
    const { ctx, w } = await main();
    const D = mark();
    const r = await ctx.run([['bash', {
      command: [
        'echo soft=$(ulimit -Sn) hard=$(ulimit -Hn)',
        '(ulimit -n 100000) 2>&1; echo raise_rc=$?',
        "perl -e 'my @f; my $n = 0; my $err = \"none\"; for (1..5000) { open(my $h, \"<\", \"/dev/null\") or do { $err = \"$!\"; last }; " +
          `push @f, $h; $n++ } print "opened=$n err=$err\\n"' ${D}`,
        'echo ==fds==', 'ls -l /proc/self/fd/ | tail -n +2',
      ].join('\n'),
    }]]);
    const out = r.results[0].text ?? '';
    const lim = out.match(/soft=(\d+|unlimited) hard=(\d+|unlimited)/);
    assert.ok(lim && Number(lim[2]) <= 256 && Number(lim[1]) <= 256, `limits: ${lim?.[0]}`);
    assert.doesNotMatch(out, /^raise_rc=0$/m, 'ulimit -n 100000 worked');
    const op = out.match(/opened=(\d+) err=(.*)/);
    assert.ok(op && Number(op[1]) < 256, `opened ${op?.[1]} files`);
    assert.match(op[2], /Too many open files/);
    const extra = (sections(out).fds ?? []).map((l) => l.match(/ (\d+) -> (.*)$/)).filter(Boolean)
      .filter(([, fd, target]) => Number(fd) > 2 && !/^\/proc\/\d+\/fd$/.test(target)).map(([l]) => l);
    assert.deepEqual(extra, [], 'fds beyond 0-2 leaked into the sandbox');
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.15 zombies: orphans re-parented inside the sandbox are reaped', async (t) => {
    if (!needLevel(t, 'B', 'a pid namespace')) return;
    const { ctx, w } = await main();
    const D = mark();
    const r = await ctx.run([['bash', {
      command: `for i in $(seq 1 10); do ( (exec -a z-${D} sleep 0.3) & ); done\n` +
        `for i in $(seq 1 100); do a=$(grep -l 'z[-]${D}' /proc/[0-9]*/cmdline 2>/dev/null | wc -l); ` +
        "z=$(grep -l '^State:[[:space:]]*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); " +
        '[ "$a" = 0 ] && [ "$z" = 0 ] && break; sleep 0.05; done; echo "alive=$a zombies=$z"',
      timeout_ms: 30000,
    }]]);
    assert.equal((r.results[0].text ?? '').trim(), 'alive=0 zombies=0');
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§3.16 a setsid child does not outlive a timed-out call (timeout_ms 500); the shell goes on', async (t) => {
    if (!needLevel(t, 'B', 'killing a whole tree')) return;
    const { ctx, w } = await main();
    const D = mark();
    const sleeps = [`1000.${D}`, `1001.${D}`];
    const sid = await ctx.start([
      ['bash', { command: `(setsid sleep 1001.${D} &); setsid sleep 1000.${D} & sleep 5`, timeout_ms: 500 }],
      ['bash', { command: `for i in $(seq 1 400); do [ -e go-${D} ] && break; sleep 0.05; done; echo alive-${D}`, timeout_ms: 60000 }],
    ]);
    try {
      const r1 = await ctx.waitResults(sid, 1, { what: 'the timed-out call' });
      assert.equal(r1[0].isError, true, `the call did not time out: ${r1[0].text}`);
      assert.match(r1[0].text, /timed out/);
      const left = await until(() => procsWith(sleeps), (ps) => ps.length === 0, { timeoutMs: 5000, what: 'the setsid sleeps gone' })
        .catch(() => procsWith(sleeps));
      assert.deepEqual(left, [], 'setsid children outlived the timeout');
    } finally {
      const ws = w.workdirFor(sid);
      if (existsSync(ws)) writeFileSync(join(ws, `go-${D}`), '');
      killMarked(sleeps);
    }
    const res = await ctx.waitEnd(sid);
    assert.equal(res[1].text, `alive-${D}`, 'the shell did not go on after the timeout');
    await assertHealthy(ctx, w, { sids: [sid], markers: [D] });
  });

  // ---- §3.18 network ------------------------------------------------------------

  test("§3.18 host loopback: the hub's port and a test listener on 127.0.0.1 are unreachable; only lo inside", async (t) => {
    if (!needLevel(t, 'B', 'a network namespace')) return;
    const { ctx, w, hub } = await main();
    const D = mark();
    const L = await loopbackListener();
    try {
      const hubPort = new URL(hub.url).port;
      const r = await ctx.run([['bash', {
        command: [
          ...[hubPort, L.port].map((p) => `timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${p} && echo connected-${p}' 2>&1; echo rc-${p}=$?`),
          `timeout 5 bash -c 'exec 3<>/dev/tcp/localhost/${L.port} && echo connected-localhost' 2>&1`,
          'echo ==ifaces==', "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
          'echo ==end==', `echo end-${D}`,
        ].join('\n'),
        timeout_ms: 30000,
      }]]);
      const out = r.results[0].text ?? '';
      assert.doesNotMatch(out, /connected-/, out);
      assert.equal(L.seen.length, 0, `the host listener saw ${L.seen.length} connections`);
      assert.deepEqual((sections(out).ifaces ?? []).filter(Boolean), ['lo'], out);
      await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
    } finally {
      await L.close();
    }
  });

  test("§3.18 network namespaces: each session has a fresh one with only lo up (the zygote's pool), never the host's nor another session's", async (t) => {
    if (!needLevel(t, 'B', 'a network namespace')) return;
    const { ctx, w } = await main();
    const D = mark();
    const probe = ['readlink /proc/self/ns/net', "awk 'NR>2{print $1}' /proc/net/dev", 'ip -o link show lo',
      `echo end-${D}`].join('\n');
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await ctx.run([['bash', { command: probe, timeout_ms: 30000 }]]));
    const ns = runs.map((r) => (r.results[0].text ?? '').split('\n')[0]);
    for (const [i, r] of runs.entries()) {
      const out = r.results[0].text ?? '';
      assert.match(ns[i], /^net:\[\d+\]$/, out);
      assert.match(out, /^lo:$/m, out);
      assert.match(out, /<LOOPBACK,UP,LOWER_UP>/, `lo is not up:\n${out}`);
    }
    const host = readlinkSync('/proc/self/ns/net');
    assert.ok(!ns.includes(host), `a session runs in the host's network namespace: ${ns} / ${host}`);
    assert.equal(new Set(ns).size, ns.length, `sessions share a network namespace: ${ns}`);
    await assertHealthy(ctx, w, { sids: runs.map((r) => r.sid), markers: [D] });
  });

  test('§3.18 cloud metadata: 169.254.169.254 (a stand-in in a test netns) is unreachable; with --network host the same probe reaches it', async (t) => {
    if (!needLevel(t, 'B', 'a network namespace')) return;
    const why = canNetns();
    if (why) return skipOr(t, why);
    await withNetns(async (ns) => {
      const hub = await startHubInNetns(ns);
      const workers = [];
      const dirs = [];
      try {
        const mk = async (args) => {
          const e = await environment(hub);
          const root = tempDir('airlock-e2e-esc-ns-');
          dirs.push(root);
          const w = launchWorker({ prefix: ['ip', 'netns', 'exec', ns], baseUrl: hub.innerUrl, environmentId: e.envId,
            envKey: e.envKey, root, args });
          workers.push(w);
          await isolationLine(w);
          return { e, w };
        };
        const D = mark();
        const cmd = `timeout 5 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80 && printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3 && head -c 100 <&3' 2>&1; ` +
          `echo rc=$?; command -v curl >/dev/null && curl -sS -m 5 http://169.254.169.254/${D} 2>&1; echo end-${D}`;
        const none = await mk(['--max-sessions', '2']);
        const r = await none.e.run([['bash', { command: cmd, timeout_ms: 30000 }]]);
        ranOut(r, 0, D);
        assert.doesNotMatch(r.out, /LEAK/, r.out);
        assert.deepEqual(hub.conns(), [], 'the stand-in metadata listener saw a connection');
        await assertHealthy(none.e, none.w, { sids: [r.sid], markers: [D] });

        // The control: the probe does reach the stand-in when the session
        // shares the worker's network namespace.
        const host = await mk(['--max-sessions', '2', '--network', 'host']);
        const c = await host.e.run([['bash', { command: cmd, timeout_ms: 30000 }]]);
        ranOut(c, 0, D);
        assert.match(c.out, /LEAK/, `with --network host the probe did not reach the stand-in:\n${c.out}`);
        assert.ok(hub.conns().length >= 1, 'the stand-in saw no connection with --network host');
      } finally {
        for (const w of workers) await w.stop();
        await hub.stop();
        removeAll(dirs);
      }
    });
  });

  // ---- §5.2 degradation -----------------------------------------------------------

  const forcedC = () => check(['--min-isolation', 'C'], { AIRLOCK_SANDBOX_FORCE_LEVEL: 'C' });
  let levelCP;
  const levelC = () => {
    levelCP ??= sideWorker(['--max-sessions', '4', '--min-isolation', 'C'],
      { AIRLOCK_SANDBOX_FORCE_LEVEL: 'C', AIRLOCK_CANARY_SECRET: CANARY });
    return levelCP;
  };
  const needC = (t) => {
    const p = SELFTEST ? probe() : forcedC();
    if (!needLevel(t, 'C', 'level C (Landlock + seccomp)', p)) return false;
    if (!SELFTEST) assert.equal(p.json.level, 'C', `AIRLOCK_SANDBOX_FORCE_LEVEL=C reported level ${p.json.level}`);
    return true;
  };

  test('§5.1 an unprivileged worker (uid 65534): level B in a user namespace of its own, files land as its uid, no network namespace pool', async (t) => {
    if (SELFTEST) return t.skip('not an escape row');
    if (process.getuid() !== 0) return skipOr(t, 'running a worker as uid 65534 needs root');
    // Copies of the binaries where uid 65534 may run them (the checkout may
    // sit in a directory it cannot enter); the runner is found beside.
    const bins = tempDir('airlock-e2e-esc-nrbin-');
    chmodSync(bins, 0o755);
    for (const b of ['airlock', 'airlock-sandbox-runner']) {
      copyFileSync(join(dirname(BIN), b), join(bins, b));
      chmodSync(join(bins, b), 0o755);
    }
    cleanups.push(async () => removeAll([bins]));
    const as65534 = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
    const c = spawnSync(as65534[0], [...as65534.slice(1), join(bins, 'airlock'), 'worker', '--check', '--min-isolation', 'C'], {
      env: { PATH: process.env.PATH, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', ANTHROPIC_ENVIRONMENT_ID: 'env_check',
        ANTHROPIC_ENVIRONMENT_KEY: 'check' },
      encoding: 'utf8', timeout: 60000,
    });
    if (c.error) return skipOr(t, `cannot run setpriv: ${c.error.code}`);
    const p = { code: c.status, stdout: c.stdout ?? '', stderr: c.stderr ?? '', json: null };
    try { p.json = JSON.parse(p.stdout.trim()); } catch { /* reported by needLevel */ }
    // Hosts may allow user namespaces to root only (Ubuntu's
    // apparmor_restrict_unprivileged_userns=1): then this is level C.
    if (!needLevel(t, 'B', 'an unprivileged user namespace (for uid 65534)', p)) return;
    assert.equal(p.json.level, 'B', 'no writable cgroups without root');

    const { hub } = await main();
    const ctx = await environment(hub);
    const root = tempDir('airlock-e2e-esc-nrroot-');
    chownSync(root, 65534, 65534);
    const w = launchWorker({ prefix: as65534, bin: join(bins, 'airlock'), baseUrl: hub.url, environmentId: ctx.envId,
      envKey: ctx.envKey, root });
    cleanups.push(async () => { await w.stop(); removeAll([root]); });
    assert.equal((await isolationLine(w)).level, 'B');
    const D = mark();
    const r = await ctx.run([['bash', { command: ['id -u', 'readlink /proc/self/ns/net', 'echo x > made-inside',
      'cat /etc/shadow 2>&1 | head -c 80; echo', `echo end-${D}`].join('\n'), timeout_ms: 30000 }]]);
    const out = ranOut(r, 0, D);
    const [uid, ns] = out.split('\n');
    assert.equal(uid, '0', out);
    assert.notEqual(ns, readlinkSync('/proc/self/ns/net'), out);
    assert.match(out, /Permission denied/, 'the host\'s /etc/shadow is readable');
    assert.equal(statSync(join(w.workdirFor(r.sid), 'made-inside')).uid, 65534);
    // The zygote runs as 65534 too, and cannot make namespaces for a pool.
    const kids = readFileSync(`/proc/${w.pid}/task/${w.pid}/children`, 'utf8').split(/\s+/).filter(Boolean);
    const z = kids.find((k) => { try { return readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('--zygote'); } catch { return false; } });
    assert.ok(z, 'no zygote');
    assert.equal(statSync(`/proc/${z}`).uid, 65534);
    assert.deepEqual(readdirSync(`/proc/${z}/fd`).map(Number).sort((a, b) => a - b), [0, 1, 2, 3]);
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§5.2 level C (AIRLOCK_SANDBOX_FORCE_LEVEL=C): writing /etc, /usr, reading /root and the --root outside the session stay blocked', async (t) => {
    if (!needC(t)) return;
    const { ctx, w, root, iso } = await levelC();
    if (!SELFTEST) assert.equal(iso.level, 'C');
    const D = mark();
    const secretDir = join(root, `outside-${D}`);
    mkdirSync(secretDir);
    const secret = `csecret-${D}-${marker()}`;
    writeFileSync(join(secretDir, 'secret.txt'), `${secret}\n`);
    const targets = [`/etc/x-${D}`, `/usr/x-${D}`, join(root, `x-${D}`), join(root, 'sessions', `x-${D}`), join(secretDir, `x-${D}`)];
    try {
      const r = await ctx.run([
        ['bash', {
          command: [
            'echo ==pwd==', 'pwd',
            'echo ==write==',
            `for p in ${targets.join(' ')} ../x-${D} ../../x-${D}; do if (echo pwn > "$p") 2>/dev/null; then echo "wrote $p"; else echo "denied $p"; fi; done`,
            'echo ==root==', 'ls -A /root 2>&1 | head -100',
            'echo ==secret==', `cat ${secretDir}/secret.txt 2>&1`,
            'echo ==wroot==', `ls -A ${root} ${root}/sessions 2>&1 | head -100`,
            'echo ==end==', `echo end-${D}`,
          ].join('\n'),
        }],
        ['write', { file_path: `../x-${D}`, content: 'pwn\n' }],
      ]);
      const out = r.results[0].text ?? '';
      const s = sections(out);
      const ws = w.workdirFor(r.sid);
      assert.equal((s.pwd ?? [])[0], ws, 'at level C the tools see host paths');
      const wrote = (s.write ?? []).filter((l) => l.startsWith('wrote'));
      assert.deepEqual(wrote, [], `writes outside the workspace went through:\n${out}`);
      const made = [...targets, resolve(ws, '..', `x-${D}`), resolve(ws, '../..', `x-${D}`)].filter((p) => existsSync(p));
      assert.deepEqual(made, [], 'files appeared outside the workspace');
      const leakedRoot = (s.root ?? []).filter((l) => hostRootEntries.includes(l.trim()));
      assert.deepEqual(leakedRoot, [], `/root was listable:\n${(s.root ?? []).join('\n')}`);
      assert.ok(!out.includes(secret), `the --root outside the session was readable:\n${clip(out)}`);
      const wroot = (s.wroot ?? []).join('\n');
      assert.ok(!wroot.includes(`outside-${D}`) && !/^sessions$/m.test(wroot), `the --root was listable:\n${wroot}`);
      assert.equal(r.results[1].isError, true, 'the write tool wrote to ..');
      await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
    } finally {
      removeAll([...targets, join(root, 'sessions', `x-${D}`)]);
    }
  });

  test('§5.2 level C: the dangerous syscalls stay blocked (seccomp, NNP, no caps)', async (t) => {
    if (!needC(t)) return;
    const { ctx, w } = await levelC();
    const D = mark();
    const r = await ctx.run([['bash', { command: syscallCommand(D), timeout_ms: 30000 }]]);
    assertSyscallsBlocked(ranOut(r, 0, D));
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test("§5.2 level C: the worker's environ (canary, key) is not readable through the host /proc", async (t) => {
    if (!needC(t)) return;
    const { ctx, w } = await levelC();
    const D = mark();
    const r = await ctx.run([['bash', {
      command: `tr '\\0' '\\n' < /proc/${w.pid}/environ 2>&1 | head -c 20000; ` +
        "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done 2>/dev/null | grep -a -E '^(AIRLOCK|ANTHROPIC)_' | sort -u | head -c 20000; " +
        `echo end-${D}`,
    }]]);
    ranOut(r, 0, D);
    assert.ok(!r.out.includes(CANARY), `the worker's canary was readable:\n${clip(r.out)}`);
    assert.ok(!r.out.includes(ctx.envKey), 'the environment key was readable (not shown)');
    await assertHealthy(ctx, w, { sids: [r.sid], markers: [D] });
  });

  test('§5.2 --min-isolation A with AIRLOCK_SANDBOX_NO_CGROUPS=1: the worker refuses to start (exit 1, names cgroups)', async (t) => {
    if (SELFTEST) return t.skip('not an escape row');
    const { hub } = await main();
    const ctx = await environment(hub);
    const root = tempDir('airlock-e2e-esc-root-');
    try {
      const c = check(['--min-isolation', 'A'], { AIRLOCK_SANDBOX_NO_CGROUPS: '1' });
      assert.ok(c.json, `--check printed no JSON:\n${c.stdout}\n${c.stderr}`);
      assert.notEqual(c.json.level, 'A', 'level A without cgroups');
      assert.equal(c.code, 1, `--check --min-isolation A exit ${c.code}`);
      assert.match(JSON.stringify(c.json.missing), /cgroup/i);

      const w = launchWorker({ baseUrl: hub.url, environmentId: ctx.envId, envKey: ctx.envKey, root,
        args: ['--min-isolation', 'A'], env: { AIRLOCK_SANDBOX_NO_CGROUPS: '1' } });
      const timer = setTimeout(() => w.kill9(), 30000);
      const ex = await w.exited;
      clearTimeout(timer);
      assert.equal(ex.code, 1, `exit ${ex.code ?? ex.signal}:\n${w.logs()}`);
      assert.match(w.logs(), /cgroup/i, `the refusal does not name cgroups:\n${w.logs()}`);
      assert.doesNotMatch(w.logs(), /claimed work/, 'it claimed work before refusing');
    } finally {
      removeAll([root]);
    }
  });

  test('§5.2 worker --check prints the probe JSON with a level; its exit code follows --min-isolation', async (t) => {
    if (SELFTEST) return t.skip('not an escape row');
    const c = check();
    assert.ok(c.json, `--check printed no JSON (exit ${c.code}):\n${c.stdout}\n${c.stderr}`);
    assert.ok(['A', 'B', 'C', 'D'].includes(c.json.level), `level ${c.json.level}`);
    assert.equal(typeof c.json.features, 'object');
    assert.ok(Array.isArray(c.json.missing), 'missing is not an array');
    assert.ok(Array.isArray(c.json.fixes), 'fixes is not an array');
    assert.equal(c.code, rank(c.json.level) >= rank('B') ? 0 : 1, `exit ${c.code} at level ${c.json.level} (default --min-isolation B)`);
    if (c.json.missing.length === 0) assert.equal(c.json.level, 'A', 'nothing missing but not level A');

    const f = forcedC();
    assert.ok(f.json, `--check under AIRLOCK_SANDBOX_FORCE_LEVEL=C printed no JSON:\n${f.stdout}\n${f.stderr}`);
    assert.ok(rank(f.json.level) <= rank('C'), `forced C reported ${f.json.level}`);
    assert.equal(f.code, f.json.level === 'C' ? 0 : 1, `--min-isolation C exit ${f.code} at ${f.json.level}`);
    const fb = check([], { AIRLOCK_SANDBOX_FORCE_LEVEL: 'C' });
    assert.equal(fb.code, 1, 'level C passed the default --min-isolation B');
  });
});
