/**
 * The runtime's contract parsers, fed what hostile Python could send: each message is taken
 * only in its documented shape, rebuilt from scratch (nothing of the sender's object survives),
 * within its caps, and everything else is refused or dropped without a throw.
 */
import { describe, expect, it } from 'vitest';
import { parseRelayedCall } from '../../src/protocol/frame';
import { CELL_LIMITS, parseCellOutput, parseJSONValue, parseSubcallReply, parseSubcallRequest, REQUEST_LIMITS } from '../../src/protocol/runtime';
import { MAX_OUTPUT_CHUNK_CHARS, parseBootInfo, parseBridgeMessage, parseSharedCall } from '../../src/protocol/worker';

/** A value that JSON.parse made with an own "__proto__" key, as structured clone would deliver it. */
const withProtoKey = (inner: string) => JSON.parse(`{"__proto__": ${inner}, "a": 1}`) as Record<string, unknown>;

describe('parseSubcallRequest', () => {
  it('takes the three ops in their shapes and rebuilds them', () => {
    const request = { op: 'llm_query', prompts: ['a', 'b'], model: null, extra: 'dropped' };
    const parsed = parseSubcallRequest(request);
    expect(parsed).toEqual({ ok: true, value: { op: 'llm_query', prompts: ['a', 'b'], model: null } });
    if (!parsed.ok || parsed.value.op === 'tool') throw new Error('unreachable');
    expect(parsed.value.prompts).not.toBe(request.prompts);
    expect(parseSubcallRequest({ op: 'rlm_query', prompts: ['q'], model: 'm', schema: { type: 'object' } })).toEqual({
      ok: true,
      value: { op: 'rlm_query', prompts: ['q'], model: 'm', schema: { type: 'object' } },
    });
    // Python's None arrives as undefined through to_js.
    expect(parseSubcallRequest({ op: 'llm_query', prompts: ['q'], model: undefined, schema: undefined })).toEqual({ ok: true, value: { op: 'llm_query', prompts: ['q'], model: null } });
    expect(parseSubcallRequest({ op: 'tool', name: 'lookup', args: [1, 'x', null, [true]], kwargs: { k: { n: 2.5 } } })).toEqual({
      ok: true,
      value: { op: 'tool', name: 'lookup', args: [1, 'x', null, [true]], kwargs: { k: { n: 2.5 } } },
    });
  });

  it('refuses every other shape with a reason the cell can read', () => {
    const refused: [unknown, RegExp][] = [
      [null, /must be an object/],
      [['llm_query'], /must be an object/],
      [{ op: 'fetch', url: 'x' }, /unknown request op "fetch"/],
      [{ op: 'llm_query', prompts: 'text' }, /list of str prompts/],
      [{ op: 'llm_query', prompts: [[{ type: 'image_url', image_url: { url: 'https://x' } }]] }, /prompt 0 is a list/],
      [{ op: 'llm_query', prompts: [{ role: 'user', content: 'x' }] }, /prompt 0 is an object/],
      [{ op: 'llm_query', prompts: ['ok', 3] }, /prompt 1 is a number/],
      [{ op: 'llm_query', prompts: ['x'], model: 7 }, /model must be a str/],
      [{ op: 'llm_query', prompts: ['x'], model: 'm'.repeat(REQUEST_LIMITS.maxNameChars + 1) }, /model is longer/],
      [{ op: 'llm_query', prompts: ['x'], schema: [1] }, /must be a dict/],
      [{ op: 'llm_query', prompts: ['x'], schema: { pattern: new Map() } }, /schema .* refused/],
      [{ op: 'llm_query', prompts: new Array<string>(REQUEST_LIMITS.maxPrompts + 1).fill('') }, /at most 100000/],
      [{ op: 'tool', name: ['lookup'], args: [] }, /tool name must be a str/],
      [{ op: 'tool', name: 'lookup', args: [new Date()] }, /arguments of tool lookup were refused/],
      [{ op: 'tool', name: 'lookup', args: 'x' }, /must be a list/],
      [{ op: 'tool', name: 'lookup', args: [], kwargs: [1] }, /must be a dict/],
      [{ op: 'tool', name: 'lookup', args: [() => 1] }, /function/],
      [{ op: 'tool', name: 'lookup', args: [new Uint8Array(4)] }, /JSON cannot carry/],
    ];
    for (const [value, reason] of refused) {
      const parsed = parseSubcallRequest(value);
      expect(parsed.ok, JSON.stringify(value)?.slice(0, 80)).toBe(false);
      if (!parsed.ok) expect(parsed.reason).toMatch(reason);
    }
  });

  it('bounds the characters of one request', () => {
    const big = 'x'.repeat(REQUEST_LIMITS.maxPromptChars + 1);
    expect(parseSubcallRequest({ op: 'llm_query', prompts: [big] })).toMatchObject({ ok: false, reason: expect.stringMatching(/split it/) });
    const quarter = 'y'.repeat(REQUEST_LIMITS.maxPromptChars);
    expect(parseSubcallRequest({ op: 'llm_query', prompts: [quarter, quarter, quarter, quarter, 'z'] })).toMatchObject({ ok: false, reason: expect.stringMatching(/fewer at a time/) });
  });
});

