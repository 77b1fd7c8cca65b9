/**
 * A spy on what a page posts (to frames, MessagePorts, workers), run in the browser: pass it
 * to `page.evaluate` or `page.addInitScript`. Each message is recorded as text (strings,
 * bytes decoded as UTF-8, objects as key=value lists, nested up to 6 levels) in
 * `globalThis.postedMessages`, so a test can look for an API key in everything that left the
 * page. Blobs show as nothing: their bytes are not read.
 */
export function recordPostedMessages(): void {
  // In the page itself only: frames inside it (the isolation frame too) are not spied on.
  if (window !== window.top) return;
  const seen: string[] = [];
  (globalThis as unknown as { postedMessages: string[] }).postedMessages = seen;
  const decoder = new TextDecoder();
  const text = (value: unknown, depth = 0): string => {
    if (depth > 6 || value == null) return String(value);
    if (typeof value === 'string') return value;
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
      const view = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      return view.byteLength < 50_000_000 ? decoder.decode(view) : '';
    }
    if (typeof value === 'object') return Object.entries(value as object).map(([k, v]) => `${k}=${text(v, depth + 1)}`).join(',');
    return String(value);
  };
  for (const proto of [MessagePort.prototype, Worker.prototype, Window.prototype] as { postMessage: (...args: unknown[]) => void }[]) {
    const original = proto.postMessage;
    proto.postMessage = function (this: unknown, message: unknown, ...rest: unknown[]) {
      seen.push(text(message));
      return original.call(this, message, ...rest);
    };
  }
}

/** What `recordPostedMessages` recorded, read in the browser. */
export function postedMessages(): string[] {
  return (globalThis as unknown as { postedMessages?: string[] }).postedMessages ?? [];
}
