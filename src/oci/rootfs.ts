// The two root file systems `nydusify check` compares, read without root, mounts or nydusd
// (spec oci-and-converters.md §3.2 rule 3): an OCI image's layers, each a decompressed tar
// stream parsed by our tar source and applied onto the ones below with the OCI overlay rules;
// a Nydus image's bootstrap read by our reader, with every chunk read back from its blob. Both
// become one flat table of entries carrying a content digest per regular file, so the
// comparison (fs-compare.ts) is pure.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import PQueue from 'p-queue';
import { NydusError } from '../errors.js';
import { LIMITS, limitError } from '../format/limits.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../format/mode.js';
import type { BlobReader } from '../read/data.js';
import type { ImageNode, RafsImage, Xattr } from '../read/model.js';
import { tarSource } from '../sources/tar.js';
import { TreeAssembler } from '../tree/assemble.js';
import type { TreeNode } from '../tree/node.js';
import { applyLayer } from '../tree/overlay.js';

/** One entry of a root file system, with what the comparison looks at. */
export interface FsEntry {
  /** Path bytes from the root: "/" for the root, "/a/b" below it. */
  path: Buffer;
  /** st_mode: type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Regular file: bytes; symlink: target length; others: 0 (directories are not compared by size). */
  size: number;
  /** Linux new_encode_dev form. */
  rdev: number;
  mtime: number;
  mtimeNsec: number;
  nlink: number;
  target?: Buffer;
  /** Sorted by name bytes. */
  xattrs: Xattr[];
  /** Regular file: "sha256:<hex>" of its content, unless it could not be read (then `unreadable` says why). */
  digest?: string;
  unreadable?: string;
  /** A regular file with more than one name: every name of the inode, sorted (one array shared by the group). */
  links?: Buffer[];
}

/** Entries by path (the path bytes as a latin1 string, so every byte is kept and order is byte order). */
export type Rootfs = Map<string, FsEntry>;

const SLASH = Buffer.from('/');
const READ_SIZE = 1 << 20;

const join = (dir: Buffer, name: Buffer): Buffer => (dir.length === 1 ? Buffer.concat([SLASH, name]) : Buffer.concat([dir, SLASH, name]));
const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;
const isReg = (mode: number) => (mode & S_IFMT) === S_IFREG;

/** One layer of an OCI image: its tar, decompressed, opened when its turn comes. */
export interface LayerTar {
  /** For messages: which image and layer. */
  where: string;
  open(): Promise<Readable>;
}

/** Counts entries across every layer of one image against ENTRIES_MAX. */
class EntryBudget {
  private n = 0;
  constructor(private readonly where: string) {}
  add(): void {
    if (++this.n > LIMITS.ENTRIES_MAX.value) throw limitError('ENTRIES_MAX', this.where, `more than ${LIMITS.ENTRIES_MAX.value} entries`);
  }
}

/**
 * One layer's tree as our builder's tar source makes it, every regular file's content hashed as
 * it streams past. The digest rides on the node as a one-element chunk list (an index into
 * `contents`): the overlay and hardlink rules move chunk lists with the inode they belong to,
 * so the digest follows a file whose group changes its first name.
 */
async function layerTree(layer: LayerTar, contents: string[], budget: EntryBudget): Promise<TreeNode> {
  const tar = await layer.open();
  const assembler = new TreeAssembler();
  const buf = Buffer.allocUnsafe(READ_SIZE);
  try {
    for await (const e of tarSource(tar, { gzip: 'auto', name: layer.where })) {
      if (!assembler.attach(e.node, e.parent, e.replaces)) continue;
      budget.add();
      const n = e.node;
      if (!isReg(n.mode) || n.linkTo) continue;
      const hash = createHash('sha256');
      if (n.size > 0) {
        if (!e.open) throw new NydusError('INTERNAL', `${layer.where}: regular file without content`, { path: n.path.toString() });
        const reader = e.open();
        try {
          for (let done = 0; done < n.size; ) {
            const r = reader.read(buf, 0, Math.min(buf.length, n.size - done));
            const got = typeof r === 'number' ? r : await r;
            if (got === 0) throw new NydusError('SOURCE', `${layer.where}: ${JSON.stringify(n.path.toString())}: the tar member ended after ${done} of ${n.size} bytes`);
            hash.update(buf.subarray(0, got));
            done += got;
          }
        } finally {
          reader.close();
        }
      }
      contents.push(`sha256:${hash.digest('hex')}`);
      n.chunks = [{ chunk: contents.length - 1, fileOffset: 0 }];
    }
  } finally {
    tar.destroy();
  }
  return assembler.finish() ?? emptyRoot();
}

function emptyRoot(): TreeNode {
  return { name: Buffer.alloc(0), path: SLASH, mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, xattrs: [], links: 1, children: [] };
}

/**
 * An OCI image's root file system: the layers (lower → upper) parsed `concurrency` at a time and
 * applied in order onto an empty root, so whiteouts even in the lowest layer act (and vanish) as
 * they do when a runtime unpacks the image.
 */
