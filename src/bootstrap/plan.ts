// Plan: every nid, block and offset of a RAFS v6 bootstrap computed as data before a byte is
// written, reproducing upstream's placement (rafs-v6.md §1.5): a cursor from 4096, 32-byte
// aligned nodes, and 128 FIFO lists of partly used blocks that small inodes are fitted into.
import { NydusError } from '../errors.js';
import { LIMITS, badName, limitError } from '../format/limits.js';
import * as dirent from '../format/erofs/dirent.js';
import * as xattr from '../format/erofs/xattr.js';
import { EXTENDED_SIZE, LAYOUT_CHUNK_BASED, LAYOUT_FLAT_INLINE, LAYOUT_FLAT_PLAIN } from '../format/erofs/inode.js';
import { alignUp } from '../format/util.js';
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, dumpOrder, type TreeNode } from '../tree/node.js';

export interface PlannedDirent extends dirent.Dirent {
  node?: TreeNode;
}

/**
 * The plan, kept compact (a 500,000-entry tree is planned while the tree and the chunk records
 * are alive): per placed node a few numbers in typed arrays, indexed by its position in
 * `nodes` (layout order); directory entries are listed again when they are written.
 */
export interface Plan {
  /** Every node with an inode (hardlink members share their group's), in layout order. */
  nodes: TreeNode[];
  /** Per position: nid (planned offset / 32; final offset = planned + meta shift). */
  nid: Uint32Array;
  /** Per position: upstream's inode number (i_ino): root 1, then a directory's children in name order before its subdirectories' (§3.3). */
  index: Uint32Array;
  /** Per position: the inode's data layout. */
  layout: Uint8Array;
  /** Per position: directory or symlink data size. */
  dataSize: Float64Array;
  /** Per position: planned offset of the first full data block (dirs/symlinks), or of the cursor for tail-only. */
  dataPlanned: Float64Array;
  /** Per position: the position of the directory holding the node (the root holds itself). */
  parent: Uint32Array;
  /** Per position with xattrs: the inline xattr area (absent: none). */
  xattrs: Map<number, Buffer>;
  /** A node's position in `nodes` (a hardlink member: none; ask for its group's first node). */
  position: Map<TreeNode, number>;
  /** The nid of a placed node, as `byNode.get(node).nid`. */
  byNode: { get(node: TreeNode): { nid: number } | undefined };
  /** Planned end of the inode area. */
  end: number;
  /** Tree entries, hardlink names included. */
  entries: number;
}

/** A directory's entries, "." and ".." included, in the order EROFS stores them (`node`: the child a dirent names). */
export function direntList(dir: TreeNode): PlannedDirent[] {
  return [
    { nid: 0, name: DOT, file_type: dirent.FT_DIR },
    { nid: 0, name: DOTDOT, file_type: dirent.FT_DIR },
    ...(dir.children ?? []).map((c) => ({ nid: 0, name: c.name, file_type: dirent.fileTypeOfMode(c.mode), node: c })),
  ].sort((a, b) => dirent.compareNames(a.name, b.name));
}

/**
 * A directory's data size, as `dirSize(packBlocks(direntList(dir)))` gives it, without a dirent
 * object per entry: its children are in name order once the tree is finished, and "." and ".."
 * are merged in where they sort. Children out of order take the general way.
 */
export function dirDataSize(dir: TreeNode, B: number): number {
  const kids = dir.children ?? [];
  let blocks = 0;
  let used = 0;
  /** One more entry of a name this long, in a new block when it does not fit (packBlocks' rule). */
  const put = (nameLength: number) => {
    const len = dirent.SIZE + nameLength;
    if (used + len > B) {
      blocks++;
      used = 0;
    }
    used += len;
  };
  // "." and ".." placed so far: their names are as long as this count.
  let dots = 0;
  for (let i = 0; i < kids.length; i++) {
    const name = kids[i].name;
    if (i > 0 && dirent.compareNames(kids[i - 1].name, name) >= 0) return dirent.dirSize(dirent.packBlocks(direntList(dir), B), B);
    while (dots < 2 && dirent.compareNames(dots === 0 ? DOT : DOTDOT, name) < 0) put(++dots);
    put(name.length);
  }
  while (dots < 2) put(++dots);
  return blocks * B + used;
}

