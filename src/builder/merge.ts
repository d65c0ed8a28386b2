// `merge`: per-layer bootstraps (lower → upper) overlaid with OCI whiteouts into one image
// bootstrap whose blob table lists each layer's blob under the id it is stored by
// (tar-merge-export.md §4, blob.md §5.3 and §7.2).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, digesterByName, type CompressorName, type DigesterName } from '../algo/index.js';
import { NydusError } from '../errors.js';
import { openImage } from '../read/open.js';
import type { ChunkInfo, RafsImage } from '../read/model.js';
import { treeFromImage } from '../tree/from-image.js';
import { applyLayer, normalizeHardlinks } from '../tree/overlay.js';
import { PathLookup, isRegNode, layoutOrder, walk, type TreeNode } from '../tree/node.js';
import { planBootstrap } from '../bootstrap/plan.js';
import { emitBootstrap } from '../bootstrap/emit.js';
import { emitBootstrapV5, v5Blob } from '../bootstrap/v5.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import { blobEntryFromInfo, blobIdFromFileName, checkV6BlobId, loadedBlobId } from './blob-table.js';
import { Trace } from './trace.js';
import { checkNoCollision } from '../io/collide.js';
import { badBlobId } from '../format/limits.js';
import { writeBootstrap } from './bootstrap-file.js';

export interface MergeOptions {
  /** Layer bootstraps (or blobs with an inline bootstrap), lower → upper. */
  sources: string[];
  /** Output file; else `blobDir/<sha256 of the bootstrap>`. */
  bootstrap?: string;
  blobDir?: string;
  /** An image bootstrap the sources are layered on: its blobs come first in the table. */
  parentBootstrap?: string;
  /** `PATH` or `bootstrap=PATH`: blobs of this image keep their ids. */
  chunkDict?: string;
  /** --prefetch-policy fs: absolute paths whose inodes go in the prefetch table. */
  prefetch?: string[];
  /** One item per source (§4.3): the layer blob's id (native) or blob-meta digest (SEPARATE), 64 hex. */
  blobDigests?: string[];
  /** One item per source: the layer blob's id instead of the source's file name. */
  originalBlobIds?: string[];
  /** One item per source: compressed size (native) or blob-meta size (SEPARATE). */
  blobSizes?: number[];
  /** One item per source: TOC digest, 64 hex. */
  blobTocDigests?: string[];
  /** One item per source: TOC size. */
  blobTocSizes?: number[];
  /** Warnings (ignored prefetch patterns). */
  warn?: (message: string) => void;
  /**
   * Sources the caller has already opened (openImage of that path), by path: nydusify opens each
   * layer's bootstrap as the layer is done, while the others are still being built.
   */
  opened?: ReadonlyMap<string, RafsImage>;
}

export interface MergeResult {
  /** Path of the bootstrap written. */
  bootstrap: string;
  /** Blob ids in blob-table order (first use). */
  blobs: string[];
  /** RAFS version of the first source, as --output-json reports it. */
  fsVersion: string;
  /** Compressor of the first source, as --output-json reports it. */
  compressor: CompressorName;
  trace: Trace;
}

/** What two images must agree on to be merged (upstream's RafsSuperConfig::check_compatibility). */
interface Compat {
  chunkSize: number;
  explicitUidGid: boolean;
  version: number;
  digester: DigesterName;
  tarfs: boolean;
}

const compatOf = (img: RafsImage): Compat => ({
  chunkSize: img.chunkSize,
  explicitUidGid: (img.flags & ext.FLAG_EXPLICIT_UID_GID) !== 0,
  version: img.version,
  digester: img.digester,
  tarfs: (img.flags & ext.FLAG_TARFS_MODE) !== 0,
});

/** Upstream exits 2 for these ("inconsistent filesystem"); USAGE is our code with that exit. */
const inconsistent = (file: string, why: string) => new NydusError('USAGE', `inconsistent filesystem: ${why}`, { path: file });

function checkCompat(ref: Compat, img: RafsImage, file: string): void {
  const c = compatOf(img);
  if (c.chunkSize !== ref.chunkSize) throw inconsistent(file, `chunk size 0x${c.chunkSize.toString(16)}, expected 0x${ref.chunkSize.toString(16)}`);
  if (c.explicitUidGid !== ref.explicitUidGid) {
    throw inconsistent(file, `explicit uid/gid ${c.explicitUidGid ? 'on' : 'off (--repeatable)'}, expected ${ref.explicitUidGid ? 'on' : 'off (--repeatable)'}`);
  }
  if (c.version !== ref.version) throw inconsistent(file, `RAFS v${c.version}, expected RAFS v${ref.version}`);
  if (c.version === 5 && c.digester !== ref.digester) throw inconsistent(file, `RAFS v5 digester ${c.digester}, expected ${ref.digester}`);
  if (c.tarfs !== ref.tarfs) throw inconsistent(file, `TARFS mode ${c.tarfs ? 'on' : 'off'}, expected ${ref.tarfs ? 'on' : 'off'}`);
}

