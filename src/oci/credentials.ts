// Registry credentials where docker keeps them: $DOCKER_CONFIG/config.json (or
// ~/.docker/config.json) with `auths` entries (base64 `auth` or username/password), and
// `credHelpers` / `credsStore` answered by `docker-credential-<name> get`.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NydusError, fsError } from '../errors.js';
import { LIMITS, limitError } from '../format/limits.js';
import { quote } from './digest.js';
import { DOCKER_HUB, DOCKER_HUB_API } from './reference.js';

export interface Credentials {
  username: string;
  /** The password, or with username "<token>" an identity (OAuth2 refresh) token, as docker spells it. */
  password: string;
}

/** The user name docker uses for an identity token in place of a password. */
export const IDENTITY_TOKEN_USER = '<token>';

/** The key docker files Docker Hub's credentials under. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** Where the Docker config is: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** host[:port] of a config key, which may be a bare host or a URL ("https://host/v1/"). */
function keyHost(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

function sameRegistry(a: string, b: string): boolean {
  const hub = (h: string) => (h === 'index.docker.io' || h === DOCKER_HUB_API ? DOCKER_HUB : h);
  return hub(a) === hub(b);
}

interface DockerConfig {
  auths: Record<string, unknown>;
  credHelpers: Record<string, unknown>;
  credsStore?: string;
}

async function readDockerConfig(path: string): Promise<DockerConfig | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError('SOURCE', path, e);
  }
  if (bytes.length > LIMITS.REGISTRY_JSON_MAX.value) throw limitError('REGISTRY_JSON_MAX', path, bytes.length);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new NydusError('SOURCE', 'not valid JSON', { path });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new NydusError('SOURCE', 'is not a JSON object', { path });
  const o = doc as Record<string, unknown>;
  const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  return { auths: obj(o.auths), credHelpers: obj(o.credHelpers), credsStore: typeof o.credsStore === 'string' ? o.credsStore : undefined };
}

function fromAuthEntry(entry: unknown, where: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  if (typeof e.identitytoken === 'string' && e.identitytoken !== '') return { username: IDENTITY_TOKEN_USER, password: e.identitytoken };
  if (typeof e.auth === 'string' && e.auth !== '') {
    const text = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) throw new NydusError('SOURCE', `${where}: "auth" is not base64 of user:password`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  return undefined;
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Asks `docker-credential-<helper> get` for the credentials of `serverUrl`; undefined when it has none or is not installed. */
export function credentialHelperGet(helper: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  if (!HELPER_NAME.test(helper)) return Promise.reject(new NydusError('SOURCE', `credential helper name ${quote(helper)} is not a program name`));
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    let size = 0;
    let over = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size > LIMITS.REGISTRY_JSON_MAX.value) {
        over = true;
        child.kill('SIGKILL');
      } else out.push(b);
    });
    child.stderr.resume();
    child.stdin.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') resolve(undefined);
      else reject(new NydusError('SOURCE', `${program}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (over) return reject(limitError('REGISTRY_JSON_MAX', `${program} get`, size));
      const text = Buffer.concat(out).toString('utf8');
      // Helpers exit 1 with "credentials not found" on stdout when they know nothing of the server.
      if (code !== 0) return /not found/i.test(text) ? resolve(undefined) : reject(new NydusError('SOURCE', `${program} get ${serverUrl}: exit ${code}: ${quote(text.trim(), 200)}`));
      try {
        const doc = JSON.parse(text) as Record<string, unknown>;
        if (typeof doc.Username !== 'string' || typeof doc.Secret !== 'string') throw new Error('no Username/Secret');
        resolve(doc.Secret === '' ? undefined : { username: doc.Username, password: doc.Secret });
      } catch {
        reject(new NydusError('SOURCE', `${program} get ${serverUrl}: the answer is not {"Username", "Secret"} JSON`));
      }
    });
    child.stdin.end(serverUrl);
  });
}

/**
 * The credentials the Docker config holds for `registry` (host[:port], "docker.io" for Docker
 * Hub): its credHelpers entry first, then credsStore, then auths, as docker looks them up.
 */
export async function dockerCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const path = dockerConfigPath(env);
  const cfg = await readDockerConfig(path);
  if (!cfg) return undefined;
  const host = keyHost(registry);
  const serverUrl = sameRegistry(host, DOCKER_HUB) ? DOCKER_HUB_KEY : host;
  const helperKey = Object.keys(cfg.credHelpers).find((k) => sameRegistry(keyHost(k), host));
  const helper = helperKey !== undefined ? cfg.credHelpers[helperKey] : cfg.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    const c = await credentialHelperGet(helper, serverUrl, env);
    if (c) return c;
  }
  // An exact key first, then any key naming the same host (with a scheme or a path).
  const keys = Object.keys(cfg.auths);
  const key = keys.find((k) => k === serverUrl) ?? keys.find((k) => sameRegistry(keyHost(k), host));
  return key === undefined ? undefined : fromAuthEntry(cfg.auths[key], `${path}: auths[${quote(key)}]`);
}
