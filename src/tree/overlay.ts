// Whiteouts and the overlay of one layer's tree onto the tree below it (tar-merge-export.md
// §2, §3.1, §3.2). Pure rules over TreeNodes: no I/O.
import { NydusError } from '../errors.js';
import { isDirNode, layoutOrder, walk, type TreeNode } from './node.js';
import { S_IFMT, S_IFDIR, S_IFCHR } from '../format/mode.js';

export type WhiteoutSpec = 'oci' | 'overlayfs' | 'none';

/** What a marker does to the lower tree (upstream's WhiteoutType). */
export type WhiteoutKind =
  /** `.wh.N`: remove the lower N (and its subtree) in this directory. */
  | 'oci-removal'
  /** `.wh..wh..opq`: remove every lower child of this directory. */
  | 'oci-opaque'
  /** 0:0 character device N: remove the lower N. */
  | 'overlayfs-removal'
  /** Directory N with trusted.overlay.opaque=y: empty the lower N; N itself stays (without the xattr). */
  | 'overlayfs-opaque';

export const OCI_WHITEOUT_PREFIX = Buffer.from('.wh.');
export const OCI_WHITEOUT_OPAQUE = Buffer.from('.wh..wh..opq');
export const OVERLAYFS_OPAQUE_XATTR = Buffer.from('trusted.overlay.opaque');

const utf8 = new TextDecoder('utf-8', { fatal: true });
const isUtf8 = (b: Buffer) => {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
};

export interface WhiteoutSpecDef {
  name: WhiteoutSpec;
  help: string;
  /** The marker kind of an upper-layer node, or undefined for an ordinary entry. */
  detect(n: TreeNode): WhiteoutKind | undefined;
}

/** The one table of whiteout specs: parsing, help text and the rules all read it. */
export const WHITEOUT_SPECS: readonly WhiteoutSpecDef[] = [
  {
    name: 'oci',
    help: 'OCI image spec: .wh.NAME removes NAME, .wh..wh..opq empties the directory',
    detect(n) {
      // The byte prefix first: decoding every name to test UTF-8 is the costly part.
      const nm = n.name;
      if (nm.length < 4 || nm[0] !== 0x2e || nm[1] !== 0x77 || nm[2] !== 0x68 || nm[3] !== 0x2e) return undefined;
      if (!isUtf8(nm)) return undefined;
      return nm.equals(OCI_WHITEOUT_OPAQUE) ? 'oci-opaque' : 'oci-removal';
    },
  },
  {
    name: 'overlayfs',
    help: 'Linux overlayfs: a 0:0 character device removes its name, trusted.overlay.opaque=y empties a directory',
    detect(n) {
      const type = n.mode & S_IFMT;
      // new_encode_dev(0, 0) is 0.
      if (type === S_IFCHR && n.rdev === 0) return 'overlayfs-removal';
      if (type === S_IFDIR) {
        const x = n.xattrs.find((a) => a.name.equals(OVERLAYFS_OPAQUE_XATTR));
        if (x && x.value.equals(Buffer.from('y'))) return 'overlayfs-opaque';
      }
      return undefined;
    },
  },
  { name: 'none', help: 'no whiteouts: every entry is kept as it is', detect: () => undefined },
];

export const WHITEOUT_SPEC_NAMES = WHITEOUT_SPECS.map((s) => s.name);

export function whiteoutSpec(name: WhiteoutSpec): WhiteoutSpecDef {
  const s = WHITEOUT_SPECS.find((x) => x.name === name);
  if (!s) throw new NydusError('USAGE', `invalid whiteout spec ${JSON.stringify(name)}: expected one of ${WHITEOUT_SPEC_NAMES.join(', ')}`);
  return s;
}

/** The marker kind of `n` under `spec` (only nodes of an upper layer are ever markers). */
export function whiteoutType(n: TreeNode, spec: WhiteoutSpec): WhiteoutKind | undefined {
  return whiteoutSpec(spec).detect(n);
}

/** The name an OCI removal marker removes (`.wh.N` → N). */
export function whiteoutTarget(n: TreeNode): Buffer {
  return n.name.subarray(OCI_WHITEOUT_PREFIX.length);
}

