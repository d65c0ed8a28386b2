// A tree 4096 directories deep (DEPTH_MAX, paths twice Linux PATH_MAX) builds from a directory
// with no recursion and no path the kernel refuses, and the kernel mounts the image and walks
// it to the leaf. One level more is refused with one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSupport, mountErofs, skipLoudly } from '../helpers/kernel.js';
import { runOk } from '../helpers/tools.js';
import { nydusImage, nydusImageOk } from '../cli/cli-runner.js';

const kernel = kernelSupport();
let work = '';

/** `levels` directories named d, one in the other, with a file f in the deepest (built by chdir). */
async function deepTree(root: string, levels: number): Promise<void> {
  const py = `import os, sys
os.mkdir(sys.argv[1]); os.chdir(sys.argv[1])
for _ in range(int(sys.argv[2])):
    os.mkdir('d'); os.chdir('d')
open('f', 'w').write('leaf\\n')
`;
  await runOk('python3', ['-c', py, root, String(levels)]);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-deep-'));
});

afterAll(async () => {
  // GNU rm walks by descriptors; Node's rm cannot remove paths past PATH_MAX.
  if (work) await runOk('rm', ['-rf', work]);
});

describe('create from a 4096-level directory tree', () => {
  it('builds, and the kernel mounts it down to the leaf', async (ctx) => {
    const src = join(work, 'src');
    await deepTree(src, 4096);
    const out = join(work, 'out');
    await mkdir(out);
    const boot = join(out, 'boot');
    await nydusImageOk(['create', '-B', boot, '-D', out, src]);
    if (!kernel.ok) return skipLoudly(ctx, `kernel cannot mount EROFS here: ${kernel.why}`);
    const m = await mountErofs(boot);
    try {
      // find(1) walks by directory descriptors, so it reaches past PATH_MAX.
      const dirs = (await runOk('find', [m.dir, '-type', 'd'])).stdout.toString().trim().split('\n');
      expect(dirs).toHaveLength(4097);
      const files = (await runOk('find', [m.dir, '-type', 'f', '-name', 'f'])).stdout.toString().trim().split('\n');
      expect(files).toHaveLength(1);
      expect(files[0]!.length).toBe(m.dir.length + 2 * 4096 + 2);
    } finally {
      await m.unmount();
    }
  }, 120_000);

  it('one level more is refused with DEPTH_MAX, one line, no output', async () => {
    const src = join(work, 'deeper');
    await deepTree(src, 4097);
    const out = join(work, 'out-deeper');
    await mkdir(out);
    const r = await nydusImage(['create', '-B', join(out, 'boot'), '-D', out, src]);
    expect(r.code, r.stderr.toString()).toBe(1);
    const lines = r.stderr.toString().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/DEPTH_MAX \(4096\)/);
    expect(await readdir(out)).toEqual([]);
  }, 120_000);
});
