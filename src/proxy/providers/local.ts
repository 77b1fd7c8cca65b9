/**
 * The local provider: the runtime as a python3 process on the proxy's host, for
 * self-hosting and tests. Each process runs inside bubblewrap (`bwrap`): its own PID, IPC,
 * UTS, user, cgroup, mount and network namespaces, its own /proc, no capabilities, the system
 * directories and the Python installation read-only, a private size-capped /tmp, no network
 * unless the operator asks, and nothing else of the host's files. So a cell sees neither the
 * proxy's environment, command line or files nor the other sandboxes, and every process it
 * starts dies with its sandbox (the PID namespace ends with its first process).
 *
 * Without bwrap the provider refuses to start, unless `unsafeNoSandbox` is set: then Python
 * runs as a plain child process with the proxy user's rights (for a throwaway container or VM).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { delimiter, join } from 'node:path';
import type { SandboxProcess, SandboxProvider, StartOptions } from '../types.js';

export interface LocalProviderOptions {
  /** The Python executable (a name on PATH or a path). Default: the argv's first word, python3. */
  python?: string | undefined;
  /** The bubblewrap executable. Default: /usr/bin/bwrap, else `bwrap` on PATH. */
  bwrap?: string | undefined;
  /**
   * Run Python as a plain subprocess when bwrap is missing: no isolation at all (the process has
   * the proxy user's rights and can read the proxy's memory and environment). The proxy then
   * refuses to listen on anything but loopback. Default: false (no bwrap → the provider throws).
   */
  unsafeNoSandbox?: boolean | undefined;
  /** Give sandboxes the host's network (and its DNS and CA files). Default: false (loopback of their own only). */
  network?: boolean | undefined;
  /** More host paths to show read-only inside the sandbox (a virtualenv, data files). Default: none. */
  readOnlyPaths?: string[] | undefined;
  /** Size of each sandbox's private /tmp (its working directory), bytes. Default: 256 MiB. */
  tmpBytes?: number | undefined;
  /** Working directory of unsandboxed processes. Default: the system temp folder. */
  cwd?: string | undefined;
}

/** What the provider found about the Python it runs. */
interface PythonInstall {
  executable: string;
  /** Directories to bind read-only: the installation's prefixes. */
  prefixes: string[];
}

