// `nydusify convert --prefetch-patterns` (the paths read from stdin) and `--prefetch-dir`, as
// upstream's getPrefetchPatterns: the list goes to every layer build and to the merge, so the
// merged bootstrap's prefetch table names those paths; with neither, "/"; both together are a
// usage error. Judged by `nydus-image inspect -R prefetch` on the bootstrap pulled back from a
// real docker-registry, for the in-process build and for --nydus-image.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA } from '../../src/oci/media-types.js';
import { sha256Of } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildLayerDir, tarLayer, writeOciLayout } from '../helpers/oci.js';
import { collect, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk, type RunResult } from '../helpers/tools.js';
import { nydusImageOk, REPO, nydusify as runNydusify, nydusifyWorkDir } from './cli-runner.js';

const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/cli/nydusify-convert-prefetch.cli.test.ts\n`);

let work = '';
let reg: TestRegistry;
let env: NodeJS.ProcessEnv;
const T = 1_600_000_000;

const nydusify = (args: readonly string[], input?: string): Promise<RunResult> => runNydusify(args, { cwd: work, env, ...(input !== undefined ? { input } : {}) });

beforeAll(async () => {
  if (missing) return;
  ({ work, env } = await nydusifyWorkDir('nydusify-prefetch-'));
  reg = await startRegistry();
  const layers = [
    [
      { kind: 'dir', path: '.', mtime: T },
      { kind: 'dir', path: 'bin', mtime: T },
      { kind: 'file', path: 'bin/tool', data: 'tool\n', mtime: T },
      { kind: 'dir', path: 'etc', mtime: T },
      { kind: 'file', path: 'etc/conf', data: 'conf\n', mtime: T },
    ],
    [
      { kind: 'dir', path: '.', mtime: T },
      { kind: 'dir', path: 'data', mtime: T },
      { kind: 'file', path: 'data/a', data: 'a\n', mtime: T },
    ],
  ] as const;
  const oci = [];
  for (const [i, entries] of layers.entries()) {
    await buildLayerDir(join(work, `l${i}`), entries);
    const tar = await tarLayer(join(work, `l${i}`), join(work, `l${i}.tar`));
    oci.push({ data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(tar) });
  }
  await writeOciLayout(join(work, 'oci'), 'v1', oci);
  await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'oci')}:v1`, `docker://${reg.host}/app:v1`]);
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The paths of the merged bootstrap's prefetch table, by `nydus-image inspect -R prefetch`. */
async function prefetchOf(tag: string): Promise<unknown> {
  const raw = JSON.parse((await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app:${tag}`])).stdout.toString());
  const boot = raw.layers.at(-1);
  const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  const dir = join(work, `boot-${tag}`);
  await mkdir(dir);
  try {
    await writeFile(join(dir, 'layer.tgz'), await collect(await client.getBlob('app', boot.digest, boot.size)));
  } finally {
    await client.close();
  }
  await runOk('tar', ['-xzf', join(dir, 'layer.tgz'), '-C', dir]);
  const out = await nydusImageOk(['inspect', '-B', join(dir, 'image', 'image.boot'), '-R', 'prefetch']);
  return (JSON.parse(out.stdout.toString()) as Array<{ path: string[] }>).flatMap((e) => e.path);
}

const base = (tag: string) => ['convert', '--source', `${reg.host}/app:v1`, '--target', `${reg.host}/app:${tag}`, '--plain-http'];

describe.skipIf(missing)('nydusify convert: prefetch', () => {
  it('--prefetch-patterns reads the paths from stdin; the merged bootstrap prefetches them', async () => {
    const r = await nydusify([...base('patterns'), '--prefetch-patterns'], '/bin\n\n/etc/conf\n/data/a\n');
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(await prefetchOf('patterns')).toEqual(['/bin', '/etc/conf', '/data/a']);
  });

  it('--prefetch-dir names one directory', async () => {
    const r = await nydusify([...base('dir'), '--prefetch-dir', '/data']);
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(await prefetchOf('dir')).toEqual(['/data']);
  });

  it('neither: "/" as upstream', async () => {
    const r = await nydusify(base('default'));
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(await prefetchOf('default')).toEqual(['/']);
  });

  it('--nydus-image gets the list on the stdin of create and merge', async () => {
    const launcher = join(work, 'nydus-image');
    await writeFile(launcher, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, 'bin', 'nydus-image.js'))} "$@"\n`);
    await chmod(launcher, 0o755);
    const r = await nydusify([...base('ext'), '--prefetch-patterns', '--nydus-image', launcher], '/etc/conf\n/bin/tool\n');
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(await prefetchOf('ext')).toEqual(['/etc/conf', '/bin/tool']);
  });

  it('both flags: a usage error in one line', async () => {
    const r = await nydusify([...base('both'), '--prefetch-patterns', '--prefetch-dir', '/data'], '/bin\n');
    expect(r.code).toBe(2);
    expect(r.stderr.toString().trim()).toMatch(/^Error: --prefetch-dir conflicts with --prefetch-patterns$/);
  });
});
