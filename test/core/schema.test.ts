import { describe, expect, it } from 'vitest';
import * as v from 'zod';
import { providerSchema, isStrictReady, readStructured } from '../../src/clients/structured';
import { ConfigurationError, LMResponseError } from '../../src/core/errors';
import {
  compileSchema,
  formatIssues,
  isStandardSchema,
  MODEL_SCHEMA_MAX_CHARS,
  parseJSONReply,
  validateAnswerText,
} from '../../src/core/schema';
import type { JSONSchema } from '../../src/core/types';

const FINDINGS: JSONSchema = {
  type: 'object',
  properties: {
    title: { type: 'string' },
    items: { type: 'array', items: { type: 'object', properties: { line: { type: 'integer', minimum: 1 } }, required: ['line'] } },
  },
  required: ['title', 'items'],
  additionalProperties: false,
};

describe('schema detection and conversion', () => {
  it('tells a Standard Schema from a JSON Schema', async () => {
    expect(isStandardSchema(v.object({ a: v.string() }))).toBe(true);
    expect(isStandardSchema(FINDINGS)).toBe(false);
    expect(isStandardSchema({ '~standard': { version: 2, validate: () => ({ value: 1 }) } })).toBe(false);
    expect(isStandardSchema(null)).toBe(false);
  });

  it('finds the JSON Schema of a zod schema and records its vendor', async () => {
    const compiled = await compileSchema(v.object({ title: v.string(), n: v.number().int() }), 'app');
    expect(compiled.recorded.vendor).toBe('zod');
    expect(compiled.jsonSchema).toMatchObject({ type: 'object', properties: { title: { type: 'string' }, n: { type: 'integer' } }, required: ['title', 'n'] });
  });

  it('keeps a Standard Schema without a JSON Schema usable (validation only)', async () => {
    const custom = {
      '~standard': {
        version: 1 as const,
        vendor: 'custom',
        validate: (value: unknown) => (typeof value === 'number' ? { value: value * 2 } : { issues: [{ message: 'expected a number', path: [{ key: 'x' }] }] }),
      },
    };
    const compiled = await compileSchema(custom, 'app');
    expect(compiled.jsonSchema).toBeUndefined();
    expect(compiled.recorded).toEqual({ vendor: 'custom', jsonSchema: undefined });
    expect(await compiled.validate(4)).toEqual({ ok: true, value: 8 });
    expect(await compiled.validate('4')).toEqual({ ok: false, issues: [{ path: ['x'], message: 'expected a number' }] });
  });

  it('records a JSON Schema as it is', async () => {
    expect((await compileSchema(FINDINGS, 'app')).recorded).toEqual({ vendor: 'json-schema', jsonSchema: FINDINGS });
  });

  it('refuses what is not a schema, and references it would have to fetch', async () => {
    await expect(compileSchema('an object please', 'app')).rejects.toThrow(ConfigurationError);
    await expect(compileSchema([{ type: 'string' }], 'app')).rejects.toThrow(/got an array/);
    await expect(compileSchema({ $ref: 'https://example.com/schema.json' }, 'app')).rejects.toThrow(/nothing is fetched/);
  });
});

describe('validation issues', () => {
  it('lists the failing leaves with paths into the value (indexes as numbers), not their parents', async () => {
    const outcome = await (await compileSchema(FINDINGS, 'app')).validate({ items: [{ line: 0 }, {}], extra: 1 });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.issues).toEqual([
      { path: ['title'], message: 'is required but missing.' },
      { path: ['items', 0, 'line'], message: '0 is less than 1.' },
      { path: ['items', 1, 'line'], message: 'is required but missing.' },
      { path: ['extra'], message: 'is not allowed here (the schema has no such property or item).' },
    ]);
  });

  it('decodes keys that JSON Pointer escapes', async () => {
    const schema = { type: 'object', properties: { 'a/b c~d': { type: 'number' } } };
    const outcome = await (await compileSchema(schema, 'app')).validate({ 'a/b c~d': 'x' });
    expect(outcome.ok ? [] : outcome.issues.map((i) => i.path)).toEqual([['a/b c~d']]);
  });

  it('maps zod issues to the same shape', async () => {
    const outcome = await (await compileSchema(v.object({ rows: v.array(v.object({ n: v.number() })) }), 'app')).validate({ rows: [{ n: 'one' }] });
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.issues[0]?.path).toEqual(['rows', 0, 'n']);
  });

  it('returns the value a Standard Schema produces (transforms, defaults)', async () => {
    const outcome = await (await compileSchema(v.object({ n: v.string().transform(Number), tag: v.string().default('none') }), 'app')).validate({ n: '7' });
    expect(outcome).toEqual({ ok: true, value: { n: 7, tag: 'none' } });
  });

  it('formats issues as Python indexing, at most 20, each cut', async () => {
    const many = Array.from({ length: 25 }, (_, i) => ({ path: ['rows', i, 'a"b'], message: i === 0 ? 'x'.repeat(400) : 'bad' }));
    const text = formatIssues(many, 'answer["content"]');
    const lines = text.split('\n');
    expect(lines).toHaveLength(21);
    expect(lines[0]).toBe(`- answer["content"]["rows"][0]["a\\"b"]: ${'x'.repeat(300)}...`);
    expect(lines[20]).toBe('- ... and 5 more');
    expect(formatIssues([{ path: [], message: 'Expected an array.' }], 'reply')).toBe('- reply: Expected an array.');
  });
});

