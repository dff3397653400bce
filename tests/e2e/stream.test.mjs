// Event streams outlive the hub's idle timeout: a subscriber sends nothing
// after its request, and must not be cut off for that silence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, setup, openStream } from './lib/hub.mjs';

test('an SSE stream stays open past --idle-timeout and keeps delivering', async () => {
  // Pings are rarer than the idle timeout, so only the fix keeps the stream.
  const hub = await startHub({ args: ['--idle-timeout', '1s', '--ping-interval', '60s'] });
  try {
    const { client, environment, agent } = await setup(hub);
    const s = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    const stream = await openStream(hub, s.id);
    assert.equal(stream.status, 200);
    // The silence of more than two idle timeouts is what is under test.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(stream.closed, false, 'the stream was closed while idle');
    await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'still there' }] }] });
    const msg = await stream.waitFor((e) => e.type === 'agent.message', { timeoutMs: 10000, what: 'the agent message' });
    assert.equal(msg.content[0].text, 'still there');
    stream.close();
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});
