/**
 * A scripted LM server on loopback for tests and benchmarks. It speaks OpenAI's
 * /v1/chat/completions and Anthropic's /v1/messages, answers CORS preflights, and replies
 * with whatever the test's script returns for each request (it can read the prompt).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ScriptedMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ScriptedRequest {
  api: 'openai' | 'anthropic';
  model: string;
  /** System prompt first (Anthropic's `system` is put back in front), then the turns. */
  messages: ScriptedMessage[];
  /** The raw JSON body. */
  body: Record<string, unknown>;
  /** The JSON Schema of a structured-output request (OpenAI `response_format`, Anthropic `output_config.format`). */
  schema?: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

export interface ScriptedReply {
  content?: string | null;
  /** Sent as reasoning_content (OpenAI) or a thinking block (Anthropic). */
  reasoning?: string;
  /** HTTP status; with `error` sends an API-style error body. */
  status?: number;
  error?: string;
  /** Sent as the whole body, unchecked (malformed replies). */
  raw?: string;
  delayMs?: number;
  usage?: { input?: number; output?: number; cached?: number; cost?: number };
}

export type Script = (request: ScriptedRequest) => string | ScriptedReply | Promise<string | ScriptedReply>;

export interface LMServer {
  /** Base URL for OpenAI clients (ends in /v1). */
  openaiURL: string;
  /** Base URL for Anthropic clients (the SDK appends /v1/messages). */
  anthropicURL: string;
  requests: ScriptedRequest[];
  setScript(script: Script): void;
  close(): Promise<void>;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-max-age': '600',
};

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b) => (typeof b === 'object' && b && 'text' in b ? String((b as { text: unknown }).text) : '')).join('');
  return '';
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function estimate(messages: ScriptedMessage[]): number {
  return Math.ceil(messages.reduce((n, m) => n + m.content.length, 0) / 4);
}

export async function startLMServer(initial: Script = () => 'ok'): Promise<LMServer> {
  let script = initial;
  const requests: ScriptedRequest[] = [];
  let counter = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS).end();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const api = path.endsWith('/chat/completions') ? 'openai' : path.endsWith('/messages') ? 'anthropic' : undefined;
    if (req.method !== 'POST' || !api) {
      res.writeHead(404, { ...CORS, 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${path}` } }));
      return;
    }
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    const messages: ScriptedMessage[] = [];
    if (api === 'anthropic' && body.system) messages.push({ role: 'system', content: textOf(body.system) });
    for (const m of (body.messages as { role: ScriptedMessage['role']; content: unknown }[]) ?? []) {
      messages.push({ role: m.role, content: textOf(m.content) });
    }
    const request: ScriptedRequest = { api, model: String(body.model), messages, body, headers: req.headers };
    const format = (api === 'openai' ? (body.response_format as { json_schema?: { schema?: unknown } } | undefined)?.json_schema : (body.output_config as { format?: { schema?: unknown } } | undefined)?.format)?.schema;
    if (typeof format === 'object' && format !== null) request.schema = format as Record<string, unknown>;
    requests.push(request);
    let reply: ScriptedReply;
    try {
      const r = await script(request);
      reply = typeof r === 'string' ? { content: r } : r;
    } catch (error) {
      reply = { status: 500, error: `script failed: ${(error as Error).message}` };
    }
    if (reply.delayMs) await new Promise((ok) => setTimeout(ok, reply.delayMs));
    if (res.destroyed) return;
    if (reply.raw !== undefined) {
      res.writeHead(reply.status ?? 200, { ...CORS, 'content-type': 'application/json' }).end(reply.raw);
      return;
    }
    if (reply.status && reply.status >= 400) {
      const payload = api === 'openai'
        ? { error: { message: reply.error ?? 'error', type: 'invalid_request_error' } }
        : { type: 'error', error: { type: 'api_error', message: reply.error ?? 'error' } };
      res.writeHead(reply.status, { ...CORS, 'content-type': 'application/json' }).end(JSON.stringify(payload));
      return;
    }
    const content = reply.content === undefined ? '' : reply.content;
    const input = reply.usage?.input ?? estimate(messages);
    const output = reply.usage?.output ?? Math.ceil((content ?? '').length / 4);
    const id = `scripted-${++counter}`;
    let payload: unknown;
    if (api === 'openai') {
      payload = {
        id,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: request.model,
        choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content, ...(reply.reasoning ? { reasoning_content: reply.reasoning } : {}) } }],
        usage: {
          prompt_tokens: input,
          completion_tokens: output,
          total_tokens: input + output,
          prompt_tokens_details: { cached_tokens: reply.usage?.cached ?? 0 },
          ...(reply.usage?.cost !== undefined ? { cost: reply.usage.cost } : {}),
        },
      };
    } else {
      const blocks: unknown[] = [];
      if (reply.reasoning) blocks.push({ type: 'thinking', thinking: reply.reasoning, signature: 'x' });
      if (content) blocks.push({ type: 'text', text: content });
      payload = {
        id,
        type: 'message',
        role: 'assistant',
        model: request.model,
        content: blocks,
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: input, output_tokens: output, cache_read_input_tokens: reply.usage?.cached ?? 0, cache_creation_input_tokens: 0 },
      };
    }
    res.writeHead(200, { ...CORS, 'content-type': 'application/json' }).end(JSON.stringify(payload));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, CORS);
      res.end(String(error));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return {
    openaiURL: `http://127.0.0.1:${port}/v1`,
    anthropicURL: `http://127.0.0.1:${port}`,
    requests,
    setScript(next) {
      script = next;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** The assistant turns the root model has already taken in this conversation. */
export function turnOf(request: ScriptedRequest): number {
  return request.messages.filter((m) => m.role === 'assistant').length;
}

/** Whether a request is a root-model turn (it carries our system prompt). */
export function isRootCall(request: ScriptedRequest): boolean {
  return request.messages[0]?.role === 'system';
}

/** The last user message's text. */
export function lastUser(request: ScriptedRequest): string {
  return [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
}

/** A ```repl block, as a scripted root model writes it. */
export function repl(code: string, prose = 'Next step.'): string {
  return `${prose}\n\n\`\`\`repl\n${code.trim()}\n\`\`\`\n`;
}
