// The toolset parity corpus: named groups of tool calls, each run in order
// from a fresh workdir prepared identically (prepare() below, Node fs only)
// through the SDK's own toolset and through `airlock sandbox-runner`
// (parity.test.mjs compares the answers and the resulting trees).
//
// A call is [tool, input] or [tool, input, opts]. In inputs, the strings
// <ROOT> and <OUT> stand for the side's workdir and its outside directory
// (a sibling of the workdir that symlinks point into). opts:
//   sortLines  the SDK itself prints these lines in no fixed order (rg
//              searches files on several threads), so both answers are
//              compared with their lines sorted
//   cancelOn   the call is cancelled once this file (relative to the
//              workdir) appears, which the command creates when it started
//
// Fixture files get fixed, distinct mtimes so that glob's mtime ordering is
// the same on both sides.
import { execFileSync } from 'node:child_process';
import { chmodSync, lutimesSync, mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const b = (command, extra = {}, opts) => ['bash', { command, ...extra }, ...(opts ? [opts] : [])];
const rd = (file_path, view_range) => ['read', view_range === undefined ? { file_path } : { file_path, view_range }];
const wr = (file_path, content) => ['write', content === undefined ? { file_path } : { file_path, content }];
const ed = (file_path, old_string, new_string, replace_all) =>
  ['edit', replace_all === undefined ? { file_path, old_string, new_string } : { file_path, old_string, new_string, replace_all }];
const gl = (pattern, path) => ['glob', path === undefined ? { pattern } : { pattern, path }];
const gr = (pattern, path, opts) => ['grep', path === undefined ? { pattern } : { pattern, path }, ...(opts ? [opts] : [])];
const SORT = { sortLines: true };

const T0 = 1_700_000_000; // fixture mtimes: T0 + 10 s per file, in creation order

const BIG_LINE = (i) => `big ${String(i).padStart(5, '0')} ${'.'.repeat(53)}\n`; // 64 bytes

// Builds the fixture in `work` (the workdir) and `out` (its sibling outside
// directory). Both sides call it with their own dirs; symlinks that leave the
// workdir are relative (../outside/...) except abs_out_link.
export function prepare(work, out, { many = false } = {}) {
  const files = [];
  const file = (rel, data, mode) => {
    const p = join(work, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
    if (mode !== undefined) chmodSync(p, mode);
    files.push(p);
  };
  mkdirSync(join(out, 'sub'), { recursive: true });
  writeFileSync(join(out, 'secret.txt'), 'TOP SECRET\n');
  writeFileSync(join(out, 'sub', 's.txt'), 'outside sub\n');

  file('a.txt', 'row1\nrow2\nrow3\nrow4\nrow5\n');
  file('noeol.txt', 'alpha\nbeta\ngamma');
  file('crlf.txt', 'one\r\ntwo\r\nthree\r\n');
  file('unicode.txt', 'héllo wörld\n日本語テキスト\nemoji 🎉 here\n');
  file('binary.bin', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x74, 0x65, 0x78, 0x74, 0x00, 0x80, 0xc3, 0x28, 0x0a]));
  file('empty.txt', '');
  file('aaa.txt', 'aaa\n');
  file('hello.md', '# hello\nhello world\n');
  file('exec.sh', '#!/bin/sh\necho hi\n', 0o755);
  file('mode640.txt', 'six four zero\n', 0o640);
  file('ro.txt', 'read only\n', 0o444);
  file('.dotfile', 'hello dot\n');
  file('.gitignore', 'ignored.txt\n');
  file('ignored.txt', 'hello ignored\n');
  file('dir/x.txt', 'x marks\nhello from dir\n');
  file('dir/y.md', '# y\n');
  file('dir/.hidden', 'hidden hello\n');
  file('dir/deep/z.txt', 'zzz\nhello deep\n');
  file('dir/deep/deeper/w.txt', 'www\n');
  file('ü/日本.txt', 'unicode path\n');
  file('.git/config', '[core]\n\tbare = false\n');
  file('.git/HEAD', 'ref: refs/heads/main\n');
  file('node_modules/pkg/index.js', 'module.exports = "hello from node_modules";\n');
  file('sub/node_modules/n.txt', 'nested node_modules\n');
  file('sub/keep.txt', 'kept\n');
  file('large/big.txt', Array.from({ length: 4800 }, (_, i) => BIG_LINE(i + 1)).join('')); // 307200 bytes
  file('large/longline.txt', `${'L'.repeat(300 * 1024)}\nshort\n`);
  file('large/exact.txt', `${'e'.repeat(63)}\n`.repeat(4096)); // exactly 262144 bytes
  file('large/over.txt', `${'e'.repeat(63)}\n`.repeat(4096) + 'o'); // 262145 bytes
  file('bom.txt', '\ufeffbom first\nsecond\n');
  file('cr.txt', 'a\rb\rc');
  file('odd/sp ace.txt', 'space hello\n');
  file('odd/br[ack]et.txt', 'bracket hello\n');
  file('odd/star*name.txt', 'star hello\n');
  file('odd/nl\nname.txt', 'newline hello\n');
  if (many) {
    for (let i = 0; i < 250; i++) file(`many/f${String(i).padStart(3, '0')}.txt`, `many ${i}\n`);
  }
  execFileSync('mkfifo', [join(work, 'fifo')]);
  symlinkSync('a.txt', join(work, 'link_in'));
  symlinkSync('dir', join(work, 'dirlink'));
  symlinkSync('chain2', join(work, 'chain1'));
  symlinkSync('a.txt', join(work, 'chain2'));
  symlinkSync('../outside/secret.txt', join(work, 'out_link'));
  symlinkSync('../outside', join(work, 'out_dirlink'));
  symlinkSync(join(out, 'secret.txt'), join(work, 'abs_out_link'));
  symlinkSync('nonexistent.txt', join(work, 'dangling'));
  symlinkSync('../outside/nothere.txt', join(work, 'dangling_out'));
  symlinkSync('loop2', join(work, 'loop1'));
  symlinkSync('loop1', join(work, 'loop2'));
  symlinkSync('selfloop', join(work, 'selfloop'));
  symlinkSync('madedir', join(work, 'dangdir'));

  files.forEach((p, i) => utimesSync(p, T0 + 10 * i, T0 + 10 * i));
  // Directories and links too, deepest first, so nothing above resets them.
  const dirs = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) { walk(p); dirs.push(p); } else if (e.isSymbolicLink()) lutimesSync(p, T0 - 5, T0 - 5);
    }
  };
  walk(work);
  for (const d of dirs) utimesSync(d, T0 - 100, T0 - 100);
  utimesSync(work, T0 - 100, T0 - 100);
}

