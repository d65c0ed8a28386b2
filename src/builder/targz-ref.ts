// `create -t targz-ref` (blob.md §4.3, oci-and-converters.md §1.8, §2.3(c)): one pass over a
// .tar.gz (file, FIFO or stdin) builds a bootstrap whose chunks lie inside the gzip stream
// itself. No file data is written: the output "ref blob" holds only blob.meta (chunk-info v2
// entries flagged ZRAN, then the ZRAN contexts and their windows), the chunk digests, the
// inline bootstrap and the TOC. The data blob is the .tar.gz as it is, its id its sha256.
// `create -t estargz-ref` is this same build over an eStargz layer, as upstream's tarball
// builder does it: the layer is a multi-member gzip whose stargz.index.json entry the tar
// source skips and whose footer is an empty member; the blob id is the layer's sha256.
import { createHash } from 'node:crypto';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { tarSource } from '../sources/tar.js';
import { ZranIndexer, encodeContexts, type ZranChunk } from '../sources/zran.js';
import { TreeAssembler } from '../tree/assemble.js';
import { isRegNode, type ChunkRef } from '../tree/node.js';
import { planBootstrap } from '../bootstrap/plan.js';
import { emitBootstrap } from '../bootstrap/emit.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import * as bci from '../format/blob/chunk-info.js';
import * as metaHeader from '../format/blob/meta-header.js';
import * as toc from '../format/blob/toc.js';
import * as tarHeader from '../format/blob/tar-header.js';
import { CHUNK_COMPRESSED, type ChunkInfo } from '../read/model.js';
import type { Progress } from '../pipeline/stage.js';
import { blobFileIn, checkV6BlobId, newBlobEntry } from './blob-table.js';
import { Trace } from './trace.js';
import { DEFAULT_CHUNK_SIZE, failBuild, prefetchNodes, type CreateOptions, type CreateResult } from './create.js';
import { writeBootstrap } from './bootstrap-file.js';
import { sha256, tocSection } from './blob.js';
import { alignUp } from '../format/util.js';

const MAX_CHUNKS = 0xff_ffff;


/** The type asked for (targz-ref or estargz-ref, neither has aliases): the name messages use. */
function typeName(o: CreateOptions): string {
  return o.type === 'estargz-ref' ? 'estargz-ref' : 'targz-ref';
}

/** What upstream refuses or cannot mean for targz-ref, in one place; compressor and digester are forced (gzip, sha256). */
function checkOptions(o: CreateOptions): void {
  const type = typeName(o);
  // Upstream's main.rs refuses it for estargz-ref by name (targz-ref's refusal below is ours).
  if (type === 'estargz-ref' && o.blobCacheDir) throw new NydusError('USAGE', 'conversion type `estargz-ref` conflicts with `--blob-cache-dir`');
  const refused: Array<[string, unknown]> = [
    ['--blob-cache-dir', o.blobCacheDir],
    ['--chunk-dict', o.chunkDict],
    ['--parent-bootstrap', o.parentBootstrap],
  ];
  for (const [flag, given] of refused) if (given) throw new NydusError('UNSUPPORTED', `conversion type ${type} with ${flag} is not supported yet`);
  if (o.blobOut) throw new NydusError('USAGE', `${type} writes its ref blob to --blob or --blob-dir, not to a stream`);
  if (o.stages && o.stages.length > 0) throw new NydusError('USAGE', `pipeline stages (--plugin) do not apply to ${type}: it stores no chunk data`);
  if (o.blobId !== undefined) checkV6BlobId(o.blobId, '--blob-id');
}

/** The .tar.gz's chunks as the bootstrap and blob.meta describe them, at 4 KiB-aligned virtual offsets. */
class ChunkTable {
  readonly chunks: ChunkInfo[] = [];
  readonly zran: Array<{ ctx: number; offset: number }> = [];
  uncompressedEnd = 0;

  constructor(private readonly chunkSize: number) {}

