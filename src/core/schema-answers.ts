/**
 * The root answer of a run with a schema: each marked answer is checked; a failure is
 * fed back to the model with its issues, until `maxAnswerAttempts` answers have failed.
 */
import { AnswerValidationError, ConfigurationError } from './errors';
import { capAnswer } from './parsing';
import { buildAnswerFeedback } from './prompts';
import { compileSchema, formatIssues, parseJSON, validateAnswerText, type CompiledSchema } from './schema';
import type { AnswerValidationRecord, SchemaIssue } from './types';

/** Where issues point in the feedback: the value the model sets. */
const ANSWER_ROOT = 'answer["content"]';

/** A checked answer: its value, or the feedback for the model (and, when out of attempts, the error). */
export type AnswerCheck =
  | { ok: true; value: unknown; record: AnswerValidationRecord }
  | { ok: false; feedback: string; record: AnswerValidationRecord; error: AnswerValidationError | undefined };

export class AnswerChecker {
  private attempts = 0;

  private constructor(
    readonly schema: CompiledSchema,
    private readonly maxAttempts: number,
    private readonly maxChars: number,
  ) {}

  /**
   * Rejects with ConfigurationError when `schema` is not usable or `maxAttempts` is not a
   * whole number ≥ 1. `maxChars`: the run's `maxAnswerChars`.
   */
  static async create(schema: unknown, maxAttempts: number, maxChars: number): Promise<AnswerChecker> {
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new ConfigurationError(`maxAnswerAttempts must be a whole number of at least 1 (got ${maxAttempts}).`);
    }
    return new AnswerChecker(await compileSchema(schema, 'app'), maxAttempts, maxChars);
  }

  /**
   * Checks the answer text the REPL (or a FINAL(...) line) gave; `last` ends the attempts now.
   * An answer over `maxAnswerChars` fails without being parsed: cut, it would not be JSON;
   * whole, it must not be kept. The record and the error hold it cut.
   */
  async check(whole: string, last = false): Promise<AnswerCheck> {
    const attempt = ++this.attempts;
    const text = capAnswer(whole, this.maxChars);
    const outcome = text === whole ? await validateAnswerText(this.schema, text) : { ok: false as const, issues: [tooLong(whole.length, this.maxChars)] };
    if (outcome.ok) return { ok: true, value: outcome.value, record: { attempt, valid: true, issues: [], answer: text } };
    const record: AnswerValidationRecord = { attempt, valid: false, issues: outcome.issues, answer: text };
    const left = last ? 0 : this.maxAttempts - attempt;
    const error = left <= 0 ? new AnswerValidationError((text === whole ? parseJSON(text)?.value : undefined) ?? text, outcome.issues, attempt, text) : undefined;
    return { ok: false, record, error, feedback: buildAnswerFeedback(formatIssues(outcome.issues, ANSWER_ROOT), left) };
  }
}

function tooLong(length: number, limit: number): SchemaIssue {
  return { path: [], message: `the answer is ${length} characters of JSON, over the limit of ${limit} (maxAnswerChars); give a shorter answer: fewer or shorter items, or a summary in place of long text` };
}
