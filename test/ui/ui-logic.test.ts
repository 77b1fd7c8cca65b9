/** The shared UI's pure logic (demo and extension): replies laid out as the engine runs them, settings → RLM options, formatting. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ReplayMismatchError, ResumeError } from '../../src/core/errors';
import { explainError } from '../../ui/errors';
import { formatBytes, formatCost, formatDuration, formatRunCost, unpricedOf } from '../../ui/format';
import { canResume, type HistoryEntry } from '../../ui/history';
import { layoutReply } from '../../ui/run-view';
import { FakeClient, makeRLM, scripted } from '../core/fakes/fakes';
import { answerSchemaOf, defaultSettings, LM_CONNECT_SOURCES, toRLMOptions, validateSettings } from '../../ui/settings';

describe('layoutReply: the view draws the cells the engine runs', () => {
  const tricky: Record<string, string> = {
    'an empty repl block, then a real one': 'First:\n```repl\n```\nThen:\n```repl\nprint("real")\n```',
    'an unclosed trailing block': 'Look:\n```repl\nprint("one")\n```\nAnd:\n```repl\nprint("cut off")',
    '```python fences (shown, not run) around a repl block': '```python\nprint("not run")\n```\n```repl\nprint("run")\n```\n```python\nx = 1\n```',
    'a repl fence inside a python fence': '```python\n```repl\nprint("inside")\n```\n```repl\nprint("outside")\n```',
    'blocks with blank lines and indentation': '  ```repl  \n\nfor i in range(2):\n    print(i)\n\n  ```\n```repl\nprint(2)\n```',
  };
  for (const [name, reply] of Object.entries(tricky)) {
    it(name, async () => {
      const cells = layoutReply(reply).flatMap((piece) => (piece.kind === 'cell' ? [piece.code] : []));
      const root = new FakeClient('root-model', scripted(reply, 'FINAL(done)'));
      const { rlm, env } = makeRLM({ root, cells: Object.fromEntries(cells.map((code) => [code, { stdout: 'ok' }])) });
      const result = await rlm.completion('context');
      expect(result.response).toBe('done');
      expect(cells.length).toBeGreaterThan(0);
      expect(env().executed).toEqual(cells);
      expect(result.trajectory.iterations[0]?.codeBlocks.map((b) => b.code)).toEqual(cells);
    });
  }

  it('keeps prose and foreign fences as Markdown, and marks empty blocks as skipped', () => {
    expect(layoutReply('Hi.\n```python\nx\n```\n```repl\n```').map((p) => p.kind)).toEqual(['prose', 'skipped']);
    expect(layoutReply('Hi.\n```python\nx\n```')[0]).toEqual({ kind: 'prose', text: 'Hi.\n```python\nx\n```' });
  });
});

describe('settings', () => {
  it('needs a key for hosted providers, not for a local server', () => {
    expect(validateSettings(defaultSettings('openai'))).toMatch(/Enter your OpenAI API key/);
    expect(validateSettings({ ...defaultSettings('openai'), apiKey: 'sk-x' })).toBeUndefined();
    expect(validateSettings(defaultSettings('local'))).toBeUndefined();
    expect(validateSettings({ ...defaultSettings('local'), baseURL: 'localhost' })).toMatch(/base URL/);
  });

  it('maps to RLM options: sub-call model as the first other backend, 0 as no limit', () => {
    const options = toRLMOptions({ ...defaultSettings('local'), baseURL: 'http://127.0.0.1:1234/v1', rootModel: 'big', subModel: 'small', maxBudget: 0, maxMinutes: 2 });
    expect(options.backend).toBe('openai');
    expect(options.backendOptions).toEqual({ model: 'big', apiKey: undefined, baseURL: 'http://127.0.0.1:1234/v1' });
    expect(options.otherBackends).toEqual([{ backend: 'openai', backendOptions: { model: 'small', apiKey: undefined, baseURL: 'http://127.0.0.1:1234/v1' } }]);
    expect(options.maxBudget).toBeUndefined();
    expect(options.maxTimeMs).toBe(120_000);
    expect(toRLMOptions({ ...defaultSettings('anthropic'), apiKey: 'k' }).environmentOptions).toEqual({ bridge: 'auto' });
    expect(toRLMOptions({ ...defaultSettings('anthropic'), apiKey: 'k', bridge: 'jspi' }).environmentOptions).toEqual({ bridge: 'jspi' });
  });

  it('never sends a base URL for hosted presets', () => {
    expect(toRLMOptions({ ...defaultSettings('anthropic'), apiKey: 'k', baseURL: 'http://evil' }).backendOptions?.baseURL).toBeUndefined();
  });
});

describe('answer format', () => {
  const base = { ...defaultSettings('openai'), apiKey: 'sk-x' };
  it('is optional: empty means a text answer', () => {
    expect(validateSettings(base)).toBeUndefined();
    expect(answerSchemaOf({ ...base, answerSchema: '  ' })).toBeUndefined();
  });
  it('refuses what is not a JSON object, saying so', () => {
    expect(validateSettings({ ...base, answerSchema: '{"type": "array", items: {}}' })).toMatch(/^The answer format is not valid JSON \(/);
    expect(validateSettings({ ...base, answerSchema: '[1, 2]' })).toMatch(/must be a JSON Schema object/);
    expect(validateSettings({ ...base, answerSchema: '"object"' })).toMatch(/must be a JSON Schema object/);
    expect(answerSchemaOf({ ...base, answerSchema: '[1, 2]' })).toBeUndefined();
  });
  it('becomes the schema of the run', () => {
    expect(answerSchemaOf({ ...base, answerSchema: '{"type": "object", "required": ["a"]}' })).toEqual({ type: 'object', required: ['a'] });
  });
});

describe('resume errors say how this page gives the context again', () => {
  const missing = new ResumeError('no context', 'context_missing', 'r1');
  const mismatch = new ResumeError('a str of length 3; the run’s was a str of length 5.', 'context_mismatch', 'r1');
  const replay = new ReplayMismatchError('r1', 1, 0, 'stdout', 'found at 3', 'AttributeError');
  const panel = 'Choose the same source under “Ask about”, then press Resume again.';
  it('in the demo’s words by default', () => {
    expect(explainError(missing)).toEqual({ title: 'Resuming needs the run’s context.', detail: 'It was too large to be saved with the run. Pick the same file (or paste the same text) under Context, then press Resume again.' });
    expect(explainError(mismatch).detail).toMatch(/length 5\. Pick the same file/);
  });
  it('in the page’s own words when it gives them', () => {
    expect(explainError(missing, { contextAgain: panel }).detail).toBe(`It was too large to be saved with the run. ${panel}`);
    expect(explainError(mismatch, { contextAgain: panel })).toEqual({ title: 'That is not the run’s context.', detail: `${mismatch.message} ${panel}` });
  });
  it('suspects the context given again only when one was', () => {
    expect(explainError(replay, { contextAgain: panel }).detail).toBe(replay.message);
    expect(explainError(replay, { contextAgain: panel, contextGivenAgain: true }).detail).toBe(`${replay.message} The context given again may not be the run’s. ${panel}`);
    expect(explainError(new ResumeError('done already', 'not_resumable', 'r1'), { contextAgain: panel })).toEqual({ title: 'This run cannot be resumed.', detail: 'done already' });
  });
});

describe('format', () => {
  it('says sizes, times and costs as people read them', () => {
    expect(formatBytes(50_000_000)).toBe('47.7 MB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(75_000)).toBe('1 min 15 s');
    expect(formatCost(0.25)).toBe('$0.25');
    expect(formatCost(0.0003)).toBe('$0.0003');
  });

  it('names the models of unknown cost instead of showing $0', () => {
    expect(formatRunCost(0.25, [])).toBe('$0.25');
    expect(formatRunCost(0, ['local-model'])).toBe('cost unknown for local-model');
    expect(formatRunCost(0.25, ['a', 'b'])).toBe('$0.25 + cost unknown for a, b');
    expect(unpricedOf({ models: { a: { unpricedCalls: 0 }, b: { unpricedCalls: 2 }, old: {} } })).toEqual(['b']);
  });
});

describe('History offers Resume where rlm.resume() would take the run', () => {
  const entry = (over: Partial<HistoryEntry>): HistoryEntry => ({ id: 'r', status: 'interrupted', model: 'm', usage: { calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0, models: {} }, startedAt: '', iterationCount: 1, ...over });
  it('for root runs without a schema that stopped before their answer', () => {
    expect(['interrupted', 'failed', 'cancelled', 'completed', 'running', 'imported'].filter((status) => canResume(entry({ status: status as HistoryEntry['status'] })))).toEqual(['interrupted', 'failed', 'cancelled']);
    expect(canResume(entry({ config: { depth: 0 } }))).toBe(true);
  });
  it('not for a run held to a schema, nor for a child run', () => {
    expect(canResume(entry({ schema: { type: 'object' } }))).toBe(false);
    expect(canResume(entry({ config: { depth: 1 } }))).toBe(false);
  });
});

describe('where the demo and the panel may connect', () => {
  it('the demo page’s CSP connect-src is LM_CONNECT_SOURCES and its own origin', () => {
    const html = readFileSync(new URL('../../demo/index.html', import.meta.url), 'utf8');
    const csp = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html)?.[1] ?? '';
    const connect = /connect-src ([^;]+)/.exec(csp)?.[1]?.trim().split(/\s+/) ?? [];
    expect(new Set(connect)).toEqual(new Set(["'self'", ...LM_CONNECT_SOURCES]));
  });

  it('lists each hosted preset’s origin and this computer, nothing else', () => {
    expect(LM_CONNECT_SOURCES).toEqual(expect.arrayContaining(['https://api.openai.com', 'https://api.anthropic.com', 'https://openrouter.ai', 'http://localhost:*', 'http://127.0.0.1:*']));
    expect(LM_CONNECT_SOURCES.every((s) => !s.includes('*.') && s !== 'https:' && s !== 'http:')).toBe(true);
  });

  it('a local server elsewhere than this computer is refused before a run, saying why', () => {
    expect(validateSettings({ ...defaultSettings('local'), baseURL: 'http://127.0.0.1:8000/v1' })).toBeUndefined();
    expect(validateSettings({ ...defaultSettings('local'), baseURL: 'https://localhost/v1' })).toBeUndefined();
    expect(validateSettings({ ...defaultSettings('local'), baseURL: 'http://192.168.1.20:11434/v1' })).toMatch(/only to the providers in Settings and to a server on this computer .* not to 192\.168\.1\.20:11434/);
  });
});
