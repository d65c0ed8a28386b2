// `export --block`: a RAFS v6 bootstrap and its blobs as one raw EROFS disk that the kernel mounts
// alone (tar-merge-export.md §7.1): the bootstrap, then each blob's uncompressed image at its
// device slot's mapped_blkaddr, zeros between. Planned first, then written front to back in one
// pass; with verity the dm-verity tree is computed from the same bytes as they go by (§7.2).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NydusError, formatError, fsError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { checkNoCollision } from '../io/collide.js';
import * as sbc from '../format/erofs/superblock.js';
import * as device from '../format/erofs/device.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import { extractInlineBootstrap, loadBootstrap } from '../read/open.js';
import { isV6 } from '../read/v6.js';
import { BlobReader, gzipMembers } from '../read/data.js';
import { isZranBlob } from '../read/zran.js';
import type { ChunkInfo, ImageNode, RafsImage } from '../read/model.js';
import { LIMITS, badBlobId, limitError } from '../format/limits.js';
import { alignUp } from '../format/util.js';
import { VerityTree, verityLayout } from './verity.js';
import { BufferPool } from '../pipeline/buffers.js';
import type { SyncBlobReader } from '../backends/sync-reader.js';

export interface ExportBlockOptions {
  bootstrap: string;
  /** The localfs directory: blobs are `<blobDir>/<blob id>`. */
  blobDir: string;
  /** Read the blobs from this backend instead of blobDir (which then only places the default output). */
  backend?: SyncBlobReader;
  /** Default: `<blobDir>/<bootstrap file name>.disk`, as upstream. */
  output?: string;
  /** Append a dm-verity hash tree at hashOffset and return its root. */
  verity?: boolean;
}

export interface ExportBlockResult {
  output: string;
  /** Disk blocks of blockSize bytes (the verity data blocks). */
  dataBlocks: number;
  blockSize: number;
  verity?: { hashOffset: number; root: string };
}

/** One blob's place on the disk. */
export interface DiskBlob {
  index: number;
  blobId: string;
  file: string;
  /** The blob is a tar copied as is (tarfs), not chunks to decompress. */
  tarfs: boolean;
  mappedBlkaddr: number;
  blocks: number;
  /** Native blobs: each stored chunk once, by increasing uncompressed offset. */
  chunks: ChunkInfo[];
  /** Bytes the blob file must hold. */
  need: number;
  /** Native blobs: where the part past the last referenced chunk starts, uncompressed and stored, and how many chunks it may hold. */
  tail: { from: number; storedFrom: number; chunks: number };
  chunkSize: number;
}

export interface DiskPlan {
  /** 512 for tarfs bootstraps, else 4096. */
  blockSize: number;
  bootstrapBlocks: number;
  blobs: DiskBlob[];
  /** Blocks of the whole disk: the last blob's end (the bootstrap's without blobs). */
  dataBlocks: number;
}

const U32_MAX = 0xffff_ffff;
/** Bytes queued for writing before the export waits for the disk: this bounds memory. */
const WRITE_BEHIND = 16 * 1024 * 1024;
const COPY_PIECE = 1024 * 1024;
/** Bytes of contiguous hash blocks written at once. */
const HASH_RUN = 1024 * 1024;
const ZEROS = Buffer.alloc(COPY_PIECE);

/** Every regular file's chunks, once per chunk list: names sharing one inode share its list. */
function* fileChunks(node: ImageNode): Generator<ChunkInfo> {
  const stack = [node];
  const seen = new Set<ChunkInfo[]>();
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.chunks && !seen.has(n.chunks)) {
      seen.add(n.chunks);
      yield* n.chunks;
    }
    // A loop, not push(...children): a spread of 200,000 children overflows the stack.
    if (n.children) for (const c of n.children) stack.push(c);
  }
}

