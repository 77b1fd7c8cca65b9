/**
 * The `fetch` every SDK client is built with: it sends to one origin, fixed when the client
 * is made, and refuses any other URL whatever the SDK computed. The SDKs build each URL from
 * options objects that inherit from `Object.prototype` (`defaultBaseURL`, for one), so on a
 * page whose prototypes were polluted they could be steered to another host, API key
 * included; this is the last check before a request leaves.
 */
import { ConfigurationError, LMOriginError } from '../core/errors';

// Captured when rlm-web loads, before any REPL cell can run: replacing the page's `fetch`,
// `URL` or their prototypes' members later changes nothing here.
const nativeFetch: typeof fetch | undefined = typeof globalThis.fetch === 'function' ? globalThis.fetch : undefined;
const NativeURL = URL;
const apply = Reflect.apply;
const defineProperty = Object.defineProperty;
const ownDescriptor = Object.getOwnPropertyDescriptor;
const hasOwn = Object.hasOwn;
const createObject = Object.create;
const hrefGetter = ownDescriptor(URL.prototype, 'href')?.get;
const originGetter = ownDescriptor(URL.prototype, 'origin')?.get;

/** What the SDKs put in a request's init that fetch needs; the rest (inherited or not) is dropped. */
const INIT_FIELDS = ['method', 'headers', 'body', 'signal', 'duplex'] as const;

/** The origin of an http(s) URL (`https://api.openai.com`), or undefined for anything else. */
export function originOf(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new NativeURL(url);
  } catch {
    return undefined;
  }
  const origin: unknown = originGetter ? apply(originGetter, parsed, []) : undefined;
  return typeof origin === 'string' && (origin.startsWith('https://') || origin.startsWith('http://')) ? origin : undefined;
}

/**
 * A fetch that sends only to `allowedOrigin` (through the `fetch` captured when rlm-web
 * loaded) and rejects every other URL with `LMOriginError` before anything leaves. The init
 * it passes on is a fresh null-prototype object with the SDK's own method, headers, body,
 * signal and duplex, so nothing inherited (a polluted `mode`, `credentials`, `window`...)
 * reaches the request. It carries its own `call` and `apply`, which the SDKs use to invoke
 * it, so a replaced `Function.prototype.call` never sees a request.
 */
export function pinnedFetch(allowedOrigin: string, provider: string, model: string): typeof fetch {
  const send = nativeFetch;
  if (!send) throw new ConfigurationError('This environment has no fetch: the LM clients need a browser, a worker or Node 18+.');
  const pinned = (input: unknown, init?: unknown): Promise<Response> => {
    const href = typeof input === 'string' ? input : input instanceof NativeURL && hrefGetter ? (apply(hrefGetter, input, []) as string) : undefined;
    const origin = href === undefined ? undefined : originOf(href);
    if (href === undefined || origin !== allowedOrigin) {
      const refused = origin ?? (href === undefined ? 'a request that is not a URL' : 'a URL that is not http(s)');
      return Promise.reject(
        new LMOriginError(
          `Refused to send the ${provider} request to ${refused}: this client sends only to ${allowedOrigin}, the origin of its baseURL. ` +
            'Something on this page changed where the SDK sends requests (for example a polluted Object.prototype); nothing was sent. ' +
            'Reload the page and check which scripts it runs.',
          provider,
          model,
          refused,
          allowedOrigin,
        ),
      );
    }
    return apply(send, undefined, [href, ownInit(init)]) as Promise<Response>;
  };
  ownMethod(pinned, 'call', (_this: unknown, input: unknown, init?: unknown) => pinned(input, init));
  ownMethod(pinned, 'apply', (_this: unknown, args?: ArrayLike<unknown>) => pinned(args?.[0], args?.[1]));
  return pinned as typeof fetch;
}

function ownInit(init: unknown): RequestInit {
  const out = createObject(null) as Record<string, unknown>;
  if (typeof init !== 'object' || init === null) return out;
  // Indexed, not for-of: a replaced Array iterator must not see the request.
  for (let i = 0; i < INIT_FIELDS.length; i++) {
    const field = INIT_FIELDS[i]!;
    const descriptor = ownDescriptor(init, field);
    if (descriptor && hasOwn(descriptor, 'value') && descriptor.value !== undefined) out[field] = descriptor.value;
  }
  return out;
}

function ownMethod(target: object, name: string, value: unknown): void {
  defineProperty(target, name, { value, writable: false, enumerable: false, configurable: false });
}
