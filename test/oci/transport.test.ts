// How the client reaches a registry: TLS with a self-signed certificate (refused unless told
// insecure), plain HTTP, and HTTP(S)_PROXY / NO_PROXY from the environment.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/oci/registry.js';
import { startConnectProxy } from '../helpers/proxy.js';
import { caught, collect, registryMissing, selfSignedCert, sliced, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool } from '../helpers/tools.js';

const missing = registryMissing() ?? (hasTool('openssl') ? undefined : 'openssl is not installed');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/transport.test.ts\n`);

describe.skipIf(missing)('TLS', () => {
  let dir: string;
  let reg: TestRegistry;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nydus-tls-'));
    reg = await startRegistry({ tls: await selfSignedCert(dir) });
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a self-signed registry unless insecure, then works with it', async () => {
    const strict = new RegistryClient(reg.host, { credentials: null, role: 'target', hints: { insecure: '--target-insecure' }, retryDelayMs: 10 });
    const e = await caught(strict.pushBlob('tls/app', sliced(Buffer.from('x'))));
    expect(e.message).toBe(`${reg.host}: POST blob upload to tls/app: TLS certificate not trusted (DEPTH_ZERO_SELF_SIGNED_CERT); --target-insecure skips verification`);
    await strict.close();

    const insecure = new RegistryClient(reg.host, { insecure: true, credentials: null });
    const data = randomBytes(20_000);
    const { digest } = await insecure.pushBlob('tls/app', sliced(data));
    expect((await collect(await insecure.getBlob('tls/app', digest))).equals(data)).toBe(true);
    await insecure.close();
  });

  it('says to use plain HTTP when HTTPS meets an HTTP registry, and the reverse', async () => {
    const plainReg = await startRegistry();
    try {
      const c = new RegistryClient(plainReg.host, { credentials: null, hints: { plainHttp: '--plain-http' }, retryDelayMs: 10 });
      const e = await caught(c.headBlob('a/b', `sha256:${'0'.repeat(64)}`));
      expect(e.message).toMatch(new RegExp(`^${plainReg.host}: blob sha256:0+ in a/b: TLS handshake failed \\(.*\\); if the registry speaks plain HTTP, use --plain-http$`));
      await c.close();
      const d = new RegistryClient(reg.host, { plainHttp: true, credentials: null, retries: 0 });
      const f = await caught(d.headBlob('a/b', `sha256:${'0'.repeat(64)}`));
      // Go's TLS server answers plain HTTP with a 400 page.
      expect(f.message).toMatch(new RegExp(`^${reg.host}: 400 Bad Request`));
      await d.close();
    } finally {
      await plainReg.stop();
    }
  });
});

describe.skipIf(missing)('HTTP proxies from the environment', () => {
  let reg: TestRegistry;
  const saved = { ...process.env };
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    process.env = saved;
    await reg?.stop();
  });

  it('tunnels through HTTP_PROXY, and goes direct for hosts in NO_PROXY', async () => {
    const proxy = await startConnectProxy();
    try {
      for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTPS_PROXY', 'NO_PROXY']) delete process.env[k];
      process.env.HTTP_PROXY = proxy.url;
      const via = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
      const data = randomBytes(1000);
      const { digest } = await via.pushBlob('proxy/app', sliced(data));
      expect((await collect(await via.getBlob('proxy/app', digest))).equals(data)).toBe(true);
      await via.close();
      expect(proxy.tunnels.length).toBeGreaterThan(0);
      expect(new Set(proxy.tunnels)).toEqual(new Set([reg.host]));

      const before = proxy.tunnels.length;
      process.env.NO_PROXY = '127.0.0.1';
      const direct = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
      expect(await direct.headBlob('proxy/app', digest)).toBe(data.length);
      await direct.close();
      expect(proxy.tunnels.length).toBe(before);
    } finally {
      await proxy.stop();
    }
  });
});
