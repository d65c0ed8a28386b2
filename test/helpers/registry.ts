// Real registries for tests: a `docker-registry` process (distribution v2, the Debian package) on
// 127.0.0.1 with a free port, a temporary storage directory and a config file written here;
// optionally with htpasswd basic auth, bearer tokens from an issuer started here (the registry
// checks the tokens' signatures itself), or TLS with a self-signed certificate.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createSign, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { expect } from 'vitest';
import { NydusError } from '../../src/errors.js';
import { hasTool, runOk } from './tools.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

/**
 * The environment for talking to the test's anonymous registries: process.env with DOCKER_CONFIG
 * pointing at `dir`/docker-config, whose config.json has no credentials (none from the host).
 */
export async function anonymousDockerEnv(dir: string): Promise<NodeJS.ProcessEnv> {
  await mkdir(join(dir, 'docker-config'), { recursive: true });
  await writeFile(join(dir, 'docker-config', 'config.json'), '{}');
  return { ...process.env, DOCKER_CONFIG: join(dir, 'docker-config') };
}

/** Why registries cannot be started here, or undefined when they can. */
export function registryMissing(): string | undefined {
  if (!hasTool(REGISTRY_BIN) && !hasTool('docker-registry')) return 'docker-registry is not installed (apt-get install docker-registry)';
  return undefined;
}

/** A port nobody listens on right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** One htpasswd line as the registry reads it (bcrypt; cost 5 keeps tests fast). */
export function htpasswdLine(user: string, password: string): string {
  return `${user}:${bcrypt.hashSync(password, 5)}`;
}

export interface TlsFiles {
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 and localhost, written by openssl into `dir`. */
export async function selfSignedCert(dir: string, name = 'tls'): Promise<TlsFiles> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await runOk('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { cert, key };
}

export type RegistryAuth =
  | { htpasswd: Record<string, string> }
  | { token: { realm: string; service: string; issuer: string; rootCertBundle: string } };

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  tls?: TlsFiles;
}

export interface TestRegistry {
  /** host:port, as a reference names it. */
  host: string;
  port: number;
  /** http(s)://host:port */
  url: string;
  /** The registry's storage root (blobs are under docker/registry/v2/blobs/sha256/<2>/<hex>/data). */
  storage: string;
  proc: ChildProcess;
  /** The path where the registry keeps a blob's bytes. */
  blobPath(hex: string): string;
  /** Ends the registry (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
  /** What the registry wrote on stderr so far. */
  log(): string;
}

function configYaml(port: number, storage: string, opts: StartRegistryOptions, htpasswdPath: string): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'health:',
    '  storagedriver:',
    '    enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.cert}`, `    key: ${opts.tls.key}`);
  const auth = opts.auth;
  if (auth && 'htpasswd' in auth) lines.push('auth:', '  htpasswd:', '    realm: test-registry', `    path: ${htpasswdPath}`);
  if (auth && 'token' in auth) {
    const t = auth.token;
    lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCertBundle}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Any answer from GET /v2/ means the registry is serving. */
function ping(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(`${url}/v2/`, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** Starts a registry and waits until it answers. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'nydus-registry-'));
  const storage = join(dir, 'data');
  const htpasswdPath = join(dir, 'htpasswd');
  if (opts.auth && 'htpasswd' in opts.auth) {
    await writeFile(htpasswdPath, Object.entries(opts.auth.htpasswd).map(([u, p]) => htpasswdLine(u, p)).join('\n') + '\n');
  }
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    await writeFile(config, configYaml(port, storage, opts, htpasswdPath));
    const proc = spawn(hasTool(REGISTRY_BIN) ? REGISTRY_BIN : 'docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    let exited = false;
    proc.on('exit', () => (exited = true));
    const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    while (!exited && Date.now() < deadline && !(await ping(url))) await new Promise((r) => setTimeout(r, 50));
    if (exited || Date.now() >= deadline) {
      proc.kill('SIGKILL');
      // Another process may have taken the port between freePort() and the bind: try another.
      if (tries < 3 && /address already in use/.test(stderr)) continue;
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start:\n${stderr}`);
    }
    return {
      host: `127.0.0.1:${port}`,
      port,
      url,
      storage,
      proc,
      blobPath: (hex) => join(storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'),
      log: () => stderr,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          const gone = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
          await gone;
          clearTimeout(t);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

export interface TokenIssuer {
  /** The realm URL the registry names in its challenge. */
  realm: string;
  service: string;
  issuer: string;
  /** The certificate bundle the registry trusts for token signatures. */
  rootCertBundle: string;
  /** Every token request: the user (or "" when anonymous) and the scopes asked for. */
  requests: Array<{ user: string; scopes: string[] }>;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * A token server as the docker token spec describes it: GET ?service=&scope=... with Basic
 * credentials, answering an RS256 JWT whose x5c header carries a certificate the registry trusts.
 * It grants whatever is asked to a user with the right password; anything else gets 401.
 */
export async function startTokenIssuer(dir: string, users: Record<string, string>): Promise<TokenIssuer> {
  const { cert, key } = await selfSignedCert(dir, 'token-signer');
  const keyPem = await readFile(key, 'utf8');
  const certDer = new X509Certificate(await readFile(cert)).raw;
  const service = 'test-registry';
  const issuer = 'test-issuer';
  const requests: TokenIssuer['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const auth = req.headers.authorization ?? '';
    let user = '';
    if (auth.startsWith('Basic ')) {
      const text = Buffer.from(auth.slice(6), 'base64').toString();
      const colon = text.indexOf(':');
      user = text.slice(0, colon);
      if (users[user] === undefined || users[user] !== text.slice(colon + 1)) {
        requests.push({ user, scopes });
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
    }
    requests.push({ user, scopes });
    if (user === '') {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions };
    });
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(signing).sign(keyPem);
    const token = `${signing}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: cert,
    requests,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

/** sha256 hex of bytes, as registries name blobs. */
export const hexOf = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A stream of `data` in uneven slices, as a builder would produce it. */
export function sliced(data: Buffer, sizes = [1, 7000, 65536, 3]): Readable {
  return Readable.from((function* () {
    let off = 0;
    for (let i = 0; off < data.length; i++) {
      const n = sizes[i % sizes.length]!;
      yield data.subarray(off, off + n);
      off += n;
    }
  })(), { objectMode: false });
}

export async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function caught(p: Promise<unknown>): Promise<NydusError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as Error).message).not.toContain('\n');
    return e as NydusError;
  }
  throw new Error('expected a failure');
}