/** What we cannot produce yet, refused before anything is written. */
function checkSupported(img: RafsImage, file: string): void {
  if (img.version !== 5 && img.version !== 6) throw new NydusError('UNSUPPORTED', `merging RAFS v${img.version} bootstraps is not supported`, { path: file });
}

import { parseChunkDictArg } from './chunk-dict-arg.js';
export { parseChunkDictArg };

const LISTS = [
  ['blobDigests', 'blob digest'],
  ['originalBlobIds', 'original blob id'],
  ['blobSizes', 'blob size'],
  ['blobTocDigests', 'toc digest'],
  ['blobTocSizes', 'toc size'],
] as const;

function validate(o: MergeOptions): void {
  if (o.sources.length === 0) throw new NydusError('USAGE', 'source bootstrap list is empty, at least one bootstrap is required');
  for (const [field, what] of LISTS) {
    const list = o[field];
    if (list && list.length !== o.sources.length) {
      throw new NydusError('USAGE', `number of ${what} entries ${list.length} doesn't match number of sources ${o.sources.length}`);
    }
  }
  for (const [field, flag] of [['blobDigests', '--blob-digests'], ['blobTocDigests', '--blob-toc-digests']] as const) {
    for (const d of o[field] ?? []) {
      if (!/^[0-9a-fA-F]{64}$/.test(d)) throw new NydusError('USAGE', `invalid ${flag} item ${JSON.stringify(d)}: expected 64 hex characters`);
    }
  }
  for (const id of o.originalBlobIds ?? []) {
    const bad = badBlobId(id);
    if (bad) throw new NydusError('USAGE', `invalid --original-blob-ids item: ${bad}`);
  }
  for (const [field, flag] of [['blobSizes', '--blob-sizes'], ['blobTocSizes', '--blob-toc-sizes']] as const) {
    for (const n of o[field] ?? []) {
      if (!Number.isSafeInteger(n) || n < 0) throw new NydusError('USAGE', `invalid ${flag} item ${n}: expected a non-negative integer`);
    }
  }
  for (const n of o.blobTocSizes ?? []) {
    if (n > 0xffffffff) throw new NydusError('USAGE', `invalid --blob-toc-sizes item ${n}: larger than a u32`);
  }
  checkNoCollision(
    [...o.sources.map((s) => ['source', s] as const), ['--parent-bootstrap', o.parentBootstrap], ['--chunk-dict', o.chunkDict && parseChunkDictArg(o.chunkDict)]],
    [['--bootstrap', o.bootstrap]],
  );
  if (o.bootstrap) {
    if (!fs.existsSync(path.dirname(path.resolve(o.bootstrap)))) throw new NydusError('OUTPUT', 'parent directory does not exist', { path: o.bootstrap });
  } else if (o.blobDir) {
    if (!fs.existsSync(o.blobDir)) throw new NydusError('OUTPUT', 'directory to store blobs does not exist', { path: o.blobDir });
    if (!fs.statSync(o.blobDir).isDirectory()) throw new NydusError('OUTPUT', '--blob-dir is not a directory', { path: o.blobDir });
  } else {
    throw new NydusError('USAGE', 'both --bootstrap and --blob-dir are missing, please specify one to store the generated metadata blob file');
  }
}

/**
 * Upstream's prefetch patterns: absolute paths only, normalised, in input order, each dropped
 * when it or an ancestor was listed before.
 */
function prefetchPatterns(lines: readonly string[], warn: (m: string) => void): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const p = line.trim();
    if (p.length === 0) continue;
    if (!p.startsWith('/')) {
      warn(`Illegal file path ${p} specified, should be absolute path`);
      continue;
    }
    const parts = p.split('/').filter((s) => s !== '' && s !== '.');
    let covered = false;
    for (let i = 0; i <= parts.length && !covered; i++) covered = seen.has('/' + parts.slice(0, i).join('/'));
    const norm = '/' + parts.join('/');
    if (covered) {
      warn(`prefetch pattern ${p} is covered by previous pattern and thus omitted`);
      continue;
    }
    seen.add(norm);
    out.push(norm);
  }
  return out;
}

/** The nodes the patterns name exactly, in pattern order; empty regular files never prefetch. */
function prefetchNodes(root: TreeNode, patterns: readonly string[]): TreeNode[] {
  if (patterns.length === 0) return [];
  const lookup = new PathLookup(root);
  const out: TreeNode[] = [];
  for (const p of patterns) {
    const n = lookup.get(Buffer.from(p, 'utf8').toString('latin1'));
    if (!n) continue;
    const inode = n.linkTo ?? n;
    if (isRegNode(inode) && inode.size === 0) continue;
    out.push(inode);
  }
  return out;
}

