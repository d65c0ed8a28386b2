// Piscina worker: reads, digests and compresses the chunks of one batch. Tiny and
// self-contained: algo and fs only. Buffers travel both ways by transfer, so the batch's
// buffers go back to be reused.
import * as fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { compressorByName, digesterByName, type Compressor } from '../../algo/index.js';
import { nameThread } from '../../io/thread-name.js';
import { native } from '../../io/native.js';
import { moved } from './transfer.js';

if (!isMainThread) nameThread('nydus-chunks');

export interface ChunkTask {
  /** Compressor or digester name. */
  algo: string;
  data: Uint8Array;
  /** [offset, length] pairs into data. */
  spans: Uint32Array;
}

export interface DigestResult {
  /** 32 bytes per span. */
  digests: Uint8Array;
  data: Uint8Array;
}

export interface CompressTask extends ChunkTask {
  /** Receives the stored bytes of every span back to back; as large as data. */
  out: Uint8Array;
}

export interface CompressResult {
  out: Uint8Array;
  /** Bytes of out used. */
  used: number;
  /** Stored size per span; negative marks a chunk stored raw (compression did not shrink it). */
  sizes: Int32Array;
  data: Uint8Array;
}

const slice = (t: { data: Uint8Array; spans: Uint32Array }, i: number) => t.data.subarray(t.spans[2 * i], t.spans[2 * i] + t.spans[2 * i + 1]);

export function digest(t: ChunkTask): DigestResult {
  const d = digesterByName(t.algo)!;
  const n = t.spans.length / 2;
  const digests = new Uint8Array(32 * n);
  for (let i = 0; i < n; i++) digests.set(d.digest(slice(t, i)), 32 * i);
  return moved({ digests, data: t.data }, [digests.buffer, t.data.buffer]);
}

export function compressChunks(t: CompressTask): CompressResult {
  const c = compressorByName(t.algo)!;
  const n = t.spans.length / 2;
  const sizes = new Int32Array(n);
  let used = 0;
  for (let i = 0; i < n; i++) {
    const z = compressOne(c, t.out, used, slice(t, i));
    sizes[i] = z;
    used += Math.abs(z);
  }
  return { out: t.out, used, sizes, data: t.data };
}

/**
 * Files (or parts of files) the worker reads into the batch's data buffer itself, so no byte
 * passes through the main thread: per read, [dataOffset, length, fileOffset] in `spans`, and the
 * file's path (bytes pathEnds[i-1]..pathEnds[i] of `paths`) or, when fds[i] >= 0, an open fd.
 */
export interface FileReads {
  spans: Float64Array;
  paths: Uint8Array;
  pathEnds: Uint32Array;
  fds: Int32Array;
}

export interface ReadTask {
  digester: string;
  /** Also compress every chunk (but a repeat within the batch) with this compressor into out. */
  compressor?: string;
  data: Uint8Array;
  out?: Uint8Array;
  /** Chunks: [offset, length] pairs into data. */
  spans: Uint32Array;
  reads?: FileReads;
}

export interface ReadResult {
  data: Uint8Array;
  /** 32 bytes per chunk. */
  digests: Uint8Array;
  out?: Uint8Array;
  used: number;
  /** With a compressor: stored size per chunk, negative when stored raw, 0 when not compressed (a repeat in this batch). */
  sizes?: Int32Array;
  /** The read that failed: its index, and the errno code and message, or shrank when the file ended early. */
  failure?: { read: number; code?: string; message: string; shrank?: boolean };
}

const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;

/**
 * Reads every file of t.reads into t.data; the failure of the first read that fails. The addon
 * does the reads in one call; a read it stops at is done again here with Node's fs, which gives
 * its failure (or, after a race, its bytes) in the usual form, and the addon goes on after it.
 */
function readFiles(t: ReadTask): ReadResult['failure'] {
  const r = t.reads;
  if (!r) return undefined;
  const n = r.fds.length;
  for (let from = 0; from < n;) {
    const stop = native.readFilesInto(t.data, r.spans, r.paths, r.pathEnds, r.fds, from);
    if (stop >= n) break;
    const failure = readOne(t.data, r, stop);
    if (failure) return failure;
    from = stop + 1;
  }
  return undefined;
}

