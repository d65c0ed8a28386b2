// Authentication against real registries: htpasswd basic auth and bearer tokens from an issuer
// the test starts (the registry verifies the tokens' signatures itself), credentials from the
// Docker config and from a credential helper, and a blob redirect to another host that must not
// carry the registry's Authorization header.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChallenges } from '../../src/oci/auth.js';
import { dockerCredentials } from '../../src/oci/credentials.js';
import { sha256Of } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startFaultProxy } from '../helpers/proxy.js';
import { hasTool } from '../helpers/tools.js';
import { caught, collect, registryMissing, sliced, startRegistry, startTokenIssuer, type TestRegistry, type TokenIssuer } from '../helpers/registry.js';

const missing = registryMissing();
const noOpenssl = missing ?? (hasTool('openssl') ? undefined : 'openssl is not installed (it makes the token signing certificate)');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): registry tests of test/oci/auth.test.ts\n`);
else if (noOpenssl) process.stderr.write(`\n!!! SKIPPED (${noOpenssl}): bearer token tests of test/oci/auth.test.ts\n`);

describe('WWW-Authenticate', () => {
  it('parses bearer and basic challenges, quoted values with commas and escapes, several in one header', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
    expect(parseChallenges(['Basic realm="a \\"quoted\\" realm"', 'bearer Realm=x, Service = y'])).toEqual([
      { scheme: 'basic', params: { realm: 'a "quoted" realm' } },
      { scheme: 'bearer', params: { realm: 'x', service: 'y' } },
    ]);
    expect(parseChallenges('Basic realm="r", Bearer realm="t",service="s"').map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
    expect(parseChallenges('=,="x" ,, Basic').at(-1)).toEqual({ scheme: 'basic', params: {} });
  });
});

describe('Docker config credentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nydus-dockercfg-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads auths (base64 auth or username/password, keys with a scheme) and asks credHelpers and credsStore', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin);
    // A real helper program, as docker runs it: the server URL on stdin, JSON on stdout.
    await writeFile(join(bin, 'docker-credential-nydustest'), '#!/bin/sh\nread server\nif [ "$server" = "helped.example:5000" ]; then echo \'{"ServerURL":"x","Username":"hu","Secret":"hs"}\'; else echo "credentials not found in native keychain"; exit 1; fi\n');
    await chmod(join(bin, 'docker-credential-nydustest'), 0o755);
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      auths: {
        'a.example': { auth: Buffer.from('ua:pa:with:colons').toString('base64') },
        'https://b.example:444/v1/': { username: 'ub', password: 'pb' },
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:hubpw').toString('base64') },
        'helped.example:5000': { auth: Buffer.from('stale:stale').toString('base64') },
      },
      credHelpers: { 'helped.example:5000': 'nydustest', 'missing.example': 'not-installed' },
    }));
    const env = { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` };
    expect(await dockerCredentials('a.example', env)).toEqual({ username: 'ua', password: 'pa:with:colons' });
    expect(await dockerCredentials('b.example:444', env)).toEqual({ username: 'ub', password: 'pb' });
    expect(await dockerCredentials('docker.io', env)).toEqual({ username: 'hub', password: 'hubpw' });
    expect(await dockerCredentials('helped.example:5000', env)).toEqual({ username: 'hu', password: 'hs' });
    expect(await dockerCredentials('missing.example', env)).toBeUndefined();
    expect(await dockerCredentials('c.example', env)).toBeUndefined();
    expect(await dockerCredentials('a.example', { DOCKER_CONFIG: join(dir, 'none') })).toBeUndefined();
    // credsStore answers for every registry without a credHelpers entry.
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'nydustest', auths: { 'helped.example:5000': {} } }));
    expect(await dockerCredentials('helped.example:5000', env)).toEqual({ username: 'hu', password: 'hs' });
    expect(await dockerCredentials('other.example', env)).toBeUndefined();
    await writeFile(join(dir, 'config.json'), '{');
    const e = await caught(dockerCredentials('a.example', env));
    expect(e.message).toBe(`${join(dir, 'config.json')}: not valid JSON`);
  });
});

