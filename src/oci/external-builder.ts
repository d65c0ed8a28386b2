// `nydusify convert --nydus-image PATH`: the layers are built by that program with the argv the
// converter (nydus-snapshotter's tool.Pack and tool.Merge) gives it (spec oci-and-converters.md
// §2.3-2.4), so our convert drives upstream's builder as well as ours. Each layer gets a fresh
// `nydus-converter-XXXX` directory with two FIFOs: the layer's uncompressed tar goes into
// blob.targz, the blob comes out of blob.rafs and streams into the upload; nothing of the layer
// lands on disk. The blob's inline bootstrap and blob.meta are read back from its tail (its TOC),
// kept in memory as the blob passes, since the blob itself is not stored.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants as C, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { compressorByTocFlag, type CompressorName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import * as tarHeader from '../format/blob/tar-header.js';
import * as toc from '../format/blob/toc.js';
import { checkLimit, LIMITS } from '../format/limits.js';

export interface PackOptions {
  fsVersion: number;
  compressor: CompressorName;
  chunkSize: number;
  /** `--batch-size`, passed only when not 0 (as the snapshotter's converter does). */
  batchSize?: number;
  /** `--aligned-chunk`, after --compressor as the converter puts it (for v6 too: the builder ignores it there). */
  alignedChunk?: boolean;
  prefetch: string[];
  /** A bootstrap file: `--chunk-dict bootstrap=PATH`. */
  chunkDict?: string;
}

export interface Packed {
  inlineBootstrap: Buffer;
  blobMeta?: Buffer;
}

/** The last `max` bytes (at least) of what passes through, kept as the chunks that hold them. */
class TailKeeper extends Transform {
  private chunks: Buffer[] = [];
  private held = 0;
  total = 0;

  constructor(private readonly max: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.chunks.push(chunk);
    this.held += chunk.length;
    this.total += chunk.length;
    while (this.chunks.length > 1 && this.held - this.chunks[0]!.length >= this.max) this.held -= this.chunks.shift()!.length;
    cb(null, chunk);
  }

  /** The kept tail and the blob offset it starts at. */
  tail(): { data: Buffer; start: number } {
    const data = Buffer.concat(this.chunks);
    return { data, start: this.total - data.length };
  }
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** An external `nydus-image`: feature check once, then `create` per layer and one `merge` per image. */
export class ExternalBuilder {
  private checked?: Promise<void>;

  constructor(readonly bin: string) {}

