/**
 * The rlm-web proxy: an HTTP server (node:http) between pages and sandboxes. It holds the
 * provider credentials, checks a bearer token in constant time, answers CORS only for the
 * allowed origins, bounds bodies, sandbox counts and lifetimes, and relays each cell's
 * sub-call requests to the page as server-sent events.
 *
 * Endpoints (all but /health need `Authorization: Bearer <token>`):
 *   GET    /health                              {ok, version, providers, originAllowed}
 *   GET    /v1/sandboxes                        the caller's sandboxes
 *   POST   /v1/sandboxes                        {provider} → {id, provider, python, bootMs, interruptible}
 *   DELETE /v1/sandboxes/:id
 *   PUT    /v1/sandboxes/:id/contexts/:index?kind=text|json    raw UTF-8 body, streamed
 *   POST   /v1/sandboxes/:id/variables          {name, valueJSON, reserved}
 *   POST   /v1/sandboxes/:id/tools              {tools: [{name, kind, valueJSON?}]}
 *   POST   /v1/sandboxes/:id/resolve            {name} → {value}
 *   POST   /v1/sandboxes/:id/reset
 *   POST   /v1/sandboxes/:id/cells              {code} → text/event-stream: request*, then result | error
 *   POST   /v1/sandboxes/:id/answers            {seq, reply}
 *   POST   /v1/sandboxes/:id/interrupt
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, shortId, type Logger } from './log.js';
import { BodyTooLarge, Sandbox, SandboxFailure } from './sandbox.js';
import type { SandboxProvider } from './types.js';

export const PROXY_VERSION = '0.1.0';

export interface ProxyOptions {
  /** Bearer tokens accepted; each has its own sandbox quota. Required, non-empty. */
  tokens: string[];
  /** Page origins allowed to call the proxy (exact match, e.g. 'https://app.example.com'); '*' allows any. Default: none (only non-browser clients). */
  allowedOrigins?: string[] | undefined;
  /** Providers by name. */
  providers: Record<string, SandboxProvider>;
  /** Provider used when a request names none. Default: the first of `providers`. */
  defaultProvider?: string | undefined;
  /** Concurrent sandboxes per token. Default: 4. */
  maxSandboxesPerToken?: number | undefined;
  /** A sandbox with no request and no running cell for this long is deleted. Default: 600 000 ms. */
  idleTimeoutMs?: number | undefined;
  /** A sandbox older than this is deleted, running or not. Default: 3 600 000 ms. */
  maxLifetimeMs?: number | undefined;
  /** Largest JSON body (code, variables, sub-call answers). Default: 16 MiB. */
  maxBodyBytes?: number | undefined;
  /** Largest context upload. Default: 2 GiB. */
  maxContextBytes?: number | undefined;
  /** How long a sandbox may take to start. Default: 120 000 ms. */
  startTimeoutMs?: number | undefined;
  /** Where logs go. Default: JSON lines on stderr at level info. */
  logger?: Logger | undefined;
}

