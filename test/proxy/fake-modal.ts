/// <reference types="node" />
/**
 * A loopback imitation of Modal for the real `modal` SDK. The control plane is answered
 * in-process through the SDK's own injection point (`grpcMiddleware` on ModalClient); a
 * sandbox's task command router, which the SDK dials directly, is a real gRPC server
 * (nice-grpc, as the SDK uses) built from the SDK's own service definition, running exec'd
 * commands as real processes on this machine.
 *
 * It is as strict as the service where the providers depend on it:
 * - commands run in a slim image: python3 and a shell's basics, no `kill` (Debian's procps
 *   is not in python:3.11-slim); a missing program exits 127, as a container runtime reports;
 * - the filesystem API is the SDK's own: an exec of modal-sandbox-fs-tools fed by a
 *   client-streamed stdin (the tool is imitated by a small Python program);
 * - a stdin write is acknowledged a round trip after its bytes went in (so a second write
 *   issued before the first settles finds the SDK's stream locked), and one write over
 *   16 MiB is refused, as are gRPC messages much larger than that;
 * - an image may take time to build and a sandbox time to be scheduled (no task until then);
 * - a sandbox expires after its timeout (or `expireAfterMs`): its processes die and its
 *   router stops answering (UNAVAILABLE), as a host that is gone would;
 * - `cutStreams()` breaks every open output stream once, as a network blip does.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createServer, ServerError, Status } from 'nice-grpc';

const require = createRequire(import.meta.url);

/** What the service takes in one stdin write. */
export const MODAL_STDIN_WRITE_LIMIT = 16 * 1024 * 1024;
const FS_TOOLS_PATH = '/__modal/.bin/modal-sandbox-fs-tools';
/** Programs in the imitated python:3.11-slim image. */
const SLIM_PROGRAMS = ['python3', 'sh', 'cat', 'sleep', 'ls', 'env', 'mkdir', 'rm', 'true'];
/** The filesystem tool's WriteFile: stdin to a temporary file, renamed into place only at EOF. */
const FS_TOOLS_SOURCE = [
  'import json, os, sys',
  'command = json.loads(sys.argv[1])',
  'path = command["WriteFile"]["path"]',
  'os.makedirs(os.path.dirname(path), exist_ok=True)',
  'with open(path + ".partial", "wb") as f:',
  '    while True:',
  '        b = os.read(0, 1 << 20)',
  '        if not b: break',
  '        f.write(b)',
  'os.replace(path + ".partial", path)',
].join('\n');

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

/** A folder of links to this machine's programs, only those a slim image has. */
async function slimBin(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'fake-modal-bin-'));
  const searched = (process.env.PATH ?? '/usr/bin:/bin').split(delimiter);
  for (const name of SLIM_PROGRAMS) {
    // The interpreter itself, not a version manager's shell shim (there is no bash either).
    const found = name === 'python3' ? execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() : searched.map((dir) => join(dir, name)).find((path) => existsSync(path));
    if (found) await symlink(found, join(folder, name));
  }
  return folder;
}

interface Task {
  sandboxId: string;
  taskId: string;
  scheduledAt: number;
  /** Terminated or expired: the router no longer answers for it. */
  gone: boolean;
  expiry: ReturnType<typeof setTimeout>;
}

interface Exec {
  task: Task;
  argv: string[];
  stdin: Writable | undefined;
  kill(): void;
  written: number;
  output: [Buffer[], Buffer[]];
  closed: boolean;
  code: number | null;
  wake: Set<() => void>;
}

export interface FakeModalOptions {
  /** How long an image build takes (the SDK then joins the build's stream). Default: 0 (cached). */
  imageBuildMs?: number;
  /** How long a new sandbox waits for a task (no task id until then). Default: 0. */
  schedulingMs?: number;
  /** Every sandbox expires this long after creation, whatever it asked for. Default: its timeoutSecs. */
  expireAfterMs?: number;
  /** How long a stdin write's acknowledgement takes after its bytes went in. Default: 30 ms. */
  ackDelayMs?: number;
}

export interface FakeModal {
  /** Control-plane calls seen, by method name, with their requests. */
  calls: { method: string; request: Record<string, unknown> }[];
  /** Exec'd command lines (argv). */
  execs: string[][];
  terminated: string[];
  /** Sandboxes that reached their timeout. */
  expired: string[];
  /** Unary stdin writes (the SDK's stdin stream; the filesystem API streams instead). */
  stdinWrites: number;
  /** The largest unary stdin write, in bytes. */
  largestStdinWrite: number;
  /** Pass to ModalClient / createModalProvider({ client }). */
  clientParams: Record<string, unknown>;
  live(): number;
  /** Breaks every open output stream once (the SDK reopens them at its offset). */
  cutStreams(): void;
  close(): Promise<void>;
}

