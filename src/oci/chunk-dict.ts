// `nydusify convert --chunk-dict bootstrap:registry:REF` (spec oci-and-converters.md §2.2 step
// 4): the dict image is a Nydus image; its bootstrap layer's image/image.boot is unpacked into
// the work dir and given to every build and to the merge as `--chunk-dict bootstrap=PATH`, so
// chunks the dict's blobs hold are referenced, not stored again. Its blob layers are what the new
// manifest appends for the dict blobs the merged bootstrap names (spec §1.3).
import * as path from 'node:path';
import { NydusError } from '../errors.js';
import { quote, type Digest } from './digest.js';
import type { Descriptor } from './manifest.js';
import { MEDIA } from './media-types.js';
import { formatPlatform, platformMatches, type PlatformSpec } from './platform.js';
import { formatReference, parseReference, refTarget, type Reference } from './reference.js';
import { RegistryClient, type RegistryClientOptions } from './registry.js';
import { unpackBootstrapLayer } from './bootstrap-layer.js';
import { ANNOTATION, decompressed } from './convert.js';


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
    if (!last || last.annotations?.[ANNOTATION.BOOTSTRAP] !== 'true') {
      throw new NydusError('SOURCE', `chunk dict ${text}: not a Nydus image (its last layer lacks ${ANNOTATION.BOOTSTRAP}: "true")`);
    }
    const blobs = new Map<string, Descriptor>();
    for (const l of layers.slice(0, -1)) if (l.mediaType === MEDIA.NYDUS_BLOB) blobs.set(l.digest.slice(7), l);
    const bootstrap = path.join(dir, 'chunk-dict.boot');
    const where = `chunk dict ${text}: bootstrap layer ${last.digest}`;
    await unpackBootstrapLayer(decompressed(await client.getBlob(ref.repository, last.digest, last.size), 'gzip', where), { file: bootstrap }, where);
    return { ref, text, digest: top.digest, bootstrap, blobs, client };
  } catch (e) {
    await client.close();
    throw e;
  }
}
