/** Provider names to providers, configured from the environment. Adding one: a file and a line. */
import type { Logger } from '../log.js';
import type { SandboxProvider } from '../types.js';
import { createLocalProvider } from './local.js';

type Env = Record<string, string | undefined>;

/** Cloud sandboxes get no network unless RLM_PROXY_SANDBOX_NETWORK (or --sandbox-network) turns it on. */
function sandboxNetwork(env: Env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.RLM_PROXY_SANDBOX_NETWORK ?? '').toLowerCase());
}

const FACTORIES: Record<string, (env: Env) => Promise<SandboxProvider>> = {
  local: async (env) => createLocalProvider({ python: env.RLM_PROXY_PYTHON }),
  e2b: async (env) => {
    if (!env.E2B_API_KEY) throw new Error('The e2b provider needs E2B_API_KEY in the environment.');
    const { createE2BProvider } = await import('./e2b.js');
    return createE2BProvider({ apiKey: env.E2B_API_KEY, template: env.RLM_PROXY_E2B_TEMPLATE, allowNetwork: sandboxNetwork(env) });
  },
  modal: async (env) => {
    if (!env.MODAL_TOKEN_ID || !env.MODAL_TOKEN_SECRET) throw new Error('The modal provider needs MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment.');
    const { createModalProvider } = await import('./modal.js');
    return createModalProvider({ tokenId: env.MODAL_TOKEN_ID, tokenSecret: env.MODAL_TOKEN_SECRET, appName: env.RLM_PROXY_MODAL_APP, image: env.RLM_PROXY_MODAL_IMAGE, allowNetwork: sandboxNetwork(env) });
  },
};

/** `names` empty: every cloud provider whose credentials are set, else local. */
export async function createProviders(names: string[], env: Env, log: Logger): Promise<Record<string, SandboxProvider>> {
  let wanted = names;
  if (wanted.length === 0) {
    wanted = [env.E2B_API_KEY ? 'e2b' : '', env.MODAL_TOKEN_ID && env.MODAL_TOKEN_SECRET ? 'modal' : ''].filter(Boolean);
    if (wanted.length === 0) {
      wanted = ['local'];
      log('warn', 'no cloud credentials set: using the local provider, which runs model-written code on this host');
    }
  }
  const out: Record<string, SandboxProvider> = {};
  for (const name of wanted) {
    const factory = FACTORIES[name];
    if (!factory) throw new Error(`Unknown provider '${name}'. Known: ${Object.keys(FACTORIES).join(', ')}.`);
    out[name] = await factory(env);
  }
  return out;
}
