/**
 * A structured answer (a run with an answer format) on screen: a list of objects as a table,
 * anything else nested as a tree. Text-only DOM (`el()`); the value came from a model, so
 * rows, columns, depth and each text are capped, and every cut is said.
 */
import { el } from './format';

/** Rows of a table, columns, levels of a tree, entries per level, and characters per value shown. */
const MAX_ROWS = 500;
const MAX_COLUMNS = 20;
const MAX_DEPTH = 12;
const MAX_ENTRIES = 200;
const MAX_TEXT = 2_000;

type Row = Record<string, unknown>;

function isRow(value: unknown): value is Row {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function scalar(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}… (${text.length - MAX_TEXT} more characters)` : text;
}

function note(text: string): HTMLElement {
  return el('p', 'hint structured-cut', text);
}

function table(rows: Row[]): HTMLElement {
  const columns: string[] = [];
  for (const row of rows.slice(0, MAX_ROWS)) for (const key of Object.keys(row)) if (!columns.includes(key) && columns.length < MAX_COLUMNS) columns.push(key);
  const head = el('tr');
  for (const column of columns) head.append(el('th', undefined, column));
  const body = el('tbody');
  for (const row of rows.slice(0, MAX_ROWS)) {
    const tr = el('tr');
    for (const column of columns) {
      const value = row[column];
      const td = el('td');
      if (typeof value === 'object' && value !== null) td.append(tree(value, 1));
      else if (value !== undefined) td.textContent = scalar(value);
      tr.append(td);
    }
    body.append(tr);
  }
  const thead = el('thead');
  thead.append(head);
  const t = el('table', 'structured-table');
  t.append(thead, body);
  const wrap = el('div', 'structured');
  wrap.append(t);
  if (rows.length > MAX_ROWS) wrap.append(note(`The first ${MAX_ROWS} of ${rows.length} rows are shown; Copy answer has them all.`));
  const keys = new Set(rows.slice(0, MAX_ROWS).flatMap((row) => Object.keys(row)));
  if (keys.size > MAX_COLUMNS) wrap.append(note(`The first ${MAX_COLUMNS} of ${keys.size} columns are shown; Copy answer has them all.`));
  return wrap;
}

function tree(value: unknown, depth: number): HTMLElement {
  if (typeof value !== 'object' || value === null) return el('span', 'structured-value', scalar(value));
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  if (depth > MAX_DEPTH) return el('span', 'structured-value', `… (${entries.length} entries deeper than ${MAX_DEPTH} levels; Copy answer has them)`);
  const list = el('ul', 'structured-tree');
  for (const [key, child] of entries.slice(0, MAX_ENTRIES)) {
    const item = el('li');
    item.append(el('span', 'structured-key', Array.isArray(value) ? `[${key}]` : key), ' ', tree(child, depth + 1));
    list.append(item);
  }
  if (entries.length > MAX_ENTRIES) list.append(el('li', 'hint', `… ${entries.length - MAX_ENTRIES} more entries; Copy answer has them.`));
  return list;
}

/** The answer as a table (a non-empty list of objects) or a tree (anything else). */
export function renderStructured(value: unknown): HTMLElement {
  if (Array.isArray(value) && value.length > 0 && value.every(isRow)) return table(value);
  const wrap = el('div', 'structured');
  wrap.append(tree(value, 1));
  return wrap;
}