/** The 128 lists of partly filled blocks, keyed by their free bytes / 32. */
class Fragments {
  /** FIFO queues: blocks are taken from heads[i] on, never shifted out (shift is O(n) on long arrays). */
  private readonly lists: number[][];
  private readonly heads: number[];
  /** Bit i set: list i has a block to take (so an allocation finds its list without trying each one). */
  private readonly nonEmpty: Uint32Array;
  constructor(private readonly B: number) {
    this.lists = Array.from({ length: B / 32 }, () => []);
    this.heads = this.lists.map(() => 0);
    this.nonEmpty = new Uint32Array(Math.ceil(this.lists.length / 32));
  }
  register(off: number): void {
    const used = off % this.B;
    if (used === 0) return;
    const idx = Math.floor((this.B - used) / 32);
    this.lists[idx].push(off - used);
    this.nonEmpty[idx >>> 5] |= 1 << (idx & 31);
  }
  /** The first list from idx on that has a block, or -1. */
  private firstFrom(idx: number): number {
    for (let w = idx >>> 5; w < this.nonEmpty.length; w++) {
      const bits = w === idx >>> 5 ? this.nonEmpty[w] & (~0 << (idx & 31)) : this.nonEmpty[w];
      if (bits !== 0) return w * 32 + 31 - Math.clz32(bits & -bits);
    }
    return -1;
  }
  allocate(n: number): number | undefined {
    if (n >= this.B) return undefined;
    const slots = Math.ceil(n / 32);
    // The list with the fewest free slots that still fit n.
    const idx = slots < this.lists.length ? this.firstFrom(slots) : -1;
    if (idx < 0) return undefined;
    const list = this.lists[idx];
    const block = list[this.heads[idx]++];
    if (this.heads[idx] === list.length) this.nonEmpty[idx >>> 5] &= ~(1 << (idx & 31));
    const at = block + this.B - idx * 32;
    this.register(at + slots * 32);
    return at;
  }
}

/** Planned offset of the first inode: nothing is placed below it. */
export const PLAN_START = 4096;

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

const U32 = 0xffff_ffff;
const U64 = Number.MAX_SAFE_INTEGER;

/** An entry's path for a message: long ones keep their two ends. */
export function showEntry(node: TreeNode): string {
  const p = node.path.toString();
  return p.length <= 240 ? p : `${p.slice(0, 100)}…(${node.path.length} bytes)…${p.slice(-100)}`;
}

/**
 * Refuses what EROFS and the kernel cannot hold, naming the entry and the limit. Every build
 * (directory, tar, merge, a layer on a parent) lays out its tree here, so this is the one check.
 */
export function checkEntry(node: TreeNode, isRoot: boolean): void {
  // The entry's path is put together only for a message (a tree may hold millions of entries),
  // and nothing is allocated for an entry that passes.
  if (!isRoot) {
    if (node.name.length > 255) throw limitError('NAME_MAX', `${showEntry(node)}: name`, `${node.name.length} bytes`);
    const bad = badName(node.name);
    if (bad) throw new NydusError('SOURCE', `${showEntry(node)}: ${bad}`);
  }
  // Fields EROFS stores in fixed widths: a value that does not fit is refused, not wrapped.
  fits(node, 'uid', node.uid, U32);
  fits(node, 'gid', node.gid, U32);
  fits(node, 'mtime', node.mtime, U64);
  fits(node, 'mtime nanoseconds', node.mtimeNsec, 999_999_999);
  fits(node, 'size', node.size, U64);
  if (node.target && node.target.length > LIMITS.SYMLINK_MAX.value) throw limitError('SYMLINK_MAX', `${showEntry(node)}: symlink target of ${node.target.length} bytes`, node.target.length);
  const xattrs = node.xattrs;
  for (let i = 0; i < xattrs.length; i++) {
    const x = xattrs[i];
    if (x.name.length > LIMITS.XATTR_NAME_MAX.value) throw limitError('XATTR_NAME_MAX', `${showEntry(node)}: xattr name ${quotedName(x.name)}`, x.name.length);
    if (x.value.length > LIMITS.XATTR_VALUE_MAX.value) throw limitError('XATTR_VALUE_MAX', `${showEntry(node)}: value of xattr ${quotedName(x.name)}`, x.value.length);
  }
}

