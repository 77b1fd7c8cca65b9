/**
 * How an SDK client is built from BackendOptions so that nothing on the page can change it
 * afterwards. The SDKs read their options, and assign their own fields, through ordinary
 * objects that inherit from `Object.prototype`; on a page whose prototypes were polluted, an
 * inherited `defaultBaseURL`, `fetch` or `middleware` would be used, and an inherited setter
 * or getter named like a field (`apiKey`, `_options`, `_client`...) would be handed the key.
 * So every option either SDK reads is an own property, each request's options too, the
 * fields they assign land on data properties of the SDK's own classes, and the client's
 * `fetch` is pinned to one origin (`pinned-fetch.ts`).
 */
import { ownValue } from '../core/messages';
import type { BackendOptions } from '../core/options';

/** Every BackendOptions field (the compiler keeps the list whole). */
const BACKEND_FIELDS = Object.keys({
  model: true,
  apiKey: true,
  baseURL: true,
  timeoutMs: true,
  maxRetries: true,
  headers: true,
  maxOutputTokens: true,
  extraBody: true,
} satisfies Record<keyof BackendOptions, true>) as (keyof BackendOptions)[];

/**
 * A null-prototype copy of the own data properties of `options`: reading a field the user did
 * not set (`baseURL` with a preset) then finds nothing rather than a getter on a polluted
 * `Object.prototype`, which would be called with the object that holds the API key.
 * `headers` is copied too.
 */
export function ownBackendOptions(options: BackendOptions): BackendOptions {
  const out = Object.create(null) as Record<string, unknown>;
  for (const field of BACKEND_FIELDS) {
    const value = ownValue(options, field);
    if (value !== undefined) out[field] = value;
  }
  if (typeof out.headers === 'object' && out.headers !== null) out.headers = Object.assign(Object.create(null) as object, out.headers);
  return out as unknown as BackendOptions;
}

/**
 * Every constructor option `openai` 6 and `@anthropic-ai/sdk` 1 read (found in their sources
 * and by trapping `Object.prototype` while they build a client and send a request). Each is
 * set, so none is looked up on `Object.prototype`.
 */
const NO_VALUE = {
  organization: null,
  project: null,
  webhookSecret: null,
  authToken: null,
  credentials: null,
  config: null,
  profile: null,
  webhookKey: null,
  defaultQuery: undefined,
  fetchOptions: undefined,
  logLevel: 'warn',
  // Off: a tracer would be handed each request.
  openTelemetry: false,
  __auth: undefined,
  __baseURLIsExplicit: undefined,
} as const;

/**
 * The constructor options of both SDKs: a null-prototype object with every option they read
 * set as its own property.
 *
 * @param baseURL Always given (the provider's default when the user set none): the SDK then
 *   never falls back to an environment variable or a URL of its own.
 * @param fetch The client's pinned fetch.
 */
export function sdkOptions(options: BackendOptions, baseURL: string, fetch: typeof globalThis.fetch): Record<string, unknown> {
  return Object.assign(Object.create(null) as Record<string, unknown>, NO_VALUE, {
    // Local servers take any key; the SDKs insist on one.
    apiKey: options.apiKey || 'not-needed',
    baseURL,
    // The key is the user's own, typed into their page: see the README's security notes.
    dangerouslyAllowBrowser: true,
    maxRetries: options.maxRetries ?? 2,
    timeout: options.timeoutMs ?? 120_000,
    defaultHeaders: { ...options.headers },
    fetch,
    logger: console,
    middleware: [],
  });
}

/**
 * One request's options, with the fields the SDKs read from them set as own properties (the
 * SDK copies this object's own properties into the object it reads): an inherited
 * `defaultBaseURL` would replace the base URL on the provider's default host, inherited
 * `fetchOptions` or `headers` would join the request, `middleware` would see it.
 */
export function requestOptions(signal: AbortSignal | undefined, timeoutMs: number | undefined): Record<string, unknown> {
  return {
    signal: signal ?? null,
    ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
    defaultBaseURL: undefined,
    fetchOptions: undefined,
    headers: undefined,
    query: undefined,
    middleware: undefined,
    idempotencyKey: undefined,
    __span: undefined,
  };
}

const shadowed = new WeakSet<object>();

/**
 * A client of `SDK` built from pinned options. The first time for a given SDK class, a probe
 * client (dummy key, never used) shows which fields the SDK assigns, and `shadowSDKFields`
 * makes each one a data property of the SDK's classes before the real client is built. The
 * SDK loads with the first request, before any REPL cell has run, unless a run's sub-calls
 * use the other SDK.
 *
 * @param readNames Fields the SDK reads from its client without ever assigning them.
 */
export function buildSDKClient<Client extends object>(
  SDK: new (options: never) => Client,
  options: BackendOptions,
  baseURL: string,
  fetch: typeof globalThis.fetch,
  readNames: readonly string[] = [],
): Client {
  if (!shadowed.has(SDK)) {
    // The probe holds nothing worth taking (a dummy key, a fetch that sends nothing): on a
    // page already polluted, a setter may see it, never the real client.
    const sendNothing = () => Promise.reject(new TypeError('The probe client sends nothing.'));
    shadowSDKFields(new SDK(sdkOptions({ model: options.model, apiKey: 'probe' }, baseURL, sendNothing) as never), readNames);
    shadowed.add(SDK);
  }
  return new SDK(sdkOptions(options, baseURL, fetch) as never);
}

/**
 * Makes every field the SDK assigns on a client (and on its resource objects: `chat`,
 * `messages`...) a writable data property of the SDK's own base class, so that
 * `this.apiKey = key` in the SDK's constructor creates an own property instead of calling a
 * setter someone put on `Object.prototype`, and reading a field the SDK never set
 * (`readNames`) finds `undefined` before any inherited getter. `probe` is a client built
 * with a dummy key: the fields are the ones it got. The values the SDK reads are unchanged
 * (an assigned field is still own, an unassigned one undefined); the new properties are not
 * enumerable, so no spread or `for...in` sees them.
 */
export function shadowSDKFields(probe: object, readNames: readonly string[]): void {
  const seen = new Set<object>();
  const visit = (target: object, extra: readonly string[]) => {
    const base = sdkBase(target);
    if (!base || seen.has(target)) return;
    seen.add(target);
    for (const key of [...Object.getOwnPropertyNames(target), ...extra]) {
      if (!onClass(target, key)) Object.defineProperty(base, key, { value: undefined, writable: true, enumerable: false, configurable: true });
      const value = ownValue(target, key);
      // Resources hold the client as `_client`, and so do their sub-resources.
      if (typeof value === 'object' && value !== null && ownValue(value, '_client') === probe) visit(value, []);
    }
  };
  visit(probe, readNames);
}

/** The last prototype of `target`'s chain before `Object.prototype`: the SDK's base class. */
function sdkBase(target: object): object | undefined {
  let proto = Object.getPrototypeOf(target) as object | null;
  if (proto === null || proto === Object.prototype) return undefined;
  for (;;) {
    const next = Object.getPrototypeOf(proto) as object | null;
    if (next === null || next === Object.prototype) return proto;
    proto = next;
  }
}

/** Whether `key` is defined by `target`'s classes (its prototypes other than `Object.prototype`). */
function onClass(target: object, key: string): boolean {
  for (let o = Object.getPrototypeOf(target) as object | null; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.hasOwn(o, key)) return true;
  }
  return false;
}
