// The overlay rules of tar-merge-export.md §2 and §3.1 on trees built in code: every row of the
// §3.1 table, each whiteout marker, and hardlink groups split by a replacement.
import { describe, expect, it } from 'vitest';
import { applyLayer, normalizeHardlinks, whiteoutType, type WhiteoutSpec } from '../../src/tree/overlay.js';
import { walk, type TreeNode } from '../../src/tree/node.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

type Attrs = Partial<Pick<TreeNode, 'uid' | 'gid' | 'mode' | 'mtime' | 'rdev' | 'xattrs' | 'target'>>;

let serial = 0;
function node(name: string | Buffer, mode: number, attrs: Attrs = {}): TreeNode {
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  return {
    name: n, path: Buffer.concat([Buffer.from('/'), n]), mode, uid: 0, gid: 0, mtime: ++serial, mtimeNsec: 0,
    size: 0, rdev: 0, xattrs: [], links: 1, ...attrs,
  };
}
const file = (name: string | Buffer, attrs: Attrs = {}, chunk?: number): TreeNode => {
  const n = node(name, S_IFREG | 0o644, attrs);
  if (chunk !== undefined) {
    n.chunks = [{ chunk, fileOffset: 0 }];
    n.size = 10;
  }
  return n;
};
const symlink = (name: string, target: string) => node(name, S_IFLNK | 0o777, { target: Buffer.from(target) });
const chardev = (name: string, rdev: number) => node(name, S_IFCHR | 0o600, { rdev });
function dir(name: string | Buffer, kids: TreeNode[], attrs: Attrs = {}): TreeNode {
  const d = node(name, S_IFDIR | 0o755, attrs);
  d.children = [...kids].sort((a, b) => Buffer.compare(a.name, b.name));
  return d;
}
const root = (kids: TreeNode[], attrs: Attrs = {}) => dir('', kids, attrs);
const xattr = (name: string, value: string) => ({ name: Buffer.from(name), value: Buffer.from(value) });

/** Readable shape of a tree: "name" for files, "name/" + children for dirs, "name@" symlinks. */
function shape(n: TreeNode): unknown {
  if (!n.children) return undefined;
  const out: Record<string, unknown> = {};
  for (const c of n.children) {
    const type = c.mode & 0o170000;
    const suffix = type === S_IFDIR ? '/' : type === S_IFLNK ? '@' : type === S_IFCHR ? '%' : '';
    out[c.name.toString('latin1') + suffix] = type === S_IFDIR ? shape(c) : (c.linkTo ? 'link' : c.links > 1 ? `head×${c.links}` : 1);
  }
  return out;
}
const child = (n: TreeNode, ...names: string[]): TreeNode => {
  let cur = n;
  for (const name of names) {
    const next = cur.children?.find((c) => c.name.equals(Buffer.from(name)));
    if (!next) throw new Error(`no ${name}`);
    cur = next;
  }
  return cur;
};

/** Invariants every result holds: sorted children, no link to a node outside the tree, links counted. */
function checkInvariants(r: TreeNode): void {
  const inTree = new Set(walk(r));
  const counts = new Map<TreeNode, number>();
  for (const n of inTree) {
    if (n.children) {
      for (let i = 1; i < n.children.length; i++) expect(Buffer.compare(n.children[i - 1].name, n.children[i].name)).toBeLessThan(0);
    }
    if (n.linkTo) {
      expect(inTree.has(n.linkTo)).toBe(true);
      expect(n.linkTo.linkTo).toBeUndefined();
      expect(n.chunks).toBeUndefined();
      counts.set(n.linkTo, (counts.get(n.linkTo) ?? 1) + 1);
    }
  }
  for (const n of inTree) if (!n.children) expect(n.links).toBe(counts.get(n) ?? 1);
}

function apply(lower: TreeNode, upper: TreeNode, spec: WhiteoutSpec = 'oci'): TreeNode {
  const r = applyLayer(lower, upper, spec);
  checkInvariants(r);
  return r;
}