export async function ociRootfs(layers: readonly LayerTar[], where: string, concurrency = 2): Promise<Rootfs> {
  const contents: string[] = [];
  const budget = new EntryBudget(where);
  const queue = new PQueue({ concurrency });
  let failed: unknown;
  const trees = layers.map((l) =>
    queue.add(async () => {
      if (failed !== undefined) throw failed;
      return layerTree(l, contents, budget);
    }, { throwOnTimeout: true }),
  );
  for (const t of trees) t.catch((e: unknown) => (failed ??= e));
  // Every layer settles before a failure is thrown: none is still streaming when this returns.
  const settled = await Promise.allSettled(trees);
  if (failed !== undefined) throw failed;
  let root = emptyRoot();
  for (const s of settled) root = applyLayer(root, (s as PromiseFulfilledResult<TreeNode>).value, 'oci');
  return flattenTree(root, contents);
}

/** The merged tree as entries: links from the hardlink groups, nlink as the kernel shows it. */
function flattenTree(root: TreeNode, contents: readonly string[]): Rootfs {
  const out: Rootfs = new Map();
  const groups = new Map<TreeNode, Buffer[]>();
  const stack: Array<[TreeNode, Buffer]> = [[root, SLASH]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [n, path] = top;
    const head = n.linkTo ?? n;
    const entry: FsEntry = {
      path, mode: n.mode, uid: n.uid, gid: n.gid, size: isDir(n.mode) ? 0 : n.size, rdev: n.rdev,
      mtime: n.mtime, mtimeNsec: n.mtimeNsec, nlink: isDir(n.mode) ? 2 + (n.children ?? []).filter((c) => isDir(c.mode)).length : head.links,
      xattrs: n.xattrs, ...(n.target ? { target: n.target } : {}),
    };
    if (isReg(n.mode)) {
      const ref = head.chunks?.[0];
      if (ref !== undefined) entry.digest = contents[ref.chunk];
      else entry.unreadable = 'no content was read for it';
      if (head.links > 1) {
        let g = groups.get(head);
        if (!g) groups.set(head, (g = []));
        g.push(path);
        entry.links = g;
      }
    }
    out.set(path.toString('latin1'), entry);
    for (const c of n.children ?? []) stack.push([c, join(path, c.name)]);
  }
  for (const g of groups.values()) g.sort(Buffer.compare);
  return out;
}

/**
 * A Nydus image's root file system from its bootstrap; with `reader`, every regular inode's
 * chunks are read back (decompressed and checked against their digests) and hashed, once per
 * inode. A chunk that cannot be read makes that file's content unreadable, with the reason.
 */
export function nydusRootfs(image: RafsImage, reader: BlobReader | undefined, why = 'its blobs are not at hand'): Rootfs {
  const out: Rootfs = new Map();
  const names = new Map<number, Buffer[]>();
  const digests = new Map<number, { digest?: string; unreadable?: string }>();
  const stack: Array<[ImageNode, Buffer]> = [[image.root, SLASH]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [n, path] = top;
    const entry: FsEntry = {
      path, mode: n.mode, uid: n.uid, gid: n.gid, size: isDir(n.mode) ? 0 : n.size, rdev: n.rdev,
      mtime: n.mtime, mtimeNsec: n.mtimeNsec, nlink: n.nlink, xattrs: n.xattrs, ...(n.target ? { target: n.target } : {}),
    };
    if (isReg(n.mode)) {
      let d = digests.get(n.ino);
      if (!d) digests.set(n.ino, (d = reader ? contentOf(n, reader) : { unreadable: why }));
      Object.assign(entry, d);
      let g = names.get(n.ino);
      if (!g) names.set(n.ino, (g = []));
      g.push(path);
      entry.links = g;
    }
    out.set(path.toString('latin1'), entry);
    for (const c of n.children ?? []) stack.push([c, join(path, c.name)]);
  }
  for (const e of out.values()) {
    if (e.links === undefined) continue;
    if (e.links.length < 2) delete e.links;
  }
  for (const g of names.values()) g.sort(Buffer.compare);
  return out;
}

/** sha256 of a file's content, chunk by chunk, or why it cannot be read. */
function contentOf(n: ImageNode, reader: BlobReader): { digest?: string; unreadable?: string } {
  const hash = createHash('sha256');
  let at = 0;
  try {
    for (const c of n.chunks ?? []) {
      if (c.fileOffset !== at) return { unreadable: `chunk at file offset ${c.fileOffset} where ${at} was expected` };
      const data = reader.readChunk(c, true);
      hash.update(data);
      at += data.length;
    }
  } catch (e) {
    if (e instanceof NydusError) return { unreadable: e.message };
    throw e;
  }
  if (at !== n.size) return { unreadable: `its chunks hold ${at} of its ${n.size} bytes` };
  return { digest: `sha256:${hash.digest('hex')}` };
}
