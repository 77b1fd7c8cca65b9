/**
 * Schemas for typed answers and structured sub-calls: a Standard Schema (zod, valibot,
 * ArkType, ...) or a JSON Schema object. This file tells the two apart, finds the JSON
 * Schema that models and providers are shown, validates values and turns failures into
 * issues (path + message) a model can act on.
 *
 * JSON Schemas are checked with @cfworker/json-schema, which interprets a schema as it
 * walks the value and never generates code (no `eval`, no `new Function`): it runs on a
 * page whose Content-Security-Policy forbids 'unsafe-eval', in workers and in extensions.
 */
import type { Schema as ValidatorSchema, SchemaDraft, Validator } from '@cfworker/json-schema';
import type { StandardJSONSchemaV1, StandardSchemaV1 } from '@standard-schema/spec';
import { ConfigurationError } from './errors';
import type { JSONSchema, RecordedSchema, SchemaIssue } from './types';

/** What `completion({ schema })` takes: a Standard Schema or a JSON Schema object. */
export type AnswerSchema = StandardSchemaV1 | JSONSchema;

/** The outcome of one validation: the (possibly transformed) value, or what is wrong. */
export type ValidationOutcome = { ok: true; value: unknown } | { ok: false; issues: SchemaIssue[] };

/** A schema ready to use: what to record and show, and how to check a value. */
export interface CompiledSchema {
  readonly recorded: RecordedSchema;
  /** The JSON Schema for prompts and providers' structured output, when one exists. */
  readonly jsonSchema: JSONSchema | undefined;
  validate(value: unknown): Promise<ValidationOutcome>;
}

/** Who wrote a schema: the app (trusted) or model-written Python code (hostile until checked). */
export type SchemaSource = 'app' | 'model';

/** Caps on a schema written by model code: it is walked on the page's main thread. */
export const MODEL_SCHEMA_MAX_CHARS = 32_000;
export const MODEL_SCHEMA_MAX_DEPTH = 32;
/** Deeper than this, an app's schema is taken for a cycle. */
const APP_SCHEMA_MAX_DEPTH = 256;

/** Issues kept from one validation (the trajectory records them). */
const MAX_KEPT_ISSUES = 200;
/** Issues listed in one piece of feedback; the rest are counted. */
const MAX_LISTED_ISSUES = 20;
const MAX_ISSUE_CHARS = 300;

/** Whether `value` implements Standard Schema v1 (`~standard.validate`). */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props: unknown = (value as { '~standard'?: unknown })['~standard'];
  if (typeof props !== 'object' || props === null) return false;
  return (props as { version?: unknown }).version === 1 && typeof (props as { validate?: unknown }).validate === 'function';
}

type ValidatorModule = typeof import('@cfworker/json-schema');
let validatorModule: Promise<ValidatorModule> | undefined;

/**
 * Validates and prepares `schema`. Rejects with ConfigurationError when it cannot be used:
 * not a schema, a remote `$ref`, or (for model-written schemas) over the caps or with a
 * regex. The JSON Schema validator is loaded on first use (pages without schemas skip it).
 */
export async function compileSchema(schema: unknown, source: SchemaSource): Promise<CompiledSchema> {
  if (isStandardSchema(schema)) return compileStandard(schema);
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new ConfigurationError(`A schema must be a Standard Schema (zod, valibot, ArkType, ...) or a JSON Schema object; got ${Array.isArray(schema) ? 'an array' : typeof schema}.`);
  }
  return compileJSONSchema(schema as JSONSchema, source);
}

function compileStandard(schema: StandardSchemaV1): CompiledSchema {
  const props = schema['~standard'];
  const jsonSchema = standardToJSONSchema(schema);
  return {
    recorded: { vendor: props.vendor, jsonSchema },
    jsonSchema,
    async validate(value) {
      const result = await props.validate(value);
      if (!result.issues) return { ok: true, value: result.value };
      return { ok: false, issues: result.issues.slice(0, MAX_KEPT_ISSUES).map((issue) => ({ path: (issue.path ?? []).map(pathKey), message: issue.message })) };
    },
  };
}

/** The JSON Schema of a Standard Schema that also implements Standard JSON Schema (zod 4, ...). */
function standardToJSONSchema(schema: StandardSchemaV1): JSONSchema | undefined {
  const converter = (schema['~standard'] as Partial<StandardJSONSchemaV1.Props>).jsonSchema;
  if (typeof converter?.output !== 'function') return undefined;
  for (const target of ['draft-2020-12', 'draft-07'] as const) {
    try {
      return converter.output({ target });
    } catch {
      // This target is not supported; try the next.
    }
  }
  return undefined;
}