/** Refuses a field value that does not fit its inode field (0 to max). */
function fits(node: TreeNode, field: string, v: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) throw new NydusError('SOURCE', `${showEntry(node)}: ${field} ${v} does not fit the inode (0 to ${max})`);
}

/** An xattr name for a message, quoted, its first 40 characters. */
function quotedName(name: Buffer): string {
  const s = name.toString();
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/** The inline xattr area of a node, refused with its path when EROFS cannot hold it. */
function xattrArea(node: TreeNode): Buffer {
  let xa: Buffer;
  try {
    xa = xattr.encode(node.xattrs);
  } catch (e) {
    if (e instanceof NydusError) throw new NydusError(e.code, `${showEntry(node)}: ${e.message}`, { cause: e });
    throw e;
  }
  if (xa.length > LIMITS.XATTR_AREA_MAX.value) throw limitError('XATTR_AREA_MAX', `${showEntry(node)}: xattrs (${node.xattrs.length}) take bytes`, xa.length);
  return xa;
}

/** A growable typed array's next size. */
const grown = <T extends Uint32Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
  const b = make(Math.max(1024, a.length * 2));
  b.set(a);
  return b;
};

/**
 * `unchecked` lays out a tree past the limits, as a hostile writer would: only the readers' tests
 * use it, to craft images the readers must refuse.
 */
