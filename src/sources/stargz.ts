// eStargz TOC source for `create --type stargz_index` / `estargztoc-ref` (upstream
// builder/src/stargz.rs): the tree comes from the TOC's entries, and every regular file's chunks
// are the gzip members of the eStargz blob the TOC describes (a chunk's compressed offset is its
// member's offset; its compressed size an upper bound, cut at the next member). No data is read.
import { NydusError } from '../errors.js';
import { LIMITS, badName, checkLimit, limitError } from '../format/limits.js';
import { areaSize } from '../format/erofs/xattr.js';
import { encodeDev } from '../format/erofs/inode.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../format/mode.js';
import { CHUNK_COMPRESSED, type ChunkInfo } from '../read/model.js';
import { isDirNode, type TreeNode } from '../tree/node.js';
import { normalizeHardlinks } from '../tree/overlay.js';
import { chunkDigestBytes, type Toc, type TocEntry } from '../format/stargz/toc.js';
import { alignUp } from '../format/util.js';

export interface StargzTreeOptions {
  chunkSize: number;
  /** Keep the entries' uid/gid (false: --repeatable, all 0). */
  explicitUidGid: boolean;
  /** Blob index the chunks get in the image's blob table. */
  blobIndex: number;
  /**
   * Where the chunk data of the blob ends (--blob-data-size, or the TOC's offset when the blob
   * itself is the source): the last chunk's size is cut there and no chunk may start at or past it.
   */
  dataEnd?: number;
  /** Names the TOC in messages. */
  where: string;
}

export interface StargzTree {
  root: TreeNode;
  /** The blob's chunks, in chunk-index order (their `index`). */
  chunks: ChunkInfo[];
  /** Uncompressed size of the blob: the 4 KiB-aligned chunks end to end. */
  uncompressedSize: number;
  /** The furthest byte a chunk may read: offset + compressed size. */
  compressedSize: number;
}

/** eStargz's own files, skipped at the root (tar-merge-export.md §1). */
const SPECIAL = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark']);
const XATTR_PREFIXES = ['user.', 'security.', 'trusted.', 'system.posix_acl_access', 'system.posix_acl_default'];
const TYPE_BITS: Record<string, number> = { dir: S_IFDIR, reg: S_IFREG, hardlink: S_IFREG, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK, fifo: S_IFIFO };

/** Upstream's bound on a gzip member holding `size` bytes (nydus-utils compute_compressed_gzip_size). */
export function gzipSizeBound(size: number): number {
  return size + 10 + 8 + 5 + Math.floor(size / (16 << 10)) * 5 + 128;
}

/** blob_table.compressed_size and blob.meta's compressed offsets stop at 2^40. */
const MAX_BLOB_OFFSET = 2 ** 40 - (32 << 20);

/** The path's components, or an error naming the entry: no "..", no empty or overlong names. */
function components(name: string, fail: (why: string) => NydusError): Buffer[] {
  const bytes = Buffer.from(name, 'utf8');
  checkLimit('PATH_MAX', 'stargz TOC entry name', bytes.length);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x2f) continue;
    const c = bytes.subarray(start, i);
    start = i + 1;
    if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
    if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) throw fail('".." in the path');
    const bad = badName(c);
    if (bad) throw fail(bad);
    out.push(c);
  }
  if (out.length > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `stargz TOC entry ${JSON.stringify(name.slice(0, 200))}`, out.length);
  return out;
}

function directory(name: Buffer, path: Buffer): TreeNode {
  // Upstream's implied parents (TarBuilder::create_directory): 0755, owned by root, time 0.
  return { name, path, mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, xattrs: [], children: [], links: 1 };
}

function decodeXattrs(e: TocEntry, fail: (why: string) => NydusError): TreeNode['xattrs'] {
  const out: TreeNode['xattrs'] = [];
  for (const [k, v] of e.xattrs) {
    const name = Buffer.from(k, 'utf8');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw fail(`xattr ${JSON.stringify(k.slice(0, 60))}: value is not base64`);
    const value = Buffer.from(v, 'base64');
    checkLimit('XATTR_NAME_MAX', `stargz TOC entry ${e.name}: xattr name`, name.length);
    checkLimit('XATTR_VALUE_MAX', `stargz TOC entry ${e.name}: xattr ${JSON.stringify(k.slice(0, 60))} value`, value.length);
    if (!XATTR_PREFIXES.some((p) => k.startsWith(p))) {
      throw fail(`invalid xattr key ${JSON.stringify(k.slice(0, 60))}: it must start with user., security., trusted., system.posix_acl_access or system.posix_acl_default`);
    }
    out.push({ name, value });
  }
  out.sort((a, b) => Buffer.compare(a.name, b.name));
  if (out.length > 0) checkLimit('XATTR_AREA_MAX', `stargz TOC entry ${e.name}: xattrs take bytes`, areaSize(out));
  return out;
}

