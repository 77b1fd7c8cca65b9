/**
 * Structured output, shared by the clients. Both APIs want an object at the root of the
 * schema, so any other schema (a list, a string, ...) travels wrapped as `{ "value": ... }`
 * and comes back unwrapped. Replies are parsed here; core validates them.
 */
import { walkSchema } from '../core/schema';
import type { JSONSchema, ResponseFormat } from '../core/types';
import { malformed } from './errors';

/** The schema as sent to a provider, and whether the reply must be unwrapped. */
export interface ProviderSchema {
  name: string;
  schema: JSONSchema;
  wrapped: boolean;
}

export function providerSchema(format: ResponseFormat): ProviderSchema {
  // `$schema` names a dialect and constrains nothing; some APIs refuse it.
  const { $schema: _dialect, ...schema } = format.schema;
  if (schema.type === 'object') return { name: format.name, schema, wrapped: false };
  // Definitions stay at the root, where '#/$defs/...' references point.
  const { $defs, definitions, ...inner } = schema;
  return {
    schema: {
      type: 'object',
      properties: { value: inner },
      required: ['value'],
      additionalProperties: false,
      ...($defs !== undefined ? { $defs } : {}),
      ...(definitions !== undefined ? { definitions } : {}),
    },
    name: format.name,
    wrapped: true,
  };
}

/** The reply's value; LMResponseError when the provider's structured reply is not JSON of that shape. */
export function readStructured(text: string, wrapped: boolean, provider: string, model: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed(provider, model, `the structured reply is not JSON (it starts: ${JSON.stringify(text.slice(0, 80))})`);
  }
  if (!wrapped) return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'value' in value) return (value as { value: unknown }).value;
  throw malformed(provider, model, 'the structured reply lacks the "value" member the request asked for');
}

/**
 * Whether OpenAI's strict mode accepts `schema` as it is: every object lists all its
 * properties as required and allows no others. Otherwise the request is not strict (the
 * API would refuse the schema) and validation alone holds the reply to it.
 */
export function isStrictReady(schema: JSONSchema): boolean {
  let ready = true;
  walkSchema(schema, (node) => {
    const properties = node.properties;
    if (node.type !== 'object' && properties === undefined) return;
    const names = typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
    const required = Array.isArray(node.required) ? node.required : [];
    if (node.additionalProperties !== false || names.some((name) => !required.includes(name))) ready = false;
  });
  return ready;
}
