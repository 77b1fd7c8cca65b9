/**
 * rlm-web's typed errors turned into sentences that say what to do. Matching on `name`
 * keeps this working for errors that crossed a structured clone.
 */
export interface Explained {
  title: string;
  detail: string;
}

/** What explainError may name: the endpoint, and how this page gives a run's context again. */
export interface ErrorSetting {
  baseURL?: string | undefined;
  provider?: string | undefined;
  /**
   * How the user gives a resumed run its context again on this page, when the store did not
   * keep it. Default: the demo's (pick the same file or paste the same text under Context).
   */
  contextAgain?: string | undefined;
  /** The resumed run's context was given again (it had not been kept): a replay that differs may come from a different context. */
  contextGivenAgain?: boolean | undefined;
}

const CONTEXT_AGAIN = 'Pick the same file (or paste the same text) under Context, then press Resume again.';

export function explainError(error: unknown, where: ErrorSetting = {}): Explained {
  const e = error as { name?: string; message?: string; status?: number; reason?: string; partialAnswer?: string };
  const name = e?.name ?? 'Error';
  const message = e?.message ?? String(error);
  const provider = where.provider ?? 'the provider';
  switch (name) {
    case 'LMAuthenticationError':
      return {
        title: 'The API key was refused.',
        detail: `${provider} answered ${e.status ?? '401'}: the key is wrong, expired, or has no access to this model. Open Settings, paste a valid key, check the model name, and run again.`,
      };
    case 'LMConnectionError':
      return {
        title: 'The model endpoint could not be reached.',
        detail: `${where.baseURL ? `Nothing answered at ${where.baseURL}. ` : ''}Check the base URL in Settings, that the server is running, and that it allows requests from this page (CORS; for Ollama set OLLAMA_ORIGINS=*). Then run again.`,
      };
    case 'LMRateLimitError':
      return { title: 'The provider is rate-limiting you or your credit ran out.', detail: 'Wait a minute and run again, lower "Max iterations", or add credit to your account.' };
    case 'LMTimeoutError':
      return { title: 'The model took too long to answer.', detail: 'Run again, or pick a faster model in Settings.' };
    case 'LMResponseError':
      return { title: 'The endpoint answered with something that is not a model reply.', detail: `${message} Check the base URL and the model name in Settings.` };
    case 'LMOriginError':
      return { title: 'A request was stopped before it left: it was not going to your model’s endpoint.', detail: `${message.split(': ')[0]}. Your key was not sent. Reload this page before the next run.` };
    case 'InvalidPromptError':
      return { title: 'The code asked a model with something other than text.', detail: `${message} Nothing was sent.` };
    case 'StorageError':
      return e.reason === 'quota'
        ? { title: 'The browser’s storage is full.', detail: 'Runs cannot be saved to History. Delete old runs in History (or free disk space), then try again.' }
        : { title: 'History could not be saved or read.', detail: `${message} Runs still work; only History is affected.` };
    case 'BridgeUnavailableError':
      return { title: 'This browser cannot run the Python REPL.', detail: 'Use a recent Chromium-based browser (Chrome, Edge 137+), or serve the page cross-origin isolated (npm run demo -- --isolated).' };
    case 'ReplCrashedError':
      return { title: 'The Python REPL stopped working.', detail: `${message} Reload the page and run again; with very large contexts, close other tabs to free memory.` };
    case 'CancellationError':
      return { title: 'Stopped.', detail: 'You stopped the run. What it had done so far is shown below.' };
    case 'BudgetExceededError':
    case 'TimeoutExceededError':
    case 'TokenLimitExceededError':
    case 'ErrorThresholdExceededError':
      return { title: 'The run reached one of its limits.', detail: `${message} The limits are in Settings.` };
    case 'ReplayMismatchError':
      return {
        title: 'This run cannot be resumed.',
        detail: where.contextGivenAgain ? `${message} The context given again may not be the run’s. ${where.contextAgain ?? CONTEXT_AGAIN}` : message,
      };
    case 'ResumeError':
      if (e.reason === 'context_missing') return { title: 'Resuming needs the run’s context.', detail: `It was too large to be saved with the run. ${where.contextAgain ?? CONTEXT_AGAIN}` };
      if (e.reason === 'context_mismatch') return { title: 'That is not the run’s context.', detail: `${message} ${where.contextAgain ?? CONTEXT_AGAIN}` };
      return { title: 'This run cannot be resumed.', detail: message };
    case 'ConfigurationError':
      return { title: 'The settings cannot work.', detail: message };
    default:
      return { title: 'The run failed.', detail: message };
  }
}
