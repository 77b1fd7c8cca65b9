/**
 * rlm-web/proxy: the Node-side proxy, for embedding in your own server. The CLI
 * (`rlm-web-proxy`) is a thin wrapper over createProxyServer.
 *
 * @example
 * import { createProxyServer, createLocalProvider } from 'rlm-web/proxy';
 * const proxy = createProxyServer({ tokens: [token], allowedOrigins: ['https://app.example.com'], providers: { local: createLocalProvider() } });
 * await proxy.listen(8787);
 */
export { createProxyServer, PROXY_VERSION } from './server.js';
export type { ProxyOptions, ProxyServer } from './server.js';
export type { SandboxProcess, SandboxProvider, StartOptions } from './types.js';
export { createLocalProvider } from './providers/local.js';
export type { LocalProviderOptions } from './providers/local.js';
export { createE2BProvider } from './providers/e2b.js';
export type { E2BProviderOptions } from './providers/e2b.js';
export { createModalProvider } from './providers/modal.js';
export type { ModalProviderOptions } from './providers/modal.js';
export { createProviders } from './providers/index.js';
export type { ProviderSettings } from './providers/index.js';
export { createLogger } from './log.js';
export type { Logger, LogLevel } from './log.js';
export { RUNTIME_ARGV, runtimePayload } from './runtime-files.js';
