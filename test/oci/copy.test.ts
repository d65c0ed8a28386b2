// `copy` against real docker-registry processes: a multi-layer image pushed by skopeo and a
// three-platform index pushed by our client are copied registry → registry (mounted within one
// registry, sent to another), in PATCH chunks through a proxy that counts them, to an OCI-layout
// archive that skopeo reads and back. Manifests and indexes must come out byte for byte as they
// went in; skopeo inspect --raw and the registry's own digests are the judges.
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/oci/convert.js';
import { copy } from '../../src/oci/copy.js';
import { sha256Of } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildLayerTars, compressLayer, pushImage, pushLayout, writeOciLayout } from '../helpers/oci.js';
import { startFaultProxy } from '../helpers/proxy.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';

const MiB = 1024 * 1024;
const T0 = 1_600_000_000;
const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/copy.test.ts\n`);

let work = '';
let reg: TestRegistry;
let reg2: TestRegistry;
let client: RegistryClient;
let client2: RegistryClient;
let env: NodeJS.ProcessEnv;
const ARCHES = ['amd64', 'arm64', 's390x'];
const manifestOf: Record<string, Descriptor> = {};
let indexBytes: Buffer;

export async function skopeo(args: string[]): Promise<Buffer> {
  return (await runOk('skopeo', args, { timeoutMs: 120_000 })).stdout;
}

/** The exact bytes skopeo gets for a reference (docker://, oci-archive:, oci:). */
const raw = (ref: string) => skopeo(['inspect', '--raw', '--tls-verify=false', ref]);

/** Every blob a manifest names is in the repository with its size. */
async function expectBlobs(c: RegistryClient, repo: string, manifest: Buffer): Promise<void> {
  const m = JSON.parse(manifest.toString()) as { config: Descriptor; layers: Descriptor[] };
  for (const d of [m.config, ...m.layers]) expect(await c.headBlob(repo, d.digest), d.digest).toBe(d.size);
}

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-copy-'));
  env = await anonymousDockerEnv(work);
  [reg, reg2] = await Promise.all([startRegistry(), startRegistry()]);
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  client2 = new RegistryClient(reg2.host, { plainHttp: true, credentials: null });

  // A three-layer image (one layer of 3 MiB that does not compress), pushed by skopeo.
  const tars = await buildLayerTars(join(work, 'layers'), [0, 1, 2].map((i) => [
    { kind: 'dir', path: '.', mtime: T0 },
    { kind: 'file', path: `f${i}`, data: i === 1 ? prng(7, 3 * MiB) : `layer ${i}\n`, mtime: T0 },
  ]));
  await writeOciLayout(join(work, 'src'), 'v1', tars.map((t) => compressLayer(t, 'gzip')));
  await pushLayout(join(work, 'src'), 'v1', `${reg.host}/src/image:v1`);

  // A three-platform index, pushed by our client.
  const entries: Descriptor[] = [];
  for (const arch of ARCHES) {
    const [tar] = await buildLayerTars(join(work, arch), [[
      { kind: 'dir', path: '.', mtime: T0 },
      { kind: 'file', path: 'arch', data: `${arch}\n`, mtime: T0 },
    ]]);
    const { digest, size } = await pushImage(client, 'multi', undefined, [compressLayer(tar!, 'gzip')], { platform: { os: 'linux', architecture: arch } });
    manifestOf[arch] = { mediaType: MEDIA.OCI_MANIFEST, digest, size, platform: { os: 'linux', architecture: arch } };
    entries.push(manifestOf[arch]!);
  }
  // Unknown fields and annotations of the index must survive a copy byte for byte.
  indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.OCI_INDEX, manifests: entries, annotations: { 'org.example': 'kept' } }, null, 2));
  await client.putManifest('multi', 'v1', indexBytes, MEDIA.OCI_INDEX);
}, 300_000);

afterAll(async () => {
  await client?.close();
  await client2?.close();
  await reg?.stop();
  await reg2?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const opts = { plainHttp: true } as const;

describe.skipIf(missing)('copy: registry → registry', () => {
  it('within one registry: every blob is mounted, the manifest is the same bytes', async () => {
    const before = await raw(`docker://${reg.host}/src/image:v1`);
    const r = await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `${reg.host}/other/image:copied` });
    expect(r.blobs).toMatchObject({ mounted: 4, copied: 0, skipped: 0 });
    const after = await raw(`docker://${reg.host}/other/image:copied`);
    expect(after.equals(before)).toBe(true);
    expect(r.digest).toBe(sha256Of(before));
    await expectBlobs(client, 'other/image', after);
  }, 60_000);

  it('to another registry: every blob is sent, byte for byte; a second run finds them all there', async () => {
    const before = await raw(`docker://${reg.host}/src/image:v1`);
    const r = await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `${reg2.host}/dst/image:v1` });
    expect(r.blobs).toMatchObject({ mounted: 0, copied: 4, skipped: 0 });
    const after = await raw(`docker://${reg2.host}/dst/image:v1`);
    expect(after.equals(before)).toBe(true);
    await expectBlobs(client2, 'dst/image', after);
    // The blobs' bytes as the second registry stores them: their digests are their names.
    const m = JSON.parse(after.toString()) as { layers: Descriptor[] };
    for (const l of m.layers) {
      const parts: Buffer[] = [];
      for await (const c of await client2.getBlob('dst/image', l.digest, l.size)) parts.push(c as Buffer);
      expect(sha256Of(Buffer.concat(parts))).toBe(l.digest);
    }
    const again = await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `${reg2.host}/dst/image:v1` });
    expect(again.blobs).toMatchObject({ mounted: 0, copied: 0, skipped: 4 });
  }, 60_000);

  it('--push-chunk-size: a 3 MiB blob goes in several PATCHes of that size', async () => {
    const proxy = await startFaultProxy(reg2.host, () => 'forward');
    try {
      const r = await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `${proxy.host}/chunked/image:v1`, pushChunkSize: 512 * 1024 });
      expect(r.blobs.copied).toBe(4);
      const patches = proxy.seen.filter((s) => s.method === 'PATCH');
      const ranges = patches.map((p) => String(p.headers['content-range']));
      // The 3 MiB layer (gzip cannot shrink random bytes) takes at least 6 PATCHes of 512 KiB.
      expect(patches.length).toBeGreaterThanOrEqual(6 + 3);
      expect(ranges).toContain(`0-${512 * 1024 - 1}`);
      expect(ranges).toContain(`${512 * 1024}-${2 * 512 * 1024 - 1}`);
      const before = await raw(`docker://${reg.host}/src/image:v1`);
      const after = await raw(`docker://${reg2.host}/chunked/image:v1`);
      expect(after.equals(before)).toBe(true);
      await expectBlobs(client2, 'chunked/image', after);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it('without a chunk size each blob is one PATCH', async () => {
    const proxy = await startFaultProxy(reg2.host, () => 'forward');
    try {
      await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `${proxy.host}/whole/image:v1` });
      expect(proxy.seen.filter((s) => s.method === 'PATCH')).toHaveLength(4);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});

