/**
 * The rlm-web proxy: an HTTP server (node:http) between pages and sandboxes. It holds the
 * provider credentials, checks a bearer token in constant time, answers CORS only for the
 * allowed origins, bounds bodies (size and time), connections, sandbox counts, lifetimes and
 * protocol lines, and relays each cell's sub-call requests to the page as server-sent events.
 * Routes, bodies and events: src/protocol/proxy.ts.
 *
 * Nothing a client or a sandbox sends may take the proxy down: a request that fails gets an
 * error reply (and its connection closed when its body was not read), a sandbox that misbehaves
 * is ended on its own.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import {
  formatCellEvent,
  HEALTH_PATH,
  HEARTBEAT_MS,
  parseAnswerRequest,
  parseCreateSandboxRequest,
  parseRegisterToolsRequest,
  parseResolveRequest,
  parseRunCellRequest,
  parseSandboxPath,
  parseSetVariableRequest,
  ProtocolError,
  SANDBOXES_PATH,
  SSE_HEARTBEAT,
  type CellEvent,
  type ErrorBody,
  type ErrorCode,
  type HealthResponse,
  type SandboxCreated,
  type SandboxListing,
} from '../protocol/proxy.js';
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
  /** Concurrent connections (cell streams included); more are refused at once. Default: 256. */
  maxConnections?: number | undefined;
  /** Time to receive a request's headers. Default: 20 000 ms. */
  headersTimeoutMs?: number | undefined;
  /** A JSON body must arrive within this time, and a context upload may pause at most this long. Default: 30 000 ms. */
  bodyTimeoutMs?: number | undefined;
  /** After the page of a running cell disconnects, the cell is interrupted, then its sandbox killed if it still runs this much later. Default: 10 000 ms. */
  abandonedCellGraceMs?: number | undefined;
  /** Longest protocol line a sandbox may write (its results, its sub-call requests); a longer one ends that sandbox. Default: 64 Mi characters. */
  maxLineChars?: number | undefined;
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
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Shortest token accepted at all. */
const MIN_TOKEN_CHARS = 8;
/** Shortest token accepted when the proxy listens on an address other than loopback. */
export const MIN_PUBLIC_TOKEN_CHARS = 32;
/** How long a connection closed after an error reply still has its unread bytes discarded. */
const LINGER_MS = 1000;

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** 127.0.0.0/8, ::1, localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost' || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return /^::ffff:127\./i.test(bare);
}

