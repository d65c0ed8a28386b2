// `nydusify convert --chunk-dict bootstrap:registry:REF` (spec oci-and-converters.md §2.2 step
// 4): the dict image is a Nydus image; its bootstrap layer's image/image.boot is unpacked into
// the work dir and given to every build and to the merge as `--chunk-dict bootstrap=PATH`, so
// chunks the dict's blobs hold are referenced, not stored again. Its blob layers are what the new
// manifest appends for the dict blobs the merged bootstrap names (spec §1.3).
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { NydusError, fsError } from '../errors.js';
import { checkLimit, LIMITS, limitError } from '../format/limits.js';
import { quote, type Digest } from './digest.js';
import type { Descriptor } from './manifest.js';
import { MEDIA } from './media-types.js';
import { formatPlatform, platformMatches, type PlatformSpec } from './platform.js';
import { formatReference, parseReference, refTarget, type Reference } from './reference.js';
import { RegistryClient, type RegistryClientOptions } from './registry.js';
import { decompressed } from './convert.js';

const BOOTSTRAP_ANNOTATION = 'containerd.io/snapshot/nydus-bootstrap';
const IN_LAYER = 'image/image.boot';

export interface ChunkDict {
  /** The dict's reference, as messages name it. */
  ref: Reference;
  text: string;
  /** The manifest digest (part of what makes each layer's blob). */
  digest: Digest;
  /** The unpacked bootstrap. */
  bootstrap: string;
  /** The dict's blob layers by hex id. */
  blobs: Map<string, Descriptor>;
  client: RegistryClient;
}

/** `bootstrap:registry:REF` → REF; the other forms upstream parses are refused by name. */
export function parseChunkDictFlag(arg: string): string {
  const m = /^([^:]*):([^:]*):(.+)$/.exec(arg);
  if (!m) throw new NydusError('USAGE', `invalid --chunk-dict ${quote(arg)}: expected bootstrap:registry:REF`);
  if (m[1] !== 'bootstrap') throw new NydusError('USAGE', `invalid --chunk-dict ${quote(arg)}: the type must be bootstrap, not ${quote(m[1]!)}`);
  if (m[2] === 'local') throw new NydusError('UNSUPPORTED', `--chunk-dict bootstrap:local:PATH is not supported (upstream's convert fails on it too); give bootstrap:registry:REF`);
  if (m[2] !== 'registry') throw new NydusError('USAGE', `invalid --chunk-dict ${quote(arg)}: the source must be registry, not ${quote(m[2]!)}`);
  return m[3]!;
}

/** Pulls the dict image's bootstrap into `dir`; the client stays open for copying its blobs (close it with the result). */
export async function pullChunkDict(refText: string, dir: string, platforms: PlatformSpec[], opts: RegistryClientOptions): Promise<ChunkDict> {
  const ref = parseReference(refText);
  const text = formatReference(ref);
  const client = new RegistryClient(ref.registry, opts);
  try {
    let top = await client.getManifest(ref.repository, refTarget(ref));
    if (top.kind === 'index') {
      // The Nydus entry for the conversion's platform: artifactType or os.features marks it in a merged index.
      const nydusFirst = [...top.index.manifests].sort((a, b) => Number(b.artifactType === MEDIA.NYDUS_ARTIFACT) - Number(a.artifactType === MEDIA.NYDUS_ARTIFACT));
      const d = nydusFirst.find((m) => platforms.some((p) => platformMatches(m.platform, p)));
      if (!d) throw new NydusError('SOURCE', `chunk dict ${text}: the index has no manifest for ${platforms.map(formatPlatform).join(', ')}`);
      top = await client.getManifest(ref.repository, d.digest);
      if (top.kind !== 'manifest') throw new NydusError('SOURCE', `chunk dict ${text}: index entry ${d.digest} is itself an index`);
    }
    const layers = top.manifest.layers;
    const last = layers.at(-1);
    if (!last || last.annotations?.[BOOTSTRAP_ANNOTATION] !== 'true') {
      throw new NydusError('SOURCE', `chunk dict ${text}: not a Nydus image (its last layer lacks ${BOOTSTRAP_ANNOTATION}: "true")`);
    }
    const blobs = new Map<string, Descriptor>();
    for (const l of layers.slice(0, -1)) if (l.mediaType === MEDIA.NYDUS_BLOB) blobs.set(l.digest.slice(7), l);
    const bootstrap = path.join(dir, 'chunk-dict.boot');
    await unpackBoot(client, ref.repository, last, bootstrap, `chunk dict ${text}: bootstrap layer ${last.digest}`);
    return { ref, text, digest: top.digest, bootstrap, blobs, client };
  } catch (e) {
    await client.close();
    throw e;
  }
}

/** image/image.boot of a bootstrap layer (hostile: one regular file written, bounded by BOOTSTRAP_MAX) into `file`. */
async function unpackBoot(client: RegistryClient, repo: string, desc: Descriptor, file: string, where: string): Promise<void> {
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > LIMITS.BOOTSTRAP_LAYER_MAX.value) cb(limitError('BOOTSTRAP_LAYER_MAX', where, `more than ${LIMITS.BOOTSTRAP_LAYER_MAX.value} bytes of tar`));
      else cb(null, chunk);
    },
  });
  try {
    await mkdir(path.dirname(file), { recursive: true });
  } catch (e) {
    throw fsError('OUTPUT', path.dirname(file), e);
  }
  const layerTar = decompressed(await client.getBlob(repo, desc.digest, desc.size), 'gzip', where);
  layerTar.on('error', (e) => counter.destroy(e));
  const extract = tar.extract();
  counter.on('error', (e) => extract.destroy(e));
  const entries = { [Symbol.asyncIterator]: ((it) => () => it)(extract[Symbol.asyncIterator]()) };
  layerTar.pipe(counter).pipe(extract as unknown as NodeJS.WritableStream);
  let found = false;
  try {
    for await (const entry of entries) {
      const h = entry.header;
      if (!found && (h.type === 'file' || h.type === 'contiguous-file') && h.name.replace(/^(\.\/)+|^\/+/, '') === IN_LAYER) {
        checkLimit('BOOTSTRAP_MAX', `${where}: ${IN_LAYER} size`, h.size ?? 0);
        await pipeline(entry, createWriteStream(file));
        found = true;
        continue;
      }
      for await (const _ of entry) void _;
    }
  } catch (e) {
    layerTar.destroy();
    if (e instanceof NydusError) throw e;
    const code = (e as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && code.startsWith('E')) throw fsError('OUTPUT', file, e);
    throw new NydusError('SOURCE', `${where}: not a valid tar: ${String((e as Error)?.message ?? e).split('\n')[0]}`, { cause: e });
  }
  if (!found) throw new NydusError('SOURCE', `${where}: no ${IN_LAYER} in it`);
}
