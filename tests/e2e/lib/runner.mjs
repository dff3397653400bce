// Starts the real `airlock sandbox-runner` for a test and speaks its wire
// protocol (src/sandbox/frame.h) on fd 3:
//
//   frame   = 4-byte big-endian length L, then L bytes of one JSON object,
//             then, when that object has "payload": N, N raw bytes
//   runner  -> {"op":"ready","pid":P,"workdir":W,"outputs":O}   (once, first)
//   request -> {"id":N,"op":"tool","name":..,"input":{..}}
//   answer  <- {"id":N,"is_error":B,"text":".."}
//   cancel  -> {"op":"cancel","id":N}                            (no answer)
//
// fd 3 is a Node 'pipe' stdio slot, which is a UNIX socketpair, so the runner
// sees the SOCK_STREAM it expects. Closing our end ends the session: the
// runner must then kill its shell and exit 0 (close() checks that).
//
// The runner's environment is this process's plus ANTHROPIC_X=leak,
// Anthropic_Mixed=leak and AIRLOCK_Y=leak, so that a test can show the
// shell never sees them.
//
// Texts are returned exactly as the runner sent them. The worker, not the
// runner, turns an empty text into "(no output)" (spec §6.1, toolset.h);
// wireText() below applies that rule for tests that compare with the SDK.
import { spawn } from 'node:child_process';

export const BIN = process.env.AIRLOCK_BIN;

export const LEAK_ENV = { ANTHROPIC_X: 'leak', Anthropic_Mixed: 'leak', AIRLOCK_Y: 'leak' };

// What the worker puts on the wire for a runner answer (spec §6.1).
export function wireText(text) {
  return text === '' ? '(no output)' : text;
}

export function encodeFrame(msg, payload) {
  const obj = payload ? { ...msg, payload: payload.length } : msg;
  const json = Buffer.from(JSON.stringify(obj), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.length, 0);
  return payload ? Buffer.concat([head, json, payload]) : Buffer.concat([head, json]);
}

// Incremental frame decoder: push(bytes) returns the complete frames.
export class FrameReader {
  #buf = Buffer.alloc(0);

  push(chunk) {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out = [];
    for (;;) {
      if (this.#buf.length < 4) break;
      const len = this.#buf.readUInt32BE(0);
      if (len < 1 || len > 16 << 20) throw new Error(`runner sent a bad frame length ${len}`);
      if (this.#buf.length < 4 + len) break;
      const msg = JSON.parse(this.#buf.subarray(4, 4 + len).toString('utf8'));
      let payload = null;
      let end = 4 + len;
      if (Number.isInteger(msg.payload)) {
        if (this.#buf.length < end + msg.payload) break;
        payload = Buffer.from(this.#buf.subarray(end, end + msg.payload));
        end += msg.payload;
      }
      this.#buf = this.#buf.subarray(end);
      out.push({ msg, payload });
    }
    return out;
  }
}

// startRunner({ workdir, outputs, env, bin, args }) resolves once the runner
// sent "ready" to
//   { ready, proc, exited, start(name, input) -> { id, result }, call(name, input),
//     cancel(id), send(msg, payload), close(), kill9() }
// result / call resolve to { is_error, text } (the raw answer, no "(no output)").
export async function startRunner({ workdir, outputs, env = {}, bin = BIN, args = [] } = {}) {
  if (!bin) throw new Error('AIRLOCK_BIN is not set (run through tests/e2e/run.sh)');
  const proc = spawn(bin, ['sandbox-runner', '--fd', '3', '--workdir', workdir, '--outputs', outputs, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, ...LEAK_ENV, ...env },
  });
  const sock = proc.stdio[3];
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const reader = new FrameReader();
  const pending = new Map();
  let nextId = 1;
  let failure = null;
  let onReady;
  const ready = new Promise((resolve, reject) => { onReady = { resolve, reject }; });

  const failAll = (err) => {
    if (!failure) failure = err;
    onReady.reject(err);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  sock.on('data', (chunk) => {
    let frames;
    try {
      frames = reader.push(chunk);
    } catch (e) {
      failAll(e);
      return;
    }
    for (const { msg, payload } of frames) {
      if (msg.op === 'ready') {
        onReady.resolve(msg);
        continue;
      }
      const p = pending.get(msg.id);
      if (!p) {
        failAll(new Error(`runner answered unknown id ${msg.id}: ${JSON.stringify(msg).slice(0, 500)}`));
        return;
      }
      pending.delete(msg.id);
      p.resolve(payload ? { ...msg, payloadBytes: payload } : msg);
    }
  });
  sock.on('error', (e) => failAll(e));
  sock.on('close', () => failAll(new Error('runner closed fd 3')));
  proc.on('error', (e) => failAll(e));
  exited.then(({ code, signal }) => failAll(new Error(`runner exited (${code ?? signal})`)));

  const send = (msg, payload) => {
    if (failure) throw failure;
    sock.write(encodeFrame(msg, payload));
  };
  const request = (msg, payload) => {
    const id = nextId++;
    const result = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    result.catch(() => {}); // the caller awaits it; keep an early failure from being "unhandled"
    try {
      send({ id, ...msg }, payload);
    } catch (e) {
      pending.delete(id);
      return { id, result: Promise.reject(e) };
    }
    return { id, result };
  };

  let readyMsg;
  try {
    readyMsg = await ready;
  } catch (e) {
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`runner did not become ready: ${e.message}`);
  }

  const runner = {
    ready: readyMsg,
    proc,
    exited,
    send,
    request,
    // Starts a tool call; { id, result } where result resolves to { is_error, text }.
    start(name, input) {
      const { id, result } = request({ op: 'tool', name, input });
      return { id, result: result.then((m) => ({ is_error: m.is_error, text: m.text })) };
    },
    call(name, input) {
      return runner.start(name, input).result;
    },
    cancel(id) {
      send({ op: 'cancel', id });
    },
    // Ends the session the way the worker does (closing fd 3) and requires
    // a clean exit 0 within timeoutMs.
    async close({ timeoutMs = 5000 } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) sock.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      sock.destroy();
      if (r.code !== 0) throw new Error(`runner exited ${r.code ?? r.signal} after fd 3 was closed`);
      return r;
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      const r = await exited;
      sock.destroy();
      return r;
    },
  };
  return runner;
}
