/**
 * Freezes the JavaScript intrinsics (Object.prototype, Function.prototype, Array.prototype
 * and the rest) of the page that calls it, before any library loads. Something that reaches
 * the page (a hostile message that slips through a bridge, a compromised dependency) then
 * cannot plant a property every object inherits: no `Object.prototype.defaultBaseURL` to
 * steer an SDK, no inherited `apiKey` setter to catch a key. The demo page and the extension's
 * side panel run it as their first module.
 *
 * Freezing has one known cost, the "override mistake": assigning a property that a frozen
 * prototype holds (`err.name = 'X'`, `obj.toString = f`, `C.prototype.constructor = C`)
 * throws in strict code instead of creating an own property. So the properties programs
 * commonly override become accessors first: reading them gives the original value, and
 * assigning one on any object but the prototype itself defines an own property, as before.
 */

/** Properties programs override on their own objects (SES calls this "override taming"). */
const OVERRIDABLE = ['constructor', 'toString', 'toLocaleString', 'valueOf', 'toJSON', 'name', 'message', 'stack', 'then', 'catch', 'finally'] as const;

/**
 * Freezes the intrinsics of this realm, once; later calls do nothing. Call it before
 * anything else runs (a page's first module script).
 *
 * @example
 * // harden.ts, the first <script type="module"> of the page
 * import { freezeIntrinsics } from '../ui/freeze-intrinsics';
 * freezeIntrinsics();
 */
export function freezeIntrinsics(): void {
  if (Object.isFrozen(Object.prototype)) return;
  const roots = intrinsics();
  const prototypes = new Set<object>();
  for (const root of roots) {
    if (typeof root === 'function' && isObject(root.prototype)) prototypes.add(root.prototype as object);
    else if (typeof root !== 'function') prototypes.add(root);
  }
  for (const proto of prototypes) tameOverrides(proto);
  for (const root of roots) Object.freeze(root);
  for (const proto of prototypes) Object.freeze(proto);
}

/** The constructors, namespaces and prototypes to freeze. */
function intrinsics(): object[] {
  const g = globalThis as unknown as Record<string, unknown>;
  const named = [
    'Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt', 'RegExp', 'Date', 'Promise',
    'Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError',
    'Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'ArrayBuffer', 'DataView', 'Proxy',
    'Reflect', 'JSON', 'Math', 'Atomics', 'Intl', 'Iterator',
    // What the LM clients' requests go through.
    'URL', 'URLSearchParams', 'Headers', 'Request', 'Response', 'AbortController', 'AbortSignal', 'TextEncoder', 'TextDecoder',
  ];
  const out: object[] = [];
  for (const name of named) if (isObject(g[name])) out.push(g[name]);
  // Reached only through other objects: typed arrays' shared parent, iterators, generators.
  out.push(Object.getPrototypeOf(Uint8Array) as object);
  for (const T of [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array]) out.push(T);
  const arrayIterator = Object.getPrototypeOf([][Symbol.iterator]()) as object;
  out.push(arrayIterator, Object.getPrototypeOf(arrayIterator) as object);
  out.push(Object.getPrototypeOf(''[Symbol.iterator]()) as object, Object.getPrototypeOf(new Map()[Symbol.iterator]()) as object, Object.getPrototypeOf(new Set()[Symbol.iterator]()) as object);
  out.push(Object.getPrototypeOf(/x/[Symbol.matchAll]('x')) as object);
  /* eslint-disable @typescript-eslint/no-empty-function */
  const generator = Object.getPrototypeOf(function* () {}) as { prototype: object };
  const asyncGenerator = Object.getPrototypeOf(async function* () {}) as { prototype: object };
  const asyncFunction = Object.getPrototypeOf(async function () {}) as object;
  /* eslint-enable @typescript-eslint/no-empty-function */
  out.push(generator, generator.prototype, asyncGenerator, asyncGenerator.prototype, asyncFunction);
  out.push(Object.getPrototypeOf(asyncGenerator.prototype) as object);
  return out;
}

/** Each overridable data property of `proto` becomes an accessor (see the file's note). */
function tameOverrides(proto: object): void {
  for (const key of OVERRIDABLE) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, key);
    if (!descriptor || !Object.hasOwn(descriptor, 'value') || !descriptor.writable || !descriptor.configurable) continue;
    const value: unknown = descriptor.value;
    Object.defineProperty(proto, key, {
      get() {
        return value;
      },
      set(this: unknown, next: unknown) {
        if (this === proto) throw new TypeError(`Cannot assign ${key} on a frozen intrinsic prototype.`);
        if (!isObject(this)) return;
        Object.defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true });
      },
      enumerable: descriptor.enumerable ?? false,
      configurable: false,
    });
  }
}

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}
