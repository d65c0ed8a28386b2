// Emit: turns a plan into the bootstrap bytes, every structure at its planned offset, in one
// buffer written front to back (so a FIFO works and two builds are byte-identical).
import * as sbc from '../format/erofs/superblock.js';
import * as ino from '../format/erofs/inode.js';
import * as dirent from '../format/erofs/dirent.js';
import * as xattr from '../format/erofs/xattr.js';
import * as cidx from '../format/erofs/chunk-index.js';
import * as device from '../format/erofs/device.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import * as ci from '../format/rafs/chunk-info.js';
import { alignUp } from '../format/util.js';
import { formatError } from '../errors.js';
import { checkLimit } from '../format/limits.js';
import { copyDigest, type ChunkInfo } from '../read/model.js';
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, dumpOrder, type TreeNode } from '../tree/node.js';
import { direntList, type Plan, type PlannedDirent } from './plan.js';

const NO_XATTRS = Buffer.alloc(0);

/** mapped_blkaddr alignment of blobs in the flat device (HEAD: 512 KiB). */
const MAPPED_ALIGN = 512 * 1024;

export interface EmitInput {
  plan: Plan;
  /** Every unique chunk referenced, indexed by the nodes' ChunkRef.chunk. */
  chunks: ChunkInfo[];
  blobs: bt.BlobEntry[];
  /**
   * Superblock flags the builder decides: compressor, digester, encryption, tarfs mode. Those
   * that follow from the rest of the input are added here: EXPLICIT_UID_GID, HAS_XATTR (some
   * name has xattrs) and INLINED_CHUNK_DIGEST (every blob inlines its chunk digests).
   */
  flags: number;
  chunkSize: number;
  blockSize: number;
  explicitUidGid: boolean;
  /** nids for the prefetch table. */
  prefetch: number[];
}

/** Where the blob table starts, for nblobs blobs. */
const blobTableOffset = (nblobs: number) => alignUp(sbc.DEVT_SLOTOFF * 128 + device.SIZE * nblobs, 4096);

/**
 * The meta shift: the planned inode area moves past the superblock, device slots, blob table and
 * prefetch table by this many bytes (meta_blkaddr x B; 0 without blobs).
 */
export function metaShift(nblobs: number, prefetch: number): number {
  return nblobs > 0 ? alignUp(blobTableOffset(nblobs) + bt.SIZE * nblobs + 4 * prefetch, 4096) : 0;
}

/**
 * The bytes of a bootstrap that do not depend on where its chunks are: every inode (a regular
 * file's without its chunk format word), xattrs, directory blocks and symlink targets, for a
 * given meta shift; then, file by file as their chunks become final, chunk indexes
 * (writePreparedChunks). A build makes it while its blob is still being written (prepareSteps),
 * so that after the last chunk only the tables and the indexes of the last files are left, and
 * the area becomes the bootstrap: it is sized for the largest chunk table the tree can have.
 */
export interface PreparedArea {
  plan: Plan;
  shift: number;
  blockSize: number;
  explicitUidGid: boolean;
  /** The bootstrap from offset 0, every planned structure at its final offset; zeros where the headers and tables go. */
  area: Buffer;
  view: DataView;
  /** By plan index: 1 where a regular file's chunk indexes and chunk format word are written and final. */
  chunksWritten: Uint8Array;
  /** Set by the emit whose bootstrap the area became. */
  taken: boolean;
}

/** Nodes written between two pauses of prepareSteps. */
const STEP_NODES = 2048;

/**
 * PreparedArea in steps: pauses (yields) every STEP_NODES nodes so the caller can go on with
 * other work. With `chunks`, the chunk indexes of every file whose chunks are all known are
 * written too (the caller vouches that known chunks no longer change).
 */
