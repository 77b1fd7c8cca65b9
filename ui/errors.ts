/**
 * rlm-web's typed errors turned into sentences that say what to do. Matching on `name`
 * keeps this working for errors that crossed a structured clone.
 */
export interface Explained {
  title: string;
  detail: string;
}

export function explainError(error: unknown, where: { baseURL?: string | undefined; provider?: string | undefined } = {}): Explained {
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
      return { title: 'This run cannot be resumed.', detail: `${message}` };
    case 'ResumeError':
      return e.reason === 'context_missing'
        ? { title: 'Resuming needs the run’s context.', detail: 'It was too large to be saved with the run. Pick the same file (or paste the same text) under Context, then press Resume again.' }
        : { title: 'This run cannot be resumed.', detail: message };
    case 'ConfigurationError':
      return { title: 'The settings cannot work.', detail: message };
    default:
      return { title: 'The run failed.', detail: message };
  }
}
