/**
 * Python in a sandbox behind rlm-web-proxy (e2b, Modal, or a local process), over HTTP.
 * Each cell is a POST whose response is a server-sent-event stream: sub-call requests
 * (answered by the page, then posted back), then the cell's result. Routes, bodies and the
 * event parser are the proxy protocol's (src/protocol/proxy.ts); proxy errors become the
 * typed errors of remote-errors.ts.
 */
import { ConfigurationError } from '../core/errors';
import type { ExecuteOptions, ReplInfo } from '../core/types';
import {
  CellEventParser,
  contextPath,
  HEALTH_PATH,
  parseErrorBody,
  SANDBOXES_PATH,
  sandboxPath,
  type AnswerRequest as AnswerBody,
  type CellEvent,
  type CreateSandboxRequest,
  type HealthResponse,
  type RegisterToolsRequest,
  type ResolveRequest,
  type ResolveResponse,
  type RunCellRequest,
  type SandboxAction,
  type SandboxCreated,
  type SetVariableRequest,
} from '../protocol/proxy';
import type { ContextDescription, HostRequest, ToolSpec } from '../protocol/worker';
import type { EncodedContext } from './context-bytes';
import {
  ProxyAuthenticationError,
  ProxyConnectionError,
  ProxyError,
  ProxyOriginError,
  ProxyQuotaError,
  SandboxCrashedError,
  SandboxExpiredError,
} from './remote-errors';
import type { AnswerRequest, CellEnd, ReplTransport } from './restorable-repl';

/** Options of the remote environment (`environmentOptions` with `environment: 'remote'`). */
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

/** The proxy's error body, whatever it (or something in front of it) sent. */
async function readError(response: Response): Promise<{ code: string; message: string }> {
  return parseErrorBody(await response.json().catch(() => undefined), response.status, response.statusText);
}

function isGone(error: unknown): error is SandboxExpiredError | SandboxCrashedError {
  return error instanceof SandboxExpiredError || error instanceof SandboxCrashedError;
}

/** The {@link ReplTransport} of {@link RemoteRepl}: one sandbox at a time. */
export class RemoteTransport implements ReplTransport {
  readonly replaced = 'sandbox';
  private readonly baseURL: string;
  private readonly token: string;
  private sandbox: SandboxCreated | undefined;
  /** The sandbox being created, so that discarding waits for it and deletes it. */
  private creating: Promise<unknown> | undefined;
  private answer: AnswerRequest = async () => ({ error: 'The sandbox has not started.' });

  constructor(private readonly options: RemoteEnvironmentOptions = {}) {
    if (!options.proxyURL) throw new ConfigurationError("environment 'remote' needs environmentOptions.proxyURL (where rlm-web-proxy listens).");
    if (!options.token) throw new ConfigurationError("environment 'remote' needs environmentOptions.token (the proxy's --token).");
    this.baseURL = options.proxyURL.replace(/\/+$/, '');
    this.token = options.token;
  }

  /** The proxy's id of the current sandbox. */
  get sandboxId(): string | undefined {
    return this.sandbox?.id;
  }

  // ---------------------------------------------------------------- HTTP

