// `convert` builds every layer on one pool of chunk workers (a thread per core), shared by the
// layers built at once: three layers too large to build on the main thread go through the same
// worker threads, and the image they make passes `check` against its source. Before, each layer
// started a pool of its own (cores / concurrency threads), and the last layer built alone had
// half of the cores.
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/oci/check.js';
import { convert } from '../../src/oci/convert.js';
import { sha256Of } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildLayerTars, pushImage } from '../helpers/oci.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { prng } from '../helpers/tree.js';
import { watchingThreads } from '../helpers/threads.js';

const T0 = 1_600_000_000;
const MiB = 1024 * 1024;

const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-pool.test.ts\n`);

let work = '';
let reg: TestRegistry;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-pool-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  // Random bytes do not compress: each layer is past the inline mark compressed too, so its build
  // takes the pool at once.
  const tars = await buildLayerTars(join(work, 'layers'), [0, 1, 2].map((i) => [
    { kind: 'dir', path: '.', mtime: T0 },
    { kind: 'dir', path: `d${i}`, mtime: T0 },
    { kind: 'file', path: `d${i}/big`, data: prng(300 + i, 34 * MiB + 4321 * i), mtime: T0 },
    ...Array.from({ length: 30 }, (_, k) => ({ kind: 'file' as const, path: `d${i}/f${k}`, data: prng(1000 * i + k, 3000 * k + 1), mtime: T0 })),
    // The same bytes in every layer: chunks deduplicated within a layer's blob, not across layers.
    { kind: 'file', path: `d${i}/same`, data: prng(9, 2 * MiB), mtime: T0 },
  ]));
  const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  try {
    await pushImage(client, 'pool', 'v1', tars.map((t) => ({ data: gzipSync(t, { level: 1 }), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(t) })));
  } finally {
    await client.close();
  }
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('convert: the layers share one worker pool', () => {
  it('three large layers are built on the same chunk worker threads, one per core, and the image checks against its source', async () => {
    const { value: r, seen } = await watchingThreads('nydus-chunks', () =>
      convert({ source: `${reg.host}/pool:v1`, target: `${reg.host}/pool:nydus`, plainHttp: true, env, workDir: join(work, 'convert-work') }));
    expect(r.manifests[0]!.blobs).toHaveLength(3);
    expect(seen.size).toBe(Math.max(1, availableParallelism()));
    const checked = await check({ source: `${reg.host}/pool:v1`, target: `${reg.host}/pool:nydus`, plainHttp: true, env, workDir: join(work, 'check-work') });
    expect(checked.differences).toEqual([]);
    expect(checked.ok).toBe(true);
  }, 300_000);
});
