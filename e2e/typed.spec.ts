/**
 * Typed answers in Chromium: a schema for the root answer (zod and JSON Schema), validation
 * feedback the model acts on, structured sub-calls through both SDKs, the typed error when
 * an answer never validates, and validation on a page whose CSP forbids 'unsafe-eval'.
 * Real Pyodide, real SDK clients, the scripted LM server.
 */
import type { Page } from '@playwright/test';
import { expect, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type ScriptedRequest } from './support/lm-server';
import { PROXY_TOKEN, startProxy } from './support/proxy';

const CONTEXT = 'build 7 failed at line 12\nbuild 8 passed\nbuild 9 failed at line 40\n';

const FINDINGS_JSON = {
  type: 'object',
  properties: { summary: { type: 'string' }, lines: { type: 'array', items: { type: 'integer' } } },
  required: ['summary', 'lines'],
};

/** Turn 0 forgets `lines`; a turn told that `lines` is missing sets it (through FINAL_VAR). */
function findingsScript(r: ScriptedRequest): string {
  if (turnOf(r) === 0) return repl('answer["content"] = {"summary": "two builds failed"}\nanswer["ready"] = True');
  if (!lastUser(r).includes('answer["content"]["lines"]: ')) return repl('print("no feedback about lines")');
  return repl('import re\nfound = {"summary": "two builds failed", "lines": [int(n) for n in re.findall(r"line (\\d+)", context)]}\nFINAL_VAR("found")');
}

/** Runs a typed completion in the page: `schema` is 'zod' (built in the page) or a JSON Schema. */
async function typedRun(page: Page, baseURL: string, schema: 'zod' | object, options: Record<string, unknown> = {}) {
  return page.evaluate(
    async ({ baseURL, schema, options, context }) => {
      const { RLM } = (window as any).rlmWeb;
      let s: unknown = schema;
      if (schema === 'zod') {
        const { z } = await import('/node_modules/zod/index.js' as string);
        s = z.object({ summary: z.string(), lines: z.array(z.number().int()) });
      }
      const rlm = new RLM({ backendOptions: { model: 'scripted', baseURL }, ...((options.rlm as object) ?? {}) });
      try {
        const r = await rlm.completion(context, { rootPrompt: 'Which lines failed?', schema: s, ...((options.completion as object) ?? {}) });
        return {
          ok: true,
          response: r.response,
          validations: r.trajectory.iterations.map((it: any) => it.validation ?? null),
          schema: r.trajectory.schema,
          stored: r.trajectory.response,
        };
      } catch (e: any) {
        return {
          ok: false,
          name: e.name,
          typed: e instanceof (window as any).rlmWeb.AnswerValidationError && e instanceof (window as any).rlmWeb.RunEndedError,
          answer: e.answer,
          issues: e.issues,
          attempts: e.attempts,
          partial: e.partialAnswer,
          status: e.trajectory?.status,
          iterations: e.trajectory?.iterations.length,
        };
      } finally {
        await rlm.close();
      }
    },
    { baseURL, schema, options, context: CONTEXT },
  );
}

test('zod: the first answer misses a field, the model fixes it after the feedback; response is the validated value', async ({ harness, lm }) => {
  lm.setScript((r) => (isRootCall(r) ? findingsScript(r) : 'unused'));
  const out = await typedRun(harness, lm.openaiURL, 'zod');
  expect(out).toMatchObject({ ok: true, response: { summary: 'two builds failed', lines: [12, 40] }, stored: '{"summary":"two builds failed","lines":[12,40]}' });
  expect(out.schema).toMatchObject({ vendor: 'zod', jsonSchema: { type: 'object', required: ['summary', 'lines'] } });
  expect(out.validations).toMatchObject([
    { attempt: 1, valid: false, answer: '{"summary": "two builds failed"}', issues: [{ path: ['lines'] }] },
    { attempt: 2, valid: true, issues: [] },
  ]);
  const roots = lm.requests.filter(isRootCall);
  expect(roots).toHaveLength(2);
  // The system prompt shows the JSON Schema; the second turn carries the issue.
  expect(roots[0]!.messages[0]!.content).toContain('"lines"');
  expect(lastUser(roots[1]!)).toContain('Your answer does not match the required answer format');
});

