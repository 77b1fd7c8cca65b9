/**
 * The page's Comlink client of a REPL worker, made so that the worker cannot turn it around.
 * Comlink's `wrap` takes whatever arrives on its port as the reply to one of its calls, and a
 * reply may be a "handler" value: a proxy (a port the page would then talk to as if it were
 * an object) or a thrown error whose fields are copied onto an Error. Python can post any
 * message on that port, so the endpoint given to `wrap` passes on only replies that are plain
 * values, and errors rebuilt from three strings; everything else is dropped and counted. Each
 * call's value is then checked by the protocol's parser for what that call returns.
 */
import * as Comlink from 'comlink';
import { ReplCrashedError } from '../core/errors';
import { isPlainObject, parseCellOutput, parseContextDescription, type CellOutput, type ContextDescription } from '../protocol/runtime';
import type { TenantAPI, WorkerAPI } from '../protocol/worker';

/** Characters kept of an error's message and stack from the worker. */
const MAX_ERROR_CHARS = 20_000;

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value.slice(0, MAX_ERROR_CHARS) : fallback;
}

/**
 * A reply of Comlink's wire format rebuilt from checked fields, or undefined: `RAW` values
 * (checked further by the caller) and `throw` handlers as a fresh error description.
 */
function checkReply(data: unknown): object | undefined {
  if (!isPlainObject(data) || typeof data.id !== 'string') return undefined;
  const { id } = data;
  if (data.type === 'RAW') return { id, type: 'RAW', value: data.value };
  if (data.type !== 'HANDLER' || data.name !== 'throw' || !isPlainObject(data.value)) return undefined;
  const thrown = data.value.value;
  const error = isPlainObject(thrown)
    ? { name: text(thrown.name, 'Error'), message: text(thrown.message, 'the REPL worker failed'), stack: text(thrown.stack, '') }
    : { name: 'Error', message: text(thrown, 'the REPL worker failed'), stack: '' };
  return { id, type: 'HANDLER', name: 'throw', value: { isError: true, value: error } };
}

/** `endpoint` as Comlink's `wrap` should see it: only checked replies get through. */
function guarded(endpoint: Comlink.Endpoint, dropped: (reason: string) => void): Comlink.Endpoint {
  const filters = new Map<EventListenerOrEventListenerObject, (event: MessageEvent) => void>();
  return {
    postMessage: (message: unknown, transfer?: Transferable[]) => endpoint.postMessage(message, transfer),
    addEventListener(type: string, listener: EventListenerOrEventListenerObject) {
      const filter = (event: MessageEvent) => {
        const reply = checkReply(event.data);
        if (!reply) return dropped('a message on the call port that is not a reply to a call');
        const checked = { data: reply } as MessageEvent;
        if (typeof listener === 'function') listener(checked);
        else listener.handleEvent(checked);
      };
      filters.set(listener, filter);
      endpoint.addEventListener(type, filter as EventListener);
    },
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject) {
      const filter = filters.get(listener);
      if (!filter) return;
      filters.delete(listener);
      endpoint.removeEventListener(type, filter as EventListener);
    },
    start: () => (endpoint as { start?: () => void }).start?.(),
  };
}

/** The worker's API through Comlink, over an endpoint that takes only replies to the page's calls. */
export function workerClient(endpoint: Comlink.Endpoint, dropped: (reason: string) => void): Comlink.Remote<WorkerAPI> {
  return Comlink.wrap<WorkerAPI>(guarded(endpoint, dropped));
}

function checked<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ReplCrashedError(`The REPL worker sent a malformed ${what}.`);
  return value;
}

/** One namespace of the worker, as the page uses it: every value that comes back is checked. */
export function tenantClient(remote: Comlink.Remote<WorkerAPI>, tenant: number): TenantAPI {
  const description = async (reply: Promise<unknown>): Promise<ContextDescription> => checked(parseContextDescription(await reply), 'context description');
  const done = async (reply: Promise<unknown>): Promise<void> => {
    await reply;
  };
  return {
    loadContext: (index, bytes, kind) => description(remote.loadContext(tenant, index, Comlink.transfer(bytes, [bytes.buffer as ArrayBuffer]), kind)),
    loadContextBlob: (index, blob, kind) => description(remote.loadContextBlob(tenant, index, blob, kind)),
    setVariable: (name, valueJSON, reserved) => done(remote.setVariable(tenant, name, valueJSON, reserved)),
    registerTools: (tools) => done(remote.registerTools(tenant, tools)),
    execute: async (code): Promise<CellOutput> => checked(parseCellOutput(await remote.execute(tenant, code)), 'cell result'),
    resolveVariable: async (name) => {
      const value: unknown = await remote.resolveVariable(tenant, name);
      return value === null || typeof value === 'string' ? value : checked<string>(undefined, 'variable');
    },
    reset: () => done(remote.reset(tenant)),
    close: () => done(remote.close(tenant)),
  };
}
