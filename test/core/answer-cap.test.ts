/**
 * maxAnswerChars: however the answer arrives (a cell's answer["content"], FINAL_VAR, FINAL(...),
 * the out-of-turns reply, the plain call at the depth limit), the result, the trajectory, the
 * events and what the logger is given hold it cut, with a note; the whole never gets stored.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AnswerValidationError, ConfigurationError } from '../../src/core/errors';
import { DEFAULT_MAX_ANSWER_CHARS, resolveOptions } from '../../src/core/options';
import { capAnswer } from '../../src/core/parsing';
import type { CompletionResult, RLMEvent } from '../../src/core/types';
import { FakeClient, makeRLM, RecordingSink, rejection, repl, scripted } from './fakes/fakes';

const CONTEXT = 'Some report text. '.repeat(10);
const CAP = 1000;
/** ≈3.5 MB of answer, as a cell could build it; each line is different, so a piece past the cut is found only in a whole copy. */
const HUGE = Array.from({ length: 300_000 }, (_, i) => `line ${i}\n`).join('');
const PAST_THE_CUT = 'line 250000\n';

function expectCut(text: string | null | undefined, whole = HUGE): void {
  expect(text).toBeTypeOf('string');
  expect(text!.startsWith(whole.slice(0, CAP))).toBe(true);
  expect(text!.length).toBeLessThan(CAP + 300);
  expect(text).toContain(`the last ${whole.length - CAP} were dropped (maxAnswerChars is ${CAP})`);
}

/** Whether any string anywhere in what was recorded or emitted holds `piece` (a part of the answer past the cut). */
function holds(value: unknown, piece: string): boolean {
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string' && v.includes(piece)) return true;
    if (typeof v === 'object' && v !== null) stack.push(...Object.values(v));
  }
  return false;
}

describe('capAnswer', () => {
  it('keeps an answer within the limit as it is', () => {
    expect(capAnswer('short', 5)).toBe('short');
  });

  it('keeps the start of a longer one and says how much was dropped and what to do', () => {
    const out = capAnswer('abcdefghij', 4);
    expect(out.startsWith('abcd\n\n[rlm-web: the answer was 10 characters long; the last 6 were dropped (maxAnswerChars is 4).')).toBe(true);
    expect(out).toContain('Raise maxAnswerChars');
  });

  it('never ends on half of a surrogate pair', () => {
    const out = capAnswer('ab😀cd', 3);
    expect(out.startsWith('ab\n\n')).toBe(true);
    expect(out).toContain('the last 4 were dropped');
  });
});

describe('maxAnswerChars in the loop', () => {
  it('defaults to 1 000 000 and must be a whole number ≥ 1', () => {
    const root = new FakeClient('root', scripted());
    expect(resolveOptions({ backend: root }).maxAnswerChars).toBe(DEFAULT_MAX_ANSWER_CHARS);
    expect(DEFAULT_MAX_ANSWER_CHARS).toBe(1_000_000);
    expect(() => resolveOptions({ backend: root, maxAnswerChars: 0 })).toThrow(ConfigurationError);
    expect(() => resolveOptions({ backend: root, maxAnswerChars: 1.5 })).toThrow(/maxAnswerChars must be a whole number/);
  });

  it('a cell\'s answer["content"]: cut in the result, the iteration, the cell record, the events and the logger', async () => {
    const root = new FakeClient('root', scripted(repl('answer_it')));
    const logger = new RecordingSink();
    const { rlm, events } = makeRLM({ root, cells: { answer_it: { finalAnswer: HUGE } }, rlm: { maxAnswerChars: CAP, logger } });
    const result = await rlm.completion(CONTEXT);
    expectCut(result.response as string);
    expectCut(result.trajectory.response);
    expectCut(result.trajectory.iterations[0]!.finalAnswer);
    expectCut(result.trajectory.iterations[0]!.codeBlocks[0]!.finalAnswer);
    expectCut((events.find((e) => e.type === 'code_end') as Extract<RLMEvent, { type: 'code_end' }>).record.finalAnswer);
    expect(logger.ended?.response).toBe(result.response);
    expect(holds(logger.iterations, PAST_THE_CUT)).toBe(false);
    expect(holds(logger.ended, PAST_THE_CUT)).toBe(false);
    expect(holds(events, PAST_THE_CUT)).toBe(false);
  });

  it('FINAL_VAR of a variable the REPL holds', async () => {
    const root = new FakeClient('root', scripted(repl('build'), 'FINAL_VAR(big)'));
    const { rlm } = makeRLM({ root, cells: { build: (ctx) => (ctx.repl.vars.set('big', HUGE), {}) }, rlm: { maxAnswerChars: CAP } });
    const result = await rlm.completion(CONTEXT);
    expectCut(result.response as string);
    expectCut(result.trajectory.iterations[1]!.finalAnswer);
  });

  it('FINAL(...) in the reply text, and the out-of-turns reply', async () => {
    const text = 'x'.repeat(5000);
    const root = new FakeClient('root', scripted(`FINAL(${text})`));
    const { rlm } = makeRLM({ root, rlm: { maxAnswerChars: CAP } });
    expectCut((await rlm.completion(CONTEXT)).response as string, text);

    const late = new FakeClient('root', scripted(repl('print(1)'), text));
    const { rlm: outOfTurns } = makeRLM({ root: late, cells: { 'print(1)': { stdout: '1' } }, rlm: { maxAnswerChars: CAP, maxIterations: 1 } });
    const result = await outOfTurns.completion(CONTEXT);
    expect(result.trajectory.endReason).toBe('max_iterations');
    expectCut(result.response as string, text);
    expectCut(result.trajectory.iterations[1]!.finalAnswer, text);
  });

  it('the plain call at the depth limit (maxDepth: 0)', async () => {
    const text = 'y'.repeat(5000);
    const root = new FakeClient('root', scripted(text));
    const { rlm } = makeRLM({ root, rlm: { maxAnswerChars: CAP, maxDepth: 0 } });
    const result = await rlm.completion(CONTEXT);
    expectCut(result.response as string, text);
    expectCut(result.trajectory.iterations[0]!.finalAnswer, text);
  });

  it('an answer at the cap is kept whole, without a note', async () => {
    const exact = 'z'.repeat(CAP);
    const root = new FakeClient('root', scripted(repl('answer_it')));
    const { rlm } = makeRLM({ root, cells: { answer_it: { finalAnswer: exact } }, rlm: { maxAnswerChars: CAP } });
    expect((await rlm.completion(CONTEXT)).response).toBe(exact);
  });
});

