#!/usr/bin/env node
/**
 * rlm-web-proxy: the thin proxy between rlm-web pages and remote sandboxes.
 *
 *   npx rlm-web-proxy --port 8787 --token-file /etc/rlm-web-proxy/tokens --allowed-origins https://app.example.com
 *
 * Every flag has an environment variable (flags win). Provider credentials come only from
 * the environment: E2B_API_KEY for e2b, MODAL_TOKEN_ID / MODAL_TOKEN_SECRET for Modal.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger, type Logger, type LogLevel } from './log.js';
import { createProviders } from './providers/index.js';
import { createProxyServer } from './server.js';

const HELP = `rlm-web-proxy: remote Python sandboxes for rlm-web pages

Options (environment variable in brackets):
  --port <n>                 port to listen on (0 = any free one)     [RLM_PROXY_PORT]  default 8787
  --host <addr>              address to listen on                     [RLM_PROXY_HOST]  default 127.0.0.1
  --token-file <path>        bearer tokens, one per line (# comments) [RLM_PROXY_TOKEN_FILE]
  --token <t>                bearer token; repeat or comma-separate   [RLM_PROXY_TOKEN]
                             (a token on the command line is visible to every local user: prefer the file)
                             A token is required; 32+ characters unless --host is loopback.
  --allowed-origins <list>   comma-separated page origins, or *       [RLM_PROXY_ALLOWED_ORIGINS]
  --providers <list>         providers to enable: local,e2b,modal     [RLM_PROXY_PROVIDERS] default: e2b/modal
                             when their credentials are set, else local
  --max-sandboxes <n>        concurrent sandboxes per token           [RLM_PROXY_MAX_SANDBOXES] default 4
  --idle-timeout <ms>        delete sandboxes idle this long          [RLM_PROXY_IDLE_TIMEOUT_MS] default 600000
  --max-lifetime <ms>        delete sandboxes older than this         [RLM_PROXY_MAX_LIFETIME_MS] default 3600000
  --max-body <bytes>         largest JSON body                        [RLM_PROXY_MAX_BODY_BYTES] default 16777216
  --max-context <bytes>      largest context upload                   [RLM_PROXY_MAX_CONTEXT_BYTES] default 2147483648
  --max-connections <n>      concurrent connections                   [RLM_PROXY_MAX_CONNECTIONS] default 256
  --sandbox-network          let code in sandboxes (local, e2b, Modal) [RLM_PROXY_SANDBOX_NETWORK=1] default off
                             reach the network
  --unsafe-no-sandbox        let the local provider run Python WITHOUT bubblewrap: no isolation at all,
                             loopback only, for a throwaway machine   [RLM_PROXY_UNSAFE_NO_SANDBOX=1]
  --log-level <level>        debug | info | warn | error              [RLM_PROXY_LOG_LEVEL] default info
  --help

Provider settings (environment only): E2B_API_KEY, RLM_PROXY_E2B_TEMPLATE; MODAL_TOKEN_ID,
MODAL_TOKEN_SECRET, RLM_PROXY_MODAL_APP (default rlm-web), RLM_PROXY_MODAL_IMAGE
(default python:3.11-slim); RLM_PROXY_PYTHON for the local provider (default python3).
The local provider runs Python under bubblewrap (apt-get install bubblewrap); RLM_PROXY_BWRAP
names its executable (default /usr/bin/bwrap, else bwrap on PATH).
`;

function list(value: string | string[] | undefined): string[] {
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function number(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number (got '${value}').`);
  return n;
}

function flag(value: boolean | undefined, env: string | undefined): boolean {
  return value === true || env === '1' || env === 'true';
}

/** Tokens from a file: one per line, blank lines and # comments skipped. */
function readTokenFile(path: string, log: Logger): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Cannot read the token file ${path}: ${(error as Error).message}`);
  }
  if ((statSync(path).mode & 0o077) !== 0) log('warn', 'the token file is readable by other users of this machine: chmod 600 it', { path });
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      token: { type: 'string', multiple: true },
      'token-file': { type: 'string' },
      'allowed-origins': { type: 'string', multiple: true },
      providers: { type: 'string' },
      'max-sandboxes': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'max-lifetime': { type: 'string' },
      'max-body': { type: 'string' },
      'max-context': { type: 'string' },
      'max-connections': { type: 'string' },
      'unsafe-no-sandbox': { type: 'boolean' },
      'log-level': { type: 'string' },
      'sandbox-network': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const env = process.env;
  const level = (values['log-level'] ?? env.RLM_PROXY_LOG_LEVEL ?? 'info') as LogLevel;
  const log = createLogger(level);
  if (values.token) log('warn', 'a token given with --token is visible to every user of this machine (ps, /proc/<pid>/cmdline): use --token-file or RLM_PROXY_TOKEN');
  const tokenFile = values['token-file'] ?? env.RLM_PROXY_TOKEN_FILE;
  const tokens = [...list(values.token ?? env.RLM_PROXY_TOKEN), ...(tokenFile ? readTokenFile(tokenFile, log) : [])];
  if (tokens.length === 0) throw new Error('A bearer token is required: --token-file <path> (one token per line) or RLM_PROXY_TOKEN. Make one with: openssl rand -base64 32');
  const providerEnv = values['sandbox-network'] ? { ...env, RLM_PROXY_SANDBOX_NETWORK: '1' } : env;
  const providers = await createProviders(list(values.providers ?? env.RLM_PROXY_PROVIDERS), providerEnv, log, {
    unsafeNoSandbox: flag(values['unsafe-no-sandbox'], env.RLM_PROXY_UNSAFE_NO_SANDBOX),
  });
  const proxy = createProxyServer({
    tokens,
    allowedOrigins: list(values['allowed-origins'] ?? env.RLM_PROXY_ALLOWED_ORIGINS),
    providers,
    maxSandboxesPerToken: number('max-sandboxes', values['max-sandboxes'] ?? env.RLM_PROXY_MAX_SANDBOXES),
    idleTimeoutMs: number('idle-timeout', values['idle-timeout'] ?? env.RLM_PROXY_IDLE_TIMEOUT_MS),
    maxLifetimeMs: number('max-lifetime', values['max-lifetime'] ?? env.RLM_PROXY_MAX_LIFETIME_MS),
    maxBodyBytes: number('max-body', values['max-body'] ?? env.RLM_PROXY_MAX_BODY_BYTES),
    maxContextBytes: number('max-context', values['max-context'] ?? env.RLM_PROXY_MAX_CONTEXT_BYTES),
    maxConnections: number('max-connections', values['max-connections'] ?? env.RLM_PROXY_MAX_CONNECTIONS),
    logger: log,
  });
  await proxy.listen(number('port', values.port ?? env.RLM_PROXY_PORT) ?? 8787, values.host ?? env.RLM_PROXY_HOST ?? '127.0.0.1');
  const stop = (signal: string) => {
    log('info', 'shutting down', { signal });
    proxy.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: (error as Error).message })}\n`);
  process.exit(1);
});
