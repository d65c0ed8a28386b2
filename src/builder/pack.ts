// How fresh chunks become blob bytes when `--batch-size` or `--encrypt` is given (blob.md §3,
// §4.3; upstream builder/src/core/node.rs dump_file_chunk): a file of exactly one chunk smaller
// than half the batch size joins the open batch, which is compressed as one unit when it would
// reach the batch size or when any other chunk comes (so a batch always sits where its first
// member's offset says); every stored unit is then encrypted on its own.
import { compressorByName, type Compressor } from '../algo/index.js';
import { encrypt, type BlobCipher } from '../algo/cipher.js';
import * as batchCtx from '../format/blob/batch.js';
import { CHUNK_BATCH, CHUNK_COMPRESSED, CHUNK_ENCRYPTED, type ChunkInfo } from '../read/model.js';

export interface PackOptions {
  /** 0: no batches. */
  batchSize: number;
  compressor: Compressor;
  cipher?: BlobCipher;
}

/** Compresses a whole batch elsewhere (a worker): its compressed bytes when strictly smaller, else undefined. */
export type BatchCompressor = (raw: Uint8Array) => Promise<Uint8Array | undefined>;

export class ChunkPacker {
  /** One per batch written, in blob order. */
  readonly contexts: batchCtx.BatchContext[] = [];
  /** Chunk record -> the blob.meta v2 data word of a batched chunk (batch index << 32 | offset in the batch). */
  readonly batchData = new Map<number, bigint>();
  private readonly buf: Buffer;
  private used = 0;
  /** The open batch's chunk records: they learn its stored size when it is written. */
  private members: ChunkInfo[] = [];

  constructor(private readonly o: PackOptions) {
    this.buf = Buffer.alloc(o.batchSize);
  }

  get batching(): boolean {
    return this.o.batchSize > 0;
  }

  /** Whether a fresh chunk of `size` bytes from a file of `fileSize` bytes goes into a batch. */
  batchable(size: number, fileSize: number, chunkSize: number): boolean {
    return this.batching && fileSize <= chunkSize && size < this.o.batchSize / 2;
  }

  /**
   * Places one fresh chunk (record `ref`) at blob position `pos`: its raw bytes go into the batch,
   * or its stored bytes (compressed when `compressed`) are encrypted and returned to be written.
   * Returns what to append to the blob, in order (a batch this chunk closed comes first).
   */
  async add(ref: number, rec: ChunkInfo, raw: Uint8Array, stored: Uint8Array, compressed: boolean, batched: boolean, pos: number, zip?: BatchCompressor): Promise<Buffer[]> {
    const out: Buffer[] = [];
    const enc = this.o.cipher ? CHUNK_ENCRYPTED : 0;
    if (batched) {
      if (this.used + raw.byteLength >= this.o.batchSize) pos += this.push(out, await this.flushBatch(zip));
      // The bootstrap's record: the batch's start, and its stored size once written (blob.meta's
      // entry has 0 there, as upstream's; readers without blob.meta rebuild the batch from these).
      rec.compressedOffset = pos;
      rec.compressedSize = 0;
      rec.flags = CHUNK_BATCH | CHUNK_COMPRESSED | enc;
      this.members.push(rec);
      this.batchData.set(ref, (BigInt(this.contexts.length) << 32n) | BigInt(this.used));
      this.buf.set(raw, this.used);
      this.used += raw.byteLength;
      return out;
    }
    pos += this.push(out, await this.flushBatch(zip));
    const data = this.o.cipher ? encrypt(this.o.cipher, stored) : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    rec.compressedOffset = pos;
    rec.compressedSize = data.length;
    rec.flags = (compressed ? CHUNK_COMPRESSED : 0) | enc;
    out.push(data);
    return out;
  }

  /** The open batch, stored (compressed by `zip` when given); empty when there is none. */
  async flushBatch(zip?: BatchCompressor): Promise<Buffer> {
    if (this.used === 0) return Buffer.alloc(0);
    const raw = this.buf.subarray(0, this.used);
    const { compressor, cipher } = this.o;
    // Readers take a batch whose stored size equals its raw size as stored raw (upstream's rule),
    // else as compressed; encryption pads a unit under 16 bytes to 18, so a raw batch under 16
    // bytes is stored compressed, and a compressed one that would pad to its raw size is stored raw.
    let stored: Buffer = Buffer.from(raw);
    let zipped = false;
    if (compressor.name !== 'none') {
      const forced = !!cipher && raw.length < 16;
      const z = zip && !forced ? await zip(new Uint8Array(raw)) : Buffer.from(compressor.compress(raw));
      if (z && (z.byteLength < raw.length || forced)) {
        stored = Buffer.from(z.buffer, z.byteOffset, z.byteLength);
        zipped = true;
      }
    }
    if (cipher) {
      let e = encrypt(cipher, stored);
      if (zipped && e.length === raw.length) e = encrypt(cipher, raw);
      stored = e;
    }
    this.contexts.push({ compressed_size: stored.length, uncompressed_batch_size: this.used });
    for (const rec of this.members) rec.compressedSize = stored.length;
    this.members = [];
    this.used = 0;
    return stored;
  }

  private push(out: Buffer[], b: Buffer): number {
    if (b.length > 0) out.push(b);
    return b.length;
  }

  /** The contexts as blob.meta stores them after the chunk array. */
  encodeContexts(): Buffer {
    const b = Buffer.alloc(this.contexts.length * batchCtx.SIZE);
    this.contexts.forEach((c, i) => batchCtx.encode(c, b, i * batchCtx.SIZE));
    return b;
  }
}

/** A packer for a build that needs one (batches or encryption), else undefined. */
export function chunkPacker(batchSize: number, compressor: Compressor, cipher?: BlobCipher): ChunkPacker | undefined {
  if (batchSize === 0 && !cipher) return undefined;
  return new ChunkPacker({ batchSize, compressor: compressor ?? compressorByName('none')!, cipher });
}
