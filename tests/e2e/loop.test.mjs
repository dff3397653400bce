// The airlock-scripted agent loop: what it emits for each kind of directive,
// and where built-in tool calls go (the tool-dispatch point).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, setup, http, history, until } from './lib/hub.mjs';

const text = (t) => [{ type: 'user.message', content: [{ type: 'text', text: t }] }];

async function turnEnded(hub, sid) {
  return until(() => history(hub, sid), (h) => h.some((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn'),
    { what: `end_turn in ${sid}` });
}

test('directives: say, echo, disabled tool, mcp, and the summary', async () => {
  const hub = await startHub();
  try {
    const { client, environment } = await setup(hub);
    const agent = await client.beta.agents.create({
      name: 'loop', model: 'airlock-scripted',
      tools: [{ type: 'agent_toolset_20260401', configs: [{ name: 'write', enabled: false }] }],
    });
    const s = await client.beta.sessions.create({
      agent: agent.id, environment_id: environment.id,
      initial_events: text('say first\nnot a directive\ntool write {"file_path":"x","content":"y"}\nmcp docs search {"q":"x"}\ntool bash {broken json'),
    });
    const h = await turnEnded(hub, s.id);
    const types = h.map((e) => e.type);
    assert.deepEqual(types, [
      'user.message', 'session.status_running',
      'span.model_request_start', 'agent.message', 'span.model_request_end',
      'span.model_request_start', 'agent.tool_use', 'agent.tool_result', 'span.model_request_end',
      'span.model_request_start', 'agent.mcp_tool_use', 'agent.mcp_tool_result', 'span.model_request_end',
      'span.model_request_start', 'agent.message', 'span.model_request_end',
      'session.status_idle',
    ]);
    assert.equal(h[3].content[0].text, 'first');
    const use = h.find((e) => e.type === 'agent.tool_use');
    assert.equal(use.evaluated_permission, 'deny');
    const res = h.find((e) => e.type === 'agent.tool_result');
    assert.equal(res.tool_use_id, use.id);
    assert.equal(res.is_error, true);
    const mcp = h.find((e) => e.type === 'agent.mcp_tool_use');
    assert.equal(mcp.mcp_server_name, 'docs');
    assert.equal(mcp.name, 'search');
    assert.equal(h.find((e) => e.type === 'agent.mcp_tool_result').mcp_tool_use_id, mcp.id);
    assert.equal(h.at(-3).content[0].text, 'done: 2 calls, 2 errors');
    for (const e of h.filter((x) => x.type === 'span.model_request_end'))
      assert.ok(h.some((x) => x.id === e.model_request_start_id && x.type === 'span.model_request_start'));
    assert.equal((await client.beta.sessions.retrieve(s.id)).status, 'idle');

    // A message without directives is echoed back.
    await client.beta.sessions.events.send(s.id, { events: text('just saying hello') });
    await until(() => history(hub, s.id), (x) => x.filter((e) => e.type === 'session.status_idle').length === 2);
    const after = await history(hub, s.id);
    const echo = after.filter((e) => e.type === 'agent.message').at(-1);
    assert.equal(echo.content[0].text, 'just saying hello');
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('built-in tools on a cloud environment are resolved by the hub, not left waiting', async () => {
  const hub = await startHub();
  try {
    const { client, agent } = await setup(hub);
    const cloud = await client.beta.environments.create({ name: 'cloud' });
    assert.equal(cloud.config.type, 'cloud');
    const s = await client.beta.sessions.create({ agent: agent.id, environment_id: cloud.id, initial_events: text('tool bash {"command":"echo hi"}') });
    const h = await turnEnded(hub, s.id);
    const res = h.find((e) => e.type === 'agent.tool_result');
    assert.equal(res.is_error, true);
    assert.match(res.content[0].text, /self_hosted/);
    const stats = await http(hub, 'GET', `/v1/environments/${cloud.id}/work/stats`);
    assert.equal(stats.body.depth, 0, 'no work item for a cloud environment');
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('user.interrupt ends a turn that waits on a worker', async () => {
  const hub = await startHub();
  try {
    const { client, environment, agent } = await setup(hub);
    const s = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id, initial_events: text('tool bash {"command":"echo hi"}\nsay never') });
    await until(() => history(hub, s.id), (h) => h.some((e) => e.type === 'agent.tool_use'));
    const r = await http(hub, 'POST', `/v1/sessions/${s.id}/events`, { body: { events: [{ type: 'user.interrupt' }] } });
    assert.equal(r.status, 200);
    const h = await turnEnded(hub, s.id);
    assert.ok(!h.some((e) => e.type === 'agent.message' && e.content[0].text === 'never'));
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});

test('a model the hub has no provider for ends the turn with a session.error', async () => {
  const hub = await startHub();
  try {
    const { client, environment } = await setup(hub);
    const agent = await client.beta.agents.create({ name: 'x', model: 'claude-opus-4-8' });
    const s = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id, initial_events: text('hello') });
    const h = await turnEnded(hub, s.id);
    const err = h.find((e) => e.type === 'session.error');
    assert.equal(err.error.type, 'model_request_failed_error');
    assert.equal(err.error.retry_status.type, 'terminal');
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});
