import { describe, expect, it } from 'vitest';
import {
  findCodeBlocks,
  segmentReply,
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

  it('truncates stdout and stderr separately, each with a cut note', () => {
    const out = formatCellResult({ stdout: 'x'.repeat(50), stderr: 'e'.repeat(40), locals: [] }, 10);
    expect(out).toContain('40 more characters cut');
    expect(out).toContain('30 more characters cut');
    expect(out).not.toContain('x'.repeat(11));
    expect(out).not.toContain('e'.repeat(11));
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
    '```python\nprint(2)\n```',
  ];
  it.each(tricky)('runs exactly the blocks findCodeBlocks finds: %j', (text) => {
    expect(cells(text)).toEqual(findCodeBlocks(text));
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
