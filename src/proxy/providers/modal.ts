/**
 * The Modal provider (official `modal` SDK): one Modal sandbox per REPL, the runtime as an
 * exec'd process whose stdin/stdout are the SDK's streams. The SDK is loaded on first use.
 *
 * What the service does that shapes this file: the image is built (or pulled) lazily and a
 * sandbox waits to be scheduled, so the start reports its phases; a stdin write holds the
 * stream's lock and is capped at 16 MiB, so one writer is held for the process's life and
 * the proxy splits writes well below the cap; the default image has no `kill`, so interrupts
 * are sent from Python; a lost container shows as output streams that fail after the SDK's
 * retries while `wait()` retries forever, so the exit is waited for only briefly after that.
 */
import type { SandboxProcess, SandboxProvider, StartOptions } from '../types.js';
import { interruptArgv } from './signal.js';

export interface ModalProviderOptions {
  /** Default: MODAL_TOKEN_ID. */
  tokenId?: string | undefined;
  /** Default: MODAL_TOKEN_SECRET. */
  tokenSecret?: string | undefined;
  /** The Modal app the sandboxes belong to (created if missing). Default: 'rlm-web'. */
  appName?: string | undefined;
  /** Container image (it needs python3). Default: 'python:3.11-slim'. */
  image?: string | undefined;
  /** Let code in the sandbox reach the network. Default: false (`blockNetwork: true`). */
  allowNetwork?: boolean | undefined;
  /** Extra ModalClient parameters (environment, endpoint, ...). */
  client?: Record<string, unknown> | undefined;
  /** How long to wait for the exit code once the output stream has ended or failed. Default: 5000 ms. */
  exitGraceMs?: number | undefined;
  /** The SDK module, for tests. Default: import('modal'). */
  _sdk?: typeof import('modal') | undefined;
}

/** Modal refuses one stdin write over 16 MiB; half of that leaves room for the message around it. */
export const MODAL_MAX_WRITE_BYTES = 8 * 1024 * 1024;
/** Contexts go as files of at most this size (each one filesystem write, held in memory while it goes). */
const FILE_PART_BYTES = 8 * 1024 * 1024;
const INTERRUPT_TIMEOUT_MS = 10_000;

/** Modal wants whole seconds; rounding up keeps the sandbox alive as long as the proxy expects. */
export function modalTimeoutMs(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000)) * 1000;
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error('the start was given up');
}

/** The first `bytes` bytes of `chunks` as one buffer, leaving the rest in `chunks`. */
function take(chunks: Buffer[], bytes: number): Buffer {
  const joined = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  chunks.length = 0;
  if (joined.length > bytes) chunks.push(joined.subarray(bytes));
  return joined.subarray(0, bytes);
}

export function createModalProvider(options: ModalProviderOptions = {}): SandboxProvider {
  let client: import('modal').ModalClient | undefined;
  const exitGraceMs = options.exitGraceMs ?? 5000;
  return {
    name: 'modal',
    async start(start: StartOptions): Promise<SandboxProcess> {
      const sdk = options._sdk ?? (await import('modal'));
      client ??= new sdk.ModalClient({
        ...options.client,
        ...(options.tokenId ? { tokenId: options.tokenId } : {}),
        ...(options.tokenSecret ? { tokenSecret: options.tokenSecret } : {}),
      });
      start.onPhase?.('image');
      const app = await client.apps.fromName(options.appName ?? 'rlm-web', { createIfMissing: true });
      const image = await client.images.fromRegistry(options.image ?? 'python:3.11-slim').build(app);
      aborted(start.signal);
      start.onPhase?.('scheduling');
      const sandbox = await client.sandboxes.create(app, image, { timeoutMs: modalTimeoutMs(start.lifetimeMs), blockNetwork: !options.allowNetwork });
      let terminated: Promise<void> | undefined;
      const terminate = () =>
        (terminated ??= sandbox
          .terminate()
          .then(() => undefined, () => undefined)
          // Without detach the SDK keeps the router channel and its retry loops alive.
          .finally(() => sandbox.detach()));
      // Given up on while waiting for a place or for the process: terminating also ends that wait.
      const onAbort = () => void terminate();
      start.signal?.addEventListener('abort', onAbort, { once: true });
      let process;
      try {
        aborted(start.signal);
        process = await sandbox.exec(start.argv, { mode: 'text', stdout: 'pipe', stderr: 'pipe' });
        aborted(start.signal);
      } catch (error) {
        await terminate();
        throw error;
      } finally {
        start.signal?.removeEventListener('abort', onAbort);
      }
      let ended = false;
      const end = (code: number | null, detail: string) => {
        if (ended) return;
        ended = true;
        start.onExit(code, detail);
      };
      const pump = async (stream: ReadableStream<string>, sink: (chunk: string) => void) => {
        const reader = stream.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done || ended) return;
          sink(value);
        }
      };
      void pump(process.stderr, start.onStderr).catch(() => undefined);
      // Stdout is the protocol: when it ends or fails for good, the process is done or lost.
      void pump(process.stdout, start.onStdout)
        .then(
          () => 'its output ended',
          (error: Error) => `its output stream was lost (${error.message})`,
        )
        .then(async (how) => {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const grace = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), exitGraceMs)));
          const code = await Promise.race([process.wait().catch(() => undefined), grace]);
          clearTimeout(timer);
          if (code !== undefined) end(code, `exited with code ${code}`);
          else end(null, `lost: ${how} and no exit code came within ${exitGraceMs} ms (the container is gone or unreachable)`);
        });
      // One writer for the process's life: writeText takes and drops the lock per call, and
      // a second call while one is in flight fails and breaks the stream.
      const stdin = process.stdin.getWriter();
      const python = start.argv[0] ?? 'python3';
      return {
        providerId: sandbox.sandboxId,
        maxWriteBytes: MODAL_MAX_WRITE_BYTES,
        write(text) {
          return stdin.write(text);
        },
        async writeFile(path, body) {
          const paths: string[] = [];
          const chunks: Buffer[] = [];
          let buffered = 0;
          let writing: Promise<void> = Promise.resolve();
          const flush = async (bytes: number) => {
            const part = take(chunks, bytes);
            buffered -= part.length;
            const name = `${path}.${String(paths.length).padStart(5, '0')}`;
            paths.push(name);
            // One part goes while the next is read from the page.
            await writing;
            writing = sandbox.filesystem.writeBytes(part, name);
            writing.catch(() => undefined); // awaited before the next part, or at the end
          };
          try {
            for await (const chunk of body) {
              chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
              buffered += chunk.byteLength;
              while (buffered >= FILE_PART_BYTES) await flush(FILE_PART_BYTES);
            }
            if (buffered > 0 || paths.length === 0) await flush(buffered);
            await writing;
            return paths;
          } catch (error) {
            // The part in flight must land before the caller removes the parts, or it outlives the cleanup.
            await writing.catch(() => undefined);
            throw error;
          }
        },
        async interrupt(pid: number) {
          if (ended) return false;
          const signaller = await sandbox.exec(interruptArgv(python, pid), { stdout: 'ignore', stderr: 'ignore', timeoutMs: INTERRUPT_TIMEOUT_MS });
          return (await signaller.wait()) === 0;
        },
        async kill() {
          await terminate();
          end(null, 'sandbox terminated');
        },
      };
    },
  };
}
