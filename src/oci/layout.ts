// OCI image layouts (image-spec image-layout.md): `oci-layout`, `index.json` and
// `blobs/sha256/<hex>`, as a directory or as a plain tar of one, read as an ImageSource and
// written as an ImageSink.
//
// Reading a tar: one pass over its headers (512 bytes a member, data skipped) finds the members
// by name; blobs are then streamed from their byte ranges, several at once, never extracted. Only
// the names `oci-layout`, `index.json` and `blobs/sha256/<64 hex>` are looked up, so no path
// from the archive is ever opened or created; every blob is checked against its descriptor's
// size and digest as it streams; JSON is bounded before it is read.
// Writing a tar: members one after another into a temporary file beside the target, each blob's
// header written after its data (its size and digest are known only at its end), `index.json`
// last, then renamed: a failed run leaves nothing under the target's name.
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { NydusError, fsError } from '../errors.js';
import { LIMITS, limitError, type LimitName } from '../format/limits.js';
import { BLOCK, decode, decodePax, encode, isZeroBlock, padding } from '../format/tar/header.js';
import { OutputFile, writeFileAtomic } from '../io/atomic.js';
import { DigestingStream, isDigest, quote, sha256Of, type Digest } from './digest.js';
import { parseJson, parseManifestOrIndex, validateConfig, validateIndex, type Descriptor, type Fetched, type ImageConfig, type ImageIndex } from './manifest.js';
import { MEDIA } from './media-types.js';
import type { BlobBody, PushBlobOptions, PushBlobResult } from './registry.js';
import type { ImageSink, ImageSource } from './store.js';

export const LAYOUT_FILE = 'oci-layout';
export const INDEX_FILE = 'index.json';
export const LAYOUT_VERSION = '1.0.0';
/** The tag of an index.json entry (image-spec annotations.md). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** The full image name containerd's export writes beside the tag (upstream's copy and convert export through it). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';

const BLOB_NAME = /^blobs\/sha256\/([0-9a-f]{64})$/;
const blobName = (digest: Digest) => `blobs/sha256/${digest.slice(7)}`;

/** Where a tar member's data sits, or why it cannot be read as a file. */
interface Member {
  offset: number;
  size: number;
  /** Set when the member is not a regular file (a link, a directory...). */
  not?: string;
}

/** The bytes of a layout, by name: a directory's files or a tar's members. */
interface LayoutFiles {
  /** Size of the file, or undefined when there is none (throws when it is not a regular file). */
  sizeOf(name: string): Promise<number | undefined>;
  /** The raw bytes [0, size) of a file that sizeOf found. */
  open(name: string, size: number): Promise<Readable>;
  close(): Promise<void>;
}

const TYPE_NAME: Record<string, string> = { '1': 'a hard link', '2': 'a symbolic link', '3': 'a character device', '4': 'a block device', '5': 'a directory', '6': 'a FIFO', S: 'a sparse file' };

/** Members of a plain tar file, found by one pass over its headers. */
class TarFiles implements LayoutFiles {
  private constructor(private readonly where: string, private readonly fh: FileHandle, private readonly members: Map<string, Member>) {}

