/**
 * Trajectories in IndexedDB (through `idb`): one database, four object stores — `runs`
 * (headers, listed newest first), `iterations` (keyed [runId, iteration]), `steps` (the
 * iteration in progress: its reply, finished sub-calls and cells, keyed [runId, seq]) and
 * `contexts` (a run's context, for resume) — so that each finished step is one small
 * transaction and a closed tab keeps everything that happened.
 *
 * Nothing touches IndexedDB, `navigator` or the Web Locks API before the first call.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { StorageError } from '../core/errors';
import { newId } from '../core/ids';
import type { ChatMessage, ContextInput, IterationRecord, Trajectory } from '../core/types';
import { partialIteration, type StoredStep } from './steps';
import { joinRun, sharedPromptPrefix, toStorageError, type ListRunsOptions, type RunSummary, type TrajectoryStore } from './types';

/** The schema version this code writes. Each version adds a step to `upgrade` below. */
const SCHEMA_VERSION = 2;

/** Fields the store keeps on a run header for itself. */
interface StoredRun extends RunSummary {
  /** The store instance (page) that is writing the run while it is 'running'. */
  _owner?: string | undefined;
  /** Epoch ms of the owner's last write. */
  _heartbeat?: number | undefined;
}

/**
 * An iteration as stored. Its prompt is the whole conversation the model was sent, which grows
 * by a turn each iteration: stored whole, a run's size would grow with the square of its
 * iterations (160 MB for 1,000 short turns). So when the iteration before it was written by
 * this store just before, only the messages after the first `_promptFrom` are kept — those
 * come from that iteration's prompt. Records without `_promptFrom` hold their whole prompt.
 */
type StoredIteration = IterationRecord & { runId: string; _promptFrom?: number | undefined };

/** The prompts of stored iterations, in iteration order, rebuilt whole. */
function rebuildPrompts(stored: readonly StoredIteration[]): IterationRecord[] {
  const out: IterationRecord[] = [];
  let previous: IterationRecord | undefined;
  for (const { runId: _runId, _promptFrom, ...it } of stored) {
    if (_promptFrom !== undefined) {
      // Written only right after the iteration before; if that one is missing (its write failed), say so rather than guess.
      const base = previous?.iteration === it.iteration - 1 && previous.prompt.length >= _promptFrom ? previous.prompt.slice(0, _promptFrom) : undefined;
      it.prompt = base ? [...base, ...it.prompt] : [{ role: 'user', content: `[${_promptFrom} earlier messages of this prompt were not stored]` }, ...it.prompt];
    }
    out.push(it);
    previous = it;
  }
  return out;
}

interface TrajectoryDB extends DBSchema {
  runs: { key: string; value: StoredRun; indexes: { startedAt: string; status: string } };
  iterations: { key: [string, number]; value: StoredIteration };
  /** Since version 2. */
  steps: { key: [string, number]; value: StoredStep & { runId: string } };
  /** Since version 2. */
  contexts: { key: string; value: { runId: string; context: ContextInput } };
}

/** Every store that holds part of a run (a version-1 database has the first two only). */
const RUN_STORES = ['runs', 'iterations', 'steps', 'contexts'] as const;

/** Options of `new IndexedDBTrajectoryStore(...)`. */
export interface IndexedDBTrajectoryStoreOptions {
  /** Database name. Default: 'rlm-web'. */
  name?: string | undefined;
  /**
   * Without the Web Locks API (insecure contexts), a 'running' run of another page counts
   * as abandoned once it has not been written for this long. Default: 60 000 ms.
   */
  staleAfterMs?: number | undefined;
  /** Ask the browser to keep the data (`navigator.storage.persist()`) on the first write. Default: true. */
  requestPersistence?: boolean | undefined;
  /** @internal Schema version to open, for tests of upgrades. */
  _version?: number | undefined;
}

/** Storage used and available for this site, from `navigator.storage.estimate()`. */
export interface StorageEstimate {
  /** Bytes used by this origin (all databases and caches). */
  usage: number;
  /** Bytes this origin may use. */
  quota: number;
  /** Whether the browser granted persistent storage. */
  persisted: boolean;
}