describe('whiteout markers (§2)', () => {
  it('oci: any entry named .wh.* removes, .wh..wh..opq is opaque (tested first), non-UTF-8 names never mark', () => {
    expect(whiteoutType(file('.wh.a'), 'oci')).toBe('oci-removal');
    expect(whiteoutType(dir('.wh.a', []), 'oci')).toBe('oci-removal');
    expect(whiteoutType(symlink('.wh.a', 'x'), 'oci')).toBe('oci-removal');
    expect(whiteoutType(chardev('.wh.a', 0), 'oci')).toBe('oci-removal');
    expect(whiteoutType(file('.wh..wh..opq'), 'oci')).toBe('oci-opaque');
    expect(whiteoutType(file('.wh.'), 'oci')).toBe('oci-removal');
    expect(whiteoutType(file(Buffer.from([0x2e, 0x77, 0x68, 0x2e, 0xff])), 'oci')).toBeUndefined();
    expect(whiteoutType(file('.wh'), 'oci')).toBeUndefined();
    expect(whiteoutType(file('a.wh.b'), 'oci')).toBeUndefined();
    expect(whiteoutType(chardev('a', 0), 'oci')).toBeUndefined();
    expect(whiteoutType(dir('d', [], { xattrs: [xattr('trusted.overlay.opaque', 'y')] }), 'oci')).toBeUndefined();
  });

  it('overlayfs: a 0:0 char device removes, a dir with trusted.overlay.opaque = exactly "y" is opaque', () => {
    expect(whiteoutType(chardev('a', 0), 'overlayfs')).toBe('overlayfs-removal');
    expect(whiteoutType(chardev('a', 0x103), 'overlayfs')).toBeUndefined();
    expect(whiteoutType(file('a'), 'overlayfs')).toBeUndefined();
    expect(whiteoutType(dir('d', [], { xattrs: [xattr('trusted.overlay.opaque', 'y')] }), 'overlayfs')).toBe('overlayfs-opaque');
    expect(whiteoutType(dir('d', [], { xattrs: [xattr('trusted.overlay.opaque', 'yes')] }), 'overlayfs')).toBeUndefined();
    expect(whiteoutType(file('f', { xattrs: [xattr('trusted.overlay.opaque', 'y')] }), 'overlayfs')).toBeUndefined();
    expect(whiteoutType(file('.wh.a'), 'overlayfs')).toBeUndefined();
  });

  it('none: nothing is a marker', () => {
    for (const n of [file('.wh.a'), file('.wh..wh..opq'), chardev('a', 0), dir('d', [], { xattrs: [xattr('trusted.overlay.opaque', 'y')] })]) {
      expect(whiteoutType(n, 'none')).toBeUndefined();
    }
  });
});

