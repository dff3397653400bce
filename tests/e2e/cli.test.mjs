// The admin verbs of the airlock binary, run as a user would against a
// real hub: they must drive a whole session and report errors plainly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startHub, http } from './lib/hub.mjs';

function run(hub, args, { input, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = execFile(BIN, args, {
      env: { ...process.env, AIRLOCK_URL: hub.url, AIRLOCK_API_KEY: hub.apiKey, ...env },
      timeout: 60000,
    }, (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }));
    if (input !== undefined) child.stdin.end(input);
  });
}

test('admin verbs drive a scripted session from create to end_turn', async () => {
  const hub = await startHub();
  try {
    const env = await run(hub, ['env', 'create', 'cli-env']);
    assert.equal(env.code, 0, env.stderr);
    const envId = env.stdout.trim();
    assert.match(envId, /^env_/);

    const key = await run(hub, ['env', 'key', 'create', envId]);
    assert.equal(key.code, 0, key.stderr);
    const envKey = key.stdout.trim();
    assert.ok(envKey.length >= 40, 'the environment key is printed on stdout');
    assert.ok(!key.stderr.includes(envKey), 'the key is printed once, on stdout only');
    const poll = await http(hub, 'GET', `/v1/environments/${envId}/work/poll`, { key: envKey });
    assert.equal(poll.status, 200, 'the printed key is a working environment key');

    const agent = await run(hub, ['agent', 'create', 'cli-agent', '--model', 'airlock-scripted']);
    assert.equal(agent.code, 0, agent.stderr);
    const agentId = agent.stdout.trim();

    const sess = await run(hub, ['session', 'create', '--agent', agentId, '--env', envId, '--message', 'say hello from the cli',
      '--metadata', 'ticket=T-1']);
    assert.equal(sess.code, 0, sess.stderr);
    const sid = sess.stdout.trim();
    assert.match(sid, /^sesn_/);

    const tail = await run(hub, ['session', 'tail', sid, '--follow-until-idle']);
    assert.equal(tail.code, 0, tail.stderr);
    assert.match(tail.stdout, /agent\.message.*hello from the cli/);
    assert.match(tail.stdout, /session\.status_idle.*end_turn/);

    const send = await run(hub, ['session', 'send', sid, '-'], { input: 'say second turn' });
    assert.equal(send.code, 0, send.stderr);
    const tail2 = await run(hub, ['session', 'tail', sid, '--follow-until-idle']);
    assert.equal(tail2.code, 0, tail2.stderr);
    assert.match(tail2.stdout, /second turn/);

    const stats = await run(hub, ['work', 'stats', envId, '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.equal(JSON.parse(stats.stdout).type, 'work_queue_stats');
    assert.equal(JSON.parse(stats.stdout).depth, 1, 'the session is one queued work item');

    const list = await run(hub, ['work', 'list', envId, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const get = await run(hub, ['session', 'get', sid, '--json']);
    assert.equal(JSON.parse(get.stdout).metadata.ticket, 'T-1');
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('admin verbs report API errors and bad usage plainly', async () => {
  const hub = await startHub();
  try {
    const missing = await run(hub, ['session', 'get', 'sesn_doesnotexist']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error: not_found_error: session not found/);

    const badKey = await run(hub, ['env', 'list'], { env: { AIRLOCK_API_KEY: 'al-api-wrong-key-0123456789' } });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /authentication_error/);
    assert.ok(!badKey.stderr.includes('al-api-wrong-key'), 'the credential is never echoed');

    const usage = await run(hub, ['env', 'frobnicate']);
    assert.equal(usage.code, 2);

    const down = await run(hub, ['env', 'list'], { env: { AIRLOCK_URL: 'http://127.0.0.1:1' } });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /connection refused|could not connect|refused/i);

    const dir = hub.dataDir;
    const file = join(dir, 'not-an-archive.zip');
    writeFileSync(file, 'this is not an archive');
    const skill = await run(hub, ['skill', 'create', file]);
    assert.equal(skill.code, 1);
    assert.match(skill.stderr, /invalid_request_error/);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('every verb has accurate --help', async () => {
  const hub = await startHub();
  try {
    const top = await run(hub, ['--help']);
    assert.equal(top.code, 0);
    for (const cmd of ['hub', 'up', 'env', 'agent', 'session', 'work', 'skill']) {
      assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`));
      const h = await run(hub, [cmd, '--help']);
      assert.equal(h.code, 0, `${cmd} --help: ${h.stderr}`);
      assert.match(h.stdout, /usage: airlock/);
    }
    const hubHelp = await run(hub, ['hub', '--help']);
    for (const opt of ['--listen', '--data-dir', '--api-key-file', '--ready-fd', '--lease-ttl', '--sync-full'])
      assert.ok(hubHelp.stdout.includes(opt), `hub --help lists ${opt}`);
    const tailHelp = await run(hub, ['session', 'tail', '--help']);
    assert.match(tailHelp.stdout, /--follow-until-idle/);
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});
