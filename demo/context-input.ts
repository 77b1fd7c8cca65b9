/**
 * The context: pasted text, or files chosen or dropped. One file goes to the library as the
 * File itself (the Blob path: never read into a JS string here, so hundreds of MB do not
 * freeze the page); several files become a list of { name, content } records.
 */
import type { ContextInput } from '../src/index';
import { el, formatBytes, formatCount } from '../ui/format';

/** Several files are read as text to build the list; past this, ask for one file instead. */
const MAX_LIST_BYTES = 200 * 1024 * 1024;

export interface PreparedContext {
  context: ContextInput;
  /** What the run view shows, e.g. "report.txt, 48 MB". */
  label: string;
}

export class ContextInputView {
  private files: File[] = [];

  constructor(
    private readonly text: HTMLTextAreaElement,
    private readonly picker: HTMLInputElement,
    private readonly dropZone: HTMLElement,
    private readonly list: HTMLElement,
    private readonly summary: HTMLElement,
  ) {
    picker.addEventListener('change', () => {
      this.addFiles([...(picker.files ?? [])]);
      picker.value = '';
    });
    text.addEventListener('input', () => this.render());
    for (const type of ['dragenter', 'dragover'] as const) {
      dropZone.addEventListener(type, (event) => {
        if (!event.dataTransfer?.types.includes('Files')) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
        dropZone.classList.add('dragging');
      });
    }
    dropZone.addEventListener('dragleave', (event) => {
      if (!dropZone.contains(event.relatedTarget as Node | null)) dropZone.classList.remove('dragging');
    });
    dropZone.addEventListener('drop', (event) => {
      event.preventDefault();
      dropZone.classList.remove('dragging');
      this.addFiles([...(event.dataTransfer?.files ?? [])]);
    });
    this.render();
  }

  addFiles(files: File[]): void {
    const known = new Set(this.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`));
    for (const file of files) if (!known.has(`${file.name}:${file.size}:${file.lastModified}`)) this.files.push(file);
    this.render();
  }

  clearFiles(): void {
    this.files = [];
    this.render();
  }

  get isEmpty(): boolean {
    return this.files.length === 0 && this.text.value.length === 0;
  }

  private render(): void {
    this.list.replaceChildren(
      ...this.files.map((file, i) => {
        const item = el('li', 'file');
        const remove = el('button', 'icon-button', '×');
        remove.type = 'button';
        remove.setAttribute('aria-label', `Remove ${file.name}`);
        remove.addEventListener('click', () => {
          this.files.splice(i, 1);
          this.render();
          (this.list.querySelector('button') ?? this.picker).focus();
        });
        item.append(el('span', 'file-name', file.name), el('span', 'file-size', formatBytes(file.size)), remove);
        return item;
      }),
    );
    this.list.hidden = this.files.length === 0;
    const total = this.files.reduce((n, f) => n + f.size, 0);
    if (this.files.length === 1) {
      this.summary.textContent = `Context: ${this.files[0]!.name}, ${formatBytes(total)}${this.text.value ? ' (the pasted text is not used while a file is chosen)' : ''}.`;
    } else if (this.files.length > 1) {
      this.summary.textContent = `Context: a list of ${this.files.length} files, ${formatBytes(total)} in all${this.text.value ? ' (the pasted text is not used while files are chosen)' : ''}.`;
    } else if (this.text.value) {
      this.summary.textContent = `Context: pasted text, ${formatCount(this.text.value.length)} characters.`;
    } else {
      this.summary.textContent = 'No context yet: paste text, or choose or drop files.';
    }
  }

  /** The context for completion(); throws an Error whose message says what to do. */
  async prepare(): Promise<PreparedContext> {
    if (this.files.length === 1) {
      const file = this.files[0]!;
      if (file.size === 0) throw new Error(`${file.name} is empty: choose another file.`);
      return { context: file, label: `${file.name}, ${formatBytes(file.size)}` };
    }
    if (this.files.length > 1) {
      const total = this.files.reduce((n, f) => n + f.size, 0);
      if (total > MAX_LIST_BYTES) {
        throw new Error(`These ${this.files.length} files hold ${formatBytes(total)}; as a list they must fit in ${formatBytes(MAX_LIST_BYTES)}. Choose one large file on its own (any size works), or fewer files.`);
      }
      const items = await Promise.all(this.files.map(async (file) => ({ name: file.name, content: await file.text() })));
      return { context: items, label: `${this.files.length} files, ${formatBytes(total)}` };
    }
    if (!this.text.value) throw new Error('Add a context first: paste text into the Context box, or choose or drop a file.');
    return { context: this.text.value, label: `pasted text, ${formatCount(this.text.value.length)} characters` };
  }
}
