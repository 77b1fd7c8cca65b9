/**
 * The local provider: the runtime as a python3 subprocess of the proxy. For self-hosting
 * on a machine you trust to run LM-written code (a container, a VM) and for tests. It is
 * not a sandbox: the process has the proxy user's rights, minus the proxy's environment.
 */
import { spawn } from 'node:child_process';
import type { SandboxProcess, SandboxProvider, StartOptions } from '../types.js';

export interface LocalProviderOptions {
  /** The Python executable. Default: the first argv word, python3. */
  python?: string | undefined;
  /** Working directory of the processes. Default: the system temp folder. */
  cwd?: string | undefined;
}

export function createLocalProvider(options: LocalProviderOptions = {}): SandboxProvider {
  return {
    name: 'local',
    async start(start: StartOptions): Promise<SandboxProcess> {
      const [command, ...args] = start.argv;
      // A minimal environment: the proxy's own (tokens, provider keys) must not leak in.
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', LANG: 'C.UTF-8' };
      const child = spawn(options.python ?? command ?? 'python3', args, {
        cwd: options.cwd ?? (process.env.TMPDIR || '/tmp'),
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group, so that kill() also ends whatever the cell's code spawned.
        detached: true,
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => start.onStdout(chunk));
      child.stderr.on('data', (chunk: string) => start.onStderr(chunk));
      child.stdin.on('error', () => undefined); // EPIPE after a crash: reported by 'exit'
      let exited = false;
      child.once('exit', (code, signal) => {
        exited = true;
        start.onExit(code, signal ? `killed by ${signal}` : `exited with code ${code}`);
      });
      return {
        providerId: `pid-${child.pid}`,
        write(text) {
          return new Promise<void>((resolve, reject) => {
            if (exited || !child.stdin.writable) {
              reject(new Error('the process has exited'));
              return;
            }
            child.stdin.write(text, (error) => (error ? reject(error) : resolve()));
          });
        },
        async interrupt() {
          if (exited) return false;
          return child.kill('SIGINT');
        },
        async kill() {
          if (exited) return;
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            child.kill('SIGKILL');
          }
          await new Promise<void>((resolve) => (exited ? resolve() : child.once('exit', () => resolve())));
        },
      };
    },
  };
}