describe.skipIf(missing)('htpasswd basic auth', () => {
  let reg: TestRegistry;
  let cfgDir: string;
  beforeAll(async () => {
    reg = await startRegistry({ auth: { htpasswd: { alice: 'wonderland' } } });
    cfgDir = await mkdtemp(join(tmpdir(), 'nydus-dockercfg-'));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(cfgDir, { recursive: true, force: true });
  });

  it('pushes and pulls with the right credentials, from the options or the Docker config', async () => {
    const data = randomBytes(10_000);
    const c = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'alice', password: 'wonderland' } });
    const { digest } = await c.pushBlob('auth/app', sliced(data));
    expect((await collect(await c.getBlob('auth/app', digest))).equals(data)).toBe(true);
    await c.close();
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }));
    const d = new RegistryClient(reg.host, { plainHttp: true, env: { DOCKER_CONFIG: cfgDir } });
    expect(await d.headBlob('auth/app', digest)).toBe(data.length);
    await d.close();
  });

  it('says 401 in one line naming the registry for wrong or missing credentials', async () => {
    const c = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'alice', password: 'wrong' }, role: 'target' });
    const e = await caught(c.pushBlob('auth/app', sliced(Buffer.from('x'))));
    expect(e.message).toBe(`${reg.host}: 401 Unauthorized (check the credentials for this registry): POST blob upload to auth/app`);
    expect(e.code).toBe('OUTPUT');
    await c.close();
    const anon = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    const a = await caught(anon.getManifest('auth/app', 'latest'));
    expect(a.message).toMatch(new RegExp(`^${reg.host}: 401 Unauthorized \\(no credentials for this registry`));
    expect(a.exit).toBe(1);
    await anon.close();
  });

  it('follows a blob redirect to another host without the registry\'s Authorization header', async () => {
    const data = randomBytes(40_000);
    const auth = `Basic ${Buffer.from('alice:wonderland').toString('base64')}`;
    // The "CDN": another host name, serving the registry's blob with its own credentials.
    const cdnSaw: Array<string | undefined> = [];
    const cdn = http.createServer((req, res) => {
      cdnSaw.push(req.headers.authorization);
      http.get(`${reg.url}${req.url}`, { headers: { authorization: auth } }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
    });
    await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
    const cdnPort = (cdn.address() as AddressInfo).port;
    const proxy = await startFaultProxy(reg.host, (r) =>
      r.method === 'GET' && r.url.includes('/blobs/sha256:') ? { redirect: `http://localhost:${cdnPort}${r.url}` } : 'forward');
    const c = new RegistryClient(proxy.host, { plainHttp: true, credentials: { username: 'alice', password: 'wonderland' } });
    try {
      const { digest } = await c.pushBlob('auth/redirect', sliced(data));
      expect((await collect(await c.getBlob('auth/redirect', digest))).equals(data)).toBe(true);
      expect(cdnSaw).toEqual([undefined]);
      expect(proxy.seen.find((s) => s.fault === 'redirect')?.headers.authorization).toBe(auth);
    } finally {
      await c.close();
      await proxy.stop();
      await new Promise((r) => cdn.close(r));
    }
  });
});

describe.skipIf(noOpenssl)('bearer token auth', () => {
  let dir: string;
  let issuer: TokenIssuer;
  let reg: TestRegistry;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nydus-token-'));
    issuer = await startTokenIssuer(dir, { bob: 'builder' });
    reg = await startRegistry({ auth: { token: issuer } });
  });
  afterAll(async () => {
    await reg?.stop();
    await issuer?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('fetches one token per scope set, pull or pull,push, and reuses it until it expires', async () => {
    const c = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'bob', password: 'builder' } });
    const data = randomBytes(5000);
    const { digest } = await c.pushBlob('tok/app', sliced(data));
    await c.pushBlob('tok/app', sliced(randomBytes(100)));
    expect(await c.headBlob('tok/app', digest)).toBe(data.length);
    expect((await collect(await c.getBlob('tok/app', digest))).equals(data)).toBe(true);
    expect(await c.headBlob('tok/app', sha256Of('none'))).toBeUndefined();
    // A mount asks for push on the target and pull on the source in one token.
    const m = await c.pushBlob('tok/other', () => sliced(data), { digest, mountFrom: 'tok/app' });
    expect(m.mounted).toBe(true);
    const granted = issuer.requests.filter((r) => r.user === 'bob').map((r) => r.scopes.join(' '));
    expect(granted).toEqual([
      'repository:tok/app:pull,push',
      'repository:tok/app:pull',
      'repository:tok/other:pull,push repository:tok/app:pull',
      'repository:tok/other:pull',
    ]);
    await c.close();
  });

  it('says 401 in one line naming the registry when the token server refuses the credentials', async () => {
    const c = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'bob', password: 'wrong' } });
    const e = await caught(c.getManifest('tok/app', 'latest'));
    expect(e.message).toBe(`${reg.host}: 401 Unauthorized from the token server ${new URL(issuer.realm).origin} (check the credentials for this registry): "UNAUTHORIZED: bad credentials"`);
    await c.close();
  });
});