/** A file's data chunks as the TOC lists them, before their places in the blob are fixed. */
interface PendingChunk {
  entry: TocEntry;
  node: TreeNode;
  size: number;
}

/** Builds the tree and the chunk list from a parsed TOC. */
export function stargzTree(toc: Toc, o: StargzTreeOptions): StargzTree {
  const cs = o.chunkSize;
  const root = directory(Buffer.alloc(0), Buffer.from('/'));
  const byPath = new Map<string, TreeNode>([['', root]]);
  const pending: PendingChunk[] = [];
  /** The regular file each path's "chunk" entries continue: its node and its head entry. */
  const heads = new Map<string, { node: TreeNode; entry: TocEntry }>();
  checkLimit('ENTRIES_MAX', `stargz TOC ${o.where}: entries`, toc.entries.length);

  toc.entries.forEach((e, i) => {
    const fail = (why: string) => new NydusError('FORMAT', `stargz: entries[${i}] ${JSON.stringify(e.name.slice(0, 200))}: ${why}`, { path: o.where });
    const comps = components(e.name, fail);
    const key = Buffer.concat(comps.flatMap((c) => [Buffer.from('/'), c])).toString('latin1');
    if (comps.length === 1 && SPECIAL.has(comps[0]!.toString('latin1'))) return;
    if (e.innerOffset !== 0) throw fail(`innerOffset ${e.innerOffset}: several chunks in one gzip member are not supported (RAFS addresses a chunk by its own member)`);

    // Data: a non-empty reg, or a later chunk of one.
    if (e.type === 'chunk') {
      const head = heads.get(key);
      if (!head) throw fail('file chunk lacks corresponding head regular file entry');
      if (e.chunkOffset === 0) throw fail('chunk offset is zero');
      const size = e.chunkSize !== 0 ? e.chunkSize : head.entry.size - e.chunkOffset;
      pending.push({ entry: e, node: head.node, size });
      return;
    }

    if ((e.type === 'symlink' || e.type === 'hardlink') && e.linkName === '') throw fail('empty link target');
    const parentComps = comps.slice(0, -1);
    let parent = root;
    let pkey = '';
    for (const c of parentComps) {
      pkey += '/' + c.toString('latin1');
      let next = byPath.get(pkey);
      if (!next) {
        next = directory(Buffer.from(c), Buffer.from(pkey, 'latin1'));
        parent.children!.push(next);
        byPath.set(pkey, next);
      } else if (!isDirNode(next)) {
        throw fail(`parent ${JSON.stringify(Buffer.from(pkey, 'latin1').toString('utf8'))} is not a directory`);
      }
      parent = next;
    }

    const uid = o.explicitUidGid ? e.uid : 0;
    const gid = o.explicitUidGid ? e.gid : 0;
    let node: TreeNode;
    if (e.type === 'hardlink') {
      const tcomps = components(e.linkName, (why) => fail(`hardlink target: ${why}`));
      const tkey = Buffer.concat(tcomps.flatMap((c) => [Buffer.from('/'), c])).toString('latin1');
      const target = byPath.get(tkey);
      if (!target) throw fail(`unknown target ${JSON.stringify(e.linkName)} for hardlink`);
      if ((target.mode & S_IFMT) !== S_IFREG) throw fail(`target ${JSON.stringify(e.linkName)} for hardlink is not a regular file`);
      const head = target.linkTo ?? target;
      // Upstream gives the link its target's inode, size, chunks and xattrs.
      node = { ...head, name: Buffer.from(comps[comps.length - 1] ?? ''), path: Buffer.from(key, 'latin1'), linkTo: head, links: 1, chunks: undefined };
    } else {
      let size = 0;
      let target: Buffer | undefined;
      if (e.type === 'symlink') {
        target = Buffer.from(e.linkName, 'utf8');
        checkLimit('SYMLINK_MAX', `stargz TOC entry ${e.name}: symlink target`, target.length);
        size = target.length;
      } else if (e.type === 'reg') {
        size = e.size;
      }
      const special = e.type === 'char' || e.type === 'block';
      node = {
        name: Buffer.from(comps[comps.length - 1] ?? ''), path: Buffer.from(comps.length === 0 ? '/' : key, 'latin1'),
        mode: (e.mode & 0o7777) | TYPE_BITS[e.type]!, uid, gid, mtime: e.mtime, mtimeNsec: 0, size,
        rdev: special ? encodeDev(e.devMajor, e.devMinor) : 0, xattrs: decodeXattrs(e, fail), links: 1,
        ...(target ? { target } : {}),
        ...(e.type === 'dir' ? { children: [] } : {}),
        ...(e.type === 'reg' ? { chunks: [] } : {}),
      };
    }

    if (comps.length === 0) {
      if (e.type !== 'dir') throw fail(`the root must be a directory, not ${e.type}`);
      node.children = root.children;
      Object.assign(root, { ...node, name: root.name, path: root.path });
      return;
    }
    const old = byPath.get(key);
    if (old) {
      // A later entry replaces an earlier one of the same path (tar order); a directory keeps its children.
      if (isDirNode(old) && isDirNode(node)) node.children = old.children;
      const kids = parent.children!;
      kids[kids.indexOf(old)] = node;
    } else {
      parent.children!.push(node);
    }
    byPath.set(key, node);

    if (e.type === 'reg') {
      heads.set(key, { node, entry: e });
      if (e.size > 0) {
        if (e.chunkOffset !== 0) throw fail(`a file's first chunk has chunkOffset ${e.chunkOffset}, not 0`);
        const size = e.chunkSize !== 0 ? e.chunkSize : e.size;
        pending.push({ entry: e, node, size });
      }
    } else {
      heads.delete(key);
    }
  });

  // Each file's chunks: contiguous from 0, each one chunk size but the last, adding up to the size.
  const perFile = new Map<TreeNode, PendingChunk[]>();
  for (const p of pending) {
    let l = perFile.get(p.node);
    if (!l) perFile.set(p.node, (l = []));
    l.push(p);
  }
  for (const [node, list] of perFile) {
    const fail = (why: string) => new NydusError('FORMAT', `stargz: ${JSON.stringify(node.path.toString('utf8').slice(0, 200))}: ${why}`, { path: o.where });
    list.sort((a, b) => a.entry.chunkOffset - b.entry.chunkOffset);
    let at = 0;
    list.forEach((p, k) => {
      const last = k === list.length - 1;
      if (p.entry.chunkOffset !== at) throw fail(`chunk at file offset ${p.entry.chunkOffset} where ${at} was expected: unexpected holes between data chunks`);
      if (p.entry.chunkOffset % cs !== 0) throw fail(`chunk offset (0x${p.entry.chunkOffset.toString(16)}) is not aligned to 0x${cs.toString(16)}`);
      if (p.size <= 0 || p.size > cs || (!last && p.size !== cs)) {
        throw fail(`chunk at file offset ${p.entry.chunkOffset} holds ${p.size} bytes; this build's chunks are 0x${cs.toString(16)} (build with the --chunk-size the eStargz layer was made with)`);
      }
      at += p.size;
    });
    if (at !== node.size) throw fail(`file size ${node.size} and sum of chunk sizes ${at} don't match`);
  }

  // Chunk indexes and uncompressed offsets follow the TOC; compressed offsets must increase with them.
  const chunks: ChunkInfo[] = [];
  let uncompressed = 0;
  let compressedEnd = 0;
  checkLimit('BLOB_CHUNKS_MAX', `stargz TOC ${o.where}: chunks`, pending.length);
  pending.forEach((p, k) => {
    const fail = (why: string) => new NydusError('FORMAT', `stargz: chunk of ${JSON.stringify(p.entry.name.slice(0, 200))} at file offset ${p.entry.chunkOffset}: ${why}`, { path: o.where });
    const digest = chunkDigestBytes(p.entry.chunkDigest);
    if (!digest) throw fail(`invalid chunk digest ${JSON.stringify(p.entry.chunkDigest.slice(0, 80))} (expected sha256:<64 hex digits>)`);
    const next = k + 1 < pending.length ? pending[k + 1]!.entry.offset : o.dataEnd;
    const off = p.entry.offset;
    if (off >= MAX_BLOB_OFFSET) throw fail(`gzip member offset ${off} is past 2^40, the largest blob a blob table describes`);
    if (o.dataEnd !== undefined && off >= o.dataEnd) throw fail(`its gzip member at offset ${off} lies past the end of the blob data (${o.dataEnd} bytes)`);
    if (next !== undefined && off >= next) throw fail(`compressed offset ${off} is out of order (the next chunk's member is at ${next})`);
    const bound = gzipSizeBound(p.size);
    const compressedSize = next === undefined ? bound : Math.min(bound, next - off);
    chunks.push({
      blobIndex: o.blobIndex, index: k, digest, flags: CHUNK_COMPRESSED,
      compressedOffset: off, compressedSize, uncompressedOffset: uncompressed, uncompressedSize: p.size,
      fileOffset: p.entry.chunkOffset, crc32: 0,
    });
    uncompressed += alignUp(p.size, 4096);
    compressedEnd = Math.max(compressedEnd, off + compressedSize);
    p.node.chunks!.push({ chunk: k, fileOffset: p.entry.chunkOffset });
  });
  for (const list of perFile.values()) list[0]!.node.chunks!.sort((a, b) => a.fileOffset - b.fileOffset);

  // Directories sorted as EROFS orders dirents (an explicit stack: depth comes from the input).
  const dirs = [root];
  while (dirs.length > 0) {
    const d = dirs.pop()!;
    d.children!.sort((a, b) => Buffer.compare(a.name, b.name));
    for (const c of d.children!) if (isDirNode(c)) dirs.push(c);
  }
  normalizeHardlinks(root);
  return { root, chunks, uncompressedSize: uncompressed, compressedSize: compressedEnd };
}
