/**
 * What a REPL must get back when its Python process is replaced: the contexts, the reserved
 * variables (histories) and the tools, in the order they were given. Other variables are
 * lost by design — the model is told which names came back.
 */
import type { ContextInput, ToolDefinition } from '../core/types';
import type { ToolSpec } from '../protocol/worker';

/** A context as the loop loaded it, kept to be loaded again after a restart. */
export interface JournalContext {
  index: number;
  context: ContextInput;
}

/** The journal of one REPL; {@link RestorableRepl} writes it after each successful call. */
export class ReplJournal {
  private readonly loaded: JournalContext[] = [];
  private readonly reserved = new Map<string, unknown>();
  private registered: ToolDefinition[] = [];

  /** In the order they were first loaded; loading an index again replaces its entry. */
  get contexts(): readonly JournalContext[] {
    return this.loaded;
  }

  /** Reserved variables (name → JSON-able value), in the order they were first set. */
  get variables(): ReadonlyMap<string, unknown> {
    return this.reserved;
  }

  get tools(): readonly ToolDefinition[] {
    return this.registered;
  }

  addContext(index: number, context: ContextInput): void {
    const at = this.loaded.findIndex((c) => c.index === index);
    if (at >= 0) this.loaded[at] = { index, context };
    else this.loaded.push({ index, context });
  }

  setVariable(name: string, value: unknown): void {
    this.reserved.set(name, value);
  }

  setTools(tools: readonly ToolDefinition[]): void {
    this.registered = [...tools];
  }

  clear(): void {
    this.loaded.length = 0;
    this.reserved.clear();
    this.registered = [];
  }

  /** The Python names a restart brings back: context (and context_N), reserved variables, tools. */
  reloadedNames(): string[] {
    const names = [...this.loaded.map((c) => (c.index === 0 ? 'context' : `context_${c.index}`)), ...this.reserved.keys(), ...this.registered.map((t) => t.name)];
    return [...new Set(names)];
  }
}

/** The wire form of tool definitions: functions by name, data as JSON. */
export function toToolSpecs(tools: readonly ToolDefinition[]): ToolSpec[] {
  return tools.map((t) => (t.kind === 'data' ? { name: t.name, kind: 'data', valueJSON: toJSON(t.value) } : { name: t.name, kind: 'function' }));
}

/** JSON text of a variable or data tool value (undefined becomes null, as Python's None). */
export function toJSON(value: unknown): string {
  return JSON.stringify(value ?? null);
}
