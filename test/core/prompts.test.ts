import { describe, expect, it } from 'vitest';
import {
  buildCompactedNote,
  buildMetadataMessage,
  buildOpening,
  buildToolMarkupReminder,
  ORCHESTRATOR_GUIDANCE,
  withOrchestratorGuidance,
  buildSystemPrompt,
  buildTurnPrompt,
  FINAL_REQUEST,
  formatToolsSection,
  NO_CODE_REMINDER,
  type SystemPromptOptions,
} from '../../src/core/prompts';
import { RESERVED_NAMES } from '../../src/core/tools';

const base: SystemPromptOptions = { recursive: false, tools: [], subcallChars: 400_000, maxOutputChars: 20_000, compaction: false };

describe('buildSystemPrompt', () => {
  it('names every REPL helper the runtime defines', () => {
    const prompt = buildSystemPrompt(base);
    for (const name of ['context', 'llm_query', 'llm_query_batched', 'rlm_query', 'rlm_query_batched', 'SHOW_VARS', 'answer', 'FINAL_VAR']) {
      expect(prompt, name).toContain(`\`${name}`);
    }
  });

  it('covers every reserved name except `history` (which only compaction adds)', () => {
    const prompt = buildSystemPrompt(base);
    for (const name of RESERVED_NAMES.filter((n) => n !== 'history')) expect(prompt).toContain(name);
    expect(prompt).not.toContain('`history`');
    expect(buildSystemPrompt({ ...base, compaction: true })).toContain('`history`');
  });

  it('teaches the ```repl fence and the answer dict', () => {
    const prompt = buildSystemPrompt(base);
    expect(prompt).toContain('```repl');
    expect(prompt).toContain('answer["ready"] = True');
    expect(prompt).toContain('answer["content"]');
  });

  it('states the output limit and the sub-call capacity', () => {
    const prompt = buildSystemPrompt({ ...base, subcallChars: 123_000, maxOutputChars: 4321 });
    expect(prompt).toContain('4321');
    expect(prompt).toContain('123K');
  });

  it('describes rlm_query as a child RLM only when recursion is on', () => {
    const on = buildSystemPrompt({ ...base, recursive: true });
    const off = buildSystemPrompt({ ...base, recursive: false });
    expect(on).toContain('child RLM');
    expect(on).not.toContain('recursion is off');
    expect(off).toContain('recursion is off');
    expect(off).not.toContain('child RLM');
  });

  it('has no tools section without tools', () => {
    expect(buildSystemPrompt(base)).not.toContain('Also available in the REPL');
  });

  it('lists tools with their descriptions, or a default line by kind', () => {
    const prompt = buildSystemPrompt({
      ...base,
      tools: [
        { name: 'fetch_doc', kind: 'function', description: 'fetch_doc(id) returns a document' },
        { name: 'helper', kind: 'function' },
        { name: 'limits', kind: 'data', typeName: 'dict' },
      ],
    });
    expect(prompt).toContain('Also available in the REPL');
    expect(prompt).toContain('- `fetch_doc`: fetch_doc(id) returns a document');
    expect(prompt).toContain('- `helper`: a function provided by the host page');
    expect(prompt).toContain('- `limits`: a dict value');
  });
});

describe('formatToolsSection', () => {
  it('is empty for no tools', () => {
    expect(formatToolsSection([])).toBe('');
  });

  it('has one line per tool in order', () => {
    const section = formatToolsSection([
      { name: 'a', kind: 'data', typeName: 'int' },
      { name: 'b', kind: 'data' },
    ]);
    const lines = section.split('\n').filter((l) => l.startsWith('- '));
    expect(lines).toEqual(['- `a`: a int value', '- `b`: a data value']);
  });
});

describe('buildMetadataMessage', () => {
  it('states the question, type and size, never the context text', () => {
    const secret = 'The magic number is 982451653.';
    const msg = buildMetadataMessage({ rootPrompt: 'What is the magic number?', contexts: [{ type: 'str', length: secret.length }], subcallChars: 400_000 });
    expect(msg).toContain('What is the magic number?');
    expect(msg).toContain('`str`');
    expect(msg).toContain(`${secret.length} characters`);
    expect(msg).not.toContain('982451653');
  });

  it('counts items for lists and dicts and formats big numbers', () => {
    expect(buildMetadataMessage({ contexts: [{ type: 'list', length: 1234567 }], subcallChars: 1000 })).toContain('`list` of 1,234,567 items');
    expect(buildMetadataMessage({ contexts: [{ type: 'dict', length: 3 }], subcallChars: 1000 })).toContain('`dict` of 3 items');
  });

  it('suggests splitting a string larger than one sub-call can read', () => {
    const big = buildMetadataMessage({ contexts: [{ type: 'str', length: 1_000_001 }], subcallChars: 400_000 });
    expect(big).toContain('about 3 times');
    const small = buildMetadataMessage({ contexts: [{ type: 'str', length: 400_000 }], subcallChars: 400_000 });
    expect(small).not.toContain('times what one sub-call can read');
  });

  it('omits the question when there is none', () => {
    const msg = buildMetadataMessage({ contexts: [{ type: 'str', length: 10 }], subcallChars: 100 });
    expect(msg).not.toContain('question');
    expect(msg).toContain('`context`');
  });
});