  static async scan(file: string, fh: FileHandle, size: number): Promise<TarFiles> {
    const members = new Map<string, Member>();
    const block = Buffer.alloc(BLOCK);
    const readAt = async (buf: Buffer, len: number, at: number) => {
      const { bytesRead } = await fh.read(buf, 0, len, at);
      if (bytesRead !== len) throw new NydusError('SOURCE', `${file}: the archive ends inside the member at byte ${at}`);
    };
    let longName: string | undefined;
    let pax: Map<string, string> | undefined;
    for (let off = 0; off < size; ) {
      if (off + BLOCK > size) throw new NydusError('SOURCE', `${file}: the archive ends inside a tar header at byte ${off}`);
      await readAt(block, BLOCK, off);
      // End of archive: what follows the first zero block is not read, as tar readers do.
      if (isZeroBlock(block)) break;
      let h;
      try {
        h = decode(block);
      } catch (e) {
        throw new NydusError('SOURCE', `${file}: tar header at byte ${off}: ${(e as Error).message}`);
      }
      const type = String.fromCharCode(h.typeflag === 0 ? 0x30 : h.typeflag);
      const extension = type === 'x' || type === 'L' || type === 'g' || type === 'K';
      let memberSize = h.size;
      // A PAX size is the next real member's, never another extension header's.
      const paxSize = extension ? undefined : pax?.get('size');
      if (paxSize !== undefined) {
        if (!/^[0-9]{1,16}$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw new NydusError('SOURCE', `${file}: tar header at byte ${off}: PAX size ${quote(paxSize)} is not a size`);
        memberSize = Number(paxSize);
      }
      const data = off + BLOCK;
      if (data + memberSize > size) throw new NydusError('SOURCE', `${file}: member at byte ${off} claims ${memberSize} bytes but the archive ends at byte ${size}`);
      const next = data + memberSize + padding(memberSize);
      if (type === 'x' || type === 'L') {
        // Extension data is held in memory: bounded like any long name.
        if (memberSize > LIMITS.PATH_MAX.value) throw limitError('PATH_MAX', `${file}: ${type === 'x' ? 'PAX' : 'GNU long-name'} header at byte ${off}`, memberSize);
        const ext = Buffer.alloc(memberSize);
        await readAt(ext, memberSize, data);
        if (type === 'L') {
          const nul = ext.indexOf(0);
          longName = ext.toString('utf8', 0, nul < 0 ? ext.length : nul);
        } else {
          let records;
          try {
            records = decodePax(ext);
          } catch (e) {
            throw new NydusError('SOURCE', `${file}: PAX header at byte ${off}: ${(e as Error).message}`);
          }
          pax = new Map(records.map((r) => [r.key.toString('utf8'), r.value.toString('utf8')]));
        }
        off = next;
        continue;
      }
      if (type === 'g' || type === 'K') {
        off = next;
        continue;
      }
      let name = pax?.get('path') ?? longName ?? h.name.toString('utf8');
      pax = undefined;
      longName = undefined;
      while (name.startsWith('./')) name = name.slice(2);
      if (name === LAYOUT_FILE || name === INDEX_FILE || BLOB_NAME.test(name)) {
        if (members.has(name)) throw new NydusError('SOURCE', `${file}: member ${quote(name)} appears twice`);
        const regular = type === '0' || type === '7';
        members.set(name, { offset: data, size: memberSize, ...(regular ? {} : { not: TYPE_NAME[type] ?? `of tar type ${quote(type)}` }) });
      }
      off = next;
    }
    return new TarFiles(file, fh, members);
  }

  async sizeOf(name: string): Promise<number | undefined> {
    const m = this.members.get(name);
    if (m?.not !== undefined) throw new NydusError('SOURCE', `${this.where}: member ${name} is ${m.not}, not a regular file`);
    return m?.size;
  }

  async open(name: string, size: number): Promise<Readable> {
    return rangeOf(this.fh, this.members.get(name)!.offset, size);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Bytes [offset, offset + size) of an open file, read by position (so several ranges of one file can stream at once). */
function rangeOf(fh: FileHandle, offset: number, size: number): Readable {
  const piece = 1 << 20;
  return Readable.from((async function* () {
    for (let done = 0; done < size; ) {
      const buf = Buffer.allocUnsafe(Math.min(piece, size - done));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset + done);
      // A file that shrank: the digest check downstream reports the short blob.
      if (bytesRead === 0) return;
      done += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  })(), { objectMode: false });
}

/** Files of a layout directory; names are only ever the fixed ones or built from a validated digest. */
class DirFiles implements LayoutFiles {
  constructor(private readonly root: string) {}

  /** Opens without following into a FIFO's wait, and refuses what is not a regular file. */
  private async openFile(name: string): Promise<{ fh: FileHandle; st: Stats } | undefined> {
    const file = path.join(this.root, name);
    let fh: FileHandle;
    try {
      fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fsError('SOURCE', file, e);
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new NydusError('SOURCE', `${file}: not a regular file`);
    }
    return { fh, st };
  }

  async sizeOf(name: string): Promise<number | undefined> {
    const f = await this.openFile(name);
    if (!f) return undefined;
    await f.fh.close();
    return f.st.size;
  }

  async open(name: string, size: number): Promise<Readable> {
    const f = await this.openFile(name);
    if (!f) throw new NydusError('SOURCE', `${path.join(this.root, name)}: no such file or directory`);
    const r = rangeOf(f.fh, 0, size);
    r.once('close', () => void f.fh.close().catch(() => undefined));
    return r;
  }

  async close(): Promise<void> {}
}

/** First bytes of archives that are compressed tars, which random access cannot read. */
const COMPRESSED: Array<[magic: Buffer, name: string, tool: string]> = [
  [Buffer.from([0x1f, 0x8b]), 'gzip', 'gunzip'],
  [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd', 'zstd -d'],
];

/** An OCI image layout read as an image source: a directory, or a plain tar of one. */
export class LayoutSource implements ImageSource {
  /** Media types of the descriptors seen so far, to tell what a fetched document is. */
  private readonly types = new Map<Digest, string>();

  private constructor(readonly name: string, private readonly files: LayoutFiles, readonly index: ImageIndex) {
    for (const d of index.manifests) this.types.set(d.digest, d.mediaType);
  }

  /** Opens `file` (a directory or a tar archive) and reads its oci-layout and index.json. */
  static async open(file: string): Promise<LayoutSource> {
    let st: Stats;
    try {
      st = await stat(file);
    } catch (e) {
      throw fsError('SOURCE', file, e);
    }
    let files: LayoutFiles;
    if (st.isDirectory()) files = new DirFiles(file);
    else if (st.isFile()) {
      let fh: FileHandle;
      try {
        fh = await open(file, 'r');
      } catch (e) {
        throw fsError('SOURCE', file, e);
      }
      try {
        const head = Buffer.alloc(4);
        await fh.read(head, 0, 4, 0);
        for (const [magic, kind, tool] of COMPRESSED) {
          if (head.subarray(0, magic.length).equals(magic)) {
            throw new NydusError('UNSUPPORTED', `${file}: a ${kind}-compressed archive; blobs are read in place, so give the plain tar (${tool} it first)`);
          }
        }
        files = await TarFiles.scan(file, fh, st.size);
      } catch (e) {
        await fh.close();
        throw e;
      }
    } else throw new NydusError('SOURCE', `${file}: not a directory or a regular file (an archive is read in place, not as a stream)`);
    try {
      const layout = await readSmall(files, file, LAYOUT_FILE, 'MANIFEST_MAX');
      if (layout === undefined) throw new NydusError('SOURCE', `${file}: not an OCI image layout (no ${LAYOUT_FILE})`);
      const doc = parseJson(layout, `${file}: ${LAYOUT_FILE}`, 'MANIFEST_MAX') as { imageLayoutVersion?: unknown } | null;
      const version = typeof doc === 'object' && doc !== null ? doc.imageLayoutVersion : undefined;
      if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
        throw new NydusError('SOURCE', `${file}: ${LAYOUT_FILE}: imageLayoutVersion ${quote(String(version))} is not 1.x.y`);
      }
      const bytes = await readSmall(files, file, INDEX_FILE, 'MANIFEST_MAX');
      if (bytes === undefined) throw new NydusError('SOURCE', `${file}: not an OCI image layout (no ${INDEX_FILE})`);
      const where = `${file}: ${INDEX_FILE}`;
      return new LayoutSource(file, files, validateIndex(parseJson(bytes, where, 'MANIFEST_MAX'), where));
    } catch (e) {
      await files.close();
      throw e;
    }
  }

  /** The one image of the layout (as upstream's import, which refuses an archive of several). */
  async top(): Promise<Fetched> {
    const all = this.index.manifests;
    if (all.length !== 1) {
      throw new NydusError('SOURCE', `${this.name}: ${INDEX_FILE} lists ${all.length} images; one is needed`);
    }
    const d = all[0]!;
    const f = await this.getManifest(d.digest);
    if (f.bytes.length !== d.size) throw new NydusError('SOURCE', `${this.name}: ${INDEX_FILE} says ${d.digest} has ${d.size} bytes, it has ${f.bytes.length}`);
    return f;
  }

  async getManifest(digest: Digest): Promise<Fetched> {
    const bytes = await this.readBlob(digest, undefined, 'MANIFEST_MAX');
    const f = parseManifestOrIndex(bytes, this.types.get(digest), digest, `${this.name}: ${blobName(digest)}`);
    if (f.kind === 'index') for (const d of f.index.manifests) this.types.set(d.digest, d.mediaType);
    return f;
  }

  async getBlob(digest: Digest, size: number): Promise<Readable> {
    const name = this.checkedName(digest);
    const have = await this.files.sizeOf(name);
    if (have === undefined) throw new NydusError('SOURCE', `${this.name}: blob ${digest} is not in the layout`);
    if (have !== size) throw new NydusError('SOURCE', `${this.name}: blob ${digest} has ${have} bytes where its descriptor says ${size}`);
    const raw = await this.files.open(name, size);
    const verify = new DigestingStream({
      expect: digest, size,
      mismatch: (why) => new NydusError('SOURCE', `${this.name}: blob ${digest}: ${why}`),
    });
    raw.on('error', (e) => verify.destroy(e instanceof NydusError ? e : fsError('SOURCE', this.name, e)));
    verify.on('close', () => raw.destroy());
    return raw.pipe(verify);
  }

  async getConfig(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<{ config: ImageConfig; bytes: Buffer }> {
    const bytes = await this.readBlob(desc.digest, desc.size, 'IMAGE_CONFIG_MAX');
    const where = `${this.name}: config ${desc.digest}`;
    return { config: validateConfig(parseJson(bytes, where, 'IMAGE_CONFIG_MAX'), where), bytes };
  }

  close(): Promise<void> {
    return this.files.close();
  }

  /** A whole small blob, verified; its size is what the layout holds (checked against `size` when known). */
  private async readBlob(digest: Digest, size: number | undefined, limit: LimitName): Promise<Buffer> {
    const name = this.checkedName(digest);
    const have = await this.files.sizeOf(name);
    if (have === undefined) throw new NydusError('SOURCE', `${this.name}: blob ${digest} is not in the layout`);
    if (have > LIMITS[limit].value) throw limitError(limit, `${this.name}: ${name}`, have);
    const parts: Buffer[] = [];
    for await (const c of await this.getBlob(digest, size ?? have)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  private checkedName(digest: Digest): string {
    if (!isDigest(digest)) throw new NydusError('SOURCE', `${this.name}: ${quote(String(digest))} is not a sha256 digest`);
    return blobName(digest);
  }
}

async function readSmall(files: LayoutFiles, where: string, name: string, limit: LimitName): Promise<Buffer | undefined> {
  const size = await files.sizeOf(name);
  if (size === undefined) return undefined;
  if (size > LIMITS[limit].value) throw limitError(limit, `${where}: ${name}`, size);
  const parts: Buffer[] = [];
  for await (const c of await files.open(name, size)) parts.push(c as Buffer);
  const bytes = Buffer.concat(parts);
  if (bytes.length !== size) throw new NydusError('SOURCE', `${where}: ${name} changed while it was read`);
  return bytes;
}

export interface LayoutSinkOptions {
  /** 'tar' (default): an archive at the path; 'dir': a layout directory (absent or empty). */
  kind?: 'tar' | 'dir';
  /** The full image name written as io.containerd.image.name beside each tag. */
  imageName?: string;
}

/** Blob data written in pieces of at most this, with this much queued before waiting for the disk. */
const WRITE_BEHIND = 8 << 20;

/**
 * An OCI image layout written as an image sink. Blobs go in as they come (a tar takes one at a
 * time); manifests put under a tag become index.json entries; commit() writes index.json and
 * puts the result under its name.
 */
export abstract class LayoutSink implements ImageSink {
  protected readonly stored = new Map<Digest, number>();
  private readonly entries: Descriptor[] = [];
  protected committed = false;

  protected constructor(readonly name: string, private readonly imageName: string | undefined) {}

  static async create(target: string, opts: LayoutSinkOptions = {}): Promise<LayoutSink> {
    return opts.kind === 'dir' ? DirSink.make(target, opts.imageName) : TarSink.make(target, opts.imageName);
  }

  async headBlob(digest: Digest): Promise<number | undefined> {
    return this.stored.get(digest);
  }

  async pushBlob(body: BlobBody, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    const r = await this.store(body, opts);
    return { ...r, mounted: false };
  }

  async putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const digest = sha256Of(bytes);
    if (isDigest(ref) && ref !== digest) throw new NydusError('INTERNAL', `manifest put as ${ref} has digest ${digest}`);
    await this.store(Readable.from([bytes]), { digest, size: bytes.length });
    if (!isDigest(ref)) {
      this.entries.push({
        mediaType, digest, size: bytes.length,
        annotations: { ...(this.imageName !== undefined ? { [ANNOTATION_IMAGE_NAME]: this.imageName } : {}), [ANNOTATION_REF_NAME]: ref },
      });
    }
    return digest;
  }

  /** index.json as image-spec writes it: an OCI index of the tagged entries. */
  protected indexBytes(): Buffer {
    return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.OCI_INDEX, manifests: this.entries }));
  }

  protected abstract store(body: BlobBody, opts: PushBlobOptions): Promise<{ digest: Digest; size: number }>;
  abstract commit(): Promise<void>;
  abstract close(): Promise<void>;
}

/** The content of a blob, hashed and counted as it flows, refused when it is not what `opts` says. */
async function contentOf(body: BlobBody, opts: PushBlobOptions, where: string): Promise<{ source: Readable; hasher: DigestingStream }> {
  const source = typeof body === 'function' ? await body() : body;
  const hasher = new DigestingStream({
    size: opts.size, expect: opts.digest,
    mismatch: (why) => new NydusError('SOURCE', `${where}: the blob has ${why.replace(/^content has /, '')}`),
  });
  source.on('error', (e) => hasher.destroy(e));
  hasher.on('close', () => source.destroy());
  source.pipe(hasher);
  return { source, hasher };
}

function dropBody(body: BlobBody): void {
  if (typeof body !== 'function') body.destroy();
}

/** A tar archive of a layout, written to a temporary file beside the target and renamed at commit. */
class TarSink extends LayoutSink {
  private pos = 0;
  /** One member at a time: each write starts where the last one ended. */
  private queue: Promise<unknown> = Promise.resolve();
  private failure?: unknown;

  private constructor(target: string, imageName: string | undefined, private readonly out: OutputFile) {
    super(target, imageName);
  }

  static async make(target: string, imageName: string | undefined): Promise<TarSink> {
    const st = await stat(target).catch(() => undefined);
    if (st && !st.isFile()) throw new NydusError('USAGE', `${target}: ${st.isDirectory() ? 'is a directory' : 'not a regular file'}; the archive is written to a new file`);
    const sink = new TarSink(target, imageName, OutputFile.temp(path.dirname(path.resolve(target)), target));
    await sink.serial(async () => {
      sink.member('blobs/', Buffer.alloc(0), '5');
      sink.member('blobs/sha256/', Buffer.alloc(0), '5');
      sink.member(LAYOUT_FILE, Buffer.from(JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })));
    });
    return sink;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      if (this.committed) throw new NydusError('INTERNAL', `${this.name}: written after commit`);
      try {
        return await fn();
      } catch (e) {
        // A member cut short leaves the archive unusable: every later write fails the same way.
        this.failure ??= e;
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private write(data: Uint8Array): void {
    this.out.writeAt(data, this.pos);
    this.pos += data.byteLength;
  }

  private member(name: string, data: Buffer, typeflag: '0' | '5' = '0'): void {
    this.write(encode({ name, size: data.length, mode: typeflag === '5' ? 0o755 : 0o644, mtime: 0, typeflag }));
    this.write(data);
    this.write(Buffer.alloc(padding(data.length)));
  }

  protected store(body: BlobBody, opts: PushBlobOptions): Promise<{ digest: Digest; size: number }> {
    return this.serial(async () => {
      if (opts.digest !== undefined && this.stored.has(opts.digest)) {
        dropBody(body);
        return { digest: opts.digest, size: this.stored.get(opts.digest)! };
      }
      const start = this.pos;
      this.pos += BLOCK;
      const { source, hasher } = await contentOf(body, opts, `${this.name}: blob`);
      try {
        for await (const c of hasher as AsyncIterable<Buffer>) this.write(c);
      } catch (e) {
        source.destroy();
        throw e;
      }
      const digest = hasher.digest!;
      const size = hasher.bytes;
      if (this.stored.has(digest)) {
        // The same blob again (a layer two platforms share): the archive keeps one member.
        this.pos = start;
        return { digest, size };
      }
      this.write(Buffer.alloc(padding(size)));
      this.out.writeAt(encode({ name: blobName(digest), size, mode: 0o644, mtime: 0 }), start);
      this.stored.set(digest, size);
      return { digest, size };
    });
  }

  async commit(): Promise<void> {
    await this.serial(async () => {
      this.member(INDEX_FILE, this.indexBytes());
      this.write(Buffer.alloc(2 * BLOCK));
      this.out.truncate(this.pos);
      await this.out.commit();
    });
    this.committed = true;
  }

  async close(): Promise<void> {
    await this.queue;
    if (!this.committed) await this.out.abort();
  }
}

/** A layout directory: absent (then made) or empty; each blob written under a temporary name and renamed. */
class DirSink extends LayoutSink {
  private constructor(target: string, imageName: string | undefined, private readonly created: boolean) {
    super(target, imageName);
  }

  static async make(target: string, imageName: string | undefined): Promise<DirSink> {
    const st = await stat(target).catch(() => undefined);
    let created = false;
    if (st) {
      if (!st.isDirectory()) throw new NydusError('USAGE', `${target}: exists and is not a directory`);
      if ((await readdir(target)).length > 0) throw new NydusError('USAGE', `${target}: the directory is not empty; an OCI layout is written to an empty or new one`);
    } else {
      try {
        await mkdir(target);
      } catch (e) {
        throw fsError('OUTPUT', target, e);
      }
      created = true;
    }
    try {
      await mkdir(path.join(target, 'blobs', 'sha256'), { recursive: true });
    } catch (e) {
      throw fsError('OUTPUT', target, e);
    }
    return new DirSink(target, imageName, created);
  }

  protected async store(body: BlobBody, opts: PushBlobOptions): Promise<{ digest: Digest; size: number }> {
    if (opts.digest !== undefined && this.stored.has(opts.digest)) {
      dropBody(body);
      return { digest: opts.digest, size: this.stored.get(opts.digest)! };
    }
    const dir = path.join(this.name, 'blobs', 'sha256');
    const out = OutputFile.temp(dir);
    const { source, hasher } = await contentOf(body, opts, `${this.name}: blob`);
    try {
      for await (const c of hasher as AsyncIterable<Buffer>) {
        out.write(c);
        await out.drain(WRITE_BEHIND);
      }
      const digest = hasher.digest!;
      await out.commit(path.join(dir, digest.slice(7)), true);
      this.stored.set(digest, hasher.bytes);
      return { digest, size: hasher.bytes };
    } catch (e) {
      source.destroy();
      await out.abort();
      throw e;
    }
  }

  async commit(): Promise<void> {
    await writeFileAtomic(path.join(this.name, LAYOUT_FILE), Buffer.from(JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })));
    await writeFileAtomic(path.join(this.name, INDEX_FILE), this.indexBytes());
    this.committed = true;
  }

  async close(): Promise<void> {
    if (this.committed) return;
    if (this.created) await rm(this.name, { recursive: true, force: true });
    else {
      // The directory was empty: it is left empty.
      await rm(path.join(this.name, 'blobs'), { recursive: true, force: true });
    }
  }
}
