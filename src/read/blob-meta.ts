// A blob's blob.meta read back from the blob file (blob.md §4): the chunk-info table and the
// header after it, both decrypted first when the blob is encrypted, checked against the blob
// table, and the batch contexts after the chunk array. Only what batch chunks need is kept.
import { compressorByName } from '../algo/index.js';
import { decrypt, type BlobCipher } from '../algo/cipher.js';
import { NydusError, fsError } from '../errors.js';
import * as metaHeader from '../format/blob/meta-header.js';
import * as bci from '../format/blob/chunk-info.js';
import * as batchCtx from '../format/blob/batch.js';
import { FEATURE_CHUNK_INFO_V2 } from '../format/rafs/blob-table.js';
import { LIMITS } from '../format/limits.js';
import type { BlobInfo } from './model.js';

export interface BlobMeta {
  /** Chunk-info entry `index`, checked to describe `uncompressedSize` bytes. */
  entry(index: number, uncompressedSize: number): bci.BlobChunkInfo;
  /** Batch context `index` (named for chunk `chunk` in messages), checked. */
  batch(index: number, chunk: number): batchCtx.BatchContext;
}

/** Where blob.meta is read from: a blob file or a backend (data.ts's handle). */
export interface BlobSource {
  size: number;
  file: string;
  /** Fills `into` from byte `at`; throws a NydusError or the I/O error. */
  readAt(into: Buffer, at: number): void;
}

export function loadBlobMeta(blob: BlobInfo, h: BlobSource, cipher: BlobCipher | undefined): BlobMeta {
  const what = `blob.meta of blob ${blob.blobId}`;
  const bad = (why: string) => new NydusError('FORMAT', `${what}: ${why}`, { path: h.file });
  const n = blob.chunkCount;
  const v2 = (blob.features & FEATURE_CHUNK_INFO_V2) !== 0;
  const entrySize = v2 ? bci.V2_SIZE : bci.V1_SIZE;
  // At most one batch context per chunk: anything larger is not a table of this blob.
  const most = n * (entrySize + batchCtx.SIZE);
  if (blob.ciUncompressedSize < n * entrySize || blob.ciUncompressedSize > most) {
    throw bad(`ci_uncompressed_size ${blob.ciUncompressedSize} does not fit ${n} chunks (${n * entrySize} to ${most} bytes)`);
  }
  if (blob.ciCompressedSize > LIMITS.BLOB_META_MAX.value || blob.ciUncompressedSize > LIMITS.BLOB_META_MAX.value) {
    throw bad(`the chunk table (${blob.ciCompressedSize} stored, ${blob.ciUncompressedSize} raw bytes) is over the ${LIMITS.BLOB_META_MAX.value}-byte limit`);
  }
  const end = blob.ciOffset + blob.ciCompressedSize + metaHeader.SIZE;
  if (end > h.size) throw new NydusError('SOURCE', `blob is shorter than referenced: ${what} ends at ${end}, file has ${h.size}`, { path: h.file });
  const raw = Buffer.allocUnsafe(blob.ciCompressedSize + metaHeader.SIZE);
  try {
    h.readAt(raw, blob.ciOffset);
  } catch (e) {
    throw e instanceof NydusError ? e : fsError('SOURCE', h.file, e);
  }
  let stored: Buffer = raw.subarray(0, blob.ciCompressedSize);
  let headerBytes: Buffer = raw.subarray(blob.ciCompressedSize);
  if (cipher) {
    stored = decrypt(cipher, stored, `${what} (chunk table)`);
    headerBytes = decrypt(cipher, headerBytes, `${what} (header)`);
  }
  let header: metaHeader.MetaHeader;
  try {
    header = metaHeader.decode(headerBytes);
  } catch (e) {
    throw bad(`${(e as Error).message}${cipher ? ' (wrong key?)' : ''}`);
  }
  const mismatch: Array<[string, number, number]> = [
    ['s_ci_entries', header.s_ci_entries, n],
    ['s_ci_offset', header.s_ci_offset, blob.ciOffset],
    ['s_ci_compressed_size', header.s_ci_compressed_size, blob.ciCompressedSize],
    ['s_ci_uncompressed_size', header.s_ci_uncompressed_size, blob.ciUncompressedSize],
  ];
  for (const [field, got, want] of mismatch) if (got !== want) throw bad(`header ${field} ${got} differs from the blob table's ${want}`);
  const ci = compressorByName(blob.ciCompressor)!;
  let table: Buffer;
  try {
    table = Buffer.from(ci.decompress(stored, blob.ciUncompressedSize));
  } catch (e) {
    throw bad(`the chunk table does not decompress with ${ci.name}: ${(e as Error).message}`);
  }
  if (table.length !== blob.ciUncompressedSize) throw bad(`the chunk table holds ${table.length} bytes, the blob table says ${blob.ciUncompressedSize}`);
  const count = header.s_ci_zran_count;
  if (count > 0 && (header.s_ci_zran_offset !== n * entrySize || header.s_ci_zran_size !== count * batchCtx.SIZE || header.s_ci_zran_offset + header.s_ci_zran_size > table.length)) {
    throw bad(`batch contexts (${count} at ${header.s_ci_zran_offset}, ${header.s_ci_zran_size} bytes) do not follow the ${n} chunk entries within the ${table.length}-byte table`);
  }
  return {
    entry(index, uncompressedSize) {
      if (index >= n) throw bad(`chunk index ${index} is past its ${n} entries`);
      const e = v2 ? bci.decodeV2(table, index * entrySize) : bci.decodeV1(table, index * entrySize);
      if (e.uncompressed_size !== uncompressedSize) throw bad(`entry ${index} holds ${e.uncompressed_size} bytes, the bootstrap says ${uncompressedSize}`);
      return e;
    },
    batch(index, chunk) {
      if (index >= count) throw bad(`chunk ${chunk} names batch ${index}, there are ${count}`);
      const c = batchCtx.decode(table, header.s_ci_zran_offset + index * batchCtx.SIZE);
      if (c.uncompressed_batch_size === 0 || c.uncompressed_batch_size > LIMITS.CHUNK_SIZE_MAX.value) throw bad(`batch ${index} claims ${c.uncompressed_batch_size} raw bytes (1 to ${LIMITS.CHUNK_SIZE_MAX.value})`);
      if (c.compressed_size === 0) throw bad(`batch ${index} has no stored bytes`);
      return c;
    },
  };
}
