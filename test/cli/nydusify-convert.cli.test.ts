// `nydusify convert` as users run it (bin/nydusify.js, a real docker-registry): Docker and OCI
// media types, --oci, --with-referrer, --target-suffix, --output-json metrics (spec
// oci-and-converters.md §2.7), quiet when piped, and the flags not done yet refused in one line.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA } from '../../src/oci/media-types.js';
import { sha256Of } from '../../src/oci/digest.js';
import { buildLayerDir, tarLayer, writeOciLayout } from '../helpers/oci.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, run, runOk, type RunResult } from '../helpers/tools.js';
import { NYDUSIFY, REPO, nydusify as runNydusify, nydusifyOk, nydusifyWorkDir, skopeoRaw } from './cli-runner.js';
import { tocEntry } from '../helpers/converter.js';
import { openImage } from '../../src/read/open.js';
import { CHUNK_BATCH } from '../../src/read/model.js';
import { FEATURE_BATCH } from '../../src/format/rafs/blob-table.js';

const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/cli/nydusify-convert.cli.test.ts\n`);

let work = '';
let reg: TestRegistry;
let env: NodeJS.ProcessEnv;

const nydusify = (args: readonly string[]): Promise<RunResult> => runNydusify(args, { cwd: work, env });
const ok = (args: readonly string[]): Promise<RunResult> => nydusifyOk(args, { cwd: work, env });
const raw = skopeoRaw;

const oneLine = (r: RunResult) => {
  const lines = r.stderr.toString().trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
};

beforeAll(async () => {
  if (missing) return;
  // No SOURCE/TARGET from the caller's environment: they are flags' environment variables.
  ({ work, env } = await nydusifyWorkDir('nydusify-cli-'));
  reg = await startRegistry();
  await buildLayerDir(join(work, 'l0'), [
    { kind: 'dir', path: '.', mtime: 1_600_000_000 },
    { kind: 'file', path: 'hello', data: 'hello\n', mtime: 1_600_000_000 },
    { kind: 'symlink', path: 'link', target: 'hello', mtime: 1_600_000_000 },
  ]);
  const tar = await tarLayer(join(work, 'l0'), join(work, 'l0.tar'));
  await writeOciLayout(join(work, 'oci'), 'v1', [{ data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(tar) }]);
  // The same image as Docker schema 2.
  await runOk('skopeo', ['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${join(work, 'oci')}:v1`, `docker://${reg.host}/app/docker:v1`]);
  await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'oci')}:v1`, `docker://${reg.host}/app/oci:v1`]);
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('nydusify convert', () => {
  it('keeps Docker media types for a Docker source, writes the metrics JSON, and prints no progress when piped', async () => {
    const metrics = join(work, 'metrics.json');
    const r = await ok(['convert', '--source', `${reg.host}/app/docker:v1`, '--target', `${reg.host}/app/docker:v1-nydus`, '--plain-http', '--output-json', metrics]);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr.toString()).not.toMatch(/layer 1\/1/);
    const m = await raw(`${reg.host}/app/docker:v1-nydus`);
    expect(m.mediaType).toBe(MEDIA.DOCKER_MANIFEST);
    expect(m.config.mediaType).toBe(MEDIA.DOCKER_CONFIG);
    expect(m.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MEDIA.NYDUS_BLOB, MEDIA.DOCKER_LAYER_GZIP]);
    const j = JSON.parse(await readFile(metrics, 'utf8'));
    expect(Object.keys(j)).toEqual(['SourceImageSize', 'TargetImageSize', 'SourcePullElapsed', 'ConversionElapsed', 'TargetPushElapsed']);
    for (const v of Object.values(j)) expect(Number.isSafeInteger(v) && (v as number) > 0).toBe(true);
    const src = await raw(`${reg.host}/app/docker:v1`);
    expect(j.SourceImageSize).toBe(src.config.size + src.layers[0].size);
    expect(j.TargetImageSize).toBe(m.config.size + m.layers[0].size + m.layers[1].size);
  });

  it('--oci turns a Docker source into OCI types; --with-referrer sets the subject; --target-suffix names the target', async () => {
    await ok(['convert', '--source', `${reg.host}/app/docker:v1`, '--target-suffix', '-oci', '--oci', '--with-referrer', '--plain-http']);
    const m = await raw(`${reg.host}/app/docker:v1-oci`);
    expect(m.mediaType).toBe(MEDIA.OCI_MANIFEST);
    expect(m.config.mediaType).toBe(MEDIA.OCI_CONFIG);
    expect(m.layers.at(-1).mediaType).toBe(MEDIA.OCI_LAYER_GZIP);
    const srcBytes = (await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/docker:v1`])).stdout;
    expect(m.subject).toEqual({ mediaType: MEDIA.DOCKER_MANIFEST, digest: sha256Of(srcBytes), size: srcBytes.length });
    expect(m.annotations['containerd.io/snapshot/nydus-source-digest']).toBe(sha256Of(srcBytes));
  });

  it('an OCI source gives OCI types without --oci; the config keeps the source config.config', async () => {
    await ok(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:nydus`, '--plain-http', '--compressor', 'lz4_block', '--fs-chunk-size', '0x10000']);
    const m = await raw(`${reg.host}/app/oci:nydus`);
    expect(m.mediaType).toBe(MEDIA.OCI_MANIFEST);
    const c = await raw(`${reg.host}/app/oci:nydus`, true);
    const s = await raw(`${reg.host}/app/oci:v1`, true);
    expect(c.config).toEqual(s.config);
    expect(c.rootfs.diff_ids).toHaveLength(2);
  });

  it('--batch-size builds batch blobs (read back whole by nydusify check); a batch size above the chunk size is one line', async () => {
    await ok(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:batch`, '--plain-http', '--batch-size', '0x1000', '--fs-chunk-size', '0x10000']);
    const m = await raw(`${reg.host}/app/oci:batch`);
    const layer = m.layers[0] as { digest: string };
    const res = await fetch(`http://${reg.host}/v2/app/oci/blobs/${layer.digest}`);
    const blob = Buffer.from(await res.arrayBuffer());
    const boot = join(work, 'batch-layer.boot');
    await writeFile(boot, tocEntry(blob, 'image.boot')!);
    const image = openImage(boot);
    expect(image.blobs[0]!.features & FEATURE_BATCH).toBe(FEATURE_BATCH);
    expect(image.chunkTable.every((c) => (c.flags & CHUNK_BATCH) !== 0)).toBe(true);
    await ok(['check', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:batch`, '--plain-http', '--work-dir', join(work, 'check-batch')]);
    const r = await nydusify(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:never`, '--plain-http', '--batch-size', '0x20000', '--fs-chunk-size', '0x10000']);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toMatch(/batch size 0x20000 is bigger than chunk size 0x10000/);
  });

  it('refuses what it does not do yet, in one line, before touching a registry', async () => {
    const base = ['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:never`, '--plain-http'];
    for (const extra of [['--oci-ref', '--chunk-dict', `bootstrap:registry:${reg.host}/app/oci:v1`], ['--reverse'], ['--source-backend-type', 'modelfile'], ['--build-cache', 'x']]) {
      const r = await nydusify([...base, ...extra]);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(oneLine(r)).toMatch(/^Error: .*not supported yet/);
    }
    const noTarget = await nydusify(['convert', '--source', `${reg.host}/app/oci:v1`, '--plain-http']);
    expect(noTarget.code).toBe(2);
    expect(oneLine(noTarget)).toMatch(/--target or --target-suffix/);
    const r = await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/oci:never`]).catch((e: Error) => e);
    expect(r).toBeInstanceOf(Error);
  });

  it('--fs-version 5 (built in-process, and by --nydus-image through the converter\'s argv): a RAFS v5 image that check reads back', async () => {
    const launcher = join(work, 'nydus-image-launcher-v5');
    await writeFile(launcher, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, 'bin', 'nydus-image.js'))} "$@"\n`);
    await chmod(launcher, 0o755);
    for (const [tag, extra] of [['v5', []], ['v5-ext', ['--nydus-image', launcher]]] as const) {
      await ok(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:${tag}`, '--plain-http', '--fs-version', '5', ...extra]);
      const m = await raw(`${reg.host}/app/oci:${tag}`);
      const boot = m.layers.at(-1);
      expect(boot.annotations).toEqual({ 'containerd.io/snapshot/nydus-bootstrap': 'true', 'containerd.io/snapshot/nydus-fs-version': '5' });
      expect(m.annotations['containerd.io/snapshot/nydus-fs-version']).toBe('5');
      // The bootstrap layer holds image/image.boot, a RAFS v5 superblock, and no blob.meta (v6 only).
      const layer = join(work, `${tag}-bootstrap.tgz`);
      await runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/app/oci:${tag}`, `oci:${join(work, `${tag}-layout`)}:x`]);
      const blob = join(work, `${tag}-layout`, 'blobs', 'sha256', boot.digest.slice(7));
      await writeFile(layer, await readFile(blob));
      const listed = (await runOk('tar', ['-tzf', layer])).stdout.toString().trim().split('\n');
      expect(listed.filter((n) => !n.endsWith('/') && n !== 'image')).toEqual(['image/image.boot']);
      const image = (await runOk('tar', ['-xzOf', layer, 'image/image.boot'])).stdout;
      expect(image.readUInt32LE(0)).toBe(0x5241_4653);
      expect(image.readUInt32LE(4)).toBe(0x500);
      const c = await nydusify(['check', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:${tag}`, '--plain-http', '--work-dir', join(work, `${tag}-check`)]);
      const report = await readFile(join(work, `${tag}-check`, 'check-report.json'), 'utf8').catch(() => '');
      expect(c.code, `${c.stderr.toString()}${report}`).toBe(0);
    }
  });

  it('--fs-align-chunk (and --backend-aligned-chunk, BACKEND_ALIGNED_CHUNK): v5 chunks at 4 KiB-aligned offsets, in-process and as --aligned-chunk to --nydus-image; check passes', async () => {
    // Files of sizes that are no multiple of 4 KiB, one chunk each: a packed v5 blob puts some at unaligned offsets.
    await buildLayerDir(join(work, 'align'), [
      { kind: 'dir', path: '.', mtime: 1_600_000_000 },
      ...[5000, 100, 9001, 70_000, 4096, 1].map((n, i) => ({ kind: 'file' as const, path: `f${i}`, data: Buffer.alloc(n, 0x41 + i), mtime: 1_600_000_000 })),
    ]);
    const tar = await tarLayer(join(work, 'align'), join(work, 'align.tar'));
    await writeOciLayout(join(work, 'align-oci'), 'v1', [{ data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(tar) }]);
    await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'align-oci')}:v1`, `docker://${reg.host}/app/align:v1`]);
    const argvLog = join(work, 'align-argv.log');
    const launcher = join(work, 'nydus-image-launcher-align');
    await writeFile(launcher, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(argvLog)}\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, 'bin', 'nydus-image.js'))} "$@"\n`);
    await chmod(launcher, 0o755);
    /** The merged bootstrap of the image at `tag`, opened by our reader. */
    const bootstrapOf = async (tag: string) => {
      const m = await raw(`${reg.host}/app/align:${tag}`);
      const res = await fetch(`http://${reg.host}/v2/app/align/blobs/${m.layers.at(-1).digest}`);
      const layer = join(work, `align-${tag}.tgz`);
      await writeFile(layer, Buffer.from(await res.arrayBuffer()));
      const boot = join(work, `align-${tag}.boot`);
      await writeFile(boot, (await runOk('tar', ['-xzOf', layer, 'image/image.boot'])).stdout);
      return openImage(boot);
    };
    const base = (tag: string) => ['convert', '--source', `${reg.host}/app/align:v1`, '--target', `${reg.host}/app/align:${tag}`, '--plain-http'];
    const aligned = (offsets: number[]) => offsets.every((o) => o % 4096 === 0);

    await ok([...base('v5-packed'), '--fs-version', '5']);
    const packed = (await bootstrapOf('v5-packed')).chunkTable.map((c) => c.uncompressedOffset);
    expect(packed).toHaveLength(6);
    expect(aligned(packed)).toBe(false);

    for (const [tag, extra, envAdd] of [
      ['v5-aligned', ['--fs-align-chunk'], {}],
      ['v5-aligned-ext', ['--fs-align-chunk', '--nydus-image', launcher], {}],
      ['v5-aligned-deprecated', ['--backend-aligned-chunk'], {}],
      ['v5-aligned-env', [], { BACKEND_ALIGNED_CHUNK: 'true' }],
    ] as const) {
      const r = await run(process.execPath, [NYDUSIFY, ...base(tag), '--fs-version', '5', ...extra], { cwd: work, env: { ...env, ...envAdd }, timeoutMs: 300_000 });
      expect(r.code, `${tag}: ${r.stderr.toString()}`).toBe(0);
      const image = await bootstrapOf(tag);
      expect(image.version).toBe(5);
      const offsets = image.chunkTable.map((c) => c.uncompressedOffset);
      expect(offsets, tag).toHaveLength(6);
      expect(aligned(offsets), `${tag}: ${offsets.join(' ')}`).toBe(true);
      const c = await nydusify(['check', '--source', `${reg.host}/app/align:v1`, '--target', `${reg.host}/app/align:${tag}`, '--plain-http', '--work-dir', join(work, `check-${tag}`)]);
      expect(c.code, `${tag}: ${c.stderr.toString()}`).toBe(0);
    }
    // The external builder got --aligned-chunk where the converter puts it: after --compressor, before --chunk-size.
    const creates = (await readFile(argvLog, 'utf8')).trim().split('\n').filter((l) => l.startsWith('create --log-level'));
    expect(creates).toHaveLength(1);
    expect(creates[0]).toMatch(/ --fs-version 5 --type tar-rafs --blob-inline-meta --compressor zstd --aligned-chunk --chunk-size 0x100000 \S+\/blob\.targz$/);

    // With v6 (which always aligns) it is accepted and changes nothing in-process; an external builder is still given it.
    await ok([...base('v6'), '--fs-version', '6']);
    await ok([...base('v6-aligned'), '--fs-version', '6', '--fs-align-chunk']);
    expect((await raw(`${reg.host}/app/align:v6-aligned`)).layers).toEqual((await raw(`${reg.host}/app/align:v6`)).layers);
    await ok([...base('v6-aligned-ext'), '--fs-align-chunk', '--nydus-image', launcher]);
    const v6Create = (await readFile(argvLog, 'utf8')).trim().split('\n').filter((l) => l.startsWith('create --log-level')).at(-1)!;
    expect(v6Create).toMatch(/ --fs-version 6 --type tar-rafs --blob-inline-meta --features blob-toc --compressor zstd --aligned-chunk --chunk-size 0x100000 /);
    expect(aligned((await bootstrapOf('v6-aligned-ext')).chunkTable.map((c) => c.uncompressedOffset))).toBe(true);
  });

  it('--nydus-image runs that builder (our own bin behind a launcher); one that lacks tar-rafs is refused in one line', async () => {
    const launcher = join(work, 'nydus-image-launcher');
    await writeFile(launcher, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, 'bin', 'nydus-image.js'))} "$@"\n`);
    await chmod(launcher, 0o755);
    await ok(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:ext`, '--plain-http', '--nydus-image', launcher]);
    const m = await raw(`${reg.host}/app/oci:ext`);
    expect(m.layers.at(-1).annotations['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
    const r = await nydusify(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:never`, '--plain-http', '--nydus-image', '/bin/true']);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toMatch(/^Error: --nydus-image \/bin\/true: its "create -h" offers no --type tar-rafs/);
  });

  it('--chunk-dict: a Nydus image as the dict (CHUNK_DICT too); bootstrap:local:PATH refused in one line', async () => {
    await ok(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:dict`, '--plain-http']);
    const r = await run(process.execPath, [NYDUSIFY, 'convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:deduped`, '--plain-http'], {
      cwd: work, env: { ...env, CHUNK_DICT: `bootstrap:registry:${reg.host}/app/oci:dict` }, timeoutMs: 300_000,
    });
    expect(r.code, r.stderr.toString()).toBe(0);
    const m = await raw(`${reg.host}/app/oci:deduped`);
    const d = await raw(`${reg.host}/app/oci:dict`);
    // Its own blob, then the dict's blob holding the chunks, then the bootstrap.
    expect(m.layers).toHaveLength(3);
    expect(m.layers[1].digest).toBe(d.layers[0].digest);
    const bad = await nydusify(['convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:never`, '--plain-http', '--chunk-dict', 'bootstrap:local:/x']);
    expect(bad.code).toBe(1);
    expect(oneLine(bad)).toMatch(/^Error: --chunk-dict bootstrap:local:PATH is not supported/);
  });

  it('NYDUS_HOOK_PLUGIN_PATH: both hooks see the manifest; a throwing beforePushManifest stops the push in one line', async () => {
    const log = join(work, 'hooks.log');
    const plugin = join(work, 'hooks.mjs');
    await writeFile(plugin, `import { appendFileSync, existsSync } from 'node:fs';
export async function beforePushManifest(info) {
  appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: 'before', target: info.targetRef, layers: info.manifest.layers.length, boot: existsSync(info.bootstrapPath) }) + '\\n');
  if (info.targetRef.endsWith(':refused')) throw new Error('not this one');
}
export function afterPushManifest(info) {
  appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: 'after', target: info.targetRef, digest: info.digest }) + '\\n');
}
`);
    const withHooks = { ...env, NYDUS_HOOK_PLUGIN_PATH: plugin };
    const r = await run(process.execPath, [NYDUSIFY, 'convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:hooked`, '--plain-http'], { cwd: work, env: withHooks });
    expect(r.code, r.stderr.toString()).toBe(0);
    const lines = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { hook: 'before', target: `${reg.host}/app/oci:hooked`, layers: 2, boot: true },
      { hook: 'after', target: `${reg.host}/app/oci:hooked`, digest: expect.stringMatching(/^sha256:/) },
    ]);
    const refused = await run(process.execPath, [NYDUSIFY, 'convert', '--source', `${reg.host}/app/oci:v1`, '--target', `${reg.host}/app/oci:refused`, '--plain-http'], { cwd: work, env: withHooks });
    expect(refused.code).toBe(1);
    expect(oneLine(refused)).toBe('Error: hook beforePushManifest failed: not this one');
    expect(await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/oci:refused`]).catch((e: Error) => e)).toBeInstanceOf(Error);
  });

  it('a source that does not exist: one line naming the registry and the 404, exit 1, no target tag', async () => {
    const r = await nydusify(['convert', '--source', `${reg.host}/app/none:v1`, '--target', `${reg.host}/app/none:nydus`, '--plain-http']);
    expect(r.code).toBe(1);
    const line = oneLine(r);
    expect(line).toContain(reg.host);
    expect(line).toMatch(/404/);
  });
});
