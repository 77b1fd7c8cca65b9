/**
 * The Settings form of the demo and the extension: provider, base URL, key (with Show and
 * "remember"), models, limits and, where the page has them, the bridge choice and the answer
 * format (a JSON Schema). Both pages use the same element ids; where the settings are kept
 * is the caller's `onChange`.
 */
import { answerSchemaProblem, presetOf, PRESETS, type PresetId, type Settings } from './settings';

export interface SettingsFormOptions {
  /** Called with the new settings after every edit. */
  onChange: (settings: Settings) => void;
  /** The hint under the bridge choice (pages without `#bridge-choice` leave it out). */
  bridgeHint?: () => string;
}

export class SettingsForm {
  readonly panel: HTMLDetailsElement;
  private readonly summary: HTMLElement;
  private readonly preset: HTMLSelectElement;
  private readonly baseURLField: HTMLElement;
  readonly baseURL: HTMLInputElement;
  readonly key: HTMLInputElement;
  private readonly keyOptional: HTMLElement;
  private readonly showKey: HTMLButtonElement;
  private readonly remember: HTMLInputElement;
  private readonly rememberWarning: HTMLElement;
  readonly rootModel: HTMLInputElement;
  private readonly subModel: HTMLInputElement;
  private readonly maxIterations: HTMLInputElement;
  private readonly maxDepth: HTMLInputElement;
  private readonly maxBudget: HTMLInputElement;
  private readonly maxMinutes: HTMLInputElement;
  private readonly bridge: HTMLSelectElement | null;
  private readonly bridgeHintEl: HTMLElement | null;
  /** The answer format (JSON Schema), where the page has `#answer-schema`. */
  private readonly answerSchema: HTMLTextAreaElement | null;

  constructor(
    doc: Document,
    private readonly options: SettingsFormOptions,
  ) {
    const $ = <T extends HTMLElement>(id: string) => {
      const found = doc.getElementById(id);
      if (!found) throw new Error(`The settings form needs an element #${id}.`);
      return found as T;
    };
    this.panel = $('settings');
    this.summary = $('settings-summary');
    this.preset = $('preset');
    this.baseURLField = $('base-url-field');
    this.baseURL = $('base-url');
    this.key = $('api-key');
    this.keyOptional = $('key-optional');
    this.showKey = $('show-key');
    this.remember = $('remember-key');
    this.rememberWarning = $('remember-warning');
    this.rootModel = $('root-model');
    this.subModel = $('sub-model');
    this.maxIterations = $('max-iterations');
    this.maxDepth = $('max-depth');
    this.maxBudget = $('max-budget');
    this.maxMinutes = $('max-minutes');
    this.bridge = doc.getElementById('bridge-choice') as HTMLSelectElement | null;
    this.bridgeHintEl = doc.getElementById('bridge-hint');
    this.answerSchema = doc.getElementById('answer-schema') as HTMLTextAreaElement | null;

    for (const preset of PRESETS) this.preset.append(new Option(preset.label, preset.id));
    this.preset.addEventListener('change', () => {
      const preset = presetOf(this.preset.value);
      this.rootModel.value = preset.rootModel;
      this.subModel.value = preset.subModel;
      this.baseURL.value = preset.baseURL;
      this.changed();
    });
    this.panel.addEventListener('input', (event) => {
      if (event.target !== this.preset) this.changed();
    });
    this.remember.addEventListener('change', () => this.changed());
    this.showKey.addEventListener('click', () => {
      const shown = this.key.type === 'text';
      this.key.type = shown ? 'password' : 'text';
      this.showKey.textContent = shown ? 'Show' : 'Hide';
      this.showKey.setAttribute('aria-pressed', String(!shown));
    });
  }

  read(): Settings {
    const number = (input: HTMLInputElement, fallback: number) => (input.value.trim() === '' ? fallback : Number(input.value));
    return {
      preset: this.preset.value as PresetId,
      rootModel: this.rootModel.value,
      subModel: this.subModel.value,
      baseURL: this.baseURL.value,
      apiKey: this.key.value,
      rememberKey: this.remember.checked,
      maxIterations: number(this.maxIterations, 20),
      maxDepth: number(this.maxDepth, 1),
      maxBudget: number(this.maxBudget, 0),
      maxMinutes: number(this.maxMinutes, 0),
      bridge: this.bridge?.value === 'jspi' ? 'jspi' : 'auto',
      answerSchema: this.answerSchema?.value ?? '',
    };
  }

  write(s: Settings): void {
    this.preset.value = s.preset;
    this.rootModel.value = s.rootModel;
    this.subModel.value = s.subModel;
    this.baseURL.value = s.baseURL;
    this.key.value = s.apiKey;
    this.remember.checked = s.rememberKey;
    this.maxIterations.value = String(s.maxIterations);
    this.maxDepth.value = String(s.maxDepth);
    this.maxBudget.value = String(s.maxBudget);
    this.maxMinutes.value = String(s.maxMinutes);
    if (this.bridge) this.bridge.value = s.bridge === 'jspi' ? 'jspi' : 'auto';
    if (this.answerSchema) this.answerSchema.value = s.answerSchema ?? '';
    this.reflect();
  }

  /** Shows what depends on the preset and the "remember" box; updates the summary line. */
  reflect(): void {
    const preset = presetOf(this.preset.value);
    this.baseURLField.hidden = preset.id !== 'local';
    this.keyOptional.textContent = preset.needsKey ? '' : '(optional for most local servers)';
    this.key.placeholder = preset.keyHint;
    this.rememberWarning.hidden = !this.remember.checked;
    if (this.bridgeHintEl && this.options.bridgeHint) this.bridgeHintEl.textContent = this.options.bridgeHint();
    this.summary.textContent = `${preset.id === 'local' ? 'Local' : preset.label} · ${this.rootModel.value || 'no model'}${this.key.value || !preset.needsKey ? '' : ' · no key yet'}`;
  }

  /** Puts the focus where the missing setting goes. */
  focusProblem(s: Settings): void {
    this.panel.open = true;
    if (this.answerSchema && answerSchemaProblem(s)) return this.answerSchema.focus();
    (presetOf(s.preset).needsKey && !s.apiKey.trim() ? this.key : s.rootModel.trim() ? this.baseURL : this.rootModel).focus();
  }

  private changed(): void {
    this.reflect();
    this.options.onChange(this.read());
  }
}
