/**
 * The layout's import rules for the transports: a protocol module imports nothing from the
 * rest of src/, and the worker imports only protocols and the Python files — never core.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(__dirname, '../../src');
/** Where wire-format modules live, relative to src/. */
const PROTOCOL = /^protocol\//;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** The relative specifiers a file imports or re-exports, resolved against src/. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"]([^'"]+)['"]/g)]
    .map((m) => m[1] ?? m[2] ?? m[3]!)
    .filter((s) => s.startsWith('.'));
  return specifiers.map((s) => relative(SRC, join(file, '..', s)));
}

describe('transport boundaries', () => {
  it('protocol modules import nothing but other protocol modules', () => {
    const files = sourceFiles(join(SRC, 'protocol'));
    for (const file of files) {
      expect(localImports(file).filter((target) => !PROTOCOL.test(target)), relative(SRC, file)).toEqual([]);
    }
  });

  it('src/worker imports only protocol modules and the Python runtime files', () => {
    const files = sourceFiles(join(SRC, 'worker'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const outside = localImports(file).filter((target) => !PROTOCOL.test(target) && !/^(worker|python)\//.test(target));
      expect(outside, relative(SRC, file)).toEqual([]);
    }
  });
});