const JWT = `e30.${Buffer.from(JSON.stringify({ exp: 4_102_444_800 })).toString('base64url')}.sig`;

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export async function startFakeModal(options: FakeModalOptions = {}): Promise<FakeModal> {
  const calls: FakeModal['calls'] = [];
  const execs = new Map<string, Exec>();
  const tasks = new Map<string, Task>();
  const execArgs: string[][] = [];
  const terminated: string[] = [];
  const expired: string[] = [];
  const ackDelayMs = options.ackDelayMs ?? 30;
  let stdinWrites = 0;
  let largestStdinWrite = 0;
  let sandboxes = 0;
  let cuts = 0;
  const bin = await slimBin();
  const env = { PATH: bin, LANG: 'C.UTF-8' };

  const notify = (exec: Exec) => {
    for (const wake of exec.wake) wake();
    exec.wake.clear();
  };
  const live = (taskId: string): Task => {
    const task = tasks.get(taskId);
    if (!task || task.gone) throw new ServerError(Status.UNAVAILABLE, 'fake modal: no route to the task (it is gone)');
    return task;
  };
  const execOf = (execId: string): Exec => {
    const exec = execs.get(execId);
    if (!exec) throw new ServerError(Status.NOT_FOUND, 'fake modal: no such exec');
    live(exec.task.taskId);
    return exec;
  };
  const endTask = (task: Task) => {
    task.gone = true;
    clearTimeout(task.expiry);
    for (const exec of execs.values()) {
      if (exec.task !== task) continue;
      exec.kill();
      notify(exec);
    }
  };

  function startExec(task: Task, argv: string[]): Exec {
    const exec: Exec = { task, argv, stdin: undefined, kill: () => undefined, written: 0, output: [[], []], closed: false, code: null, wake: new Set() };
    const finish = (code: number) => {
      exec.closed = true;
      exec.code = code;
      notify(exec);
    };
    const [command, ...args] = argv[0] === FS_TOOLS_PATH ? ['python3', '-c', FS_TOOLS_SOURCE, ...argv.slice(1)] : argv;
    const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    child.once('error', () => {
      // The program is not in the image: the runtime reports it as exit 127.
      exec.output[1].push(Buffer.from(`exec: "${command}": executable file not found in $PATH\n`));
      finish(127);
    });
    exec.stdin = child.stdin!;
    exec.kill = () => child.kill('SIGKILL');
    child.stdin!.on('error', () => undefined);
    child.stdout!.on('data', (chunk: Buffer) => {
      exec.output[0].push(chunk);
      notify(exec);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      exec.output[1].push(chunk);
      notify(exec);
    });
    child.once('close', (code, signal) => finish(code ?? (signal ? 128 + 9 : -1)));
    return exec;
  }

  async function writeStdin(exec: Exec, offset: number, data: Uint8Array): Promise<void> {
    if (data.length > MODAL_STDIN_WRITE_LIMIT) {
      throw new ServerError(Status.INVALID_ARGUMENT, `fake modal: a stdin write of ${data.length} bytes is over the limit of ${MODAL_STDIN_WRITE_LIMIT}`);
    }
    if (offset > exec.written) throw new ServerError(Status.FAILED_PRECONDITION, `fake modal: stdin offset ${offset} is past the ${exec.written} bytes written`);
    // Writes carry their offset: only the bytes past what was written count (retries are idempotent).
    const fresh = Buffer.from(data).subarray(exec.written - offset);
    if (fresh.length === 0) return;
    exec.written += fresh.length;
    await new Promise<void>((ok) => exec.stdin!.write(fresh, () => ok()));
  }

  // Messages a little over the stdin cap are refused by gRPC itself.
  const router = createServer({ 'grpc.max_receive_message_length': MODAL_STDIN_WRITE_LIMIT + 64 * 1024 });
  const implemented: Record<string, unknown> = {
    async taskExecStart(request: { taskId: string; execId: string; commandArgs: string[] }) {
      const task = live(request.taskId);
      execs.set(request.execId, startExec(task, request.commandArgs));
      execArgs.push(request.commandArgs);
      return {};
    },
    async taskExecStdinWrite(request: { execId: string; offset: number; data: Uint8Array; eof: boolean }) {
      const exec = execOf(request.execId);
      stdinWrites++;
      largestStdinWrite = Math.max(largestStdinWrite, request.data.length);
      await writeStdin(exec, Number(request.offset), request.data);
      if (request.eof) exec.stdin!.end();
      // The acknowledgement travels back a round trip later.
      await sleep(ackDelayMs);
      return {};
    },
    async taskExecStdinWriteStream(requests: AsyncIterable<{ start?: { execId: string; offset: number }; data?: Uint8Array; end?: object }>) {
      let exec: Exec | undefined;
      let offset = 0;
      for await (const message of requests) {
        if (message.start) {
          exec = execOf(message.start.execId);
          offset = Number(message.start.offset);
        } else if (message.data && exec) {
          await writeStdin(exec, offset, message.data);
          offset += message.data.length;
        } else if (message.end && exec) {
          exec.stdin!.end();
        }
      }
      return {};
    },
    async taskExecStdinStatus(request: { execId: string }) {
      const exec = execOf(request.execId);
      return { numBytesWritten: exec.written, closed: exec.stdin?.writableEnded ?? true };
    },
    async *taskExecStdioRead(request: { execId: string; offset: number; fileDescriptor: number }) {
      const exec = execOf(request.execId);
      const opened = cuts;
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
        if (exec.task.gone) throw new ServerError(Status.UNAVAILABLE, 'fake modal: connection to the task lost');
        if (cuts !== opened) throw new ServerError(Status.UNAVAILABLE, 'fake modal: stream cut');
        if (exec.closed) return;
        await new Promise<void>((ok) => exec.wake.add(ok));
      }
    },
    async taskExecPoll(request: { execId: string }) {
      const exec = execOf(request.execId);
      return exec.closed ? { code: exec.code ?? undefined } : {};
    },
    async taskExecWait(request: { execId: string }) {
      const exec = execOf(request.execId);
      while (!exec.closed) {
        await new Promise<void>((ok) => exec.wake.add(ok));
        live(exec.task.taskId);
      }
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

  let imageBuilt = !options.imageBuildMs;
  const terminate = (request: Record<string, unknown>) => {
    const id = String(request.sandboxId);
    terminated.push(id);
    for (const task of tasks.values()) if (task.sandboxId === id) endTask(task);
    return {};
  };
  const taskOf = (sandboxId: unknown) => [...tasks.values()].find((t) => t.sandboxId === sandboxId);
  const controlPlane: Record<string, (request: Record<string, unknown>) => unknown> = {
    AppGetOrCreate: () => ({ appId: 'ap-fake' }),
    EnvironmentGetOrCreate: () => ({ environmentId: 'en-fake', metadata: { settings: { imageBuilderVersion: '2025.06' } } }),
    ImageGetOrCreate: () => ({ imageId: 'im-fake', result: imageBuilt ? { status: 1 } : undefined }),
    SandboxCreateV2: (request) => {
      const n = ++sandboxes;
      const sandboxId = `sb-fake${n}`;
      const definition = request.definition as { timeoutSecs?: number };
      const lifetime = options.expireAfterMs ?? (definition.timeoutSecs ?? 300) * 1000;
      const task: Task = { sandboxId, taskId: `ta-fake${n}`, scheduledAt: Date.now() + (options.schedulingMs ?? 0), gone: false, expiry: setTimeout(() => {
        expired.push(sandboxId);
        endTask(task);
      }, lifetime) };
      task.expiry.unref();
      tasks.set(task.taskId, task);
      const scheduled = !options.schedulingMs;
      return { sandboxId, taskId: scheduled ? task.taskId : '', tunnels: [], commandRouterAccess: { url: `https://127.0.0.1:${port}`, jwt: JWT } };
    },
    SandboxGetTaskIdV2: (request) => {
      const task = taskOf(request.sandboxId);
      if (!task) throw new ServerError(Status.NOT_FOUND, 'fake modal: no such sandbox');
      if (task.gone) return { taskResult: { status: 3, exception: 'the sandbox was terminated' } };
      return Date.now() >= task.scheduledAt ? { taskId: task.taskId } : {};
    },
    SandboxTerminateV2: terminate,
    SandboxTerminate: terminate,
  };
  const streamingPlane: Record<string, (request: Record<string, unknown>) => AsyncGenerator<unknown>> = {
    async *ImageJoinStreaming() {
      await sleep(options.imageBuildMs ?? 0);
      imageBuilt = true;
      yield { result: { status: 1 }, entryId: '1' };
    },
  };

  async function* middleware(call: { method: { path: string; responseStream?: boolean }; request?: unknown }): AsyncGenerator<unknown, unknown, undefined> {
    const method = call.method.path.split('/').pop()!;
    const request = (call.request ?? {}) as Record<string, unknown>;
    calls.push({ method, request });
    const streaming = streamingPlane[method];
    if (streaming) {
      yield* streaming(request);
      return undefined;
    }
    const handler = controlPlane[method];
    if (!handler) throw new Error(`fake modal: control-plane method ${method} is not imitated`);
    return handler(request);
  }

  return {
    calls,
    execs: execArgs,
    terminated,
    expired,
    get stdinWrites() {
      return stdinWrites;
    },
    get largestStdinWrite() {
      return largestStdinWrite;
    },
    clientParams: { grpcMiddleware: [middleware], maxRetries: 0 },
    live: () => [...execs.values()].filter((e) => !e.closed).length,
    cutStreams() {
      cuts++;
      for (const exec of execs.values()) notify(exec);
    },
    async close() {
      for (const task of tasks.values()) endTask(task);
      await router.shutdown();
      await rm(bin, { recursive: true, force: true });
    },
  };
}
