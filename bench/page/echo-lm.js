// An instant in-page LM client for the benchmarks: the root's first call gets `code` as a
// repl block, every sub-call gets its prompt back at once.
export function echoLM(code, usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 }) {
  return {
    provider: 'bench',
    model: 'echo',
    async complete({ messages }) {
      const text = messages[0].role === 'system' ? '```repl\n' + code + '\n```' : messages[0].content;
      return { text, usage, model: 'echo' };
    },
  };
}
