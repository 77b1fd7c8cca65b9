// The needle run of the benchmarks: a haystack of `mb` MB with one line that matters, and an
// instant in-page LM that plays the root (look, search with llm_query_batched, answer) and
// the sub-model (the number, or NONE). `lm.ms` is the time spent inside the LM's calls;
// `lm.rootLatencyMs` makes each root call take that long (0: instant).
export const NEEDLE_ANSWER = '7731';

export function needleText(mb) {
  const line = 'filler line with nothing of interest in it at all, just words and more words\n';
  const count = Math.floor((mb * 1024 * 1024) / line.length);
  const parts = new Array(count).fill(line);
  parts[Math.floor(count * 0.7)] = `The magic number is ${NEEDLE_ANSWER}.\n`;
  return parts.join('');
}

const STEPS = [
  'print(len(context))\nprint(context[:200])',
  'size = 4_000_000\nchunks = [context[i:i + size] for i in range(0, len(context), size)]\nreplies = llm_query_batched([f"Find the magic number.\\n{c}" for c in chunks])\nfound = [r for r in replies if r != "NONE"]\nprint(len(chunks), found)',
  'answer["content"] = found[0]\nanswer["ready"] = True',
];

export function needleLM() {
  const lm = {
    provider: 'bench',
    model: 'instant',
    ms: 0,
    rootLatencyMs: 0,
    async complete({ messages }) {
      const t = performance.now();
      let text;
      if (messages[0].role === 'system') {
        if (lm.rootLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, lm.rootLatencyMs));
        const turn = messages.filter((m) => m.role === 'assistant').length;
        text = '```repl\n' + STEPS[turn] + '\n```';
      } else {
        text = /magic number is (\d+)/.exec(messages[0].content)?.[1] ?? 'NONE';
      }
      lm.ms += performance.now() - t;
      return { text, usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'instant' };
    },
  };
  return lm;
}
