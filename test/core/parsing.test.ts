import { describe, expect, it } from 'vitest';
import {
  findCodeBlocks,
  findToolMarkup,
  segmentReply,
  shareOutputLimit,
  findTextAnswer,
  formatCellResult,
  formatFeedback,
  hasOnlyForeignFences,
  truncate,
} from '../../src/core/parsing';

describe('findCodeBlocks', () => {
  it('returns the body of a ```repl block, trimmed', () => {
    const text = 'Let me look.\n```repl\n  print(len(context))\n```\nDone.';
    expect(findCodeBlocks(text)).toEqual(['print(len(context))']);
  });

  it('returns several blocks in the order they appear', () => {
    const text = ['first', '```repl', 'a = 1', '```', 'then', '```repl', 'b = a + 1', 'print(b)', '```'].join('\n');
    expect(findCodeBlocks(text)).toEqual(['a = 1', 'b = a + 1\nprint(b)']);
  });

  it('keeps indentation inside a block', () => {
    const text = '```repl\nfor i in range(3):\n    print(i)\n```';
    expect(findCodeBlocks(text)).toEqual(['for i in range(3):\n    print(i)']);
  });

  it('reads CRLF and lone-CR line endings', () => {
    expect(findCodeBlocks('intro\r\n```repl\r\nx = 1\r\nprint(x)\r\n```\r\n')).toEqual(['x = 1\nprint(x)']);
    expect(findCodeBlocks('```repl\rx = 2\r```')).toEqual(['x = 2']);
  });

  it('still runs a trailing block the reply was cut off in', () => {
    expect(findCodeBlocks('```repl\na = 1\n```\n```repl\nprint(a)\nb = ')).toEqual(['a = 1', 'print(a)\nb =']);
  });

  it('ignores an unclosed trailing block that is empty', () => {
    expect(findCodeBlocks('text\n```repl\n')).toEqual([]);
    expect(findCodeBlocks('text\n```repl\n   \n```')).toEqual([]);
  });

  it('ignores fences in other languages and untagged fences', () => {
    const text = ['```python', 'print("not run")', '```', '```', 'plain', '```', '```repl', 'print("run")', '```', '```js', 'x()', '```'].join('\n');
    expect(findCodeBlocks(text)).toEqual(['print("run")']);
  });

  it('does not take ```repl inside another fence as a block start', () => {
    const text = ['```markdown', 'Example:', '```repl', 'print(1)', '```'].join('\n');
    // The markdown fence closes at the first bare ```; "```repl" sat inside it.
    expect(findCodeBlocks(text)).toEqual([]);
  });

  it('does not treat ```replay or an inline mention as a repl block', () => {
    expect(findCodeBlocks('```replay\nx = 1\n```')).toEqual([]);
    expect(findCodeBlocks('Use a ```repl block, e.g. ```repl print(1)```')).toEqual([]);
  });

  it('runs a repl opener that follows prose on the same line', () => {
    expect(findCodeBlocks('Run: ```repl\nprint(len(context))\n```')).toEqual(['print(len(context))']);
    expect(findCodeBlocks('First I look at the size.   ```repl  \nx = 1\n```\nThen: ```repl\ny = 2\n```')).toEqual(['x = 1', 'y = 2']);
  });

  it('does not take a four-backtick fence or prose that goes on after ```repl as an opener', () => {
    expect(findCodeBlocks('````repl\nx = 1\n````')).toEqual([]);
    expect(findCodeBlocks('Write code in ```repl blocks.\nx = 1\n```')).toEqual([]);
  });

  it('returns nothing for plain text', () => {
    expect(findCodeBlocks('I think the answer is 42.')).toEqual([]);
    expect(findCodeBlocks('')).toEqual([]);
  });
});

describe('hasOnlyForeignFences', () => {
  it('is true for a ```python block with no ```repl block', () => {
    expect(hasOnlyForeignFences('```python\nprint(1)\n```')).toBe(true);
  });

  it('is false when a ```repl block is present too', () => {
    expect(hasOnlyForeignFences('```python\nprint(1)\n```\n```repl\nprint(2)\n```')).toBe(false);
  });

  it('is false for plain text', () => {
    expect(hasOnlyForeignFences('no code here')).toBe(false);
  });
});

