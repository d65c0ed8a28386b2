// The assembler under hostile shapes: trees as deep or as wide as a tar can make them are
// linked and finished without recursion, and replacing an entry costs the same in a directory
// of a million names as in one of ten.
import { describe, expect, it } from 'vitest';
import { TreeAssembler } from '../../src/tree/assemble.js';
import { walk, type TreeNode } from '../../src/tree/node.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

const node = (name: string, mode: number): TreeNode => ({
  name: Buffer.from(name), path: Buffer.from(`/${name}`), mode, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, xattrs: [], links: 1,
});

describe('TreeAssembler', () => {
  it('replacing every name of a directory of 300,000 costs time linear in the names, not their square', () => {
    const n = 300_000;
    const asm = new TreeAssembler();
    const root = node('', S_IFDIR | 0o755);
    asm.attach(root, undefined);
    const first = Array.from({ length: n }, (_, i) => node(`f${i}`, S_IFREG | 0o644));
    const second = Array.from({ length: n }, (_, i) => node(`f${i}`, S_IFREG | 0o600));
    // The same number of plain attaches is the yardstick: the machine may be slow or busy.
    let t0 = performance.now();
    for (const f of first) asm.attach(f, root);
    const attachMs = performance.now() - t0;
    t0 = performance.now();
    for (let i = n - 1; i >= 0; i--) asm.attach(second[i]!, root, first[i]);
    const replaceMs = performance.now() - t0;
    const tree = asm.finish()!;
    expect(tree.children!.length).toBe(n);
    expect(tree.children!.every((c) => c.mode === (S_IFREG | 0o600))).toBe(true);
    expect(replaceMs).toBeLessThan(3 * attachMs + 200);
  });

  it('a chain 200,000 directories deep is linked and finished without running out of stack', () => {
    const asm = new TreeAssembler();
    let parent: TreeNode | undefined;
    for (let i = 0; i < 200_000; i++) {
      const d = node(i === 0 ? '' : 'd', S_IFDIR | 0o755);
      asm.attach(d, parent);
      parent = d;
    }
    const f = node('f', S_IFREG | 0o644);
    asm.attach(f, parent);
    asm.attach(node('g', S_IFREG | 0o644), parent);
    const h = node('h', S_IFREG | 0o644);
    h.linkTo = f;
    asm.attach(h, parent);
    const tree = asm.finish()!;
    expect([...walk(tree)].length).toBe(200_003);
    expect(f.links).toBe(2);
  });
});
