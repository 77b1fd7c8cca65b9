/// <reference types="node" />
/**
 * The proxy ↔ Python protocol, round-tripped through the real rlm_stdio.py: lines encoded
 * with encodeStdioLine, replies read with parseStdioMessage and parseCommandResult.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  encodeStdioLine,
  parseCommandResult,
  parseStdioMessage,
  type StdioCommand,
  type StdioMessage,
} from '../../src/protocol/stdio';
import { runtimePayload, RUNTIME_ARGV } from '../../src/proxy/runtime-files';

describe('parseStdioMessage', () => {
  it('reads each message type and refuses anything mistyped', () => {
    expect(parseStdioMessage('{"type":"ready","pid":2,"python":"3.11.7"}')).toEqual({ type: 'ready', pid: 2, python: '3.11.7' });
    expect(parseStdioMessage('{"type":"error","id":3,"error":"boom"}')).toEqual({ type: 'error', id: 3, error: 'boom', error_type: 'Error' });
    expect(parseStdioMessage('{"type":"request","request":{"op":"llm_query","prompts":["p"]}}')).toEqual({ type: 'request', request: { op: 'llm_query', prompts: ['p'], model: null } });
    expect(parseStdioMessage('{"type":"output","stream":"stderr","text":"é\\n"}')).toEqual({ type: 'output', stream: 'stderr', text: 'é\n' });
    for (const bad of ['{"type":"output","stream":"stdin","text":"x"}', '{"type":"output","stream":"stdout","text":1}', '{"type":"output","stream":"stdout"}']) {
      expect(parseStdioMessage(bad)).toBeUndefined();
    }
    expect(parseStdioMessage('{"type":"request","request":{"op":"llm_query","prompts":["p"],"model":null,"schema":{"type":"object"}}}')).toEqual({ type: 'request', request: { op: 'llm_query', prompts: ['p'], model: null, schema: { type: 'object' } } });
    for (const bad of ['', 'not json', '[]', '{"type":"ready","pid":"2","python":"x"}', '{"type":"result","id":1}', '{"type":"other"}']) {
      expect(parseStdioMessage(bad)).toBeUndefined();
    }
    // A request line the process waits on is answered, with the reason, even when refused.
    expect(parseStdioMessage('{"type":"request","request":{"op":"llm_query","prompts":[1]}}')).toEqual({ type: 'refused', reason: 'llm_query expects str prompts; prompt 0 is a number' });
    expect(parseStdioMessage('{"type":"request","request":{"op":"rm"}}')).toMatchObject({ type: 'refused', reason: expect.stringContaining('unknown request op "rm"') });
  });

  it('checks a result against its command', () => {
    expect(parseCommandResult('context_end', { type: 'str', length: 3 })).toEqual({ type: 'str', length: 3 });
    expect(parseCommandResult('context_end', { type: 'str' })).toBeUndefined();
    expect(parseCommandResult('resolve_variable', null)).toBeNull();
    expect(parseCommandResult('reset', 'yes')).toBeUndefined();
    expect(parseCommandResult('execute', { stdout: '' })).toBeUndefined();
  });
});

describe('round trip with rlm_stdio.py', () => {
  it('commands in, typed replies and sub-call requests out', async () => {
    const [python, ...args] = RUNTIME_ARGV;
    const child = spawn(python!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const messages: StdioMessage[] = [];
    /** Live output, kept apart: it arrives between the other messages, and in no fixed number of pieces. */
    const outputs: { stream: string; text: string; beforeResult: number }[] = [];
    let results = 0;
    let buffer = '';
    let wake: () => void = () => undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const message = parseStdioMessage(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        expect(message).toBeDefined();
        if (message!.type === 'output') outputs.push({ stream: message!.stream, text: message!.text, beforeResult: results + 1 });
        else messages.push(message!);
        if (message!.type === 'result') results++;
        wake();
      }
    });
    const next = async (): Promise<StdioMessage> => {
      while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return messages.shift()!;
    };
    const send = (line: Parameters<typeof encodeStdioLine>[0]) => child.stdin.write(encodeStdioLine(line));
    try {
      child.stdin.write(runtimePayload());
      expect((await next()).type).toBe('ready');
      const commands: StdioCommand[] = [
        { id: 1, cmd: 'context_begin', index: 0, kind: 'json' },
        { id: 2, cmd: 'context_end' },
        { id: 3, cmd: 'set_variable', name: 'x', value_json: '{"a": [1, 2]}', reserved: false },
        { id: 4, cmd: 'register_tool', name: 'data_tool', kind: 'data', value_json: '"d"' },
        { id: 5, cmd: 'resolve_variable', name: 'x' },
      ];
      send(commands[0]!);
      expect(await next()).toEqual({ type: 'result', id: 1, value: true });
      send({ cmd: 'context_chunk', data: Buffer.from('{"k": "é"}').toString('base64') });
      send(commands[1]!);
      const described = await next();
      expect(described.type === 'result' && parseCommandResult('context_end', described.value)).toEqual({ type: 'dict', length: 1 });
      for (const command of commands.slice(2)) send(command);
      expect(await next()).toEqual({ type: 'result', id: 3, value: true });
      expect(await next()).toEqual({ type: 'result', id: 4, value: true });
      expect(await next()).toEqual({ type: 'result', id: 5, value: "{'a': [1, 2]}" });

      send({ id: 6, cmd: 'execute', code: 'print(llm_query("q"), context["k"], data_tool)' });
      expect(await next()).toEqual({ type: 'request', request: { op: 'llm_query', prompts: ['q'], model: null } });
      send({ results: ['answer'] });
      const result = await next();
      expect(result.type === 'result' && parseCommandResult('execute', result.value)).toMatchObject({ stdout: 'answer é d\n', error_type: null, interrupted: false });
      send({ id: 7, cmd: 'register_tool', name: 'llm_query', kind: 'function', value_json: null });
      expect(await next()).toMatchObject({ type: 'error', id: 7, error_type: 'ValueError' });
      const printed = (cell: number, stream: string) =>
        outputs
          .filter((o) => o.beforeResult === cell && o.stream === stream)
          .map((o) => o.text)
          .join('');
      // Cell 6 was the sixth result: its printed line went out as live output before its result.
      expect(printed(6, 'stdout')).toBe('answer é d\n');

      // A cell streams while it runs: the first line arrives while it still sleeps, before its result.
      outputs.length = 0;
      send({ id: 8, cmd: 'execute', code: 'import sys, time\nprint("first")\nsys.stderr.write("warn\\n")\ntime.sleep(0.3)\nprint("second")' });
      while (!outputs.some((o) => o.text.includes('first'))) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(messages).toEqual([]);
      expect((await next()).type).toBe('result');
      expect(printed(7, 'stdout')).toBe('first\nsecond\n');
      expect(printed(7, 'stderr')).toBe('warn\n');

      // A sink that fails is dropped for the rest of the cell; the cell runs on and keeps its output.
      send({ id: 10, cmd: 'execute', code: 'import sys\ndef broken(stream, text):\n    raise OSError("gone")\nsys.stdout._live._sink = broken\nfor i in range(20):\n    print(i)\nprint("end")' });
      const survived = await next();
      expect(survived.type === 'result' && parseCommandResult('execute', survived.value)).toMatchObject({ error_type: null, stdout: expect.stringMatching(/^0\n1\n[\s\S]*19\nend\n$/) });

      // A cell printing far past the cap forwards no more than the cap (the test runtime keeps 4 M characters a stream).
      outputs.length = 0;
      send({ id: 9, cmd: 'execute', code: 'for _ in range(3000):\n    print("x" * 9999)' });
      const flood = await next();
      expect(flood.type === 'result' && parseCommandResult('execute', flood.value)?.stdout).toMatch(/more characters dropped/);
      expect(printed(9, 'stdout').length).toBe(4_000_000);
      expect(outputs.length).toBeLessThan(200);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
