import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { AnswerValidationError, ConfigurationError } from '../../src/core/errors';
import { FINAL_REQUEST_STRUCTURED } from '../../src/core/prompts';
import { STRUCTURED_ANSWER_VARIABLE } from '../../src/core/schema';
import type { CompletionResult, LMClient, LMRequest, LMResult } from '../../src/core/types';
import type { RLMCore } from '../../src/core/rlm';
import { readJSONL, toJSONL } from '../../src/store/jsonl';
import { FakeClient, makeRLM, rejection, repl, results, scripted, type Cell, type CellContext } from './fakes/fakes';

const CONTEXT = 'Report: build 7 failed at line 12; build 8 failed at line 40.';
const Findings = z.object({ summary: z.string(), lines: z.array(z.number().int()) });
const FINDINGS_JSON = { type: 'object', properties: { summary: { type: 'string' }, lines: { type: 'array', items: { type: 'integer' } } }, required: ['summary', 'lines'] };

/** A cell that marks `value` as the answer, as the runtime hands it over with a schema set (JSON). */
const marks = (value: unknown): Cell => ({ finalAnswer: JSON.stringify(value) });

describe('typed answers in the loop', () => {
  it('feeds back what is missing, lets the model fix it, and returns the validated value', async () => {
    const root = new FakeClient('root', scripted(repl('first'), repl('second')));
    const { rlm, env } = makeRLM({ root, cells: { first: marks({ summary: 'two failures' }), second: marks({ summary: 'two failures', lines: [12, 40] }) } });
    const result = await rlm.completion(CONTEXT, { rootPrompt: 'Which lines failed?', schema: Findings });
    expect(result.response).toEqual({ summary: 'two failures', lines: [12, 40] });
    const feedback = root.lastMessage(1);
    expect(feedback).toContain('Your answer does not match the required answer format');
    expect(feedback).toContain('- answer["content"]["lines"]: Invalid input: expected array, received undefined');
    expect(feedback).toContain('(2 more attempts)');
    // The schema is in the system prompt; the REPL was told to hand answers back as JSON.
    expect(root.calls[0]![0]!.content).toContain('"lines"');
    expect(env().setCalls).toContainEqual({ name: STRUCTURED_ANSWER_VARIABLE, value: true, reserved: true });
    // The trajectory records the schema, each round, and the value as JSON text.
    const t = result.trajectory;
    expect(t.schema?.vendor).toBe('zod');
    expect(t.schema?.jsonSchema).toMatchObject({ required: ['summary', 'lines'] });
    expect(t.iterations.map((it) => it.validation?.valid)).toEqual([false, true]);
    expect(t.iterations[0]?.validation).toMatchObject({ attempt: 1, answer: '{"summary":"two failures"}', issues: [{ path: ['lines'] }] });
    expect(t.iterations[0]?.finalAnswer).toBeNull();
    expect(t.response).toBe('{"summary":"two failures","lines":[12,40]}');
  });

  it('the JSONL export keeps the schema and the validation rounds under rlm_web, and reads them back', async () => {
    const root = new FakeClient('root', scripted(repl('first'), repl('second')));
    const { rlm } = makeRLM({ root, cells: { first: marks({ summary: 's' }), second: marks({ summary: 's', lines: [] }) } });
    const { trajectory } = await rlm.completion(CONTEXT, { schema: Findings });
    const lines = toJSONL(trajectory).trimEnd().split('\n').map((l) => JSON.parse(l) as { rlm_web: Record<string, unknown> });
    expect(lines[0]?.rlm_web.schema).toEqual(trajectory.schema);
    expect(lines[1]?.rlm_web.validation).toMatchObject({ attempt: 1, valid: false });
    const back = (await readJSONL(toJSONL(trajectory))).trajectories[0]!;
    expect(back.schema).toEqual(trajectory.schema);
    expect(back.iterations.map((it) => it.validation)).toEqual(trajectory.iterations.map((it) => it.validation));
  });

  it('takes a JSON Schema too', async () => {
    const root = new FakeClient('root', scripted(repl('a'), repl('b')));
    const { rlm } = makeRLM({ root, cells: { a: marks({ summary: 's', lines: ['12'] }), b: marks({ summary: 's', lines: [12] }) } });
    const result = await rlm.completion<{ summary: string; lines: number[] }>(CONTEXT, { schema: FINDINGS_JSON });
    expect(result.response.lines).toEqual([12]);
    expect(root.lastMessage(1)).toContain('- answer["content"]["lines"][0]: Instance type "string" is invalid. Expected "integer".');
    expect(result.trajectory.schema).toEqual({ vendor: 'json-schema', jsonSchema: FINDINGS_JSON });
  });

  it('ends with AnswerValidationError carrying the last answer and its issues after maxAnswerAttempts', async () => {
    const root = new FakeClient('root', scripted(repl('bad'), repl('bad'), repl('never')));
    const { rlm } = makeRLM({ root, cells: { bad: marks({ summary: 42 }) } });
    const error = await rejection(rlm.completion(CONTEXT, { schema: Findings, maxAnswerAttempts: 2 }));
    expect(error).toBeInstanceOf(AnswerValidationError);
    const e = error as AnswerValidationError;
    expect(e.answer).toEqual({ summary: 42 });
    expect(e.attempts).toBe(2);
    expect(e.issues.map((i) => i.path)).toEqual([['summary'], ['lines']]);
    expect(e.partialAnswer).toBe('{"summary":42}');
    expect(e.message).toMatch(/after 2 attempts/);
    expect(e.trajectory?.status).toBe('failed');
    expect(e.trajectory?.iterations.map((it) => it.validation?.attempt)).toEqual([1, 2]);
    expect(root.calls).toHaveLength(2);
  });

  it('asks for JSON when turns run out, with structured output, and checks it once', async () => {
    const root = new FakeClient('root', scripted(repl('print(1)'), '{"summary": "late", "lines": []}'));
    const { rlm } = makeRLM({ root, rlm: { maxIterations: 1 }, cells: { 'print(1)': { stdout: '1' } } });
    const result = await rlm.completion(CONTEXT, { schema: Findings });
    expect(result.response).toEqual({ summary: 'late', lines: [] });
    expect(root.lastMessage(1)).toContain(FINAL_REQUEST_STRUCTURED);
    expect(root.requests[1]?.responseFormat?.schema).toMatchObject({ type: 'object', required: ['summary', 'lines'] });
    expect(root.requests[0]?.responseFormat).toBeUndefined();

    const stubborn = new FakeClient('root', scripted(repl('print(1)'), 'no JSON here'));
    const { rlm: second } = makeRLM({ root: stubborn, rlm: { maxIterations: 1 }, cells: { 'print(1)': { stdout: '1' } } });
    expect(await rejection(second.completion(CONTEXT, { schema: Findings }))).toBeInstanceOf(AnswerValidationError);
  });

  it('a plain call at the depth limit (maxDepth: 0) is held to the schema as well', async () => {
    const root = new FakeClient('root', scripted('{"summary": "s", "lines": [1]}'));
    const { rlm } = makeRLM({ root, rlm: { maxDepth: 0 } });
    const result = await rlm.completion(CONTEXT, { schema: Findings });
    expect(result.response).toEqual({ summary: 's', lines: [1] });
    expect(root.requests[0]?.responseFormat?.name).toBe('answer');
    expect(root.lastMessage(0)).toContain('Answer format');
  });

  it('refuses a bad schema or attempt count before the run starts', async () => {
    const root = new FakeClient('root', scripted());
    const { rlm } = makeRLM({ root });
    expect(await rejection(rlm.completion(CONTEXT, { schema: 'json please' as never }))).toBeInstanceOf(ConfigurationError);
    expect(await rejection(rlm.completion(CONTEXT, { schema: Findings, maxAnswerAttempts: 0 }))).toBeInstanceOf(ConfigurationError);
    expect(root.calls).toHaveLength(0);
  });

  it('a persistent REPL is told to go back to str() answers after a typed run', async () => {
    const root = new FakeClient('root', scripted(repl('typed'), repl('plain')));
    const { rlm, env } = makeRLM({ root, rlm: { persistent: true }, cells: { typed: marks({ summary: 's', lines: [] }), plain: { finalAnswer: 'words' } } });
    await rlm.completion(CONTEXT, { schema: Findings });
    const second = await rlm.completion(CONTEXT);
    expect(second.response).toBe('words');
    expect(env().setCalls.filter((c) => c.name === STRUCTURED_ANSWER_VARIABLE).map((c) => c.value)).toEqual([true, false]);
  });
});

