// The official SDK's agent_toolset_20260401 (betaAgentToolset20260401, from
// @anthropic-ai/sdk/tools/agent-toolset/node), run in this process against a
// workdir, answering each call as { is_error, text } exactly as the SDK's
// SessionToolRunner puts it on the wire (spec §6.1):
//
//   - runRunnableTool (lib/tools/BetaRunnableTool) parses the input (no
//     validation) and runs the tool; a ToolError becomes is_error with its own
//     content, any other exception is_error with "Error: <message>";
//   - SessionToolRunner's toSessionContent then turns a string content into
//     one text block, an empty string becoming "(no output)".
//
// Every tool of the toolset returns (or throws) strings, so one text block is
// all a result ever holds; anything else is reported as a harness error.
//
// The bash tool inherits this process's environment minus ANTHROPIC_* (the
// SDK's scrubbedShellEnv); the parity test sets ANTHROPIC_X / Anthropic_Mixed
// in process.env so that the scrubbing shows.
import { betaAgentToolset20260401 } from '@anthropic-ai/sdk/tools/agent-toolset/node';
import { runRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';

// SessionToolRunner's toSessionContent, for the shapes this toolset produces.
function toWire(outcome) {
  const { content, isError } = outcome;
  if (typeof content === 'string') return { is_error: isError, text: content || '(no output)' };
  if (Array.isArray(content) && content.length === 1 && content[0].type === 'text') {
    return { is_error: isError, text: content[0].text || '(no output)' };
  }
  throw new Error(`sdk-toolset: unexpected tool content ${JSON.stringify(content).slice(0, 200)}`);
}

// Node's fs.glob consults the process's cwd for its exclude check (see
// src/sandbox/glob.c excluded()), so glob calls run one at a time with the
// process in the session's workdir, as under the `ant` CLI (workdir ".").
let globLock = Promise.resolve();
function inWorkdir(workdir, fn) {
  const run = globLock.then(async () => {
    const old = process.cwd();
    process.chdir(workdir);
    try { return await fn(); } finally { process.chdir(old); }
  });
  globLock = run.catch(() => {});
  return run;
}

// sdkToolset({ workdir, ...ctx }) -> { tools, start(name, input) -> { abort(), result },
//   call(name, input), close() }
// A name the toolset lacks throws: the SDK leaves such a call pending, so
// there is no answer to compare with.
export function sdkToolset(ctx) {
  const tools = betaAgentToolset20260401(ctx);
  const byName = new Map(tools.map((t) => [t.name, t]));
  let seq = 0;
  const api = {
    tools,
    start(name, input) {
      const tool = byName.get(name);
      if (!tool) throw new Error(`sdk-toolset: no tool ${name}`);
      // The runner's per-tool controller: aborted on cancel (the runner's own
      // 120 s timer is not reproduced; no corpus call comes near it).
      const ctrl = new AbortController();
      const ev = { type: 'agent.tool_use', id: `sevt_parity_${++seq}`, name, input };
      const go = () => runRunnableTool(tool, input, { toolUse: ev, toolUseBlock: ev, signal: ctrl.signal }).then(toWire);
      const result = name === 'glob' ? inWorkdir(ctx.workdir, go) : go();
      return { abort: () => ctrl.abort(), result };
    },
    call(name, input) {
      return api.start(name, input).result;
    },
    // What SessionToolRunner does when it stops: each tool's close().
    async close() {
      for (const t of tools) await t.close?.();
    },
  };
  return api;
}
