/**
 * rlm-web-proxy for e2e tests: in-process from src/proxy (so tests can look at its
 * sandboxes), or as the built CLI (dist/proxy/cli.js) to test flags and environment.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createLocalProvider, createProxyServer, type ProxyOptions, type ProxyServer } from '../../src/proxy/index.js';
import { ISOLATED_ORIGIN, PLAIN_ORIGIN } from './ports';

export const PROXY_TOKEN = 'e2e-proxy-token-0123456789';

export interface TestProxy {
  url: string;
  proxy: ProxyServer;
  /** Log lines the proxy wrote (JSON objects). */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startProxy(options: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const logs: Record<string, unknown>[] = [];
  const proxy = createProxyServer({
    tokens: [PROXY_TOKEN],
    allowedOrigins: [PLAIN_ORIGIN, ISOLATED_ORIGIN],
    providers: { local: createLocalProvider() },
    logger: (level, msg, fields) => logs.push({ level, msg, ...fields }),
    ...options,
  });
  const url = await proxy.listen(0, '127.0.0.1');
  return { url, proxy, logs, close: () => proxy.close() };
}

export interface CLIProxy {
  url: string;
  child: ChildProcess;
  output: string[];
  close(): Promise<void>;
}

/** Starts `node dist/proxy/cli.js` with flags and env; resolves once it listens. */
export async function startCLIProxy(args: string[], env: Record<string, string> = {}): Promise<CLIProxy> {
  // `vite build` alone empties dist/: build the proxy (as `npm run build` does) when it is missing.
  if (!existsSync('dist/proxy/cli.js')) execFileSync('npm', ['run', 'build:proxy'], { stdio: 'ignore' });
  const child = spawn(process.execPath, ['dist/proxy/cli.js', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const output: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        output.push(line);
        const entry = JSON.parse(line) as { msg: string; url?: string };
        if (entry.msg === 'listening' && entry.url) resolve(entry.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`rlm-web-proxy exited with ${code}: ${output.join('\n')}`)));
  });
  return {
    url,
    child,
    output,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