describe('buildTurnPrompt', () => {
  it('warns against answering on the first turn only', () => {
    const first = buildTurnPrompt({ iteration: 0, maxIterations: 30, contextCount: 1, historyCount: 0 });
    const later = buildTurnPrompt({ iteration: 1, maxIterations: 30, contextCount: 1, historyCount: 0 });
    expect(first).toContain('do not answer');
    expect(later).not.toContain('do not answer');
  });

  it('numbers the turn out of maxIterations (1-based)', () => {
    expect(buildTurnPrompt({ iteration: 0, maxIterations: 5, contextCount: 1, historyCount: 0 })).toContain('Turn 1 of 5');
    expect(buildTurnPrompt({ iteration: 4, maxIterations: 5, contextCount: 1, historyCount: 0 })).toContain('Turn 5 of 5');
  });

  it('mentions contexts only when there are several', () => {
    expect(buildTurnPrompt({ iteration: 1, maxIterations: 5, contextCount: 1, historyCount: 0 })).not.toContain('context_');
    const three = buildTurnPrompt({ iteration: 1, maxIterations: 5, contextCount: 3, historyCount: 0 });
    expect(three).toContain('3 contexts');
    expect(three).toContain('context_0 through context_2');
  });

  it('names `history` for one previous conversation and history_N for several', () => {
    expect(buildTurnPrompt({ iteration: 1, maxIterations: 5, contextCount: 1, historyCount: 0 })).not.toContain('history');
    const one = buildTurnPrompt({ iteration: 1, maxIterations: 5, contextCount: 2, historyCount: 1 });
    expect(one).toContain('`history`');
    expect(one).toContain('history_0');
    const two = buildTurnPrompt({ iteration: 1, maxIterations: 5, contextCount: 3, historyCount: 2 });
    expect(two).toContain('2 previous conversations');
    expect(two).toContain('history_0 through history_1');
  });
});

describe('fixed messages', () => {
  it('the no-code reminder names the repl fence', () => {
    expect(NO_CODE_REMINDER).toContain('```repl');
  });

  it('the final request asks for a plain-text answer without code', () => {
    expect(FINAL_REQUEST).toMatch(/final answer/i);
    expect(FINAL_REQUEST).toMatch(/not write code/i);
  });

  it('the compaction note points at `history` and counts compactions', () => {
    expect(buildCompactedNote(1)).toContain('`history`');
    expect(buildCompactedNote(1)).toContain('1 time)');
    expect(buildCompactedNote(3)).toContain('3 times)');
  });
});

describe('orchestrator guidance', () => {
  it('is appended after the prompt it extends, built-in or custom', () => {
    const builtIn = buildSystemPrompt(base);
    expect(withOrchestratorGuidance(builtIn)).toBe(`${builtIn}\n\n${ORCHESTRATOR_GUIDANCE}`);
    expect(withOrchestratorGuidance('MY PROMPT').startsWith('MY PROMPT\n\n')).toBe(true);
    expect(builtIn).not.toContain(ORCHESTRATOR_GUIDANCE);
  });

  it('covers planning, delegation, batch sizes, verification and running out of turns', () => {
    const g = ORCHESTRATOR_GUIDANCE;
    expect(g).toMatch(/orchestrator/);
    expect(g).toMatch(/plan/);
    expect(g).toContain('llm_query_batched');
    expect(g).toMatch(/no REPL/);
    expect(g).toMatch(/100K characters/);
    expect(g).toContain('answer["ready"] = True');
    expect(g).toMatch(/turns are running out/);
  });
});

describe('buildOpening', () => {
  it('is the metadata alone without a prologue', () => {
    expect(buildOpening('META', undefined)).toBe('META');
  });
  it('puts the prologue after the metadata', () => {
    expect(buildOpening('META', 'Tips: dates are ISO.')).toBe('META\n\nTips: dates are ISO.');
  });
});

describe('buildToolMarkupReminder', () => {
  it('names the markup, says nothing ran and asks for a repl block', () => {
    const text = buildToolMarkupReminder('<function_calls>');
    expect(text).toContain('<function_calls>');
    expect(text).toContain('nothing ran');
    expect(text).toContain('```repl');
    expect(text).not.toBe(NO_CODE_REMINDER);
  });
});

describe('the compaction line of the system prompt', () => {
  it('says `history` is a list of every turn from the start, summaries included', () => {
    const prompt = buildSystemPrompt({ ...base, compaction: true });
    expect(prompt).toMatch(/`history`: a list with the messages of every earlier turn/);
    expect(prompt).toMatch(/summaries are added/);
  });
});
