// Directory source: walks a tree with synchronous fs calls (no libuv round trip per file) and
// yields each entry in upstream's layout order: a directory, its non-directories by name, then
// each subdirectory. Names are raw bytes; hardlinks are found by device and inode.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NydusError, fsError, showPath as show } from '../errors.js';
import { LIMITS, limitError } from '../format/limits.js';
import * as xattr from '../format/erofs/xattr.js';
import { SCAN_FIELDS, linkKeyAt, lstatShared, readXattrs, scanDir, statNames } from '../io/xattr.js';
import { encodeDev } from '../format/erofs/inode.js';
import { releaseFreePages } from '../io/trim.js';
import { ChildNode, smi, type TreeNode } from '../tree/node.js';
import { ENTRY_GROUPS, READ_PATH, type ContentReader, type GroupedSource, type SourceEntry } from '../pipeline/stage.js';

const SLASH = Buffer.from('/');

/** Entries walked between two chances to hand free memory back (io/trim.ts). */
const TRIM_EVERY = 50_000;

/**
 * A directory's entries are stated and yielded this many at a time. The walk runs on the main
 * thread, which also hands the workers their batches: /usr/share/man/man1 (17,884 entries) stated
 * in one call held it for ~100 ms, long enough for the workers to run out of work.
 */
const SCAN_SLICE = 512;

export interface DirSourceOptions {
  /** Zero the root's mtime as upstream does, so rebuilding an unchanged tree is byte-identical. */
  zeroRootMtime?: boolean;
  /** Absolute paths to leave out (the build's own outputs, when they sit inside the source). */
  exclude?: string[];
}

/**
 * Paths a syscall takes are shorter than Linux PATH_MAX (4096); a deeper tree is reached through
 * an open directory: /proc/self/fd/N/rest, with no component of rest longer than NAME_MAX.
 */
const SHORT_PATH = 3072;
const PROC_FD = '/proc/self/fd/';

/**
 * Runs fn with a path to `abs` short enough for the kernel: `abs` itself, or its last part
 * under directories opened one stretch at a time (each closed when fn returns).
 */
function withShortPath<T>(abs: Buffer, fn: (p: Buffer) => T): T {
  if (abs.length < SHORT_PATH) return fn(abs);
  const fds: number[] = [];
  try {
    let base = Buffer.alloc(0);
    let rest = abs;
    while (base.length + rest.length >= SHORT_PATH) {
      // The longest prefix of rest ending at a "/" that keeps the path short.
      let cut = rest.lastIndexOf(0x2f, SHORT_PATH - base.length - 1);
      if (cut <= 0) cut = rest.indexOf(0x2f, 1);
      if (cut <= 0) break;
      const dir = Buffer.concat([base, rest.subarray(0, cut)]);
      const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
      fds.push(fd);
      base = Buffer.from(`${PROC_FD}${fd}`);
      rest = rest.subarray(cut);
    }
    return fn(Buffer.concat([base, rest]));
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

/**
 * The tree keeps every entry's name for the whole build: names are copied into large shared
 * slabs, not kept as a buffer each as the directory scan returns them.
 */
class NameArena {
  private slab = Buffer.allocUnsafeSlow(0);
  private used = 0;

  copy(name: Buffer): Buffer {
    const n = name.length;
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(64 << 10, n));
      this.used = 0;
    }
    const at = this.used;
    name.copy(this.slab, at);
    this.used += n;
    return this.slab.subarray(at, at + n);
  }
}

/** The xattrs of every entry that has none: one shared, frozen list instead of an empty array per node. */
const NO_XATTRS: TreeNode['xattrs'] = Object.freeze([]) as unknown as TreeNode['xattrs'];

/** Refuses xattrs EROFS cannot hold as the directory is read, before any data is stored. */
function checkXattrs(node: TreeNode): void {
  const xattrs = node.xattrs;
  if (xattrs.length === 0) return;
  const where = () => show(node.path);
  for (const x of xattrs) {
    if (x.name.length > LIMITS.XATTR_NAME_MAX.value) throw limitError('XATTR_NAME_MAX', `${where()}: xattr name`, x.name.length);
    if (x.value.length > LIMITS.XATTR_VALUE_MAX.value) throw limitError('XATTR_VALUE_MAX', `${where()}: value of xattr ${JSON.stringify(x.name.toString().slice(0, 40))}`, x.value.length);
  }
  const area = xattr.areaSize(xattrs);
  if (area > LIMITS.XATTR_AREA_MAX.value) throw limitError('XATTR_AREA_MAX', `${where()}: xattrs (${xattrs.length}) take bytes`, area);
}

