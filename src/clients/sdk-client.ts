/**
 * What both SDK-backed clients share: their options, the SDK client made on first use (the
 * SDK itself is a lazy chunk), and the model's context window from the price database.
 */
import type { BackendOptions } from '../core/options';
import { contextWindowOf, loadPrices, priceTargets } from './prices';

export abstract class SDKClient<Client> {
  readonly model: string;
  private client: Promise<Client> | undefined;

  constructor(
    protected readonly options: BackendOptions,
    readonly provider: string,
  ) {
    this.model = options.model;
  }

  /** Loads the SDK and makes its client (called once). */
  protected abstract createClient(): Promise<Client>;

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