const BIG_CMD = `printf '%s' ${'x'.repeat(70000)} | wc -c`;
const HUGE_CMD = `: ${'y'.repeat(200000)}; echo huge-command-ok`;

export const GROUPS = [
  // ---------------------------------------------------------------- bash
  { name: 'bash-basics', calls: [
    b('echo hello'),
    b("printf 'no newline'"),
    b('echo'),
    b('true'),
    b('false'),
    b('(exit 3)'),
    b('echo out; (exit 4)'),
    b("printf 'a\\n\\n\\n'"),
    b("printf 'a\\r\\n\\r\\n'"),
    b("printf '\\n\\nlead'"),
    b('echo }'),
    b('echo hi # trailing comment'),
    b('cat; echo stdin-eof'),
    b('read x; echo "read=$?"'),
    b('for i in 1 2 3; do\n  echo "n$i"\ndone'),
    b("cat <<'EOF'\nheredoc $HOME stays\nEOF"),
    b('echo "$0"'),
    b('echo "[$TERM][$PS1][$PS2]"'),
    b('echo "[$ANTHROPIC_X][$Anthropic_Mixed][$AIRLOCK_Y]"'),
    b('env | grep -ci anthropic'),
    b('[[ $- == *i* ]] && echo interactive || echo non-interactive'),
    b('shopt -q login_shell; echo "login=$?"'),
    b('pwd'),
    b('ls -A'),
    b('umask'),
    b('kill -0 $$ && echo alive'),
    b('nosuchcmd_parity_xyz'),
    b('ls /nonexistent_parity_dir'),
    b(BIG_CMD),
    b(HUGE_CMD),
  ] },
  { name: 'bash-persistence', calls: [
    b('cd dir && export FOO=bar && myfn() { echo "fn:$1:$FOO"; } && UNEXPORTED=u'),
    b('pwd'),
    b('echo $FOO $UNEXPORTED'),
    b('myfn x'),
    b('bash -c \'echo "child:[$FOO][$UNEXPORTED]"\''),
    b('cd deep; pwd'),
    b('cd - '),
    b('set -o pipefail; false | true; echo "pipe=$?"'),
    b('false'),
    b('echo "last=$?"'),
    b('shopt -s nullglob; echo "[" none* "]"'),
    b('alias ll=ls; ll'),
    b('nosuchcmd_parity_again'),
    b('cd "$OLDPWD"; pwd'),
    b('set -e; false; echo after'),
    b('pwd; echo "[$FOO]"'),
    b('type myfn 2>&1 | head -1'),
    b('cd /tmp'),
    rd('a.txt', [1, 1]),
    wr('from-tmp.txt', 'relative to the workdir, not the shell'),
    b('pwd; ls <ROOT>/from-tmp.txt'),
    b("printf '\\n\\n'"),
    b("printf '\\n'; (exit 1)"),
  ] },
  { name: 'bash-exit', calls: [
    b('cd dir; export E=1'),
    b('echo before; exit 7'),
    b('pwd; echo "[$E]"'),
    b('exit 0'),
    b('exit'),
    b('echo alive'),
    b('kill -9 $$'),
    b('echo alive2'),
    b('exec true'),
    b('echo alive3'),
    b("trap 'echo trapped' EXIT; exit 2"),
    b('echo alive4'),
    b('set -u; echo "$UNDEFINED_PARITY_VAR"'),
    b('echo alive5'),
    b('exit 300'),
  ] },
  { name: 'bash-timeout', calls: [
    b('export T=1; cd dir'),
    b('sleep 5', { timeout_ms: 300 }),
    b('echo quick', { timeout_ms: 3000 }),
    b('echo partial; sleep 5', { timeout_ms: 300 }),
    b('echo next'),
    b('sleep 3 & echo started-bg'),
    b('{ echo', { timeout_ms: 500 }),
    b('echo "after unbalanced"; pwd'),
    b('echo within', { timeout_ms: 5000 }),
  ] },
  // Deliberately different (EXPECTED_DIFFERENCES in parity.test.mjs): the SDK
  // discards the shell on a timeout or cancel; the C runner kills only the
  // command and keeps the shell.
  { name: 'bash-kill-keeps-shell', calls: [
    b('export T=1; cd dir'),
    b('sleep 5', { timeout_ms: 300 }),
    b('echo "[$T]"; pwd'),
    b('touch <ROOT>/started.flag; sleep 5', {}, { cancelOn: 'started.flag' }),
    b('echo "[$T]"; pwd'),
  ] },
  // Deliberately different (EXPECTED_DIFFERENCES in parity.test.mjs): the SDK
  // passes timeout_ms 0 through literally (a ~0 ms timer, racy); spec §6.3 has
  // the C worker treat 0 as the default.
  { name: 'bash-timeout-zero', calls: [
    b('export Z=1'),
    b('sleep 0.5; echo "zero:[$Z]"', { timeout_ms: 0 }),
    b('echo "[$Z]"'),
  ] },
  { name: 'bash-restart', calls: [
    b('export R=1'),
    ['bash', { restart: true }],
    b('echo "[$R]"'),
    ['bash', {}],
    b(''),
    ['bash', { restart: false }],
    ['bash', { command: null }],
    ['bash', { restart: true, command: 'export R=2; echo fresh' }],
    b('echo "[$R]"'),
    ['bash', { restart: true, command: 'echo "[$R]"' }],
    ['bash', { restart: true }],
    ['bash', { restart: true }],
  ] },
  { name: 'bash-output-big', calls: [
    b("head -c 150000 /dev/zero | tr '\\0' a; echo; echo END"),
    b('seq 1 30000'),
    b('yes é | head -n 80000'),
    b("head -c 120000 /dev/zero | tr '\\0' e >&2"),
    b("head -c 100000 /dev/zero | tr '\\0' c"),
    b("head -c 102344 /dev/zero | tr '\\0' d"),
    b("head -c 102345 /dev/zero | tr '\\0' d"),
    b("head -c 102400 /dev/zero | tr '\\0' f"),
    b("head -c 200000 /dev/zero | tr '\\0' g; (exit 5)"),
    b('yes a🎉 | head -n 30000'),
    b('yes 日本 | head -n 50000'),
    b("yes $'\\xff' | head -n 60000"),
    b('echo small-after-big'),
  ] },
  { name: 'bash-ansi-unicode', calls: [
    b("printf '\\033[31mred\\033[0m plain\\n'"),
    b("printf '\\033[1;32;40mbold\\033[K\\033[2J\\033[H\\033[?25lcur\\033[?25h\\n'"),
    b("printf 'osc \\033]0;title\\007 after\\n'"),
    b("printf 'priv \\033[<5m x \\033[>1c y\\n'"),
    b("printf 'intermediate \\033[1 q end\\n'"),
    b("printf 'lone esc \\033 x\\n'"),
    b("echo 'héllo wörld 日本 🎉'"),
    b("printf '\\xff\\xfe bad\\n'"),
    b("printf 'trunc \\xe2\\x82\\n'"),
    b("printf 'surrogate \\xed\\xa0\\x80 x\\n'"),
    b("printf 'overlong \\xc0\\xaf x\\n'"),
    b("printf 'nul \\000 byte\\n'"),
    b("printf 'tab\\tand\\x7fdel\\n'"),
    b("printf '\\r\\rcr only'"),
    b('echo o1; echo e1 >&2; echo o2; echo e2 >&2'),
    b('echo err-only >&2; (exit 2)'),
    b("printf '\\033[31m\\033[0m'"),
    b("printf '\\033[31m\\033[0m'; (exit 3)"),
    b("printf 'end\\033['"),
    b("printf 'csi-cr \\033[2K\\r\\033[1Gdone\\n'"),
    b('echo __ANT_CMD_00000000-0000-0000-0000-000000000000_DONE__0; echo after-fake'),
    b("printf 'ok\\n' >&2; printf 'x'"),
  ] },
  { name: 'bash-cancel', calls: [
    b('cd dir'),
    b('touch <ROOT>/started.flag; echo some output; sleep 5', {}, { cancelOn: 'started.flag' }),
    b('echo after-cancel'),
    b('ls <ROOT>/started.flag'),
  ] },
  // ---------------------------------------------------------------- read
  { name: 'read-whole', calls: [
    rd('a.txt'),
    rd('noeol.txt'),
    rd('crlf.txt'),
    rd('unicode.txt'),
    rd('empty.txt'),
    rd('binary.bin'),
    rd('exec.sh'),
    rd('large/exact.txt'),
    rd('large/over.txt'),
    rd('./a.txt'),
    rd('dir/../a.txt'),
    rd('../work/a.txt'),
    rd('<ROOT>/a.txt'),
    rd('<ROOT>/dir/x.txt'),
    rd('dir//x.txt'),
    rd('a.txt/'),
    rd('ü/日本.txt'),
    rd(''),
    ['read', {}],
    rd('.dotfile'),
    rd('.git/config'),
    rd('node_modules/pkg/index.js'),
    rd('bom.txt'),
    rd('bom.txt', [1, 1]),
    rd('cr.txt'),
    rd('cr.txt', [1, 1]),
    rd('cr.txt', [2, 2]),
    rd('a.txt', [2, 1e12]),
    rd('dir/'),
    rd('odd/sp ace.txt'),
    rd('odd/nl\nname.txt'),
  ] },
  { name: 'read-ranges', calls: [
    rd('a.txt', [2, 3]),
    rd('a.txt', [0, 2]),
    rd('a.txt', [-5, 1]),
    rd('a.txt', [2, 0]),
    rd('a.txt', [2, -1]),
    rd('a.txt', [3, 2]),
    rd('a.txt', [1, 1]),
    rd('a.txt', [5, 100]),
    rd('a.txt', [6, 6]),
    rd('a.txt', [100, 200]),
    rd('a.txt', [1]),
    rd('a.txt', [1, 2, 3]),
    rd('a.txt', []),
    rd('a.txt', null),
    rd('a.txt', [0, 0]),
    rd('noeol.txt', [1, 0]),
    rd('noeol.txt', [3, 3]),
    rd('crlf.txt', [2, 2]),
    rd('unicode.txt', [2, 2]),
    rd('empty.txt', [1, 1]),
    rd('binary.bin', [2, 2]),
    rd('missing.txt', [1, 2]),
    rd('dir', [1, 2]),
    rd('missing.txt', [1]),
  ] },
  { name: 'read-caps', calls: [
    rd('large/big.txt'),
    rd('large/big.txt', [1, 3]),
    rd('large/big.txt', [4799, 4800]),
    rd('large/big.txt', [4800, 0]),
    rd('large/big.txt', [4800, 4801]),
    rd('large/big.txt', [1, 0]),
    rd('large/big.txt', [0, 10]),
    rd('large/big.txt', [-3, 2]),
    rd('large/big.txt', [3, 2]),
    rd('large/big.txt', [2000, 2002]),
    rd('large/big.txt', [1, 4096]),
    rd('large/big.txt', [1, 4097]),
    rd('large/big.txt', [1]),
    rd('large/longline.txt'),
    rd('large/longline.txt', [1, 1]),
    rd('large/longline.txt', [0, 1]),
    rd('large/longline.txt', [2, 2]),
    rd('large/longline.txt', [2, 0]),
    rd('large/longline.txt', [1, 2]),
    rd('large/over.txt', [1, 0]),
    rd('large/over.txt', [4096, 0]),
    rd('large/exact.txt', [1, 0]),
    rd('large/exact.txt', [4096, 4096]),
  ] },
  { name: 'read-nonregular-and-escapes', calls: [
    rd('dir'),
    rd('fifo'),
    rd('fifo', [1, 1]),
    rd('.'),
    rd('<ROOT>'),
    rd('dirlink'),
    rd('missing.txt'),
    rd('nodir/missing.txt'),
    rd('a.txt/x'),
    rd('fifo/x'),
    rd('/dev/null'),
    rd('/etc/hostname'),
    rd('../outside/secret.txt'),
    rd('dir/../../outside/secret.txt'),
    rd('<OUT>/secret.txt'),
    rd('out_link'),
    rd('out_dirlink/secret.txt'),
    rd('abs_out_link'),
    rd('dangling'),
    rd('dangling_out'),
    rd('loop1'),
    rd('selfloop'),
    rd('loop1/x'),
    rd('chain1'),
    rd('link_in'),
    rd('dirlink/x.txt'),
    rd('..'),
    rd('../'),
    rd('/'),
    rd('n'.repeat(300)),
    rd('/proc/self/root<ROOT>/a.txt'),
    rd('/proc/self/cwd/a.txt'),
  ] },
  // ---------------------------------------------------------------- write
  { name: 'write-basic', calls: [
    wr('new.txt', 'hello\n'),
    b('stat -c %a new.txt'),
    wr('unicode.out', 'héllo 🎉 日本\n'),
    wr('crlf.out', 'a\r\nb\r\n'),
    wr('empty.out', ''),
    wr('nocontent.out'),
    wr('p/q/r/s.txt', 'nested'),
    b('stat -c "%n %a" p p/q p/q/r p/q/r/s.txt'),
    wr('ü2/日本.txt', 'x'),
    wr('a.txt', 'replaced\n'),
    rd('a.txt'),
    wr('exec.sh', '#!/bin/sh\necho changed\n'),
    wr('mode640.txt', 'still 640\n'),
    wr('ro.txt', 'written anyway\n'),
    b('stat -c "%n %a" exec.sh mode640.txt ro.txt a.txt'),
    wr('<ROOT>/abs.txt', 'abs'),
    wr('./dot.txt', 'dot'),
    wr('dir/../up.txt', 'up'),
    wr('', 'x'),
    ['write', {}],
    wr('nul.out', 'a\u0000b'),
    wr('w-big.txt', 'z'.repeat(300000)),
    rd('w-big.txt'),
    wr('trail/', 'trailing slash'),
    b('ls -A; find . -name ".tmp-*" | wc -l'),
  ] },
  { name: 'write-special-and-escapes', calls: [
    wr('dir', 'onto a dir'),
    wr('fifo', 'onto a fifo'),
    b('stat -c %F fifo'),
    wr('.', 'onto the root'),
    wr('link_in', 'through link_in\n'),
    b('readlink link_in; cat a.txt'),
    wr('dangling', 'through dangling\n'),
    b('cat nonexistent.txt'),
    wr('chain1', 'through chain\n'),
    wr('dangling_out', 'escape'),
    wr('out_link', 'escape'),
    wr('out_dirlink/new.txt', 'escape'),
    wr('abs_out_link', 'escape'),
    wr('../outside/x.txt', 'escape'),
    wr('<OUT>/y.txt', 'escape'),
    wr('dir/../../outside/z.txt', 'escape'),
    wr('loop1', 'loop'),
    wr('loop1/x', 'loop'),
    wr('selfloop', 'loop'),
    wr('a.txt/x.txt', 'under a file'),
    wr('dirlink/new.txt', 'through dirlink'),
    wr('n'.repeat(300), 'long name'),
    wr('/proc/self/root<ROOT>/viaproc.txt', 'via proc'),
    wr('dangdir/x.txt', 'through a dangling dir link'),
    wr('dir/', 'onto dir with a slash'),
    wr('odd/new [x] *.txt', 'odd name'),
    b("stat -c '%A %U %G %n' madedir; stat -c %a madedir"),   // no mtime: the two runs may straddle a minute
    b('ls -A ../outside; ls dir'),
  ] },
  // ---------------------------------------------------------------- edit
  { name: 'edit-basic', calls: [
    ed('a.txt', 'row2', 'ROW2'),
    rd('a.txt'),
    ed('a.txt', 'row', 'r'),
    ed('a.txt', 'row', 'R', true),
    rd('a.txt'),
    ed('a.txt', 'nothere', 'x'),
    ed('a.txt', '', 'x'),
    ['edit', { file_path: 'a.txt', new_string: 'x' }],
    ['edit', {}],
    ['edit', { file_path: '', old_string: '', new_string: '' }],
    ed('unicode.txt', 'wörld', "$& $1 $$ $` $'"),
    rd('unicode.txt'),
    ed('aaa.txt', 'aa', 'b'),
    rd('aaa.txt'),
    ed('crlf.txt', '\r\ntwo', '\nTWO'),
    ed('crlf.txt', '\r\n', '\n', true),
    rd('crlf.txt'),
    ed('exec.sh', 'hi', 'edited'),
    ed('mode640.txt', 'zero', 'nil'),
    ed('ro.txt', 'only', 'ONLY'),
    b('stat -c "%n %a" exec.sh mode640.txt ro.txt'),
    ed('hello.md', 'hello world\n', ''),
    rd('hello.md'),
    ed('noeol.txt', 'beta', 'beta', false),
    ed('noeol.txt', 'alpha\nbeta', 'A\nB'),
    ed('noeol.txt', 'gamma', 'G', true),
    rd('noeol.txt'),
    ed('unicode.txt', '🎉', '🎊'),
    ed('<ROOT>/dir/x.txt', 'marks', 'MARKS'),
    ed('dir/deep/z.txt', 'zzz\nhello', 'z\nbye'),
    rd('dir/deep/z.txt'),
  ] },
  { name: 'edit-special-and-escapes', calls: [
    ed('dir', 'x', 'y'),
    ed('fifo', 'x', 'y'),
    ed('missing.txt', 'x', 'y'),
    ed('large/big.txt', 'big', 'BIG'),
    ed('large/over.txt', 'o', 'O'),
    ed('large/exact.txt', 'e\n', 'E\n'),
    ed('large/exact.txt', 'eeee\ne', 'E', false),
    ed('out_link', 'SECRET', 'PWNED'),
    ed('out_link', '', 'x'),
    ed('../outside/secret.txt', 'SECRET', 'PWNED'),
    ed('<OUT>/secret.txt', 'SECRET', 'PWNED'),
    ed('abs_out_link', 'SECRET', 'PWNED'),
    ed('out_dirlink/secret.txt', 'SECRET', 'PWNED'),
    ed('link_in', 'row1', 'ROW1'),
    rd('a.txt', [1, 1]),
    ed('dangling', 'x', 'y'),
    ed('dangling_out', 'x', 'y'),
    ed('loop1', 'x', 'y'),
    ed('binary.bin', 'text', 'TEXT'),
    ed('empty.txt', 'x', 'y'),
    ed('a.txt/x', 'x', 'y'),
    ed('.', 'x', 'y'),
    b('cat ../outside/secret.txt; od -c binary.bin | head -3'),
  ] },
  // ---------------------------------------------------------------- glob
  { name: 'glob-patterns', calls: [
    gl('*.txt'),
    gl('**/*.txt'),
    gl('**'),
    gl('*'),
    gl('*.{txt,md}'),
    gl('{a,noeol}.txt'),
    gl('?.txt'),
    gl('[ab]*.txt'),
    gl('**/*.md'),
    gl('dir/*'),
    gl('dir/**'),
    gl('dir/**/*.txt'),
    gl('**/.*'),
    gl('.*'),
    gl('.dotfile'),
    gl('nomatch*'),
    gl(''),
    ['glob', {}],
    gl('**/x.txt'),
    gl('dirlink/*'),
    gl('dirlink/**/*.txt'),
    gl('out_dirlink/*'),
    gl('**/secret.txt'),
    gl('.git/*'),
    gl('**/node_modules/**'),
    gl('node_modules/pkg/index.js'),
    gl('sub/**'),
    gl('**/*.js'),
    gl('fifo'),
    gl('dir'),
    gl('*link*'),
    gl('ü/*'),
    gl('large/*'),
    gl('**/deeper/*'),
    gl('{a,{b,c}}*.txt'),
    gl('*.TXT'),
    gl('[!a]*.txt'),
    gl('[^a]*.txt'),
    gl('\\*.txt'),
    gl('a.txt'),
    gl('./*.txt'),
    gl('dir/./x.txt'),
    gl('dir/'),
    gl('*/'),
    gl('**/dir'),
    gl('*/*.md'),
    gl('+(a|aaa).txt'),
    gl('@(a).txt'),
    gl('!(a).txt'),
    gl('**/*.{md,sh}'),
    gl('{dir,sub}/**/*.txt'),
    gl('d?r/x.txt'),
    gl('*.[tm][xd]*'),
    gl('**/**/z.txt'),
    gl('dir/**/deeper/**'),
    gl('madedir/*'),
    gl('dir/.*'),
    gl('dir/.hidden'),
    gl('**/.hidden'),
    gl('.git/**'),
    gl('.git'),
    gl('*/.hidden'),
    gl('.*/*'),
    gl('odd/*'),
    gl('odd/sp ace.txt'),
    gl('odd/br\\[ack\\]et.txt'),
    gl('odd/br[[]ack]et.txt'),
    gl('odd/*\\**'),
    gl('odd/*name.txt'),
  ] },
  { name: 'glob-errors-and-paths', calls: [
    gl('../*'),
    gl('../../etc/*'),
    gl('dir/../*.txt'),
    gl('{..,x}/*'),
    gl('a/..'),
    gl('..'),
    gl('dir\\..\\*'),
    gl('/etc/*'),
    gl('/'),
    gl('*.txt', 'dir'),
    gl('**', 'dir/deep'),
    gl('*', '<ROOT>/dir'),
    gl('*', '..'),
    gl('*', '../outside'),
    gl('*', '<OUT>'),
    gl('*', 'out_dirlink'),
    gl('**/*.txt', 'dirlink'),
    gl('*', 'missing'),
    gl('*', 'a.txt'),
    gl('*', 'fifo'),
    gl('*', 'loop1'),
    gl('*.txt', ''),
    gl('*.txt', '.'),
    gl('*', 'dangling_out'),
  ] },
  { name: 'glob-many-and-order', fixture: { many: true }, calls: [
    gl('**/f*.txt'),
    gl('many/*'),
    gl('many/f1*'),
    wr('g/one.txt', '1'),
    wr('g/two.txt', '2'),
    wr('g/three.txt', '3'),
    b('touch -d @1500000000 g/one.txt; touch -d @1500000200 g/two.txt; touch -d @1500000100 g/three.txt'),
    gl('g/*'),
    gl('*', 'g'),
  ] },
  // ---------------------------------------------------------------- grep
  { name: 'grep-patterns', calls: [
    gr('row3'),
    gr('row', 'a.txt'),
    gr('ROW'),
    gr('(?i)ROW2'),
    gr('r.w[0-9]$', 'a.txt'),
    gr('('),
    gr('['),
    gr('*'),
    gr('a{2,1}'),
    gr('\\'),
    gr('a\nb'),
    gr('\\p{Greek}'),
    gr('日本', undefined, SORT),
    gr('wörld'),
    gr('🎉', 'unicode.txt'),
    gr('^$', 'noeol.txt'),
    gr('-v'),
    gr('--help'),
    gr(''),
    ['grep', {}],
    gr('hello', undefined, SORT),
    gr('hello', 'dir', SORT),
    gr('two$', 'crlf.txt'),
    gr('two\\r$', 'crlf.txt'),
    gr('zzz', 'dir/deep'),
    gr('marks', '<ROOT>/dir'),
    gr('text', 'binary.bin'),
    gr('text', undefined, SORT),
    gr('hello', 'ignored.txt'),
    gr('hello', '.dotfile'),
    gr('bare', '.git'),
    gr('big', 'large/big.txt'),
    gr('big 0479', 'large'),
    gr('short', 'large/longline.txt'),
    gr('\\d{2}', 'a.txt'),
    gr('\\w+\\s\\w+', 'dir/x.txt'),
    gr('(?=x)'),
    gr('row(?!1)', 'a.txt'),
    gr('(a'),
    gr('\\bhello\\b', 'hello.md'),
    gr('^#', undefined, SORT),
    gr('bom', 'bom.txt'),
    gr('b', 'cr.txt'),
    gr('hello', 'odd', SORT),
    gr('space', 'odd/sp ace.txt'),
  ] },
  { name: 'grep-paths-and-escapes', calls: [
    gr('SECRET', '../outside'),
    gr('SECRET', '<OUT>'),
    gr('SECRET', 'out_link'),
    gr('SECRET', 'out_dirlink'),
    gr('SECRET', 'abs_out_link'),
    gr('SECRET'),
    gr('row', 'link_in'),
    gr('marks', 'dirlink'),
    gr('x', 'missing'),
    gr('x', 'empty.txt'),
    gr('x', 'loop1'),
    gr('x', 'dangling'),
    gr('x', 'dangling_out'),
    gr('root', '/etc/passwd'),
    gr('row1', '/proc/self/root<ROOT>'),
    gr('path', 'ü'),
    gr('nothing-matches-this', '.'),
  ] },
];

