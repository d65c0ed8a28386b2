// `compact` (upstream builder/src/compact.rs, issue 17 part 4): an image's blobs reconsidered
// from what its tree still references. A blob nothing references is dropped; one whose
// referenced bytes are under min_used_ratio percent of it is rebuilt from those chunks only;
// blobs under compact_blob_size are merged smallest first while the result stays within
// max_compact_size. A chunk dict's blobs, and blobs whose chunks cannot be moved one by one
// (batch, encrypted, zran, separate, another compressor or digester), are kept as they are.
// Chunks move as stored (never recompressed); the bootstrap is rewritten to the new table.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { alignUp } from '../format/util.js';
import * as bt from '../format/rafs/blob-table.js';
import * as ext from '../format/rafs/ext-superblock.js';
import { openImage } from '../read/open.js';
import type { BlobInfo, ChunkInfo } from '../read/model.js';
import { treeFromImage } from '../tree/from-image.js';
import { planBootstrap } from '../bootstrap/plan.js';
import { emitBootstrap } from '../bootstrap/emit.js';
import { BlobWriter, blobFeatures, type ByteSink } from './blob.js';
import { blobEntryFromInfo, blobFileIn, newBlobEntry } from './blob-table.js';
import { parseChunkDictArg } from './chunk-dict-arg.js';
import { writeBootstrap } from './bootstrap-file.js';
import { failBuild } from './create.js';
import { Trace } from './trace.js';
import { outputJson, writeOutputJson } from './output-json.js';

export interface CompactConfig {
  /** Blobs whose referenced bytes are under this percentage of their size are rebuilt (0-99; 0: never). */
  min_used_ratio: number;
  /** Blobs smaller than this (bytes) are merged. */
  compact_blob_size: number;
  /** A merged blob stays within this many bytes. */
  max_compact_size: number;
  /** Compact only when the image has at least this many blobs (0: always). */
  layers_to_compact: number;
  /** Where the blobs are (named by id) and where new ones go. */
  blobs_dir: string;
}

export const COMPACT_DEFAULTS = { min_used_ratio: 0, compact_blob_size: 10 << 20, max_compact_size: 100 << 20, layers_to_compact: 0 };

