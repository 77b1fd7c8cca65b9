/**
 * A cell's outcome as the loop sees it, and what the model is told when a cell had to be
 * stopped: the same words whichever REPL ran it, so a model learns one set of messages.
 */
import type { CellResult } from '../core/types';
import type { CellOutput } from '../protocol/worker';

/** Why a running cell is being stopped, as a clause. */
export function stopReason(why: 'timeout' | 'abort', timeoutMs: number): string {
  return why === 'timeout' ? `the cell ran longer than cellTimeoutMs (${timeoutMs} ms)` : 'the run was stopped';
}

/** A finished cell: its output as Python reported it (time measured in Python when it can be). */
export function toCellResult(output: CellOutput, started: number): CellResult {
  return {
    stdout: output.stdout,
    stderr: output.stderr,
    locals: output.locals,
    previews: output.previews,
    executionTimeMs: Math.max(output.execution_time * 1000, 0) || performance.now() - started,
    finalAnswer: output.final_answer,
    errorType: output.error_type,
    interrupted: output.interrupted,
    restarted: false,
  };
}

/** A cell stopped by KeyboardInterrupt: its output so far, its variables kept. */
export function interruptedCellResult(output: CellOutput, reason: string, started: number): CellResult {
  return {
    ...toCellResult(output, started),
    stderr: `${output.stderr}KeyboardInterrupt: ${reason}, so it was interrupted. Variables set before that point are kept.\n`,
    errorType: 'KeyboardInterrupt',
    interrupted: true,
  };
}

/**
 * The result of a cell whose REPL had to be replaced. `cause` says what happened; the rest
 * says what survived: `reloaded` (context, histories, tools) and nothing else. `replaced`
 * names what was replaced ('Python worker', 'sandbox').
 */
export function restartedCellResult(errorType: string, cause: string, replaced: string, reloaded: readonly string[], started: number): CellResult {
  const names = reloaded.length > 0 ? reloaded.join(', ') : 'nothing';
  return {
    stdout: '',
    stderr: `${errorType}: ${cause}\nThe REPL was restarted (its ${replaced} was replaced) with ${names} reloaded; every other variable was lost and must be recomputed.\n`,
    locals: [],
    executionTimeMs: performance.now() - started,
    finalAnswer: null,
    errorType,
    interrupted: true,
    restarted: true,
  };
}
