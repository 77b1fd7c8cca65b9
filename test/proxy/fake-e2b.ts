/// <reference types="node" />
/**
 * A loopback imitation of the two services the `e2b` SDK talks to: the control-plane REST
 * API (POST /v2/sandboxes, DELETE /sandboxes/:id) and a sandbox's envd (the Connect-RPC
 * process.Process/Start server stream and process.Process/SendInput, GET /health, and the
 * file upload POST /files). Processes are real: envd's Start runs the command on this
 * machine, so the SDK's own encoding of stdin and stdout is exercised end to end.
 *
 * It is as strict as the service where the providers depend on it:
 * - envd is a current version (the SDK streams file uploads as octet-stream from 0.5.7);
 * - each SendInput is its own request, answered after a delay that grows with its size, so
 *   writes sent before the previous one settled could overtake it;
 * - creating a sandbox may take time (`createDelayMs`);
 * - a sandbox expires after its timeout (or `expireAfterMs`): its processes die, its
 *   streams are cut mid-flight and envd answers 502 from then on, as e2b's edge does;
 * - `cutStreams()` drops every open Start stream, as a network failure does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface FakeE2BOptions {
  /** How long POST /v2/sandboxes takes. Default: 0. */
  createDelayMs?: number;
  /** Every sandbox expires this long after creation, whatever timeout it asked for. Default: its timeout. */
  expireAfterMs?: number;
}

export interface FakeE2B {
  url: string;
  created: { templateID: string; timeout: number | undefined; allowInternetAccess: unknown; authorization: string | undefined }[];
  deleted: string[];
  expired: string[];
  /** Command lines started through envd (`bash -l -c <command>` → command). */
  commands: string[];
  stdinWrites: number;
  /** The largest SendInput, in bytes. */
  largestStdinWrite: number;
  /** Files uploaded through POST /files: path and the content type it came with. */
  uploads: { path: string; contentType: string | undefined; bytes: number }[];
  /** Live processes. */
  live(): number;
  /** Drops every open Start stream (the processes keep running). */
  cutStreams(): void;
  close(): Promise<void>;
}

interface Box {
  id: string;
  gone: boolean;
  expiry: ReturnType<typeof setTimeout>;
}

