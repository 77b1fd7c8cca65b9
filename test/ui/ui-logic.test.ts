/** The shared UI's pure logic (demo and extension): splitting replies into prose and cells, settings → RLM options, formatting. */
import { describe, expect, it } from 'vitest';
import { formatBytes, formatCost, formatDuration, formatRunCost, unpricedOf } from '../../ui/format';
import { splitReply } from '../../ui/run-view';
import { defaultSettings, toRLMOptions, validateSettings } from '../../ui/settings';

describe('splitReply', () => {
  it('separates ```repl blocks from the prose around them, in order', () => {
    const parts = splitReply('Look first.\n\n```repl\nprint(1)\n```\n\nThen:\n```repl\nx = 2\n```\nDone.');
    expect(parts).toEqual([
      { kind: 'prose', text: 'Look first.\n' },
      { kind: 'code', code: 'print(1)' },
      { kind: 'prose', text: '\nThen:' },
      { kind: 'code', code: 'x = 2' },
      { kind: 'prose', text: 'Done.' },
    ]);
  });

  it('keeps other fences (```python) in the prose, where Markdown shows them as code', () => {
    const parts = splitReply('Not run:\n```python\nprint(1)\n```');
    expect(parts).toEqual([{ kind: 'prose', text: 'Not run:\n```python\nprint(1)\n```' }]);
  });

  it('treats an unclosed repl block as code (the engine runs it too)', () => {
    expect(splitReply('```repl\nprint(2)')).toEqual([{ kind: 'code', code: 'print(2)' }]);
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