function statNode(abs: Buffer, up: ChildNode | undefined, name: Buffer, at = abs): { node: ChildNode; key?: string } {
  let st: Float64Array;
  let xattrs: TreeNode['xattrs'];
  try {
    st = lstatShared(at);
    xattrs = readXattrs(at);
  } catch (e) {
    throw fsError('SOURCE', show(abs), e);
  }
  const key = linkKeyAt(st, 0);
  return { node: nodeOf(abs, up, name, st, 0, xattrs, at), key };
}

/**
 * The node of an entry stated at st[k..k+13) (lstatInto's layout); `at` is a short path to it
 * (only a symlink needs it, for its target).
 */
function nodeOf(abs: Buffer, up: ChildNode | undefined, name: Buffer, st: Float64Array, k: number, xattrs: TreeNode['xattrs'], at: Buffer): ChildNode {
  const mode = st[k];
  const type = mode & 0o170000;
  // The numbers are small integers where they fit, so V8 keeps them inline instead of in a heap
  // number each (stat fields arrive as doubles).
  const node = new ChildNode(up, name, smi(mode), smi(st[k + 1]), smi(st[k + 2]), smi(st[k + 4]), smi(st[k + 5]), xattrs.length === 0 ? NO_XATTRS : xattrs);
  checkXattrs(node);
  if (type === 0o100000) node.size = smi(st[k + 3]);
  else if (type === 0o120000) {
    try {
      node.target = fs.readlinkSync(at, { encoding: 'buffer' });
    } catch (e) {
      throw fsError('SOURCE', show(abs), e);
    }
    node.size = node.target.length;
  } else if (type === 0o020000 || type === 0o060000) {
    node.rdev = smi(encodeDev(st[k + 7], st[k + 8]));
  }
  return node;
}

