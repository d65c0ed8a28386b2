// PathLookup (src/tree/node.ts): nodes found by exact path a component at a time, as prefetch
// lists resolve them; it must answer as a map of every node's path would, without building one.
import { describe, expect, it } from 'vitest';
import { ChildNode, PathLookup, walk, type TreeNode } from '../../src/tree/node.js';

const DIR = 0o40755;
const FILE = 0o100644;

function tree(): TreeNode {
  const root = new ChildNode(undefined, Buffer.alloc(0), DIR, 0, 0, 0, 0, []);
  const add = (up: ChildNode, name: string | Buffer, mode: number) => {
    const n = new ChildNode(up, Buffer.isBuffer(name) ? name : Buffer.from(name), mode, 0, 0, 0, 0, []);
    (up.children ??= []).push(n);
    return n;
  };
  const a = add(root, 'a', DIR);
  const b = add(a, 'b', DIR);
  add(b, 'f', FILE);
  add(a, 'g', FILE);
  add(root, Buffer.from([0xe9, 0x74, 0xe9]), FILE);
  // A deep chain: a path per node would be quadratic in its depth.
  let d = add(root, 'deep', DIR);
  for (let i = 0; i < 3000; i++) d = add(d, 'x', DIR);
  add(d, 'end', FILE);
  return root;
}

describe('PathLookup', () => {
  it('finds every node by its own path, as a map of all paths would', () => {
    const root = tree();
    const lookup = new PathLookup(root);
    for (const n of walk(root)) expect(lookup.get(n.path.toString('latin1'))).toBe(n);
  });

  it('matches exact paths only: no trailing slash, empty, "." or ".." component, relative path or missing name', () => {
    const root = tree();
    const lookup = new PathLookup(root);
    expect(lookup.get('/')).toBe(root);
    for (const p of ['', 'a', 'a/b', '/a/', '/a//b', '//a', '/a/./b', '/a/b/..', '/a/b/f/x', '/a/g/', '/nope', '/a/b/f ']) expect(lookup.get(p), p).toBeUndefined();
    expect(lookup.get('/a/b/f')?.name.toString()).toBe('f');
    expect(lookup.get(Buffer.from('/\xe9t\xe9', 'latin1').toString('latin1'))?.name).toEqual(Buffer.from([0xe9, 0x74, 0xe9]));
    expect(lookup.get('/deep' + '/x'.repeat(3000) + '/end')?.name.toString()).toBe('end');
  });
});
