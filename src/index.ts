/**
 * rlm-web: Recursive Language Models in the browser. The public door: every name a user
 * can import is listed here, explicitly. Nothing here touches the DOM or starts a worker at
 * import time.
 */

// The RLM and its options.
export { RLM } from './rlm';
export type { RLMOptions, EnvironmentChoice } from './rlm';
export type { RLMCoreOptions, BackendOptions, BackendSpec, CompletionOptions } from './core/options';
export type { ResumeOptions, RunSource } from './core/resume';
export type { ContextCeiling } from './core/errors';
export type { RLMStream } from './core/events';
export type { Limits } from './core/limits';
export type { ToolEntry, ToolFunction } from './core/tools';
export { RESERVED_NAMES } from './core/tools';
export { DEFAULT_CONTEXT_WINDOW, contextWindowFor } from './core/context-windows';
export { segmentReply } from './core/parsing';
export { checkedMessages } from './core/messages';
export { unpricedModels } from './core/usage';
export type { ReplySegment } from './core/parsing';

// Typed answers: schemas for the answer and for sub-calls.
export type { AnswerSchema } from './core/schema';
export type { JSONSchema, SchemaIssue, ResponseFormat, AnswerValidationRecord, RecordedSchema } from './core/types';

// Results, trajectories and events.
export type {
  ChatRole,
  ChatMessage,
  LMUsage,
  ModelUsage,
  UsageSummary,
  ContextInput,
  ContextDescription,
  CompletionResult,
  Trajectory,
  RunConfig,
  RunStatus,
  EndReason,
  IterationRecord,
  CodeBlockRecord,
  SubcallRecord,
  ToolCallRecord,
  RunStep,
  RLMEvent,
  TrajectorySink,
  ReplInfo,
} from './core/types';

// Extension points: your own LM client or Python environment.
export type {
  LMClient,
  LMRequest,
  LMResult,
  SamplingArgs,
  ReplEnvironment,
  EnvironmentFactory,
  EnvironmentFactoryOptions,
  ExecuteOptions,
  CellResult,
  SubcallHost,
  HostRequest,
  HostReply,
  ToolDefinition,
} from './core/types';

// Errors.
export {
  RLMError,
  ConfigurationError,
  ContextTooLargeError,
  ContextReadError,
  LMError,
  LMAuthenticationError,
  LMRateLimitError,
  LMConnectionError,
  LMTimeoutError,
  LMResponseError,
  LMOriginError,
  InvalidPromptError,
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
  AnswerValidationError,
  StorageError,
  ResumeError,
  ReplayMismatchError,
} from './core/errors';

// LM clients (src/clients).
export { OpenAIClient } from './clients/openai';
export { AnthropicClient } from './clients/anthropic';
export { createClient, OPENAI_COMPATIBLE } from './clients/registry';

// Python environments (src/repl).
export { createPyodideEnvironment, PyodideRepl } from './repl/pyodide-repl';
export type { PyodideEnvironmentOptions } from './repl/pyodide-repl';
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

// Trajectory storage and JSONL (src/store).
export {
  RLMLogger,
  StorageErrorEvent,
  IndexedDBTrajectoryStore,
  generateJSONL,
  toJSONL,
  toJSONLBlob,
  toJSONLStream,
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
