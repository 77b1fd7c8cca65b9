/**
 * The extension's settings and key. Settings (never the key) live in chrome.storage.local.
 * The key lives in chrome.storage.session (memory only, gone when the browser closes, and
 * readable only by the extension's own pages) unless the user ticks "remember": then it is
 * written to chrome.storage.local, unencrypted, in the browser profile. Both areas are set
 * to trusted contexts only, so content scripts (which run inside web pages) cannot read them.
 */
import { defaultSettings, type Settings } from '../ui/settings';

const SETTINGS = 'settings';
const API_KEY = 'apiKey';

/** Keeps both storage areas away from content scripts. */
export async function restrictStorage(): Promise<void> {
  await chrome.storage.local.setAccessLevel({ accessLevel: 'TRUSTED_CONTEXTS' });
  await chrome.storage.session.setAccessLevel({ accessLevel: 'TRUSTED_CONTEXTS' });
}

export async function loadSettings(): Promise<Settings> {
  const local = await chrome.storage.local.get([SETTINGS, API_KEY]);
  const session = await chrome.storage.session.get(API_KEY);
  let settings = defaultSettings();
  const saved = local[SETTINGS] as Partial<Settings> | undefined;
  if (saved && typeof saved === 'object') settings = { ...settings, ...saved, apiKey: '' };
  const remembered = local[API_KEY];
  const forSession = session[API_KEY];
  if (typeof remembered === 'string' && remembered) settings = { ...settings, apiKey: remembered, rememberKey: true };
  else if (typeof forSession === 'string') settings = { ...settings, apiKey: forSession, rememberKey: false };
  return settings;
}

export async function saveSettings(settings: Settings): Promise<void> {
  const { apiKey, ...rest } = settings;
  await chrome.storage.local.set({ [SETTINGS]: rest });
  if (settings.rememberKey && apiKey) {
    await chrome.storage.local.set({ [API_KEY]: apiKey });
    await chrome.storage.session.remove(API_KEY);
  } else {
    await chrome.storage.local.remove(API_KEY);
    await chrome.storage.session.set({ [API_KEY]: apiKey });
  }
}