const LOCK_PREFIX = 'rlm-web:run:';

function locks(): LockManager | undefined {
  return typeof navigator !== 'undefined' && 'locks' in navigator ? navigator.locks : undefined;
}

function storageManager(): StorageManager | undefined {
  return typeof navigator !== 'undefined' && 'storage' in navigator ? navigator.storage : undefined;
}

/** Every key [id, n] of one run in a store keyed [runId, number]. */
function keyRange(id: string): IDBKeyRange {
  return IDBKeyRange.bound([id, -Infinity], [id, Infinity]);
}

/**
 * Durable run history in the browser's IndexedDB.
 *
 * Runs still 'running' when a page opens the database, and not being written by a live
 * page (a closed tab, a crash), are marked 'interrupted'; their finished iterations stay.
 * Liveness is known through the Web Locks API: a page holds a lock per run it writes, and
 * the browser drops it when the page goes away.
 *
 * @example
 * const store = new IndexedDBTrajectoryStore();
 * const rlm = new RLM({ ..., logger: new RLMLogger({ store }) });
 * const [latest] = await store.listRuns();
 * const run = await store.getRun(latest.id);
 */
export class IndexedDBTrajectoryStore implements TrajectoryStore {
  /** Database name. */
  readonly name: string;
  /** This store instance, as the owner of the runs it writes. */
  readonly ownerId = newId();
  private readonly staleAfterMs: number;
  private readonly requestPersistence: boolean;
  private readonly version: number;
  private database: Promise<IDBPDatabase<TrajectoryDB>> | undefined;
  private persistenceAsked = false;
  /** Set while an open is blocked by another tab: calls fail fast instead of queueing behind it. */
  private blockedBy: StorageError | undefined;
  /** Bumped by close(), so that a connection arriving later is not adopted. */
  private generation = 0;
  /** Runs this instance is writing, with the function that releases each one's lock. */
  private readonly live = new Map<string, () => void>();
  /** Per run being written: the last iteration issued and its prompt (dropped when a write fails). */
  private readonly lastIteration = new Map<string, { iteration: number; prompt: ChatMessage[] }>();

  constructor(options: IndexedDBTrajectoryStoreOptions = {}) {
    this.name = options.name ?? 'rlm-web';
    this.staleAfterMs = options.staleAfterMs ?? 60_000;
    this.requestPersistence = options.requestPersistence ?? true;
    this.version = options._version ?? SCHEMA_VERSION;
  }

  // ---------------------------------------------------------------- writes

  async writeRun(run: RunSummary): Promise<void> {
    if (run.status !== 'running') this.lastIteration.delete(run.id);
    const release = this.track(run);
    try {
      const db = await this.db();
      const tx = db.transaction('runs', 'readwrite');
      await this.settle(tx, 'save the run', () => [tx.store.put(this.stamp(run))]);
    } finally {
      // The final header is written (or failed): other pages may now judge the run.
      release?.();
    }
  }

  /**
   * Writes a finished iteration with the run's header. Its prompt is stored from where it
   * differs from the previous iteration's, when this store issued that one just before.
   * Decided before any await: the transactions of a run must start in the order they were
   * issued (an iteration's clears the steps that led to it, not the next iteration's).
   */
  async writeIteration(run: RunSummary, iteration: IterationRecord): Promise<void> {
    const release = this.track(run);
    const last = this.lastIteration.get(run.id);
    const entry = { iteration: iteration.iteration, prompt: iteration.prompt };
    this.lastIteration.set(run.id, entry);
    try {
      const from = last && last.iteration === iteration.iteration - 1 ? sharedPromptPrefix(last.prompt, iteration.prompt) : 0;
      const record: StoredIteration = from > 0 ? { ...iteration, prompt: iteration.prompt.slice(from), runId: run.id, _promptFrom: from } : { ...iteration, runId: run.id };
      const db = await this.db();
      const tx = db.transaction(['runs', 'iterations', 'steps'], 'readwrite');
      await this.settle(tx, `save iteration ${iteration.iteration}`, () => [
        tx.objectStore('iterations').put(record),
        // The finished iteration replaces the steps that led to it.
        tx.objectStore('steps').delete(keyRange(run.id)),
        tx.objectStore('runs').put(this.stamp(run)),
      ]);
    } catch (error) {
      // The next iteration stores its whole prompt (one issued before this failure showed
      // cannot: getRun marks the messages it lacks).
      if (this.lastIteration.get(run.id) === entry) this.lastIteration.delete(run.id);
      throw error;
    } finally {
      release?.();
    }
  }