/** A client with native structured output: it returns `parsed` when asked for a format. */
class StructuredClient implements LMClient {
  readonly provider = 'structured-fake';
  readonly requests: LMRequest[] = [];
  constructor(
    readonly model: string,
    private readonly reply: (request: LMRequest) => unknown,
  ) {}
  async complete(request: LMRequest): Promise<LMResult> {
    this.requests.push(request);
    const value = this.reply(request);
    return { text: JSON.stringify(value), usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: this.model, ...(request.responseFormat ? { parsed: value } : {}) };
  }
}

const SCHEMA = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };

async function subcall(ctx: CellContext, op: 'llm_query' | 'rlm_query', prompts: string[], schema: unknown) {
  return ctx.host.handle({ op, prompts, model: null, schema: schema as never }, ctx.signal);
}

describe('structured sub-calls', () => {
  it('sends the schema as the response format and returns validated values as JSON, failures as Error strings', async () => {
    const sub = new StructuredClient('sub', (r) => {
      const prompt = r.messages[0]!.content;
      return prompt === 'good' ? { n: 1 } : { n: 'one' };
    });
    let out: string[] = [];
    const root = new FakeClient('root', scripted(repl('cell'), repl('done')));
    const { rlm } = makeRLM({
      root,
      others: [sub as unknown as FakeClient],
      cells: {
        cell: async (ctx) => {
          out = results(await subcall(ctx, 'llm_query', ['good', 'bad'], SCHEMA));
          return {};
        },
        done: { finalAnswer: 'ok' },
      },
    });
    const result = await rlm.completion(CONTEXT);
    expect(sub.requests[0]?.responseFormat).toEqual({ name: 'reply', schema: SCHEMA });
    expect(out[0]).toBe('{"n":1}');
    expect(out[1]).toBe('Error: the reply does not match the schema:\n- reply["n"]: Instance type "string" is invalid. Expected "integer".');
    const records = result.trajectory.iterations[0]!.codeBlocks[0]!.subcalls;
    expect(records[1]?.response).toBe('{"n":"one"}');
    expect(records[1]?.error).toMatch(/does not match/);
  });

  it('parses JSON text from a client without structured output', async () => {
    const sub = new FakeClient('sub', scripted('```json\n{"n": 3}\n```', 'three'));
    let out: string[] = [];
    const root = new FakeClient('root', scripted(repl('cell'), repl('done')));
    const { rlm } = makeRLM({
      root,
      others: [sub],
      rlm: { maxConcurrentSubcalls: 1 },
      cells: {
        cell: async (ctx) => {
          out = results(await subcall(ctx, 'llm_query', ['a', 'b'], SCHEMA));
          return {};
        },
        done: { finalAnswer: 'ok' },
      },
    });
    await rlm.completion(CONTEXT);
    expect(out[0]).toBe('{"n":3}');
    expect(out[1]).toMatch(/^Error: the reply is not JSON/);
  });

  it('refuses a hostile schema from Python before any call (raised in Python)', async () => {
    const sub = new FakeClient('sub', scripted());
    let reply: unknown;
    const root = new FakeClient('root', scripted(repl('cell'), repl('done')));
    const { rlm } = makeRLM({
      root,
      others: [sub],
      cells: {
        cell: async (ctx) => {
          reply = await subcall(ctx, 'llm_query', ['x'], { type: 'string', pattern: '^(a+)+$' });
          return {};
        },
        done: { finalAnswer: 'ok' },
      },
    });
    await rlm.completion(CONTEXT);
    expect(reply).toEqual({ error: expect.stringMatching(/may not use 'pattern'/) });
    expect(sub.calls).toHaveLength(0);
  });

  it('holds a child RLM to the schema: its answer comes back as JSON, or as an Error with the issues', async () => {
    let out: string[] = [];
    const root = new FakeClient('root', (messages, _request, call) => {
      const system = messages[0]?.content ?? '';
      // Children see the schema in their system prompt; the root's first turn runs the fan-out.
      if (system.includes('Answer format')) return repl('child');
      return call === 0 ? repl('fanout') : repl('done');
    });
    const { rlm } = makeRLM({
      root,
      rlm: { maxDepth: 2 },
      cells: {
        fanout: async (ctx) => {
          out = results(await subcall(ctx, 'rlm_query', ['good task', 'bad task'], SCHEMA));
          return {};
        },
        // A child sees its task as its `context`.
        child: ({ repl: env }) => (env.vars.get('context') === 'good task' ? marks({ n: 5 }) : marks({ m: 5 })) as { finalAnswer: string },
        done: { finalAnswer: 'ok' },
      },
    });
    await rlm.completion(CONTEXT);
    expect(out[0]).toBe('{"n":5}');
    expect(out[1]).toBe('Error: the child RLM\'s answer does not match the schema:\n- reply["n"]: is required but missing.');
  });
});