describe('parseJSONValue', () => {
  it('keeps a "__proto__" key a key and gives the copy an ordinary prototype', () => {
    const parsed = parseJSONValue(withProtoKey('{"polluted": true}'));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const value = parsed.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__', 'a']);
    expect((value as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('writes NaN, Infinity and undefined as JSON would, and refuses cycles, depth and size', () => {
    expect(parseJSONValue([NaN, Infinity, undefined, -0])).toEqual({ ok: true, value: [null, null, null, -0] });
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(parseJSONValue(cycle)).toMatchObject({ ok: false, reason: 'it nests too deeply' });
    let deep: unknown = 1;
    for (let i = 0; i < REQUEST_LIMITS.maxJSONDepth + 1; i++) deep = [deep];
    expect(parseJSONValue(deep).ok).toBe(false);
    expect(parseJSONValue({ a: 'x'.repeat(100) }, 8, 50)).toMatchObject({ ok: false, reason: 'its text is too long' });
    expect(parseJSONValue(new Array(REQUEST_LIMITS.maxJSONNodes + 1).fill(0))).toMatchObject({ ok: false });
    class Point {
      x = 1;
    }
    expect(parseJSONValue(new Point())).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot carry/) });
  });
});

describe('parseCellOutput', () => {
  const cell = { stdout: 'out', stderr: '', locals: ['x'], previews: { x: '1' }, execution_time: 0.5, final_answer: null, error_type: null, interrupted: false };

  it('takes a report and cuts what no runtime report holds', () => {
    expect(parseCellOutput(cell)).toEqual(cell);
    const flood = parseCellOutput({
      ...cell,
      stdout: 'o'.repeat(CELL_LIMITS.maxStreamChars + 10),
      locals: Array.from({ length: CELL_LIMITS.maxLocals + 5 }, (_, i) => `v${i}`),
      previews: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`v${i}`, 'p'.repeat(5000)])),
      execution_time: -1,
    });
    expect(flood?.stdout.length).toBeLessThan(CELL_LIMITS.maxStreamChars + 200);
    expect(flood?.stdout).toContain('10 more characters cut');
    expect(flood?.locals).toHaveLength(CELL_LIMITS.maxLocals);
    expect(Object.keys(flood?.previews ?? {})).toHaveLength(CELL_LIMITS.maxPreviews);
    expect(flood?.previews?.v0).toHaveLength(CELL_LIMITS.maxPreviewChars);
    expect(flood?.execution_time).toBe(0);
  });

  it('refuses what is not a report', () => {
    for (const bad of [null, 'x', { ...cell, stdout: 1 }, { ...cell, locals: [1] }, { ...cell, final_answer: 3 }, { ...cell, interrupted: 'no' }, { ...cell, previews: { x: 1 } }]) {
      expect(parseCellOutput(bad)).toBeUndefined();
    }
  });
});

describe('parseSubcallReply', () => {
  it('takes the three shapes, and a tool value only as JSON', () => {
    expect(parseSubcallReply({ results: ['a'] })).toEqual({ results: ['a'] });
    expect(parseSubcallReply({ error: 'e', interrupted: true })).toEqual({ error: 'e', interrupted: true });
    expect(parseSubcallReply({ value: { a: [1] } })).toEqual({ value: { a: [1] } });
    expect(parseSubcallReply({ value: new Map() })).toBeUndefined();
    expect(parseSubcallReply({ results: [1] })).toBeUndefined();
  });
});