/** Read i of r into data with Node's fs; its failure. */
function readOne(data: Uint8Array, r: FileReads, i: number): ReadResult['failure'] {
  const at = r.spans[3 * i];
  const len = r.spans[3 * i + 1];
  const pos = r.spans[3 * i + 2];
  let fd = r.fds[i];
  const own = fd < 0;
  try {
    if (own) fd = fs.openSync(Buffer.from(r.paths.buffer, r.paths.byteOffset + (i > 0 ? r.pathEnds[i - 1] : 0), r.pathEnds[i] - (i > 0 ? r.pathEnds[i - 1] : 0)), O_READ);
    try {
      let got = 0;
      while (got < len) {
        const k = fs.readSync(fd, data, at + got, len - got, pos + got);
        if (k === 0) return { read: i, message: 'file shrank while reading', shrank: true };
        got += k;
      }
    } finally {
      if (own) fs.closeSync(fd);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { read: i, code: err.code, message: err.message };
  }
  return undefined;
}

/** Open-addressing slots (chunk index + 1, 0 when free) reused by every batch of this thread. */
let slots = new Int32Array(1024);

/**
 * Which chunks of a batch come first with their digest and length: a hash set over the digests'
 * own bytes (already uniform), with no key string or object per chunk.
 */
class FirstSeen {
  private readonly words: Uint32Array;
  private readonly mask: number;

  constructor(digests: Uint8Array, private readonly spans: Uint32Array) {
    this.words = new Uint32Array(digests.buffer, digests.byteOffset, digests.byteLength >>> 2);
    const n = spans.length / 2;
    let size = 1024;
    while (size < 2 * n) size *= 2;
    if (slots.length < size) slots = new Int32Array(size);
    slots.fill(0, 0, size);
    this.mask = size - 1;
  }

  /** Records chunk i; whether no earlier chunk had its digest and length. */
  isFirst(i: number): boolean {
    const w = this.words;
    for (let h = w[8 * i] & this.mask; ; h = (h + 1) & this.mask) {
      const j = slots[h] - 1;
      if (j < 0) {
        slots[h] = i + 1;
        return true;
      }
      if (this.spans[2 * j + 1] === this.spans[2 * i + 1] && this.same(8 * i, 8 * j)) return false;
    }
  }

  private same(a: number, b: number): boolean {
    const w = this.words;
    for (let k = 0; k < 8; k++) if (w[a + k] !== w[b + k]) return false;
    return true;
  }
}

/** Reads, digests and (with a compressor) compresses one batch; runs on the main thread too, without a pool. */
export function readChunks(t: ReadTask): ReadResult {
  const failure = readFiles(t);
  const n = t.spans.length / 2;
  const digests = new Uint8Array(32 * n);
  if (failure) return { data: t.data, out: t.out, digests, used: 0, failure };
  const d = digesterByName(t.digester)!;
  for (let i = 0; i < n; i++) digests.set(d.digest(slice(t, i)), 32 * i);
  if (!t.compressor || !t.out) return { data: t.data, out: t.out, digests, used: 0 };
  const c = compressorByName(t.compressor)!;
  const sizes = new Int32Array(n);
  // A chunk repeated within the batch is certainly a duplicate: it is not compressed twice.
  const firsts = new FirstSeen(digests, t.spans);
  let used = 0;
  for (let i = 0; i < n; i++) {
    if (!firsts.isFirst(i)) continue;
    const z = compressOne(c, t.out, used, slice(t, i));
    sizes[i] = z;
    used += Math.abs(z);
  }
  return { data: t.data, out: t.out, digests, used, sizes };
}

/** Stores raw in out at used: compressed when strictly smaller (blob.md §3), else as is; the size, negative when raw. */
function compressOne(c: Compressor, out: Uint8Array, used: number, raw: Uint8Array): number {
  const z = raw.byteLength > 1 ? c.compressInto(out.subarray(used, used + raw.byteLength - 1), raw) : -1;
  if (z >= 0) return z;
  out.set(raw, used);
  return -raw.byteLength;
}

/** As a pool task: readChunks, with buffers transferred back. */
export function read(t: ReadTask): ReadResult {
  const r = readChunks(t);
  const buffers: ArrayBufferLike[] = [r.data.buffer, r.digests.buffer];
  if (r.out) buffers.push(r.out.buffer);
  return moved(r, buffers);
}

/** As a pool task: the same, with buffers transferred back. */
export function compress(t: CompressTask): CompressResult {
  const r = compressChunks(t);
  return moved(r, [r.out.buffer, r.data.buffer]);
}