/** Where every blob goes and what it needs; throws on anything the disk cannot hold. */
export function planDisk(boot: Buffer, image: RafsImage, blobDir: string): DiskPlan {
  const tarfs = (image.flags & ext.FLAG_TARFS_MODE) !== 0;
  const B = tarfs ? 512 : 4096;
  if (image.blockSize !== B) throw formatError('superblock', 'blkszbits', Math.log2(image.blockSize), `a ${tarfs ? 'tarfs' : 'native'} bootstrap has ${B}-byte blocks`);
  const bootstrapBlocks = boot.length / B;

  // Every stored chunk of each native blob, once: the chunk table, and whatever files point at.
  const byBlob = image.blobs.map(() => new Map<number, ChunkInfo>());
  const note = (c: ChunkInfo) => {
    if (!byBlob[c.blobIndex].has(c.uncompressedOffset)) byBlob[c.blobIndex].set(c.uncompressedOffset, c);
  };
  if (!tarfs) {
    image.chunkTable.forEach(note);
    for (const c of fileChunks(image.root)) note(c);
  }

  let pos = bootstrapBlocks;
  const blobs = image.blobs.map((b, i): DiskBlob => {
    const slot = device.decode(boot, sbc.DEVT_SLOTOFF * 128 + i * device.SIZE);
    const where = `device_slot[${i}]`;
    if (slot.mapped_blkaddr === 0) throw formatError(where, 'mapped_blkaddr', 0, `blob ${b.blobId} has no place on a block device (bootstraps of nydus-image 2.2 and older)`);
    if (((b.features & bt.FEATURE_TARFS) !== 0) !== tarfs) {
      throw formatError(`blob_table[${i}]`, 'features', `0x${b.features.toString(16)}`, `TARFS ${tarfs ? 'missing while' : 'set while not'} set in the bootstrap`);
    }
    const blocks = Math.floor(b.uncompressedSize / B);
    if (blocks === 0) throw formatError(`blob_table[${i}]`, 'uncompressed_size', b.uncompressedSize, `less than one ${B}-byte block`);
    if (slot.mapped_blkaddr < pos) {
      throw formatError(where, 'mapped_blkaddr', slot.mapped_blkaddr, `overlaps the ${i === 0 ? 'bootstrap' : 'previous blob'}, which ends at block ${pos}`);
    }
    if (slot.mapped_blkaddr + blocks > U32_MAX) throw formatError(where, 'mapped_blkaddr', slot.mapped_blkaddr, `blob of ${blocks} blocks ends past 2^32 blocks`);
    const gap = slot.mapped_blkaddr * B - pos * B;
    if (gap >= LIMITS.BLOB_MAP_ALIGN_MAX.value) {
      throw limitError('BLOB_MAP_ALIGN_MAX', `${where}.mapped_blkaddr ${slot.mapped_blkaddr}: zeros before blob ${b.blobId}`, gap);
    }
    pos = slot.mapped_blkaddr + blocks;

    const chunks = [...byBlob[i].values()].sort((x, y) => x.uncompressedOffset - y.uncompressedOffset);
    let end = 0;
    let need = tarfs ? blocks * B : 0;
    for (const c of chunks) {
      const at = `chunk ${c.index} of blob ${b.blobId}`;
      if (c.uncompressedOffset < end) throw formatError('chunk_info', 'uncompressed_offset', c.uncompressedOffset, `${at} overlaps the chunk before it (ends at ${end})`);
      end = c.uncompressedOffset + c.uncompressedSize;
      if (end > blocks * B) throw formatError('chunk_info', 'uncompressed_offset', c.uncompressedOffset, `${at} ends at ${end}, past the blob's ${blocks * B} bytes`);
      // A gzip member's stored size is an upper bound that may run past the file (stargz).
      need = Math.max(need, gzipMembers(b) ? c.compressedOffset + 1 : c.compressedOffset + c.compressedSize);
    }
    const badId = badBlobId(b.blobId);
    if (badId) throw formatError(`blob_table[${i}]`, 'blob_id', JSON.stringify(b.blobId), `${badId}: a blob id is never a path`);
    // The blob's bytes past its last referenced chunk are unreferenced chunks (of a layer an
    // upper one deleted from): at most chunk_count - 1 - its index of them, each one chunk_size.
    // A zran chunk's compressed range is its ZRAN context's input, which the chunks after it may
    // share (a small layer is one context): their stored bytes start where that context does.
    const last = chunks[chunks.length - 1];
    const tail = {
      from: last ? alignUp(end, B) : 0,
      storedFrom: last ? last.compressedOffset + (isZranBlob(b) ? 0 : last.compressedSize) : 0,
      chunks: Math.max(0, b.chunkCount - (last ? last.index + 1 : 0)),
    };
    return { index: i, blobId: b.blobId, file: path.join(blobDir, b.blobId), tarfs, mappedBlkaddr: slot.mapped_blkaddr, blocks, chunks, need, tail, chunkSize: b.chunkSize };
  });
  return { blockSize: B, bootstrapBlocks, blobs, dataBlocks: pos };
}

