/**
 * The page's store of Pyodide memory snapshots. Only the page writes it: a worker makes a
 * snapshot at boot, before any user code runs, and hands the bytes back; the page stores
 * them in Cache Storage and their SHA-256 in localStorage. A snapshot is used only when
 * its digest matches. localStorage is out of reach of every worker (a same-origin
 * `isolation: 'none'` worker can write Cache Storage, not localStorage), and an isolated
 * worker reaches neither, so Python can neither read nor replace the snapshot the next
 * REPL boots from. Without Cache Storage, localStorage or WebCrypto (insecure contexts,
 * storage disabled) there is simply no snapshot.
 */
const CACHE_NAME = 'rlm-web';
const DIGEST_PREFIX = 'rlm-web:snapshot-sha256:';

/** Verified bytes per key, so that a pool of REPLs reads and hashes a snapshot once per page. */
const verified = new Map<string, Promise<Uint8Array | undefined>>();

function digests(): Storage | undefined {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined; // opaque origin, or storage blocked
  }
}

async function openCache(): Promise<Cache | undefined> {
  try {
    return typeof caches === 'undefined' ? undefined : await caches.open(CACHE_NAME);
  } catch {
    return undefined;
  }
}

async function sha256(bytes: Uint8Array): Promise<string | undefined> {
  if (!globalThis.crypto?.subtle) return undefined;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function load(key: string): Promise<Uint8Array | undefined> {
  const expected = digests()?.getItem(DIGEST_PREFIX + key);
  const cache = await openCache();
  if (!expected || !cache) return undefined;
  const response = await cache.match(key);
  if (!response) return undefined;
  const bytes = new Uint8Array(await response.arrayBuffer());
  if ((await sha256(bytes)) === expected) return bytes;
  await cache.delete(key); // written by someone else: never boot from it
  return undefined;
}

/** The stored snapshot under `key` if its digest matches, else undefined. */
export function readSnapshot(key: string): Promise<Uint8Array | undefined> {
  let entry = verified.get(key);
  if (!entry) {
    entry = load(key).catch(() => undefined);
    verified.set(key, entry);
    // Nothing stored yet: look again next time (the first boot is about to store one).
    void entry.then((bytes) => bytes === undefined && verified.get(key) === entry && verified.delete(key));
  }
  return entry;
}

/** Stores `bytes` (a snapshot a worker made before running user code). Resolves false when it could not. */
export async function writeSnapshot(key: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const store = digests();
    const cache = await openCache();
    const digest = await sha256(bytes);
    if (!store || !cache || !digest) return false;
    await cache.put(key, new Response(bytes as BodyInit, { headers: { 'content-type': 'application/octet-stream' } }));
    store.setItem(DIGEST_PREFIX + key, digest);
    verified.set(key, Promise.resolve(bytes));
    return true;
  } catch {
    return false; // quota: boot plainly next time
  }
}

/** Forgets the snapshot under `key` (it did not boot). */
export async function deleteSnapshot(key: string): Promise<void> {
  verified.delete(key);
  digests()?.removeItem(DIGEST_PREFIX + key);
  await (await openCache())?.delete(key);
}