/** Only what Python needs; never the proxy's own environment (tokens, provider keys). */
const CHILD_ENV: Record<string, string> = { PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1', LANG: 'C.UTF-8' };
const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';
/** Host files a sandbox with network needs to resolve names and check certificates. */
const NETWORK_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/ssl', '/etc/ca-certificates', '/etc/pki'];

function findOnPath(name: string): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The real interpreter behind a name (pyenv shims and virtualenvs included) and its prefixes. */
function inspectPython(python: string): PythonInstall {
  const probe = spawnSync(python, ['-c', 'import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix)'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.status !== 0) {
    throw new Error(`The local provider cannot run ${python}: ${(probe.error?.message ?? probe.stderr ?? '').trim().slice(0, 300)}. Install python3 or set RLM_PROXY_PYTHON.`);
  }
  const [executable, prefix, basePrefix] = probe.stdout.trim().split('\n');
  return { executable: executable!, prefixes: [...new Set([prefix!, basePrefix!])] };
}

/** Bind arguments that make the host's root directories (merged /usr or not) visible read-only. */
function systemBinds(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const dir of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let stat;
    try {
      stat = lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  // The dynamic loader's cache: without it, programs the cell runs would search every library folder.
  if (existsSync('/etc/ld.so.cache')) args.push('--ro-bind', '/etc/ld.so.cache', '/etc/ld.so.cache');
  return args;
}

/** The bwrap command line for one sandbox; with `infoFd`, bwrap writes its init's pid to fd 3. */
function bwrapArgs(install: PythonInstall, options: LocalProviderOptions, args: string[], infoFd: boolean): string[] {
  const out = [
    '--unshare-all',
    ...(options.network ? ['--share-net'] : []),
    '--unshare-user',
    '--uid', '65534',
    '--gid', '65534',
    '--cap-drop', 'ALL',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
    '--hostname', 'rlm-sandbox',
    // The private /tmp first, so that a Python installed below the host's /tmp stays visible.
    '--proc', '/proc',
    '--dev', '/dev',
    '--size', String(options.tmpBytes ?? 256 * 1024 * 1024),
    '--tmpfs', '/tmp',
    ...systemBinds(),
  ];
  const covered = (path: string) => path === '/usr' || path.startsWith('/usr/');
  for (const prefix of install.prefixes) if (!covered(prefix)) out.push('--ro-bind', prefix, prefix);
  for (const path of options.readOnlyPaths ?? []) out.push('--ro-bind', path, path);
  if (options.network) for (const file of NETWORK_FILES) if (existsSync(file)) out.push('--ro-bind', file, file);
  out.push(
    '--chdir', '/tmp',
    '--setenv', 'HOME', '/tmp',
    '--setenv', 'PATH', SANDBOX_PATH,
    ...(infoFd ? ['--info-fd', '3'] : []),
    '--',
    install.executable,
    ...args,
  );
  return out;
}

/** bwrap exits with 128 + n when its child was killed by signal n. */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`;
  if (code !== null && code > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return `killed by ${name}`;
  }
  return `exited with code ${code}`;
}

/** Host pid of the process that calls itself `nsPid` inside the PID namespace whose init is `initPid`. */
function hostPidOf(initPid: number, nsPid: number): number | undefined {
  let children: string;
  try {
    children = readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8');
  } catch {
    return undefined;
  }
  for (const word of children.trim().split(/\s+/)) {
    const pid = Number(word);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const line = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      const ids = (line ?? '').trim().split(/\s+/).map(Number);
      if (ids[ids.length - 1] === nsPid) return pid;
    } catch {
      // it just exited
    }
  }
  return undefined;
}

/** Reads bwrap's info JSON ({"child-pid": n, ...}) from fd 3: the host pid of the sandbox's init. */
function readInfo(child: ChildProcess): Promise<number | undefined> {
  const stream = child.stdio[3] as NodeJS.ReadableStream | null | undefined;
  if (!stream) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let text = '';
    const parse = () => {
      try {
        const pid = (JSON.parse(text) as { 'child-pid'?: unknown })['child-pid'];
        return typeof pid === 'number' ? pid : undefined;
      } catch {
        return undefined;
      }
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text = (text + chunk).slice(0, 4096);
      const pid = parse();
      if (pid !== undefined) resolve(pid);
    });
    stream.on('error', () => resolve(undefined));
    stream.on('close', () => resolve(parse()));
  });
}

/**
 * A provider that runs each sandbox's Python on this host, under bubblewrap.
 *
 * @example
 * const local = createLocalProvider(); // throws when bwrap is missing
 * const proxy = createProxyServer({ tokens: [token], providers: { local } });
 */
export function createLocalProvider(options: LocalProviderOptions = {}): SandboxProvider {
  const bwrap = options.bwrap ?? (existsSync('/usr/bin/bwrap') ? '/usr/bin/bwrap' : findOnPath('bwrap'));
  const sandboxed = bwrap !== undefined && existsSync(bwrap);
  if (!sandboxed && !options.unsafeNoSandbox) {
    throw new Error(
      `The local provider runs Python inside bubblewrap, and ${options.bwrap ?? 'bwrap'} was not found. Install it (Debian/Ubuntu: apt-get install bubblewrap), ` +
        'use a cloud provider (e2b, modal), or, only on a throwaway machine that nothing else uses, pass --unsafe-no-sandbox.',
    );
  }
  let install: PythonInstall | undefined;
  const python = () => (install ??= inspectPython(options.python ?? 'python3'));
  if (sandboxed) {
    // Fail at start, with the reason, when namespaces are not permitted here (a locked-down container).
    const probe = spawnSync(bwrap, bwrapArgs(python(), options, ['-c', 'pass'], false), { encoding: 'utf8', timeout: 30_000, env: CHILD_ENV });
    if (probe.status !== 0) {
      throw new Error(`bubblewrap (${bwrap}) could not start a sandbox here: ${(probe.error?.message ?? probe.stderr ?? '').trim().slice(0, 300)}. It needs user namespaces (or root).`);
    }
  }
  return {
    name: 'local',
    unsafe: !sandboxed,
    async start(start: StartOptions): Promise<SandboxProcess> {
      const [command, ...args] = start.argv;
      const child = sandboxed
        ? spawn(bwrap, bwrapArgs(python(), options, args, true), { env: CHILD_ENV, stdio: ['pipe', 'pipe', 'pipe', 'pipe'], detached: true })
        : spawn(options.python ?? command ?? 'python3', args, {
            cwd: options.cwd ?? (process.env.TMPDIR || '/tmp'),
            env: { ...CHILD_ENV, PATH: process.env.PATH ?? '/usr/bin:/bin' },
            stdio: ['pipe', 'pipe', 'pipe'],
            // Its own process group, so that kill() also ends whatever the cell's code spawned.
            detached: true,
          });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      const initPid = sandboxed ? readInfo(child) : Promise.resolve(undefined);
      child.stdout!.setEncoding('utf8');
      child.stderr!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => start.onStdout(chunk));
      child.stderr!.on('data', (chunk: string) => start.onStderr(chunk));
      child.stdin!.on('error', () => undefined); // EPIPE after a crash: reported by 'exit'
      let exited = false;
      const killGroup = () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      child.once('exit', (code, signal) => {
        exited = true;
        // Unsandboxed, the group may outlive its leader (os._exit): end it too.
        if (!sandboxed) killGroup();
        start.onExit(code, describeExit(code, signal));
      });
      return {
        providerId: `pid-${child.pid}`,
        write(text) {
          return new Promise<void>((resolve, reject) => {
            if (exited || !child.stdin!.writable) {
              reject(new Error('the process has exited'));
              return;
            }
            child.stdin!.write(text, (error) => (error ? reject(error) : resolve()));
          });
        },
        async interrupt(pid) {
          if (exited) return false;
          if (!sandboxed) return child.kill('SIGINT');
          // `pid` is the process's own view (inside its PID namespace): find it on the host.
          const init = await initPid;
          const target = init === undefined ? undefined : hostPidOf(init, pid);
          if (target === undefined) return false;
          try {
            process.kill(target, 'SIGINT');
            return true;
          } catch {
            return false;
          }
        },
        async kill() {
          if (exited) return;
          const done = new Promise<void>((resolve) => (exited ? resolve() : child.once('exit', () => resolve())));
          // The namespace's init first: the kernel then ends every process of the sandbox, and
          // bwrap reaps the init and exits (killing bwrap first would leave the init a zombie of
          // the host's pid 1). The whole group if that does not end it.
          const init = sandboxed ? await initPid : undefined;
          if (init !== undefined) {
            try {
              process.kill(init, 'SIGKILL');
            } catch {
              // already gone
            }
            const timer = setTimeout(killGroup, 2000);
            await done;
            clearTimeout(timer);
            return;
          }
          killGroup();
          await done;
        },
      };
    },
  };
}
