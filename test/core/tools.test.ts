import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/core/errors';
import { callTool, describeTools, normalizeTools, RESERVED_NAMES, toJSONValue, toToolDefinitions } from '../../src/core/tools';

function configError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('normalizeTools: names', () => {
  it('accepts no tools', () => {
    expect(normalizeTools(undefined)).toEqual([]);
    expect(normalizeTools({})).toEqual([]);
  });

  it.each(RESERVED_NAMES.map((n) => [n]))('rejects the reserved name %s', (name) => {
    const error = configError(() => normalizeTools({ [name]: () => 1 }));
    expect(error.message).toContain(`'${name}'`);
  });

  it('lists every reserved name in the error, and every clash', () => {
    const error = configError(() => normalizeTools({ context: 1, llm_query: () => 0, fine: 2 }));
    expect(error.message).toContain("'context'");
    expect(error.message).toContain("'llm_query'");
    expect(error.message).not.toContain("'fine'");
    for (const name of RESERVED_NAMES) expect(error.message).toContain(name);
    expect(error.message).toContain('context_N');
    expect(error.message).toContain('history_N');
  });

  it('rejects context_N and history_N', () => {
    expect(configError(() => normalizeTools({ context_3: 'x' })).message).toContain("'context_3'");
    expect(configError(() => normalizeTools({ history_0: 'x' })).message).toContain("'history_0'");
  });

  it('allows names that only look like reserved ones', () => {
    expect(normalizeTools({ context_helper: 1, my_answer: 2, contexts: 3 }).map((t) => t.name)).toEqual(['context_helper', 'my_answer', 'contexts']);
  });

  it('rejects names that are not Python identifiers', () => {
    for (const name of ['my-tool', '2fast', 'has space', '', 'dot.name']) {
      const error = configError(() => normalizeTools({ [name]: 1 }));
      expect(error.message).toContain(`'${name}'`);
      expect(error.message).toContain('identifier');
    }
  });

  it('accepts underscores and digits after the first character', () => {
    expect(normalizeTools({ _private: 1, tool2: 2, CamelCase: 3 }).map((t) => t.name)).toEqual(['_private', 'tool2', 'CamelCase']);
  });
});

describe('normalizeTools: functions and data', () => {
  it('tells functions from data', () => {
    const fn = (x: number) => x * 2;
    const tools = normalizeTools({ double: fn, table: { a: 1 }, n: 3 });
    expect(tools[0]).toEqual({ name: 'double', fn, description: undefined });
    expect(tools[1]).toEqual({ name: 'table', value: { a: 1 }, description: undefined });
    expect(tools[2]).toEqual({ name: 'n', value: 3, description: undefined });
  });

  it('unwraps { tool, description } for both kinds', () => {
    const fn = async () => 'ok';
    const tools = normalizeTools({
      fetch: { tool: fn, description: 'fetch(url) returns the page text' },
      rates: { tool: [1, 2], description: 'exchange rates' },
    });
    expect(tools[0]).toEqual({ name: 'fetch', fn, description: 'fetch(url) returns the page text' });
    expect(tools[1]).toEqual({ name: 'rates', value: [1, 2], description: 'exchange rates' });
  });

  it('stores data as a JSON copy', () => {
    const data = { when: new Date(0), list: [1, undefined, 3], nested: { skip: undefined, keep: true } };
    const tools = normalizeTools({ data });
    expect(tools[0]?.value).toEqual({ when: '1970-01-01T00:00:00.000Z', list: [1, null, 3], nested: { keep: true } });
    expect(tools[0]?.value).not.toBe(data);
  });

  it('rejects data that cannot become JSON', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(configError(() => normalizeTools({ cyclic })).message).toContain('cyclic');
    expect(() => normalizeTools({ big: 10n })).toThrow(ConfigurationError);
  });
});