describe('applyLayer: the §3.1 table', () => {
  it('a (any type) + .wh.a → gone with its subtree', () => {
    const lower = root([file('f'), dir('d', [file('x'), dir('y', [file('z')])]), symlink('s', 't'), chardev('c', 0x103), file('keep')]);
    const upper = root([file('.wh.f'), file('.wh.d'), file('.wh.s'), file('.wh.c'), file('.wh.absent')]);
    expect(shape(apply(lower, upper))).toEqual({ keep: 1 });
  });

  it('dir d with children + d/.wh..wh..opq and d/x → d = {x}, attributes from upper', () => {
    const lower = root([dir('d', [file('a'), dir('b', [file('c')]), file('x')], { uid: 1 }), file('other')]);
    const upperD = dir('d', [file('.wh..wh..opq'), file('x', { uid: 7 })], { uid: 5, mode: S_IFDIR | 0o700 });
    const r = apply(lower, root([upperD]));
    expect(shape(r)).toEqual({ 'd/': { x: 1 }, other: 1 });
    expect(child(r, 'd').uid).toBe(5);
    expect(child(r, 'd').mode).toBe(S_IFDIR | 0o700);
    expect(child(r, 'd', 'x').uid).toBe(7);
  });

  it('an opaque marker empties only its own directory, after the other markers too', () => {
    const lower = root([dir('d', [file('a'), file('b')]), dir('e', [file('a')])]);
    const upper = root([dir('d', [file('.wh..wh..opq'), file('.wh.a'), file('c')]), dir('e', [])]);
    expect(shape(apply(lower, upper))).toEqual({ 'd/': { c: 1 }, 'e/': { a: 1 } });
  });

  it('dir d + file or symlink d → the file or symlink; the subtree is gone', () => {
    const lower = root([dir('d', [file('a'), dir('b', [file('c')])]), dir('e', [file('a')])]);
    const upper = root([file('d', { uid: 3 }), symlink('e', '/target')]);
    const r = apply(lower, upper);
    expect(shape(r)).toEqual({ d: 1, 'e@': 1 });
    expect(child(r, 'd').children).toBeUndefined();
    expect(child(r, 'd').uid).toBe(3);
    expect(child(r, 'e').target?.toString()).toBe('/target');
  });

  it('file d + dir d/… → a directory holding upper\'s children', () => {
    const lower = root([file('d'), symlink('s', 'x')]);
    const upper = root([dir('d', [file('a'), dir('b', [file('c')])]), dir('s', [file('y')])]);
    expect(shape(apply(lower, upper))).toEqual({ 'd/': { a: 1, 'b/': { c: 1 } }, 's/': { y: 1 } });
  });

  it('dir d + dir d → union, upper wins per name, recursively', () => {
    const lower = root([dir('d', [file('a', { uid: 1 }), file('b', { uid: 1 }), dir('sub', [file('deep', { uid: 1 })])])]);
    const upper = root([dir('d', [file('b', { uid: 2 }), file('c', { uid: 2 }), dir('sub', [file('new', { uid: 2 })])])]);
    const r = apply(lower, upper);
    expect(shape(r)).toEqual({ 'd/': { a: 1, b: 1, c: 1, 'sub/': { deep: 1, new: 1 } } });
    expect(child(r, 'd', 'a').uid).toBe(1);
    expect(child(r, 'd', 'b').uid).toBe(2);
    expect(child(r, 'd', 'sub', 'deep').uid).toBe(1);
  });

  it('a + .wh.a + a in one layer → upper\'s a (markers first)', () => {
    const lower = root([file('a', { uid: 1 }), dir('d', [file('x')])]);
    const upper = root([file('.wh.a'), file('a', { uid: 2 }), file('.wh.d'), dir('d', [file('y')])]);
    const r = apply(lower, upper);
    expect(shape(r)).toEqual({ a: 1, 'd/': { y: 1 } });
    expect(child(r, 'a').uid).toBe(2);
  });

  it('the upper root always replaces the lower root\'s attributes', () => {
    const lower = root([file('a')], { uid: 9, mode: S_IFDIR | 0o700, xattrs: [xattr('user.x', '1')] });
    const upper = root([], { uid: 0, mode: S_IFDIR | 0o755, mtime: 0 });
    const r = apply(lower, upper);
    expect(r).toBe(upper);
    expect(r.uid).toBe(0);
    expect(r.mode).toBe(S_IFDIR | 0o755);
    expect(r.mtime).toBe(0);
    expect(r.xattrs).toEqual([]);
    expect(shape(r)).toEqual({ a: 1 });
  });

  it('markers are never inserted, also inside new directories; a non-UTF-8 .wh. name is an ordinary file', () => {
    const odd = Buffer.from([0x2e, 0x77, 0x68, 0x2e, 0xff]);
    const lower = root([file('a')]);
    const upper = root([dir('new', [file('.wh.x'), file('.wh..wh..opq'), file('y')]), file('.wh.missing'), file(odd)]);
    expect(shape(apply(lower, upper))).toEqual({ a: 1, 'new/': { y: 1 }, [odd.toString('latin1')]: 1 });
  });

  it('spec none keeps markers as entries and removes nothing', () => {
    const lower = root([file('a'), dir('d', [file('x')])]);
    const upper = root([file('.wh.a'), dir('d', [file('.wh..wh..opq')])]);
    expect(shape(apply(lower, upper, 'none'))).toEqual({ '.wh.a': 1, a: 1, 'd/': { '.wh..wh..opq': 1, x: 1 } });
  });

  it('overlayfs: a 0:0 device removes its name and is not inserted; an opaque dir empties the lower one and loses the xattr', () => {
    const lower = root([file('a'), dir('d', [file('x'), file('y')]), file('f')]);
    const upper = root([
      chardev('a', 0),
      chardev('c', 0x103),
      dir('d', [file('z')], { xattrs: [xattr('trusted.overlay.opaque', 'y'), xattr('user.k', 'v')] }),
      dir('f', [file('g')], { xattrs: [xattr('trusted.overlay.opaque', 'y')] }),
      file('.wh.f'),
    ]);
    const r = apply(lower, upper, 'overlayfs');
    expect(shape(r)).toEqual({ '.wh.f': 1, 'c%': 1, 'd/': { z: 1 }, 'f/': { g: 1 } });
    expect(child(r, 'd').xattrs.map((x) => x.name.toString())).toEqual(['user.k']);
    expect(child(r, 'f').xattrs).toEqual([]);
  });

  it('oci: an overlayfs-style opaque xattr and 0:0 device are ordinary entries', () => {
    const lower = root([dir('d', [file('x')])]);
    const upper = root([dir('d', [chardev('x', 0)], { xattrs: [xattr('trusted.overlay.opaque', 'y')] })]);
    const r = apply(lower, upper, 'oci');
    expect(shape(r)).toEqual({ 'd/': { 'x%': 1 } });
    expect(child(r, 'd').xattrs).toHaveLength(1);
  });

  it('a dir replaced by a file and back again in later layers starts empty', () => {
    const l0 = root([dir('d', [file('old')])]);
    const l1 = root([file('d')]);
    const l2 = root([dir('d', [file('new')])]);
    const r = apply(apply(l0, l1), l2);
    expect(shape(r)).toEqual({ 'd/': { new: 1 } });
  });
});

