/**
 * The e2b provider (official `e2b` SDK): one e2b sandbox per REPL, the runtime as a
 * background command with stdin kept open. The SDK is loaded on first use, so a proxy
 * without e2b installed still runs its other providers.
 */
import type { SandboxProcess, SandboxProvider, StartOptions } from '../types.js';

export interface E2BProviderOptions {
  /** E2B API key. Default: E2B_API_KEY. */
  apiKey?: string | undefined;
  /** Sandbox template (it needs python3). Default: e2b's base template. */
  template?: string | undefined;
  /** Extra connection options passed to Sandbox.create (domain, apiUrl, sandboxUrl, requestTimeoutMs...). */
  connection?: Record<string, unknown> | undefined;
  /** The SDK module, for tests. Default: import('e2b'). */
  _sdk?: typeof import('e2b') | undefined;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function createE2BProvider(options: E2BProviderOptions = {}): SandboxProvider {
  return {
    name: 'e2b',
    async start(start: StartOptions): Promise<SandboxProcess> {
      const { Sandbox } = options._sdk ?? (await import('e2b'));
      const opts = { ...options.connection, ...(options.apiKey ? { apiKey: options.apiKey } : {}), timeoutMs: start.lifetimeMs };
      const sandbox = options.template ? await Sandbox.create(options.template, opts) : await Sandbox.create(opts);
      let ended = false;
      const end = (code: number | null, detail: string) => {
        if (ended) return;
        ended = true;
        start.onExit(code, detail);
      };
      let handle;
      try {
        handle = await sandbox.commands.run(start.argv.map(shellQuote).join(' '), {
          background: true,
          stdin: true,
          timeoutMs: 0,
          onStdout: (data: string) => start.onStdout(data),
          onStderr: (data: string) => start.onStderr(data),
        });
      } catch (error) {
        await sandbox.kill().catch(() => undefined);
        throw error;
      }
      const pid = handle.pid;
      let deleted: Promise<unknown> | undefined;
      handle.wait().then(
        (result) => end(result.exitCode, `exited with code ${result.exitCode}`),
        (error: { exitCode?: number; message?: string }) => end(error.exitCode ?? null, error.exitCode !== undefined ? `exited with code ${error.exitCode}` : `lost: ${error.message ?? error}`),
      );
      return {
        providerId: sandbox.sandboxId,
        async write(text) {
          await sandbox.commands.sendStdin(pid, text);
        },
        async interrupt(inner: number) {
          if (ended) return false;
          const result = await sandbox.commands.run(`kill -INT ${Math.trunc(inner)}`, { timeoutMs: 10_000 });
          return result.exitCode === 0;
        },
        async kill() {
          deleted ??= sandbox.kill().catch(() => undefined);
          await deleted;
          end(null, 'sandbox deleted');
        },
      };
    },
  };
}
