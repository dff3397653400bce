// Test archives built in memory, so that tests control every header field
// (special members, hostile names) without shelling out to tar.

// A ustar archive from [{ name, body?, type? ('0' file, '5' dir, '2' symlink), linkname? }].
export function tar(members) {
  const blocks = [];
  const field = (buf, off, len, s) => buf.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const octal = (n, len) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    const type = m.type ?? '0';
    const h = Buffer.alloc(512);
    field(h, 0, 100, m.name);
    field(h, 100, 8, octal(type === '5' ? 0o755 : 0o644, 8));
    field(h, 108, 8, octal(0, 8));
    field(h, 116, 8, octal(0, 8));
    field(h, 124, 12, octal(type === '0' ? body.length : 0, 12));
    field(h, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
    field(h, 148, 8, '        ');
    field(h, 156, 1, type);
    field(h, 157, 100, m.linkname ?? '');
    field(h, 257, 6, 'ustar\0');
    field(h, 263, 2, '00');
    field(h, 265, 32, 'root');
    field(h, 297, 32, 'root');
    let sum = 0;
    for (const b of h) sum += b;
    field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(h);
    if (type === '0' && body.length) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return new Uint8Array(Buffer.concat(blocks));
}