function envelope(flags: number, message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export async function startFakeE2B(options: FakeE2BOptions = {}): Promise<FakeE2B> {
  const created: FakeE2B['created'] = [];
  const deleted: string[] = [];
  const expired: string[] = [];
  const commands: string[] = [];
  const uploads: FakeE2B['uploads'] = [];
  const boxes = new Map<string, Box>();
  const processes = new Map<number, { box: Box; child: ChildProcess; stream: ServerResponse }>();
  let stdinWrites = 0;
  let largestStdinWrite = 0;
  let counter = 0;

  const end = (box: Box) => {
    box.gone = true;
    clearTimeout(box.expiry);
    for (const [pid, p] of processes) {
      if (p.box !== box) continue;
      processes.delete(pid);
      p.child.kill('SIGKILL');
      p.stream.destroy(); // cut mid-flight: no end event
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (req.method === 'POST' && path === '/v2/sandboxes') {
      const request = JSON.parse((await body(req)).toString()) as { templateID: string; timeout?: number; allow_internet_access?: unknown };
      await sleep(options.createDelayMs ?? 0);
      created.push({ templateID: request.templateID, timeout: request.timeout, allowInternetAccess: request.allow_internet_access, authorization: (req.headers['x-api-key'] as string | undefined) ?? req.headers.authorization });
      const box: Box = { id: `fake${++counter}`, gone: false, expiry: setTimeout(() => {
        expired.push(box.id);
        end(box);
      }, options.expireAfterMs ?? (request.timeout ?? 300) * 1000) };
      box.expiry.unref();
      boxes.set(box.id, box);
      res.writeHead(201, { 'content-type': 'application/json' }).end(
        JSON.stringify({ sandboxID: box.id, templateID: request.templateID, clientID: 'fake', envdVersion: '0.6.4', envdAccessToken: 'envd-token', domain: null, alias: 'base' }),
      );
      return;
    }
    const kill = /^\/sandboxes\/([^/]+)$/.exec(path);
    if (req.method === 'DELETE' && kill) {
      deleted.push(kill[1]!);
      const box = boxes.get(kill[1]!);
      if (box) end(box);
      res.writeHead(204).end();
      return;
    }
    // Everything else is envd, inside one sandbox; a gone sandbox is answered by e2b's edge.
    const box = boxes.get(String(req.headers['e2b-sandbox-id'] ?? ''));
    if (!box || box.gone) {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 502, message: 'The sandbox was not found', sandboxId: box?.id }));
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && path === '/files') {
      if (!String(req.headers['content-type']).startsWith('application/octet-stream')) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 400, message: 'fake e2b: only octet-stream uploads are imitated' }));
        return;
      }
      const target = url.searchParams.get('path') ?? '';
      await mkdir(dirname(target), { recursive: true });
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      await pipeline(req, createWriteStream(target));
      uploads.push({ path: target, contentType: req.headers['content-type'], bytes });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ name: target.split('/').pop(), path: target, type: 'file' }]));
      return;
    }
    if (req.method === 'POST' && path === '/process.Process/Start') {
      const raw = await body(req);
      const request = JSON.parse(raw.subarray(5).toString()) as { process: { cmd: string; args?: string[] }; stdin?: boolean };
      const args = request.process.args ?? [];
      commands.push(args[args.length - 1] ?? '');
      const child = spawn(request.process.cmd, args, { stdio: [request.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
      await new Promise<void>((ok, fail) => {
        child.once('spawn', ok);
        child.once('error', fail);
      });
      const pid = child.pid!;
      processes.set(pid, { box, child, stream: res });
      child.stdin?.on('error', () => undefined);
      res.writeHead(200, { 'content-type': 'application/connect+json' });
      res.write(envelope(0, { event: { start: { pid } } }));
      child.stdout!.on('data', (chunk: Buffer) => res.writableEnded || res.write(envelope(0, { event: { data: { stdout: chunk.toString('base64') } } })));
      child.stderr!.on('data', (chunk: Buffer) => res.writableEnded || res.write(envelope(0, { event: { data: { stderr: chunk.toString('base64') } } })));
      child.once('close', (code, signal) => {
        processes.delete(pid);
        if (res.writableEnded || res.destroyed) return;
        res.write(envelope(0, { event: { end: { exitCode: code ?? -1, exited: true, status: signal ? `signal: ${signal}` : `exit status ${code}` } } }));
        res.end(envelope(2, {}));
      });
      return;
    }
    if (req.method === 'POST' && path === '/process.Process/SendInput') {
      const request = JSON.parse((await body(req)).toString()) as { process: { selector?: { pid: number }; pid?: number }; input: { stdin: string } };
      const target = processes.get(request.process.pid ?? request.process.selector?.pid ?? -1);
      if (!target) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'not_found', message: 'process not found' }));
        return;
      }
      const bytes = Buffer.from(request.input.stdin, 'base64');
      stdinWrites++;
      largestStdinWrite = Math.max(largestStdinWrite, bytes.length);
      // Independent requests: a large one takes longer to arrive than a small one sent after it.
      await sleep(5 + bytes.length / 100_000);
      await new Promise<void>((ok) => target.child.stdin!.write(bytes, () => ok()));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 404, message: `fake e2b: no route ${req.method} ${path}` }));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    created,
    deleted,
    expired,
    commands,
    uploads,
    get stdinWrites() {
      return stdinWrites;
    },
    get largestStdinWrite() {
      return largestStdinWrite;
    },
    live: () => processes.size,
    cutStreams() {
      for (const p of processes.values()) p.stream.destroy();
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const box of boxes.values()) end(box);
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
