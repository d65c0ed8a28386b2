// `convert --merge-platform` against a real docker-registry (spec oci-and-converters.md §1.4,
// §1.6): the target is an OCI index of the source manifests, rewritten as acceld ≥ v0.2.21 does
// (an empty gzip layer first, its diff_id and history entry, the source digest annotated), then
// the Nydus manifests with the same platforms, artifactType application/vnd.nydus.image.manifest.v1+json
// and the Nydus config media type. Read back with `skopeo inspect --raw`; `check --multi-platform`
// passes on it, and each Nydus manifest of the two-platform index, pulled back, exported by
// `nydus-image export --block` and mounted by the kernel, equals umoci's rootfs of its platform.
// Sources: one manifest alone, and a two-platform index of the multi-layer SAMPLE_LAYERS image
// (plus a layer per platform); the target is another repository, so the source layers are
// mounted across.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/oci/check.js';
import { convert, EMPTY_LAYER } from '../../src/oci/convert.js';
import type { Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { SkipContext } from '../helpers/kernel.js';
import { buildLayerTars, compressLayer, judgeNydusImage, pushImage, pushPlatformIndex, umociMissing, type PlatformImage } from '../helpers/oci.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk } from '../helpers/tools.js';

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-merge-platform.test.ts\n`);

let work = '';
let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;
const ARCHES = ['amd64', 'arm64'];
/** Source manifests by arch ('single' for the lone one), with their config's diff_ids and history. */
const src: Record<string, { digest: Digest; size: number; layers: Array<{ digest: Digest; size: number }>; diffIds: Digest[]; history: unknown[] }> = {};
let multi: Record<string, PlatformImage>;

/** The lone linux/arm64 manifest single:v1, one gzip layer, a config with Env and history. */
async function singleImage(): Promise<void> {
  const [tar] = await buildLayerTars(join(work, 'single'), [[
    { kind: 'dir', path: '.', mtime: 1_600_000_000 },
    { kind: 'file', path: 'arch', data: 'arm64 single\n', mtime: 1_600_000_000 },
  ]]);
  const history = [{ created_by: 'test' }];
  const p = await pushImage(client, 'single', 'v1', [compressLayer(tar!, 'gzip')], { platform: { os: 'linux', architecture: 'arm64' }, config: { Env: ['X=1'] }, history });
  src.single = { digest: p.digest, size: p.size, layers: p.layers.map(({ digest, size }) => ({ digest, size })), diffIds: p.diffIds as Digest[], history };
}

async function skopeo(ref: string, config = false): Promise<any> {
  const r = await runOk('skopeo', ['inspect', '--raw', ...(config ? ['--config'] : []), '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(r.stdout.toString());
}

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-merge-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  await singleImage();
  multi = await pushPlatformIndex(join(work, 'multi'), `${reg.host}/multi:v1`, ARCHES);
  for (const a of ARCHES) {
    const { manifest, layers, diffIds, history } = multi[a]!.image;
    src[a] = { digest: manifest.digest as Digest, size: manifest.size, layers: layers.map((l) => ({ digest: l.digest as Digest, size: l.size })), diffIds: diffIds as Digest[], history };
  }
}, 300_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The rewritten OCI entry and the Nydus entry of one platform, as the registry holds them. */
async function expectPair(ref: string, index: any, arch: string, key: string): Promise<void> {
  const repo = ref.split('/')[1]!.split(':')[0]!;
  const entries = index.manifests.filter((m: any) => m.platform.architecture === arch);
  expect(entries).toHaveLength(2);
  const [oci, nydus] = entries;
  expect(oci.artifactType).toBeUndefined();
  expect(oci.annotations).toEqual({ 'containerd.io/snapshot/nydus-source-digest': src[key]!.digest });
  expect(oci.platform).toEqual({ os: 'linux', architecture: arch });
  expect(nydus.artifactType).toBe(MEDIA.NYDUS_ARTIFACT);
  expect(nydus.platform).toEqual({ os: 'linux', architecture: arch });

  const om = await skopeo(`${reg.host}/${repo}@${oci.digest}`);
  expect(om.layers).toHaveLength(1 + src[key]!.layers.length);
  expect(om.layers[0]).toMatchObject({ mediaType: MEDIA.OCI_LAYER_GZIP, annotations: { [EMPTY_LAYER.annotation]: 'true' } });
  for (const [i, l] of src[key]!.layers.entries()) expect(om.layers[1 + i]).toMatchObject({ mediaType: MEDIA.OCI_LAYER_GZIP, ...l });
  expect(om.annotations).toEqual({ 'containerd.io/snapshot/nydus-source-digest': src[key]!.digest });
  const oc = await skopeo(`${reg.host}/${repo}@${oci.digest}`, true);
  expect(oc.rootfs.diff_ids).toEqual([EMPTY_LAYER.diffId, ...src[key]!.diffIds]);
  expect(oc.history).toEqual([EMPTY_LAYER.history, ...src[key]!.history]);
  // The empty layer is a gzip of an empty tar, and the registry holds it.
  const empty = await client.getBlob(repo, om.layers[0].digest, om.layers[0].size);
  const chunks: Buffer[] = [];
  for await (const c of empty) chunks.push(c as Buffer);
  expect(gunzipSync(Buffer.concat(chunks))).toEqual(Buffer.alloc(1024));

  const nm = await skopeo(`${reg.host}/${repo}@${nydus.digest}`);
  expect(nm.config.mediaType).toBe(MEDIA.NYDUS_CONFIG);
  expect(nm.layers.at(-1).annotations['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
  expect(nm.annotations['containerd.io/snapshot/nydus-source-digest']).toBe(src[key]!.digest);
}

describe.skipIf(missing)('convert --merge-platform', () => {
  it('a single manifest: an OCI index of the rewritten source and the Nydus manifest, platform from the config', async () => {
    const ref = `${reg.host}/merged-single:v1`;
    const r = await convert({ source: `${reg.host}/single:v1`, target: ref, plainHttp: true, env, workDir: join(work, 'w'), mergePlatform: true });
    expect(r.mediaType).toBe(MEDIA.OCI_INDEX);
    const index = await skopeo(ref);
    expect(index.mediaType).toBe(MEDIA.OCI_INDEX);
    expect(index.manifests).toHaveLength(2);
    await expectPair(ref, index, 'arm64', 'single');
    const c = await check({ source: `${reg.host}/single:v1`, target: ref, plainHttp: true, env, platform: 'linux/arm64', multiPlatform: true, workDir: join(work, 'check1') });
    expect(c.differences).toEqual([]);
  }, 120_000);

  it('a two-platform index with --all-platforms: both source entries first, then both Nydus ones, each mounting as its platform\'s rootfs', async (ctx) => {
    const ref = `${reg.host}/merged-multi:v1`;
    await convert({ source: `${reg.host}/multi:v1`, target: ref, plainHttp: true, env, workDir: join(work, 'w'), mergePlatform: true, allPlatforms: true });
    const index = await skopeo(ref);
    expect(index.mediaType).toBe(MEDIA.OCI_INDEX);
    expect(index.manifests.map((m: any) => [m.platform.architecture, m.artifactType ?? 'oci'])).toEqual([
      ['amd64', 'oci'], ['arm64', 'oci'], ['amd64', MEDIA.NYDUS_ARTIFACT], ['arm64', MEDIA.NYDUS_ARTIFACT],
    ]);
    for (const a of ARCHES) await expectPair(ref, index, a, a);
    for (const a of ARCHES) {
      const c = await check({ source: `${reg.host}/multi:v1`, target: ref, plainHttp: true, env, platform: `linux/${a}`, multiPlatform: true, workDir: join(work, `check-${a}`) });
      expect(c.differences).toEqual([]);
    }
    for (const a of ARCHES) {
      const diffs = await judgeNydusImage(ctx as unknown as SkipContext, {
        at: { registry: reg.host, repo: 'merged-multi' }, ref: 'v1', platform: `linux/${a}`, rootfs: multi[a]!.rootfs, scratch: join(work, `judge-${a}`),
      });
      expect(diffs, a).toEqual([]);
    }
  }, 180_000);
});