export function* prepareSteps(plan: Plan, o: { shift: number; blockSize: number; explicitUidGid: boolean; chunks?: ChunkInfo[]; chunkSize: number }): Generator<void, PreparedArea, void> {
  // The table has an entry per chunk referenced: at most the files' chunk references.
  let maxChunks = 0;
  for (const n of plan.nodes) if ((n.mode & S_IFMT) === S_IFREG) maxChunks += n.chunks?.length ?? 0;
  const area = Buffer.alloc(alignUp(alignUp(plan.end + o.shift, 4096) + ci.SIZE * maxChunks, 4096));
  const pre: PreparedArea = {
    plan, shift: o.shift, blockSize: o.blockSize, explicitUidGid: o.explicitUidGid, area,
    view: new DataView(area.buffer, area.byteOffset, area.byteLength), chunksWritten: new Uint8Array(plan.nodes.length), taken: false,
  };
  for (let k = 0; k < plan.nodes.length; k++) {
    writeNode(plan, k, area, o.shift, 0, o.blockSize, o.explicitUidGid);
    if (o.chunks && chunksKnown(plan.nodes[k])) writePreparedChunks(pre, k, o.chunks, o.chunkSize);
    if ((k + 1) % STEP_NODES === 0) yield;
  }
  return pre;
}

/** Whether a regular file's chunks all have their records (a file's chunks are filled in order). */
function chunksKnown(n: TreeNode): boolean {
  if ((n.mode & S_IFMT) !== S_IFREG) return false;
  const refs = n.chunks ?? [];
  return refs.length === 0 || refs[refs.length - 1] !== undefined;
}

/** Writes the chunk indexes of regular file k (plan index) into the prepared area: its chunks' records must be final. */
export function writePreparedChunks(pre: PreparedArea, k: number, chunks: ChunkInfo[], chunkSize: number): void {
  const B = pre.blockSize;
  writeChunks(pre.plan, k, pre.area, pre.view, pre.shift, chunks, chunkSize, B, Math.log2(B));
  pre.chunksWritten[k] = 1;
}