function pathKey(segment: PropertyKey | StandardSchemaV1.PathSegment): string | number {
  const key = typeof segment === 'object' ? segment.key : segment;
  return typeof key === 'number' ? key : String(key);
}

async function compileJSONSchema(schema: JSONSchema, source: SchemaSource): Promise<CompiledSchema> {
  checkJSONSchema(schema, source);
  const { Validator } = await (validatorModule ??= import('@cfworker/json-schema'));
  let validator: Validator;
  try {
    validator = new Validator(schema as ValidatorSchema, draftOf(schema), false);
  } catch (error) {
    throw new ConfigurationError(`The JSON Schema cannot be used: ${(error as Error).message}`);
  }
  return {
    recorded: { vendor: 'json-schema', jsonSchema: schema },
    jsonSchema: schema,
    async validate(value) {
      let result: ReturnType<Validator['validate']>;
      try {
        result = validator.validate(value);
      } catch (error) {
        // A value nested too deeply for the validator's recursion, for instance.
        return { ok: false, issues: [{ path: [], message: `could not be checked (${(error as Error).message}): send a smaller or flatter value.` }] };
      }
      return result.valid ? { ok: true, value } : { ok: false, issues: toIssues(result.errors, value) };
    },
  };
}

/** The draft named by `$schema`; 2020-12 when none is named. */
function draftOf(schema: JSONSchema): SchemaDraft {
  const uri = typeof schema.$schema === 'string' ? schema.$schema : '';
  if (uri.includes('draft-04')) return '4';
  if (uri.includes('draft-06') || uri.includes('draft-07')) return '7';
  if (uri.includes('2019-09')) return '2019-09';
  return '2020-12';
}

// ------------------------------------------------------------------ checking a schema

