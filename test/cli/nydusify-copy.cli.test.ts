// `nydusify copy` as users run it (bin/nydusify.js, a real docker-registry): upstream's flags,
// --push-chunk-size read as go-humanize reads it, a missing image and the backend flags refused
// in one line.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/commands/nydusify/copy.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { sha256Of } from '../../src/oci/digest.js';
import { buildLayerDir, tarLayer, writeOciLayout } from '../helpers/oci.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk, type RunResult } from '../helpers/tools.js';
import { nydusify as runNydusify, nydusifyWorkDir } from './cli-runner.js';

const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/cli/nydusify-copy.cli.test.ts\n`);

let work = '';
let reg: TestRegistry;
let env: NodeJS.ProcessEnv;

const nydusify = (args: readonly string[]): Promise<RunResult> => runNydusify(args, { cwd: work, env, timeoutMs: 120_000 });
const raw = async (ref: string) => (await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', ref])).stdout;
const oneLine = (r: RunResult) => {
  const lines = r.stderr.toString().trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
};

describe('--push-chunk-size', () => {
  it('reads sizes as upstream\'s go-humanize does', () => {
    expect(parseByteSize('push-chunk-size', '0MB')).toBe(0);
    expect(parseByteSize('push-chunk-size', '16MB')).toBe(16_000_000);
    expect(parseByteSize('push-chunk-size', '16mib')).toBe(16 * 2 ** 20);
    expect(parseByteSize('push-chunk-size', '1.5 KB')).toBe(1500);
    expect(parseByteSize('push-chunk-size', '4096')).toBe(4096);
    for (const bad of ['', 'MB', '-1MB', '12XB', '1e3']) expect(() => parseByteSize('push-chunk-size', bad), bad).toThrow(/--push-chunk-size/);
  });
});

beforeAll(async () => {
  if (missing) return;
  ({ work, env } = await nydusifyWorkDir('nydusify-copy-cli-'));
  reg = await startRegistry();
  await buildLayerDir(join(work, 'l0'), [
    { kind: 'dir', path: '.', mtime: 1_600_000_000 },
    { kind: 'file', path: 'hello', data: 'hello\n', mtime: 1_600_000_000 },
  ]);
  const tar = await tarLayer(join(work, 'l0'), join(work, 'l0.tar'));
  await writeOciLayout(join(work, 'oci'), 'v1', [{ data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(tar) }]);
  await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'oci')}:v1`, `docker://${reg.host}/app:v1`]);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('nydusify copy', () => {
  it('copies registry → archive → registry with upstream\'s flags; quiet when piped at --log-level warn', async () => {
    const archive = join(work, 'app.tar');
    const a = await nydusify(['copy', '--source', `${reg.host}/app:v1`, '--target', `file://${archive}`, '--plain-http', '--log-level', 'warn']);
    expect(a.code, a.stderr.toString()).toBe(0);
    expect(a.stderr.toString()).toBe('');
    const b = await nydusify(['copy', '--source', `file://${archive}`, '--target', `${reg.host}/copied:v1`, '--plain-http', '--push-chunk-size', '1KB', '--work-dir', join(work, 'w'), '--nydus-image', '/nonexistent/nydus-image']);
    expect(b.code, b.stderr.toString()).toBe(0);
    expect((await raw(`docker://${reg.host}/copied:v1`)).equals(await raw(`docker://${reg.host}/app:v1`))).toBe(true);
  });

  it('a missing image, a bad chunk size and a backend flag: one line each', async () => {
    const gone = await nydusify(['copy', '--source', `${reg.host}/app:absent`, '--target', `${reg.host}/x:v1`, '--plain-http']);
    expect(gone.code).toBe(1);
    expect(oneLine(gone)).toMatch(/404/);
    const size = await nydusify(['copy', '--source', `${reg.host}/app:v1`, '--target', `${reg.host}/x:v1`, '--plain-http', '--push-chunk-size', 'lots']);
    expect(size.code).toBe(2);
    expect(oneLine(size)).toMatch(/--push-chunk-size/);
    const backend = await nydusify(['copy', '--source', `${reg.host}/app:v1`, '--target', `${reg.host}/x:v1`, '--plain-http', '--source-backend-type', 'oss']);
    expect(backend.code).toBe(1);
    expect(oneLine(backend)).toMatch(/not supported yet/);
  });
});