describe('answers as the REPL hands them over', () => {
  const compiled = compileSchema({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }, 'app');

  it('reads JSON, and JSON inside a string the model json.dumps-ed', async () => {
    expect(await validateAnswerText(await compiled, '{"n": 1}')).toEqual({ ok: true, value: { n: 1 } });
    expect(await validateAnswerText(await compiled, JSON.stringify('{"n": 2}'))).toEqual({ ok: true, value: { n: 2 } });
    // FINAL({"n": 3}) in the reply text arrives raw.
    expect(await validateAnswerText(await compiled, '{"n": 3}')).toEqual({ ok: true, value: { n: 3 } });
  });

  it('checks text that is not JSON as a string', async () => {
    const outcome = await validateAnswerText(await compiled, 'the answer is 3');
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.issues[0]?.message).toMatch(/object/);
    expect(await validateAnswerText((await compileSchema({ type: 'string' }, 'app')), 'plain words')).toEqual({ ok: true, value: 'plain words' });
  });

  it('reads a JSON reply inside a ```json fence', async () => {
    expect(parseJSONReply('```json\n[1, 2]\n```')).toEqual({ value: [1, 2] });
    expect(parseJSONReply(' {"a": true} ')).toEqual({ value: { a: true } });
    expect(parseJSONReply('not json')).toBeUndefined();
  });
});

describe('schemas written by model code (hostile)', () => {
  it('refuses regexes, which could backtrack for minutes on the page', async () => {
    await expect(compileSchema({ type: 'string', pattern: '^(a+)+$' }, 'model')).rejects.toThrow(/pattern/);
    await expect(compileSchema({ type: 'object', patternProperties: { '^x': {} } }, 'model')).rejects.toThrow(/patternProperties/);
    await expect(compileSchema({ type: 'array', items: { type: 'string', format: 'regex' } }, 'model')).rejects.toThrow(/regex/);
    // A property *named* pattern is not a regex.
    await expect(compileSchema({ type: 'object', properties: { pattern: { type: 'string' } } }, 'model')).resolves.toBeDefined();
    // The app's own schema may use one.
    await expect(compileSchema({ type: 'string', pattern: '^[a-z]+$' }, 'app')).resolves.toBeDefined();
  });

  it('caps size and depth', async () => {
    const big = { type: 'object', description: 'x'.repeat(MODEL_SCHEMA_MAX_CHARS) };
    await expect(compileSchema(big, 'model')).rejects.toThrow(/limited to 32000/);
    let deep: JSONSchema = { type: 'string' };
    for (let i = 0; i < 40; i++) deep = { type: 'array', items: deep };
    await expect(compileSchema(deep, 'model')).rejects.toThrow(/deeper than 32/);
  });

  it('keeps 200 issues of an answer with 10,000 wrong items (found in one pass, not pairwise)', async () => {
    const rows = Array.from({ length: 10_000 }, () => ({ line: 'x' }));
    for (const schema of [await compileSchema(FINDINGS, 'app'), await compileSchema(v.object({ title: v.string(), items: v.array(v.object({ line: v.number() })) }), 'app')]) {
      const outcome = await schema.validate({ title: 't', items: rows });
      expect(outcome.ok ? 0 : outcome.issues.length).toBe(200);
    }
    // Past what the validator can collect, the answer fails with one issue rather than a crash.
    const huge = await (await compileSchema(FINDINGS, 'app')).validate({ title: 't', items: Array.from({ length: 60_000 }, () => ({ line: 'x' })) });
    expect(huge.ok ? [] : huge.issues).toEqual([{ path: [], message: expect.stringMatching(/^could not be checked/) }]);
  });

  it('reports a value nested past the validator as an issue, not a crash', async () => {
    const schema = await compileSchema({ $defs: { node: { type: 'array', items: { $ref: '#/$defs/node' } } }, $ref: '#/$defs/node' }, 'model');
    let value: unknown = [];
    for (let i = 0; i < 20_000; i++) value = [value];
    const outcome = await schema.validate(value);
    expect(outcome.ok).toBe(false);
  });
});

describe('provider schemas', () => {
  it('sends objects as they are, without $schema, and wraps anything else', async () => {
    expect(providerSchema({ name: 'reply', schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: {} } })).toEqual({
      name: 'reply',
      schema: { type: 'object', properties: {} },
      wrapped: false,
    });
    const list = providerSchema({ name: 'reply', schema: { type: 'array', items: { $ref: '#/$defs/row' }, $defs: { row: { type: 'string' } } } });
    expect(list.wrapped).toBe(true);
    expect(list.schema).toEqual({
      type: 'object',
      properties: { value: { type: 'array', items: { $ref: '#/$defs/row' } } },
      required: ['value'],
      additionalProperties: false,
      $defs: { row: { type: 'string' } },
    });
  });

  it('unwraps replies and refuses ones that are not JSON of that shape', async () => {
    expect(readStructured('{"value": [1]}', true, 'openai', 'm')).toEqual([1]);
    expect(readStructured('{"a": 1}', false, 'openai', 'm')).toEqual({ a: 1 });
    expect(() => readStructured('Sure! {"a": 1}', false, 'openai', 'm')).toThrow(LMResponseError);
    expect(() => readStructured('{"a": 1}', true, 'anthropic', 'm')).toThrow(/"value" member/);
  });

  it('asks OpenAI for strict mode only when the schema allows it', async () => {
    expect(isStrictReady((await compileSchema(v.object({ a: v.string(), b: v.array(v.object({ c: v.number() })) }), 'app')).jsonSchema!)).toBe(true);
    expect(isStrictReady(FINDINGS)).toBe(false);
    expect(isStrictReady({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] })).toBe(false);
    expect(isStrictReady(providerSchema({ name: 'r', schema: { type: 'string' } }).schema)).toBe(true);
  });
});
