// A loaded image (any RAFS version) as a build tree: the base of a layered build, a merge
// layer, or a chunk dictionary. Chunks are appended to `chunks` with their blob index moved
// by `blobBase`; hardlinks (nodes sharing an inode) are linked to their first member.
import type { ChunkInfo, ImageNode, RafsImage } from '../read/model.js';
import type { TreeNode } from './node.js';

export interface ImportedTree {
  root: TreeNode;
  /** Index of the first chunk this image added to the shared chunk list. */
  firstChunk: number;
}

/**
 * Converts `image` into TreeNodes. Every distinct chunk (by blob and chunk index) is appended
 * to `chunks` once, with blobIndex + blobBase; nodes reference them by position.
 */
export function treeFromImage(image: RafsImage, chunks: ChunkInfo[], blobBase = 0): ImportedTree {
  const firstChunk = chunks.length;
  const chunkAt = new Map<string, number>();
  const inodes = new Map<number, TreeNode>();
  const SLASH = Buffer.from('/');

  const convert = (n: ImageNode, path: Buffer): TreeNode => {
    const t: TreeNode = {
      name: n.name, path, mode: n.mode, uid: n.uid, gid: n.gid, mtime: n.mtime, mtimeNsec: n.mtimeNsec,
      size: n.children ? 0 : n.size, rdev: n.rdev, xattrs: n.xattrs.map((x) => ({ name: x.name, value: x.value })),
      links: 1,
    };
    if (n.target) t.target = n.target;
    if (n.children) {
      t.children = [];
      return t;
    }
    // Every further name of an inode is a hardlink to its first, whatever nlink says: a
    // crafted image naming one huge file thousands of times costs one chunk list, not thousands.
    const first = inodes.get(n.ino);
    if (first) {
      t.linkTo = first;
      first.links++;
      return t;
    }
    inodes.set(n.ino, t);
    if (n.chunks) {
      t.chunks = n.chunks.map((c) => {
        const key = `${c.blobIndex}:${c.index}:${c.uncompressedOffset}`;
        let at = chunkAt.get(key);
        if (at === undefined) {
          at = chunks.length;
          chunks.push({ ...c, blobIndex: c.blobIndex + blobBase });
          chunkAt.set(key, at);
        }
        return { chunk: at, fileOffset: c.fileOffset };
      });
    }
    return t;
  };

  // An explicit stack: the image's depth is not ours to choose.
  const root = convert(image.root, SLASH);
  const stack: Array<[ImageNode, TreeNode]> = [[image.root, root]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [dir, t] = top;
    const prefix = t.path.length === 1 ? Buffer.alloc(0) : t.path;
    for (const c of dir.children!) {
      const child = convert(c, Buffer.concat([prefix, SLASH, c.name]));
      t.children!.push(child);
      if (c.children) stack.push([c, child]);
    }
  }
  return { root, firstChunk };
}