/** @param prepared the chunk-independent bytes made earlier: used when made for this plan and shift. */
export function emitBootstrap(input: EmitInput, prepared?: PreparedArea): Buffer {
  const { plan, chunks, blobs, chunkSize } = input;
  const B = input.blockSize;
  const blkszbits = Math.log2(B);
  const nblobs = blobs.length;
  checkLimit('BLOBS_MAX', 'blobs in the image', nblobs);
  for (const b of blobs) checkLimit('BLOB_CHUNKS_MAX', `blob ${b.blob_id}: chunks`, b.chunk_count);
  const btOff = blobTableOffset(nblobs);
  const btSize = bt.SIZE * nblobs;
  const pfOff = btOff + btSize;
  // A prefetch table only beside a blob table (rafs-v6.md §2): without blobs the inodes start at
  // PLAN_START, where it would go.
  const prefetch = nblobs > 0 ? input.prefetch : [];
  const pfSize = 4 * prefetch.length;
  const shift = metaShift(nblobs, prefetch.length);
  const metaBlkaddr = shift / B;
  const inodeEnd = plan.end + shift;
  const pre = prepared && !prepared.taken && prepared.plan === plan && prepared.shift === shift && prepared.blockSize === B && prepared.explicitUidGid === input.explicitUidGid ? prepared : undefined;

  // Referenced chunks only, sorted by digest bytes then blob index; the chunk met last in dump
  // order (every name, hardlinks included) supplies file_offset. Digested chunks are unique per
  // (digest, blob) by construction. Tarfs chunks carry no digest, and upstream's table is keyed
  // by (digest, blob), so a tarfs blob keeps one entry: its last chunk (rafs-v6.md §3.4).
  const tarfs = (input.flags & ext.FLAG_TARFS_MODE) !== 0;
  let flags = input.flags;
  if (input.explicitUidGid) flags |= ext.FLAG_EXPLICIT_UID_GID;
  if (blobs.every((b) => (b.features & bt.FEATURE_INLINED_CHUNK_DIGEST) !== 0)) flags |= ext.FLAG_INLINED_CHUNK_DIGEST;
  // Each referenced chunk (a tarfs blob: each (digest, blob)) gets a slot in first-use order;
  // per slot the chunk met last and its file offset. Typed arrays, not an object per chunk.
  const slotChunk = new Uint32Array(chunks.length);
  const slotOffset = new Float64Array(chunks.length);
  const slotOf = new Int32Array(tarfs ? 0 : chunks.length).fill(-1);
  const tarfsSlots = new Map<string, number>();
  let slots = 0;
  for (const n of dumpOrder(plan.nodes[0])) {
    if (n.xattrs.length > 0) flags |= ext.FLAG_HAS_XATTR;
    for (const r of (n.linkTo ?? n).chunks ?? []) {
      let slot: number;
      if (tarfs) {
        const c = chunks[r.chunk];
        const key = `${c.digest.toString('latin1')}/${c.blobIndex}`;
        slot = tarfsSlots.get(key) ?? slots;
        if (slot === slots) tarfsSlots.set(key, slots++);
      } else {
        slot = slotOf[r.chunk];
        if (slot < 0) slot = slotOf[r.chunk] = slots++;
      }
      slotChunk[slot] = r.chunk;
      slotOffset[slot] = r.fileOffset;
    }
  }
  tarfsSlots.clear();
  // Slots sorted by digest bytes then blob index (equal keys keep first-use order). The digests
  // are packed into one array first: a record may make a Buffer per read of its digest.
  const digests = new Uint8Array(32 * slots);
  for (let i = 0; i < slots; i++) copyDigest(chunks[slotChunk[i]], digests, 32 * i);
  const table = sortSlots(digests, slots, (a, b) => {
    const ca = chunks[slotChunk[a]];
    const cb = chunks[slotChunk[b]];
    return Buffer.compare(ca.digest, cb.digest) || ca.blobIndex - cb.blobIndex || a - b;
  });
  const ctOff = alignUp(inodeEnd, 4096);
  const ctSize = ci.SIZE * table.length;
  const length = alignUp(table.length > 0 ? ctOff + ctSize : inodeEnd, 4096);
  // The prepared area becomes the bootstrap: it has room for the largest table the tree can have.
  const done = pre && length <= pre.area.length ? pre : undefined;
  const buf = done ? done.area.subarray(0, length) : Buffer.alloc(length);
  if (done) done.taken = true;

  // Device slots: blobs mapped one after another past the bootstrap, for a flat device.
  let mapped = alignUp(length, MAPPED_ALIGN) / B;
  let blocks = 0;
  blobs.forEach((b, i) => {
    const n = b.uncompressed_size / B;
    // Merge copies blob entries from bootstraps it was given: a bad size is their fault, not ours.
    if (!Number.isInteger(n) || n === 0) throw formatError(`blob_table[${i}]`, 'uncompressed_size', b.uncompressed_size, `blob ${b.blob_id} must hold a whole, non-zero number of ${B}-byte blocks`);
    device.encode({ blob_id: b.blob_id, blocks: n, mapped_blkaddr: mapped }).copy(buf, sbc.DEVT_SLOTOFF * 128 + i * device.SIZE);
    bt.encode(b).copy(buf, btOff + i * bt.SIZE);
    blocks += n;
    mapped = alignUp((mapped + n) * B, MAPPED_ALIGN) / B;
  });
  prefetch.forEach((nid, i) => buf.writeUInt32LE(nid, pfOff + 4 * i));

  sbc.encode({
    magic: sbc.MAGIC, checksum: 0, feature_compat: sbc.FEATURE_COMPAT_RAFS_V6, blkszbits, sb_extslots: 0,
    root_nid: plan.nid[0], inos: plan.entries, build_time: 0, build_time_nsec: 0, blocks,
    meta_blkaddr: metaBlkaddr, xattr_blkaddr: 0, uuid: Buffer.alloc(16), volume_name: '',
    feature_incompat: sbc.RAFS_INCOMPAT, u1: 0, extra_devices: nblobs, devt_slotoff: sbc.DEVT_SLOTOFF,
  }).copy(buf, sbc.OFFSET);
  ext.encode({
    flags, blob_table_offset: btOff, blob_table_size: btSize, chunk_size: chunkSize,
    chunk_table_offset: ctOff, chunk_table_size: ctSize,
    prefetch_table_offset: pfSize > 0 ? pfOff : 0, prefetch_table_size: pfSize,
  }).copy(buf, ext.OFFSET);

  // The chunk indexes left go through encodeInto: on a cold path, after the last chunk.
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let k = 0; k < plan.nodes.length; k++) {
    if (!done) writeNode(plan, k, buf, shift, 0, B, input.explicitUidGid);
    if ((plan.nodes[k].mode & S_IFMT) === S_IFREG && !done?.chunksWritten[k]) writeChunks(plan, k, buf, view, shift, chunks, chunkSize, B, blkszbits);
  }

  // Entries are written in slot order, each to its sorted place: the records and digests are then
  // read in about the order they were made (read in table order, each was a cache miss).
  const place = new Uint32Array(slots);
  for (let i = 0; i < slots; i++) place[table[i]] = i;
  for (let slot = 0; slot < slots; slot++) {
    const c = chunks[slotChunk[slot]];
    ci.encodeInto(buf, view, ctOff + place[slot] * ci.SIZE, digests, 32 * slot, c.blobIndex, c.flags, c.compressedSize, c.uncompressedSize, c.compressedOffset, c.uncompressedOffset, slotOffset[slot], c.index, c.crc32);
  }
  return buf;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Slots 0..n-1 in the order of their digests (32 bytes each in `digests`), ties (and the rare
 * equal first five bytes) ordered by `order`, a full comparison. A native sort of 64-bit keys,
 * the digest's first five bytes above the slot: a comparator called n log n times was the
 * largest part of writing a 50k-chunk bootstrap after its last chunk.
 */
