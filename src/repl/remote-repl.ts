/**
 * The page side of a remote sandbox: the same ReplEnvironment as the Pyodide REPL, but
 * Python runs behind rlm-web-proxy (e2b, Modal, or a local process). Each cell is a POST
 * whose response is a server-sent-event stream: sub-call requests (answered here, by the
 * page's own LM clients through the SubcallHost, so they count against the run's limits),
 * then the cell's result. Cell timeouts interrupt the remote process (KeyboardInterrupt,
 * state kept) and kill it when that does not take; a crashed or reaped sandbox is replaced
 * with its contexts, reserved variables and tools reloaded.
 */
import { ConfigurationError } from '../core/errors';
import type {
  CellResult,
  ContextInput,
  EnvironmentFactoryOptions,
  ExecuteOptions,
  HostReply,
  HostRequest,
  ReplEnvironment,
  ReplInfo,
  SubcallHost,
  ToolDefinition,
} from '../core/types';
import type { CellOutput, ContextDescription } from '../worker/protocol';
import { cellDeadline, restartedCellResult } from './cell-deadline';
import { encodeContext } from './context-bytes';
import {
  ProxyAuthenticationError,
  ProxyConnectionError,
  ProxyError,
  ProxyOriginError,
  ProxyQuotaError,
  SandboxCrashedError,
  SandboxExpiredError,
} from './remote-errors';

export interface RemoteEnvironmentOptions {
  /** The proxy's base URL, e.g. 'https://rlm-proxy.example.com'. Required. */
  proxyURL?: string | undefined;
  /** The proxy's bearer token. Required. */
  token?: string | undefined;
  /** 'local' | 'e2b' | 'modal' (what the proxy offers). Default: the proxy's default provider. */
  provider?: string | undefined;
  /** How long an interrupted cell may take to stop before its sandbox is replaced. Default: 3000 ms. */
  interruptGraceMs?: number | undefined;
  /** Timeout of every request but cells and context uploads (sandbox creation included: cloud cold starts). Default: 180 000 ms. */
  requestTimeoutMs?: number | undefined;
}

interface LoadedContext {
  index: number;
  context: ContextInput;
}

interface SandboxInfo {
  id: string;
  provider: string;
  python: string;
  bootMs: number;
  interruptible: boolean;
}

/** What a cell stream ended with. */
type CellEnd = { kind: 'result'; output: CellOutput } | { kind: 'failed'; code: string; message: string };

/** The proxy's error body: { error: { code, message } }. */
async function readError(response: Response): Promise<{ code: string; message: string }> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    return { code: body.error?.code ?? `http_${response.status}`, message: body.error?.message ?? response.statusText };
  } catch {
    return { code: `http_${response.status}`, message: response.statusText || `HTTP ${response.status}` };
  }
}

/**
 * A Python REPL in a remote sandbox behind rlm-web-proxy. Usually created for you by
 * `environment: 'remote'`; construct it directly to drive a sandbox yourself.
 *
 * @example
 * const rlm = new RLM({
 *   backend: 'openai', backendOptions: { model: 'gpt-5-nano', apiKey },
 *   environment: 'remote',
 *   environmentOptions: { proxyURL: 'https://rlm-proxy.example.com', token, provider: 'e2b' },
 * });
 */
export class RemoteRepl implements ReplEnvironment {
  private readonly baseURL: string;
  private readonly token: string;
  private sandbox: SandboxInfo | undefined;
  private booting: Promise<ReplInfo> | undefined;
  private current: ReplInfo | undefined;
  private readonly contexts: LoadedContext[] = [];
  private readonly variables = new Map<string, unknown>();
  private tools: ToolDefinition[] = [];
  private cellController: AbortController | undefined;
  private closed = false;

  constructor(
    private readonly host: SubcallHost,
    private readonly options: RemoteEnvironmentOptions = {},
  ) {
    if (!options.proxyURL) throw new ConfigurationError("environment 'remote' needs environmentOptions.proxyURL (where rlm-web-proxy listens).");
    if (!options.token) throw new ConfigurationError("environment 'remote' needs environmentOptions.token (the proxy's --token).");
    this.baseURL = options.proxyURL.replace(/\/+$/, '');
    this.token = options.token;
  }

  get info(): ReplInfo | undefined {
    return this.current;
  }

  /** The proxy's id of the current sandbox (undefined before start and after close). */
  get sandboxId(): string | undefined {
    return this.sandbox?.id;
  }

  start(): Promise<ReplInfo> {
    if (this.closed) return Promise.reject(new ProxyError('This REPL was closed.'));
    const booting = (this.booting ??= this.restore());
    booting.catch(() => {
      if (this.booting === booting) this.booting = undefined;
    });
    return booting;
  }

  // ---------------------------------------------------------------- HTTP

