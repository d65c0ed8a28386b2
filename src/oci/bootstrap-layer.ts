// The bootstrap layer of a Nydus image (spec oci-and-converters.md §1.2): a gzip tar holding the
// directory `image`, the merged bootstrap as `image/image.boot` and, for RAFS v6, each layer
// blob's `image/<blob hex>.blob.meta`; its digest (gzip) and diff_id (tar) computed here. Read
// back (check, the chunk dict) it is hostile: unpacked here only, names checked, bytes bounded.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { NydusError, fsError } from '../errors.js';
import { LIMITS, badName, checkLimit, limitError } from '../format/limits.js';
import { quote, sha256Of, type Digest } from './digest.js';

/** Where the merged bootstrap is in the layer. */
export const BOOTSTRAP_IN_LAYER = 'image/image.boot';

export interface BootstrapLayer {
  /** The gzip-compressed tar, as pushed. */
  data: Buffer;
  /** sha256 of `data`: the layer digest. */
  digest: Digest;
  /** sha256 of the uncompressed tar: the config's diff_id and the containerd.io/uncompressed value. */
  diffId: Digest;
}

export interface BlobMetaFile {
  /** The blob's sha256 hex (its id in the bootstrap). */
  hex: string;
  data: Buffer;
}

/**
 * Builds the layer. Headers carry only name, mode, size and type, as the converter writes them:
 * owner 0, no user or group names, mtime 0 (the Go converter leaves it at Go's zero time).
 */
export async function bootstrapLayer(bootstrap: Buffer, blobMetas: readonly BlobMetaFile[] = []): Promise<BootstrapLayer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => parts.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const mtime = new Date(0);
  pack.entry({ name: 'image', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'image/image.boot', mode: 0o444, mtime, size: bootstrap.length }, bootstrap);
  for (const m of blobMetas) pack.entry({ name: `image/${m.hex}.blob.meta`, mode: 0o444, mtime, size: m.data.length }, m.data);
  pack.finalize();
  await done;
  const raw = Buffer.concat(parts);
  const data = gzipSync(raw);
  return { data, digest: sha256Of(data), diffId: sha256Of(raw) };
}

/** Where unpackBootstrapLayer writes: every directory and regular file under `dir`, or only image/image.boot as `file`. */
export type UnpackTo = { dir: string } | { file: string };

export interface UnpackedBootstrapLayer {
  /** sha256 of the whole tar as read: what the config's diff_id must be. */
  diffId: Digest;
  /** Where image/image.boot was written, when the layer holds it. */
  boot?: string;
}

/**
 * Unpacks a bootstrap layer's tar (already gunzipped; `where` names the layer in messages),
 * hashing it on the way. Only directories and regular files are written, each name checked, no
 * path outside `to.dir`, and the bytes read bounded by BOOTSTRAP_LAYER_MAX. With `to.file`,
 * image/image.boot alone is written there (bounded by BOOTSTRAP_MAX), and a layer without it is
 * refused; with `to.dir` it is optional (a check reports its absence as a finding).
 */
export async function unpackBootstrapLayer(layerTar: Readable, to: UnpackTo, where: string): Promise<UnpackedBootstrapLayer> {
  const hash = createHash('sha256');
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > LIMITS.BOOTSTRAP_LAYER_MAX.value) {
        cb(limitError('BOOTSTRAP_LAYER_MAX', where, `more than ${LIMITS.BOOTSTRAP_LAYER_MAX.value} bytes of tar`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const outDir = 'dir' in to ? to.dir : path.dirname(to.file);
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    layerTar.destroy();
    throw fsError('OUTPUT', outDir, e);
  }
  layerTar.on('error', (e) => counter.destroy(e));
  const extract = tar.extract();
  counter.on('error', (e) => extract.destroy(e));
  // The iterator first: an entry the extractor emits before anyone listens would be lost, and it would wait forever.
  const entries = { [Symbol.asyncIterator]: ((it) => () => it)(extract[Symbol.asyncIterator]()) };
  layerTar.pipe(counter).pipe(extract as unknown as NodeJS.WritableStream);
  let boot: string | undefined;
  try {
    for await (const entry of entries) {
      const h = entry.header;
      const comps = memberPath(h.name, where);
      const isFile = comps.length > 0 && (h.type === 'file' || h.type === 'contiguous-file');
      const isBoot = isFile && comps.join('/') === BOOTSTRAP_IN_LAYER;
      if ('dir' in to && comps.length > 0 && h.type === 'directory') {
        await mkdir(path.join(to.dir, ...comps), { recursive: true });
      } else if ('dir' in to && isFile) {
        const file = path.join(to.dir, ...comps);
        await mkdir(path.dirname(file), { recursive: true });
        await pipeline(entry, createWriteStream(file));
        if (isBoot) boot = file;
        continue;
      } else if ('file' in to && isBoot && boot === undefined) {
        checkLimit('BOOTSTRAP_MAX', `${where}: ${BOOTSTRAP_IN_LAYER} size`, h.size ?? 0);
        await pipeline(entry, createWriteStream(to.file));
        boot = to.file;
        continue;
      }
      // Links, devices and the like have no place in a bootstrap layer: not written.
      for await (const _ of entry) void _;
    }
  } catch (e) {
    layerTar.destroy();
    if (e instanceof NydusError) throw e;
    const code = (e as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && code.startsWith('E')) throw fsError('OUTPUT', 'dir' in to ? to.dir : to.file, e);
    throw new NydusError('SOURCE', `${where}: not a valid tar: ${String((e as Error)?.message ?? e).split('\n')[0]}`, { cause: e });
  }
  if ('file' in to && boot === undefined) throw new NydusError('SOURCE', `${where}: no ${BOOTSTRAP_IN_LAYER} in it`);
  return { diffId: `sha256:${hash.digest('hex')}`, ...(boot !== undefined ? { boot } : {}) };
}

/** A bootstrap-layer member's path as components under the unpack dir; refuses anything that could leave it. */
function memberPath(name: string, where: string): string[] {
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.length > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `${where}: member ${quote(name)}`, `${comps.length} levels`);
  for (const c of comps) {
    const bad = c === '..' ? 'a ".." component is not allowed' : badName(Buffer.from(c, 'utf8'));
    if (bad !== undefined) throw new NydusError('SOURCE', `${where}: member ${quote(name)}: ${bad}`);
  }
  return comps;
}
