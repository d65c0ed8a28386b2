// Two tar-tarfs layers merged: the result keeps 512-byte blocks, the TARFS flag and the layers'
// stored ids, and the kernel mounts it with the two tars as its devices.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { create } from '../../src/builder/create.js';
import { merge } from '../../src/builder/merge.js';
import { openImage } from '../../src/read/open.js';
import { walkImage } from '../../src/read/check.js';
import { FLAG_TARFS_MODE } from '../../src/format/rafs/ext-superblock.js';
import { attachLoop, kernelSupport, mountErofs, skipLoudly } from '../helpers/kernel.js';

describe('merge of tarfs layers', () => {
  it('mounts with the layer tars as devices and shows the overlay', async (ctx) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tarfs-merge-'));
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const mk = (name: string, files: Record<string, string>) => {
        const src = path.join(dir, name);
        for (const [p, content] of Object.entries(files)) {
          fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
          fs.writeFileSync(path.join(src, p), content);
        }
        execFileSync('tar', ['--format=pax', '--numeric-owner', '-C', src, '-cf', path.join(dir, `${name}.tar`), '.']);
        return path.join(dir, `${name}.tar`);
      };
      const blobs = path.join(dir, 'blobs');
      fs.mkdirSync(blobs);
      const t1 = mk('l1', { a: 'lower a', 'd/x': 'x'.repeat(5000) });
      const t2 = mk('l2', { 'd/y': 'upper y', '.wh.a': '' });
      await create({ type: 'tar-tarfs', source: t1, bootstrap: path.join(dir, 'b1'), blobDir: blobs, blobId: '11'.repeat(32) });
      await create({ type: 'tar-tarfs', source: t2, bootstrap: path.join(dir, 'b2'), blobDir: blobs, blobId: '22'.repeat(32) });
      const out = path.join(dir, 'merged');
      const r = await merge({ sources: [path.join(dir, 'b1'), path.join(dir, 'b2')], bootstrap: out });
      expect(r.blobs.sort()).toEqual(['11'.repeat(32), '22'.repeat(32)]);
      const image = openImage(out);
      expect(image.blockSize).toBe(512);
      expect(image.flags & FLAG_TARFS_MODE).toBe(FLAG_TARFS_MODE);
      expect([...walkImage(image.root)].map(([p]) => p)).toEqual(['/', '/d', '/d/x', '/d/y']);
      await expect(merge({ sources: [path.join(dir, 'b1')], bootstrap: path.join(dir, 'm2'), chunkDict: path.join(dir, 'b1') })).rejects.toThrow(/TARFS mode conflicts with `--chunk-dict`/);

      const k = kernelSupport();
      if (!k.ok) skipLoudly(ctx, k.why!);
      const devices: string[] = [];
      for (const b of image.blobs) {
        const loop = await attachLoop(path.join(blobs, b.blobId));
        cleanups.push(() => loop.detach());
        devices.push(loop.dev);
      }
      const m = await mountErofs(out, { devices });
      cleanups.unshift(() => m.unmount());
      expect(fs.readFileSync(path.join(m.dir, 'd/x'), 'utf8')).toBe('x'.repeat(5000));
      expect(fs.readFileSync(path.join(m.dir, 'd/y'), 'utf8')).toBe('upper y');
      expect(fs.existsSync(path.join(m.dir, 'a'))).toBe(false);
    } finally {
      for (const c of cleanups) await c();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
