// `convert --nydus-image PATH` against a real docker-registry: the layers are built by that
// program, exec'd with the converter's argv (spec oci-and-converters.md §2.3-2.4: `create` per
// layer reading the tar from a FIFO and writing the blob into another, then `merge`). Pointed at
// our own bin (through a shell launcher, as a drop-in nydus-image would be), the image passes
// `check` and is the same image the in-process conversion makes.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/oci/check.js';
import { convert } from '../../src/oci/convert.js';
import { ConvertArgs } from '../../src/oci/external-builder.js';
import { sha256Of } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildLayerDir, tarLayer } from '../helpers/oci.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { prng } from '../helpers/tree.js';

const BIN = resolve('bin/nydus-image.js');
const T0 = 1_600_000_000;
const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-builder.test.ts\n`);

let work = '';
let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;
let launcher = '';

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-builder-'));
  await mkdir(join(work, 'docker-config'));
  await writeFile(join(work, 'docker-config', 'config.json'), '{}');
  env = { ...process.env, DOCKER_CONFIG: join(work, 'docker-config') };
  // Each run of the launcher logs its argv, so the test sees what the converter exec'd.
  launcher = join(work, 'nydus-image');
  await writeFile(launcher, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${join(work, 'argv.log')}\nexec node ${BIN} "$@"\n`);
  await chmod(launcher, 0o755);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  const layers = [
    [
      { kind: 'dir', path: '.', mtime: T0 },
      { kind: 'dir', path: 'bin', mtime: T0 },
      { kind: 'file', path: 'bin/tool', data: prng(1, 3 * 1024 * 1024 + 5), mode: 0o755, mtime: T0 },
      { kind: 'file', path: 'gone', data: 'gone\n', mtime: T0 },
      { kind: 'file', path: 'hard', data: 'linked\n', mtime: T0, xattrs: { 'user.a': 'b' } },
      { kind: 'hardlink', path: 'hard2', to: 'hard' },
    ],
    [
      { kind: 'dir', path: '.', mtime: T0 },
      { kind: 'file', path: '.wh.gone', data: '', mtime: T0 },
      { kind: 'file', path: 'new', data: prng(2, 200_000), mtime: T0 },
    ],
    // Metadata only: no chunks, no blob.meta.
    [{ kind: 'dir', path: '.', mode: 0o700, mtime: T0 }],
  ] as const;
  const descs = [];
  const diffIds = [];
  for (const [i, entries] of layers.entries()) {
    await buildLayerDir(join(work, `l${i}`), entries);
    const tar = await tarLayer(join(work, `l${i}`), join(work, `l${i}.tar`));
    const gz = gzipSync(tar);
    const r = await client.pushBlob('app', () => Readable.from([gz]), { digest: sha256Of(gz), size: gz.length });
    descs.push({ mediaType: MEDIA.OCI_LAYER_GZIP, digest: r.digest, size: r.size });
    diffIds.push(sha256Of(tar));
  }
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const c = await client.pushBlob('app', () => Readable.from([cfg]), { digest: sha256Of(cfg), size: cfg.length });
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, digest: c.digest, size: c.size }, layers: descs }));
  await client.putManifest('app', 'v1', manifest, MEDIA.OCI_MANIFEST);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('convert --nydus-image', () => {
  it('execs the builder with the converter\'s argv; the image passes check and equals the in-process one', async () => {
    const base = { source: `${reg.host}/app:v1`, plainHttp: true, env, workDir: join(work, 'w') };
    const inProc = await convert({ ...base, target: `${reg.host}/app:inproc` });
    const ext = await convert({ ...base, target: `${reg.host}/app:ext`, nydusImage: launcher });

    const argv = (await readFile(join(work, 'argv.log'), 'utf8')).trim().split('\n');
    const creates = argv.filter((l) => l.startsWith('create ') && !l.startsWith('create -h'));
    expect(argv[0]).toBe('create -h');
    expect(creates).toHaveLength(3);
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
