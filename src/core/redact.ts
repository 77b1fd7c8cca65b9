/**
 * What a trajectory may keep of the options and errors it records: no secrets. Records go
 * to IndexedDB and into JSONL exports people share, so keys, tokens, headers and the
 * credentials a URL can carry (`user:pass@`, `?key=...`) are removed before they are written.
 */

/**
 * Names whose values are secrets, at any depth: apiKey, api_key, token, authToken, secret,
 * password, authorization, credentials, cookie, and any header set (headers carry keys under
 * names of the provider's choosing).
 */
const SECRET_NAME = /(key|token|secret|passw(or)?d|pwd|auth|authorization|credentials?|cookies?|headers)$/i;

/** Nesting kept of an option value; deeper parts are summarized (options are never this deep). */
const MAX_DEPTH = 16;

/** Where a URL starts in free text; it runs to the first space, quote or bracket. */
const URL_IN_TEXT = /\b(?:https?|wss?):\/\/[^\s"'`<>()[\]{}]+/gi;

/** Whether an option or header name holds a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name.replace(/[-_\s]/g, ''));
}

/**
 * `url` without what can carry a credential: userinfo (`user:pass@`), the query string and
 * the fragment. A URL that does not parse is replaced whole: it may still hold a secret.
 *
 * @example
 * redactURL('https://u:p@host/v1?key=abc') // 'https://host/v1'
 */
export function redactURL(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    const out = parsed.href;
    // URL adds a '/' to a bare origin; keep the text as it was written.
    return out.endsWith('/') && !url.split(/[?#]/)[0]!.endsWith('/') ? out.slice(0, -1) : out;
  } catch {
    return '[URL removed]';
  }
}

/** `text` with every http(s) or ws(s) URL in it redacted (error messages quote the base URL). */
export function redactURLs(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => redactURL(url));
}

/**
 * A copy of `value` fit to store: secret-named keys dropped at any depth, URLs in strings
 * redacted, functions and symbols dropped, other class instances summarized by name, cycles
 * and undue depth summarized. Never throws (a throwing getter drops its key).
 */
export function redactValue(value: unknown): unknown {
  return copy(value, 0, new WeakSet());
}

/** An options object as `redactValue` keeps it (an object, whatever was given). */
export function redactOptions(options: object | undefined): Record<string, unknown> {
  const out = redactValue(options ?? {});
  return typeof out === 'object' && out !== null && !Array.isArray(out) ? (out as Record<string, unknown>) : {};
}

/** Marks a value `copy` leaves out. */
const DROP = Symbol('drop');

function copy(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  switch (typeof value) {
    case 'string':
      return redactURLs(value);
    case 'number':
    case 'boolean':
    case 'undefined':
      return value;
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      return DROP;
  }
  if (value === null) return null;
  const object = value as object;
  if (object instanceof URL) return redactURL(object.href);
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? null : object.toISOString();
  if (seen.has(object)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  const prototype = Object.getPrototypeOf(object) as object | null;
  const plain = Array.isArray(object) || prototype === Object.prototype || prototype === null;
  // A class instance (a client, a Blob, a Map...) is not configuration one can read back.
  if (!plain) return `[${constructorName(object)}]`;
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      const out: unknown[] = [];
      for (let i = 0; i < object.length; i++) {
        const item = read(object, i);
        const kept = item === DROP ? DROP : copy(item, depth + 1, seen);
        out.push(kept === DROP ? null : kept);
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(object)) {
      if (isSecretName(key)) continue;
      const item = read(object, key);
      const kept = item === DROP ? DROP : copy(item, depth + 1, seen);
      // Defined as data: a key such as '__proto__' stays a key.
      if (kept !== DROP) Object.defineProperty(out, key, { value: kept, writable: true, enumerable: true, configurable: true });
    }
    return out;
  } finally {
    seen.delete(object);
  }
}

function read(object: object, key: string | number): unknown {
  try {
    return (object as Record<string | number, unknown>)[key];
  } catch {
    return DROP;
  }
}

function constructorName(object: object): string {
  try {
    const name = (object as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name ? name : 'object';
  } catch {
    return 'object';
  }
}
