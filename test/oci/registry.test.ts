// The registry client against a real docker-registry: streamed blob upload (one PATCH or many),
// HEAD, pulls that verify the digest (a blob corrupted in the registry's storage is caught),
// cross-repository mounts and their fallback, manifests and indexes by tag and by digest.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { caught, collect, registryMissing, sliced, startRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/registry.test.ts\n`);

describe.skipIf(missing)('registry client', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host, { plainHttp: true, credentials: null, retryDelayMs: 10 });
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  it('pushes a blob by one streamed PATCH, HEADs it and pulls it back verified', async () => {
    const data = randomBytes(300_000);
    const r = await client.pushBlob('test/a', sliced(data));
    expect(r).toEqual({ digest: sha256Of(data), size: data.length, mounted: false });
    expect(await client.headBlob('test/a', r.digest)).toBe(data.length);
    expect(await client.headBlob('test/a', sha256Of('absent'))).toBeUndefined();
    expect((await collect(await client.getBlob('test/a', r.digest, data.length))).equals(data)).toBe(true);
  });

  it('pushes in PATCH chunks of --push-chunk-size, including a last partial one', async () => {
    const data = randomBytes(100_000);
    const r = await client.pushBlob('test/chunks', () => sliced(data), { chunkSize: 30_000, digest: sha256Of(data), size: data.length });
    expect(r.digest).toBe(sha256Of(data));
    expect((await collect(await client.getBlob('test/chunks', r.digest))).equals(data)).toBe(true);
    // An empty blob is one PUT, no PATCH.
    const e = await client.pushBlob('test/chunks', Readable.from([], { objectMode: false }), { chunkSize: 1000 });
    expect(e).toEqual({ digest: sha256Of(''), size: 0, mounted: false });
    expect(await client.headBlob('test/chunks', e.digest)).toBe(0);
  });

  it('detects a blob whose bytes in the registry do not match its digest, at the end of the stream', async () => {
    const data = randomBytes(50_000);
    const { digest } = await client.pushBlob('test/corrupt', sliced(data));
    const path = reg.blobPath(digest.slice(7));
    const stored = await readFile(path);
    stored[1234] ^= 0xff;
    await writeFile(path, stored);
    const stream = await client.getBlob('test/corrupt', digest);
    const e = await caught(collect(stream));
    expect(e.message).toBe(`${reg.host}: blob ${digest} in test/corrupt: content has digest ${sha256Of(stored)}`);
    // A size that is not the blob's is caught too.
    stored[1234] ^= 0xff;
    await writeFile(path, stored);
    expect((await caught(collect(await client.getBlob('test/corrupt', digest, 1000)))).message).toContain('more than the 1000 bytes expected');
  });

  it('refuses to commit content whose digest is not the one the caller named', async () => {
    const e = await caught(client.pushBlob('test/wrong', sliced(Buffer.from('actual')), { digest: sha256Of('expected') }));
    expect(e.message).toBe(`${reg.host}: blob upload to test/wrong: the content has digest ${sha256Of('actual')}, not ${sha256Of('expected')}`);
    expect(await client.headBlob('test/wrong', sha256Of('actual'))).toBeUndefined();
  });

  it('mounts a blob from another repository, and uploads when the registry answers 202', async () => {
    const data = randomBytes(20_000);
    const { digest } = await client.pushBlob('src/repo', sliced(data));
    let opened = 0;
    const open = () => {
      opened++;
      return sliced(data);
    };
    const m = await client.pushBlob('dst/repo', open, { digest, mountFrom: 'src/repo' });
    expect(m).toEqual({ digest, size: data.length, mounted: true });
    expect(opened).toBe(0);
    expect(await client.headBlob('dst/repo', digest)).toBe(data.length);
    // The source repository lacks it: the registry opens an upload session instead (202).
    const other = randomBytes(1000);
    const f = await client.pushBlob('dst/repo', () => sliced(other), { digest: sha256Of(other), mountFrom: 'src/nothing' });
    expect(f).toEqual({ digest: sha256Of(other), size: other.length, mounted: false });
    expect(await client.headBlob('dst/repo', f.digest)).toBe(other.length);
  });

  it('puts and gets manifests and an index by tag and by digest', async () => {
    const layer = randomBytes(5000);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Of(layer)] }, config: { Env: ['A=1'] } }));
    await client.pushBlob('img/app', sliced(layer));
    await client.pushBlob('img/app', sliced(config));
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.OCI_MANIFEST,
      config: { mediaType: MEDIA.OCI_CONFIG, digest: sha256Of(config), size: config.length },
      layers: [{ mediaType: MEDIA.OCI_LAYER_TAR, digest: sha256Of(layer), size: layer.length, annotations: { 'x.y': 'z' } }],
      annotations: { unknown: 'kept' },
    };
    const mBytes = Buffer.from(JSON.stringify(manifest));
    const mDigest = await client.putManifest('img/app', 'v1', mBytes, MEDIA.OCI_MANIFEST);
    expect(mDigest).toBe(sha256Of(mBytes));

    for (const ref of ['v1', mDigest]) {
      const got = await client.getManifest('img/app', ref);
      expect(got.kind).toBe('manifest');
      expect(got.digest).toBe(mDigest);
      expect(got.bytes.equals(mBytes)).toBe(true);
      if (got.kind === 'manifest') expect(got.manifest).toEqual(manifest);
      expect(await client.headManifest('img/app', ref)).toEqual({ mediaType: MEDIA.OCI_MANIFEST, digest: mDigest, size: mBytes.length });
    }
    expect(await client.headManifest('img/app', 'nope')).toBeUndefined();
    const cfg = await client.getConfig('img/app', { digest: sha256Of(config), size: config.length });
    expect(cfg.config.rootfs.diff_ids).toEqual([sha256Of(layer)]);

    // A Docker schema 2 manifest of the same content, and a Docker manifest list naming both.
    const docker = { ...manifest, mediaType: MEDIA.DOCKER_MANIFEST, config: { ...manifest.config, mediaType: MEDIA.DOCKER_CONFIG } };
    delete (docker as { annotations?: unknown }).annotations;
    const dBytes = Buffer.from(JSON.stringify(docker));
    const dDigest = await client.putManifest('img/app', sha256Of(dBytes), dBytes, MEDIA.DOCKER_MANIFEST);
    expect((await client.getManifest('img/app', dDigest)).mediaType).toBe(MEDIA.DOCKER_MANIFEST);

    for (const [mediaType, tag] of [[MEDIA.OCI_INDEX, 'multi'], [MEDIA.DOCKER_MANIFEST_LIST, 'list']] as const) {
      const index = {
        schemaVersion: 2,
        mediaType,
        manifests: [
          { mediaType: MEDIA.OCI_MANIFEST, digest: mDigest, size: mBytes.length, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: MEDIA.DOCKER_MANIFEST, digest: dDigest, size: dBytes.length, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
        ],
      };
      const iBytes = Buffer.from(JSON.stringify(index));
      const iDigest = await client.putManifest('img/app', tag, iBytes, mediaType);
      for (const ref of [tag, iDigest]) {
        const got = await client.getManifest('img/app', ref);
        expect(got.kind).toBe('index');
        expect(got.mediaType).toBe(mediaType);
        if (got.kind === 'index') expect(got.index.manifests.map((m) => m.digest)).toEqual([mDigest, dDigest]);
      }
    }
  });

  it('names the registry and the status when something is missing', async () => {
    const e = await caught(client.getManifest('img/none', 'latest'));
    expect(e.message).toMatch(new RegExp(`^${reg.host.replace(/\./g, '\\.')}: 404 Not Found: manifest img/none:latest: registry says "(MANIFEST_UNKNOWN|NAME_UNKNOWN)`));
    expect(e.code).toBe('SOURCE');
    const b = await caught(client.getBlob('img/app', sha256Of('none') as Digest));
    expect(b.message).toContain(`${reg.host}: 404 Not Found`);
  });
});
