/**
 * Trajectory storage: the logger the loop reports to, the IndexedDB store behind it, and
 * JSONL export/import in the reference implementation's log format.
 */
export { RLMLogger, StorageErrorEvent } from './logger';
export type { RLMLoggerOptions } from './logger';
export { IndexedDBTrajectoryStore } from './indexeddb-store';
export type { IndexedDBTrajectoryStoreOptions, StorageEstimate } from './indexeddb-store';
export { generateJSONL, toJSONL, toJSONLBlob, toJSONLStream, readJSONL, importJSONL } from './jsonl';
export type { JSONLSource, JSONLLineError, JSONLReadResult, JSONLTrajectories, JSONLImportResult } from './jsonl';
export type { RunSummary, TrajectoryStore, ListRunsOptions } from './types';