describe.skipIf(missing)('copy: a Nydus image', () => {
  it('registry → archive → another registry: the Nydus manifest, its blobs and bootstrap layer byte for byte', async () => {
    await convert({ source: `${reg.host}/src/image:v1`, target: `${reg.host}/src/image:nydus`, plainHttp: true, env, workDir: join(work, 'convert-work') });
    const before = await raw(`docker://${reg.host}/src/image:nydus`);
    const m = JSON.parse(before.toString()) as { layers: Descriptor[] };
    expect(m.layers.at(-1)!.annotations?.['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
    const archive = join(work, 'nydus.tar');
    await copy({ ...opts, env, source: `${reg.host}/src/image:nydus`, target: `file://${archive}` });
    expect((await raw(`oci-archive:${archive}`)).equals(before)).toBe(true);
    await copy({ ...opts, env, source: `file://${archive}`, target: `${reg2.host}/nydus/image:v1` });
    expect((await raw(`docker://${reg2.host}/nydus/image:v1`)).equals(before)).toBe(true);
    await expectBlobs(client2, 'nydus/image', before);
  }, 120_000);
});

describe.skipIf(missing)('copy: platforms of an index', () => {
  it('--all-platforms copies the whole index byte for byte with every manifest', async () => {
    const r = await copy({ ...opts, env, source: `${reg.host}/multi:v1`, target: `${reg2.host}/multi:all`, allPlatforms: true });
    expect(r.mediaType).toBe(MEDIA.OCI_INDEX);
    expect(r.digest).toBe(sha256Of(indexBytes));
    expect((await raw(`docker://${reg2.host}/multi:all`)).equals(indexBytes)).toBe(true);
    for (const arch of ARCHES) {
      const m = await client2.getManifest('multi', manifestOf[arch]!.digest);
      await expectBlobs(client2, 'multi', m.bytes);
    }
  }, 60_000);

  it('--platform of one entry: that manifest alone under the tag, as upstream', async () => {
    const r = await copy({ ...opts, env, source: `${reg.host}/multi:v1`, target: `${reg2.host}/multi:arm64`, platform: 'linux/arm64' });
    expect(r.digest).toBe(manifestOf.arm64!.digest);
    const m = await client2.getManifest('multi', 'arm64');
    expect(m.digest).toBe(manifestOf.arm64!.digest);
  }, 60_000);

  it('--platform of two entries: an index of those two, the rest of the index kept', async () => {
    const r = await copy({ ...opts, env, source: `${reg.host}/multi:v1`, target: `${reg2.host}/pair:v1`, platform: 'linux/arm64,linux/s390x' });
    const f = await client2.getManifest('pair', 'v1');
    expect(f.kind).toBe('index');
    if (f.kind !== 'index') return;
    expect(r.digest).toBe(f.digest);
    expect(f.index.manifests).toEqual([manifestOf.arm64, manifestOf.s390x]);
    expect(f.index.annotations).toEqual({ 'org.example': 'kept' });
    expect(await client2.headManifest('pair', manifestOf.amd64!.digest)).toBeUndefined();
    for (const arch of ['arm64', 's390x']) await expectBlobs(client2, 'pair', (await client2.getManifest('pair', manifestOf[arch]!.digest)).bytes);
  }, 60_000);

  it('a platform the index lacks: one line naming the platforms it has, nothing written', async () => {
    const err = await copy({ ...opts, env, source: `${reg.host}/multi:v1`, target: `${reg2.host}/multi:none`, platform: 'linux/riscv64' }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/no manifest for linux\/riscv64 \(it has linux\/amd64, linux\/arm64, linux\/s390x\)/);
    expect(await client2.headManifest('multi', 'none')).toBeUndefined();
  });
});

describe.skipIf(missing)('copy: OCI-layout archives', () => {
  it('registry → archive: skopeo reads it and copies it into a registry; our copy back gives the same bytes', async () => {
    const archive = join(work, 'image.tar');
    const r = await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `file://${archive}` });
    expect(r.target).toBe(`file://${archive}`);
    const before = await raw(`docker://${reg.host}/src/image:v1`);
    expect((await raw(`oci-archive:${archive}`)).equals(before)).toBe(true);
    // The entry is named as containerd's export names it: the tag, and the full name beside it.
    const index = JSON.parse((await runOk('tar', ['-xOf', archive, 'index.json'])).stdout.toString()) as { manifests: Descriptor[] };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.annotations).toEqual({ 'org.opencontainers.image.ref.name': 'v1', 'io.containerd.image.name': `${reg.host}/src/image:v1` });
    await skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${archive}`, `docker://${reg2.host}/by-skopeo/image:v1`]);
    expect((await raw(`docker://${reg2.host}/by-skopeo/image:v1`)).equals(before)).toBe(true);

    const back = await copy({ ...opts, env, source: `file://${archive}`, target: `${reg2.host}/back/image:v1` });
    expect(back.blobs.copied).toBe(4);
    expect((await raw(`docker://${reg2.host}/back/image:v1`)).equals(before)).toBe(true);
    await expectBlobs(client2, 'back/image', before);
  }, 120_000);

  it('an index with --all-platforms → archive → registry: the same index and manifests', async () => {
    const archive = join(work, 'multi.tar');
    await copy({ ...opts, env, source: `${reg.host}/multi:v1`, target: `file://${archive}`, allPlatforms: true });
    expect((await raw(`oci-archive:${archive}`)).equals(indexBytes)).toBe(true);
    await copy({ ...opts, env, source: `file://${archive}`, target: `${reg2.host}/multi-back:v1`, allPlatforms: true });
    expect((await raw(`docker://${reg2.host}/multi-back:v1`)).equals(indexBytes)).toBe(true);
    for (const arch of ARCHES) await expectBlobs(client2, 'multi-back', (await client2.getManifest('multi-back', manifestOf[arch]!.digest)).bytes);
  }, 120_000);

  it('an archive skopeo wrote is a source', async () => {
    const archive = join(work, 'skopeo.tar');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/src/image:v1`, `oci-archive:${archive}:v1`]);
    const r = await copy({ ...opts, env, source: `file://${archive}`, target: `${reg2.host}/from-skopeo/image:v1` });
    const pushed = await raw(`docker://${reg2.host}/from-skopeo/image:v1`);
    expect(r.digest).toBe(sha256Of(pushed));
    expect(pushed.equals(await raw(`oci-archive:${archive}`))).toBe(true);
    await expectBlobs(client2, 'from-skopeo/image', pushed);
  }, 120_000);

  it('an existing empty directory as the target gets a layout directory skopeo reads', async () => {
    const dir = join(work, 'layout-dir');
    await mkdir(dir);
    await copy({ ...opts, env, source: `${reg.host}/src/image:v1`, target: `file://${dir}` });
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
    expect((await raw(`oci:${dir}:v1`)).equals(await raw(`docker://${reg.host}/src/image:v1`))).toBe(true);
  }, 60_000);

  it('a blob the source cannot give: one line, and nothing under the archive\'s name', async () => {
    const m = JSON.parse((await raw(`docker://${reg.host}/src/image:v1`)).toString()) as { layers: Descriptor[] };
    const big = m.layers.reduce((a, b) => (a.size > b.size ? a : b));
    const proxy = await startFaultProxy(reg.host, (r) => (r.method === 'GET' && r.url.includes(big.digest)
      ? { status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}' } : 'forward'));
    const archive = join(work, 'failed.tar');
    try {
      // One blob at a time: the blob after the failed one is still queued, and must not be fetched.
      const err = await copy({ ...opts, env, source: `${proxy.host}/src/image:v1`, target: `file://${archive}`, concurrency: 1 }).then(() => undefined, (e: Error) => e);
      expect(err?.message.split('\n')).toHaveLength(1);
      expect(err?.message).toContain(big.digest);
      expect(err?.message).toMatch(/404/);
    } finally {
      await proxy.stop();
    }
    await expect(stat(archive)).rejects.toThrow();
    expect((await readdir(work)).filter((n) => n.includes('failed.tar'))).toEqual([]);
    // Nothing was asked of the source after the failure: the last layer was never fetched.
    expect(proxy.seen.filter((r) => r.method === 'GET' && r.url.includes(m.layers.at(-1)!.digest))).toEqual([]);
  }, 60_000);
});
