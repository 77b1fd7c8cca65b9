/**
 * What both SDK-backed clients share: their options, the one origin they send to, the SDK
 * client made on first use (the SDK itself is a lazy chunk), and the model's context window
 * from the price database.
 */
import { ConfigurationError } from '../core/errors';
import type { BackendOptions } from '../core/options';
import { originOf, pinnedFetch } from './pinned-fetch';
import { contextWindowOf, loadPrices, priceTargets } from './prices';
import { buildSDKClient, ownBackendOptions } from './sdk-options';

export abstract class SDKClient<Client extends object> {
  readonly model: string;
  /** The options as given, copied once (own properties only, see `ownBackendOptions`). */
  protected readonly options: BackendOptions;
  /** The base URL the SDK is given: `backendOptions.baseURL`, else the provider's default. */
  protected readonly baseURL: string;
  /** The only origin this client sends to, fixed here from our own options. */
  readonly origin: string;
  private client: Promise<Client> | undefined;

  constructor(
    options: BackendOptions,
    readonly provider: string,
    defaultBaseURL: string,
  ) {
    this.options = ownBackendOptions(options);
    this.model = this.options.model;
    this.baseURL = this.options.baseURL ?? defaultBaseURL;
    const origin = originOf(this.baseURL);
    if (origin === undefined) {
      throw new ConfigurationError(`backendOptions.baseURL '${this.baseURL}' is not an http(s) URL; give the API's full URL, for example http://localhost:11434/v1.`);
    }
    this.origin = origin;
  }

  /** Loads the SDK and makes its client (called once). */
  protected abstract createClient(): Promise<Client>;

  /**
   * A client of the loaded SDK class, built with pinned options and a fetch that sends only
   * to `origin` (see `sdk-options.ts`); `readNames` are fields the SDK reads but never sets.
   */
  protected build(SDK: new (options: never) => Client, readNames: readonly string[] = []): Client {
    return buildSDKClient(SDK, this.options, this.baseURL, pinnedFetch(this.origin, this.provider, this.model), readNames);
  }

  /** The SDK client; the price data starts loading too, while the request is in flight. */
  protected sdkClient(): Promise<Client> {
    loadPrices().catch(() => undefined);
    return (this.client ??= this.createClient());
  }

  /** The model's context window from the price database, when it knows the model. */
  contextWindow(): Promise<number | undefined> {
    return contextWindowOf(priceTargets(this.provider, this.model, this.options.baseURL));
  }
}
