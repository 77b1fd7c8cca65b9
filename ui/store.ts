/**
 * History's connection to the library's trajectory store (IndexedDB) and JSONL. Returns
 * undefined where IndexedDB is unavailable: the page then runs without History.
 */
import { importJSONL, IndexedDBTrajectoryStore, RLMLogger, toJSONL, type StorageError, type TrajectorySink } from '../src/index';
import { HistoryView } from './history';

export interface ConnectedHistory {
  view: HistoryView;
  /** Where runs are kept (resume() reads it through the logger). */
  store: IndexedDBTrajectoryStore;
  logger: TrajectorySink;
  /** Receives storage failures during runs (quota full, ...). */
  onStorageError: (error: StorageError) => void;
}

export function connectHistory(): ConnectedHistory | undefined {
  if (typeof indexedDB === 'undefined') return undefined;
  const store = new IndexedDBTrajectoryStore();
  const view = new HistoryView(
    {
      listRuns: () => store.listRuns(),
      getRun: (id) => store.getRun(id),
      deleteRun: (id) => store.deleteRun(id),
      importFile: async (file) => {
        const result = await importJSONL(store, file);
        if (result.runIds.length === 0) {
          throw new Error(result.errors.length > 0 ? `no run could be read (line ${result.errors[0]!.line}: ${result.errors[0]!.message}). Is it a JSONL log from rlm-web or rlms?` : 'the file holds no run. Is it a JSONL log from rlm-web or rlms?');
        }
        return result.runIds;
      },
      toJSONL,
    },
    document.getElementById('history-list')!,
    document.getElementById('history-status')!,
    document.getElementById('import-file') as HTMLInputElement,
  );
  const connected: ConnectedHistory = {
    view,
    store,
    logger: new RLMLogger({ store, onError: (error) => connected.onStorageError(error) }),
    onStorageError: () => undefined,
  };
  return connected;
}
