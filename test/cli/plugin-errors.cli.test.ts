// A plugin is code we did not write. Whatever it throws (from its factory, from its stage, or
// later from a timer of its own) ends create with one line naming the plugin, exit 1, and no
// temporary or output left behind; never a raw stack trace or exit 70.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage } from './cli-runner.js';

let work = '';
let src = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-plugin-errors-'));
  src = join(work, 'src');
  await mkdir(src);
  for (let i = 0; i < 20; i++) await writeFile(join(src, `f${i}`), Buffer.alloc(300_000, i));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const PLUGINS: Record<string, string> = {
  'factory-throws.mjs': `export default function () { throw new Error('factory boom'); }`,
  'stage-throws.mjs': `export default function () {
  return { name: 'thrower', kind: 'entry', create() {
    return async function* (entries) {
      let n = 0;
      for await (const e of entries) {
        if (++n === 5) { await new Promise((r) => setTimeout(r, 10)); throw new Error('stage boom'); }
        yield e;
      }
    };
  } };
}`,
  'timer-throws.mjs': `export default function () {
  return { name: 'late', kind: 'batch', create() {
    return async function* (batches) {
      setTimeout(() => { throw new Error('timer boom'); }, 0);
      for await (const b of batches) { await new Promise((r) => setTimeout(r, 200)); yield b; }
    };
  } };
}`,
  'create-throws.mjs': `export default function () {
  return { name: 'bad-create', kind: 'batch', create() { throw new TypeError('create boom'); } };
}`,
};

async function runWith(plugin: string): Promise<{ code: number | null; line: string; out: string[] }> {
  const file = join(work, plugin);
  await writeFile(file, PLUGINS[plugin]!);
  const out = await mkdtemp(join(work, 'out-'));
  const r = await nydusImage(['create', '--plugin', file, '-B', join(out, 'boot'), '-D', out, src], { timeoutMs: 60_000 });
  const lines = r.stderr.toString().trim().split('\n');
  expect(lines, r.stderr.toString()).toHaveLength(1);
  return { code: r.code, line: lines[0]!, out: await readdir(out) };
}

describe('a failing plugin', () => {
  it('a factory that throws: one line naming the plugin, exit 1 (not 70)', async () => {
    const r = await runWith('factory-throws.mjs');
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^Error: plugin .*factory-throws\.mjs: .*factory boom$/);
    expect(r.out).toEqual([]);
  });

  it('a create() that throws: one line naming the plugin and stage, exit 1', async () => {
    const r = await runWith('create-throws.mjs');
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^Error: plugin .*create-throws\.mjs: stage bad-create: .*create boom$/);
    expect(r.out).toEqual([]);
  });

  it('a stage that throws mid-build: one line naming the plugin, exit 1, no temporary left', async () => {
    const r = await runWith('stage-throws.mjs');
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^Error: plugin .*stage-throws\.mjs: stage thrower failed: stage boom$/);
    expect(r.out).toEqual([]);
  });

  it('a throw from the plugin\'s own timer: one line naming the plugin, exit 1, no temporary left', async () => {
    const r = await runWith('timer-throws.mjs');
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^Error: plugin .*timer-throws\.mjs: timer boom$/);
    expect(r.out).toEqual([]);
  });
});