  /** Upstream's feature detection: `create -h` must offer `--type tar-rafs` (the directory fallback would put layers on disk). */
  check(): Promise<void> {
    this.checked ??= (async () => {
      const r = spawnSync(this.bin, ['create', '-h'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 4 << 20 });
      if (r.error) throw new NydusError('USAGE', `--nydus-image ${this.bin}: cannot run it: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
      const help = `${r.stdout}${r.stderr}`;
      if (!help.includes('--type tar-rafs') && !(help.includes('--type') && help.includes('tar-rafs'))) {
        throw new NydusError('UNSUPPORTED', `--nydus-image ${this.bin}: its "create -h" offers no --type tar-rafs; the directory fallback (layers unpacked on disk) is not supported`);
      }
    })();
    return this.checked;
  }

  /** The argv of spec §2.3 (a), tar2rafs. */
  static createArgs(w: string, o: PackOptions): string[] {
    return [
      'create', '--log-level', 'warn', '--prefetch-policy', 'fs',
      '--blob', path.join(w, 'blob.rafs'),
      '--whiteout-spec', 'none', '--fs-version', String(o.fsVersion),
      '--type', 'tar-rafs', '--blob-inline-meta', ...(o.fsVersion === 6 ? ['--features', 'blob-toc'] : []),
      ...(o.chunkDict !== undefined ? ['--chunk-dict', `bootstrap=${o.chunkDict}`] : []),
      '--compressor', o.compressor, ...(o.alignedChunk ? ['--aligned-chunk'] : []), '--chunk-size', hex(o.chunkSize),
      ...(o.batchSize ? ['--batch-size', hex(o.batchSize)] : []),
      path.join(w, 'blob.targz'),
    ];
  }

  /** The argv of spec §2.4. */
  static mergeArgs(w: string, sources: string[], chunkDict?: string): string[] {
    return [
      'merge', '--log-level', 'warn', '--prefetch-policy', 'fs',
      '--output-json', path.join(w, 'merge-output.json'), '--bootstrap', path.join(w, 'bootstrap'),
      ...(chunkDict !== undefined ? ['--chunk-dict', `bootstrap=${chunkDict}`] : []),
      ...sources,
    ];
  }

  /**
   * Builds one layer: `tar` (uncompressed) → the builder → `out` (the blob, as made). Resolves
   * once the builder exited 0 and the blob was read to its end; `out` is ended then.
   */
  async pack(workDir: string, tar: Readable, out: Writable, o: PackOptions, where: string): Promise<Packed> {
    await this.check();
    let w: string;
    try {
      w = await mkdtemp(path.join(workDir, 'nydus-converter-'));
    } catch (e) {
      throw fsError('OUTPUT', workDir, e);
    }
    const src = path.join(w, 'blob.targz');
    const blob = path.join(w, 'blob.rafs');
    try {
      for (const f of [src, blob]) {
        const r = spawnSync('mkfifo', ['-m', '600', f]);
        if (r.status !== 0) throw new NydusError('OUTPUT', `cannot make the FIFO ${f}: ${r.error?.message ?? String(r.stderr).trim()}`);
      }
      // The reader end, non-blocking: epoll reports nothing until the builder opens it to write.
      const blobSock = new net.Socket({ fd: openSync(blob, C.O_RDONLY | C.O_NONBLOCK), readable: true, writable: false });
      const tail = new TailKeeper(LIMITS.EXTERNAL_BLOB_TAIL_MAX.value);
      const child = spawn(this.bin, ExternalBuilder.createArgs(w, o), { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4096)));
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(o.prefetch.map((p) => `${p}\n`).join(''));
      const exited = new Promise<number | string>((resolve) => {
        child.once('error', (e) => resolve(`cannot run it: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
        child.once('close', (code, sig) => resolve(code ?? `killed by ${sig}`));
      });
      let exitedNow = false;
      void exited.then(() => (exitedNow = true));

      // The writer end opens once the builder opened its source (ENXIO until then).
      let feedSock: net.Socket | undefined;
      const feed = (async () => {
        let fd: number | undefined;
        while (fd === undefined) {
          try {
            fd = openSync(src, C.O_WRONLY | C.O_NONBLOCK);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
            if (exitedNow) return;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
        const sock = new net.Socket({ fd, readable: false, writable: true });
        feedSock = sock;
        await new Promise<void>((resolve, reject) => {
          tar.once('error', (e) => {
            sock.destroy();
            child.kill('SIGKILL');
            reject(e);
          });
          // A builder that stops reading (it failed) closes the pipe: its exit status says why.
          sock.once('error', () => resolve());
          sock.once('close', () => resolve());
          tar.pipe(sock);
        });
      })();
      // The upload failing (the target refused it) stops the builder, which would block on its output.
      out.once('error', () => child.kill('SIGKILL'));
      const drain = new Promise<void>((resolve, reject) => {
        blobSock.once('error', reject);
        out.once('error', reject);
        blobSock.pipe(tail).pipe(out);
        tail.once('end', resolve);
      });
      drain.catch(() => undefined);
      const code = await exited;
      // The builder is gone: what it did not read is not fed (nor pulled) any longer, and a builder
      // that never opened its blob (so the reader would wait for a writer forever) is made to look
      // like one that opened and closed it: the reader sees the end of what was written.
      if (feedSock && !feedSock.writableFinished) feedSock.destroy();
      if (!tar.readableEnded) tar.destroy();
      try {
        closeSync(openSync(blob, C.O_WRONLY | C.O_NONBLOCK));
      } catch {
        // ENXIO: the reader has seen the end already and closed.
      }
      let fed: unknown;
      await feed.catch((e: unknown) => (fed = e));
      if (fed) {
        blobSock.destroy();
        throw fed;
      }
      if (code !== 0) {
        blobSock.destroy();
        const last = stderr.trim().split('\n').filter(Boolean).at(-1) ?? '';
        throw new NydusError('SOURCE', `${where}: ${this.bin} create ${typeof code === 'number' ? `exited with status ${code}` : code}${last ? `: ${last}` : ''}`);
      }
      await drain;
      return readTail(tail.tail(), tail.total, `${where}: the blob ${this.bin} made`);
    } finally {
      await rm(w, { recursive: true, force: true });
    }
  }

  /** `merge` of the per-layer bootstraps (lower → upper) into `<w>/bootstrap`; returns merge-output.json's blobs. */
  async merge(w: string, sources: string[], prefetch: string[], chunkDict?: string): Promise<{ bootstrap: string; blobs: string[] }> {
    await this.check();
    await runBuilder(this.bin, ExternalBuilder.mergeArgs(w, sources, chunkDict), prefetch.map((p) => `${p}\n`).join(''));
    return { bootstrap: path.join(w, 'bootstrap'), blobs: await readBuilderBlobs(path.join(w, 'merge-output.json'), `${this.bin} merge`) };
  }
}

/** Runs an external builder with `stdin` as its input; its last stderr line goes into the error when it fails. */
export async function runBuilder(bin: string, args: string[], stdin = ''): Promise<void> {
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4096)));
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(stdin);
  const code = await new Promise<number | string>((resolve) => {
    child.once('error', (e) => resolve(`cannot run it: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    child.once('close', (c, sig) => resolve(c ?? `killed by ${sig}`));
  });
  if (code !== 0) {
    const last = stderr.trim().split('\n').filter(Boolean).at(-1) ?? '';
    throw new NydusError('SOURCE', `${bin} ${args[0]} ${typeof code === 'number' ? `exited with status ${code}` : code}${last ? `: ${last}` : ''}`);
  }
}

/** The "blobs" of an output JSON an external builder wrote (`what`: "BIN create" or "BIN merge"). */
export async function readBuilderBlobs(file: string, what: string): Promise<string[]> {
  let blobs: unknown;
  try {
    blobs = (JSON.parse(await readFile(file, 'utf8')) as { blobs?: unknown }).blobs ?? [];
  } catch (e) {
    throw new NydusError('SOURCE', `${what}: ${file} is not readable JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray(blobs) || !blobs.every((b) => typeof b === 'string' && /^[0-9a-f]{64}$/.test(b))) {
    throw new NydusError('SOURCE', `${what}: ${file}: "blobs" is not a list of 64-hex blob ids`);
  }
  return blobs as string[];
}

/** The argv builders, under one name for callers and tests. */
export const ConvertArgs = { create: ExternalBuilder.createArgs, merge: ExternalBuilder.mergeArgs };

/** One TOC section out of the kept tail, decompressed and checked against its size. */
function section(tail: { data: Buffer; start: number }, e: toc.TocEntry, where: string): Buffer {
  const what = `${where}: toc entry ${e.name}`;
  checkLimit('BOOTSTRAP_MAX', `${what} uncompressed_size`, e.uncompressed_size);
  const from = e.compressed_offset - tail.start;
  if (from < 0) throw new NydusError('UNSUPPORTED', `${what} starts ${-from} bytes before the last ${tail.data.length} bytes kept (EXTERNAL_BLOB_TAIL_MAX)`);
  if (from + e.compressed_size > tail.data.length) throw new NydusError('FORMAT', `${what} lies past the end of the blob`);
  const stored = tail.data.subarray(from, from + e.compressed_size);
  const c = compressorByTocFlag(e.flags);
  if (!c) throw new NydusError('FORMAT', `${what} has unknown compression flags 0x${e.flags.toString(16)}`);
  let raw: Buffer;
  try {
    raw = c.name === 'none' ? Buffer.from(stored) : Buffer.from(c.decompress(stored, e.uncompressed_size));
  } catch (err) {
    throw new NydusError('FORMAT', `${what} does not decompress with ${c.name}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw.length !== e.uncompressed_size) throw new NydusError('FORMAT', `${what} decompressed to ${raw.length} bytes, not ${e.uncompressed_size}`);
  return raw;
}

/** A RAFS v5 blob has no TOC: when its last section is image.boot, that (stored raw) is the bootstrap. */
function rawBootstrapAtEnd(data: Buffer, where: string): Buffer | undefined {
  let h: ReturnType<typeof tarHeader.decode>;
  try {
    h = tarHeader.decode(data, data.length - tarHeader.SIZE);
  } catch {
    return undefined;
  }
  if (h.name !== toc.NAME_IMAGE_BOOT) return undefined;
  checkLimit('BOOTSTRAP_MAX', `${where}: ${toc.NAME_IMAGE_BOOT} size`, h.size);
  const end = data.length - tarHeader.SIZE;
  if (h.size > end) throw new NydusError('UNSUPPORTED', `${where}: ${toc.NAME_IMAGE_BOOT} (${h.size} bytes) starts before the last ${data.length} bytes kept (EXTERNAL_BLOB_TAIL_MAX)`);
  return Buffer.from(data.subarray(end - h.size, end));
}

/** image.boot, and blob.meta + blob.meta.header as nydusd's `<id>.blob.meta`, from the blob's TOC (v6), or the raw image.boot at the end (v5). */
export function readTail(tail: { data: Buffer; start: number }, total: number, where: string): Packed {
  const { data } = tail;
  if (data.length < tarHeader.SIZE) throw new NydusError('FORMAT', `${where} (${total} bytes) has no TOC`);
  const inlineV5 = rawBootstrapAtEnd(data, where);
  if (inlineV5) return { inlineBootstrap: inlineV5 };
  let entries: toc.TocEntry[];
  try {
    const h = tarHeader.decode(data, data.length - tarHeader.SIZE);
    if (h.name !== toc.NAME_TOC || h.size > data.length - tarHeader.SIZE) throw new Error(`the last section is ${JSON.stringify(h.name)}`);
    entries = toc.decodeAll(data.subarray(data.length - tarHeader.SIZE - h.size, data.length - tarHeader.SIZE));
  } catch (e) {
    throw new NydusError('FORMAT', `${where} ends with no valid ${toc.NAME_TOC}: ${(e as Error).message.split('\n')[0]}`);
  }
  const find = (name: string) => entries.find((e) => e.name === name);
  const boot = find(toc.NAME_IMAGE_BOOT);
  if (!boot) throw new NydusError('FORMAT', `${where}: its TOC has no ${toc.NAME_IMAGE_BOOT}`);
  const inlineBootstrap = section(tail, boot, where);
  const meta = find(toc.NAME_BLOB_META);
  const header = find(toc.NAME_BLOB_META_HEADER);
  if (!meta || !header) return { inlineBootstrap };
  const table = section(tail, meta, where);
  if (table.length === 0) return { inlineBootstrap };
  const head = section(tail, header, where);
  return { inlineBootstrap, blobMeta: Buffer.concat([table, Buffer.alloc(Math.ceil(table.length / 4096) * 4096 - table.length), head]) };
}
