// convert of a two-platform index in a real docker-registry (the multi-layer SAMPLE_LAYERS image
// plus a layer of its own per platform, pushed by skopeo): --platform picks one entry (the host's
// by default) and gives a single manifest; --all-platforms gives an index of Nydus manifests
// carrying os.features nydus.remoteimage.v1 (upstream's convertIndex), and each of them, pulled
// back, exported by `nydus-image export --block` and mounted by the kernel, equals umoci's rootfs
// of its platform; a platform the index lacks is one line naming what it has.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert, OS_FEATURE_NYDUS } from '../../src/oci/convert.js';
import { MEDIA } from '../../src/oci/media-types.js';
import type { ImageIndex } from '../../src/oci/manifest.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { SkipContext } from '../helpers/kernel.js';
import { judgeNydusImage, pushPlatformIndex, umociMissing, type PlatformImage } from '../helpers/oci.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool } from '../helpers/tools.js';
import { hostPlatform } from '../../src/oci/platform.js';

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-platforms.test.ts\n`);

let work = '';
let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;
let src: Record<string, PlatformImage>;
const ARCHES = ['amd64', 'arm64'];

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-platforms-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  src = await pushPlatformIndex(join(work, 'src'), `${reg.host}/multi:v1`, ARCHES);
}, 300_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const base = () => ({ source: `${reg.host}/multi:v1`, plainHttp: true, env, workDir: join(work, 'w') });

describe.skipIf(missing)('convert: platforms of an index', () => {
  it('converts the host platform by default, to a single manifest', async (ctx) => {
    const host = hostPlatform().architecture;
    if (!ARCHES.includes(host)) ctx.skip();
    const r = await convert({ ...base(), target: `${reg.host}/multi:default` });
    expect(r.mediaType).toBe(MEDIA.OCI_MANIFEST);
    const m = await client.getManifest('multi', 'default');
    expect(m.kind).toBe('manifest');
    if (m.kind === 'manifest') expect(m.manifest.annotations?.['containerd.io/snapshot/nydus-source-digest']).toBe(src[host]!.image.manifest.digest);
  });

  it('--platform linux/arm64 picks that entry', async () => {
    const r = await convert({ ...base(), target: `${reg.host}/multi:arm64`, platform: 'linux/arm64' });
    expect(r.manifests).toHaveLength(1);
    expect(r.manifests[0]!.platform).toBe('linux/arm64');
    const m = await client.getManifest('multi', 'arm64');
    if (m.kind === 'manifest') expect(m.manifest.annotations?.['containerd.io/snapshot/nydus-source-digest']).toBe(src.arm64!.image.manifest.digest);
    else expect.fail('expected a manifest');
  });

  it('--all-platforms pushes an index of the Nydus manifests, each marked nydus.remoteimage.v1, each mounting as its platform\'s rootfs', async (ctx) => {
    const r = await convert({ ...base(), target: `${reg.host}/multi:all`, allPlatforms: true });
    expect(r.mediaType).toBe(MEDIA.OCI_INDEX);
    const f = await client.getManifest('multi', 'all');
    expect(f.kind).toBe('index');
    const index = (f as { index: ImageIndex }).index;
    expect(index.manifests.map((d) => d.platform)).toEqual(ARCHES.map((a) => ({ os: 'linux', architecture: a, 'os.features': [OS_FEATURE_NYDUS] })));
    for (const [i, d] of index.manifests.entries()) {
      const m = await client.getManifest('multi', d.digest);
      if (m.kind !== 'manifest') expect.fail('expected a manifest');
      else {
        expect(m.manifest.layers.at(-1)!.annotations?.['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
        expect(m.manifest.annotations?.['containerd.io/snapshot/nydus-source-digest']).toBe(src[ARCHES[i]!]!.image.manifest.digest);
      }
    }
    for (const a of ARCHES) {
      const diffs = await judgeNydusImage(ctx as unknown as SkipContext, {
        at: { registry: reg.host, repo: 'multi' }, ref: 'all', platform: `linux/${a}`, rootfs: src[a]!.rootfs, scratch: join(work, `judge-${a}`),
      });
      expect(diffs, a).toEqual([]);
    }
  }, 120_000);

  it('a platform the index lacks: one line naming the platforms it has', async () => {
    const err = await convert({ ...base(), target: `${reg.host}/multi:none`, platform: 'linux/s390x' }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/no manifest for linux\/s390x \(it has linux\/amd64, linux\/arm64\)/);
    expect(await client.headManifest('multi', 'none')).toBeUndefined();
  });
});
