// convert when the target registry misbehaves, through a fault proxy in front of a real
// docker-registry: 500s and a connection reset mid-upload are retried (a layer's upload restarts
// by pulling and building the layer again); a target that goes away mid-push fails the run in one
// line with no tag written, and a rerun completes without uploading the blobs already there.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert, type ConvertOptions } from '../../src/oci/convert.js';
import { NydusError } from '../../src/errors.js';
import { sha256Of } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildLayerDir, tarLayer, writeOciLayout } from '../helpers/oci.js';
import { startFaultProxy, type Fault, type FaultProxy, type FaultRequest } from '../helpers/proxy.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';

const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-faults.test.ts\n`);

const LAYERS = 3;
let work = '';
let src: TestRegistry;
let dst: TestRegistry;
let env: NodeJS.ProcessEnv;
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-faults-'));
  env = await anonymousDockerEnv(work);
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  const layers = [];
  for (let i = 0; i < LAYERS; i++) {
    await buildLayerDir(join(work, `l${i}`), [
      { kind: 'dir', path: '.', mtime: 1_600_000_000 },
      { kind: 'file', path: `file${i}`, data: prng(10 + i, 200_000), mtime: 1_600_000_000 },
    ]);
    const tar = await tarLayer(join(work, `l${i}`), join(work, `l${i}.tar`));
    layers.push({ data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(tar) });
  }
  await writeOciLayout(join(work, 'oci'), 'v1', layers);
  await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'oci')}:v1`, `docker://${src.host}/app:v1`]);
}, 300_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  await Promise.all([src?.stop(), dst?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

async function proxy(rule: (r: FaultRequest) => Fault): Promise<FaultProxy> {
  const p = await startFaultProxy(dst.host, rule);
  proxies.push(p);
  return p;
}

const options = (target: string, workDir: string): ConvertOptions => ({
  source: `${src.host}/app:v1`, target, plainHttp: true, env, workDir, pushRetryCount: 2, pushRetryDelayMs: 10, concurrency: 1,
});

/** What the target registry itself (not through the proxy) has under a tag. */
async function tagged(repo: string, tag: string): Promise<boolean> {
  const c = new RegistryClient(dst.host, { plainHttp: true, credentials: null });
  try {
    return (await c.headManifest(repo, tag)) !== undefined;
  } finally {
    await c.close();
  }
}

const isBlobPatch = (r: FaultRequest) => r.method === 'PATCH' && r.url.includes('/blobs/uploads/');

describe.skipIf(missing)('convert: target faults', () => {
  it('500 twice on the blob upload and once on the manifest PUT: retried, and the image is complete', async () => {
    let patches = 0;
    let puts = 0;
    const p = await proxy((r) => {
      if (isBlobPatch(r) && patches++ < 2) return { status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"injected"}]}' };
      if (r.method === 'PUT' && r.url.includes('/manifests/') && puts++ < 1) return { status: 500 };
      return 'forward';
    });
    const result = await convert(options(`${p.host}/five:v1`, join(work, 'w500')));
    expect(p.seen.filter((s) => s.fault === 'status')).toHaveLength(3);
    expect(result.manifests[0]!.blobs).toHaveLength(LAYERS);
    expect(await tagged('five', 'v1')).toBe(true);
  });

  it('a connection reset in the middle of a blob upload: the layer starts over and the run succeeds', async () => {
    let first = true;
    const p = await proxy((r) => {
      if (isBlobPatch(r) && first) {
        first = false;
        return { resetRequestAfter: 50_000 };
      }
      return 'forward';
    });
    const result = await convert(options(`${p.host}/reset:v1`, join(work, 'wreset')));
    expect(p.seen.filter((s) => s.fault === 'resetRequestAfter')).toHaveLength(1);
    expect(p.seen.filter((s) => isBlobPatch(s)).length).toBe(LAYERS + 2 + 1);
    expect(await tagged('reset', 'v1')).toBe(true);
    expect(result.manifests[0]!.blobs).toHaveLength(LAYERS);
  });

  it('the target goes away after the first blob: one line, no tag; a rerun completes without uploading that blob again', async () => {
    const workDir = join(work, 'wdead');
    let dead = false;
    let firstBlob = '';
    const p = await proxy((r) => {
      if (dead) return { resetRequestAfter: 0 };
      if (r.method === 'PUT' && /\/blobs\/uploads\/.*[?&]digest=/.test(r.url)) {
        firstBlob = decodeURIComponent(/digest=([^&]+)/.exec(r.url)![1]!);
        dead = true;
      }
      return 'forward';
    });
    const err = await convert(options(`${p.host}/dead:v1`, workDir)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NydusError);
    const message = (err as NydusError).message;
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toContain(p.host);
    expect(await tagged('dead', 'v1')).toBe(false);
    expect(firstBlob).toMatch(/^sha256:/);
    // What the rerun needs: the pushed layer's bootstrap and its record.
    expect((await readdir(join(workDir, 'nydusify-layers'))).sort()).toContain(firstBlob.slice(7));

    const q = await proxy(() => 'forward');
    const result = await convert(options(`${q.host}/dead:v1`, workDir));
    expect(result.manifests[0]!.blobs[0]).toBe(firstBlob);
    const commits = q.seen.filter((s) => s.method === 'PUT' && s.url.includes('/blobs/uploads/'));
    expect(commits.some((s) => s.url.includes(encodeURIComponent(firstBlob)) || s.url.includes(firstBlob))).toBe(false);
    expect(q.seen.some((s) => s.method === 'HEAD' && s.url.endsWith(`/blobs/${firstBlob}`))).toBe(true);
    expect(commits.length).toBe(LAYERS - 1 + 2);
    expect(await tagged('dead', 'v1')).toBe(true);
    expect(await readdir(workDir)).toEqual([]);
  });
});