/**
 * The disk holds the blob's claimed uncompressed size, so the claim must be one its chunks and
 * its file can back: past the last referenced chunk, no more than the chunks the blob table says
 * follow (each at most chunk_size), and no more than the stored bytes that follow could
 * decompress to (BLOB_EXPANSION_MAX). Every image a builder wrote passes; a bootstrap whose blob
 * claims 64 GiB over a small file does not make us write 64 GiB of zeros.
 */
function checkBlobSize(plan: DiskPlan, b: DiskBlob, fileSize: number): void {
  const claimed = b.blocks * plan.blockSize;
  const perChunk = alignUp(b.chunkSize, plan.blockSize);
  const stored = Math.max(0, fileSize - b.tail.storedFrom);
  const backed = b.tail.from + Math.min(b.tail.chunks * perChunk, stored * LIMITS.BLOB_EXPANSION_MAX.value);
  if (claimed > backed) {
    throw new NydusError(
      'FORMAT',
      `blob_table[${b.index}].uncompressed_size = ${claimed}: blob ${b.blobId} cannot back it (its referenced chunks end at ${b.tail.from}, then at most ${b.tail.chunks} chunks from ${stored} stored bytes)`,
    );
  }
}

/** Fails before any output exists when a blob is missing or too short. */
function checkBlobFiles(plan: DiskPlan, backend?: SyncBlobReader): void {
  for (const b of plan.blobs) {
    if (backend) {
      if (b.tarfs) throw new NydusError('UNSUPPORTED', `blob ${b.blobId} is a tarfs blob: exporting one from a backend is not supported yet`);
      const size = backend.size(b.blobId);
      if (size === undefined) throw backend.missing(b.blobId);
      if (size < b.need) throw new NydusError('SOURCE', `blob ${b.blobId} in the backend is shorter than the bootstrap needs: ${b.need} bytes, it has ${size}`);
      checkBlobSize(plan, b, size);
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(b.file);
    } catch (e) {
      throw fsError('SOURCE', b.file, e);
    }
    if (!st.isFile()) throw new NydusError('SOURCE', `blob ${b.blobId} is not a regular file`, { path: b.file });
    if (st.size < b.need) throw new NydusError('SOURCE', `blob is shorter than the bootstrap needs: ${b.need} bytes, file has ${st.size}`, { path: b.file });
    if (!b.tarfs) checkBlobSize(plan, b, st.size);
  }
}

/** Read buffers of one size, each back for reuse once the disk has it: as many as the write-behind can hold. */
const readBuffers = (size: number) => new BufferPool(size, Math.ceil(WRITE_BEHIND / size) + 2);

/** A Buffer over the first n bytes of a pooled buffer. */
const view = (b: Uint8Array, n: number) => Buffer.from(b.buffer, b.byteOffset, n);

/** The disk's bytes in order: to the output, and through the verity tree when there is one. */
class DiskStream {
  position = 0;
  constructor(private readonly out: OutputFile, private readonly tree?: VerityTree) {}