/** A compact config file's JSON, checked field by field (one line per bad field). */
export function parseCompactConfig(text: string, where: string): Partial<CompactConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new NydusError('USAGE', `compact config ${where} is not JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new NydusError('USAGE', `compact config ${where} must be a JSON object`);
  const o = raw as Record<string, unknown>;
  const out: Partial<CompactConfig> = {};
  const int = (name: keyof typeof COMPACT_DEFAULTS, max: number, what: string) => {
    if (!(name in o)) return;
    const v = o[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
      throw new NydusError('USAGE', `compact config ${where}: ${name} must be ${what}, not ${JSON.stringify(v)}`);
    }
    out[name] = v;
  };
  int('min_used_ratio', 99, 'an integer from 0 to 99 (percent)');
  int('compact_blob_size', Number.MAX_SAFE_INTEGER, 'a size in bytes (a non-negative integer)');
  int('max_compact_size', Number.MAX_SAFE_INTEGER, 'a size in bytes (a non-negative integer)');
  int('layers_to_compact', Number.MAX_SAFE_INTEGER, 'a non-negative integer');
  if ('blobs_dir' in o) {
    if (typeof o.blobs_dir !== 'string' || o.blobs_dir === '') throw new NydusError('USAGE', `compact config ${where}: blobs_dir must be a non-empty path, not ${JSON.stringify(o.blobs_dir)}`);
    out.blobs_dir = o.blobs_dir;
  }
  return out;
}

const COMPACT_KEYS = ['min_used_ratio', 'compact_blob_size', 'max_compact_size', 'layers_to_compact', 'blobs_dir'];

/**
 * A compact config file, read and checked. With `onlyIfCompact` (create's --config, which names
 * other configs too) a file whose JSON names no compact field gives undefined.
 */
export function readCompactConfig(file: string, onlyIfCompact = false): Partial<CompactConfig> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fsError('USAGE', file, e);
  }
  if (onlyIfCompact) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.keys(raw).some((k) => COMPACT_KEYS.includes(k))) return undefined;
  }
  return parseCompactConfig(text, file);
}

export interface CompactOptions {
  bootstrap: string;
  config: CompactConfig;
  /** `bootstrap=PATH` or PATH: that image's blobs are kept whatever their use. */
  chunkDict?: string;
  /** Where the new bootstrap goes (default: the bootstrap's name with its extension replaced by .bootstrap.compact, as upstream). */
  outputBootstrap?: string;
  /** The backend the caller named (nydusify pack always names one): blobs are still read from blobs_dir only. */
  backendType?: string;
  log?: (line: string) => void;
}

export interface CompactResult {
  /** '' when nothing was written (fewer blobs than layers_to_compact). */
  bootstrap: string;
  blobs: string[];
  trace: Trace;
  compressor: string;
  before: { blobs: number; bytes: number };
  after: { blobs: number; bytes: number };
}

type Plan = { kind: 'keep' } | { kind: 'dict' } | { kind: 'delete' } | { kind: 'rebuild'; members: number[] };

/** Blob features that pin a blob: its chunks cannot be copied one by one into another blob. */
const PINNED = bt.FEATURE_BATCH | bt.FEATURE_ENCRYPTED | bt.FEATURE_ZRAN | bt.FEATURE_SEPARATE | bt.FEATURE_TARFS | bt.FEATURE_EXTERNAL;

/** compact, then its summary through o.log and, when a bootstrap was written, the --output-json document to `jsonFile`. */
export async function compactAndReport(o: CompactOptions, jsonFile?: string): Promise<CompactResult> {
  const r = await compact(o);
  o.log?.(`compactor: blobs ${r.before.blobs} -> ${r.after.blobs}, bytes ${r.before.bytes} -> ${r.after.bytes}${r.bootstrap ? `; bootstrap ${r.bootstrap}` : ''}`);
  if (r.bootstrap && jsonFile) {
    await writeOutputJson(jsonFile, outputJson({ bootstrap: r.bootstrap, blobs: r.blobs, trace: r.trace, fsVersion: '6', compressor: r.compressor }), true);
  }
  return r;
}

/** upstream: the bootstrap path with its extension replaced by "bootstrap.compact". */
export function defaultCompactOutput(bootstrap: string): string {
  const ext = path.extname(bootstrap);
  return (ext ? bootstrap.slice(0, -ext.length) : bootstrap) + '.bootstrap.compact';
}

export async function compact(o: CompactOptions): Promise<CompactResult> {
  const trace = new Trace();
  const total = trace.start('total_build');
  const log = o.log ?? (() => undefined);
  backendNamed = o.backendType;
  const cfg = o.config;
  const dir = cfg.blobs_dir;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new NydusError('USAGE', `blobs_dir ${JSON.stringify(dir)} is not a directory`);
  const image = openImage(o.bootstrap);
  const compressor = compressorByName(image.compressor)!;
  const digester = digesterByName(image.digester)!;
  const blobs = image.blobs;
  const sizeOf = (b: BlobInfo) => (b.compressedSize > 0 ? b.compressedSize : fileSize(dir, b.blobId));
  if (blobs.length < cfg.layers_to_compact) {
    log(`compactor: ${blobs.length} blobs, fewer than layers_to_compact ${cfg.layers_to_compact}: nothing to do`);
    total.end();
    // Nothing is read: the sizes are the blob table's (0 where it records none).
    const same = { blobs: blobs.length, bytes: blobs.reduce((s, b) => s + b.compressedSize, 0) };
    return { bootstrap: '', blobs: blobs.map((b) => b.blobId), trace, compressor: compressor.name, before: same, after: same };
  }
  // Refused only once there is something to do: with fewer blobs than layers_to_compact any image is left as it is (as upstream).
  if (image.version !== 6) throw new NydusError('UNSUPPORTED', `compacting RAFS v${image.version} images is not supported (only v6)`, { path: o.bootstrap });
  if ((image.flags & ext.FLAG_TARFS_MODE) !== 0) throw new NydusError('UNSUPPORTED', 'a tarfs image has no chunks to compact (its blobs are the layer tars)', { path: o.bootstrap });
  // Each blob's size once: a blob the table gives no size is stat'ed in blobs_dir.
  const sizes = blobs.map(sizeOf);
  const before = { blobs: blobs.length, bytes: sizes.reduce((s, n) => s + n, 0) };

  const dictIds = new Set<string>();
  if (o.chunkDict) for (const b of openImage(parseChunkDictArg(o.chunkDict)).blobs) dictIds.add(b.blobId);

  // What the tree references: per blob, its stored units (by compressed offset) and their sizes.
  const chunks: ChunkInfo[] = [];
  const root = treeFromImage(image, chunks, 0).root;
  const used = blobs.map(() => new Map<number, number>());
  for (const c of chunks) used[c.blobIndex].set(c.compressedOffset, c.compressedSize);
  const usedBytes = used.map((m) => [...m.values()].reduce((s, n) => s + n, 0));

  const plans: Plan[] = blobs.map((b, i) => {
    if (dictIds.has(b.blobId)) return { kind: 'dict' };
    if (used[i].size === 0) return { kind: 'delete' };
    return { kind: 'keep' };
  });
  const movable = (i: number) => (blobs[i].features & PINNED) === 0 && blobs[i].compressor === compressor.name && blobs[i].digester === digester.name;
  for (const [i, b] of blobs.entries()) {
    if (plans[i].kind !== 'keep' || !movable(i)) continue;
    const ratio = Math.floor((usedBytes[i] * 100) / Math.max(1, sizes[i]));
    log(`compactor: blob ${b.blobId} size ${sizes[i]}, used data ratio ${ratio}%`);
    if (ratio < cfg.min_used_ratio) plans[i] = { kind: 'rebuild', members: [i] };
  }
  // Small blobs merge, smallest first, while the merged data stays within max_compact_size.
  const sizeNow = (i: number) => (plans[i].kind === 'rebuild' ? usedBytes[i] : sizes[i]);
  const small = blobs.map((_, i) => i).filter((i) => (plans[i].kind === 'keep' || plans[i].kind === 'rebuild') && movable(i) && sizeNow(i) < cfg.compact_blob_size);
  small.sort((a, b) => sizeNow(a) - sizeNow(b) || a - b);
  if (small.length >= 2) {
    let to = small[0];
    let toBytes = usedBytes[to];
    for (const i of small.slice(1)) {
      if (toBytes + usedBytes[i] <= cfg.max_compact_size) {
        const p = plans[to];
        plans[to] = { kind: 'rebuild', members: [...(p.kind === 'rebuild' ? p.members : [to]), ...(plans[i].kind === 'rebuild' ? (plans[i] as { members: number[] }).members : [i])] };
        plans[i] = { kind: 'delete' };
        toBytes += usedBytes[i];
      } else {
        to = i;
        toBytes = usedBytes[i];
      }
    }
  }

  // The new table, in the old order: kept blobs as they were, rebuilt ones written anew.
  const opened: OutputFile[] = [];
  const reader = new StoredReader(dir);
  const commits: Array<() => Promise<void>> = [];
  try {
    const table: bt.BlobEntry[] = [];
    const newIndex = blobs.map(() => -1);
    const moved = new Map<string, { blobIndex: number; index: number; compressedOffset: number; uncompressedOffset: number }>();
    const key = (blob: number, offset: number) => `${blob}:${offset}`;
    for (const [i, b] of blobs.entries()) {
      const p = plans[i];
      if (p.kind === 'delete') {
        log(`compactor: drop blob ${b.blobId}`);
        continue;
      }
      const at = table.length;
      if (p.kind !== 'rebuild') {
        newIndex[i] = at;
        table.push(blobEntryFromInfo(b, at, o.bootstrap));
        continue;
      }
      const t = trace.start('dump_blob');
      const out = OutputFile.temp(dir);
      opened.push(out);
      const sink: ByteSink = { write: (d, done) => (out.write(Buffer.from(d.buffer, d.byteOffset, d.byteLength)), done?.()), drain: async () => undefined };
      const layout = { inlineMeta: false, blobToc: false, compressor };
      const writer = new BlobWriter(sink, layout);
      const state = { index: at, chunkCount: 0, uncompressedEnd: 0, compressedEnd: 0, chunkRefs: [] as number[] };
      const records: ChunkInfo[] = [];
      const units = chunks.filter((c) => p.members.includes(c.blobIndex)).sort((x, y) => x.blobIndex - y.blobIndex || x.compressedOffset - y.compressedOffset);
      for (const c of units) {
        const k = key(c.blobIndex, c.compressedOffset);
        if (moved.has(k)) continue;
        const stored = reader.read(blobs[c.blobIndex], c);
        const rec: ChunkInfo = { ...c, blobIndex: at, index: state.chunkCount, compressedOffset: state.compressedEnd, uncompressedOffset: state.uncompressedEnd };
        moved.set(k, { blobIndex: at, index: rec.index, compressedOffset: rec.compressedOffset, uncompressedOffset: rec.uncompressedOffset });
        writer.write(stored);
        records.push(rec);
        state.chunkRefs.push(records.length - 1);
        state.chunkCount++;
        state.compressedEnd += stored.length;
        state.uncompressedEnd += alignUp(c.uncompressedSize, 4096);
      }
      await writer.writeMeta(state, records);
      const id = await writer.finish();
      // Committed once everything else has succeeded.
      commits.push(() => out.commit(blobFileIn(dir, id), true));
      t.end();
      log(`compactor: rebuilt ${p.members.map((m) => blobs[m].blobId).join(', ')} into blob ${id} (${state.chunkCount} chunks)`);
      table.push(newBlobEntry({
        blob_id: id, blob_index: at, chunk_size: image.chunkSize, chunk_count: state.chunkCount,
        compression_algo: compressor.id, digest_algo: digester.id, features: blobFeatures(layout, state.chunkCount),
        compressed_size: writer.position, uncompressed_size: state.uncompressedEnd,
      }, writer.meta));
    }
    for (const c of chunks) {
      const m = moved.get(key(c.blobIndex, c.compressedOffset));
      if (m) Object.assign(c, m);
      else c.blobIndex = newIndex[c.blobIndex];
    }
    if (table.length === 0) throw new NydusError('UNSUPPORTED', 'compacting would leave no blob (the image references no chunk)', { path: o.bootstrap });

    const t = trace.start('dump_bootstrap');
    const plan = planBootstrap(root, 4096);
    const encryption = image.flags & (ext.FLAG_ENCRYPTION_NONE | ext.FLAG_ENCRYPTION_AES128XTS);
    const boot = emitBootstrap({
      plan, chunks, blobs: table, flags: compressor.superFlag | digester.superFlag | (encryption || ext.FLAG_ENCRYPTION_NONE),
      chunkSize: image.chunkSize, blockSize: 4096, explicitUidGid: (image.flags & ext.FLAG_EXPLICIT_UID_GID) !== 0, prefetch: [],
    });
    for (const c of commits) await c();
    const bootstrap = await writeBootstrap(boot, { bootstrap: o.outputBootstrap ?? defaultCompactOutput(o.bootstrap) });
    t.end();
    total.end();
    const after = { blobs: table.length, bytes: table.reduce((s, b) => s + (b.compressed_size > 0 ? b.compressed_size : fileSize(dir, b.blob_id)), 0) };
    return { bootstrap, blobs: table.map((b) => b.blob_id), trace, compressor: compressor.name, before, after };
  } catch (e) {
    return failBuild(opened, e);
  } finally {
    reader.close();
  }
}

let backendNamed: string | undefined;

/** A blob missing from blobs_dir: with a backend named, say it is not read from there (yet). */
function blobError(file: string, e: unknown): NydusError {
  if (backendNamed && (e as NodeJS.ErrnoException)?.code === 'ENOENT') {
    return new NydusError('UNSUPPORTED', `blob ${path.basename(file)} is not in blobs_dir ${path.dirname(file)}, and reading blobs from the ${backendNamed} backend is not supported yet`);
  }
  return fsError('SOURCE', file, e);
}

function fileSize(dir: string, id: string): number {
  const file = blobFileIn(dir, id);
  try {
    return fs.statSync(file).size;
  } catch (e) {
    throw blobError(file, e);
  }
}

/** Reads chunks' stored bytes, as they are, out of the blobs in `dir` (one open file per blob). */
class StoredReader {
  private readonly fds = new Map<string, { fd: number; size: number; file: string }>();
  constructor(private readonly dir: string) {}

  read(b: BlobInfo, c: ChunkInfo): Buffer {
    let h = this.fds.get(b.blobId);
    if (!h) {
      const file = blobFileIn(this.dir, b.blobId);
      try {
        const fd = fs.openSync(file, 'r');
        h = { fd, size: fs.fstatSync(fd).size, file };
      } catch (e) {
        throw blobError(file, e);
      }
      this.fds.set(b.blobId, h);
    }
    if (c.compressedOffset + c.compressedSize > h.size) {
      throw new NydusError('SOURCE', `blob is shorter than referenced: chunk ${c.index} needs bytes up to ${c.compressedOffset + c.compressedSize}, file has ${h.size}`, { path: h.file });
    }
    const buf = Buffer.alloc(c.compressedSize);
    fs.readSync(h.fd, buf, 0, buf.length, c.compressedOffset);
    return buf;
  }

  close(): void {
    for (const h of this.fds.values()) fs.closeSync(h.fd);
    this.fds.clear();
  }
}
