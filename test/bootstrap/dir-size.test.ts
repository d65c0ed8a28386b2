// A directory's data size is computed while the tree is planned, without a dirent object per
// entry (plan.ts dirDataSize): it must equal the size of the blocks the directory is written in
// (direntList, packBlocks, dirSize) for any names, "." and ".." merged in wherever they sort,
// entries falling exactly on block boundaries, and children out of order.
import { describe, expect, it } from 'vitest';
import { direntList, dirDataSize } from '../../src/bootstrap/plan.js';
import * as dirent from '../../src/format/erofs/dirent.js';
import { compareBytes } from '../../src/format/util.js';
import type { TreeNode } from '../../src/tree/node.js';

function dir(names: Buffer[]): TreeNode {
  const children = names.map((name) => ({ name, mode: 0o100644, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, links: 1, xattrs: [] }) as unknown as TreeNode);
  return { name: Buffer.from('d'), mode: 0o40755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, links: 1, xattrs: [], children } as unknown as TreeNode;
}

const general = (d: TreeNode, B: number) => dirent.dirSize(dirent.packBlocks(direntList(d), B), B);

/** A small deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

describe('dirDataSize', () => {
  it('equals the written blocks\' size for random sorted names, 512 and 4096-byte blocks', () => {
    const r = rng(7);
    // Bytes around "." (0x2e) so names sort before, between and after "." and "..".
    const alphabet = Buffer.from('!#+,-.0Aa_~\xe9', 'latin1');
    for (let t = 0; t < 400; t++) {
      const n = Math.floor(r() * (t % 4 === 0 ? 600 : 40));
      const seen = new Set<string>();
      const names: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const len = 1 + Math.floor(r() * (r() < 0.1 ? 255 : 12));
        const b = Buffer.alloc(len);
        for (let k = 0; k < len; k++) b[k] = alphabet[Math.floor(r() * alphabet.length)];
        const key = b.toString('latin1');
        if (key === '.' || key === '..' || seen.has(key)) continue;
        seen.add(key);
        names.push(b);
      }
      names.sort(compareBytes);
      for (const B of [512, 4096]) {
        const d = dir(names);
        expect(dirDataSize(d, B)).toBe(general(d, B));
      }
    }
  });

  it('fills blocks to the byte: entries that end exactly on a block boundary', () => {
    // 12-byte dirents: "." and ".." take 27 bytes; 4069 more fill a 4096-byte block.
    for (const first of [4069 - 12, 4069 - 13, 4069 - 11]) {
      const names = [Buffer.alloc(first - 12 - 200, 0x61), Buffer.alloc(200, 0x62), Buffer.from('c'), Buffer.from('d')];
      const d = dir(names);
      expect(dirDataSize(d, 4096)).toBe(general(d, 4096));
    }
    expect(dirDataSize(dir([]), 4096)).toBe(27);
  });

  it('takes the general way for children out of name order', () => {
    const names = ['zeta', '#hash', 'alpha', '.hidden'].map((s) => Buffer.from(s));
    const d = dir(names);
    expect(dirDataSize(d, 512)).toBe(general(d, 512));
    const many = Array.from({ length: 300 }, (_, i) => Buffer.from(`n${(i * 37) % 300}-${'x'.repeat(i % 20)}`));
    expect(dirDataSize(dir(many), 512)).toBe(general(dir(many), 512));
  });
});
