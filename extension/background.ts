/**
 * The service worker: opens the side panel for the tab the user invoked the extension on,
 * from the toolbar button, its keyboard shortcut (`_execute_action`, Alt+Shift+A) or the
 * context menu item "Ask about this selection". Each of these gestures grants activeTab for
 * that tab, which is what lets the panel read it. The panel is per tab: its URL names the tab
 * (and the source to preselect), so it closes when the user switches to another tab.
 * Python never runs here (a service worker cannot start workers): it runs from the panel.
 */
import type { Source } from './protocol';

const MENU_ID = 'rlm-web:ask-selection';

function openPanel(tabId: number, source?: Source): void {
  const query = new URLSearchParams({ tab: String(tabId), ...(source ? { source } : {}) });
  // Both calls are made before any await: sidePanel.open needs the user's gesture, and
  // extension API calls run in order, so the panel opens with the path just set.
  void chrome.sidePanel.setOptions({ tabId, path: `panel.html?${query}`, enabled: true });
  void chrome.sidePanel.open({ tabId });
}

chrome.action.onClicked.addListener((tab) => {
  if (tab.id !== undefined) openPanel(tab.id);
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId === MENU_ID && tab?.id !== undefined) openPanel(tab.id, 'selection');
});

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({ id: MENU_ID, title: 'Ask about this selection', contexts: ['selection'] });
});

// Keys live in storage.session (trusted contexts only, by default); storage.local, where
// "remember" puts one, is readable by content scripts unless restricted like this.
void chrome.storage.local.setAccessLevel({ accessLevel: 'TRUSTED_CONTEXTS' });
