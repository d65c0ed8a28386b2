// The stage interface: what flows between pipeline stages and how a stage is declared.
// Two kinds of items flow: entries (source -> entry stages -> chunker) and batches of chunks
// (chunker -> digest -> dedup -> batch stages -> compress -> sink).
import type { ChunkRef, TreeNode } from '../tree/node.js';
import type { ChunkInfo } from '../read/model.js';
import type { Compressor, Digester } from '../algo/index.js';
import type { BufferPool, ChunkPool } from './pool.js';
import type { FileReads } from './workers/chunks.js';
import type { DigestMap } from './digest-map.js';

/** Sequential reader of one regular file's bytes; a sync result avoids a promise per read. */
export interface ContentReader {
  read(into: Uint8Array, offset: number, length: number): number | Promise<number>;
  close(): void;
}

/**
 * A source may tag an entry's `open` with the file's absolute path: the pipeline's workers then
 * open and read the file themselves. An entry stage that replaces `open` drops the tag, and the
 * main thread reads through the stage's reader instead.
 */
export const READ_PATH: unique symbol = Symbol('nydus.readPath');

/**
 * A source may also hand over its entries a group at a time, synchronously (the directory
 * source: a directory with its non-directories): the chunker then takes them without an
 * asynchronous step per entry, when no entry stage sits in between.
 */
export const ENTRY_GROUPS: unique symbol = Symbol('nydus.entryGroups');

/** A source with groups (see ENTRY_GROUPS); iterated as usual, it gives the same entries one by one. */
export interface GroupedSource extends AsyncIterable<SourceEntry> {
  [ENTRY_GROUPS](): Iterable<SourceEntry[]>;
}

export interface SourceEntry {
  node: TreeNode;
  /** The directory this entry goes into; undefined for the root. */
  parent?: TreeNode;
  /** Opens the content of a regular file (also offered for hardlinks, in case the first name is dropped). */
  open?: (() => ContentReader) & { [READ_PATH]?: Buffer };
  /**
   * An earlier entry at the same path that this one replaces (tar: a repeated path, or an
   * explicit entry for a directory that was implied). A directory replacing a directory keeps
   * its children; anything else drops the old subtree.
   */
  replaces?: TreeNode;
}

/** A chunk cut from a file, waiting for its digest, its dedup decision and storage. */
export interface PendingChunk {
  node: TreeNode;
  fileOffset: number;
  size: number;
  /** Where its raw bytes sit in Batch.data. */
  dataOffset: number;
  digest?: Buffer;
  /** Index into BuildState.chunks once dedup has decided. */
  ref?: number;
  /** True when this chunk must be written to the blob (not a duplicate). */
  fresh?: boolean;
  /**
   * Internal: the file's chunk list, sized by the chunker, where dedup records this chunk at
   * fileOffset / chunkSize (the list may move to another name of a hardlink group meanwhile).
   */
  refs?: ChunkRef[];
}

export interface Batch {
  /**
   * Raw chunk bytes, each chunk's at its dataOffset: back to back, or (chunks a tar source lent
   * in place) in the source's read block with headers and padding between them.
   */
  data: Uint8Array;
  chunks: PendingChunk[];
  /** After compression: the stored bytes of the fresh chunks, back to back, in chunk order. */
  out?: Uint8Array;
  /**
   * Internal: when set, the stored bytes are these [offset, length] spans of out (which is then
   * data), one after another: raw chunks that are not back to back in data (duplicates, or a
   * tar's headers, between them) are written from where they are instead of copied together.
   */
  outSpans?: number[];
  /** After compression: stored size and whether it is compressed, per fresh chunk. */
  stored?: Array<{ size: number; compressed: boolean }>;
  /** Internal: the files the workers read into data, and the node of each read (for messages). */
  files?: { reads: FileReads; nodes: TreeNode[] };
  /**
   * Internal: every chunk compressed by the workers before dedup (when no batch stage runs in
   * between): stored bytes in out in chunk order, and per chunk its stored size (negative when
   * stored raw, 0 when it repeats an earlier chunk of the batch and was not compressed).
   */
  pre?: { out: Uint8Array; sizes: Int32Array; used: number };
}

/** Per-blob counters the dedup stage and the sink advance. */
export interface BlobState {
  index: number;
  chunkCount: number;
  /** Next 4 KiB-aligned uncompressed offset. */
  uncompressedEnd: number;
  /** Bytes of chunk data written so far. */
  compressedEnd: number;
  /** Chunk record indexes of this blob, in chunk-index order. */
  chunkRefs: number[];
  /**
   * blob.meta's v1 entries (16 bytes a chunk, by chunk index), written by the sink as each chunk's
   * place in the blob becomes known, when the build asks for them: the blob's writer then takes
   * them as they are after the last chunk.
   */
  metaEntries?: { bytes: Buffer; view: DataView; count: number };
}

export interface Progress {
  files: number;
  bytes: number;
  chunks: number;
  dedupChunks: number;
  dedupBytes: number;
}

/** What every stage may read and the state the stages share during one build. */
export interface BuildState {
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  /** Every unique chunk the build references, in the order first seen. */
  chunks: ChunkInfo[];
  /** Chunk digest -> index into chunks. */
  dict: DigestMap;
  blob: BlobState;
  root?: TreeNode;
  progress: Progress;
  /** Worker threads for digests and compression (0 = all on the main thread). */
  threads: number;
  /** The worker pool, while the pipeline runs with threads > 0. */
  pool?: ChunkPool;
  /** Batch buffers, reused. */
  buffers: BufferPool;
  /** Aligns uncompressed offsets to 4 KiB (v6, except tarfs). */
  aligned: boolean;
  /**
   * Blob-table position of each candidate blob (chunks' blobIndex holds the candidate's key
   * while building), -1 until its first use: blobs join the table in first-use order.
   */
  blobOrder: number[];
  /**
   * With `--batch-size`: whether a chunk goes into a batch, which the sink compresses as one
   * unit; such chunks are not compressed on their own (the compressor leaves them out of stored).
   */
  batched?: (c: PendingChunk) => boolean;
}

/** Marks a candidate blob as used, giving it the next table position. */
export function useBlob(state: BuildState, key: number): void {
  if (state.blobOrder[key] < 0) state.blobOrder[key] = Math.max(-1, ...state.blobOrder) + 1;
}

export type StageKind = 'entry' | 'batch';

export interface StageDef {
  name: string;
  /** What the stage consumes and produces; an entry stage runs before the chunker, a batch stage after dedup. */
  kind: StageKind;
  create(state: BuildState): (input: AsyncIterable<any>) => AsyncIterable<any>;
}

export interface EntryStage extends StageDef {
  kind: 'entry';
  create(state: BuildState): (input: AsyncIterable<SourceEntry>) => AsyncIterable<SourceEntry>;
}

export interface BatchStage extends StageDef {
  kind: 'batch';
  create(state: BuildState): (input: AsyncIterable<Batch>) => AsyncIterable<Batch>;
}

/** A sink consumes the final batches and returns when all are stored. */
export interface Sink {
  consume(input: AsyncIterable<Batch>, state: BuildState): Promise<void>;
}