// grep without rg: PATH holds no rg on either side (`noRg`), so both fall
// back to their own walk. These groups run after the others, one at a time,
// because the SDK reads PATH from this process's shared environment.
GROUPS.push(
  { name: 'grep-fallback', noRg: true, calls: [
    gr('row3'),
    gr('row3', 'a.txt'),
    gr('ROW'),
    gr('hello', undefined, SORT),
    gr('hello', 'dir', SORT),
    gr('^#', undefined, SORT),
    gr('wörld'),
    gr('日本', 'unicode.txt'),
    gr('two$', 'crlf.txt'),
    gr('b', 'cr.txt'),
    gr('bom', 'bom.txt'),
    gr('L', 'large/longline.txt'),
    gr('short', 'large/longline.txt'),
    gr('text', 'binary.bin'),
    gr('big', 'large/big.txt'),
    gr('\\d{2}', 'a.txt'),
    gr('bare', '.git'),
    gr('exports', 'node_modules'),
    gr('secret', 'out_dirlink'),
    gr('SECRET', '../outside'),
    gr('x', 'missing'),
    gr('^$', 'noeol.txt'),
    gr(''),
    gr('hello', 'odd', SORT),
    gr('row', 'link_in'),
  ] },
  // Deliberately different (EXPECTED_DIFFERENCES): the C fallback's regex
  // dialect is PCRE2, so its "invalid regex" text is PCRE2's, not V8's.
  { name: 'grep-fallback-invalid-regex', noRg: true, calls: [
    gr('('),
    gr('a{2,1}'),
  ] },
);

export function countCalls(groups = GROUPS) {
  return groups.reduce((n, g) => n + g.calls.length, 0);
}
