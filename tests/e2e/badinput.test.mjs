// Bad input gets a clear error in the platform's body shape and changes
// nothing: every case checks the status, the error type, the request-id
// header against the body, and that the store reads the same afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, setup, http, history, until } from './lib/hub.mjs';

const userMessage = (text) => ({ type: 'user.message', content: [{ type: 'text', text }] });
const JSON_CT = { 'content-type': 'application/json' };

function assertErrorBody(r, status, type) {
  assert.equal(r.status, status, `status; body ${JSON.stringify(r.body)?.slice(0, 500)}`);
  assert.equal(typeof r.body, 'object', `JSON error body, got ${String(r.body).slice(0, 200)}`);
  assert.deepEqual(Object.keys(r.body).sort(), ['error', 'request_id', 'type']);
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, type);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  assert.match(r.body.request_id, /^req_/);
  assert.equal(r.headers.get('request-id'), r.body.request_id);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
}

test('bad input: clear errors, and the store is unchanged', async (t) => {
  const hub = await startHub();
  try {
    const { client: c, environment: envA, envKey: keyA, agent } = await setup(hub);
    const envB = await c.beta.environments.create({ name: 'b', config: { type: 'self_hosted' } });
    const keyB = (await http(hub, 'POST', `/v1/environments/${envB.id}/keys`)).body.key;
    const revoked = (await http(hub, 'POST', `/v1/environments/${envA.id}/keys`)).body;
    const rv = await http(hub, 'POST', `/v1/environments/${envA.id}/keys/${revoked.id}/revoke`);
    assert.equal(rv.status, 200);
    assert.ok(rv.body.revoked_at);
    const A = envA.id, B = envB.id;

    const sa = await c.beta.sessions.create({ agent: agent.id, environment_id: A, initial_events: [userMessage('say hi')] });
    await until(() => history(hub, sa.id), (h) => h.at(-1)?.type === 'session.status_idle', { what: 'session A to idle' });
    const sb = await c.beta.sessions.create({ agent: agent.id, environment_id: A, metadata: { k: 'v' } });
    const sc = await c.beta.sessions.create({ agent: agent.id, environment_id: B });
    const polled = await http(hub, 'GET', `/v1/environments/${A}/work/poll?block_ms=0`, { key: keyA });
    assert.equal(polled.body.data.id, sa.id);
    const tokA = JSON.parse(Buffer.from(polled.body.secret, 'base64url').toString('utf8')).sessions_token;
    assert.equal((await http(hub, 'GET', `/v1/sessions/${sa.id}`, { key: tokA })).status, 200);
    const sessions = [sa.id, sb.id, sc.id];

    // Everything a client can read back.
    const snapshot = async () => {
      const get = async (path, key = hub.apiKey) => {
        const r = await http(hub, 'GET', path, { key });
        assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
        return r.body;
      };
      return {
        envs: await get('/v1/environments?include_archived=true&limit=100'),
        agents: await get('/v1/agents?include_archived=true&limit=100'),
        agentVersions: await get(`/v1/agents/${agent.id}/versions`),
        sessions: await get('/v1/sessions?include_archived=true&limit=100'),
        events: await Promise.all(sessions.map((id) => history(hub, id))),
        work: [await get(`/v1/environments/${A}/work?limit=100`, keyA), await get(`/v1/environments/${B}/work?limit=100`, keyB)],
        keys: [await get(`/v1/environments/${A}/keys`), await get(`/v1/environments/${B}/keys`)],
      };
    };
    const base = await snapshot();
    assert.equal(base.envs.data.length, 2);
    assert.equal(base.sessions.data.length, 3);

    const big = `{"name":"${'x'.repeat(4 * 1024 * 1024 + 1024)}"}`;
    const absentSession = await http(hub, 'GET', '/v1/sessions/sesn_doesnotexist');
    assertErrorBody(absentSession, 404, 'not_found_error');

    // [name, method, path, options for http(), status, error.type, extra check]
    const cases = [
      // Malformed JSON and wrong types.
      ['malformed JSON (environment)', 'POST', '/v1/environments', { body: '{"name":', headers: JSON_CT }, 400, 'invalid_request_error'],
      ['malformed JSON (events)', 'POST', `/v1/sessions/${sa.id}/events`, { body: '{"events":[}', headers: JSON_CT }, 400, 'invalid_request_error'],
      ['body is not an object', 'POST', '/v1/environments', { body: '[1,2]', headers: JSON_CT }, 400, 'invalid_request_error'],
      ['duplicate keys', 'POST', '/v1/environments', { body: '{"name":"a","name":"b"}', headers: JSON_CT }, 400, 'invalid_request_error'],
      ['NUL in a string', 'POST', '/v1/environments', { body: '{"name":"a\\u0000b"}', headers: JSON_CT }, 400, 'invalid_request_error'],
      ['invalid UTF-8', 'POST', '/v1/environments', { body: Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), headers: JSON_CT }, 400, 'invalid_request_error'],
      ['JSON null body', 'POST', '/v1/sessions', { body: 'null', headers: JSON_CT }, 400, 'invalid_request_error'],
      ['name: 5', 'POST', '/v1/environments', { body: { name: 5 } }, 400, 'invalid_request_error'],
      ['agent name: 5', 'POST', '/v1/agents', { body: { name: 5, model: 'airlock-scripted' } }, 400, 'invalid_request_error'],
      ['metadata not an object (environment)', 'POST', '/v1/environments', { body: { name: 'x', metadata: 'a=b' } }, 400, 'invalid_request_error'],
      ['metadata not an object (session update)', 'POST', `/v1/sessions/${sb.id}`, { body: { metadata: ['k'] } }, 400, 'invalid_request_error'],
      ['metadata value not a string', 'POST', `/v1/environments/${A}`, { body: { metadata: { k: 5 } } }, 400, 'invalid_request_error'],
      ['17 metadata keys', 'POST', '/v1/environments', { body: { name: 'x', metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) } }, 400, 'invalid_request_error'],
      ['65-character metadata key', 'POST', `/v1/sessions/${sb.id}`, { body: { metadata: { ['k'.repeat(65)]: 'v' } } }, 400, 'invalid_request_error'],
      ['events not an array', 'POST', `/v1/sessions/${sa.id}/events`, { body: { events: userMessage('say no') } }, 400, 'invalid_request_error'],
      ['events empty', 'POST', `/v1/sessions/${sa.id}/events`, { body: { events: [] } }, 400, 'invalid_request_error'],
      ['unknown event type', 'POST', `/v1/sessions/${sa.id}/events`, { body: { events: [{ type: 'agent.message', content: [] }] } }, 400, 'invalid_request_error'],
      ['user.message without content', 'POST', `/v1/sessions/${sa.id}/events`, { body: { events: [{ type: 'user.message' }] } }, 400, 'invalid_request_error'],
      ['tool_result without tool_use_id', 'POST', `/v1/sessions/${sa.id}/events`, { key: keyA, body: { events: [{ type: 'user.tool_result', content: [{ type: 'text', text: 'x' }] }] } }, 400, 'invalid_request_error'],
      ['tool_result for an unknown call', 'POST', `/v1/sessions/${sa.id}/events`, { key: keyA, body: { events: [{ type: 'user.tool_result', tool_use_id: 'sevt_nope', content: [] }] } }, 400, 'invalid_request_error'],
      ['a good event before a bad one stores neither', 'POST', `/v1/sessions/${sb.id}/events`, { body: { events: [userMessage('say a'), { type: 'user.tool_result' }] } }, 400, 'invalid_request_error'],
      ['stop force not a boolean', 'POST', `/v1/environments/${A}/work/${polled.body.id}/stop`, { key: keyA, body: { force: 'yes' } }, 400, 'invalid_request_error'],
      // Query parameters.
      ['block_ms=abc', 'GET', `/v1/environments/${A}/work/poll?block_ms=abc`, { key: keyA }, 400, 'invalid_request_error'],
      ['reclaim_older_than_ms=-1', 'GET', `/v1/environments/${A}/work/poll?reclaim_older_than_ms=-1`, { key: keyA }, 400, 'invalid_request_error'],
      ['limit=0', 'GET', '/v1/environments?limit=0', {}, 400, 'invalid_request_error'],
      ['limit=100000', 'GET', '/v1/environments?limit=100000', {}, 400, 'invalid_request_error'],
      ['events limit=0', 'GET', `/v1/sessions/${sa.id}/events?limit=0`, {}, 400, 'invalid_request_error'],
      ['events limit=100000', 'GET', `/v1/sessions/${sa.id}/events?limit=100000`, {}, 400, 'invalid_request_error'],
      ['limit=-1', 'GET', `/v1/environments/${A}/work?limit=-1`, { key: keyA }, 400, 'invalid_request_error'],
      ['malformed percent-encoding in the query', 'GET', '/v1/environments?limit=%zz', {}, 400, 'invalid_request_error'],
      ['malformed percent-encoding in the path', 'GET', '/v1/sessions/%zz', {}, 400, 'invalid_request_error'],
      ['limit=abc', 'GET', '/v1/sessions?limit=abc', {}, 400, 'invalid_request_error'],
      ['bad page cursor', 'GET', '/v1/environments?page=not-a-cursor', {}, 400, 'invalid_request_error'],
      ['bad events page cursor', 'GET', `/v1/sessions/${sa.id}/events?page=${Buffer.from('page_x').toString('base64url')}`, {}, 400, 'invalid_request_error'],
      ['created_at[gt]=notadate (events)', 'GET', `/v1/sessions/${sa.id}/events?created_at[gt]=notadate`, {}, 400, 'invalid_request_error'],
      ['created_at%5Bgt%5D=notadate (sessions)', 'GET', '/v1/sessions?created_at%5Bgt%5D=notadate', {}, 400, 'invalid_request_error'],
      ['order=sideways', 'GET', `/v1/sessions/${sa.id}/events?order=sideways`, {}, 400, 'invalid_request_error'],
      ['statuses[]=bogus', 'GET', '/v1/sessions?statuses[]=bogus', {}, 400, 'invalid_request_error'],
      ['include_archived=maybe', 'GET', '/v1/environments?include_archived=maybe', {}, 400, 'invalid_request_error'],
      // Missing required fields.
      ['environment without name', 'POST', '/v1/environments', { body: { config: { type: 'self_hosted' } } }, 400, 'invalid_request_error'],
      ['environment with an unknown config type', 'POST', '/v1/environments', { body: { name: 'x', config: { type: 'moon' } } }, 400, 'invalid_request_error'],
      ['agent without model', 'POST', '/v1/agents', { body: { name: 'x' } }, 400, 'invalid_request_error'],
      ['session without environment_id', 'POST', '/v1/sessions', { body: { agent: agent.id } }, 400, 'invalid_request_error'],
      ['session without agent', 'POST', '/v1/sessions', { body: { environment_id: A } }, 400, 'invalid_request_error'],
      ['session with an unknown agent', 'POST', '/v1/sessions', { body: { environment_id: A, agent: 'agent_nope' } }, 404, 'not_found_error'],
      ['session with an unknown environment', 'POST', '/v1/sessions', { body: { environment_id: 'env_nope', agent: agent.id } }, 404, 'not_found_error'],
      ['session with a bad initial event', 'POST', '/v1/sessions', { body: { environment_id: A, agent: agent.id, initial_events: [{ type: 'user.tool_result', tool_use_id: 'x' }] } }, 400, 'invalid_request_error'],
      // Routes and methods.
      ['unknown route', 'GET', '/v1/nothing-here', {}, 404, 'not_found_error'],
      ['unknown sub-route', 'GET', `/v1/environments/${A}/nope`, {}, 404, 'not_found_error'],
      ['unknown route without a credential', 'GET', '/v2/environments', { key: null }, 404, 'not_found_error'],
      ['nonexistent environment', 'GET', '/v1/environments/env_doesnotexist', {}, 404, 'not_found_error'],
      ['nonexistent work item', 'POST', `/v1/environments/${A}/work/work_nope/ack`, { key: keyA }, 404, 'not_found_error'],
      ['nonexistent session', 'GET', '/v1/sessions/sesn_doesnotexist/events', {}, 404, 'not_found_error'],
      ['PUT on a collection', 'PUT', '/v1/environments', { body: { name: 'x' } }, 405, 'invalid_request_error'],
      ['DELETE an agent', 'DELETE', `/v1/agents/${agent.id}`, {}, 405, 'invalid_request_error'],
      ['PATCH a session', 'PATCH', `/v1/sessions/${sa.id}`, { body: { title: 'x' } }, 405, 'invalid_request_error'],
      ['OPTIONS on a collection', 'OPTIONS', '/v1/sessions', {}, 405, 'invalid_request_error'],
      ['GET an ack', 'GET', `/v1/environments/${A}/work/${polled.body.id}/ack`, { key: keyA }, 405, 'invalid_request_error'],
      // Size.
      ['body over 4 MiB (environment)', 'POST', '/v1/environments', { body: big, headers: JSON_CT }, 413, 'invalid_request_error'],
      ['body over 4 MiB (events)', 'POST', `/v1/sessions/${sa.id}/events`, { body: big, headers: JSON_CT }, 413, 'invalid_request_error'],
      // Credentials.
      ['no credential', 'GET', '/v1/environments', { key: null }, 401, 'authentication_error'],
      ['no credential on a write', 'POST', '/v1/environments', { key: null, body: { name: 'x' } }, 401, 'authentication_error'],
      ['garbage bearer', 'GET', '/v1/sessions', { key: 'garbage-garbage-garbage' }, 401, 'authentication_error'],
      ['garbage x-api-key', 'GET', '/v1/agents', { key: null, headers: { 'x-api-key': 'sk-ant-api03-garbage' } }, 401, 'authentication_error'],
      ['empty bearer', 'GET', '/v1/agents', { key: null, headers: { authorization: 'Bearer ' } }, 401, 'authentication_error'],
      ['garbage credential on a poll', 'GET', `/v1/environments/${A}/work/poll`, { key: 'x'.repeat(64) }, 401, 'authentication_error'],
      ['revoked environment key', 'GET', `/v1/environments/${A}/work/poll?block_ms=0`, { key: revoked.key }, 401, 'authentication_error'],
      ['revoked environment key on events', 'GET', `/v1/sessions/${sa.id}/events`, { key: revoked.key }, 401, 'authentication_error'],
      // Credentials out of their scope.
      ['env key A on env B\'s poll', 'GET', `/v1/environments/${B}/work/poll?block_ms=0`, { key: keyA }, 404, 'not_found_error'],
      ['env key A on env B\'s work list', 'GET', `/v1/environments/${B}/work`, { key: keyA }, 404, 'not_found_error'],
      ['env key A on a session of env B', 'GET', `/v1/sessions/${sc.id}`, { key: keyA }, 404, 'not_found_error'],
      ['env key on POST /v1/agents', 'POST', '/v1/agents', { key: keyA, body: { name: 'x', model: 'airlock-scripted' } }, 403, 'permission_error'],
      ['env key on POST /v1/environments', 'POST', '/v1/environments', { key: keyA, body: { name: 'x' } }, 403, 'permission_error'],
      ['env key creating an environment key', 'POST', `/v1/environments/${A}/keys`, { key: keyA }, 403, 'permission_error'],
      ['env key sending a user.message', 'POST', `/v1/sessions/${sa.id}/events`, { key: keyA, body: { events: [userMessage('say x')] } }, 403, 'permission_error'],
      ['API key on a poll', 'GET', `/v1/environments/${A}/work/poll?block_ms=0`, {}, 403, 'permission_error'],
      ['sessions token on POST /v1/sessions', 'POST', '/v1/sessions', { key: tokA, body: { agent: agent.id, environment_id: A } }, 403, 'permission_error'],
      ['sessions token of A on session B', 'GET', `/v1/sessions/${sb.id}`, { key: tokA }, 404, 'not_found_error',
        (r) => assert.deepEqual(r.body.error, absentSession.body.error, 'same body as a session that does not exist')],
      ['sessions token of A on session B\'s events', 'GET', `/v1/sessions/${sb.id}/events`, { key: tokA }, 404, 'not_found_error',
        (r) => assert.deepEqual(r.body.error, absentSession.body.error)],
      ['sessions token of A on session B\'s stream', 'GET', `/v1/sessions/${sb.id}/events/stream`, { key: tokA }, 404, 'not_found_error',
        (r) => assert.deepEqual(r.body.error, absentSession.body.error)],
      ['sessions token of A on a nonexistent session', 'GET', '/v1/sessions/sesn_doesnotexist', { key: tokA }, 404, 'not_found_error',
        (r) => assert.deepEqual(r.body.error, absentSession.body.error)],
      ['sessions token on env B\'s poll', 'GET', `/v1/environments/${B}/work/poll?block_ms=0`, { key: tokA }, 404, 'not_found_error'],
    ];

    for (const [name, method, path, opts, status, type, extra] of cases) {
      await t.test(name, async () => {
        const r = await http(hub, method, path, opts);
        assertErrorBody(r, status, type);
        extra?.(r);
        assert.deepEqual(await snapshot(), base, 'the store changed');
      });
    }
  } finally {
    await hub.stop();
    hub.cleanup();
  }
});
