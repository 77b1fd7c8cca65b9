/**
 * The demo keeps its settings in localStorage; the key only when the user ticks "remember
 * on this device".
 */
import { defaultSettings, type Settings } from '../ui/settings';

const SETTINGS_KEY = 'rlm-web-demo:settings';
const API_KEY_KEY = 'rlm-web-demo:api-key';

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined; // storage disabled (private mode, sandboxed frame)
  }
}

export function loadSettings(): Settings {
  const store = storage();
  const saved = store?.getItem(SETTINGS_KEY);
  let settings = defaultSettings();
  if (saved) {
    try {
      settings = { ...settings, ...(JSON.parse(saved) as Partial<Settings>), apiKey: '' };
    } catch {
      // a damaged entry: start from the defaults
    }
  }
  const key = store?.getItem(API_KEY_KEY);
  if (key) settings = { ...settings, apiKey: key, rememberKey: true };
  return settings;
}

export function saveSettings(settings: Settings): void {
  const store = storage();
  if (!store) return;
  const { apiKey, ...rest } = settings;
  store.setItem(SETTINGS_KEY, JSON.stringify({ ...rest, rememberKey: settings.rememberKey }));
  if (settings.rememberKey && apiKey) store.setItem(API_KEY_KEY, apiKey);
  else store.removeItem(API_KEY_KEY);
}