class FileReader implements ContentReader {
  private pos = 0;
  /** The path as bytes: it becomes text only for an error message. */
  constructor(private readonly fd: number, private readonly path: Buffer) {}
  read(into: Uint8Array, offset: number, length: number): number {
    try {
      const n = fs.readSync(this.fd, into, offset, length, this.pos);
      this.pos += n;
      return n;
    } catch (e) {
      throw fsError('SOURCE', show(this.path), e);
    }
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

/**
 * The file's opener, tagged with its path when the kernel takes that path as is: the pipeline's
 * workers then open and read the file themselves, and no byte of it passes the main thread.
 */
function opener(abs: Buffer): () => ContentReader {
  const open = () => {
    try {
      return new FileReader(withShortPath(abs, (p) => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)), abs);
    } catch (e) {
      throw fsError('SOURCE', show(abs), e);
    }
  };
  return abs.length < SHORT_PATH ? Object.assign(open, { [READ_PATH]: abs }) : open;
}

/**
 * Yields the root first, then every entry with its parent, in layout order. The pipeline takes
 * them a group at a time (ENTRY_GROUPS) when no entry stage sits in between.
 */
export function dirSource(root: string, opts: DirSourceOptions = {}): GroupedSource {
  return {
    [ENTRY_GROUPS]: () => dirGroups(root, opts),
    async *[Symbol.asyncIterator]() {
      for (const group of dirGroups(root, opts)) yield* group;
    },
  };
}

/** The walk in groups: the root alone, then each directory (the root's after it) with its non-directories. */
function* dirGroups(root: string, opts: DirSourceOptions): Generator<SourceEntry[]> {
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch (e) {
    throw fsError('SOURCE', root, e);
  }
  if (!st.isDirectory()) throw new NydusError('SOURCE', 'not a directory', { path: root });
  // A source given as a symlink to a directory means that directory: the image's root is a
  // directory, never the link.
  let real: string;
  try {
    real = fs.realpathSync(root);
  } catch (e) {
    throw fsError('SOURCE', root, e);
  }
  const rootAbs = Buffer.from(real.replace(/\/+$/, '') || '/');
  const exclude = new Set((opts.exclude ?? []).map((p) => Buffer.from(p).toString('latin1')));
  // Only a name that some excluded path ends in needs its full path resolved and looked up.
  const excludedNames = new Set([...exclude].map((p) => path.basename(p)));
  // ... and only a name of one of their lengths needs that name as text.
  const excludedLengths = new Set([...excludedNames].map((n) => n.length));
  const links = new Map<string, TreeNode>();
  const arena = new NameArena();
  const top = statNode(rootAbs, undefined, Buffer.alloc(0)).node;
  if (opts.zeroRootMtime) {
    top.mtime = 0;
    top.mtimeNsec = 0;
  }
  yield [{ node: top }];

  // Depth-first with an explicit stack (the depth comes from the input): a directory, its
  // non-directories by name, then each subdirectory in turn.
  const stack: Array<{ node: ChildNode; parent?: TreeNode; abs: Buffer; depth: number }> = [{ node: top, abs: rootAbs, depth: 0 }];
  let sinceTrim = 0;
  while (stack.length > 0) {
    const { node: dir, parent, abs, depth } = stack.pop()!;
    let group: SourceEntry[] = parent ? [{ node: dir, parent }] : [];
    // A long walk frees what the pipeline's threads left behind now and then (a big tree only).
    if (sinceTrim >= TRIM_EVERY) {
      sinceTrim = 0;
      releaseFreePages();
    }
    // The names are read at once (a deep directory is opened once for them), its entries stated
    // and yielded a slice at a time; the subdirectories follow the last slice.
    let scan: { names: Buffer[]; stats: Float64Array };
    try {
      scan = withShortPath(abs, (at) => scanDir(at, SCAN_SLICE));
    } catch (e) {
      throw fsError('SOURCE', show(abs), e);
    }
    const { names } = scan;
    sinceTrim += names.length;
    const subdirs: Array<{ node: ChildNode; abs: Buffer }> = [];
    for (let from = 0; from < names.length; from += SCAN_SLICE) {
      const to = Math.min(names.length, from + SCAN_SLICE);
      let stats = scan.stats;
      if (from > 0) {
        try {
          stats = withShortPath(abs, (at) => statNames(at, names, from, to));
        } catch (e) {
          throw fsError('SOURCE', show(abs), e);
        }
      }
      withShortPath(abs, (at) => readDir(dir, abs, at, names, from, to, stats, group, subdirs));
      if (group.length > 0 && to < names.length) {
        yield group;
        group = [];
      }
    }
    if (group.length > 0) yield group;
    if (subdirs.length > 0 && depth + 1 > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `${show(subdirs[0].node.path)}: directory levels`, depth + 1);
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push({ node: subdirs[i].node, parent: dir, abs: subdirs[i].abs, depth: depth + 1 });
  }

  /**
   * Entries names[from, to) of one directory, in name order, from scanDir's stats of them
   * (SCAN_FIELDS each, from 0); `at` is a short path to the directory. The subdirectories go to
   * `subdirs`, every other entry to `group`.
   */
  function readDir(dir: ChildNode, abs: Buffer, at: Buffer, names: Buffer[], from: number, to: number, stats: Float64Array, group: SourceEntry[], subdirs: Array<{ node: ChildNode; abs: Buffer }>): void {
    for (let i = from; i < to; i++) {
      const name = names[i];
      const childAbs = Buffer.concat([abs, SLASH, name]);
      if (excludedLengths.has(name.length) && excludedNames.has(name.toString('latin1')) && exclude.has(path.resolve(childAbs.toString('latin1')))) continue;
      const own = arena.copy(name);
      // The short path differs only under a long one (withShortPath).
      const childAt = at === abs ? childAbs : Buffer.concat([at, SLASH, name]);
      const k = (i - from) * SCAN_FIELDS;
      let node: ChildNode;
      let key: string | undefined;
      if (stats[k] < 0) {
        // The scan's lstat or xattr list failed: by path again, for the error as the walk gives it.
        ({ node, key } = statNode(childAbs, dir, own, childAt));
      } else {
        let xattrs = NO_XATTRS;
        if (stats[k + 13] > 0) {
          try {
            xattrs = readXattrs(childAt);
          } catch (e) {
            throw fsError('SOURCE', show(childAbs), e);
          }
        }
        node = nodeOf(childAbs, dir, own, stats, k, xattrs, childAt);
        key = linkKeyAt(stats, k);
      }
      if (key !== undefined) {
        const first = links.get(key);
        if (first) node.linkTo = first;
        else links.set(key, node);
      }
      const type = node.mode & 0o170000;
      if (type === 0o040000) subdirs.push({ node, abs: childAbs });
      else group.push({ node, parent: dir, open: type === 0o100000 ? opener(childAbs) : undefined });
    }
  }
}