describe('applyLayer: hardlinks (§3.2)', () => {
  /** A group head + members, as treeFromImage links them. */
  function group(head: TreeNode, ...members: TreeNode[]): void {
    head.links = members.length + 1;
    for (const m of members) {
      m.linkTo = head;
      m.chunks = undefined;
    }
  }

  it('replacing the head promotes the next member, which takes the chunks; the rest link to it', () => {
    const h1 = file('h1', {}, 42);
    const h2 = file('h2');
    const h3 = file('h3');
    group(h1, h2, h3);
    const lower = root([h1, h2, dir('d', [h3])]);
    const r = apply(lower, root([file('h1', { uid: 5 }, 7)]));
    expect(shape(r)).toEqual({ h1: 1, h2: 'head×2', 'd/': { h3: 'link' } });
    expect(h2.linkTo).toBeUndefined();
    expect(h2.chunks).toEqual([{ chunk: 42, fileOffset: 0 }]);
    expect(h3.linkTo).toBe(h2);
    expect(child(r, 'h1').chunks).toEqual([{ chunk: 7, fileOffset: 0 }]);
  });

  it('a whiteout of the head, or of the directory holding members, shrinks the group; one name left is an ordinary file', () => {
    const h1 = file('h1', {}, 1);
    const h2 = file('m');
    const h3 = file('m2');
    group(h1, h2, h3);
    const lower = root([h1, dir('gone', [h2]), dir('kept', [h3])]);
    const r = apply(lower, root([file('.wh.h1'), file('.wh.gone')]));
    expect(shape(r)).toEqual({ 'kept/': { m2: 1 } });
    expect(h3.linkTo).toBeUndefined();
    expect(h3.links).toBe(1);
    expect(h3.chunks).toEqual([{ chunk: 1, fileOffset: 0 }]);
  });

  it('replacing a member only lowers the count; nothing links across layers', () => {
    const h1 = file('a', {}, 1);
    const h2 = file('b');
    const h3 = file('c');
    group(h1, h2, h3);
    const u1 = file('b', {}, 2);
    const u2 = file('x');
    group(u1, u2);
    const r = apply(root([h1, h2, h3]), root([u1, u2]));
    expect(shape(r)).toEqual({ a: 'head×2', b: 'head×2', c: 'link', x: 'link' });
    expect(h3.linkTo).toBe(h1);
    expect(u2.linkTo).toBe(u1);
  });

  it('a group whose head comes after a member in layout order is re-headed at its first member', () => {
    // /z/f is the head (as a depth-first loader would make it) but /y comes first in layout order.
    const f = file('f', {}, 3);
    const y = file('y');
    group(f, y);
    const r = root([dir('a', [dir('z', [f])]), y]);
    normalizeHardlinks(r);
    checkInvariants(r);
    expect(y.linkTo).toBeUndefined();
    expect(y.links).toBe(2);
    expect(y.chunks).toEqual([{ chunk: 3, fileOffset: 0 }]);
    expect(f.linkTo).toBe(y);
  });
});

describe('depth', () => {
  /** A chain of `depth` directories named d, with a file `leaf` at the bottom. */
  function chain(depth: number, leaf: string): TreeNode {
    let bottom = dir('d', [file(leaf)]);
    for (let i = 1; i < depth; i++) bottom = dir('d', [bottom]);
    return root([bottom]);
  }

  it('two layers 200,000 directories deep merge without recursion (no stack overflow)', () => {
    const r = applyLayer(chain(200_000, 'lower'), chain(200_000, 'upper'), 'oci');
    let n: TreeNode = r;
    let depth = 0;
    while (n.children?.[0]?.name.equals(Buffer.from('d'))) {
      n = n.children[0];
      depth++;
    }
    expect(depth).toBe(200_000);
    expect(n.children!.map((c) => c.name.toString())).toEqual(['lower', 'upper']);
  });
});