describe('types', () => {
  it('infers the response from a Standard Schema, takes T for a JSON Schema, and is a string without one', () => {
    const rlm = {} as RLMCore;
    const typed = () => rlm.completion('ctx', { schema: Findings });
    expectTypeOf(typed).returns.resolves.toEqualTypeOf<CompletionResult<{ summary: string; lines: number[] }>>();
    const fromJSON = () => rlm.completion<{ n: number }>('ctx', { schema: SCHEMA });
    expectTypeOf(fromJSON).returns.resolves.toEqualTypeOf<CompletionResult<{ n: number }>>();
    const unknownJSON = () => rlm.completion('ctx', { schema: SCHEMA });
    expectTypeOf(unknownJSON).returns.resolves.toEqualTypeOf<CompletionResult<unknown>>();
    const plain = () => rlm.completion('ctx', { rootPrompt: 'q' });
    expectTypeOf(plain).returns.resolves.toEqualTypeOf<CompletionResult<string>>();
    const streamed = () => rlm.stream('ctx', { schema: Findings }).result;
    expectTypeOf(streamed).returns.resolves.toEqualTypeOf<CompletionResult<{ summary: string; lines: number[] }>>();
    // @ts-expect-error a string is not a schema
    void (() => rlm.completion('ctx', { schema: 'json' }));
  });
});
