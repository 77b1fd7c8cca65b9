/*
 * Cross-origin isolation for static hosts that cannot send headers (GitHub Pages and the
 * like): this service worker adds COOP/COEP to the demo's own responses, so the page gets
 * SharedArrayBuffer and Python interrupts that keep variables. The demo registers it only
 * when "Cross-origin isolation by service worker" is ticked. Requests to other origins (the
 * LM APIs) are left alone: they are CORS requests, which require-corp allows.
 */
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  event.respondWith(
    fetch(request).then((response) => {
      if (response.status === 0) return response;
      const headers = new Headers(response.headers);
      headers.set('Cross-Origin-Opener-Policy', 'same-origin');
      headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
      headers.set('Cross-Origin-Resource-Policy', 'same-origin');
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
    }),
  );
});