  private headers(json: boolean): Record<string, string> {
    return json ? { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' } : { authorization: `Bearer ${this.token}` };
  }

  /** Why a fetch failed without a response: the proxy is down, or it refuses this origin. */
  private async diagnose(error: unknown, what: string): Promise<ProxyError> {
    if (error instanceof ProxyError) return error;
    try {
      const response = await fetch(`${this.baseURL}/health`, { signal: AbortSignal.timeout(10_000) });
      const health = (await response.json()) as { originAllowed?: boolean };
      if (health.originAllowed === false) {
        return new ProxyOriginError(`The proxy at ${this.baseURL} does not allow requests from ${globalThis.location?.origin ?? 'this origin'}. Add it to the proxy's --allowed-origins (RLM_PROXY_ALLOWED_ORIGINS).`, 403, 'origin_not_allowed', { cause: error });
      }
    } catch {
      return new ProxyConnectionError(`Cannot reach rlm-web-proxy at ${this.baseURL} (${what}). Check environmentOptions.proxyURL and that the proxy is running.`, undefined, 'unreachable', { cause: error });
    }
    return new ProxyConnectionError(`The connection to rlm-web-proxy at ${this.baseURL} failed during ${what}: ${(error as Error).message ?? error}.`, undefined, 'connection_lost', { cause: error });
  }

  private async fromResponse(response: Response, what: string): Promise<ProxyError> {
    const { code, message } = await readError(response);
    if (response.status === 401) {
      return new ProxyAuthenticationError(`rlm-web-proxy refused the token (401) during ${what}. Set environmentOptions.token to one of the proxy's --token values (RLM_PROXY_TOKEN).`, 401, code);
    }
    if (response.status === 403 && code === 'origin_not_allowed') return new ProxyOriginError(message, 403, code);
    if (response.status === 429) return new ProxyQuotaError(message, 429, code);
    if (response.status === 404 && code === 'sandbox_not_found') return new SandboxExpiredError(message, 404, code);
    if (response.status === 410) return new SandboxCrashedError(message, 410, code);
    if (code === 'start_failed') return new SandboxCrashedError(message, response.status, code);
    return new ProxyError(`rlm-web-proxy answered ${response.status} to ${what}: ${message}`, response.status, code);
  }

  /** One JSON request; proxy errors become typed errors. */
  private async request(method: string, path: string, what: string, body?: BodyInit, json = true): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.baseURL}${path}`, {
        method,
        headers: this.headers(json && body !== undefined),
        ...(body !== undefined ? { body } : {}),
        // Context uploads may be gigabytes on a slow link: only a dropped connection ends them.
        ...(json ? { signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 180_000) } : {}),
      });
    } catch (error) {
      throw await this.diagnose(error, what);
    }
    if (!response.ok) throw await this.fromResponse(response, what);
    try {
      return await response.json();
    } catch (error) {
      throw new ProxyConnectionError(`The connection to rlm-web-proxy dropped while reading the answer to ${what}.`, response.status, 'connection_lost', { cause: error });
    }
  }

  private sandboxPath(suffix = ''): string {
    if (!this.sandbox) throw new SandboxExpiredError('The sandbox is not running.');
    return `/v1/sandboxes/${this.sandbox.id}${suffix}`;
  }

  /** Runs a sandbox command; if the sandbox has gone away (reaped, crashed), replaces it once and retries. */
  private async command(suffix: string, what: string, payload: unknown): Promise<unknown> {
    await this.start();
    try {
      return await this.request('POST', this.sandboxPath(suffix), what, JSON.stringify(payload));
    } catch (error) {
      if (!(error instanceof SandboxExpiredError || error instanceof SandboxCrashedError) || this.closed) throw error;
      this.forget();
      await this.start();
      return this.request('POST', this.sandboxPath(suffix), what, JSON.stringify(payload));
    }
  }

  // ---------------------------------------------------------------- lifecycle

  private async create(): Promise<ReplInfo> {
    const created = (await this.request('POST', '/v1/sandboxes', 'creating a sandbox', JSON.stringify(this.options.provider ? { provider: this.options.provider } : {}))) as SandboxInfo;
    this.sandbox = created;
    this.current = { bridge: 'remote', interruptible: created.interruptible, bootMs: created.bootMs, runtime: `${created.provider} sandbox, Python ${created.python}` };
    return this.current;
  }

  /** Creates a sandbox and puts back contexts, reserved variables and tools. */
  private async restore(): Promise<ReplInfo> {
    const info = await this.create();
    if (this.closed) {
      await this.deleteSandbox();
      throw new ProxyError('This REPL was closed.');
    }
    for (const c of [...this.contexts]) await this.sendContext(c.index, c.context);
    for (const [name, value] of [...this.variables]) {
      await this.request('POST', this.sandboxPath('/variables'), 'restoring variables', JSON.stringify({ name, valueJSON: JSON.stringify(value ?? null), reserved: true }));
    }
    if (this.tools.length > 0) await this.request('POST', this.sandboxPath('/tools'), 'registering tools', JSON.stringify({ tools: this.toolSpecs(this.tools) }));
    return info;
  }

  /** Drops the current sandbox locally (it is gone, or about to be deleted). */
  private forget(): void {
    this.sandbox = undefined;
    this.booting = undefined;
  }

  private async deleteSandbox(): Promise<void> {
    const sandbox = this.sandbox;
    this.forget();
    if (!sandbox) return;
    try {
      // keepalive: the request completes even if the page is being unloaded.
      await fetch(`${this.baseURL}/v1/sandboxes/${sandbox.id}`, { method: 'DELETE', headers: this.headers(false), keepalive: true, signal: AbortSignal.timeout(30_000) });
    } catch {
      // The proxy reaps it after its idle timeout anyway.
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cellController?.abort();
    await this.booting?.catch(() => undefined);
    await this.deleteSandbox();
  }

  // ---------------------------------------------------------------- state

  private async sendContext(index: number, context: ContextInput): Promise<ContextDescription> {
    const encoded = encodeContext(context);
    const body: BodyInit = 'blob' in encoded ? encoded.blob : (encoded.bytes as Uint8Array<ArrayBuffer>);
    return (await this.request('PUT', this.sandboxPath(`/contexts/${index}?kind=${encoded.kind}`), `uploading context_${index}`, body, false)) as ContextDescription;
  }

  async loadContext(index: number, context: ContextInput): Promise<ContextDescription> {
    await this.start();
    let description: ContextDescription;
    try {
      description = await this.sendContext(index, context);
    } catch (error) {
      if (!(error instanceof SandboxExpiredError || error instanceof SandboxCrashedError) || this.closed) throw error;
      this.forget();
      await this.start();
      description = await this.sendContext(index, context);
    }
    this.contexts.push({ index, context });
    return description;
  }

  private toolSpecs(tools: ToolDefinition[]): unknown[] {
    return tools.map((t) => (t.kind === 'data' ? { name: t.name, kind: 'data', valueJSON: JSON.stringify(t.value ?? null) } : { name: t.name, kind: 'function' }));
  }

  async registerTools(tools: ToolDefinition[]): Promise<void> {
    await this.command('/tools', 'registering tools', { tools: this.toolSpecs(tools) });
    this.tools = tools;
  }

  async setVariable(name: string, value: unknown, reserved: boolean): Promise<void> {
    await this.command('/variables', `setting ${name}`, { name, valueJSON: JSON.stringify(value ?? null), reserved });
    if (reserved) this.variables.set(name, value);
  }

  async resolveVariable(name: string): Promise<string | null> {
    const reply = (await this.command('/resolve', `resolving ${name}`, { name })) as { value: string | null };
    return reply.value ?? null;
  }

  async reset(): Promise<void> {
    this.contexts.length = 0;
    this.variables.clear();
    this.tools = [];
    await this.command('/reset', 'resetting the REPL', {});
  }

  // ---------------------------------------------------------------- cells

  async execute(code: string, options: ExecuteOptions): Promise<CellResult> {
    await this.start();
    const controller = new AbortController();
    this.cellController = controller;
    const started = performance.now();
    const deadline = cellDeadline(options.timeoutMs, options.signal);
    const stop = deadline.stop;
    const stream = new AbortController();
    const running = this.runCell(code, controller.signal, stream.signal);
    running.catch(() => undefined);
    try {
      const first = await Promise.race([running, stop]);
      if (typeof first === 'object') return this.finish(first, started);
      controller.abort(first === 'timeout' ? new DOMException('cell timeout', 'TimeoutError') : options.signal?.reason);
      return await this.stopCell(running, first, options.timeoutMs, started, stream);
    } finally {
      deadline.dispose();
      if (this.cellController === controller) this.cellController = undefined;
    }
  }

  /** Posts the cell and reads its event stream to the end, answering sub-calls on the way. */
  private async runCell(code: string, subcallSignal: AbortSignal, streamSignal: AbortSignal): Promise<CellEnd> {
    const path = this.sandboxPath('/cells');
    let response: Response;
    try {
      response = await fetch(`${this.baseURL}${path}`, { method: 'POST', headers: this.headers(true), body: JSON.stringify({ code }), signal: streamSignal });
    } catch (error) {
      throw await this.diagnose(error, 'running a cell');
    }
    if (!response.ok || !response.body) {
      const error = await this.fromResponse(response, 'running a cell');
      if (error instanceof SandboxExpiredError || error instanceof SandboxCrashedError) return { kind: 'failed', code: error.code ?? 'expired', message: error.message };
      throw error;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (error) {
          throw new ProxyConnectionError(`The connection to rlm-web-proxy was lost while a cell ran (${(error as Error).message}). The sandbox may still be running; it is deleted after the proxy's idle timeout.`, undefined, 'connection_lost', { cause: error });
        }
        if (chunk.done) break;
        buffer += chunk.value;
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length === 0) continue; // a heartbeat comment
          const payload = JSON.parse(data.join('\n')) as Record<string, unknown>;
          if (event === 'request') this.answer(Number(payload.seq), payload.request as HostRequest, subcallSignal);
          else if (event === 'result') return { kind: 'result', output: payload as unknown as CellOutput };
          else if (event === 'error') return { kind: 'failed', code: String(payload.code), message: String(payload.message) };
        }
      }
    } finally {
      reader.releaseLock();
    }
    throw new ProxyConnectionError('The connection to rlm-web-proxy closed before the cell finished. Check that nothing between the page and the proxy buffers or cuts long responses (server-sent events).', undefined, 'connection_lost');
  }

  /** Answers one sub-call request through the host, then posts the answer back. */
  private answer(seq: number, request: HostRequest, signal: AbortSignal): void {
    const sandbox = this.sandbox;
    void (async () => {
      let reply: HostReply;
      try {
        reply = await this.host.handle(request, signal);
      } catch (error) {
        reply = { error: (error as Error).message ?? String(error) };
      }
      if (!sandbox || this.sandbox !== sandbox) return;
      try {
        await fetch(`${this.baseURL}/v1/sandboxes/${sandbox.id}/answers`, { method: 'POST', headers: this.headers(true), body: JSON.stringify({ seq, reply }) });
      } catch {
        // The cell stream reports a lost connection.
      }
    })();
  }

  private finish(end: CellEnd, started: number, extra?: Partial<CellResult>): CellResult {
    if (end.kind === 'result') {
      const output = end.output;
      return {
        stdout: output.stdout,
        stderr: output.stderr,
        locals: output.locals,
        previews: output.previews,
        executionTimeMs: Math.max(output.execution_time * 1000, 0) || performance.now() - started,
        finalAnswer: output.final_answer,
        errorType: output.error_type,
        interrupted: output.interrupted,
        restarted: false,
        ...extra,
      };
    }
    // The sandbox died or was reaped: replace it now, so that the next LM call overlaps the start.
    this.forget();
    if (!this.closed) this.start().catch(() => undefined);
    const expired = end.code === 'expired' || end.code === 'sandbox_not_found';
    const errorType = expired ? 'SandboxExpiredError' : 'SandboxCrashedError';
    return restartedCellResult(
      errorType,
      `${end.message}\nA new sandbox was started with ${this.reloadedNames()} reloaded; every other variable was lost and must be recomputed.`,
      started,
    );
  }

  private reloadedNames(): string {
    const names = [...this.contexts.map((c) => (c.index === 0 ? 'context' : `context_${c.index}`)), ...this.variables.keys(), ...this.tools.map((t) => t.name)];
    return names.length > 0 ? [...new Set(names)].join(', ') : 'nothing';
  }

  private async stopCell(running: Promise<CellEnd>, why: 'timeout' | 'abort', timeoutMs: number, started: number, stream: AbortController): Promise<CellResult> {
    const reason = why === 'timeout' ? `the cell ran longer than cellTimeoutMs (${timeoutMs} ms)` : 'the run was stopped';
    const sandbox = this.sandbox;
    if (sandbox) {
      await this.request('POST', `/v1/sandboxes/${sandbox.id}/interrupt`, 'interrupting a cell', '{}').catch(() => undefined);
      const grace = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), this.options.interruptGraceMs ?? 3000));
      const end = await Promise.race([running.catch(() => undefined), grace]);
      if (end?.kind === 'result') {
        return this.finish(end, started, {
          stderr: `${end.output.stderr}KeyboardInterrupt: ${reason}, so it was interrupted. Variables set before that point are kept.\n`,
          errorType: 'KeyboardInterrupt',
          interrupted: true,
        });
      }
    }
    // The interrupt did not take: replace the sandbox.
    stream.abort();
    await this.deleteSandbox();
    if (why === 'timeout' && !this.closed) this.start().catch(() => undefined);
    return restartedCellResult(
      'TimeoutError',
      `${reason}, and it did not stop when interrupted, so its sandbox was replaced. ${this.reloadedNames()} were reloaded; every other variable was lost and must be recomputed.`,
      started,
    );
  }
}

export function createRemoteEnvironment(options: EnvironmentFactoryOptions): ReplEnvironment {
  return new RemoteRepl(options.host, options.environmentOptions as RemoteEnvironmentOptions);
}
