/**
 * rlm-web's errors: one root class, one subclass per domain, `name` pinned on each so that
 * it survives minification and structured cloning. Messages say what to do.
 */
import { redactURLs } from './redact';
import type { SchemaIssue, Trajectory, UsageSummary } from './types';

/** The root of every error rlm-web throws: `instanceof RLMError` catches them all. */
export class RLMError extends Error {
  override name = 'RLMError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Options that cannot work: unknown backend, reserved tool name, unsupported context. */
export class ConfigurationError extends RLMError {
  override name = 'ConfigurationError';
}

/** Why a context was refused: one Python object's limit, or the worker's whole memory. */
export type ContextCeiling = 'python_object' | 'memory';

/**
 * A context the environment cannot hold, refused before any of its bytes move: in Pyodide
 * (32-bit WebAssembly) one Python object holds under 2 GiB, and the worker's memory is 4 GiB
 * for everything. The message names the way around it (the remote environment, smaller parts).
 */
export class ContextTooLargeError extends ConfigurationError {
  override name = 'ContextTooLargeError';
  constructor(
    message: string,
    /** Which ceiling: 'python_object' (one str) or 'memory' (the worker's 4 GiB with the contexts it holds). */
    readonly ceiling: ContextCeiling,
    /** The context's size in bytes (a lower bound for a string: its length). */
    readonly bytes: number,
    /** The most this context could have been, in bytes, given what the worker already holds. */
    readonly maxBytes: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The browser could not read a Blob or File context (a DOMException `NotReadableError` or
 * `NotFoundError`): the file changed, moved or was deleted after it was picked, or a Blob built
 * in memory was more than the browser keeps. The cause is the browser's error.
 */
export class ContextReadError extends RLMError {
  override name = 'ContextReadError';
  constructor(
    message: string,
    /** The File's name; undefined for a Blob. */
    readonly fileName: string | undefined,
    /** The Blob's size in bytes. */
    readonly bytes: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ------------------------------------------------------------------ LM calls

/** An LM call failed; `provider`, `model` and the HTTP `status` (when there was one) say which and how. */
export class LMError extends RLMError {
  override name = 'LMError';
  constructor(
    message: string,
    readonly provider: string,
    readonly model: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 401/403: the API key is missing, wrong, or lacks access to the model. */
export class LMAuthenticationError extends LMError {
  override name = 'LMAuthenticationError';
}

/** 429: too many requests or no credit left. */
export class LMRateLimitError extends LMError {
  override name = 'LMRateLimitError';
}

/** The endpoint could not be reached (wrong baseURL, server down, CORS refused, offline). */
export class LMConnectionError extends LMError {
  override name = 'LMConnectionError';
}

/** The call took longer than its timeout. */
export class LMTimeoutError extends LMError {
  override name = 'LMTimeoutError';
}

/** The endpoint answered, but not with something we can use. */
export class LMResponseError extends LMError {
  override name = 'LMResponseError';
}

/**
 * A request the client refused to send because its URL is not on the client's origin (its
 * `baseURL`'s, or the provider's default): the SDK was steered elsewhere, for example by
 * something on the page that polluted `Object.prototype`. Nothing was sent, API key included.
 * The message names both origins; if the page runs untrusted scripts, reload it.
 */
export class LMOriginError extends LMError {
  override name = 'LMOriginError';
  constructor(
    message: string,
    provider: string,
    model: string,
    /** The origin the request was meant for (only the origin, never the path or query). */
    readonly refusedOrigin: string,
    /** The one origin this client sends to. */
    readonly allowedOrigin: string,
  ) {
    super(message, provider, model);
  }
}

/**
 * A prompt that is neither a string nor a list of `{ role, content }` messages with string
 * content and a known role, refused before any LM call (a model or REPL code gave something
 * else, such as a list of content parts).
 */
export class InvalidPromptError extends RLMError {
  override name = 'InvalidPromptError';
}

// ------------------------------------------------------------------ REPL

/** The Python REPL could not start or run. */
export class ReplError extends RLMError {
  override name = 'ReplError';
}

/** Neither JSPI nor cross-origin isolation: Python cannot block on the page. */
export class BridgeUnavailableError extends ReplError {
  override name = 'BridgeUnavailableError';
}

/** The worker failed to boot or died (out of memory, files not found). */
export class ReplCrashedError extends ReplError {
  override name = 'ReplCrashedError';
}

// ------------------------------------------------------------------ run endings

/** Base of every error that ends a run early; carries what the run had. */
export class RunEndedError extends RLMError {
  override name = 'RunEndedError';
  /** The latest non-empty model response, the best answer we have. */
  partialAnswer: string | undefined;
  usage: UsageSummary | undefined;
  trajectory: Trajectory | undefined;
  constructor(message: string, options?: { cause?: unknown; partialAnswer?: string | undefined }) {
    super(message, options);
    this.partialAnswer = options?.partialAnswer;
    this.usage = undefined;
    this.trajectory = undefined;
  }
}

/** A limit (budget, time, tokens, errors) was reached. */
export class LimitExceededError extends RunEndedError {
  override name = 'LimitExceededError';
  constructor(
    message: string,
    readonly limit: 'max_budget' | 'max_time' | 'max_tokens' | 'max_errors',
    readonly used: number,
    readonly allowed: number,
    partialAnswer: string | undefined,
  ) {
    super(message, { partialAnswer });
  }
}

/** The run (children included) spent more than `maxBudget` USD. */
export class BudgetExceededError extends LimitExceededError {
  override name = 'BudgetExceededError';
  constructor(spent: number, budget: number, partialAnswer: string | undefined) {
    super(
      `The run spent $${spent.toFixed(4)}, over its maxBudget of $${budget}. Raise maxBudget or use a cheaper model.`,
      'max_budget',
      spent,
      budget,
      partialAnswer,
    );
  }
}

/** The run took longer than `maxTimeMs`. */
export class TimeoutExceededError extends LimitExceededError {
  override name = 'TimeoutExceededError';
  constructor(elapsedMs: number, timeoutMs: number, partialAnswer: string | undefined) {
    super(
      `The run took ${Math.round(elapsedMs)} ms, over its maxTimeMs of ${timeoutMs} ms. Raise maxTimeMs or ask a narrower question.`,
      'max_time',
      elapsedMs,
      timeoutMs,
      partialAnswer,
    );
  }
}

/** The run (children included) used more than `maxTokens` input + output tokens. */
export class TokenLimitExceededError extends LimitExceededError {
  override name = 'TokenLimitExceededError';
  constructor(used: number, limit: number, partialAnswer: string | undefined) {
    super(
      `The run used ${used} tokens, over its maxTokens of ${limit}. Raise maxTokens or lower maxIterations.`,
      'max_tokens',
      used,
      limit,
      partialAnswer,
    );
  }
}

/** `maxErrors` consecutive iterations had a cell that raised; `lastError` is the latest stderr. */
export class ErrorThresholdExceededError extends LimitExceededError {
  override name = 'ErrorThresholdExceededError';
  constructor(
    count: number,
    threshold: number,
    readonly lastError: string,
    partialAnswer: string | undefined,
  ) {
    super(
      `${count} iterations in a row raised errors (maxErrors is ${threshold}); the last was: ${lastError.slice(0, 300)}`,
      'max_errors',
      count,
      threshold,
      partialAnswer,
    );
  }
}

/** The caller's AbortSignal fired. */
export class CancellationError extends RunEndedError {
  override name = 'CancellationError';
}

/**
 * The answer still did not match the completion's `schema` after `maxAnswerAttempts`
 * answers (each failure was fed back to the model). Carries the last answer and its issues.
 */
export class AnswerValidationError extends RunEndedError {
  override name = 'AnswerValidationError';
  constructor(
    /** The last answer: its JSON value, or its text when it was not JSON. */
    readonly answer: unknown,
    /** Why it does not match: paths into the answer and messages. */
    readonly issues: SchemaIssue[],
    /** Answers checked in the run. */
    readonly attempts: number,
    answerText: string,
  ) {
    const first = issues[0];
    const where = first ? `${first.path.length > 0 ? first.path.join('.') : '(root)'}: ${first.message}` : 'no issues reported';
    super(
      `The answer did not match the schema after ${attempts} attempt${attempts === 1 ? '' : 's'} (${issues.length} issue${issues.length === 1 ? '' : 's'}; first ${where}). Raise maxAnswerAttempts, loosen the schema, or describe the format in rootPrompt.`,
      { partialAnswer: answerText },
    );
  }
}

// ------------------------------------------------------------------ storage

/** IndexedDB refused a write or an upgrade. The run itself is not affected. */
export class StorageError extends RLMError {
  override name = 'StorageError';
  constructor(
    message: string,
    readonly reason: 'quota' | 'blocked' | 'unavailable' | 'malformed' | 'other',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ------------------------------------------------------------------ resume

/** Why `resume()` could not continue a stored run. */
export type ResumeFailure = 'no_store' | 'not_found' | 'not_resumable' | 'context_missing' | 'context_mismatch' | 'replay_mismatch';

/** `resume()` refused or stopped before any new LM call; the stored run is unchanged. */
export class ResumeError extends RLMError {
  override name = 'ResumeError';
  constructor(
    message: string,
    readonly reason: ResumeFailure,
    readonly runId: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A replayed cell did not do what the stored one did (different output, or different
 * sub-calls or tool calls): the REPL state the run had cannot be rebuilt faithfully.
 */
export class ReplayMismatchError extends ResumeError {
  override name = 'ReplayMismatchError';
  constructor(
    runId: string,
    /** 1-based iteration and 0-based cell of the mismatch. */
    readonly iteration: number,
    readonly block: number,
    /** What differed: 'stdout', 'stderr', 'errorType', 'subcalls' or 'toolCalls'. */
    readonly field: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `Resuming run ${runId}: replaying iteration ${iteration}, cell ${block + 1} gave a different ${field} than the stored run ` +
        `(expected ${JSON.stringify(expected.slice(0, 200))}, got ${JSON.stringify(actual.slice(0, 200))}). ` +
        'The cell depends on something a replay cannot repeat (time, randomness, a changed tool); the run cannot be resumed. Start it again with completion().',
      'replay_mismatch',
      runId,
    );
  }
}

/** Whether `error` is an abort (DOMException AbortError or an SDK's abort error). */
export function isAbortError(error: unknown): boolean {
  return (
    error instanceof CancellationError ||
    (typeof error === 'object' && error !== null && (error as { name?: string }).name === 'AbortError')
  );
}

/**
 * A one-line `Name: message` for any thrown value, for trajectories and sub-call errors.
 * URLs in it lose their credentials and query (an SDK's message may quote the base URL).
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) return redactURLs(`${error.name}: ${error.message}`);
  return redactURLs(String(error));
}
