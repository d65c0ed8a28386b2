// Backend configs: upstream's JSON (spec oci-and-converters.md §4.2-4.4), one table of fields per
// type, read for validation and messages alike. Every problem is one line naming the field.
import * as fs from 'node:fs';
import { NydusError } from '../errors.js';

export const BACKEND_TYPES = ['localfs', 'registry', 's3', 'oss', 'http-proxy'] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

type FieldType = 'string' | 'boolean' | 'number' | 'string[]' | 'object';
interface Field {
  type: FieldType;
  required?: boolean;
  /** Read by upstream but without effect here (timeouts, proxies): accepted, type-checked, unused. */
  unused?: boolean;
}

const HTTP_COMMON: Record<string, Field> = {
  skip_verify: { type: 'boolean' },
  ca_cert_files: { type: 'string[]', unused: true },
  timeout: { type: 'number', unused: true },
  connect_timeout: { type: 'number', unused: true },
  retry_limit: { type: 'number' },
  proxy: { type: 'object', unused: true },
};

/** The fields each type reads; anything else is refused as unknown (a typo must not pass silently). */
export const FIELDS: Record<BackendType, Record<string, Field>> = {
  localfs: { dir: { type: 'string' }, blob_file: { type: 'string' }, alt_dirs: { type: 'string[]', unused: true } },
  registry: {
    scheme: { type: 'string' }, host: { type: 'string', required: true }, repo: { type: 'string', required: true },
    auth: { type: 'string' }, registry_token: { type: 'string' }, blob_url_scheme: { type: 'string', unused: true },
    blob_redirected_host: { type: 'string', unused: true }, ...HTTP_COMMON,
  },
  s3: {
    endpoint: { type: 'string' }, scheme: { type: 'string' }, region: { type: 'string', required: true },
    bucket_name: { type: 'string', required: true }, object_prefix: { type: 'string' }, access_key_id: { type: 'string' },
    access_key_secret: { type: 'string' }, checksum_algorithm: { type: 'string' },
    // nydusify pack's names (spec §4.3): the bootstrap and blobs under their own prefixes.
    meta_prefix: { type: 'string' }, blob_prefix: { type: 'string' }, ...HTTP_COMMON,
  },
  oss: {
    endpoint: { type: 'string', required: true }, scheme: { type: 'string' }, bucket_name: { type: 'string', required: true },
    object_prefix: { type: 'string' }, access_key_id: { type: 'string' }, access_key_secret: { type: 'string' },
    meta_prefix: { type: 'string' }, blob_prefix: { type: 'string' }, ...HTTP_COMMON,
  },
  'http-proxy': { addr: { type: 'string', required: true }, path: { type: 'string' }, ...HTTP_COMMON },
};

export type BackendConfig = Record<string, unknown>;

