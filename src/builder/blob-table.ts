// Blob-table entries of a layered build (merge, and create with a parent or a chunk dict) made
// from blobs a loaded image already lists, and the ids they go by (blob.md §5.3, tar-merge-export.md §4.3).
import { compressorByName, digesterByName } from '../algo/index.js';
import * as path from 'node:path';
import { NydusError } from '../errors.js';
import { badBlobId } from '../format/limits.js';
import * as bt from '../format/rafs/blob-table.js';
import { idFromFileName, type BlobInfo } from '../read/model.js';

/** The blob id a file name carries (upstream's rule), or an error when there is none. */
export function blobIdFromFileName(file: string): string {
  const id = idFromFileName(file);
  if (id.length === 0 || id === '.' || id === '..') throw new NydusError('SOURCE', 'failed to get a blob id from the file name', { path: file });
  return id;
}

/** Whether the blob's bootstrap was inlined in it (so its table cannot name it). */
export const isInlinedMeta = (info: BlobInfo) =>
  (info.features & bt.FEATURE_INLINED_FS_META) !== 0 && (info.features & bt.FEATURE_SEPARATE) === 0;

/**
 * The id upstream's BlobInfo::blob_id() gives a blob of an image loaded from `file`: for a blob
 * whose bootstrap was inlined, the id the file name carries; otherwise the id stored in the table.
 */
export function loadedBlobId(info: BlobInfo, file: string): string {
  return isInlinedMeta(info) ? blobIdFromFileName(file) : info.blobId;
}

/** Clears the features that describe where a blob's own bootstrap was, not the blob. */
export const clearInlinedMeta = (features: number) => (features & ~bt.FEATURE_INLINED_FS_META) >>> 0;

/**
 * A blob-table entry for a blob that a loaded image lists, to be written at `index` of a new
 * table: every field copied, INLINED_FS_META cleared (the new bootstrap is not inside it), and
 * the id the blob has when loaded from `file` (loadedBlobId).
 */
export function blobEntryFromInfo(info: BlobInfo, index: number, file: string): bt.BlobEntry {
  return {
    blob_id: loadedBlobId(info, file),
    blob_index: index,
    chunk_size: info.chunkSize,
    chunk_count: info.chunkCount,
    compression_algo: compressorByName(info.compressor)!.id,
    digest_algo: digesterByName(info.digester)!.id,
    features: clearInlinedMeta(info.features),
    compressed_size: info.compressedSize,
    uncompressed_size: info.uncompressedSize,
    blob_toc_size: info.tocSize,
    ci_compressor: compressorByName(info.ciCompressor)!.id,
    ci_offset: info.ciOffset,
    ci_compressed_size: info.ciCompressedSize,
    ci_uncompressed_size: info.ciUncompressedSize,
    blob_toc_digest: Buffer.from(info.tocDigest),
    blob_meta_digest: Buffer.from(info.metaDigest),
    blob_meta_size: info.metaSize,
    cipher_iv: Buffer.from(info.cipherIv ?? Buffer.alloc(16)),
    cipher_algo: info.cipherAlgo ?? 0,
  };
}

/** Where a blob's chunk-info table (blob.meta) lies, as BlobWriter records it. */
export interface CiFields {
  ciCompressor: number;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
}

type KnownFields = 'blob_id' | 'blob_index' | 'chunk_size' | 'chunk_count' | 'compression_algo' | 'digest_algo' | 'features' | 'compressed_size' | 'uncompressed_size';

/**
 * The table entry of a blob a build made: the fields it knows, `ci` where its blob.meta lies, and
 * every other field "none" (no TOC, zero digests, no cipher).
 */
export function newBlobEntry(known: Pick<bt.BlobEntry, KnownFields> & Partial<bt.BlobEntry>, ci?: CiFields): bt.BlobEntry {
  return {
    blob_toc_size: 0,
    ci_compressor: ci?.ciCompressor ?? 0, ci_offset: ci?.ciOffset ?? 0, ci_compressed_size: ci?.ciCompressedSize ?? 0, ci_uncompressed_size: ci?.ciUncompressedSize ?? 0,
    blob_toc_digest: Buffer.alloc(32), blob_meta_digest: Buffer.alloc(32), blob_meta_size: 0, cipher_iv: Buffer.alloc(16), cipher_algo: 0,
    ...known,
  };
}

/** RAFS v6 device slots hold 1 to 64 bytes of id. */
export function checkV6BlobId(id: string, where?: string): void {
  const n = Buffer.byteLength(id);
  if (n === 0) throw new NydusError('SOURCE', 'blob id is empty', { path: where });
  if (n > 64) throw new NydusError('SOURCE', `blob id ${JSON.stringify(id)} is ${n} bytes: RAFS v6 blob ids are 1 to 64 bytes`, { path: where });
}

/**
 * The file that holds blob `id` in `dir` (with `suffix`, e.g. ".blob.data"): an id is data from
 * a flag or a bootstrap, so it is checked to be one file name before it becomes part of a path.
 */
export function blobFileIn(dir: string, id: string, suffix = '', where?: string): string {
  const bad = badBlobId(id);
  if (bad) throw new NydusError('SOURCE', `${bad}: not used as a file name in ${dir}`, { path: where });
  return path.join(dir, id + suffix);
}