  /** A file's chunks (chunk k holds its bytes from k × chunk size) and its refs to them. */
  add(list: ZranChunk[], name: string): ChunkRef[] {
    return list.map((z, k) => {
      if (this.chunks.length >= MAX_CHUNKS) throw new NydusError('SOURCE', `more than ${MAX_CHUNKS} chunks in one layer`, { path: name });
      const index = this.chunks.length;
      const fileOffset = k * this.chunkSize;
      this.chunks.push({
        blobIndex: 0, index, digest: z.digest, flags: CHUNK_COMPRESSED,
        compressedOffset: z.inOffset, compressedSize: z.inLen,
        uncompressedOffset: this.uncompressedEnd, uncompressedSize: z.size, fileOffset, crc32: 0,
      });
      this.zran.push({ ctx: z.ctxIndex, offset: z.ctxOffset });
      this.uncompressedEnd += alignUp(z.size, 4096);
      return { chunk: index, fileOffset };
    });
  }

  /** The chunk-info v2 array (blob.md §4.3): COMPRESSED | ZRAN, data = context index << 32 | offset in its output. */
  encode(): Buffer {
    const out = Buffer.alloc(this.chunks.length * bci.V2_SIZE);
    this.chunks.forEach((c, i) => {
      const z = this.zran[i];
      bci.encodeV2({
        compressed_offset: c.compressedOffset, compressed_size: c.compressedSize,
        uncompressed_offset: c.uncompressedOffset, uncompressed_size: c.uncompressedSize,
        flags: bci.V2_FLAG_COMPRESSED | bci.V2_FLAG_ZRAN, data: (BigInt(z.ctx) << 32n) | BigInt(z.offset),
      }, out, i * bci.V2_SIZE);
    });
    return out;
  }
}

export function refFeatures(inlineMeta: boolean, blobToc: boolean, chunkCount: number): number {
  let f = bt.FEATURE_ALIGNED | bt.FEATURE_CHUNK_INFO_V2 | bt.FEATURE_ZRAN | bt.FEATURE_SEPARATE | bt.FEATURE_CAP_TAR_TOC;
  if (inlineMeta) f |= bt.FEATURE_INLINED_FS_META;
  if (inlineMeta || blobToc) f |= bt.FEATURE_HAS_TAR_HEADER;
  if (blobToc) f |= bt.FEATURE_HAS_TOC;
  if (blobToc && chunkCount > 0) f |= bt.FEATURE_INLINED_CHUNK_DIGEST;
  return f >>> 0;
}

/** The ref blob, appended in order (a FIFO works); its hash leaves the digest array out (blob.md §5.3). */
class RefBlobWriter {
  private readonly hash = createHash('sha256');
  position = 0;
  readonly entries: toc.TocEntry[] = [];
  tocSize = 0;
  tocDigest: Buffer = Buffer.alloc(32);

  constructor(private readonly out: OutputFile, private readonly tarred: boolean) {}

  write(data: Buffer, hashed = true): void {
    if (hashed) this.hash.update(data);
    this.out.write(data);
    this.position += data.length;
  }

  section(name: string, size: number): void {
    if (this.tarred) this.write(tarHeader.encode(name, size));
  }

  entry(flags: number, name: string, raw: Buffer, at: number, stored: number): void {
    this.entries.push({ flags, name, uncompressed_digest: sha256(raw), compressed_offset: at, compressed_size: stored, uncompressed_size: raw.length });
  }