test('JSON Schema: same run, the answer handed back through FINAL_VAR as JSON', async ({ harness, lm }) => {
  lm.setScript((r) => (isRootCall(r) ? findingsScript(r) : 'unused'));
  const out = await typedRun(harness, lm.openaiURL, FINDINGS_JSON);
  expect(out).toMatchObject({ ok: true, response: { summary: 'two builds failed', lines: [12, 40] } });
  expect(out.schema).toEqual({ vendor: 'json-schema', jsonSchema: FINDINGS_JSON });
  expect(lastUser(lm.requests.filter(isRootCall)[1]!)).toContain('- answer["content"]["lines"]: is required but missing.');
});

test('an answer that never validates ends with AnswerValidationError carrying it and its issues', async ({ harness, lm }) => {
  lm.setScript((r) => (isRootCall(r) ? repl('answer["content"] = {"summary": 7, "lines": "12"}\nanswer["ready"] = True', `attempt ${turnOf(r)}`) : 'unused'));
  const out = await typedRun(harness, lm.openaiURL, FINDINGS_JSON, { completion: { maxAnswerAttempts: 2 } });
  expect(out).toMatchObject({ ok: false, name: 'AnswerValidationError', typed: true, answer: { summary: 7, lines: '12' }, attempts: 2, status: 'failed', iterations: 2 });
  expect(out.partial).toBe('{"summary": 7, "lines": "12"}');
  expect((out.issues as { path: string[] }[]).map((i) => i.path)).toEqual([['summary'], ['lines']]);
  expect(lm.requests.filter(isRootCall)).toHaveLength(2);
});

/** Sub-model replies for the structured sub-call cell below: honours the requested schema. */
function structuredSubcalls(r: ScriptedRequest): string {
  const prompt = lastUser(r);
  const wrapped = typeof (r.schema?.properties as Record<string, unknown> | undefined)?.value === 'object';
  if (prompt === 'count') return JSON.stringify({ n: 3 });
  if (prompt === 'miscount') return JSON.stringify({ n: 'three' });
  const tags = [prompt, prompt.toUpperCase()];
  return JSON.stringify(wrapped ? { value: tags } : tags);
}

const SUBCALL_CELL = `N = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
r = llm_query("count", schema=N)
bad = llm_query("miscount", schema=N)
tags = llm_query_batched(["alpha", "beta"], schema={"type": "array", "items": {"type": "string"}})
answer["content"] = {"n": r["n"], "bad": bad, "tags": tags, "types": [type(r).__name__, type(tags[0]).__name__]}
answer["ready"] = True`;

test('structured sub-calls through both SDKs: parsed values in Python, a reply that does not match is an Error string', async ({ harness, lm }) => {
  lm.setScript((r) => (isRootCall(r) ? repl(SUBCALL_CELL) : structuredSubcalls(r)));
  const out = await harness.evaluate(
    async ({ openaiURL, anthropicURL }) => {
      const { RLM } = (window as any).rlmWeb;
      const runs: Record<string, unknown> = {};
      for (const [backend, baseURL] of [['openai', openaiURL], ['anthropic', anthropicURL]] as const) {
        // Anthropic: the sub-calls' effort and the structured format share output_config.
        const extra = backend === 'anthropic' ? { subSamplingArgs: { reasoningEffort: 'low' } } : {};
        const rlm = new RLM({ backend, backendOptions: { model: `scripted-${backend}`, baseURL, apiKey: 'test' }, ...extra });
        try {
          runs[backend] = (await rlm.completion('ctx', { rootPrompt: 'q', schema: { type: 'object' } })).response;
        } finally {
          await rlm.close();
        }
      }
      return runs;
    },
    { openaiURL: lm.openaiURL, anthropicURL: lm.anthropicURL },
  );
  for (const backend of ['openai', 'anthropic'] as const) {
    const run = out[backend] as { n: number; bad: string; tags: string[][]; types: string[] };
    expect(run.n).toBe(3);
    expect(run.tags).toEqual([['alpha', 'ALPHA'], ['beta', 'BETA']]);
    expect(run.types).toEqual(['dict', 'list']);
    expect(run.bad).toBe('Error: the reply does not match the schema:\n- reply["n"]: Instance type "string" is invalid. Expected "integer".');
  }
  // What each SDK sent: OpenAI's response_format, Anthropic's output_config.format; lists wrapped in an object.
  const subs = lm.requests.filter((r) => !isRootCall(r));
  const openaiList = subs.find((r) => r.api === 'openai' && lastUser(r) === 'alpha')!;
  expect(openaiList.body.response_format).toEqual({
    type: 'json_schema',
    json_schema: { name: 'reply', strict: true, schema: { type: 'object', properties: { value: { type: 'array', items: { type: 'string' } } }, required: ['value'], additionalProperties: false } },
  });
  const openaiCount = subs.find((r) => r.api === 'openai' && lastUser(r) === 'count')!;
  expect(openaiCount.body.response_format).toMatchObject({ json_schema: { strict: false } });
  const anthropicCount = subs.find((r) => r.api === 'anthropic' && lastUser(r) === 'count')!;
  expect(anthropicCount.body.output_config).toEqual({
    effort: 'low',
    format: { type: 'json_schema', schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false } },
  });
  // Root turns asked for no structured output: the model writes code there.
  expect(lm.requests.filter(isRootCall).every((r) => r.schema === undefined)).toBe(true);
});

