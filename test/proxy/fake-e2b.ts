/// <reference types="node" />
/**
 * A loopback imitation of the two services the `e2b` SDK talks to: the control-plane REST
 * API (POST /v2/sandboxes, DELETE /sandboxes/:id) and a sandbox's envd, a Connect-RPC
 * service (process.Process/Start server stream, process.Process/SendInput). Processes are
 * real: envd's Start runs the command on this machine, so the SDK's own encoding of stdin
 * and stdout is exercised end to end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface FakeE2B {
  url: string;
  created: { templateID: string; timeout: number | undefined; authorization: string | undefined }[];
  deleted: string[];
  /** Command lines started through envd (`bash -l -c <command>` → command). */
  commands: string[];
  stdinWrites: number;
  /** Live processes per sandbox id. */
  live(): number;
  close(): Promise<void>;
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

export async function startFakeE2B(): Promise<FakeE2B> {
  const created: FakeE2B['created'] = [];
  const deleted: string[] = [];
  const commands: string[] = [];
  const processes = new Map<number, { sandbox: string; child: ChildProcess }>();
  let stdinWrites = 0;
  let counter = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'POST' && path === '/v2/sandboxes') {
      const request = JSON.parse((await body(req)).toString()) as { templateID: string; timeout?: number };
      created.push({ templateID: request.templateID, timeout: request.timeout, authorization: (req.headers['x-api-key'] as string | undefined) ?? req.headers.authorization });
      const sandboxID = `fake${++counter}`;
      res.writeHead(201, { 'content-type': 'application/json' }).end(
        JSON.stringify({ sandboxID, templateID: request.templateID, clientID: 'fake', envdVersion: '0.4.0', envdAccessToken: 'envd-token', domain: null, alias: 'base' }),
      );
      return;
    }
    const kill = /^\/sandboxes\/([^/]+)$/.exec(path);
    if (req.method === 'DELETE' && kill) {
      deleted.push(kill[1]!);
      for (const [pid, p] of processes) {
        if (p.sandbox === kill[1]) {
          p.child.kill('SIGKILL');
          processes.delete(pid);
        }
      }
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && path === '/process.Process/Start') {
      const raw = await body(req);
      const request = JSON.parse(raw.subarray(5).toString()) as { process: { cmd: string; args?: string[] }; stdin?: boolean };
      const args = request.process.args ?? [];
      commands.push(args[args.length - 1] ?? '');
      const sandbox = String(req.headers['e2b-sandbox-id'] ?? '');
      const child = spawn(request.process.cmd, args, { stdio: [request.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
      await new Promise<void>((ok, fail) => {
        child.once('spawn', ok);
        child.once('error', fail);
      });
      const pid = child.pid!;
      processes.set(pid, { sandbox, child });
      res.writeHead(200, { 'content-type': 'application/connect+json' });
      res.write(envelope(0, { event: { start: { pid } } }));
      child.stdout!.on('data', (chunk: Buffer) => res.write(envelope(0, { event: { data: { stdout: chunk.toString('base64') } } })));
      child.stderr!.on('data', (chunk: Buffer) => res.write(envelope(0, { event: { data: { stderr: chunk.toString('base64') } } })));
      child.once('close', (code, signal) => {
        processes.delete(pid);
        if (res.writableEnded) return;
        res.write(envelope(0, { event: { end: { exitCode: code ?? -1, exited: true, status: signal ? `signal: ${signal}` : `exit status ${code}` } } }));
        res.end(envelope(2, {}));
      });
      return;
    }
    if (req.method === 'POST' && path === '/process.Process/SendInput') {
      const request = JSON.parse((await body(req)).toString()) as { process: { pid: number }; input: { stdin: string } };
      const target = processes.get(request.process.pid);
      if (!target) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'not_found', message: 'process not found' }));
        return;
      }
      stdinWrites++;
      await new Promise<void>((ok) => target.child.stdin!.write(Buffer.from(request.input.stdin, 'base64'), () => ok()));
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
    commands,
    get stdinWrites() {
      return stdinWrites;
    },
    live: () => processes.size,
    close: () =>
      new Promise<void>((ok) => {
        for (const p of processes.values()) p.child.kill('SIGKILL');
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
