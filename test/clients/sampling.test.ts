import { describe, expect, it } from 'vitest';
import { anthropicSampling } from '../../src/clients/anthropic';
import { openAISampling } from '../../src/clients/openai';
import type { SamplingArgs } from '../../src/core/types';

const ALL: SamplingArgs = { temperature: 0.3, topP: 0.8, maxOutputTokens: 512, reasoningEffort: 'high', stop: ['</answer>'] };

describe('openAISampling: Chat Completions parameters', () => {
  it('maps every field to its Chat Completions name', () => {
    expect(openAISampling(ALL)).toEqual({ temperature: 0.3, top_p: 0.8, max_completion_tokens: 512, reasoning_effort: 'high', stop: ['</answer>'] });
  });

  it('sends only what is set (0 is a value)', () => {
    expect(openAISampling({ temperature: 0 })).toEqual({ temperature: 0 });
    expect(openAISampling({})).toEqual({});
    expect(openAISampling(undefined)).toEqual({});
  });
});

describe('anthropicSampling: Messages API parameters', () => {
  it('maps every field to its Messages API name; the effort goes in output_config', () => {
    expect(anthropicSampling(ALL)).toEqual({ temperature: 0.3, top_p: 0.8, max_tokens: 512, stop_sequences: ['</answer>'], output_config: { effort: 'high' } });
  });

  it('keeps an output_config given in extraBody and adds the effort to it', () => {
    const format = { type: 'json_schema', schema: { type: 'object' } };
    expect(anthropicSampling({ reasoningEffort: 'low' }, { output_config: { format } })).toEqual({ output_config: { format, effort: 'low' } });
  });

  it('sends only what is set', () => {
    expect(anthropicSampling({ topP: 1 })).toEqual({ top_p: 1 });
    expect(anthropicSampling(undefined)).toEqual({});
  });
});