  finishToc(): void {
    const t = tocSection(this.entries);
    for (const part of t.parts) this.write(part);
    this.tocDigest = t.digest;
    this.tocSize = t.size;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

export async function createTargzRef(o: CreateOptions): Promise<CreateResult> {
  checkOptions(o);
  const trace = new Trace();
  const total = trace.start('total_build');
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const compressor = compressorByName('gzip')!;
  const digester = digesterByName('sha256')!;
  const zstd = compressorByName('zstd')!;
  const inlineMeta = !!o.blobInlineMeta;
  const blobToc = !!o.blobToc;
  const type = typeName(o);
  const name = typeof o.source === 'string' ? (o.source === '-' ? '<stdin>' : o.source) : `<${type === 'estargz-ref' ? 'eStargz' : 'tar.gz'} stream>`;

  const opened: OutputFile[] = [];
  const track = (f: OutputFile) => (opened.push(f), f);
  try {
    const blobFile = track(o.blob ? OutputFile.open(o.blob) : OutputFile.temp(o.blobDir!));
    const indexer = new ZranIndexer(chunkSize, name);
    const table = new ChunkTable(chunkSize);
    const assembler = new TreeAssembler();
    const progress: Progress = { files: 0, bytes: 0, chunks: 0, dedupChunks: 0, dedupBytes: 0 };
    const report = () => o.onProgress?.({ ...progress, bytes: indexer.inBytes, chunks: table.chunks.length });
    const timer = o.onProgress ? setInterval(report, 200) : undefined;

    const treeTimer = trace.start('build_tree');
    try {
      const source = tarSource(indexer.inflate(o.source as string | AsyncIterable<unknown>) as unknown as NodeJS.ReadableStream, { gzip: 'never', explicitUidGid: !o.repeatable, name });
      for await (const e of source) {
        const node = e.node;
        if (isRegNode(node)) {
          // A hardlink shares its target's chunks: the target's data lies before the link's header, so they are cut already.
          if (e.dataOffset !== undefined) indexer.addFile(e.dataOffset, node.size, (list) => (node.chunks = table.add(list, name)));
          else node.chunks = node.linkTo?.chunks ?? [];
        }
        assembler.attach(node, e.parent, e.replaces);
        progress.files++;
      }
    } finally {
      if (timer) clearInterval(timer);
    }
    if (!indexer.idle) throw new Error(`${type}: a file was not cut into chunks by the end of the stream`);
    await indexer.finish();
    report();
    treeTimer.end();
    const tarGzSize = indexer.inBytes;
    const digest = indexer.digest();
    if (o.blobId !== undefined && o.blobId !== digest) {
      throw new NydusError('SOURCE', `--blob-id ${o.blobId} is not the sha256 of the input (${digest}): ${type === 'estargz-ref' ? 'an estargz-ref blob is the eStargz layer' : 'a targz-ref blob is the .tar.gz'} itself`, { path: name });
    }
    const blobId = digest;
    const root = assembler.finish()!;
    const n = table.chunks.length;
    const features = refFeatures(inlineMeta, blobToc, n);

    // blob.meta: the chunk array then the contexts and windows, zstd when that is smaller.
    const dumpTimer = trace.start('dump_blob');
    const out = new RefBlobWriter(blobFile, inlineMeta || blobToc);
    let meta: { ciOffset: number; ciCompressedSize: number; ciUncompressedSize: number; ciCompressor: number; header: Buffer; data: Buffer } =
      { ciOffset: 0, ciCompressedSize: 0, ciUncompressedSize: 0, ciCompressor: 0, header: Buffer.alloc(0), data: Buffer.alloc(0) };
    if (n > 0) {
      const chunkArray = table.encode();
      const data = encodeContexts(indexer.contexts, chunkArray);
      const zranSize = data.length - chunkArray.length;
      // The windows live on in `data` only.
      for (const c of indexer.contexts) c.dict = Buffer.alloc(0);
      const z = Buffer.from(zstd.compress(data));
      const stored = z.length < data.length ? z : data;
      const algo = z.length < data.length ? zstd : compressorByName('none')!;
      const ciOffset = out.position;
      const header = metaHeader.encode({
        s_features: features, s_ci_compressor: algo.id, s_ci_entries: n, s_ci_offset: ciOffset,
        s_ci_compressed_size: stored.length, s_ci_uncompressed_size: data.length,
        s_ci_zran_offset: chunkArray.length, s_ci_zran_size: zranSize, s_ci_zran_count: indexer.contexts.length,
      });
      out.write(stored);
      out.write(header);
      out.section(toc.NAME_BLOB_META, stored.length + metaHeader.SIZE);
      out.entry(algo.tocFlag, toc.NAME_BLOB_META, data, ciOffset, stored.length);
      out.entry(0x1, toc.NAME_BLOB_META_HEADER, header, ciOffset + stored.length, metaHeader.SIZE);
      meta = { ciOffset, ciCompressedSize: stored.length, ciUncompressedSize: data.length, ciCompressor: algo.id, header, data };
      if (blobToc) {
        const digests = Buffer.concat(table.chunks.map((c) => c.digest));
        const at = out.position;
        out.write(digests, false);
        out.section(toc.NAME_BLOB_DIGEST, digests.length);
        out.entry(0x1, toc.NAME_BLOB_DIGEST, digests, at, digests.length);
      }
    }
    dumpTimer.end();

    const entryFor = (withToc: boolean, metaDigest: Buffer, metaSize: number): bt.BlobEntry => newBlobEntry({
      blob_id: blobId, blob_index: 0, chunk_size: chunkSize, chunk_count: n,
      compression_algo: compressor.id, digest_algo: digester.id, features,
      compressed_size: tarGzSize, uncompressed_size: table.uncompressedEnd,
      ...(withToc ? { blob_toc_size: out.tocSize, blob_toc_digest: out.tocDigest } : {}),
      blob_meta_digest: metaDigest, blob_meta_size: metaSize,
    }, meta);
    const flags = compressor.superFlag | digester.superFlag | ext.FLAG_ENCRYPTION_NONE;
    const planTimer = trace.start('build_bootstrap');
    const plan = planBootstrap(root, 4096);
    planTimer.end();
    const prefetch = prefetchNodes(root, o.prefetch ?? []).map((p) => plan.byNode.get(p)!.nid);
    const bootstrapFor = (blobs: bt.BlobEntry[]) => emitBootstrap({ plan, chunks: table.chunks, chunkSize, blockSize: 4096, explicitUidGid: !o.repeatable, prefetch, flags, blobs });

    const bootTimer = trace.start('dump_bootstrap');
    let bootstrap: Buffer;
    if (inlineMeta) {
      // The inlined bootstrap knows the data blob (the .tar.gz) but not the ref blob it sits in.
      bootstrap = bootstrapFor(n > 0 ? [entryFor(false, Buffer.alloc(32), 0)] : []);
      const at = out.position;
      const z = blobToc ? Buffer.from(zstd.compress(bootstrap)) : bootstrap;
      const stored = z.length < bootstrap.length ? z : bootstrap;
      out.write(stored);
      out.section(toc.NAME_IMAGE_BOOT, stored.length);
      out.entry(stored === bootstrap ? 0x1 : zstd.tocFlag, toc.NAME_IMAGE_BOOT, bootstrap, at, stored.length);
    }
    if (blobToc) out.finishToc();
    const refHash = out.digest();
    const refSize = out.position;
    if (!inlineMeta) bootstrap = bootstrapFor(n > 0 ? [entryFor(blobToc, Buffer.from(refHash, 'hex'), refSize)] : []);
    const blobPath = o.blob ?? blobFileIn(o.blobDir!, refHash);
    await blobFile.commit(blobPath, !o.blob);
    const bootstrapPath = o.bootstrap || (!inlineMeta && o.blobDir) ? await writeBootstrap(bootstrap!, o) : '';
    bootTimer.end();

    total.end();
    trace.event('blob_uncompressed_size', table.uncompressedEnd);
    trace.event('euid', String(process.geteuid?.() ?? 0));
    trace.event('egid', String(process.getegid?.() ?? 0));
    const result: CreateResult = {
      bootstrap: bootstrapPath,
      blobs: n > 0 ? [blobId] : [],
      blobPath,
      blobSize: tarGzSize,
      compressor: compressor.name,
      fsVersion: '6',
      trace,
      ...(inlineMeta ? { inlineBootstrap: bootstrap! } : {}),
    };
    // nydusd's `<id>.blob.meta` (table padded to 4 KiB, then the header) is made only when asked
    // for (the converter's bootstrap layer): a build from the command line never pays for the copy.
    if (n > 0) {
      const { data, header } = meta;
      let made: Buffer | undefined;
      Object.defineProperty(result, 'blobMeta', {
        enumerable: true,
        get: () => (made ??= Buffer.concat([data, Buffer.alloc(Math.ceil(data.length / 4096) * 4096 - data.length), header])),
      });
    }
    return result;
  } catch (e) {
    return failBuild(opened, e);
  }
}
