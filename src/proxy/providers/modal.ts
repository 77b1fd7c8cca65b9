/**
 * The Modal provider (official `modal` SDK): one Modal sandbox per REPL, the runtime as an
 * exec'd process whose stdin/stdout are the SDK's streams. The SDK is loaded on first use.
 */
import type { SandboxProcess, SandboxProvider, StartOptions } from '../types.js';

export interface ModalProviderOptions {
  /** Default: MODAL_TOKEN_ID. */
  tokenId?: string | undefined;
  /** Default: MODAL_TOKEN_SECRET. */
  tokenSecret?: string | undefined;
  /** The Modal app the sandboxes belong to (created if missing). Default: 'rlm-web'. */
  appName?: string | undefined;
  /** Container image (it needs python3). Default: 'python:3.11-slim'. */
  image?: string | undefined;
  /** Extra ModalClient parameters (environment, endpoint, ...). */
  client?: Record<string, unknown> | undefined;
  /** The SDK module, for tests. Default: import('modal'). */
  _sdk?: typeof import('modal') | undefined;
}

export function createModalProvider(options: ModalProviderOptions = {}): SandboxProvider {
  let client: import('modal').ModalClient | undefined;
  return {
    name: 'modal',
    async start(start: StartOptions): Promise<SandboxProcess> {
      const sdk = options._sdk ?? (await import('modal'));
      client ??= new sdk.ModalClient({
        ...options.client,
        ...(options.tokenId ? { tokenId: options.tokenId } : {}),
        ...(options.tokenSecret ? { tokenSecret: options.tokenSecret } : {}),
      });
      const app = await client.apps.fromName(options.appName ?? 'rlm-web', { createIfMissing: true });
      const image = client.images.fromRegistry(options.image ?? 'python:3.11-slim');
      const sandbox = await client.sandboxes.create(app, image, { timeoutMs: start.lifetimeMs });
      let ended = false;
      const end = (code: number | null, detail: string) => {
        if (ended) return;
        ended = true;
        start.onExit(code, detail);
      };
      let process;
      try {
        process = await sandbox.exec(start.argv, { mode: 'text', stdout: 'pipe', stderr: 'pipe' });
      } catch (error) {
        await sandbox.terminate().catch(() => undefined);
        throw error;
      }
      const pump = async (stream: ReadableStream<string>, sink: (chunk: string) => void) => {
        const reader = stream.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          sink(value);
        }
      };
      void Promise.all([pump(process.stdout, start.onStdout), pump(process.stderr, start.onStderr)])
        .catch(() => undefined)
        .then(() => process.wait())
        .then(
          (code: number) => end(code, `exited with code ${code}`),
          (error: Error) => end(null, `lost: ${error.message}`),
        );
      const stdin = process.stdin;
      let terminated: Promise<void> | undefined;
      return {
        providerId: sandbox.sandboxId,
        async write(text) {
          await stdin.writeText(text);
        },
        async interrupt(pid: number) {
          if (ended) return false;
          const killer = await sandbox.exec(['kill', '-INT', String(Math.trunc(pid))], { stdout: 'ignore', stderr: 'ignore' });
          return (await killer.wait()) === 0;
        },
        async kill() {
          terminated ??= sandbox.terminate().catch(() => undefined);
          await terminated;
          end(null, 'sandbox terminated');
        },
      };
    },
  };
}
