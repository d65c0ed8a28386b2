// `convert --nydus-image PATH` against a real docker-registry: the layers are built by that
// program, exec'd with the converter's argv (spec oci-and-converters.md §2.3-2.4: `create` per
// layer reading the tar from a FIFO and writing the blob into another, then `merge`). Pointed at
// our own bin (through a shell launcher, as a drop-in nydus-image would be), the multi-layer
// SAMPLE_LAYERS image converts to an image that passes `check`, is the same image the in-process
// conversion makes, and, pulled back, exported by `nydus-image export --block` and mounted by the
// kernel, equals the rootfs umoci unpacks from the source layers.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/oci/check.js';
import { convert } from '../../src/oci/convert.js';
import { ConvertArgs } from '../../src/oci/external-builder.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { SkipContext } from '../helpers/kernel.js';
import { buildSourceImage, compressLayer, judgeNydusImage, pushLayout, SAMPLE_LAYERS, umociMissing, writeOciLayout, type SourceImage } from '../helpers/oci.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool } from '../helpers/tools.js';

const BIN = resolve('bin/nydus-image.js');
const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-builder.test.ts\n`);

let work = '';
let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;
let launcher = '';
let src: SourceImage;

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-builder-'));
  env = await anonymousDockerEnv(work);
  // Each run of the launcher logs its argv, so the test sees what the converter exec'd.
  launcher = join(work, 'nydus-image');
  await writeFile(launcher, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${join(work, 'argv.log')}\nexec node ${BIN} "$@"\n`);
  await chmod(launcher, 0o755);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  src = await buildSourceImage(join(work, 'src'), SAMPLE_LAYERS);
  await writeOciLayout(join(work, 'layout'), 'v1', src.tars.map((t) => compressLayer(t, 'gzip')));
  await pushLayout(join(work, 'layout'), 'v1', `${reg.host}/app:v1`);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('convert --nydus-image', () => {
  it('execs the builder with the converter\'s argv; the image passes check, equals the in-process one and mounts as the umoci rootfs', async (ctx) => {
    const base = { source: `${reg.host}/app:v1`, plainHttp: true, env, workDir: join(work, 'w') };
    const inProc = await convert({ ...base, target: `${reg.host}/app:inproc` });
    const ext = await convert({ ...base, target: `${reg.host}/app:ext`, nydusImage: launcher });

    const argv = (await readFile(join(work, 'argv.log'), 'utf8')).trim().split('\n');
    const creates = argv.filter((l) => l.startsWith('create ') && !l.startsWith('create -h'));
    expect(argv[0]).toBe('create -h');
    expect(creates).toHaveLength(SAMPLE_LAYERS.length);
    for (const l of creates) {
      expect(l).toMatch(/^create --log-level warn --prefetch-policy fs --blob \S+\/nydus-converter-\w+\/blob\.rafs --whiteout-spec none --fs-version 6 --type tar-rafs --blob-inline-meta --features blob-toc --compressor zstd --chunk-size 0x100000 \S+\/nydus-converter-\w+\/blob\.targz$/);
    }
    const merges = argv.filter((l) => l.startsWith('merge '));
    expect(merges).toHaveLength(1);
    const hexes = ext.manifests[0]!.blobs.map((d) => d.slice(7));
    expect(merges[0]).toMatch(new RegExp(`^merge --log-level warn --prefetch-policy fs --output-json \\S+/merge-output\\.json --bootstrap \\S+/bootstrap ${hexes.map((h) => `\\S+/${h}`).join(' ')}$`));
    expect(ConvertArgs.create('/W', { fsVersion: 6, compressor: 'lz4_block', chunkSize: 0x10000, prefetch: ['/'], chunkDict: '/d' }))
      .toEqual(['create', '--log-level', 'warn', '--prefetch-policy', 'fs', '--blob', '/W/blob.rafs', '--whiteout-spec', 'none', '--fs-version', '6',
        '--type', 'tar-rafs', '--blob-inline-meta', '--features', 'blob-toc', '--chunk-dict', 'bootstrap=/d', '--compressor', 'lz4_block', '--chunk-size', '0x10000', '/W/blob.targz']);

    // The builds are deterministic: the same blobs, the same bootstrap layer, byte for byte.
    expect(ext.manifests[0]!.blobs).toEqual(inProc.manifests[0]!.blobs);
    expect(ext.manifests[0]!.bootstrap).toBe(inProc.manifests[0]!.bootstrap);
    expect(ext.digest).toBe(inProc.digest);

    const r = await check({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:ext`, plainHttp: true, env, workDir: join(work, 'check') });
    expect(r.differences).toEqual([]);
    expect(r.ok).toBe(true);
    const diffs = await judgeNydusImage(ctx as unknown as SkipContext, { at: { registry: reg.host, repo: 'app' }, ref: 'ext', rootfs: src.rootfs, scratch: join(work, 'judge') });
    expect(diffs).toEqual([]);
  }, 240_000);

  it('a builder that fails: one line naming the layer, the program and its last message; no tag', async () => {
    const bad = join(work, 'bad-builder');
    await writeFile(bad, `#!/bin/sh\nif [ "$2" = "-h" ]; then echo "--type tar-rafs"; exit 0; fi\necho "error: disk on fire" >&2\nexit 3\n`);
    await chmod(bad, 0o755);
    const err = await convert({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:bad`, plainHttp: true, env, workDir: join(work, 'w'), nydusImage: bad, pushRetryDelayMs: 1 })
      .then(() => undefined, (e: Error) => e);
    expect(err?.message.split('\n')).toHaveLength(1);
    expect(err?.message).toMatch(/layer \d .*bad-builder create exited with status 3: error: disk on fire/);
    expect(await client.headManifest('app', 'bad')).toBeUndefined();
  }, 60_000);

  it('a builder that exits 0 without reading its source or writing its blob: an error, not a hang', async () => {
    const lazy = join(work, 'lazy-builder');
    await writeFile(lazy, `#!/bin/sh\nif [ "$2" = "-h" ]; then echo "--type tar-rafs"; fi\nexit 0\n`);
    await chmod(lazy, 0o755);
    const err = await convert({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:lazy`, plainHttp: true, env, workDir: join(work, 'w'), nydusImage: lazy, pushRetryDelayMs: 1 })
      .then(() => undefined, (e: Error) => e);
    expect(err?.message.split('\n')).toHaveLength(1);
    expect(err?.message).toMatch(/the blob .*lazy-builder made \(0 bytes\) has no TOC/);
    expect(await client.headManifest('app', 'lazy')).toBeUndefined();
  }, 60_000);

  it('a builder without tar-rafs is refused by name', async () => {
    const old = join(work, 'old-builder');
    await writeFile(old, '#!/bin/sh\necho "create [OPTIONS] --source-type directory"\n');
    await chmod(old, 0o755);
    const err = await convert({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:old`, plainHttp: true, env, workDir: join(work, 'w'), nydusImage: old })
      .then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain('offers no --type tar-rafs');
  }, 60_000);
});