  /** Steps of the iteration in progress (durable steps), with the run's header, in one transaction. */
  async writeSteps(run: RunSummary, steps: StoredStep[]): Promise<void> {
    const release = this.track(run);
    try {
      const db = await this.db();
      const tx = db.transaction(['runs', 'steps'], 'readwrite');
      await this.settle(tx, 'save the steps of the running iteration', () => [
        // A run's first steps (numbered from 0 again when a resumed run goes on) clear what an earlier session left.
        ...(steps[0]?.seq === 0 ? [tx.objectStore('steps').delete(keyRange(run.id))] : []),
        ...steps.map((step) => tx.objectStore('steps').put({ ...step, runId: run.id })),
        tx.objectStore('runs').put(this.stamp(run)),
      ]);
    } finally {
      release?.();
    }
  }

  /** Keeps the run's context, for `resume()`. */
  async writeContext(runId: string, context: ContextInput): Promise<void> {
    const db = await this.db();
    const tx = db.transaction('contexts', 'readwrite');
    await this.settle(tx, 'keep the context of the run', () => [tx.store.put({ runId, context })]);
  }

  // ---------------------------------------------------------------- reads

  async hasRun(id: string): Promise<boolean> {
    const db = await this.db();
    return this.guard('read the run list', async () => (await db.count('runs', id)) > 0);
  }