describe('findTextAnswer', () => {
  it('reads FINAL(...) at the start of a line', () => {
    expect(findTextAnswer('I checked everything.\nFINAL(42)')).toEqual({ kind: 'final', value: '42' });
  });

  it('accepts leading whitespace and trims the answer', () => {
    expect(findTextAnswer('   FINAL(  Paris  )  ')).toEqual({ kind: 'final', value: 'Paris' });
  });

  it('ignores FINAL(...) that is not at the start of a line', () => {
    expect(findTextAnswer('When done I will write FINAL(answer) on its own line.')).toBeNull();
    expect(findTextAnswer('The answer is FINAL_VAR(x)')).toBeNull();
  });

  it('reads a FINAL(...) that spans several lines', () => {
    const text = 'Summary below.\nFINAL(first line\nsecond line\nthird line)\nThanks.';
    expect(findTextAnswer(text)).toEqual({ kind: 'final', value: 'first line\nsecond line\nthird line' });
  });

  it('keeps nested parentheses in the answer', () => {
    expect(findTextAnswer('FINAL(f(x) = (x + 1) * 2)')).toEqual({ kind: 'final', value: 'f(x) = (x + 1) * 2' });
  });

  it('stops at the parenthesis that closes FINAL( when prose with parentheses follows', () => {
    expect(findTextAnswer('FINAL(42)\nHope this helps (really).')).toEqual({ kind: 'final', value: '42' });
  });

  it('ignores FINAL(...) inside a code fence', () => {
    expect(findTextAnswer('```repl\nFINAL(nope)\n```')).toBeNull();
    expect(findTextAnswer('```python\nFINAL_VAR(x)\n```')).toBeNull();
  });

  it('finds FINAL(...) outside a fence when one is also inside', () => {
    const text = '```repl\nFINAL(inside)\n```\nFINAL(outside)';
    expect(findTextAnswer(text)).toEqual({ kind: 'final', value: 'outside' });
  });

  it('reads FINAL_VAR(name) with or without quotes', () => {
    expect(findTextAnswer('FINAL_VAR(result)')).toEqual({ kind: 'final_var', name: 'result' });
    expect(findTextAnswer('FINAL_VAR("result")')).toEqual({ kind: 'final_var', name: 'result' });
    expect(findTextAnswer("FINAL_VAR( 'my_var' )")).toEqual({ kind: 'final_var', name: 'my_var' });
  });

  it('prefers FINAL_VAR over FINAL when both appear', () => {
    expect(findTextAnswer('FINAL(text answer)\nFINAL_VAR(answer_var)')).toEqual({ kind: 'final_var', name: 'answer_var' });
  });

  it('reads CRLF replies', () => {
    expect(findTextAnswer('done\r\nFINAL(yes)\r\n')).toEqual({ kind: 'final', value: 'yes' });
  });

  it('returns null when there is no answer', () => {
    expect(findTextAnswer('Still working on it.')).toBeNull();
    expect(findTextAnswer('')).toBeNull();
  });
});

describe('truncate', () => {
  it('leaves text within the limit unchanged', () => {
    expect(truncate('hello', 5)).toBe('hello');
    expect(truncate('', 0)).toBe('');
  });

  it('keeps the first `limit` characters and says how many were cut', () => {
    const out = truncate('a'.repeat(30), 10);
    expect(out.startsWith(`${'a'.repeat(10)}\n`)).toBe(true);
    expect(out).not.toContain('a'.repeat(11));
    expect(out).toContain('20 more characters cut');
  });
});

