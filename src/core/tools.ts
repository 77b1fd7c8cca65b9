/**
 * Custom tools: JavaScript functions and data made available to REPL code. Functions run on
 * the page; Python calls them synchronously and gets JSON-converted results.
 */
import { ConfigurationError } from './errors';
import type { ToolDescription } from './prompts';
import type { ToolDefinition } from './types';

/** Python names the REPL owns; tools may not take them. */
export const RESERVED_NAMES = [
  'context',
  'history',
  'llm_query',
  'llm_query_batched',
  'rlm_query',
  'rlm_query_batched',
  'SHOW_VARS',
  'FINAL_VAR',
  'answer',
] as const;

/** A custom tool function: called from Python with converted args and kwargs; may be async; returns JSON-able data. */
export type ToolFunction = (...args: any[]) => unknown;

/** A tool: a function, a JSON-able value, or either with a description for the prompt. */
export type ToolEntry = ToolFunction | { tool: unknown; description?: string } | unknown;

/** A tool entry after checking: a function or a value, with its description. */
export interface NormalizedTool {
  name: string;
  fn?: ToolFunction | undefined;
  value?: unknown;
  description?: string | undefined;
}

function isDescribed(entry: unknown): entry is { tool: unknown; description?: string } {
  return typeof entry === 'object' && entry !== null && !Array.isArray(entry) && 'tool' in entry;
}

/** Checks names and splits entries into functions and data. Throws ConfigurationError. */
export function normalizeTools(tools: Record<string, ToolEntry> | undefined): NormalizedTool[] {
  if (!tools) return [];
  const names = Object.keys(tools);
  const clashes = names.filter((n) => (RESERVED_NAMES as readonly string[]).includes(n) || /^context_\d+$|^history_\d+$/.test(n));
  if (clashes.length > 0) {
    throw new ConfigurationError(
      `customTools uses reserved name(s) ${clashes.map((n) => `'${n}'`).join(', ')}. ` +
        `Rename them; reserved names are: ${RESERVED_NAMES.join(', ')}, context_N, history_N.`,
    );
  }
  const invalid = names.filter((n) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
  if (invalid.length > 0) {
    throw new ConfigurationError(`customTools name(s) ${invalid.map((n) => `'${n}'`).join(', ')} are not valid Python identifiers.`);
  }
  return names.map((name) => {
    const entry = tools[name];
    const inner = isDescribed(entry) ? entry.tool : entry;
    const description = isDescribed(entry) ? entry.description : undefined;
    if (typeof inner === 'function') return { name, fn: inner as ToolFunction, description };
    return { name, value: toJSONValue(inner, name), description };
  });
}

/** The definitions a REPL registers (functions by name, data as JSON-able values). */
export function toToolDefinitions(tools: NormalizedTool[]): ToolDefinition[] {
  return tools.map((t) => (t.fn ? { name: t.name, kind: 'function' } : { name: t.name, kind: 'data', value: t.value }));
}

/** The tools as the system prompt lists them. */
export function describeTools(tools: NormalizedTool[]): ToolDescription[] {
  return tools.map((t) => ({
    name: t.name,
    description: t.description,
    kind: t.fn ? 'function' : 'data',
    typeName: t.fn ? undefined : pythonTypeName(t.value),
  }));
}

function pythonTypeName(value: unknown): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return 'list';
  switch (typeof value) {
    case 'string':
      return 'str';
    case 'number':
      return Number.isInteger(value) ? 'int' : 'float';
    case 'boolean':
      return 'bool';
    default:
      return 'dict';
  }
}

/** Converts a tool's value or result to what JSON (and so Python) can carry. */
export function toJSONValue(value: unknown, what: string): unknown {
  if (value === undefined) return null;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : JSON.parse(text);
  } catch (error) {
    throw new ConfigurationError(`${what} is not JSON-convertible (${(error as Error).message}); pass plain data (str, numbers, bools, null, lists, objects).`);
  }
}

/** Calls a tool function with Python's args and kwargs (kwargs become a last object argument). */
export async function callTool(tool: NormalizedTool, args: unknown[], kwargs: Record<string, unknown>): Promise<unknown> {
  if (!tool.fn) throw new Error(`${tool.name} is data, not a function`);
  const callArgs = Object.keys(kwargs).length > 0 ? [...args, kwargs] : args;
  return toJSONValue(await tool.fn(...callArgs), `the result of ${tool.name}()`);
}