  private headers(json: boolean): Record<string, string> {
    return json ? { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' } : { authorization: `Bearer ${this.token}` };
  }

  /** Why a fetch failed without a response: the proxy is down, or it refuses this origin. */
  private async diagnose(error: unknown, what: string): Promise<ProxyError> {
    if (error instanceof ProxyError) return error;
    try {
      const response = await fetch(`${this.baseURL}${HEALTH_PATH}`, { signal: AbortSignal.timeout(10_000) });
      const health = (await response.json()) as Partial<HealthResponse>;
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

  /** The id of the live sandbox. */
  private id(): string {
    if (!this.sandbox) throw new SandboxExpiredError('The sandbox is not running.');
    return this.sandbox.id;
  }

  private post(action: SandboxAction, what: string, body: object): Promise<unknown> {
    return this.request('POST', sandboxPath(this.id(), action), what, JSON.stringify(body));
  }

  // ---------------------------------------------------------------- lifecycle

  async boot(answer: AnswerRequest): Promise<ReplInfo> {
    this.answer = answer;
    const body: CreateSandboxRequest = this.options.provider ? { provider: this.options.provider } : {};
    const creating = this.request('POST', SANDBOXES_PATH, 'creating a sandbox', JSON.stringify(body));
    this.creating = creating;
    try {
      const created = (await creating) as SandboxCreated;
      this.sandbox = created;
      return { bridge: 'remote', interruptible: created.interruptible, bootMs: created.bootMs, runtime: `${created.provider} sandbox, Python ${created.python}` };
    } finally {
      if (this.creating === creating) this.creating = undefined;
    }
  }

  /** Deletes the sandbox (waiting for one being created); only forgets it when it is already gone. */
  async discard(gone: boolean): Promise<void> {
    if (!gone) await this.creating?.catch(() => undefined);
    const sandbox = this.sandbox;
    this.sandbox = undefined;
    if (!sandbox || gone) return;
    try {
      // keepalive: the request completes even if the page is being unloaded.
      await fetch(`${this.baseURL}${sandboxPath(sandbox.id)}`, { method: 'DELETE', headers: this.headers(false), keepalive: true, signal: AbortSignal.timeout(30_000) });
    } catch {
      // The proxy reaps it after its idle timeout anyway.
    }
  }

  isLost(error: unknown): boolean {
    return isGone(error);
  }

  closedError(): Error {
    return new ProxyError('This REPL was closed.');
  }

  // ---------------------------------------------------------------- state

  async loadContext(index: number, encoded: EncodedContext): Promise<ContextDescription> {
    const body: BodyInit = 'blob' in encoded ? encoded.blob : (encoded.bytes as Uint8Array<ArrayBuffer>);
    return (await this.request('PUT', contextPath(this.id(), index, encoded.kind), `uploading context_${index}`, body, false)) as ContextDescription;
  }

  async setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void> {
    await this.post('variables', `setting ${name}`, { name, valueJSON, reserved } satisfies SetVariableRequest);
  }

  async registerTools(tools: ToolSpec[]): Promise<void> {
    await this.post('tools', 'registering tools', { tools } satisfies RegisterToolsRequest);
  }

  async resolveVariable(name: string): Promise<string | null> {
    const reply = (await this.post('resolve', `resolving ${name}`, { name } satisfies ResolveRequest)) as ResolveResponse;
    return reply.value ?? null;
  }

  async reset(): Promise<void> {
    await this.post('reset', 'resetting the REPL', {});
  }

  // ---------------------------------------------------------------- cells

  /** Posts the cell and reads its event stream to the end, answering sub-calls on the way. */
  async run(code: string, cancel: AbortSignal, onOutput: ExecuteOptions['onOutput']): Promise<CellEnd> {
    const path = sandboxPath(this.id(), 'cells');
    let response: Response;
    try {
      response = await fetch(`${this.baseURL}${path}`, { method: 'POST', headers: this.headers(true), body: JSON.stringify({ code } satisfies RunCellRequest), signal: cancel });
    } catch (error) {
      throw await this.diagnose(error, 'running a cell');
    }
    if (!response.ok || !response.body) {
      const error = await this.fromResponse(response, 'running a cell');
      if (isGone(error)) return this.lost(error.code ?? 'expired', error.message);
      throw error;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new CellEventParser();
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (error) {
          throw new ProxyConnectionError(`The connection to rlm-web-proxy was lost while a cell ran (${(error as Error).message}). The sandbox may still be running; it is deleted after the proxy's idle timeout.`, undefined, 'connection_lost', { cause: error });
        }
        if (chunk.done) break;
        let events: CellEvent[];
        try {
          events = parser.push(chunk.value);
        } catch (error) {
          throw new ProxyError(`rlm-web-proxy sent a malformed cell event (${(error as Error).message}). Check that the proxy is rlm-web-proxy of the same version.`, response.status, 'bad_event', { cause: error });
        }
        for (const event of events) {
          if (event.type === 'request') this.reply(event.data.seq, event.data.request);
          else if (event.type === 'output') onOutput?.(event.data.stream, event.data.text);
          else if (event.type === 'result') return { kind: 'output', output: event.data };
          else return this.lost(event.data.code, event.data.message);
        }
      }
    } finally {
      reader.releaseLock();
    }
    throw new ProxyConnectionError('The connection to rlm-web-proxy closed before the cell finished. Check that nothing between the page and the proxy buffers or cuts long responses (server-sent events).', undefined, 'connection_lost');
  }

  /** The sandbox died under the cell ('crashed') or the proxy deleted it ('expired', 'sandbox_not_found'). */
  private lost(code: string, message: string): CellEnd {
    const expired = code === 'expired' || code === 'sandbox_not_found';
    return { kind: 'lost', errorType: expired ? 'SandboxExpiredError' : 'SandboxCrashedError', message };
  }

  /** Answers one sub-call request, then posts the answer back to the sandbox that asked. */
  private reply(seq: number, request: HostRequest): void {
    const sandbox = this.sandbox;
    void (async () => {
      const reply = await this.answer(request);
      if (!sandbox || this.sandbox !== sandbox) return;
      try {
        // Tool values are JSON-able by contract; JSON.stringify drops what is not.
        const body = { seq, reply } as AnswerBody;
        await fetch(`${this.baseURL}${sandboxPath(sandbox.id, 'answers')}`, { method: 'POST', headers: this.headers(true), body: JSON.stringify(body) });
      } catch {
        // The cell stream reports a lost connection.
      }
    })();
  }

  async interrupt(): Promise<boolean> {
    const sandbox = this.sandbox;
    if (!sandbox) return false;
    await this.request('POST', sandboxPath(sandbox.id, 'interrupt'), 'interrupting a cell', '{}').catch(() => undefined);
    return true;
  }
}
