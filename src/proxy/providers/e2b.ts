/**
 * The e2b provider (official `e2b` SDK): one e2b sandbox per REPL, the runtime as a
 * background command with stdin kept open. The SDK is loaded on first use, so a proxy
 * without e2b installed still runs its other providers.
 *
 * What the service does that shapes this file: a command handle keeps every byte of its
 * output for the life of the process, so the handle's copies are switched off; each stdin
 * write is its own request, so the proxy orders them and keeps them small; contexts go
 * through envd's file upload as a stream rather than as base64 lines on stdin.
 */
import type { SandboxProcess, SandboxProvider, StartOptions } from '../types.js';
import { interruptArgv } from './signal.js';

export interface E2BProviderOptions {
  /** E2B API key. Default: E2B_API_KEY. */
  apiKey?: string | undefined;
  /** Sandbox template (it needs python3). Default: e2b's base template. */
  template?: string | undefined;
  /** Let code in the sandbox reach the internet. Default: false (`allowInternetAccess: false`). */
  allowNetwork?: boolean | undefined;
  /** Extra connection options passed to Sandbox.create (domain, apiUrl, sandboxUrl, requestTimeoutMs...). */
  connection?: Record<string, unknown> | undefined;
  /** The SDK module, for tests. Default: import('e2b'). */
  _sdk?: typeof import('e2b') | undefined;
}

/** Each stdin write is one request (its bytes base64 in JSON); e2b states no cap, so this is ours. */
export const E2B_MAX_WRITE_BYTES = 1024 * 1024;
const INTERRUPT_TIMEOUT_MS = 10_000;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * A CommandHandle appends each chunk to its own `_stdout`/`_stderr` strings for as long as the
 * process lives (an hour of protocol lines and prints). The proxy reads the output through the
 * callbacks, so the handle's copies are made to keep nothing. False if the SDK changed shape.
 */
export function discardHandleOutput(handle: object): boolean {
  for (const name of ['_stdout', '_stderr']) {
    if (!Object.getOwnPropertyDescriptor(handle, name)?.configurable) return false;
    Object.defineProperty(handle, name, { get: () => '', set: () => undefined, configurable: true });
  }
  return true;
}

/** An async iterable as the ReadableStream that e2b's files.write streams without buffering. */
function toReadableStream(body: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const source = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await source.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await source.return?.(reason);
    },
  });
}

export function createE2BProvider(options: E2BProviderOptions = {}): SandboxProvider {
  return {
    name: 'e2b',
    async start(start: StartOptions): Promise<SandboxProcess> {
      const { Sandbox } = options._sdk ?? (await import('e2b'));
      start.onPhase?.('scheduling');
      const opts = {
        ...options.connection,
        ...(options.apiKey ? { apiKey: options.apiKey } : {}),
        timeoutMs: start.lifetimeMs, // the SDK rounds up to whole seconds
        allowInternetAccess: options.allowNetwork === true,
      };
      const sandbox = options.template ? await Sandbox.create(options.template, opts) : await Sandbox.create(opts);
      let deleted: Promise<void> | undefined;
      const remove = () => (deleted ??= sandbox.kill().then(() => undefined, () => undefined));
      const onAbort = () => void remove();
      start.signal?.addEventListener('abort', onAbort, { once: true });
      let ended = false;
      const end = (code: number | null, detail: string) => {
        if (ended) return;
        ended = true;
        start.onExit(code, detail);
      };
      let handle;
      try {
        if (start.signal?.aborted) throw new Error('the start was given up');
        start.onPhase?.('process');
        handle = await sandbox.commands.run(start.argv.map(shellQuote).join(' '), {
          background: true,
          stdin: true,
          timeoutMs: 0,
          onStdout: (data: string) => start.onStdout(data),
          onStderr: (data: string) => start.onStderr(data),
        });
        discardHandleOutput(handle);
      } catch (error) {
        await remove();
        throw error;
      } finally {
        start.signal?.removeEventListener('abort', onAbort);
      }
      const pid = handle.pid;
      const python = start.argv[0] ?? 'python3';
      handle.wait().then(
        (result) => end(result.exitCode, `exited with code ${result.exitCode}`),
        (error: { exitCode?: number; message?: string }) => end(error.exitCode ?? null, error.exitCode !== undefined ? `exited with code ${error.exitCode}` : `lost: ${error.message ?? error}`),
      );
      return {
        providerId: sandbox.sandboxId,
        maxWriteBytes: E2B_MAX_WRITE_BYTES,
        async write(text) {
          await sandbox.commands.sendStdin(pid, text);
        },
        async writeFile(path, body) {
          // A stream makes the SDK use envd's octet-stream upload, sent as it is read.
          await sandbox.files.write(path, toReadableStream(body));
          return [path];
        },
        async interrupt(inner: number) {
          if (ended) return false;
          const result = await sandbox.commands.run(interruptArgv(python, inner).map(shellQuote).join(' '), { timeoutMs: INTERRUPT_TIMEOUT_MS });
          return result.exitCode === 0;
        },
        async kill() {
          await remove();
          end(null, 'sandbox deleted');
        },
      };
    },
  };
}