  /** data must stay unchanged until onWritten is called. */
  async put(data: Buffer, onWritten?: () => void): Promise<void> {
    this.tree?.update(data);
    await this.write(data, onWritten);
  }

  async zeros(n: number, hashed = true): Promise<void> {
    if (hashed) this.tree?.zeros(n);
    while (n > 0) {
      const k = Math.min(n, ZEROS.length);
      await this.write(ZEROS.subarray(0, k));
      n -= k;
    }
  }

  /** Queues a write; past the high mark, waits only until half of it is written, so the writer never runs dry. */
  private async write(data: Buffer, onWritten?: () => void): Promise<void> {
    this.position += data.length;
    this.out.write(data, onWritten);
    if (this.out.queued > WRITE_BEHIND) await this.out.drain(WRITE_BEHIND / 2);
  }

  async zerosTo(offset: number, hashed = true): Promise<void> {
    if (offset < this.position) throw new NydusError('INTERNAL', `disk write at ${this.position} went past ${offset}`);
    await this.zeros(offset - this.position, hashed);
  }
}

/**
 * Hash blocks arrive one at a time, each level's in increasing order; they are gathered into runs
 * so that the positioned writes, which block the main thread, are few and large.
 */
class HashBlockRuns {
  private readonly runs = new Map<number, { start: number; parts: Buffer[]; size: number }>();
  constructor(private readonly out: OutputFile, private readonly base: number) {}

  add(offset: number, block: Buffer): void {
    let run = this.runs.get(offset);
    if (run) this.runs.delete(offset);
    else run = { start: offset, parts: [], size: 0 };
    run.parts.push(block);
    run.size += block.length;
    if (run.size >= HASH_RUN) this.flush(run);
    else this.runs.set(offset + block.length, run);
  }

  finish(): void {
    for (const run of this.runs.values()) this.flush(run);
    this.runs.clear();
  }

  private flush(run: { start: number; parts: Buffer[] }): void {
    this.out.writeAt(Buffer.concat(run.parts), this.base + run.start);
  }
}

