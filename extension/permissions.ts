/**
 * Host access, asked for at run time and only for what a run needs: the LM endpoint's origin
 * (so that a local server without CORS headers works too) and, to read all tabs, access to
 * every site for that one read (removed right after, unless it was granted before). One
 * request, one prompt, made first thing in the click handler: Chrome wants a fresh gesture.
 */

const ALL_SITES = '<all_urls>';

/** The match pattern for one origin: 'https://api.openai.com' → 'https://api.openai.com/*'. */
export function originPattern(origin: string): string {
  const url = new URL(origin);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`Not a web origin: ${origin}`);
  return `${url.protocol}//${url.hostname}/*`;
}

export interface Access {
  granted: boolean;
  /**
   * Gives back what was asked for only this run (all sites). Chrome drops the endpoint's
   * origin with it (it is covered by all sites): the next Run asks for it again.
   */
  release(): Promise<void>;
}

/** Asks for the endpoint's origin, plus every site when `allSites` (to read all tabs). */
export async function requestAccess(endpointOrigin: string, allSites: boolean): Promise<Access> {
  const origins = [originPattern(endpointOrigin), ...(allSites ? [ALL_SITES] : [])];
  // The request goes first, while the click is fresh; the browser answers calls in order, so
  // `contains` sees the state from before the user's answer.
  const request = chrome.permissions.request({ origins });
  const had = allSites ? await chrome.permissions.contains({ origins: [ALL_SITES] }) : true;
  const granted = await request;
  return {
    granted,
    release: async () => {
      if (granted && !had) await chrome.permissions.remove({ origins: [ALL_SITES] }).catch(() => false);
    },
  };
}
