/**
 * A run's limits, enforced pre-emptively: crossing one aborts the run's AbortSignal, which
 * aborts the LM call in flight and interrupts the running cell. The loop then throws
 * `guard.reason`, a typed error with the partial answer.
 */
import {
  BudgetExceededError,
  CancellationError,
  ErrorThresholdExceededError,
  RunEndedError,
  TimeoutExceededError,
  TokenLimitExceededError,
} from './errors';
import type { UsageTracker } from './usage';

/** Limits of one run, counting child RLMs and sub-calls; crossing one ends the run pre-emptively. */
export interface Limits {
  /** USD, counting child RLMs and sub-calls. Default: none. */
  maxBudget?: number | undefined;
  /** Wall-clock ms for the whole run, children included. Default: none. */
  maxTimeMs?: number | undefined;
  /** Input + output tokens, counting children. Default: none. */
  maxTokens?: number | undefined;
  /** Consecutive iterations whose cells raised. Default: none. */
  maxErrors?: number | undefined;
}

/** Enforces a run's `Limits` and cancellation on one AbortSignal. */
export class RunGuard {
  readonly startedAt: number;
  private readonly controller = new AbortController();
  private consecutiveErrors = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly detach: () => void;

  constructor(
    private readonly limits: Limits,
    private readonly usage: UsageTracker,
    private readonly partialAnswer: () => string | undefined,
    external?: AbortSignal,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.startedAt = now();
    if (limits.maxTimeMs !== undefined) {
      this.timer = setTimeout(() => {
        this.stop(new TimeoutExceededError(this.elapsedMs(), limits.maxTimeMs!, this.partialAnswer()));
      }, Math.max(0, limits.maxTimeMs));
    }
    const onAbort = () => this.stop(new CancellationError('The run was cancelled by its AbortSignal.', { partialAnswer: this.partialAnswer() }));
    if (external?.aborted) onAbort();
    external?.addEventListener('abort', onAbort, { once: true });
    this.detach = () => external?.removeEventListener('abort', onAbort);
    usage.onAdd(() => this.checkUsage());
  }

  /** Aborted when any limit is crossed or the caller cancels. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The error that stopped the run, if it was stopped. */
  get reason(): RunEndedError | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as RunEndedError) : undefined;
  }

  elapsedMs(): number {
    return this.now() - this.startedAt;
  }

  /** What a child run may still use: the remaining budget, time and tokens. */
  remaining(): Limits {
    const out: Limits = { maxErrors: this.limits.maxErrors };
    if (this.limits.maxBudget !== undefined) out.maxBudget = Math.max(0, this.limits.maxBudget - this.usage.costUSD);
    if (this.limits.maxTimeMs !== undefined) out.maxTimeMs = Math.max(0, this.limits.maxTimeMs - this.elapsedMs());
    if (this.limits.maxTokens !== undefined) out.maxTokens = Math.max(0, this.limits.maxTokens - this.usage.totalTokens);
    return out;
  }

  /** Throws the stopping error when the run must end. Call between steps. */
  check(): void {
    this.checkUsage();
    const reason = this.reason;
    if (reason) throw reason;
  }

  /** Counts consecutive iterations with errors; throws past maxErrors. */
  recordIteration(errorText: string | undefined): void {
    if (errorText === undefined) {
      this.consecutiveErrors = 0;
      return;
    }
    this.consecutiveErrors += 1;
    const max = this.limits.maxErrors;
    if (max !== undefined && this.consecutiveErrors >= max) {
      this.stop(new ErrorThresholdExceededError(this.consecutiveErrors, max, errorText, this.partialAnswer()));
      throw this.reason;
    }
  }

  /** Ends the run with `error` (the first reason wins). */
  stop(error: RunEndedError): void {
    if (!this.controller.signal.aborted) this.controller.abort(error);
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.detach();
  }

  private checkUsage(): void {
    const { maxBudget, maxTokens } = this.limits;
    if (maxBudget !== undefined && this.usage.costUSD > maxBudget) {
      this.stop(new BudgetExceededError(this.usage.costUSD, maxBudget, this.partialAnswer()));
    }
    if (maxTokens !== undefined && this.usage.totalTokens > maxTokens) {
      this.stop(new TokenLimitExceededError(this.usage.totalTokens, maxTokens, this.partialAnswer()));
    }
  }
}
