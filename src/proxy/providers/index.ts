/** Provider names to providers, configured from the environment. Adding one: a file and a line. */
import type { Logger } from '../log.js';
import type { SandboxProvider } from '../types.js';
import { createLocalProvider } from './local.js';

type Env = Record<string, string | undefined>;

/** Sandboxes get no network unless RLM_PROXY_SANDBOX_NETWORK (or --sandbox-network) turns it on. */
function sandboxNetwork(env: Env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.RLM_PROXY_SANDBOX_NETWORK ?? '').toLowerCase());
}

/** Settings that come from flags rather than the environment. */
export interface ProviderSettings {
  /** Let the local provider run without bubblewrap (no isolation). Default: false. */
  unsafeNoSandbox?: boolean | undefined;
}

/** The cloud SDKs are optional peer dependencies: whoever deploys the proxy installs the one they use. */
const SDK_PACKAGES: Record<string, string> = { e2b: 'e2b@^2.51.0', modal: 'modal@^0.11.1' };

/** Fails now, naming the package to install, rather than at the first sandbox. */
async function requireSDK(name: 'e2b' | 'modal'): Promise<void> {
  try {
    await (name === 'e2b' ? import('e2b') : import('modal'));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error(`The ${name} provider needs the '${name}' package, which is not installed. Install it next to rlm-web: npm install ${SDK_PACKAGES[name]}`, { cause: error });
  }
}

const FACTORIES: Record<string, (env: Env, settings: ProviderSettings) => Promise<SandboxProvider>> = {
  local: async (env, settings) => createLocalProvider({ python: env.RLM_PROXY_PYTHON, bwrap: env.RLM_PROXY_BWRAP, unsafeNoSandbox: settings.unsafeNoSandbox, network: sandboxNetwork(env) }),
  e2b: async (env) => {
    if (!env.E2B_API_KEY) throw new Error('The e2b provider needs E2B_API_KEY in the environment.');
    await requireSDK('e2b');
    const { createE2BProvider } = await import('./e2b.js');
    return createE2BProvider({ apiKey: env.E2B_API_KEY, template: env.RLM_PROXY_E2B_TEMPLATE, allowNetwork: sandboxNetwork(env) });
  },
  modal: async (env) => {
    if (!env.MODAL_TOKEN_ID || !env.MODAL_TOKEN_SECRET) throw new Error('The modal provider needs MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment.');
    await requireSDK('modal');
    const { createModalProvider } = await import('./modal.js');
    return createModalProvider({ tokenId: env.MODAL_TOKEN_ID, tokenSecret: env.MODAL_TOKEN_SECRET, appName: env.RLM_PROXY_MODAL_APP, image: env.RLM_PROXY_MODAL_IMAGE, allowNetwork: sandboxNetwork(env) });
  },
};

/** `names` empty: every cloud provider whose credentials are set, else local. */
export async function createProviders(names: string[], env: Env, log: Logger, settings: ProviderSettings = {}): Promise<Record<string, SandboxProvider>> {
  let wanted = names;
  if (wanted.length === 0) {
    wanted = [env.E2B_API_KEY ? 'e2b' : '', env.MODAL_TOKEN_ID && env.MODAL_TOKEN_SECRET ? 'modal' : ''].filter(Boolean);
    if (wanted.length === 0) {
      wanted = ['local'];
      log('info', 'no cloud credentials set: using the local provider (Python under bubblewrap on this host)');
    }
  }
  const out: Record<string, SandboxProvider> = {};
  for (const name of wanted) {
    if (!Object.hasOwn(FACTORIES, name)) throw new Error(`Unknown provider '${name}'. Known: ${Object.keys(FACTORIES).join(', ')}.`);
    const provider = await FACTORIES[name]!(env, settings);
    if (provider.unsafe) {
      log('warn', `UNSAFE: the ${name} provider runs model-written code WITHOUT a sandbox, with this proxy's rights: it can read the proxy's tokens and every file the proxy can. Only for a throwaway machine; install bubblewrap instead. The proxy listens on loopback only.`);
    }
    out[name] = provider;
  }
  return out;
}