export interface ProxyServer {
  server: Server;
  /** Resolves with the URL the proxy listens on. */
  listen(port?: number, host?: string): Promise<string>;
  /** Deletes every sandbox and stops listening. */
  close(): Promise<void>;
  /** Live sandboxes (for tests and operators). */
  readonly sandboxCount: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const SANDBOX_ROUTE = /^\/v1\/sandboxes\/([A-Za-z0-9_-]{16,64})(?:\/([a-z]+)(?:\/(\d{1,6}))?)?$/;
const HEARTBEAT_MS = 15_000;

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function createProxyServer(options: ProxyOptions): ProxyServer {
  if (options.tokens.length === 0 || options.tokens.some((t) => t.length < 8)) {
    throw new Error('rlm-web-proxy needs at least one token of 8 or more characters (--token or RLM_PROXY_TOKEN).');
  }
  const providerNames = Object.keys(options.providers);
  if (providerNames.length === 0) throw new Error('rlm-web-proxy needs at least one provider.');
  const log = options.logger ?? createLogger();
  const tokenHashes = options.tokens.map(hashToken);
  const origins = new Set(options.allowedOrigins ?? []);
  const anyOrigin = origins.has('*');
  const maxPerToken = options.maxSandboxesPerToken ?? 4;
  const idleTimeoutMs = options.idleTimeoutMs ?? 600_000;
  const maxLifetimeMs = options.maxLifetimeMs ?? 3_600_000;
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const maxContextBytes = options.maxContextBytes ?? 2 * 1024 * 1024 * 1024;
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  const defaultProvider = options.defaultProvider ?? providerNames[0]!;
  const sandboxes = new Map<string, Sandbox>();
  /** Per token (by hash): sandboxes alive or starting. */
  const counts = new Map<string, number>();

  // ---------------------------------------------------------------- auth and CORS

  /** The owner key of the caller's token, or undefined. Compares every token, in constant time. */
  function authenticate(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const presented = hashToken(match ? match[1]! : '');
    let found: Buffer | undefined;
    for (const known of tokenHashes) {
      if (timingSafeEqual(presented, known)) found = known;
    }
    return found?.toString('hex');
  }

  function originAllowed(origin: string | undefined): boolean {
    return origin === undefined || anyOrigin || origins.has(origin);
  }

  function corsHeaders(origin: string | undefined): Record<string, string> {
    if (origin === undefined || !originAllowed(origin)) return {};
    return { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': 'content-type' };
  }

  // ---------------------------------------------------------------- helpers

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(text);
  }

  async function readJSON(req: IncomingMessage): Promise<Record<string, unknown>> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) throw new HttpError(413, 'body_too_large', `The body is over the proxy's limit of ${maxBodyBytes} bytes.`);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of req) {
      total += (chunk as Buffer).length;
      if (total > maxBodyBytes) throw new HttpError(413, 'body_too_large', `The body is over the proxy's limit of ${maxBodyBytes} bytes.`);
      chunks.push(chunk as Buffer);
    }
    if (total === 0) return {};
    try {
      const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'bad_json', 'The body must be a JSON object.');
    }
  }

  function stringField(body: Record<string, unknown>, name: string): string {
    const value = body[name];
    if (typeof value !== 'string') throw new HttpError(400, 'bad_request', `'${name}' must be a string.`);
    return value;
  }

  function release(sandbox: Sandbox): void {
    if (!sandboxes.delete(sandbox.id)) return;
    counts.set(sandbox.owner, Math.max(0, (counts.get(sandbox.owner) ?? 1) - 1));
  }

  function onEnded(sandbox: Sandbox, failure: SandboxFailure): void {
    const known = sandboxes.has(sandbox.id);
    release(sandbox);
    if (known) log(failure.code === 'crashed' ? 'warn' : 'info', 'sandbox ended', { sandbox: shortId(sandbox.id), provider: sandbox.providerName, reason: failure.code, ageMs: Date.now() - sandbox.createdAt });
  }

  function failureStatus(error: unknown): HttpError {
    if (error instanceof HttpError) return error;
    if (error instanceof BodyTooLarge) return new HttpError(413, 'body_too_large', `The context is over the proxy's limit of ${error.limit} bytes.`);
    if (error instanceof SandboxFailure) {
      if (error.code === 'command_failed') return new HttpError(422, 'python_error', `${error.errorType ?? 'Error'}: ${error.message}`);
      return new HttpError(410, error.code, `The sandbox is gone: ${error.message}`);
    }
    return new HttpError(500, 'internal', 'The proxy failed; see its logs.');
  }

  // ---------------------------------------------------------------- sandboxes

  async function createSandbox(owner: string, body: Record<string, unknown>, res: ServerResponse, cors: Record<string, string>): Promise<void> {
    const name = body.provider === undefined || body.provider === null ? defaultProvider : String(body.provider);
    const provider = options.providers[name];
    if (!provider) throw new HttpError(400, 'unknown_provider', `This proxy has no provider '${name}'; it has: ${providerNames.join(', ')}.`);
    const count = counts.get(owner) ?? 0;
    if (count >= maxPerToken) {
      throw new HttpError(429, 'too_many_sandboxes', `This token already has ${count} sandboxes (the proxy's limit is ${maxPerToken}). Close unused REPLs (rlm.close()) or wait for idle ones to be reaped.`);
    }
    counts.set(owner, count + 1);
    const id = randomBytes(24).toString('base64url');
    const sandbox = new Sandbox(id, name, owner, onEnded);
    sandboxes.set(id, sandbox);
    const started = performance.now();
    try {
      const info = await sandbox.start(provider, maxLifetimeMs, startTimeoutMs);
      const bootMs = performance.now() - started;
      log('info', 'sandbox started', { sandbox: shortId(id), provider: name, providerId: sandbox.providerId, bootMs: Math.round(bootMs) });
      send(res, 201, { id, provider: name, python: info.python, bootMs, interruptible: true, idleTimeoutMs, maxLifetimeMs }, cors);
    } catch (error) {
      log('error', 'sandbox failed to start', { provider: name, error: (error as Error).message.slice(0, 500) });
      await sandbox.kill(new SandboxFailure('start failed', 'start_failed')).catch(() => undefined);
      release(sandbox);
      throw new HttpError(502, 'start_failed', `The ${name} sandbox failed to start: ${(error as Error).message}`);
    }
  }

  function ownSandbox(owner: string, id: string): Sandbox {
    const sandbox = sandboxes.get(id);
    // Someone else's sandbox is reported exactly like a missing one.
    if (!sandbox || sandbox.owner !== owner) {
      throw new HttpError(404, 'sandbox_not_found', 'No such sandbox: it was deleted, reaped after being idle, or reached its maximum lifetime. Create a new one.');
    }
    return sandbox;
  }

  async function runCell(sandbox: Sandbox, code: string, req: IncomingMessage, res: ServerResponse, cors: Record<string, string>): Promise<void> {
    if (sandbox.running) throw new HttpError(409, 'busy', 'A cell is already running in this sandbox.');
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', ...cors });
    res.flushHeaders();
    const event = (type: string, data: unknown) => {
      if (!res.writableEnded) res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const heartbeat = setInterval(() => res.writableEnded || res.write(': ping\n\n'), HEARTBEAT_MS);
    let finished = false;
    res.on('close', () => {
      if (finished) return;
      // The page went away mid-cell: nobody will answer its sub-calls, so stop it.
      log('warn', 'page disconnected during a cell', { sandbox: shortId(sandbox.id) });
      void sandbox.abandonPending('the page disconnected');
      void sandbox.interrupt();
    });
    const started = performance.now();
    try {
      const output = await sandbox.execute(code, { request: (seq, request) => event('request', { seq, request }) });
      event('result', output);
      log('debug', 'cell finished', { sandbox: shortId(sandbox.id), ms: Math.round(performance.now() - started) });
    } catch (error) {
      const failure = failureStatus(error);
      event('error', { code: failure.code, message: failure.message });
    } finally {
      finished = true;
      clearInterval(heartbeat);
      res.end();
    }
  }

  // ---------------------------------------------------------------- routing

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const url = new URL(req.url ?? '/', 'http://proxy');
    const path = url.pathname;

    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      // Public and harmless: lets a refused page learn why its requests fail.
      send(res, 200, { ok: true, version: PROXY_VERSION, providers: providerNames, originAllowed: originAllowed(origin) }, { 'access-control-allow-origin': '*' });
      return;
    }
    if (!originAllowed(origin)) {
      log('warn', 'origin refused', { origin: origin!.slice(0, 200), method: req.method, path: path.slice(0, 100) });
      send(res, 403, { error: { code: 'origin_not_allowed', message: 'This origin is not in the proxy\'s --allowed-origins.' } });
      return;
    }
    const cors = corsHeaders(origin);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    try {
      const owner = authenticate(req);
      if (!owner) {
        log('warn', 'unauthorized request', { method: req.method, path: path.startsWith('/v1/sandboxes/') ? '/v1/sandboxes/:id' : path.slice(0, 100) });
        throw new HttpError(401, 'unauthorized', 'Missing or wrong bearer token.');
      }
      if (path === '/v1/sandboxes') {
        if (req.method === 'POST') return await createSandbox(owner, await readJSON(req), res, cors);
        if (req.method === 'GET') {
          const own = [...sandboxes.values()].filter((s) => s.owner === owner);
          return send(res, 200, { sandboxes: own.map((s) => ({ id: s.id, provider: s.providerName, ageMs: Date.now() - s.createdAt, idleMs: Date.now() - s.lastActive, running: s.running })) }, cors);
        }
      }
      const match = SANDBOX_ROUTE.exec(path);
      if (!match) throw new HttpError(404, 'not_found', `No route ${req.method} ${path.slice(0, 100)}.`);
      const sandbox = ownSandbox(owner, match[1]!);
      sandbox.lastActive = Date.now();
      const action = match[2];
      const index = match[3];
      if (action === undefined && req.method === 'DELETE') {
        await sandbox.kill(new SandboxFailure('deleted by its page', 'killed'));
        release(sandbox);
        return send(res, 200, { deleted: true }, cors);
      }
      if (action === 'contexts' && index !== undefined && req.method === 'PUT') {
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > maxContextBytes) throw new HttpError(413, 'body_too_large', `The context is over the proxy's limit of ${maxContextBytes} bytes.`);
        const kind = url.searchParams.get('kind') === 'json' ? 'json' : 'text';
        const description = await sandbox.uploadContext(Number(index), kind, req as AsyncIterable<Buffer>, maxContextBytes);
        return send(res, 200, description, cors);
      }
      if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed here.`);
      const body = await readJSON(req);
      switch (action) {
        case 'cells':
          return await runCell(sandbox, stringField(body, 'code'), req, res, cors);
        case 'answers': {
          const ok = await sandbox.answer(Number(body.seq), body.reply ?? { error: 'empty answer' });
          return send(res, ok ? 200 : 409, ok ? { ok } : { error: { code: 'not_waiting', message: 'That sub-call is not waiting for an answer (its cell ended).' } }, cors);
        }
        case 'interrupt':
          return send(res, 200, { status: await sandbox.interrupt() }, cors);
        case 'variables':
          await sandbox.command('set_variable', { name: stringField(body, 'name'), value_json: stringField(body, 'valueJSON'), reserved: Boolean(body.reserved) });
          return send(res, 200, { ok: true }, cors);
        case 'tools': {
          const tools = Array.isArray(body.tools) ? (body.tools as Record<string, unknown>[]) : [];
          for (const tool of tools) {
            await sandbox.command('register_tool', { name: stringField(tool, 'name'), kind: tool.kind === 'data' ? 'data' : 'function', value_json: typeof tool.valueJSON === 'string' ? tool.valueJSON : null });
          }
          return send(res, 200, { ok: true }, cors);
        }
        case 'resolve':
          return send(res, 200, { value: await sandbox.command('resolve_variable', { name: stringField(body, 'name') }) }, cors);
        case 'reset':
          await sandbox.command('reset');
          return send(res, 200, { ok: true }, cors);
        default:
          throw new HttpError(404, 'not_found', `No route ${req.method} ${path.slice(0, 100)}.`);
      }
    } catch (error) {
      const failure = failureStatus(error);
      if (failure.status >= 500) log('error', 'request failed', { method: req.method, error: (error as Error).message?.slice(0, 500) });
      send(res, failure.status, { error: { code: failure.code, message: failure.message } }, cors);
      // An unread upload must not keep the socket busy.
      if (!req.readableEnded) req.resume();
    }
  }

  const server = createServer((req, res) => {
    route(req, res).catch(() => send(res, 500, { error: { code: 'internal', message: 'The proxy failed; see its logs.' } }));
  });
  server.requestTimeout = 0; // context uploads and long cells are bounded by our own limits
  server.headersTimeout = 30_000;

  // ---------------------------------------------------------------- reaper

  const sweepMs = Math.max(250, Math.min(30_000, Math.floor(Math.min(idleTimeoutMs, maxLifetimeMs) / 4)));
  const reaper = setInterval(() => {
    const now = Date.now();
    for (const sandbox of [...sandboxes.values()]) {
      const expired = now - sandbox.createdAt > maxLifetimeMs;
      const idle = !sandbox.running && now - sandbox.lastActive > idleTimeoutMs;
      if (!expired && !idle) continue;
      log('info', 'reaping sandbox', { sandbox: shortId(sandbox.id), reason: expired ? 'max_lifetime' : 'idle' });
      const reason = expired ? `it reached the maximum lifetime of ${maxLifetimeMs} ms` : `it was idle for ${idleTimeoutMs} ms`;
      release(sandbox);
      void sandbox.kill(new SandboxFailure(reason, 'expired')).catch(() => undefined);
    }
  }, sweepMs);
  reaper.unref();

  return {
    server,
    get sandboxCount() {
      return sandboxes.size;
    },
    listen(port = 8787, host = '127.0.0.1') {
      return new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          const url = `http://${shown}:${address.port}`;
          log('info', 'listening', { url, providers: providerNames, allowedOrigins: [...origins], maxSandboxesPerToken: maxPerToken, idleTimeoutMs, maxLifetimeMs });
          resolve(url);
        });
      });
    },
    async close() {
      clearInterval(reaper);
      await Promise.all([...sandboxes.values()].map((s) => s.kill(new SandboxFailure('the proxy shut down', 'killed')).catch(() => undefined)));
      sandboxes.clear();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
