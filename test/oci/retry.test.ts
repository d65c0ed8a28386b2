// Faults put between the client and a real registry by a proxy: 5xx and 429 answers, connections
// cut in the middle of an upload or a download, a registry that is gone, and hostile documents.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Of } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startFaultProxy, type Fault, type FaultProxy, type FaultRequest } from '../helpers/proxy.js';
import { caught, collect, registryMissing, sliced, startRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/retry.test.ts\n`);

describe.skipIf(missing)('retries and faults', () => {
  let reg: TestRegistry;
  let direct: RegistryClient;
  const proxies: FaultProxy[] = [];
  const clients: RegistryClient[] = [];
  beforeAll(async () => {
    reg = await startRegistry();
    direct = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  });
  afterAll(async () => {
    for (const c of [direct, ...clients]) await c?.close();
    for (const p of proxies) await p.stop();
    await reg?.stop();
  });

  async function through(rule: (r: FaultRequest) => Fault): Promise<{ proxy: FaultProxy; client: RegistryClient }> {
    const proxy = await startFaultProxy(reg.host, rule);
    proxies.push(proxy);
    const client = new RegistryClient(proxy.host, { plainHttp: true, credentials: null, retryDelayMs: 5, role: 'target' });
    clients.push(client);
    return { proxy, client };
  }

  /** Fails the first `n` requests matching `match` with `fault`, then forwards. */
  function firstN(n: number, match: (r: FaultRequest) => boolean, fault: Fault): (r: FaultRequest) => Fault {
    let left = n;
    return (r) => (match(r) && left-- > 0 ? fault : 'forward');
  }

  async function pushImage(repo: string): Promise<{ bytes: Buffer; digest: string }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    await direct.pushBlob(repo, sliced(config));
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, digest: sha256Of(config), size: config.length }, layers: [] }));
    return { bytes, digest: await direct.putManifest(repo, 'latest', bytes, MEDIA.OCI_MANIFEST) };
  }

  it('retries a manifest GET answered 500 twice or cut midway, and a POST answered 429, then succeeds', async () => {
    const { digest } = await pushImage('retry/m');
    const { proxy, client } = await through(firstN(2, (r) => r.method === 'GET', { status: 500 }));
    expect((await client.getManifest('retry/m', 'latest')).digest).toBe(digest);
    expect(proxy.seen.map((s) => `${s.method} ${s.fault}`)).toEqual(['GET status', 'GET status', 'GET forward']);

    const cut = await through(firstN(1, (r) => r.method === 'GET', { resetResponseAfter: 10 }));
    expect((await cut.client.getManifest('retry/m', 'latest')).digest).toBe(digest);
    expect(cut.proxy.seen.map((s) => `${s.method} ${s.fault}`)).toEqual(['GET resetResponseAfter', 'GET forward']);

    const t = await through(firstN(1, (r) => r.method === 'POST', { status: 429, headers: { 'retry-after': '0' } }));
    const data = randomBytes(1000);
    expect((await t.client.pushBlob('retry/m', sliced(data))).digest).toBe(sha256Of(data));
    expect(t.proxy.seen.map((s) => `${s.method} ${s.fault}`)).toEqual(['POST status', 'POST forward', 'PATCH forward', 'PUT forward']);
  });

  it('gives up after the retries with one line naming the registry and the status', async () => {
    const { proxy, client } = await through(() => ({ status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"try\\nlater"}]}' }));
    const e = await caught(client.getManifest('retry/m', 'latest'));
    expect(e.message).toBe(`${proxy.host}: 503 Service Unavailable: manifest retry/m:latest: registry says "UNAVAILABLE: try later"`);
    expect(e.code).toBe('OUTPUT');
    expect(proxy.seen.length).toBe(4);
  });

  it('restarts an upload from POST when the connection is reset mid-PATCH and the body can be reopened', async () => {
    const data = randomBytes(600_000);
    const { proxy, client } = await through(firstN(1, (r) => r.method === 'PATCH', { resetRequestAfter: 100_000 }));
    let opened = 0;
    const r = await client.pushBlob('retry/up', () => {
      opened++;
      return sliced(data);
    });
    expect(r.digest).toBe(sha256Of(data));
    expect(opened).toBe(2);
    expect(proxy.seen.map((s) => `${s.method} ${s.fault}`)).toEqual(['POST forward', 'PATCH resetRequestAfter', 'POST forward', 'PATCH forward', 'PUT forward']);
    expect((await collect(await direct.getBlob('retry/up', r.digest))).equals(data)).toBe(true);
  });

  it('fails clearly when the reset upload was a stream that cannot be read again', async () => {
    const data = randomBytes(600_000);
    const { proxy, client } = await through(firstN(1, (r) => r.method === 'PATCH', { resetRequestAfter: 100_000 }));
    const e = await caught(client.pushBlob('retry/once', sliced(data)));
    expect(e.message).toBe(`${proxy.host}: PATCH blob upload to retry/once: connection reset by the server (the blob upload to retry/once cannot be restarted: its content was a stream that can be read once)`);
    expect(await direct.headBlob('retry/once', sha256Of(data))).toBeUndefined();
  });

  it('resumes a blob download cut midway with a Range request, still verifying the whole digest', async () => {
    const data = randomBytes(400_000);
    const { digest } = await direct.pushBlob('retry/down', sliced(data));
    const { proxy, client } = await through(firstN(1, (r) => r.method === 'GET', { resetResponseAfter: 123_456 }));
    expect((await collect(await client.getBlob('retry/down', digest))).equals(data)).toBe(true);
    const gets = proxy.seen.filter((s) => s.method === 'GET');
    expect(gets.length).toBe(2);
    expect(gets[1]!.headers.range).toMatch(/^bytes=\d+-$/);
  });

  it('sends --push-chunk-size PATCHes with Content-Range', async () => {
    const data = randomBytes(250_000);
    const { proxy, client } = await through(() => 'forward');
    await client.pushBlob('retry/chunks', sliced(data), { chunkSize: 100_000 });
    expect(proxy.seen.filter((s) => s.method === 'PATCH').map((s) => s.headers['content-range'])).toEqual(['0-99999', '100000-199999', '200000-249999']);
  });

  it('says "connection refused" naming the registry when it is gone', async () => {
    const gone = await startRegistry();
    const c = new RegistryClient(gone.host, { plainHttp: true, credentials: null, retryDelayMs: 5, role: 'target' });
    clients.push(c);
    await gone.stop();
    const e = await caught(c.pushBlob('x/y', () => sliced(Buffer.from('abc'))));
    expect(e.message).toBe(`${gone.host}: POST blob upload to x/y: connection refused`);
  });

  it('refuses hostile manifests in one line naming the registry and the manifest', async () => {
    const served = new Map<string, { body: string; type?: string }>();
    const { proxy, client } = await through((r) => {
      const tag = /manifests\/(.*)$/.exec(r.url)?.[1];
      const s = tag !== undefined ? served.get(tag) : undefined;
      return s ? { status: 200, headers: { 'content-type': s.type ?? MEDIA.OCI_MANIFEST }, body: s.body } : 'forward';
    });
    const d = `sha256:${'a'.repeat(64)}`;
    const good = { schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, digest: d, size: 2 }, layers: [] as unknown[] };
    const cases: Array<[string, unknown, string, string?]> = [
      ['path', { ...good, layers: [{ mediaType: MEDIA.OCI_LAYER_GZIP, digest: 'sha256:../../../etc/passwd', size: 1 }] }, 'layers[0].digest "sha256:../../../etc/passwd" is not sha256:<64 lowercase hex digits>'],
      ['algo', { ...good, config: { ...good.config, digest: `sha512:${'b'.repeat(128)}` } }, 'config.digest "sha512:bbbb'],
      ['algo2', { ...good, config: { ...good.config, digest: `sha512:${'b'.repeat(128)}` } }, 'uses an algorithm other than sha256'],
      ['size', { ...good, layers: [{ mediaType: MEDIA.OCI_LAYER_GZIP, digest: d, size: -1 }] }, 'layers[0].size "-1" is not a size in bytes'],
      ['type', { ...good, layers: 'none' }, 'manifest.layers is string "none", not an array'],
      ['annot', { ...good, annotations: { a: 1 } }, 'manifest.annotations["a"] is number "1", not a string'],
      ['v1', { ...good, schemaVersion: 1 }, 'schemaVersion is "1", not 2 (Docker schema 1 manifests are not supported)'],
      ['json', '{"schemaVersion": 2,', 'not valid JSON'],
      ['mixed', { ...good, mediaType: MEDIA.OCI_INDEX }, `served as ${MEDIA.OCI_MANIFEST} but the document says "${MEDIA.OCI_INDEX}"`],
      ['platform', { schemaVersion: 2, mediaType: MEDIA.OCI_INDEX, manifests: [{ ...good.config, mediaType: MEDIA.OCI_MANIFEST, platform: { os: 'linux' } }] }, 'manifests[0].platform.architecture is missing, not a string', MEDIA.OCI_INDEX],
      ['schema1', { schemaVersion: 1, name: 'x' }, 'Docker schema 1 manifests are not supported (push the image again with a current client)', MEDIA.DOCKER_SCHEMA1_SIGNED],
      ['huge', { ...good, annotations: { pad: 'x'.repeat(5 << 20) } }, 'exceeds MANIFEST_MAX (4194304)'],
    ];
    for (const [tag, doc, why, type] of cases) served.set(tag, { body: typeof doc === 'string' ? doc : JSON.stringify(doc), type });
    for (const [tag, , why] of cases) {
      const e = await caught(client.getManifest('evil/app', tag));
      expect(e.message, tag).toContain(`${proxy.host}: manifest evil/app:${tag}: `);
      expect(e.message, tag).toContain(why);
    }
    // Bytes that are not the digest asked for.
    served.set(d, { body: JSON.stringify(good) });
    const e = await caught(client.getManifest('evil/app', d));
    expect(e.message).toBe(`${proxy.host}: manifest evil/app@${d}: content has digest ${sha256Of(JSON.stringify(good))}`);
  });
});