export interface BackendSpec {
  type: BackendType;
  config: BackendConfig;
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function checkField(type: BackendType, name: string, f: Field, v: unknown): void {
  const bad = (want: string) => new NydusError('USAGE', `backend config (${type}): field "${name}" must be ${want}, not ${typeOf(v)}`);
  switch (f.type) {
    case 'string':
      if (typeof v !== 'string') throw bad('a string');
      break;
    case 'boolean':
      if (typeof v !== 'boolean') throw bad('a boolean');
      break;
    case 'number':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad('a non-negative integer');
      break;
    case 'string[]':
      if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw bad('an array of strings');
      break;
    case 'object':
      if (typeOf(v) !== 'object') throw bad('an object');
      break;
  }
}

const SCHEMES = ['http', 'https'];

/** Parses and checks `text` as a config of `type`; throws one USAGE line for the first problem. */
export function parseBackendConfig(typeName: string, text: string, where = 'backend config'): BackendSpec {
  if (!(BACKEND_TYPES as readonly string[]).includes(typeName)) {
    throw new NydusError('USAGE', `unknown backend type ${JSON.stringify(typeName)}: must be one of ${BACKEND_TYPES.join(', ')}`);
  }
  const type = typeName as BackendType;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new NydusError('USAGE', `${where} is not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeOf(raw) !== 'object') throw new NydusError('USAGE', `${where} must be a JSON object, not ${typeOf(raw)}`);
  let obj = raw as Record<string, unknown>;
  // The nydusd v2 form the snapshotter passes: {"version":2,"backend":{"type":T,"T":{…}}} (spec §2.5).
  if (obj.backend !== undefined && typeOf(obj.backend) === 'object') {
    const b = obj.backend as Record<string, unknown>;
    if (b.type !== type) throw new NydusError('USAGE', `${where}: field "backend.type" is ${JSON.stringify(b.type)}, but the backend type is ${type}`);
    const inner = b[type];
    if (typeOf(inner) !== 'object') throw new NydusError('USAGE', `${where}: field "backend.${type}" must be an object, not ${typeOf(inner)}`);
    obj = inner as Record<string, unknown>;
  }
  const fields = FIELDS[type];
  for (const [name, v] of Object.entries(obj)) {
    const f = fields[name];
    if (!f) throw new NydusError('USAGE', `backend config (${type}): unknown field ${JSON.stringify(name)}`);
    checkField(type, name, f, v);
  }
  for (const [name, f] of Object.entries(fields)) {
    if (f.required && (obj[name] === undefined || obj[name] === '')) throw new NydusError('USAGE', `backend config (${type}): missing required field "${name}"`);
  }
  if (obj.scheme !== undefined && !SCHEMES.includes(obj.scheme as string)) {
    throw new NydusError('USAGE', `backend config (${type}): field "scheme" must be http or https, not ${JSON.stringify(obj.scheme)}`);
  }
  if (type === 'localfs' && !obj.dir && !obj.blob_file) throw new NydusError('USAGE', 'backend config (localfs): missing required field "dir" (or "blob_file")');
  // Upstream joins scheme and endpoint ("<scheme>://<endpoint>"): a scheme in the endpoint cannot work.
  if ((type === 's3' || type === 'registry') && typeof (obj.endpoint ?? obj.host) === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test((obj.endpoint ?? obj.host) as string)) {
    const name = type === 's3' ? 'endpoint' : 'host';
    throw new NydusError('USAGE', `backend config (${type}): field "${name}" must not carry a scheme (${JSON.stringify(obj[name])}); give it in "scheme"`);
  }
  if (type === 'oss' && /^[a-z][a-z0-9+.-]*:\/\//i.test(obj.endpoint as string) && !/^https?:\/\//i.test(obj.endpoint as string)) {
    throw new NydusError('USAGE', `backend config (oss): field "endpoint" has a scheme other than http or https (${JSON.stringify(obj.endpoint)})`);
  }
  if (type === 'http-proxy' && !(obj.addr as string).startsWith('/') && !/^https?:\/\//.test(obj.addr as string)) {
    throw new NydusError('USAGE', `backend config (http-proxy): field "addr" must be a unix socket path or an http(s) URL, not ${JSON.stringify(obj.addr)}`);
  }
  return { type, config: obj };
}

/** The config from the flags: --backend-config TEXT or --backend-config-file FILE, exactly one. */
export function backendFromFlags(type: string | undefined, config: string | undefined, configFile: string | undefined): BackendSpec | undefined {
  if (type === undefined) {
    if (config !== undefined || configFile !== undefined) throw new NydusError('USAGE', `--backend-config${configFile !== undefined ? '-file' : ''} needs --backend-type`);
    return undefined;
  }
  if (config !== undefined && configFile !== undefined) throw new NydusError('USAGE', '--backend-config cannot be used with --backend-config-file');
  if (config === undefined && configFile === undefined) throw new NydusError('USAGE', '--backend-config or --backend-config-file must be specified');
  let text = config;
  if (configFile !== undefined) {
    try {
      text = fs.readFileSync(configFile, 'utf8');
    } catch (e) {
      throw new NydusError('USAGE', `fail to read backend config file: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { path: configFile });
    }
  }
  return parseBackendConfig(type, text!, configFile !== undefined ? `backend config file ${configFile}` : '--backend-config');
}

export const str = (c: BackendConfig, k: string, dflt = ''): string => (typeof c[k] === 'string' && c[k] !== '' ? (c[k] as string) : dflt);