/** Ends a connection whose request body was not read, discarding briefly what still arrives. */
function closeUnread(req: IncomingMessage): void {
  const socket = req.socket;
  req.resume();
  socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** A request body's chunks; 408 when none arrives for `idleMs` or the whole body is not in by `deadline`. */
async function* timedBody(req: IncomingMessage, idleMs: number, deadline = Infinity): AsyncGenerator<Buffer> {
  const iterator = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    const wait = Math.min(idleMs, deadline - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HttpError(408, 'body_timeout', `The request body did not arrive in time (the proxy waits ${idleMs} ms).`)), Math.max(0, wait));
    });
    const next = iterator.next();
    next.catch(() => undefined);
    try {
      const result = await Promise.race([next, timeout]);
      if (result.done) return;
      yield result.value;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function createProxyServer(options: ProxyOptions): ProxyServer {
  if (options.tokens.length === 0 || options.tokens.some((t) => t.length < MIN_TOKEN_CHARS)) {
    throw new Error(`rlm-web-proxy needs at least one token of ${MIN_TOKEN_CHARS} or more characters (--token-file, RLM_PROXY_TOKEN); use ${MIN_PUBLIC_TOKEN_CHARS} or more random characters.`);
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
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 30_000;
  const abandonedCellGraceMs = options.abandonedCellGraceMs ?? 10_000;
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

  /** A JSON reply. When the request's body was not read (an early error), the connection closes after it. */
  function send(res: ServerResponse, status: number, body: object | undefined, headers: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const text = body === undefined ? '' : JSON.stringify(body);
    const close = res.req.complete ? {} : { connection: 'close' };
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers, ...close });
    res.end(text);
  }

  function sendError(res: ServerResponse, failure: HttpError, cors: Record<string, string>): void {
    const body: ErrorBody = { error: { code: failure.code, message: failure.message } };
    send(res, failure.status, body, cors);
  }

  /** The whole body as parsed JSON (undefined when empty), within the size and time limits. */
  async function readJSON(req: IncomingMessage): Promise<unknown> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) throw new HttpError(413, 'body_too_large', `The body is over the proxy's limit of ${maxBodyBytes} bytes.`);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of timedBody(req, bodyTimeoutMs, Date.now() + bodyTimeoutMs)) {
      total += chunk.length;
      if (total > maxBodyBytes) throw new HttpError(413, 'body_too_large', `The body is over the proxy's limit of ${maxBodyBytes} bytes.`);
      chunks.push(chunk);
    }
    if (total === 0) return undefined;
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
      throw new HttpError(400, 'bad_json', 'The body must be JSON.');
    }
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
    if (error instanceof ProtocolError) return new HttpError(400, 'bad_request', error.message);
    if (error instanceof BodyTooLarge) return new HttpError(413, 'body_too_large', `The context is over the proxy's limit of ${error.limit} bytes.`);
    if (error instanceof SandboxFailure) {
      if (error.code === 'command_failed') return new HttpError(422, 'python_error', `${error.errorType ?? 'Error'}: ${error.message}`);
      return new HttpError(410, error.code, `The sandbox is gone: ${error.message}`);
    }
    return new HttpError(500, 'internal', 'The proxy failed; see its logs.');
  }

  // ---------------------------------------------------------------- sandboxes

  async function createSandbox(owner: string, body: unknown, res: ServerResponse, cors: Record<string, string>): Promise<void> {
    const name = parseCreateSandboxRequest(body).provider ?? defaultProvider;
    // Own properties only: 'constructor' or '__proto__' name no provider.
    const provider = Object.hasOwn(options.providers, name) ? options.providers[name] : undefined;
    if (!provider) throw new HttpError(400, 'unknown_provider', `This proxy has no provider '${name.slice(0, 100)}'; it has: ${providerNames.join(', ')}.`);
    const count = counts.get(owner) ?? 0;
    if (count >= maxPerToken) {
      throw new HttpError(429, 'too_many_sandboxes', `This token already has ${count} sandboxes (the proxy's limit is ${maxPerToken}). Close unused REPLs (rlm.close()) or wait for idle ones to be reaped.`);
    }
    counts.set(owner, count + 1);
    const id = randomBytes(24).toString('base64url');
    const sandbox = new Sandbox(id, name, owner, onEnded, { maxLineChars: options.maxLineChars });
    sandboxes.set(id, sandbox);
    const started = performance.now();
    try {
      const info = await sandbox.start(provider, maxLifetimeMs, startTimeoutMs);
      const bootMs = performance.now() - started;
      log('info', 'sandbox started', { sandbox: shortId(id), provider: name, providerId: sandbox.providerId, bootMs: Math.round(bootMs) });
      const created: SandboxCreated = { id, provider: name, python: info.python, bootMs, interruptible: true, idleTimeoutMs, maxLifetimeMs };
      send(res, 201, created, cors);
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

  async function runCell(sandbox: Sandbox, code: string, res: ServerResponse, cors: Record<string, string>): Promise<void> {
    if (sandbox.running) throw new HttpError(409, 'busy', 'A cell is already running in this sandbox.');
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', ...cors });
    res.flushHeaders();
    const event = (e: CellEvent) => {
      if (!res.writableEnded) res.write(formatCellEvent(e));
    };
    const heartbeat = setInterval(() => res.writableEnded || res.write(SSE_HEARTBEAT), HEARTBEAT_MS);
    let finished = false;
    res.on('close', () => {
      if (finished) return;
      // The page went away mid-cell: nobody will answer its sub-calls, so stop it (and kill it if it will not stop).
      log('warn', 'page disconnected during a cell', { sandbox: shortId(sandbox.id) });
      void sandbox.abandonCell('the page disconnected', abandonedCellGraceMs).catch(() => undefined);
    });
    const started = performance.now();
    try {
      const output = await sandbox.execute(code, {
        request: (seq, request) => event({ type: 'request', data: { seq, request } }),
        output: (stream, text) => event({ type: 'output', data: { stream, text } }),
      });
      event({ type: 'result', data: output });
      log('debug', 'cell finished', { sandbox: shortId(sandbox.id), ms: Math.round(performance.now() - started) });
    } catch (error) {
      const failure = failureStatus(error);
      event({ type: 'error', data: { code: failure.code, message: failure.message } });
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

    if (path === HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      // Public and harmless: lets a refused page learn why its requests fail.
      const health: HealthResponse = { ok: true, version: PROXY_VERSION, providers: providerNames, originAllowed: originAllowed(origin) };
      send(res, 200, health, { 'access-control-allow-origin': '*' });
      return;
    }
    if (!originAllowed(origin)) {
      log('warn', 'origin refused', { origin: origin!.slice(0, 200), method: req.method, path: path.slice(0, 100) });
      sendError(res, new HttpError(403, 'origin_not_allowed', "This origin is not in the proxy's --allowed-origins."), {});
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
      if (path === SANDBOXES_PATH) {
        if (req.method === 'POST') return await createSandbox(owner, await readJSON(req), res, cors);
        if (req.method === 'GET') {
          const own = [...sandboxes.values()].filter((s) => s.owner === owner);
          const listing: SandboxListing = { sandboxes: own.map((s) => ({ id: s.id, provider: s.providerName, ageMs: Date.now() - s.createdAt, idleMs: Date.now() - s.lastActive, running: s.running })) };
          return send(res, 200, listing, cors);
        }
      }
      const target = parseSandboxPath(path);
      if (!target) throw new HttpError(404, 'not_found', `No route ${req.method} ${path.slice(0, 100)}.`);
      const sandbox = ownSandbox(owner, target.id);
      sandbox.lastActive = Date.now();
      const { action, index } = target;
      if (action === undefined && req.method === 'DELETE') {
        await sandbox.kill(new SandboxFailure('deleted by its page', 'killed'));
        release(sandbox);
        return send(res, 200, { deleted: true }, cors);
      }
      if (action === 'contexts' && index !== undefined && req.method === 'PUT') {
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > maxContextBytes) throw new HttpError(413, 'body_too_large', `The context is over the proxy's limit of ${maxContextBytes} bytes.`);
        const kind = url.searchParams.get('kind') === 'json' ? 'json' : 'text';
        const description = await sandbox.uploadContext(index, kind, timedBody(req, bodyTimeoutMs), maxContextBytes);
        return send(res, 200, description, cors);
      }
      if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed here.`);
      const body = await readJSON(req);
      switch (action) {
        case 'cells':
          return await runCell(sandbox, parseRunCellRequest(body).code, res, cors);
        case 'answers': {
          const { seq, reply } = parseAnswerRequest(body);
          if (!(await sandbox.answer(seq, reply))) throw new HttpError(409, 'not_waiting', 'That sub-call is not waiting for an answer (its cell ended).');
          return send(res, 200, { ok: true }, cors);
        }
        case 'interrupt':
          return send(res, 200, { status: await sandbox.interrupt() }, cors);
        case 'variables': {
          const { name, valueJSON, reserved } = parseSetVariableRequest(body);
          await sandbox.command('set_variable', { name, value_json: valueJSON, reserved });
          return send(res, 200, { ok: true }, cors);
        }
        case 'tools': {
          for (const tool of parseRegisterToolsRequest(body).tools) {
            await sandbox.command('register_tool', { name: tool.name, kind: tool.kind, value_json: tool.valueJSON ?? null });
          }
          return send(res, 200, { ok: true }, cors);
        }
        case 'resolve':
          return send(res, 200, { value: await sandbox.command('resolve_variable', { name: parseResolveRequest(body).name }) }, cors);
        case 'reset':
          await sandbox.command('reset', {});
          return send(res, 200, { ok: true }, cors);
        default:
          throw new HttpError(404, 'not_found', `No route ${req.method} ${path.slice(0, 100)}.`);
      }
    } catch (error) {
      const failure = failureStatus(error);
      if (failure.status >= 500) log('error', 'request failed', { method: req.method, error: (error as Error).message?.slice(0, 500) });
      sendError(res, failure, cors);
    }
  }

  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    // An error reply sent before the body was read closes the connection: an unread upload,
    // or a slow body from a client without a token, must not keep the socket.
    res.on('finish', () => {
      if (!req.complete) closeUnread(req);
    });
    route(req, res).catch((error: unknown) => {
      log('error', 'request failed', { method: req.method, error: (error as Error)?.message?.slice(0, 500) });
      sendError(res, new HttpError(500, 'internal', 'The proxy failed; see its logs.'), {});
    });
  });
  // Bodies have their own timeouts (timedBody): uploads may be long, cell streams longer.
  server.requestTimeout = 0;
  server.headersTimeout = options.headersTimeoutMs ?? 20_000;
  server.maxConnections = options.maxConnections ?? 256;

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
      if (!isLoopbackHost(host)) {
        const unsafe = Object.entries(options.providers).filter(([, p]) => p.unsafe).map(([name]) => name);
        if (unsafe.length > 0) {
          return Promise.reject(new Error(`rlm-web-proxy will not listen on ${host}: the ${unsafe.join(', ')} provider runs code without a sandbox (--unsafe-no-sandbox), which is allowed on loopback (127.0.0.1) only. Install bubblewrap instead.`));
        }
        if (options.tokens.some((t) => t.length < MIN_PUBLIC_TOKEN_CHARS)) {
          return Promise.reject(new Error(`rlm-web-proxy will not listen on ${host} with a token shorter than ${MIN_PUBLIC_TOKEN_CHARS} characters. Make one with: openssl rand -base64 32`));
        }
      }
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