describe('maxAnswerChars with a schema: an over-long answer is a validation failure, never cut JSON', () => {
  const Items = z.object({ items: z.array(z.string()) });
  const huge = JSON.stringify({ items: Array.from({ length: 50_000 }, (_, i) => `item ${i}`) });
  const small = JSON.stringify({ items: ['a', 'b'] });

  it('the model is told the answer is too long and how to fix it; its shorter answer is the result', async () => {
    const root = new FakeClient('root', scripted(repl('big'), repl('small')));
    const logger = new RecordingSink();
    const { rlm } = makeRLM({ root, cells: { big: { finalAnswer: huge }, small: { finalAnswer: small } }, rlm: { maxAnswerChars: CAP, logger } });
    const result = (await rlm.completion(CONTEXT, { schema: Items })) as CompletionResult<{ items: string[] }>;
    expect(result.response).toEqual({ items: ['a', 'b'] });
    const feedback = root.lastMessage(1);
    expect(feedback).toContain(`the answer is ${huge.length} characters of JSON, over the limit of ${CAP} (maxAnswerChars); give a shorter answer`);
    const first = result.trajectory.iterations[0]!;
    expect(first.finalAnswer).toBeNull();
    expect(first.validation).toMatchObject({ attempt: 1, valid: false, issues: [{ path: [] }] });
    expectCut(first.validation!.answer, huge);
    expectCut(first.codeBlocks[0]!.finalAnswer, huge);
    expect(holds(logger.iterations, '"item 40000"')).toBe(false);
    expect(holds(logger.ended, '"item 40000"')).toBe(false);
  });

  it('out of attempts: AnswerValidationError with the cut text as its partial answer', async () => {
    const root = new FakeClient('root', scripted(repl('big')));
    const { rlm } = makeRLM({ root, cells: { big: { finalAnswer: huge } }, rlm: { maxAnswerChars: CAP } });
    const error = (await rejection(rlm.completion(CONTEXT, { schema: Items, maxAnswerAttempts: 1 }))) as AnswerValidationError;
    expect(error).toBeInstanceOf(AnswerValidationError);
    expect(error.message).toContain('maxAnswerChars');
    expectCut(error.answer as string, huge);
    expectCut(error.partialAnswer, huge);
    expect(holds(error.trajectory, '"item 40000"')).toBe(false);
  });

  it('the plain call at the depth limit fails the same way', async () => {
    const root = new FakeClient('root', scripted(huge));
    const { rlm } = makeRLM({ root, rlm: { maxAnswerChars: CAP, maxDepth: 0 } });
    const error = (await rejection(rlm.completion(CONTEXT, { schema: Items }))) as AnswerValidationError;
    expect(error).toBeInstanceOf(AnswerValidationError);
    expect(error.issues[0]!.message).toContain('over the limit');
  });
});