describe('toToolDefinitions and describeTools', () => {
  const tools = normalizeTools({
    fn: () => 1,
    described: { tool: () => 2, description: 'does things' },
    text: 'hello',
    int: 4,
    float: 1.5,
    flag: true,
    nothing: null,
    list: [1],
    obj: { a: 1 },
  });

  it('tells the REPL which names are functions and gives data values', () => {
    const defs = toToolDefinitions(tools);
    expect(defs[0]).toEqual({ name: 'fn', kind: 'function' });
    expect(defs[2]).toEqual({ name: 'text', kind: 'data', value: 'hello' });
    expect(defs.find((d) => d.name === 'obj')).toEqual({ name: 'obj', kind: 'data', value: { a: 1 } });
  });

  it('describes tools for the prompt with Python type names for data', () => {
    const described = Object.fromEntries(describeTools(tools).map((d) => [d.name, d]));
    expect(described.fn).toMatchObject({ kind: 'function', typeName: undefined, description: undefined });
    expect(described.described).toMatchObject({ kind: 'function', description: 'does things' });
    expect(described.text?.typeName).toBe('str');
    expect(described.int?.typeName).toBe('int');
    expect(described.float?.typeName).toBe('float');
    expect(described.flag?.typeName).toBe('bool');
    expect(described.nothing?.typeName).toBe('None');
    expect(described.list?.typeName).toBe('list');
    expect(described.obj?.typeName).toBe('dict');
  });
});

describe('toJSONValue', () => {
  it('maps undefined to null and copies plain data', () => {
    expect(toJSONValue(undefined, 'x')).toBeNull();
    expect(toJSONValue(null, 'x')).toBeNull();
    expect(toJSONValue({ a: [1, 'b', true, null] }, 'x')).toEqual({ a: [1, 'b', true, null] });
  });

  it('maps values JSON cannot carry as JSON.stringify does', () => {
    expect(toJSONValue(() => 1, 'x')).toBeNull();
    expect(toJSONValue(Number.NaN, 'x')).toBeNull();
    expect(toJSONValue(new Map([['a', 1]]), 'x')).toEqual({});
  });

  it('names the value in the error', () => {
    expect(() => toJSONValue(1n, 'the result of f()')).toThrow(/the result of f\(\)/);
  });
});

describe('callTool', () => {
  it('passes positional arguments and converts the result', async () => {
    const [tool] = normalizeTools({ add: (a: number, b: number) => ({ sum: a + b, when: new Date(0) }) });
    expect(await callTool(tool!, [2, 3], {})).toEqual({ sum: 5, when: '1970-01-01T00:00:00.000Z' });
  });

  it('passes kwargs as a last object argument', async () => {
    const calls: unknown[][] = [];
    const [tool] = normalizeTools({
      search: (...args: unknown[]) => {
        calls.push(args);
        return 'ok';
      },
    });
    await callTool(tool!, ['needle'], { limit: 3, exact: true });
    await callTool(tool!, [], { q: 'x' });
    expect(calls).toEqual([['needle', { limit: 3, exact: true }], [{ q: 'x' }]]);
  });

  it('awaits async functions', async () => {
    const [tool] = normalizeTools({ slow: async (x: string) => x.toUpperCase() });
    expect(await callTool(tool!, ['abc'], {})).toBe('ABC');
  });

  it('turns an undefined result into null', async () => {
    const [tool] = normalizeTools({ noop: () => undefined });
    expect(await callTool(tool!, [], {})).toBeNull();
  });

  it('lets the function’s error through', async () => {
    const [tool] = normalizeTools({
      boom: () => {
        throw new RangeError('bad input');
      },
    });
    await expect(callTool(tool!, [], {})).rejects.toThrow('bad input');
  });

  it('refuses to call data', async () => {
    const [tool] = normalizeTools({ table: [1, 2] });
    await expect(callTool(tool!, [], {})).rejects.toThrow(/data, not a function/);
  });
});