test('a remote sandbox (proxy, local provider): structured sub-calls and the answer as JSON', async ({ harness, lm }) => {
  const proxy = await startProxy();
  try {
    lm.setScript((r) => (isRootCall(r) ? repl(SUBCALL_CELL) : structuredSubcalls(r)));
    const out = await harness.evaluate(
      async ({ baseURL, proxyURL, token }) => {
        const { RLM } = (window as any).rlmWeb;
        const rlm = new RLM({ backendOptions: { model: 'scripted', baseURL }, environment: 'remote', environmentOptions: { proxyURL, token, provider: 'local' } });
        try {
          return (await rlm.completion('ctx', { rootPrompt: 'q', schema: { type: 'object', required: ['n', 'tags'] } })).response;
        } finally {
          await rlm.close();
        }
      },
      { baseURL: lm.openaiURL, proxyURL: proxy.url, token: PROXY_TOKEN },
    );
    expect(out).toMatchObject({ n: 3, tags: [['alpha', 'ALPHA'], ['beta', 'BETA']], types: ['dict', 'list'] });
    expect((out as { bad: string }).bad).toMatch(/^Error: the reply does not match the schema/);
  } finally {
    await proxy.close();
  }
});

test('validation works on a page whose Content-Security-Policy forbids unsafe-eval', async ({ page, lm }) => {
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`${PLAIN_ORIGIN}/e2e/harness/csp/`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  lm.setScript((r) => {
    if (!isRootCall(r)) return structuredSubcalls(r);
    if (turnOf(r) === 0) return repl('r = llm_query("count", schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})\nanswer["content"] = {"summary": str(r["n"])}\nanswer["ready"] = True');
    return findingsScript(r);
  });
  const out = await page.evaluate(
    async ({ baseURL, schema, context }) => {
      const evalBlocked = await (window as any).evalBlocked();
      const { RLM } = (window as any).rlmWeb;
      // A same-origin worker: this page's policy would also bind the sandbox frame's inline bootstrap.
      const rlm = new RLM({ backendOptions: { model: 'scripted', baseURL }, isolation: 'none' });
      try {
        const r = await rlm.completion(context, { rootPrompt: 'q', schema });
        return { evalBlocked, response: r.response, validations: r.trajectory.iterations.map((it: any) => it.validation?.valid ?? null), violations: (window as any).cspViolations };
      } finally {
        await rlm.close();
      }
    },
    { baseURL: lm.openaiURL, schema: FINDINGS_JSON, context: CONTEXT },
  );
  expect(out.evalBlocked).toBe(true);
  expect(out.response).toEqual({ summary: 'two builds failed', lines: [12, 40] });
  expect(out.validations).toEqual([false, true]);
  // The only refused eval is the probe's own: nothing in the run (validation included) tried one.
  expect(out.violations.filter((v: string) => !v.includes('/e2e/harness/csp/harness.js'))).toEqual([]);
  expect(out.violations.length).toBe(1);
});