function sortSlots(digests: Uint8Array, n: number, order: (a: number, b: number) => number): Uint32Array {
  // The slot takes the key's low 24 bits; beyond that (16M chunks), the comparator sorts all.
  if (n >= 2 ** 24) return Uint32Array.from(Array.from({ length: n }, (_, i) => i).sort(order));
  const keys = new BigUint64Array(n);
  const words = new Uint32Array(keys.buffer);
  const hi = LITTLE_ENDIAN ? 1 : 0;
  const lo = 1 - hi;
  for (let i = 0; i < n; i++) {
    const o = 32 * i;
    words[2 * i + hi] = ((digests[o] << 24) | (digests[o + 1] << 16) | (digests[o + 2] << 8) | digests[o + 3]) >>> 0;
    words[2 * i + lo] = ((digests[o + 4] << 24) | i) >>> 0;
  }
  keys.sort();
  const slots = new Uint32Array(n);
  for (let i = 0; i < n; i++) slots[i] = words[2 * i + lo] & 0xffffff;
  // Runs of keys whose five bytes are equal: ordered by the full comparison.
  let start = 0;
  for (let i = 1; i <= n; i++) {
    if (i < n && words[2 * i + hi] === words[2 * i - 2 + hi] && words[2 * i + lo] >>> 24 === words[2 * i - 2 + lo] >>> 24) continue;
    if (i - start > 1) slots.set(Array.from(slots.subarray(start, i)).sort(order), start);
    start = i;
  }
  return slots;
}

/**
 * Node k's inode, xattrs and directory or symlink data, each at its final offset less `base` in
 * buf; a regular file's chunk format word is left 0 for writeChunks.
 */