async function copyTar(disk: DiskStream, b: DiskBlob, length: number): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(b.file, 'r');
  } catch (e) {
    throw fsError('SOURCE', b.file, e);
  }
  const buffers = readBuffers(COPY_PIECE);
  try {
    for (let off = 0; off < length; ) {
      const buf = buffers.acquire();
      const want = Math.min(COPY_PIECE, length - off);
      const n = fs.readSync(fd, buf, 0, want, off);
      if (n === 0) throw new NydusError('SOURCE', `blob is shorter than the bootstrap needs: ${length} bytes, file ended at ${off}`, { path: b.file });
      await disk.put(view(buf, n), () => buffers.release(buf));
      off += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

async function writeDisk(disk: DiskStream, plan: DiskPlan, boot: Buffer, reader: BlobReader): Promise<void> {
  const B = plan.blockSize;
  await disk.put(boot);
  for (const b of plan.blobs) {
    const base = b.mappedBlkaddr * B;
    await disk.zerosTo(base);
    if (b.tarfs) {
      await copyTar(disk, b, b.blocks * B);
      continue;
    }
    // Chunks stored raw are read straight into a recycled buffer; compressed ones decompress
    // into a fresh result, their stored bytes passing through the same buffer. Batch, encrypted
    // and zran chunks come through BlobReader like any other (decrypted with the bootstrap's key,
    // as upstream's export reads through its cache; inflated from their ZRAN access point): the
    // disk holds plain data either way.
    const buffers = readBuffers(b.chunks.reduce((m, c) => Math.max(m, c.compressedSize, c.uncompressedSize), 1));
    for (const c of b.chunks) {
      await disk.zerosTo(base + c.uncompressedOffset);
      const buf = buffers.acquire();
      const data = reader.readChunk(c, false, buf);
      if (data.buffer === buf.buffer) await disk.put(data, () => buffers.release(buf));
      else {
        buffers.release(buf);
        await disk.put(data);
      }
    }
    await disk.zerosTo(base + b.blocks * B);
  }
}

/** A FIFO or character device, which OutputFile writes in place and front to back only. */
function isSpecialFile(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return st.isFIFO() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

/** The inline bootstrap of a ref blob (all its blobs SEPARATE: named in the table, not by the file), else undefined. */
function refBlobBootstrap(file: string): Buffer | undefined {
  const inner = extractInlineBootstrap(file);
  if (!inner || !isV6(inner)) return undefined;
  const image = loadBootstrap(inner);
  return image.blobs.length > 0 && image.blobs.every((b) => (b.features & bt.FEATURE_SEPARATE) !== 0) ? inner : undefined;
}

/** Writes the raw block disk of a bootstrap and its blobs (and its dm-verity tree). */
export async function exportBlock(o: ExportBlockOptions): Promise<ExportBlockResult> {
  let boot: Buffer;
  try {
    boot = fs.readFileSync(o.bootstrap);
  } catch (e) {
    throw fsError('SOURCE', o.bootstrap, e);
  }
  // A targz-ref ref blob carries its bootstrap inline, and that bootstrap names its blob (the .tar.gz) itself.
  const inner = isV6(boot) ? undefined : refBlobBootstrap(o.bootstrap);
  if (inner) boot = inner;
  if (!isV6(boot)) throw new NydusError('UNSUPPORTED', 'not a RAFS v6 bootstrap: only v6 images have the device table a block disk needs', { path: o.bootstrap });
  let image: RafsImage;
  let plan: DiskPlan;
  try {
    image = loadBootstrap(boot);
    plan = planDisk(boot, image, o.blobDir);
    checkBlobFiles(plan, o.backend);
  } catch (e) {
    if (e instanceof NydusError && e.path === undefined) throw new NydusError(e.code, e.message, { path: o.bootstrap, cause: e });
    throw e;
  }

  const output = o.output ?? path.join(o.blobDir, `${path.basename(o.bootstrap)}.disk`);
  checkNoCollision([['--bootstrap', o.bootstrap], ...(o.backend ? [] : plan.blobs).map((b) => [`blob ${b.blobId} in --localfs-dir`, b.file] as const)], [['--output', output]]);
  if (o.verity && isSpecialFile(output)) throw new NydusError('USAGE', '--verity writes the hash tree at an offset: the output must be a regular file', { path: output });

  const B = plan.blockSize;
  const dataSize = plan.dataBlocks * B;
  const out = OutputFile.open(output);
  const reader = new BlobReader(image, o.backend ? { backend: o.backend, imageFile: o.bootstrap } : { blobDir: o.blobDir, imageFile: o.bootstrap });
  try {
    const layout = o.verity ? verityLayout(plan.dataBlocks, B) : undefined;
    const runs = layout ? new HashBlockRuns(out, layout.hashOffset) : undefined;
    const tree = runs ? new VerityTree(plan.dataBlocks, B, (off, block) => runs.add(off, block)) : undefined;
    const disk = new DiskStream(out, tree);
    await writeDisk(disk, plan, boot, reader);
    if (disk.position !== dataSize) throw new NydusError('INTERNAL', `disk is ${disk.position} bytes, planned ${dataSize}`);
    let verity: ExportBlockResult['verity'];
    if (tree && runs) {
      const root = tree.digest();
      runs.finish();
      // The gap between the data and a 4 KiB-aligned hash area is not data: zeros, unhashed.
      await disk.zerosTo(tree.layout.hashOffset, false);
      verity = { hashOffset: tree.layout.hashOffset, root: root.toString('hex') };
    }
    await out.commit();
    return { output, dataBlocks: plan.dataBlocks, blockSize: B, verity };
  } catch (e) {
    await out.abort();
    throw e;
  } finally {
    reader.close();
  }
}
