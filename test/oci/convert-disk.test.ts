// No layer on disk (issue 13): while an image of ~200 MB of layers converts registry → registry,
// the work dir is measured every 50 ms; its peak stays under the size of the bootstraps it holds
// (the per-layer bootstraps, their blob.meta files and the merged bootstrap, measured when the
// manifest is about to be pushed) plus 1 MiB. The layers are random data, so nothing shrinks them:
// built in-process and by --nydus-image (its FIFOs hold nothing); generated as a tar stream, gzipped and uploaded without touching the disk here either.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/oci/convert.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { treeBytes } from '../helpers/tree.js';

const MiB = 1024 * 1024;
const LAYERS = 4;
const FILES_PER_LAYER = 5;
const FILE_SIZE = 10 * MiB;

const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-disk.test.ts\n`);

let work = '';
let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;

/** One layer: a tar of random files streamed through gzip into the upload; returns the blob and the tar's sha256. */
async function pushLayer(i: number): Promise<{ digest: Digest; size: number; diffId: Digest }> {
  const pack = tar.pack();
  const tarHash = createHash('sha256');
  const gz = createGzip({ level: 1 });
  const body = new PassThrough();
  pack.on('data', (c) => tarHash.update(c as Buffer));
  pack.pipe(gz).pipe(body);
  const writing = (async () => {
    pack.entry({ name: `layer${i}/`, type: 'directory', mode: 0o755, mtime: new Date(1_600_000_000_000) });
    for (let f = 0; f < FILES_PER_LAYER; f++) {
      await new Promise<void>((resolve, reject) => {
        const e = pack.entry({ name: `layer${i}/f${f}`, size: FILE_SIZE, mode: 0o644, mtime: new Date(1_600_000_000_000) }, (err) => (err ? reject(err) : resolve()));
        let left = FILE_SIZE;
        const more = () => {
          while (left > 0) {
            const n = Math.min(left, MiB);
            left -= n;
            if (!e.write(randomBytes(n))) {
              e.once('drain', more);
              return;
            }
          }
          // streamx's types want an argument; without one it ends the same.
          e.end(undefined);
        };
        more();
      });
    }
    pack.finalize();
  })();
  const r = await client.pushBlob('big', body);
  await writing;
  return { digest: r.digest, size: r.size, diffId: `sha256:${tarHash.digest('hex')}` as Digest };
}

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-disk-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  const layers = [];
  for (let i = 0; i < LAYERS; i++) layers.push(await pushLayer(i));
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const c = await client.pushBlob('big', () => Readable.from([cfg]), { digest: sha256Of(cfg), size: cfg.length });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, digest: c.digest, size: c.size },
    layers: layers.map((l) => ({ mediaType: MEDIA.OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
  }));
  await client.putManifest('big', 'v1', manifest, MEDIA.OCI_MANIFEST);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('convert: the work dir holds no layer', () => {
  it.each(['in-process', '--nydus-image'])('peak work dir size during a 200 MB convert < its bootstraps + 1 MiB (%s)', async (how) => {
    const workDir = join(work, `w-${how}`);
    let nydusImage: string | undefined;
    if (how === '--nydus-image') {
      nydusImage = join(work, 'nydus-image');
      await writeFile(nydusImage, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(resolve('bin/nydus-image.js'))} "$@"\n`);
      await chmod(nydusImage, 0o755);
    }
    let peak = 0;
    let samples = 0;
    let bootstraps = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, await treeBytes(workDir));
        samples++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const t0 = Date.now();
    let r;
    try {
      r = await convert({
        source: `${reg.host}/big:v1`, target: `${reg.host}/big:nydus-${how.replace(/^-+/, '')}`, plainHttp: true, env, workDir, nydusImage,
        // Everything in the work dir now is a bootstrap: the per-layer ones, their blob.meta, the merged one.
        hooks: { beforePushManifest: async () => void (bootstraps = await treeBytes(workDir)) },
      });
    } finally {
      running = false;
      await sampler;
    }
    const blobBytes = r.manifests[0]!.blobs.length === LAYERS ? r.metrics.TargetImageSize : 0;
    process.stderr.write(
      `\n${how} convert of ${LAYERS * FILES_PER_LAYER * FILE_SIZE / MiB} MiB of layers in ${((Date.now() - t0) / 1000).toFixed(1)} s: ` +
      `work dir peak ${peak} bytes over ${samples} samples; bootstraps ${bootstraps} bytes; target ${(blobBytes / MiB).toFixed(1)} MiB\n`,
    );
    expect(blobBytes).toBeGreaterThan(LAYERS * FILES_PER_LAYER * FILE_SIZE);
    expect(samples).toBeGreaterThan(10);
    expect(bootstraps).toBeGreaterThan(0);
    expect(peak).toBeLessThan(bootstraps + MiB);
  }, 180_000);
});