function writeNode(plan: Plan, k: number, buf: Buffer, shift: number, base: number, B: number, explicitUidGid: boolean): void {
  const n = plan.nodes[k];
  const type = n.mode & S_IFMT;
  const off = plan.nid[k] * 32 + shift - base;
  const xa = plan.xattrs.get(k) ?? NO_XATTRS;
  const layout = plan.layout[k];
  let iu = 0;
  let size = 0;
  let nlink = n.links;
  if (type === S_IFDIR || type === S_IFLNK) {
    size = plan.dataSize[k];
    iu = Math.floor((plan.dataPlanned[k] + shift) / B);
    // Full blocks go to the data blocks, an inline tail right after the inode and its xattrs.
    const full = layout === ino.LAYOUT_FLAT_INLINE ? size - (size % B) : size;
    const tailAt = off + ino.EXTENDED_SIZE + xa.length;
    if (type === S_IFDIR) {
      writeDir(plan, k, buf, iu * B - base, full, tailAt, B);
      nlink = 2 + (n.children ?? []).reduce((m, c) => m + ((c.mode & S_IFMT) === S_IFDIR ? 1 : 0), 0);
    } else {
      const target = n.target!;
      target.copy(buf, iu * B - base, 0, full);
      if (layout === ino.LAYOUT_FLAT_INLINE) target.copy(buf, tailAt, full);
    }
  } else if (type === S_IFREG) {
    size = n.size;
  } else {
    iu = n.rdev;
  }
  ino.encodeExtendedInto({
    extended: true, layout, i_xattr_icount: xattr.icount(xa.length),
    i_mode: n.mode, i_size: size, i_u: iu, i_ino: plan.index[k],
    i_uid: explicitUidGid ? n.uid : 0, i_gid: explicitUidGid ? n.gid : 0,
    i_mtime: n.mtime, i_mtime_nsec: n.mtimeNsec, i_nlink: nlink,
  }, buf, off);
  if (xa.length > 0) xa.copy(buf, off + ino.EXTENDED_SIZE);
}

/** Regular file k's chunk indexes after its inode and xattrs, and its chunk format word (i_u). */
function writeChunks(plan: Plan, k: number, buf: Buffer, view: DataView, shift: number, chunks: ChunkInfo[], chunkSize: number, B: number, blkszbits: number): void {
  const n = plan.nodes[k];
  const off = plan.nid[k] * 32 + shift;
  const xlen = plan.xattrs.get(k)?.length ?? 0;
  const refs = n.chunks ?? [];
  let contiguous = true;
  const at = alignUp(off + ino.EXTENDED_SIZE + xlen, 8);
  for (let i = 0; i < refs.length; i++) {
    const c = chunks[refs[i].chunk];
    cidx.encodeInto(buf, view, at + i * cidx.SIZE, c.index, c.blobIndex + 1, c.uncompressedOffset / B);
    if (i > 0) {
      const prev = chunks[refs[i - 1].chunk];
      if (prev.uncompressedOffset + chunkSize !== c.uncompressedOffset || prev.blobIndex !== c.blobIndex) contiguous = false;
    }
  }
  // Upstream's page-cache-sharing trick: a contiguous multi-chunk file claims one big chunk.
  const inodeChunk = contiguous && n.size > chunkSize ? 2 ** Math.ceil(Math.log2(n.size)) : chunkSize;
  buf.writeUInt32LE(cidx.formatWord(inodeChunk, blkszbits) >>> 0, off + ino.I_U_OFFSET);
}

/**
 * A directory's dirents, block by block, written where they go in the bootstrap (no buffer of its
 * own): block i at dataAt + i x B while inside the full blocks, the partial last block of an
 * inline directory at tailAt. "." names the directory itself, ".." its parent.
 */
function writeDir(plan: Plan, k: number, buf: Buffer, dataAt: number, full: number, tailAt: number, B: number): void {
  const dir = plan.nodes[k];
  const list = direntList(dir);
  // The planner places a directory's inodes that are not directories (nor hardlink members)
  // right after it, in name order: their nids come by position, not by a lookup each.
  let next = k + 1;
  for (const e of list) {
    const c = e.node;
    if (!c) e.nid = e.name.length === 1 ? plan.nid[k] : plan.nid[plan.parent[k]];
    else if (next < plan.nodes.length && plan.nodes[next] === c) e.nid = plan.nid[next++];
    else e.nid = plan.nid[plan.position.get(c.linkTo ?? c)!];
  }
  dirent.packBlocks(list, B).forEach((entries, i) => dirent.encodeBlockInto(entries, buf, i * B < full ? dataAt + i * B : tailAt));
}