/** Keywords whose value is one subschema, a list of them, or a map of names to them. */
const ONE = new Set(['additionalItems', 'additionalProperties', 'contains', 'not', 'if', 'then', 'else', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties', 'items']);
const LIST = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items']);
const MAP = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies']);

function checkJSONSchema(schema: JSONSchema, source: SchemaSource): void {
  if (source === 'model') {
    let text: string;
    try {
      text = JSON.stringify(schema);
    } catch {
      throw new ConfigurationError('The schema is not JSON-serializable.');
    }
    if (text.length > MODEL_SCHEMA_MAX_CHARS) {
      throw new ConfigurationError(`The schema is ${text.length} characters of JSON; sub-call schemas are limited to ${MODEL_SCHEMA_MAX_CHARS}. Use a smaller schema.`);
    }
  }
  walk(schema, 0, '#', (node, depth, at) => {
    const maxDepth = source === 'model' ? MODEL_SCHEMA_MAX_DEPTH : APP_SCHEMA_MAX_DEPTH;
    if (depth > maxDepth) throw new ConfigurationError(`The schema nests deeper than ${maxDepth} levels (at ${at}). Use a flatter schema.`);
    if (typeof node.$ref === 'string' && !node.$ref.startsWith('#')) {
      throw new ConfigurationError(`The schema refers to '${node.$ref}' (at ${at}); only references inside the schema ('#/...') are followed, nothing is fetched.`);
    }
    // A regex from model code, run on a model's reply on the page's main thread, could
    // backtrack for minutes (ReDoS): sub-call schemas may not carry one.
    if (source === 'model' && ('pattern' in node || 'patternProperties' in node || node.format === 'regex')) {
      throw new ConfigurationError(`Sub-call schemas may not use 'pattern', 'patternProperties' or format 'regex' (at ${at}): check strings in Python instead.`);
    }
  });
}

/** Calls `visit` on `schema` and every subschema in it (not on property names or other values). */
export function walkSchema(schema: JSONSchema, visit: (node: JSONSchema) => void): void {
  walk(schema, 0, '#', (node) => visit(node));
}

function walk(node: unknown, depth: number, at: string, visit: (node: JSONSchema, depth: number, at: string) => void): void {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
  const schema = node as JSONSchema;
  visit(schema, depth, at);
  for (const [keyword, value] of Object.entries(schema)) {
    const here = `${at}/${keyword}`;
    if (LIST.has(keyword) && Array.isArray(value)) value.forEach((sub, i) => walk(sub, depth + 1, `${here}/${i}`, visit));
    else if (ONE.has(keyword)) walk(value, depth + 1, here, visit);
    else if (MAP.has(keyword) && typeof value === 'object' && value !== null) {
      for (const [name, sub] of Object.entries(value)) walk(sub, depth + 1, `${here}/${name}`, visit);
    }
  }
}

// ------------------------------------------------------------------ issues

/** Keywords whose error only says "a part below failed": dropped when that part's own error is listed. */
const SUMMARY_KEYWORDS = new Set(['properties', 'items', 'prefixItems', 'additionalItems', 'additionalProperties', 'patternProperties', 'unevaluatedProperties', 'unevaluatedItems', '$ref', 'allOf', 'dependentSchemas', 'contains']);

interface ValidatorError {
  keyword: string;
  instanceLocation: string;
  error: string;
}

/** The validator's errors, most specific first, as issues with paths into `value`. */
function toIssues(errors: ValidatorError[], value: unknown): SchemaIssue[] {
  // Locations with an error further down, found in one pass (a hostile answer can have 100k errors).
  const above = new Set<string>();
  for (const e of errors) {
    for (let cut = e.instanceLocation.lastIndexOf('/'); cut > 0; cut = e.instanceLocation.lastIndexOf('/', cut - 1)) {
      const parent = e.instanceLocation.slice(0, cut);
      if (above.has(parent)) break;
      above.add(parent);
    }
  }
  const seen = new Set<string>();
  const out: SchemaIssue[] = [];
  for (const e of errors) {
    if (out.length >= MAX_KEPT_ISSUES) break;
    if (SUMMARY_KEYWORDS.has(e.keyword) && above.has(e.instanceLocation)) continue;
    const path = pointerToPath(e.instanceLocation, value);
    let message = e.keyword === 'false' ? 'is not allowed here (the schema has no such property or item).' : e.error;
    // A missing property is reported where it should be, as zod and valibot do.
    const missing = e.keyword === 'required' ? /required property "(.*)"\.$/.exec(e.error) : null;
    if (missing) {
      path.push(missing[1]!);
      message = 'is required but missing.';
    }
    const key = `${JSON.stringify(path)} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

/** '#/items/0/line' → ['items', 0, 'line'], with indexes as numbers where the value is an array. */
function pointerToPath(pointer: string, value: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  let current = value;
  for (const raw of pointer.replace(/^#\/?/, '').split('/')) {
    if (raw === '') continue;
    let key: string;
    try {
      key = decodeURI(raw).replace(/%23/g, '#').replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      key = raw;
    }
    const segment = Array.isArray(current) && /^\d+$/.test(key) ? Number(key) : key;
    path.push(segment);
    current = typeof current === 'object' && current !== null ? (current as Record<string | number, unknown>)[segment] : undefined;
  }
  return path;
}

/** A path as Python would index it: `root["items"][0]["line"]`. */
export function formatPath(root: string, path: readonly (string | number)[]): string {
  return root + path.map((k) => (typeof k === 'number' ? `[${k}]` : `[${JSON.stringify(k)}]`)).join('');
}

/** One line per issue (at most 20, each cut at 300 characters), then how many more there are. */
export function formatIssues(issues: readonly SchemaIssue[], root: string): string {
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => {
    const message = issue.message.length > MAX_ISSUE_CHARS ? `${issue.message.slice(0, MAX_ISSUE_CHARS)}...` : issue.message;
    return `- ${formatPath(root, issue.path)}: ${message}`;
  });
  if (issues.length > MAX_LISTED_ISSUES) lines.push(`- ... and ${issues.length - MAX_LISTED_ISSUES} more`);
  return lines.join('\n');
}

// ------------------------------------------------------------------ reading values

/** The Python variable that makes the REPL hand answers back as JSON (see rlm_runtime.py). */
export const STRUCTURED_ANSWER_VARIABLE = '_rlm_structured_answer';

/** `value` as JSON text; `fallback` when it has none (undefined, a BigInt, a cycle). */
export function toJSONText(value: unknown, fallback: string): string {
  try {
    return JSON.stringify(value) ?? fallback;
  } catch {
    return fallback;
  }
}

/** A JSON text's value, or `undefined` when it is not JSON. */
export function parseJSON(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** A model's JSON reply, with a ```json fence around it tolerated. */
export function parseJSONReply(text: string): { value: unknown } | undefined {
  const fenced = /^\s*```[\w-]*\s*\n([\s\S]*?)\n\s*```\s*$/.exec(text);
  return parseJSON(fenced ? fenced[1]! : text.trim());
}

/**
 * Checks a marked answer. `text` is what the REPL handed back: JSON (with a schema set,
 * the runtime serializes `answer["content"]`), or raw text from FINAL(...). A string that
 * itself holds JSON (the model ran json.dumps) is tried as that JSON when the string fails.
 */
export async function validateAnswerText(schema: CompiledSchema, text: string): Promise<ValidationOutcome> {
  const parsed = parseJSON(text);
  const value = parsed ? parsed.value : text;
  const first = await schema.validate(value);
  if (first.ok || typeof value !== 'string' || !/^\s*[[{]/.test(value)) return first;
  const inner = parseJSON(value);
  if (!inner) return first;
  const second = await schema.validate(inner.value);
  return second.ok ? second : first;
}