const key = (name: Buffer) => name.toString('latin1');

/**
 * Applies `upper` onto `lower` and returns the merged root (upper's root node, which always
 * replaces lower's). Both trees are consumed: their nodes move into the result and are changed
 * in place. Children end sorted by name bytes; hardlink groups are repaired (normalizeHardlinks).
 */
export function applyLayer(lower: TreeNode, upper: TreeNode, spec: WhiteoutSpec): TreeNode {
  const def = whiteoutSpec(spec);
  const upperKids = upper.children ?? [];
  upper.children = lower.children ?? [];
  mergeChildren(upper, upperKids, def);
  normalizeHardlinks(upper);
  return upper;
}

/**
 * Upstream's merge_children: per directory, markers first, then the other entries, then each
 * merged subdirectory. An explicit stack instead of recursion: layers may be deeper than the stack.
 */
function mergeChildren(top: TreeNode, topKids: readonly TreeNode[], def: WhiteoutSpecDef): void {
  const work: Array<[TreeNode, readonly TreeNode[]]> = [[top, topKids]];
  while (work.length > 0) {
    const [target, upperKids] = work.pop()!;
    const byName = new Map<string, TreeNode>();
    for (const c of target.children ?? []) byName.set(key(c.name), c);

    const others: TreeNode[] = [];
    for (const u of [...upperKids].sort((a, b) => Buffer.compare(a.name, b.name))) {
      switch (def.detect(u)) {
        case 'oci-removal':
          byName.delete(key(whiteoutTarget(u)));
          break;
        case 'oci-opaque':
          byName.clear();
          break;
        case 'overlayfs-removal':
          byName.delete(key(u.name));
          break;
        case 'overlayfs-opaque': {
          const l = byName.get(key(u.name));
          if (l?.children) l.children = [];
          u.xattrs = u.xattrs.filter((x) => !x.name.equals(OVERLAYFS_OPAQUE_XATTR));
          others.push(u);
          break;
        }
        case undefined:
          others.push(u);
      }
    }

    const dirs: Array<[TreeNode, TreeNode[]]> = [];
    for (const u of others) {
      const k = key(u.name);
      const l = byName.get(k);
      if (isDirNode(u)) {
        // Over a directory the lower children stay and upper's merge in; over anything else, or
        // when new, the directory starts empty (upper's own markers are then consumed, not kept).
        dirs.push([u, u.children ?? []]);
        u.children = l?.children ?? [];
      } else {
        u.children = undefined;
      }
      byName.set(k, u);
    }
    target.children = [...byName.values()].sort((a, b) => Buffer.compare(a.name, b.name));
    // Reversed onto the stack, so subdirectories are merged in name order, as upstream recurses.
    for (let i = dirs.length - 1; i >= 0; i--) work.push(dirs[i]!);
  }
}

/**
 * Rebuilds every hardlink group from the nodes still in the tree: the group's first member in
 * layout order becomes the one that carries the inode and chunks, every other member links to
 * it, and links counts the members left. A group down to one name is an ordinary file again.
 * No node is left linking to a node that is no longer in the tree.
 */
export function normalizeHardlinks(root: TreeNode): void {
  // Nodes some other node links to; a node neither linking nor linked to is its own group.
  const linked = new Set<TreeNode>();
  for (const n of walk(root)) if (n.linkTo) linked.add(n.linkTo);
  const groups = new Map<TreeNode, TreeNode[]>();
  for (const n of layoutOrder(root)) {
    if (isDirNode(n)) continue;
    if (!n.linkTo && !linked.has(n)) {
      n.links = 1;
      continue;
    }
    const head = n.linkTo ?? n;
    let g = groups.get(head);
    if (!g) groups.set(head, (g = []));
    g.push(n);
  }
  for (const [oldHead, members] of groups) {
    const head = members[0];
    if (head !== oldHead) {
      head.chunks = oldHead.chunks;
      head.size = oldHead.size;
    }
    head.linkTo = undefined;
    head.links = members.length;
    for (const m of members.slice(1)) {
      m.linkTo = head;
      m.links = 1;
      m.chunks = undefined;
    }
  }
}
