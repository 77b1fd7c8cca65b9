/// <reference types="node" />
/**
 * A loopback imitation of Modal for the real `modal` SDK. The control plane is answered
 * in-process through the SDK's own injection point (`grpcMiddleware` on ModalClient); a
 * sandbox's task command router, which the SDK dials directly, is a real gRPC server
 * (nice-grpc, as the SDK uses) built from the SDK's own service definition, running exec'd
 * commands as real processes on this machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer } from 'nice-grpc';

const require = createRequire(import.meta.url);

/**
 * The SDK does not export its generated gRPC service definitions; a copy of its bundle
 * with one export added gives the router server exactly the SDK's own message encoding.
 */
async function routerDefinition(): Promise<unknown> {
  const bundle = require.resolve('modal'); // dist/index.cjs: its sibling index.js is the ES bundle
  const folder = join(dirname(bundle), '..', '..', '.cache', 'rlm-web-tests');
  const copy = join(folder, 'modal-internals.mjs');
  await mkdir(folder, { recursive: true });
  await writeFile(copy, `${await readFile(join(dirname(bundle), 'index.js'), 'utf8')}\nexport { TaskCommandRouterDefinition as __TaskCommandRouterDefinition };\n`);
  const module = (await import(pathToFileURL(copy).href)) as { __TaskCommandRouterDefinition: unknown };
  return module.__TaskCommandRouterDefinition;
}

interface Exec {
  child: ChildProcess;
  argv: string[];
  written: number;
  output: [Buffer[], Buffer[]];
  closed: boolean;
  code: number | null;
  wake: Set<() => void>;
}

export interface FakeModal {
  /** Control-plane calls seen, by method name, with their requests. */
  calls: { method: string; request: Record<string, unknown> }[];
  /** Exec'd command lines (argv). */
  execs: string[][];
  terminated: string[];
  stdinWrites: number;
  /** Pass to ModalClient / createModalProvider({ client }). */
  clientParams: Record<string, unknown>;
  live(): number;
  close(): Promise<void>;
}

const JWT = `e30.${Buffer.from(JSON.stringify({ exp: 4_102_444_800 })).toString('base64url')}.sig`;

export async function startFakeModal(): Promise<FakeModal> {
  const calls: FakeModal['calls'] = [];
  const execs = new Map<string, Exec>();
  const execArgs: string[][] = [];
  const terminated: string[] = [];
  let stdinWrites = 0;
  let sandboxes = 0;

  const notify = (exec: Exec) => {
    for (const wake of exec.wake) wake();
    exec.wake.clear();
  };

  const router = createServer();
  const implemented: Record<string, unknown> = {
      async taskExecStart(request: { execId: string; commandArgs: string[] }) {
        const [command, ...args] = request.commandArgs;
        const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
        const exec: Exec = { child, argv: request.commandArgs, written: 0, output: [[], []], closed: false, code: null, wake: new Set() };
        execs.set(request.execId, exec);
        execArgs.push(request.commandArgs);
        child.stdin!.on('error', () => undefined);
        child.stdout!.on('data', (chunk: Buffer) => {
          exec.output[0].push(chunk);
          notify(exec);
        });
        child.stderr!.on('data', (chunk: Buffer) => {
          exec.output[1].push(chunk);
          notify(exec);
        });
        child.once('close', (code, signal) => {
          exec.closed = true;
          exec.code = code ?? (signal ? 128 + 9 : -1);
          notify(exec);
        });
        return {};
      },
      async taskExecStdinWrite(request: { execId: string; offset: number; data: Uint8Array; eof: boolean }) {
        const exec = execs.get(request.execId);
        if (!exec) throw new Error('no such exec');
        // Writes carry their offset: only the bytes past what was written count (retries are idempotent).
        const fresh = Buffer.from(request.data).subarray(Math.max(0, exec.written - Number(request.offset)));
        if (fresh.length > 0) {
          stdinWrites++;
          exec.written += fresh.length;
          await new Promise<void>((ok) => exec.child.stdin!.write(fresh, () => ok()));
        }
        if (request.eof) exec.child.stdin!.end();
        return {};
      },
      async *taskExecStdioRead(request: { execId: string; offset: number; fileDescriptor: number }) {
        const exec = execs.get(request.execId);
        if (!exec) throw new Error('no such exec');
        const chunks = exec.output[request.fileDescriptor === 1 ? 1 : 0];
        let skip = Number(request.offset);
        let index = 0;
        for (;;) {
          while (index < chunks.length) {
            let chunk = chunks[index++]!;
            if (skip > 0) {
              const drop = Math.min(skip, chunk.length);
              skip -= drop;
              chunk = chunk.subarray(drop);
            }
            if (chunk.length > 0) yield { data: new Uint8Array(chunk) };
          }
          if (exec.closed) return;
          await new Promise<void>((ok) => exec.wake.add(ok));
        }
      },
      async taskExecWait(request: { execId: string }) {
        const exec = execs.get(request.execId);
        if (!exec) throw new Error('no such exec');
        while (!exec.closed) await new Promise<void>((ok) => exec.wake.add(ok));
        return { code: exec.code ?? undefined };
      },
  };
  // nice-grpc wants every method of the service; the ones the SDK does not call here fail loudly.
  const unimplemented = (name: string) => () => {
    throw new Error(`fake modal: router method ${name} is not imitated`);
  };
  router.add((await routerDefinition()) as never, new Proxy(implemented, { get: (target, name) => target[String(name)] ?? unimplemented(String(name)) }) as never);
  const port = await router.listen('127.0.0.1:0');
  // The control plane is never dialled (the middleware answers first). A localhost server
  // URL makes the SDK dial the task router without TLS, as it does against a local Modal.
  process.env.MODAL_SERVER_URL = `http://localhost:${port}`;

  const controlPlane: Record<string, (request: Record<string, unknown>) => unknown> = {
    AppGetOrCreate: () => ({ appId: 'ap-fake' }),
    EnvironmentGetOrCreate: () => ({ environmentId: 'en-fake', metadata: { settings: { imageBuilderVersion: '2025.06' } } }),
    ImageGetOrCreate: () => ({ imageId: 'im-fake', result: { status: 1 } }),
    SandboxCreateV2: () => ({ sandboxId: `sb-fake${++sandboxes}`, taskId: `ta-fake${sandboxes}`, tunnels: [], commandRouterAccess: { url: `https://127.0.0.1:${port}`, jwt: JWT } }),
    SandboxTerminateV2: (request) => {
      terminated.push(String(request.sandboxId));
      for (const exec of execs.values()) exec.child.kill('SIGKILL');
      return {};
    },
    SandboxTerminate: (request) => {
      terminated.push(String(request.sandboxId));
      for (const exec of execs.values()) exec.child.kill('SIGKILL');
      return {};
    },
  };

  async function* middleware(call: { method: { path: string }; request?: unknown }): AsyncGenerator<never, unknown, undefined> {
    const method = call.method.path.split('/').pop()!;
    const request = (call.request ?? {}) as Record<string, unknown>;
    calls.push({ method, request });
    const handler = controlPlane[method];
    if (!handler) throw new Error(`fake modal: control-plane method ${method} is not imitated`);
    return handler(request);
  }

  return {
    calls,
    execs: execArgs,
    terminated,
    get stdinWrites() {
      return stdinWrites;
    },
    clientParams: { grpcMiddleware: [middleware], maxRetries: 0 },
    live: () => [...execs.values()].filter((e) => !e.closed).length,
    async close() {
      for (const exec of execs.values()) exec.child.kill('SIGKILL');
      await router.shutdown();
    },
  };
}
