// Directory source: walks a tree with synchronous fs calls (no libuv round trip per file) and
// yields each entry in upstream's layout order: a directory, its non-directories by name, then
// each subdirectory. Names are raw bytes; hardlinks are found by device and inode.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NydusError, fsError } from '../errors.js';
import { lstatFast, readXattrs, type LstatResult } from '../io/xattr.js';
import { encodeDev } from '../format/erofs/inode.js';
import type { TreeNode } from '../tree/node.js';
import type { ContentReader, SourceEntry } from '../pipeline/stage.js';

const SLASH = Buffer.from('/');

export interface DirSourceOptions {
  /** Zero the root's mtime as upstream does, so rebuilding an unchanged tree is byte-identical. */
  zeroRootMtime?: boolean;
  /** Absolute paths to leave out (the build's own outputs, when they sit inside the source). */
  exclude?: string[];
}

function statNode(abs: Buffer, rel: Buffer, name: Buffer): { node: TreeNode; key?: string } {
  let st: LstatResult;
  let xattrs: TreeNode['xattrs'];
  try {
    st = lstatFast(abs);
    xattrs = readXattrs(abs);
  } catch (e) {
    throw fsError('SOURCE', abs.toString(), e);
  }
  const type = st.mode & 0o170000;
  const node: TreeNode = {
    name, path: rel, mode: st.mode, uid: st.uid, gid: st.gid, mtime: st.mtime, mtimeNsec: st.mtimeNsec,
    size: 0, rdev: 0, xattrs, links: 1,
  };
  if (type === 0o100000) node.size = st.size;
  else if (type === 0o120000) {
    try {
      node.target = fs.readlinkSync(abs, { encoding: 'buffer' });
    } catch (e) {
      throw fsError('SOURCE', abs.toString(), e);
    }
    node.size = node.target.length;
  } else if (type === 0o020000 || type === 0o060000) {
    node.rdev = encodeDev(st.rdevMajor, st.rdevMinor);
  }
  return { node, key: type !== 0o040000 && st.nlink > 1 ? st.key : undefined };
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
      throw fsError('SOURCE', this.path.toString(), e);
    }
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

function opener(abs: Buffer): () => ContentReader {
  return () => {
    try {
      return new FileReader(fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW), abs);
    } catch (e) {
      throw fsError('SOURCE', abs.toString(), e);
    }
  };
}

/** Yields the root first, then every entry with its parent, in layout order. */
export async function* dirSource(root: string, opts: DirSourceOptions = {}): AsyncGenerator<SourceEntry> {
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch (e) {
    throw fsError('SOURCE', root, e);
  }
  if (!st.isDirectory()) throw new NydusError('SOURCE', 'not a directory', { path: root });
  const rootAbs = Buffer.from(root.replace(/\/+$/, '') || '/');
  const exclude = new Set((opts.exclude ?? []).map((p) => Buffer.from(p).toString('latin1')));
  // Only a name that some excluded path ends in needs its full path resolved and looked up.
  const excludedNames = new Set([...exclude].map((p) => path.basename(p)));
  const links = new Map<string, TreeNode>();
  const top = statNode(rootAbs, SLASH, Buffer.alloc(0)).node;
  if (opts.zeroRootMtime) {
    top.mtime = 0;
    top.mtimeNsec = 0;
  }
  yield { node: top };

  const visit = function* (dir: TreeNode, abs: Buffer): Generator<SourceEntry> {
    let names: Buffer[];
    try {
      names = fs.readdirSync(abs, { encoding: 'buffer' });
    } catch (e) {
      throw fsError('SOURCE', abs.toString(), e);
    }
    names.sort(Buffer.compare);
    const subdirs: Array<[TreeNode, Buffer]> = [];
    for (const name of names) {
      const childAbs = Buffer.concat([abs, SLASH, name]);
      if (excludedNames.has(name.toString('latin1')) && exclude.has(path.resolve(childAbs.toString('latin1')))) continue;
      const rel = dir.path.length === 1 ? Buffer.concat([SLASH, name]) : Buffer.concat([dir.path, SLASH, name]);
      const { node, key } = statNode(childAbs, rel, name);
      if (key !== undefined) {
        const first = links.get(key);
        if (first) node.linkTo = first;
        else links.set(key, node);
      }
      if ((node.mode & 0o170000) === 0o040000) {
        subdirs.push([node, childAbs]);
        continue;
      }
      yield { node, parent: dir, open: (node.mode & 0o170000) === 0o100000 ? opener(childAbs) : undefined };
    }
    for (const [node, childAbs] of subdirs) {
      yield { node, parent: dir };
      yield* visit(node, childAbs);
    }
  };
  yield* visit(top, rootAbs);
}