export function planBootstrap(root: TreeNode, blockSize: number, opts: { unchecked?: boolean } = {}): Plan {
  const steps = planSteps(root, blockSize, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Nodes placed (or numbered) between two pauses of planSteps: a few milliseconds of work. */
const STEP_NODES = 2048;

/**
 * planBootstrap in steps: it pauses (yields) every STEP_NODES nodes and returns the plan, so a
 * build lays out its tree while it still dispatches batches to the workers.
 */
export function* planSteps(root: TreeNode, blockSize: number, opts: { unchecked?: boolean } = {}): Generator<void, Plan, void> {
  const checked = !opts.unchecked;
  const B = blockSize;
  const frags = new Fragments(B);
  let cursor = PLAN_START;
  const nodes: TreeNode[] = [];
  const position = new Map<TreeNode, number>();
  const xattrs = new Map<number, Buffer>();
  let nid = new Uint32Array(0);
  let layout = new Uint8Array(0);
  let dataSize = new Float64Array(0);
  let dataPlanned = new Float64Array(0);
  let parentOf = new Uint32Array(0);
  let entries = 0;

  // Placement needs names only; nids for dirents are filled in at emit time.
  const place = (node: TreeNode, parent: TreeNode): void => {
    entries++;
    if (entries > LIMITS.ENTRIES_MAX.value) throw limitError('ENTRIES_MAX', `${showEntry(node)}: entries in the tree`, entries);
    if (checked) checkEntry(node, node === root);
    if (node.linkTo) return;
    const k = nodes.length;
    if (k === nid.length) {
      nid = grown(nid, (n) => new Uint32Array(n));
      layout = grown(layout, (n) => new Uint8Array(n));
      dataSize = grown(dataSize, (n) => new Float64Array(n));
      dataPlanned = grown(dataPlanned, (n) => new Float64Array(n));
      parentOf = grown(parentOf, (n) => new Uint32Array(n));
    }
    const type = node.mode & S_IFMT;
    const xa = xattrArea(node);
    const I = EXTENDED_SIZE + xa.length;
    let planned = 0;
    let lay = LAYOUT_FLAT_PLAIN;

    if (type === S_IFDIR || type === S_IFLNK) {
      const S = type === S_IFDIR ? dirDataSize(node, B) : node.target!.length;
      const T = S % B;
      if (T !== 0 && I + T <= B) {
        lay = LAYOUT_FLAT_INLINE;
        let at = frags.allocate(I + T);
        if (at === undefined) {
          if (B - (cursor % B) < I + T) {
            frags.register(cursor);
            cursor = alignUp(cursor, B);
          }
          at = cursor;
          cursor += I + T;
        }
        planned = at;
        if (S > T) {
          frags.register(cursor);
          cursor = alignUp(cursor, B);
          dataPlanned[k] = cursor;
          cursor += S - T;
        } else {
          dataPlanned[k] = cursor;
        }
      } else {
        lay = LAYOUT_FLAT_PLAIN;
        let at = frags.allocate(I);
        if (at === undefined) {
          at = cursor;
          cursor += I;
        }
        planned = at;
        frags.register(cursor);
        cursor = alignUp(cursor, B);
        dataPlanned[k] = cursor;
        cursor = alignUp(cursor + S, B);
      }
      dataSize[k] = S;
    } else if (type === S_IFREG) {
      lay = LAYOUT_CHUNK_BASED;
      const need = alignUp(I, 8) + 8 * (node.chunks?.length ?? 0);
      let at = frags.allocate(need);
      if (at === undefined) {
        at = cursor;
        cursor += need;
      }
      planned = at;
    } else {
      planned = cursor;
      cursor += I;
    }
    cursor = alignUp(cursor, 32);
    const n = planned / 32;
    if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new NydusError('INTERNAL', 'inode area too large');
    nid[k] = n;
    layout[k] = lay;
    parentOf[k] = position.get(parent) ?? 0;
    if (xa.length > 0) xattrs.set(k, xa);
    nodes.push(node);
    position.set(node, k);
  };
  // Upstream's layout order (layoutOrder in tree/node.ts), walked here so each node comes with its parent.
  const stack: Array<[TreeNode, TreeNode, number]> = [[root, root, 0]];
  let paused = 0;
  while (stack.length > 0) {
    const [dir, parent, depth] = stack.pop()!;
    if (checked && depth > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `${showEntry(dir)}: directory levels`, depth);
    place(dir, parent);
    const kids = dir.children ?? [];
    for (const c of kids) if ((c.mode & S_IFMT) !== S_IFDIR) place(c, dir);
    if (entries - paused >= STEP_NODES) {
      paused = entries;
      yield;
    }
    for (let i = kids.length - 1; i >= 0; i--) if ((kids[i].mode & S_IFMT) === S_IFDIR) stack.push([kids[i], dir, depth + 1]);
  }
  // Inode numbers (numberInodes' order): a placed node takes its place in the dump walk; a
  // hardlink member only uses up a number.
  const count = nodes.length;
  const index = new Uint32Array(count);
  let no = 0;
  for (const c of dumpOrder(root)) {
    no++;
    if (!c.linkTo) index[position.get(c)!] = no;
    if (no % STEP_NODES === 0) yield;
  }
  const nids = nid.subarray(0, count);
  return {
    nodes, nid: nids, index, layout: layout.subarray(0, count), dataSize: dataSize.subarray(0, count),
    dataPlanned: dataPlanned.subarray(0, count), parent: parentOf.subarray(0, count), xattrs, position,
    byNode: { get: (node) => { const k = position.get(node); return k === undefined ? undefined : { nid: nids[k] }; } },
    end: cursor, entries,
  };
}