describe('the bridge port and the shared port', () => {
  it('parses requests and output, refuses a sound envelope with a bad request, drops the rest', () => {
    expect(parseBridgeMessage({ type: 'request', tenant: 0, id: 3, request: { op: 'llm_query', prompts: ['p'], model: null } })).toEqual({
      type: 'request',
      tenant: 0,
      id: 3,
      request: { op: 'llm_query', prompts: ['p'], model: null },
    });
    expect(parseBridgeMessage({ type: 'output', tenant: 1, stream: 'stderr', text: 'x' })).toEqual({ type: 'output', tenant: 1, stream: 'stderr', text: 'x' });
    expect(parseBridgeMessage({ type: 'request', tenant: 0, id: 3, request: { op: 'eval' } })).toMatchObject({ type: 'refused', tenant: 0, id: 3 });
    const dropped = [
      null,
      7,
      'request',
      [],
      { type: 'request', tenant: -1, id: 1, request: {} },
      { type: 'request', tenant: '0', id: 1, request: {} },
      { type: 'request', tenant: 0, id: 1.5, request: {} },
      { type: 'output', tenant: 0, stream: 'stdin', text: 'x' },
      { type: 'output', tenant: 0, stream: 'stdout', text: 'x'.repeat(MAX_OUTPUT_CHUNK_CHARS + 1) },
      { type: 'APPLY', tenant: 0, path: ['constructor'] },
      { id: 'x', type: 'SET', path: ['__proto__', 'x'] },
      withProtoKey('{"type": "output"}'),
    ];
    for (const message of dropped) expect(parseBridgeMessage(message).type).toBe('dropped');
  });

  it('checks the shared buffer and the sequence number of a shared-memory call', () => {
    const buffer = new SharedArrayBuffer(64);
    expect(parseSharedCall({ type: 'call', request: { op: 'llm_query', prompts: ['p'] }, buffer, seq: 1 })).toMatchObject({ type: 'call', seq: 1 });
    expect(parseSharedCall({ type: 'resume', buffer, seq: 2 })).toEqual({ type: 'resume', buffer, seq: 2 });
    expect(parseSharedCall({ type: 'call', request: { op: 'x' }, buffer, seq: 1 })).toMatchObject({ type: 'refused', seq: 1 });
    for (const bad of [{ type: 'call', seq: 1 }, { type: 'call', buffer: new SharedArrayBuffer(4), seq: 1 }, { type: 'call', buffer: new ArrayBuffer(64), seq: 1 }, { type: 'call', buffer, seq: -1 }, { type: 'call', buffer, seq: 2 ** 40 }, { type: 'x', buffer, seq: 1 }, undefined]) {
      expect(parseSharedCall(bad).type).toBe('dropped');
    }
  });

  it('parses what the frame relays again', () => {
    expect(parseRelayedCall({ type: 'call', seq: 4, request: { op: 'llm_query', prompts: ['p'] } })).toMatchObject({ type: 'call', seq: 4 });
    expect(parseRelayedCall({ type: 'call', seq: 4, request: { op: 'llm_query', prompts: [1] } })).toMatchObject({ type: 'refused', seq: 4 });
    expect(parseRelayedCall({ type: 'refused', seq: 5, reason: 42 })).toEqual({ type: 'refused', seq: 5, reason: 'the request is not one' });
    for (const bad of [{ type: 'reply', seq: 1 }, { type: 'call' }, null]) expect(parseRelayedCall(bad).type).toBe('dropped');
  });

  it('checks the boot report', () => {
    const info = { bridge: 'jspi', pyodideVersion: '0.1', bootMs: 10, interruptible: false, snapshot: 'none' };
    expect(parseBootInfo(info)).toEqual({ ...info, madeSnapshot: undefined });
    for (const bad of [{ ...info, bridge: 'other' }, { ...info, snapshot: 'x' }, { ...info, madeSnapshot: 'bytes' }, null]) expect(parseBootInfo(bad)).toBeUndefined();
  });
});
