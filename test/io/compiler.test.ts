// The compiler tuning the bins ask for (bin/runtime.js) runs when a build starts, once, and
// only where a bin asked for it: a program using the library keeps its own V8 flags.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tuneCompiler } from '../../src/io/compiler.js';

const HOOK = Symbol.for('nydus.tuneCompiler');
const root = resolve(__dirname, '../..');

describe('compiler tuning', () => {
  it('runs the hook a bin left once, and does nothing without one', () => {
    const g = globalThis as Record<symbol, unknown>;
    let calls = 0;
    g[HOOK] = () => calls++;
    tuneCompiler();
    tuneCompiler();
    expect(calls).toBe(1);
    expect(HOOK in g).toBe(false);
    expect(() => tuneCompiler()).not.toThrow();
  });

  it('the bin leaves the hook, and a build takes it before it starts', () => {
    const work = mkdtempSync(join(tmpdir(), 'nydus-compiler-'));
    try {
      const src = join(work, 'src');
      mkdirSync(src);
      const script = `
        await import(${JSON.stringify(pathToFileURL(join(root, 'bin/runtime.js')).href)});
        const hook = Symbol.for('nydus.tuneCompiler');
        const before = typeof globalThis[hook];
        const { create } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/index.js')).href)});
        await create({ source: ${JSON.stringify(src)}, bootstrap: ${JSON.stringify(join(work, 'boot'))}, blob: ${JSON.stringify(join(work, 'blob'))} });
        console.log(before, typeof globalThis[hook]);`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(out.trim().split('\n').pop()).toBe('function undefined');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
