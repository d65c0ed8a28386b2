// The in-memory filesystem tree every source builds and the bootstrap planner lays out.
// Pure data: no I/O here.
import type { Xattr } from '../read/model.js';

/** Where one chunk of a file lives: an index into the build's chunk list. */
export interface ChunkRef {
  /** Index into BuildState.chunks (unique chunks across every blob of the build). */
  chunk: number;
  /** Offset of this chunk in the file. */
  fileOffset: number;
}

export interface TreeNode {
  /** Name bytes inside the parent (empty for the root). */
  name: Buffer;
  /** Path relative to the source root, for messages ('/' for the root). */
  path: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  /** Regular file: bytes; symlink: target length; otherwise 0 (directories are sized at layout). */
  size: number;
  /** new_encode_dev form, for character and block devices. */
  rdev: number;
  /** Sorted by name bytes. */
  xattrs: Xattr[];
  target?: Buffer;
  /** Directory children, sorted by name bytes once the source has finished. */
  children?: TreeNode[];
  /** A hardlink: the first node of its group, which carries the data and the inode. */
  linkTo?: TreeNode;
  /** Number of names this inode has in the tree (set on the group's first node). */
  links: number;
  /** Regular files: chunk references in file order, set by the pipeline. */
  chunks?: ChunkRef[];
}

const SLASH = Buffer.from('/');

/** A whole number in int32 range as V8's small integer (stored inline in a node); anything else unchanged. */
export const smi = (v: number): number => ((v | 0) === v ? v | 0 : v);

/**
 * A node that keeps its parent directory instead of its path: the path (wanted only for
 * messages) is put together when asked, so a big tree holds one name buffer per entry, not two.
 * `up` is the directory the source found it in (undefined for the root, whose path is "/").
 */
export class ChildNode implements TreeNode {
  // Rare fields stay off the object until set (declared only: no slot per node).
  declare target?: Buffer;
  declare children?: TreeNode[];
  declare linkTo?: TreeNode;
  size = 0;
  rdev = 0;
  links = 1;
  chunks?: ChunkRef[] = undefined;
  constructor(
    readonly up: ChildNode | undefined,
    public name: Buffer,
    public mode: number,
    public uid: number,
    public gid: number,
    public mtime: number,
    public mtimeNsec: number,
    public xattrs: Xattr[],
  ) {}

  get path(): Buffer {
    if (!this.up) return SLASH;
    // Iterative: the depth comes from the input.
    const names: Buffer[] = [];
    let len = 0;
    for (let n: ChildNode | undefined = this; n?.up; n = n.up) {
      names.push(n.name);
      len += 1 + n.name.length;
    }
    const out = Buffer.allocUnsafe(len);
    let at = 0;
    for (let i = names.length - 1; i >= 0; i--) {
      out[at++] = 0x2f;
      at += names[i].copy(out, at);
    }
    return out;
  }
}

import { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK } from '../format/mode.js';
import { compareBytes } from '../format/util.js';
export { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK };

export const isDirNode = (n: TreeNode) => (n.mode & S_IFMT) === S_IFDIR;
export const isRegNode = (n: TreeNode) => (n.mode & S_IFMT) === S_IFREG;

/** Sorts a directory's children the way EROFS dirents are ordered: byte-wise by name. */
export function sortChildren(dir: TreeNode): void {
  dir.children?.sort((a, b) => compareBytes(a.name, b.name));
}

/**
 * Finds nodes by path ("/a/b", the name bytes as latin1) a component at a time from the root; a
 * directory's children are indexed by name the first time a lookup passes through it. The cost
 * follows the paths asked for, not the tree: a path per node is quadratic in the depth, which
 * comes from the input.
 */
export class PathLookup {
  private readonly index = new Map<TreeNode, Map<string, TreeNode>>();

  constructor(private readonly root: TreeNode) {}

  /** The node whose path is exactly `path` ("/" is the root; no empty, "." or ".." component matches). */
  get(path: string): TreeNode | undefined {
    if (path === '/') return this.root;
    if (!path.startsWith('/')) return undefined;
    let n: TreeNode | undefined = this.root;
    for (let from = 1; n; ) {
      const end = path.indexOf('/', from);
      n = this.child(n, path.slice(from, end < 0 ? undefined : end));
      if (end < 0) return n;
      from = end + 1;
    }
    return undefined;
  }

  private child(dir: TreeNode, name: string): TreeNode | undefined {
    let byName = this.index.get(dir);
    if (!byName) {
      byName = new Map();
      for (const c of dir.children ?? []) byName.set(c.name.toString('latin1'), c);
      this.index.set(dir, byName);
    }
    return byName.get(name);
  }
}

/** Every node, each directory before its children (children in stored order). */
export function* walk(root: TreeNode): Generator<TreeNode> {
  const stack: TreeNode[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    yield n;
    if (n.children) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
}

/** Upstream's layout order: a directory, its non-directory children, then each subdirectory's subtree. */
export function* layoutOrder(root: TreeNode): Generator<TreeNode> {
  // Depth-first with an explicit stack: nested yield* would resume every level per node.
  const stack: TreeNode[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    yield dir;
    const kids = dir.children ?? [];
    for (const c of kids) if (!isDirNode(c)) yield c;
    for (let i = kids.length - 1; i >= 0; i--) if (isDirNode(kids[i])) stack.push(kids[i]);
  }
}

/**
 * Upstream's dump walk (walk_bfs): the root, then a directory's children in order before each
 * child directory's. Inode numbers and the chunk table follow it.
 */
export function* dumpOrder(root: TreeNode): Generator<TreeNode> {
  yield root;
  // An explicit stack of directories still to list, the next one on top.
  const stack: TreeNode[] = [root];
  while (stack.length > 0) {
    const kids = stack.pop()!.children ?? [];
    yield* kids;
    for (let i = kids.length - 1; i >= 0; i--) if (isDirNode(kids[i])) stack.push(kids[i]);
  }
}
