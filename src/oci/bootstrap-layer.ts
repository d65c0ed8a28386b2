// The bootstrap layer of a Nydus image (spec oci-and-converters.md §1.2): a gzip tar holding the
// directory `image`, the merged bootstrap as `image/image.boot` and, for RAFS v6, each layer
// blob's `image/<blob hex>.blob.meta`; its digest (gzip) and diff_id (tar) computed here.
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { sha256Of, type Digest } from './digest.js';

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
