/**
 * The page ↔ proxy protocol: paths, bodies, and the one parser of a cell's event stream,
 * fed the way a network feeds it (any chunking, CRLF, heartbeats).
 */
import { describe, expect, it } from 'vitest';
import {
  CellEventParser,
  contextPath,
  formatCellEvent,
  parseAnswerRequest,
  parseCreateSandboxRequest,
  parseErrorBody,
  parseRegisterToolsRequest,
  parseSandboxPath,
  ProtocolError,
  sandboxPath,
  SSE_HEARTBEAT,
  type CellEvent,
} from '../../src/protocol/proxy';

const ID = 'AbCdEfGhIjKlMnOpQrStUvWxYz012345';
const EVENTS: CellEvent[] = [
  { type: 'request', data: { seq: 1, request: { op: 'llm_query', prompts: ['a\nb', 'é ✓ 日本'], model: null } } },
  { type: 'request', data: { seq: 2, request: { op: 'tool', name: 'lookup', args: [1, 'x'], kwargs: { deep: { list: [null] } } } } },
  { type: 'output', data: { stream: 'stdout', text: 'partial é\nline\r\n' } },
  { type: 'output', data: { stream: 'stderr', text: '' } },
  { type: 'result', data: { stdout: 'line\n\nblank above\r\n', stderr: '', locals: ['x'], previews: { x: '[1, 2]' }, execution_time: 0.25, final_answer: null, error_type: null, interrupted: false } },
  { type: 'error', data: { code: 'crashed', message: 'the sandbox process ended unexpectedly' } },
];

function parseAll(text: string, chunk: number): CellEvent[] {
  const parser = new CellEventParser();
  const out: CellEvent[] = [];
  for (let i = 0; i < text.length; i += chunk) out.push(...parser.push(text.slice(i, i + chunk)));
  return out;
}

describe('cell events', () => {
  const wire = EVENTS.map((e, i) => (i === 1 ? SSE_HEARTBEAT : '') + formatCellEvent(e)).join('');

  it('round-trip through formatCellEvent and the parser, however the stream is cut', () => {
    for (const chunk of [1, 2, 3, 7, 64, wire.length]) expect(parseAll(wire, chunk)).toEqual(EVENTS);
  });

  it('accept CRLF and CR line endings (a proxy behind another server), cut between CR and LF', () => {
    expect(parseAll(wire.replace(/\n/g, '\r\n'), 1)).toEqual(EVENTS);
    expect(parseAll(wire.replace(/\n/g, '\r'), 5)).toEqual(EVENTS);
  });

  it('join multi-line data, ignore comments and unknown event types', () => {
    const text = ': hello\nevent: future\ndata: {}\n\nevent: error\ndata: {"code": "x",\ndata:  "message": "y"}\n\n';
    expect(parseAll(text, 4)).toEqual([{ type: 'error', data: { code: 'x', message: 'y' } }]);
  });

  it('refuse data that is not JSON, a result that is not a cell result, and an event over the limit', () => {
    expect(() => new CellEventParser().push('event: result\ndata: {nope\n\n')).toThrow(ProtocolError);
    expect(() => new CellEventParser().push('event: result\ndata: {"stdout": 1}\n\n')).toThrow(/not a cell result/);
    expect(() => new CellEventParser().push('event: output\ndata: {"stream": "stdin", "text": "x"}\n\n')).toThrow(/output event/);
    expect(() => new CellEventParser().push('event: output\ndata: {"stream": "stdout"}\n\n')).toThrow(/output event/);
    const small = new CellEventParser(100);
    expect(() => {
      for (let i = 0; i < 20; i++) small.push('data: xxxxxxxxxx');
    }).toThrow(/longer than 100 characters/);
  });
});

describe('routes and bodies', () => {
  it('build and parse sandbox paths; refuse unknown actions and malformed ids', () => {
    expect(sandboxPath(ID)).toBe(`/v1/sandboxes/${ID}`);
    expect(parseSandboxPath(sandboxPath(ID))).toEqual({ id: ID, action: undefined, index: undefined });
    expect(parseSandboxPath(sandboxPath(ID, 'cells'))).toEqual({ id: ID, action: 'cells', index: undefined });
    expect(contextPath(ID, 3, 'json')).toBe(`/v1/sandboxes/${ID}/contexts/3?kind=json`);
    expect(parseSandboxPath(sandboxPath(ID, 'contexts', 3))).toEqual({ id: ID, action: 'contexts', index: 3 });
    expect(parseSandboxPath(`/v1/sandboxes/${ID}/constructor`)).toBeUndefined();
    expect(parseSandboxPath('/v1/sandboxes/short')).toBeUndefined();
    expect(parseSandboxPath(`/v1/sandboxes/${ID}/../x`)).toBeUndefined();
  });

  it('check request bodies with messages that say what is wrong', () => {
    expect(parseCreateSandboxRequest(undefined)).toEqual({});
    expect(parseCreateSandboxRequest({ provider: '__proto__' })).toEqual({ provider: '__proto__' });
    expect(() => parseCreateSandboxRequest({ provider: 3 })).toThrow("'provider' must be a string.");
    expect(() => parseRegisterToolsRequest({ tools: [{ kind: 'data' }] })).toThrow("'name' in tools[0] must be a string.");
    expect(parseRegisterToolsRequest({ tools: [{ name: 't', kind: 'data', valueJSON: '1' }, { name: 'f' }] })).toEqual({
      tools: [{ name: 't', kind: 'data', valueJSON: '1' }, { name: 'f', kind: 'function' }],
    });
    expect(parseAnswerRequest({ seq: 4, reply: { results: ['a'] } })).toEqual({ seq: 4, reply: { results: ['a'] } });
    expect(parseAnswerRequest({ seq: 4, reply: 'junk' })).toEqual({ seq: 4, reply: { error: 'the page sent an answer of no known shape' } });
    expect(() => parseAnswerRequest({ seq: '4' })).toThrow("'seq' must be an integer.");
  });

  it('read any error body, even one not from the proxy', () => {
    expect(parseErrorBody({ error: { code: 'busy', message: 'later' } }, 409)).toEqual({ code: 'busy', message: 'later' });
    expect(parseErrorBody('<html>', 502, 'Bad Gateway')).toEqual({ code: 'http_502', message: 'Bad Gateway' });
  });
});
