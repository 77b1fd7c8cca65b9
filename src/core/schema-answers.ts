/**
 * The root answer of a run with a schema: each marked answer is checked; a failure is
 * fed back to the model with its issues, until `maxAnswerAttempts` answers have failed.
 */
import { AnswerValidationError, ConfigurationError } from './errors';
import { buildAnswerFeedback } from './prompts';
import { compileSchema, formatIssues, parseJSON, validateAnswerText, type CompiledSchema } from './schema';
import type { AnswerValidationRecord } from './types';

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
  ) {}

  /** Rejects with ConfigurationError when `schema` is not usable or `maxAttempts` is not a whole number ≥ 1. */
  static async create(schema: unknown, maxAttempts: number): Promise<AnswerChecker> {
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new ConfigurationError(`maxAnswerAttempts must be a whole number of at least 1 (got ${maxAttempts}).`);
    }
    return new AnswerChecker(await compileSchema(schema, 'app'), maxAttempts);
  }

  /** Checks the answer text the REPL (or a FINAL(...) line) gave; `last` ends the attempts now. */
  async check(text: string, last = false): Promise<AnswerCheck> {
    const attempt = ++this.attempts;
    const outcome = await validateAnswerText(this.schema, text);
    if (outcome.ok) return { ok: true, value: outcome.value, record: { attempt, valid: true, issues: [], answer: text } };
    const record: AnswerValidationRecord = { attempt, valid: false, issues: outcome.issues, answer: text };
    const left = last ? 0 : this.maxAttempts - attempt;
    const error = left <= 0 ? new AnswerValidationError(parseJSON(text)?.value ?? text, outcome.issues, attempt, text) : undefined;
    return { ok: false, record, error, feedback: buildAnswerFeedback(formatIssues(outcome.issues, ANSWER_ROOT), left) };
  }
}