  /** Runs, newest first, without their iterations. */
  async listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    const db = await this.db();
    const limit = options.limit ?? Infinity;
    return this.guard('read the run list', async () => {
      const out: RunSummary[] = [];
      let cursor = await db.transaction('runs').store.index('startedAt').openCursor(null, 'prev');
      while (cursor && out.length < limit) {
        out.push(publicRun(cursor.value));
        cursor = await cursor.continue();
      }
      return out;
    });
  }

  /**
   * A run with all its iterations, or undefined. A run that stopped inside an iteration (a
   * closed tab) ends with that iteration rebuilt from its steps, marked `partial`.
   */
  async getRun(id: string): Promise<Trajectory | undefined> {
    const db = await this.db();
    return this.guard('read the run', async () => {
      const tx = db.transaction(['runs', 'iterations', 'steps']);
      const [run, iterations, steps] = await Promise.all([
        tx.objectStore('runs').get(id),
        tx.objectStore('iterations').getAll(keyRange(id)),
        tx.objectStore('steps').getAll(keyRange(id)),
      ]);
      if (!run) return undefined;
      // Prompts share their messages with the iterations before them: treat them as read-only.
      const records = rebuildPrompts(iterations);
      const partial = partialIteration(steps);
      if (partial && partial.iteration > (records[records.length - 1]?.iteration ?? 0)) records.push(partial);
      return joinRun(publicRun(run), records);
    });
  }

  /** The context kept for a run (see RLMLogger's `keepContextBytes`), or undefined. */
  async getContext(runId: string): Promise<ContextInput | undefined> {
    const db = await this.db();
    return this.guard('read the context of the run', async () => (await db.get('contexts', runId))?.context);
  }

  /** A run's summary (no iterations), or undefined. */
  async getRunSummary(id: string): Promise<RunSummary | undefined> {
    const db = await this.db();
    return this.guard('read the run', async () => {
      const run = await db.get('runs', id);
      return run && publicRun(run);
    });
  }

  // ---------------------------------------------------------------- deleting

  async deleteRun(id: string): Promise<void> {
    this.lastIteration.delete(id);
    const db = await this.db();
    const tx = db.transaction(RUN_STORES, 'readwrite');
    await this.settle(tx, 'delete the run', () => [
      tx.objectStore('runs').delete(id),
      tx.objectStore('iterations').delete(keyRange(id)),
      tx.objectStore('steps').delete(keyRange(id)),
      tx.objectStore('contexts').delete(id),
    ]);
  }

  /** Deletes every run. */
  async clear(): Promise<void> {
    this.lastIteration.clear();
    const db = await this.db();
    const tx = db.transaction(RUN_STORES, 'readwrite');
    await this.settle(tx, 'delete the runs', () => RUN_STORES.map((name) => tx.objectStore(name).clear()));
  }

  // ---------------------------------------------------------------- housekeeping

  /** Storage used and available for this site; undefined where the browser does not say. */
  async estimate(): Promise<StorageEstimate | undefined> {
    const storage = storageManager();
    if (!storage?.estimate) return undefined;
    const [estimate, persisted] = await Promise.all([storage.estimate(), storage.persisted?.() ?? Promise.resolve(false)]);
    return { usage: estimate.usage ?? 0, quota: estimate.quota ?? 0, persisted };
  }

  /**
   * Marks 'interrupted' every run still 'running' that no live page is writing. Runs when
   * the database is first opened; call it again to re-check. Returns the ids it marked.
   */
  async recoverInterrupted(): Promise<string[]> {
    return this.markInterrupted(await this.db());
  }

  /** Releases the run locks this instance holds and closes the connection. */
  async close(): Promise<void> {
    this.generation++;
    for (const release of this.live.values()) release();
    this.live.clear();
    const db = this.database;
    this.database = undefined;
    if (db) (await db.catch(() => undefined))?.close();
  }

  // ---------------------------------------------------------------- internals

  private db(): Promise<IDBPDatabase<TrajectoryDB>> {
    // A second open would wait, unblocked, behind the first: fail at once instead.
    if (this.blockedBy) return Promise.reject(this.blockedBy);
    this.database ??= this.open();
    return this.database;
  }

  private async open(): Promise<IDBPDatabase<TrajectoryDB>> {
    if (typeof indexedDB === 'undefined') {
      this.database = undefined;
      throw new StorageError('IndexedDB is not available here: trajectories can only be kept in memory (use RLMLogger without a store).', 'unavailable');
    }
    let blocked: ((error: StorageError) => void) | undefined;
    const whenBlocked = new Promise<never>((_, reject) => {
      blocked = reject;
    });
    const opening = openDB<TrajectoryDB>(this.name, this.version, {
      upgrade(db, oldVersion) {
        // One step per schema version; a database at version n gets steps n+1.. only.
        if (oldVersion < 1) {
          const runs = db.createObjectStore('runs', { keyPath: 'id' });
          runs.createIndex('startedAt', 'startedAt');
          runs.createIndex('status', 'status');
          db.createObjectStore('iterations', { keyPath: ['runId', 'iteration'] });
        }
        // Version 2 (durable steps, resume) adds stores; the runs of version 1 stay as they are.
        if (oldVersion < 2) {
          db.createObjectStore('steps', { keyPath: ['runId', 'seq'] });
          db.createObjectStore('contexts', { keyPath: 'runId' });
        }
      },
      blocked: (currentVersion) => {
        blocked?.(
          new StorageError(
            `The trajectory database '${this.name}' is held open at version ${currentVersion} by another tab, so it cannot be upgraded to version ${this.version}. Close or reload the other tabs of this site.`,
            'blocked',
          ),
        );
      },
      // Another tab wants a newer version: let it, and reopen on next use.
      blocking: () => {
        void opening.then((db) => db.close());
        this.database = undefined;
      },
      terminated: () => {
        this.database = undefined;
      },
    });
    try {
      const db = await Promise.race([opening, whenBlocked]);
      // A failed check leaves runs as they are; it must not make the store unusable.
      await this.markInterrupted(db).catch(() => undefined);
      return db;
    } catch (error) {
      this.database = undefined;
      const failure = toStorageError(error, `open the trajectory database '${this.name}'`);
      if (failure.reason === 'blocked') {
        // When the other tabs let go, the open completes: use that connection from then on.
        this.blockedBy = failure;
        const generation = this.generation;
        opening.then(
          (db) => {
            this.blockedBy = undefined;
            if (generation !== this.generation || this.database) {
              db.close();
              return;
            }
            this.database = this.markInterrupted(db).then(
              () => db,
              () => db,
            );
          },
          () => {
            this.blockedBy = undefined;
          },
        );
      } else {
        opening.then((db) => db.close()).catch(() => undefined);
      }
      throw failure;
    }
  }

  private async markInterrupted(db: IDBPDatabase<TrajectoryDB>): Promise<string[]> {
    const manager = locks();
    // Locks held or wanted by any live page of this origin.
    let lockNames: Set<string> | undefined;
    if (manager) {
      try {
        const state = await manager.query();
        lockNames = new Set([...(state.held ?? []), ...(state.pending ?? [])].map((l) => l.name ?? ''));
      } catch {
        lockNames = undefined;
      }
    }
    const now = Date.now();
    const marked: string[] = [];
    await this.guard('check for interrupted runs', async () => {
      const tx = db.transaction('runs', 'readwrite');
      let cursor = await tx.store.index('status').openCursor('running');
      while (cursor) {
        const run = cursor.value;
        const live =
          this.live.has(run.id) ||
          (lockNames ? lockNames.has(this.lockName(run.id)) : now - (run._heartbeat ?? 0) < this.staleAfterMs);
        if (!live) {
          const { _owner, _heartbeat, ...rest } = run;
          await cursor.update({
            ...rest,
            status: 'interrupted',
            error: run.error ?? 'The page running this trajectory closed or crashed before it finished.',
            updatedAt: new Date(now).toISOString(),
          });
          marked.push(run.id);
        }
        cursor = await cursor.continue();
      }
      await tx.done;
    });
    return marked;
  }

  private lockName(runId: string): string {
    return `${LOCK_PREFIX}${this.name}:${runId}`;
  }

  /**
   * A 'running' header claims the run: a lock is held until the run ends or the page goes.
   * Any other status ends the claim; the caller releases the lock once that is written.
   */
  private track(run: RunSummary): (() => void) | undefined {
    this.askPersistence();
    if (run.status !== 'running') {
      const release = this.live.get(run.id);
      this.live.delete(run.id);
      return release;
    }
    if (this.live.has(run.id)) return undefined;
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.live.set(run.id, () => release());
    locks()
      ?.request(this.lockName(run.id), () => held)
      .catch(() => undefined);
    return undefined;
  }

  private stamp(run: RunSummary): StoredRun {
    return run.status === 'running' ? { ...run, _owner: this.ownerId, _heartbeat: Date.now() } : run;
  }

  private askPersistence(): void {
    if (this.persistenceAsked || !this.requestPersistence) return;
    this.persistenceAsked = true;
    const storage = storageManager();
    if (!storage?.persist) return;
    void storage
      .persisted()
      .then((persisted) => (persisted ? true : storage.persist()))
      .catch(() => undefined);
  }

  /**
   * Issues a transaction's requests and waits for it to commit. A request that throws at
   * once (a quota refusal, say) aborts the whole transaction: nothing half-written.
   */
  private async settle(tx: { done: Promise<void>; abort(): void }, action: string, requests: () => Promise<unknown>[]): Promise<void> {
    let issued: Promise<unknown>[];
    try {
      issued = requests();
    } catch (error) {
      tx.done.catch(() => undefined);
      try {
        tx.abort();
      } catch {
        // Already finished.
      }
      throw toStorageError(error, action);
    }
    try {
      await Promise.all([...issued, tx.done]);
    } catch (error) {
      for (const request of issued) request.catch(() => undefined);
      tx.done.catch(() => undefined);
      // A failed transaction reports AbortError on its requests; its own error says why.
      const reason = (tx as { error?: DOMException | null }).error ?? error;
      throw toStorageError(reason, action);
    }
  }

  private async guard<T>(action: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw toStorageError(error, action);
    }
  }
}

function publicRun(run: StoredRun): RunSummary {
  const { _owner: _o, _heartbeat: _h, ...rest } = run;
  return rest;
}