describe('formatCellResult', () => {
  it('joins stdout, stderr and the variable names', () => {
    const out = formatCellResult({ stdout: 'hello\n', stderr: 'ValueError: bad\n', locals: ['a', 'chunks'] }, 1000);
    expect(out).toBe('hello\n\nValueError: bad\n\nREPL variables: [a, chunks]');
  });

  it('says "No output" when there is nothing to show', () => {
    expect(formatCellResult({ stdout: '', stderr: '', locals: [] }, 1000)).toBe('No output');
  });

  it('caps stdout and stderr together at the limit, each cut noted', () => {
    const out = formatCellResult({ stdout: 'X'.repeat(30_000), stderr: '#'.repeat(30_000), locals: [] }, 20_000);
    const shown = (out.match(/[X#]/g) ?? []).length;
    expect(shown).toBe(20_000);
    expect(out).toContain('X'.repeat(10_000));
    expect(out).not.toContain('X'.repeat(10_001));
    expect(out).toContain('20000 more characters cut');
    expect(out).toContain('[20000 earlier characters cut]');
  });

  it('gives a short stream all it needs and the other the rest', () => {
    const out = formatCellResult({ stdout: 'x'.repeat(100), stderr: 'ValueError: bad', locals: [] }, 50);
    expect(out).toContain('ValueError: bad');
    expect(out).toContain(`${'x'.repeat(35)}\n... [65 more characters cut`);
  });

  it('keeps the end of a long stderr, where the exception stands', () => {
    const out = formatCellResult({ stdout: '', stderr: `${'warning\n'.repeat(1000)}Traceback ...\nKeyError: 'k'`, locals: [] }, 100);
    expect(out).toMatch(/^\[\d+ earlier characters cut\] \.\.\.\n/);
    expect(out.endsWith("KeyError: 'k'")).toBe(true);
  });

  it('lists at most 100 variables, saying how many more there are', () => {
    const names = Array.from({ length: 500 }, (_, i) => `v${i}`);
    const out = formatCellResult({ stdout: '', stderr: '', locals: names }, 1000);
    expect(out).toContain('v99]');
    expect(out).not.toContain('v100');
    expect(out).toContain('(and 400 more; SHOW_VARS() lists them all)');
  });

  it('bounds the variables line even for absurdly long names', () => {
    const out = formatCellResult({ stdout: '', stderr: '', locals: ['a', 'n'.repeat(1_000_000), 'b'] }, 1000);
    expect(out.length).toBeLessThan(200);
    expect(out).toBe('REPL variables: [a] (and 2 more; SHOW_VARS() lists them all)');
  });

  it('shows variables even without output', () => {
    expect(formatCellResult({ stdout: '', stderr: '', locals: ['x'] }, 100)).toBe('REPL variables: [x]');
  });
});

describe('formatFeedback', () => {
  const empty = { stdout: '', stderr: '', locals: [] as string[] };

  it('labels a single block "REPL output:"', () => {
    expect(formatFeedback([{ code: 'print(1)', result: { ...empty, stdout: '1\n' } }], 100)).toBe('REPL output:\n1');
  });

  it('numbers several blocks in order', () => {
    const out = formatFeedback(
      [
        { code: 'a', result: { ...empty, stdout: 'one' } },
        { code: 'b', result: empty },
      ],
      100,
    );
    expect(out).toBe('REPL output (block 1):\none\n\nREPL output (block 2):\nNo output');
  });

  it('carries the cut note of a long output', () => {
    const out = formatFeedback([{ code: 'print(s)', result: { ...empty, stdout: 'y'.repeat(120) } }], 100);
    expect(out).toContain('20 more characters cut');
  });
});

describe('segmentReply: the reply as the loop reads it', () => {
  const cells = (text: string) => segmentReply(text).flatMap((s) => (s.kind === 'code' && s.runs ? [s.code] : []));
  const tricky = [
    'Look:\n```repl\n\n```\nthen\n```repl\nprint(1)\n```',
    'start\n```repl\nx = 1\n```\n```python\nnot run\n```\n```repl\nprint(x)',
    '```repl\r\nprint("crlf")\r\n```\r\nFINAL(done)',
    'no code at all',
    'Run: ```repl\nprint(3)\n```\nFINAL(3)',
    '```python\nprint(2)\n```',
  ];
  it.each(tricky)('runs exactly the blocks findCodeBlocks finds: %j', (text) => {
    expect(cells(text)).toEqual(findCodeBlocks(text));
  });

  it('splits prose from a repl opener on the same line', () => {
    expect(segmentReply('Let me count. Run: ```repl\nprint(1)\n```\nok')).toEqual([
      { kind: 'text', text: 'Let me count. Run:' },
      { kind: 'code', code: 'print(1)', language: 'repl', runs: true },
      { kind: 'text', text: 'ok' },
    ]);
  });

  it('reads FINAL(...) in the prose before an inline opener', () => {
    expect(findTextAnswer('FINAL(7) ```repl\nprint(1)\n```')).toEqual({ kind: 'final', value: '7' });
  });

  it('keeps prose, foreign fences and empty repl blocks in order', () => {
    const parts = segmentReply('Plan.\n```repl\n```\n```python\nx\n```\nNow:\n```repl\nprint(1)\n```\nDone.');
    expect(parts).toEqual([
      { kind: 'text', text: 'Plan.' },
      { kind: 'code', code: '', language: 'repl', runs: false },
      { kind: 'text', text: '```python\nx\n```\nNow:' },
      { kind: 'code', code: 'print(1)', language: 'repl', runs: true },
      { kind: 'text', text: 'Done.' },
    ]);
  });
});

describe('shareOutputLimit', () => {
  it('gives both streams all they need when they fit', () => {
    expect(shareOutputLimit(10, 20, 30)).toEqual([10, 20]);
  });
  it('splits the limit in half when both are long', () => {
    expect(shareOutputLimit(100, 100, 51)).toEqual([25, 26]);
  });
  it('lets a long stream take what a short one leaves', () => {
    expect(shareOutputLimit(100, 5, 50)).toEqual([45, 5]);
    expect(shareOutputLimit(5, 100, 50)).toEqual([5, 45]);
  });
});

describe('findToolMarkup: replies written for another tool syntax', () => {
  it('recognizes XML function-call markup', () => {
    const reply = 'I will search.\n<function_calls>\n<invoke name="python">\n<parameter name="code">print(1)</parameter>\n</invoke>\n</function_calls>\n<function_results>1</function_results>';
    expect(findToolMarkup(reply)).toBe('<function_calls>');
    expect(findToolMarkup('<ns:invoke name="run">x</ns:invoke>')).toBe('<invoke>');
  });

  it('recognizes Hermes/Qwen and Llama tool calls', () => {
    expect(findToolMarkup('<tool_call>\n{"name": "python", "arguments": {"code": "1"}}\n</tool_call>')).toBe('<tool_call>');
    expect(findToolMarkup('<function=python>{"code": "print(1)"}</function>')).toBe('<function=...>');
    expect(findToolMarkup('<|python_tag|>print(1)')).toBe('<|python_tag|>');
  });

  it('ignores markup inside a repl block and ordinary angle brackets', () => {
    expect(findToolMarkup('```repl\nprint("<tool_call>")\n```')).toBeNull();
    expect(findToolMarkup('If a < b and c > d, use <b>bold</b>.')).toBeNull();
    expect(findToolMarkup('no markup')).toBeNull();
  });

  it('names the markup briefly, whatever the attributes say', () => {
    expect(findToolMarkup(`<invoke name="${'x'.repeat(5000)}">`)).toBe('<invoke>');
    expect(findToolMarkup('<invoke_tool>, <tool_calls_list>')).toBeNull();
  });
});

describe('FINAL(...) over several lines', () => {
  it('does not stop at a nested ")" that happens to end a line', () => {
    expect(findTextAnswer('FINAL(The options are (a)\nand (b), in that order)')).toEqual({
      kind: 'final',
      value: 'The options are (a)\nand (b), in that order',
    });
    expect(findTextAnswer('FINAL(Steps:\n1. parse (fast)\n2. count)')).toEqual({ kind: 'final', value: 'Steps:\n1. parse (fast)\n2. count' });
  });
});