/** One blob of the table being built: its entry and the id upstream looks it up by. */
interface TableBlob {
  entry: bt.BlobEntry;
  /** The id as loaded (blob_idx_map's key): a blob listed twice is added once. */
  loadedId: string;
  /** The bootstrap that brought it, for messages. */
  from: string;
}

export async function merge(o: MergeOptions): Promise<MergeResult> {
  validate(o);
  const warn = o.warn ?? (() => undefined);
  const trace = new Trace();
  const table: TableBlob[] = [];
  const byLoadedId = new Map<string, number>();
  // Chunks of every layer, one entry per (table blob, chunk index, offset).
  const chunks: ChunkInfo[] = [];
  const chunkAt = new Map<string, number>();

  /** The image as a tree whose chunks point at this merge's table (localToTable[i] for blob i). */
  const importTree = (img: RafsImage, localToTable: readonly number[]): TreeNode => {
    const local: ChunkInfo[] = [];
    const { root } = treeFromImage(img, local, 0);
    const toGlobal = local.map((c) => {
      const blobIndex = localToTable[c.blobIndex];
      const k = `${blobIndex}:${c.index}:${c.uncompressedOffset}`;
      let at = chunkAt.get(k);
      if (at === undefined) {
        at = chunks.length;
        chunks.push({ ...c, blobIndex });
        chunkAt.set(k, at);
      }
      return at;
    });
    for (const n of walk(root)) for (const r of n.chunks ?? []) r.chunk = toGlobal[r.chunk];
    return root;
  };

  const load = trace.start('load_tree_from_bootstrap');
  let tree: TreeNode | undefined;
  let parentImg: RafsImage | undefined;
  if (o.parentBootstrap) {
    const img = openImage(o.parentBootstrap);
    parentImg = img;
    checkSupported(img, o.parentBootstrap);
    const local = img.blobs.map((b) => {
      const entry = blobEntryFromInfo(b, 0, o.parentBootstrap!);
      byLoadedId.set(entry.blob_id, table.length);
      table.push({ entry, loadedId: entry.blob_id, from: o.parentBootstrap! });
      return table.length - 1;
    });
    tree = importTree(img, local);
  }

  let ref: Compat | undefined;
  const dictIds = new Set<string>();
  if (o.chunkDict) {
    const dictPath = parseChunkDictArg(o.chunkDict);
    const dict = openImage(dictPath);
    ref = compatOf(dict);
    for (const b of dict.blobs) dictIds.add(loadedBlobId(b, dictPath));
  }

  let first: RafsImage | undefined;
  let last: RafsImage | undefined;
  let chunkSize: number | undefined;
  let tarfs = false;
  for (const [i, src] of o.sources.entries()) {
    const img = o.opened?.get(src) ?? openImage(src);
    ref ??= compatOf(img);
    checkCompat(ref, img, src);
    tarfs = ref.tarfs;
    if (tarfs && o.parentBootstrap) throw new NydusError('USAGE', 'merging RAFS in TARFS mode conflicts with `--parent-bootstrap`');
    if (tarfs && o.chunkDict) throw new NydusError('USAGE', 'merging RAFS in TARFS mode conflicts with `--chunk-dict`');
    // Upstream does not check the parent; one of another chunk size would give a broken image.
    if (i === 0 && parentImg && parentImg.chunkSize !== ref.chunkSize) {
      throw inconsistent(o.parentBootstrap!, `chunk size 0x${parentImg.chunkSize.toString(16)}, expected 0x${ref.chunkSize.toString(16)}`);
    }
    checkSupported(img, src);
    first ??= img;
    last = img;

    let ownBlob = false;
    const local = img.blobs.map((b) => {
      if (chunkSize === undefined) chunkSize = b.chunkSize;
      else if (b.chunkSize !== chunkSize) {
        throw inconsistent(src, `can not merge bootstraps with inconsistent chunk size: blob ${b.blobId} has chunk size 0x${b.chunkSize.toString(16)}, expected 0x${chunkSize.toString(16)}`);
      }
      const entry = blobEntryFromInfo(b, 0, src);
      const loadedId = entry.blob_id;
      if (!dictIds.has(loadedId)) {
        // The layer's own blob: at most one, named as the blob is stored, not as it was built.
        if (ownBlob) throw new NydusError('SOURCE', 'invalid per layer bootstrap, having multiple associated data blobs', { path: src });
        ownBlob = true;
        const separate = (b.features & bt.FEATURE_SEPARATE) !== 0;
        // A tarfs layer's blob is the layer tar itself: its stored id is the one to keep (§4.3).
        entry.blob_id = o.originalBlobIds?.[i] ?? (tarfs ? b.blobId : blobIdFromFileName(src));
        const digest = o.blobDigests?.[i];
        if (digest !== undefined) {
          if (separate) entry.blob_meta_digest = Buffer.from(digest, 'hex');
          else entry.blob_id = digest.toLowerCase();
        }
        const size = o.blobSizes?.[i];
        if (size !== undefined) {
          if (separate) entry.blob_meta_size = size;
          else entry.compressed_size = size;
        }
        const tocDigest = o.blobTocDigests?.[i];
        if (tocDigest !== undefined) entry.blob_toc_digest = Buffer.from(tocDigest, 'hex');
        const tocSize = o.blobTocSizes?.[i];
        if (tocSize !== undefined) entry.blob_toc_size = tocSize;
      }
      let at = byLoadedId.get(loadedId);
      if (at === undefined) {
        at = table.length;
        byLoadedId.set(loadedId, at);
        table.push({ entry, loadedId, from: src });
      }
      return at;
    });

    const upper = importTree(img, local);
    // With no parent the bottom layer is the tree as it is: its markers are never applied.
    tree = tree ? applyLayer(tree, upper, 'oci') : upper;
  }
  load.end();
  const root = tree!;
  normalizeHardlinks(root);

  // Renumber blobs by first use in numbering order; unreferenced blobs drop out (§4.2 step 7).
  const used = new Map<string, number>();
  const finalBlobs: bt.BlobEntry[] = [];
  const finalFrom: string[] = [];
  const finalChunks: ChunkInfo[] = [];
  const chunkMoved = new Map<number, number>();
  for (const n of layoutOrder(root)) {
    if (n.linkTo || !n.chunks) continue;
    for (const r of n.chunks) {
      let at = chunkMoved.get(r.chunk);
      if (at === undefined) {
        const c = chunks[r.chunk];
        const { entry, from } = table[c.blobIndex];
        let blobIndex = used.get(entry.blob_id);
        if (blobIndex === undefined) {
          blobIndex = finalBlobs.length;
          used.set(entry.blob_id, blobIndex);
          finalBlobs.push({ ...entry, blob_index: blobIndex });
          finalFrom.push(from);
        }
        at = finalChunks.length;
        finalChunks.push({ ...c, blobIndex });
        chunkMoved.set(r.chunk, at);
      }
      r.chunk = at;
    }
  }
  const v5 = ref!.version === 5;
  // A v5 blob table holds ids of any length; v6 device slots hold 1 to 64 bytes.
  if (!v5) finalBlobs.forEach((b, i) => checkV6BlobId(b.blob_id, finalFrom[i]));

  const lastImg = last!;
  const compressor = compressorByName(lastImg.compressor)!;
  const digester = digesterByName(lastImg.digester)!;
  const explicitUidGid = (lastImg.flags & ext.FLAG_EXPLICIT_UID_GID) !== 0;
  // Any encrypted blob makes the result encrypted (upstream: any aes-128-xts source); each blob keeps its own key.
  const encrypted = finalBlobs.some((b) => b.cipher_algo !== 0);
  const flags = compressor.superFlag | digester.superFlag | (encrypted ? ext.FLAG_ENCRYPTION_AES128XTS : ext.FLAG_ENCRYPTION_NONE) | (tarfs ? ext.FLAG_TARFS_MODE : 0);
  const blockSize = tarfs ? 512 : 4096;

  const dump = trace.start('dump_bootstrap');
  // Upstream writes no prefetch table for an image without blobs.
  const patterns = finalBlobs.length > 0 ? prefetchPatterns(o.prefetch ?? [], warn) : [];
  const prefetchList = prefetchNodes(root, patterns);
  let bootstrap: Buffer;
  if (v5) {
    bootstrap = emitBootstrapV5({
      root, chunks: finalChunks, blobs: finalBlobs.map(v5Blob), flags: compressor.superFlag | digester.superFlag,
      chunkSize: chunkSize ?? ref!.chunkSize, explicitUidGid, digester, prefetch: prefetchList,
    });
  } else {
    const plan = planBootstrap(root, blockSize);
    bootstrap = emitBootstrap({
      plan, chunks: finalChunks, blobs: finalBlobs, flags, chunkSize: chunkSize ?? ref!.chunkSize,
      blockSize, explicitUidGid, prefetch: prefetchList.map((n) => plan.byNode.get(n)!.nid),
    });
  }

  const bootstrapPath = await writeBootstrap(bootstrap, o);
  dump.end();

  return {
    bootstrap: bootstrapPath,
    blobs: finalBlobs.map((b) => b.blob_id),
    fsVersion: String(first!.version),
    compressor: first!.compressor,
    trace,
  };
}
