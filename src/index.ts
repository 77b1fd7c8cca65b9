/**
 * rlm-web: Recursive Language Models in the browser. Named exports only; nothing here
 * touches the DOM or starts a worker at import time.
 */
export { RLM } from './rlm';
export { RLMCore } from './core/rlm';
export type { BackendOptions, BackendSpec, CompletionOptions, RLMOptions, RLMDependencies, RLMStream } from './core/rlm';
export type { Limits } from './core/limits';
export type { ToolEntry, ToolFunction } from './core/tools';
export { RESERVED_NAMES } from './core/tools';
export { segmentReply } from './core/parsing';
export type { ReplySegment } from './core/parsing';
export { CONTEXT_WINDOWS, DEFAULT_CONTEXT_WINDOW, contextWindowFor } from './core/context-windows';
export {
  RLMError,
  ConfigurationError,
  LMError,
  LMAuthenticationError,
  LMRateLimitError,
  LMConnectionError,
  LMTimeoutError,
  LMResponseError,
  ReplError,
  BridgeUnavailableError,
  ReplCrashedError,
  RunEndedError,
  LimitExceededError,
  BudgetExceededError,
  TimeoutExceededError,
  TokenLimitExceededError,
  ErrorThresholdExceededError,
  CancellationError,
  StorageError,
} from './core/errors';
export type * from './core/types';
export { OpenAIClient } from './clients/openai';
export { AnthropicClient } from './clients/anthropic';
export { createClient, OPENAI_COMPATIBLE } from './clients/registry';
export { PyodideRepl } from './repl/pyodide-repl';
export type { PyodideEnvironmentOptions } from './repl/pyodide-repl';
// Trajectory storage and JSONL (src/store).
export {
  RLMLogger,
  StorageErrorEvent,
  IndexedDBTrajectoryStore,
  generateJSONL,
  toJSONL,
  toJSONLBlob,
  toJSONLStream,
  readLines,
  readJSONL,
  importJSONL,
} from './store/index';
export type {
  RLMLoggerOptions,
  IndexedDBTrajectoryStoreOptions,
  StorageEstimate,
  JSONLSource,
  JSONLLineError,
  JSONLReadResult,
  JSONLTrajectories,
  JSONLImportResult,
  RunSummary,
  TrajectoryStore,
  ListRunsOptions,
} from './store/index';
// Remote sandboxes through rlm-web-proxy (src/repl/remote-repl.ts; the proxy itself is rlm-web/proxy).
export { RemoteRepl, createRemoteEnvironment } from './repl/remote-repl';
export type { RemoteEnvironmentOptions } from './repl/remote-repl';
export {
  ProxyError,
  ProxyAuthenticationError,
  ProxyOriginError,
  ProxyConnectionError,
  ProxyQuotaError,
  SandboxCrashedError,
  SandboxExpiredError,
} from './repl/remote-errors';
