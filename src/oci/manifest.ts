// Manifests, indexes and image configs as a registry serves them, read as hostile JSON: the size
// is bounded before parsing, every field the toolchain uses is type-checked and every digest is
// validated before anything puts it in a URL or a path. Unknown fields are kept as they are, so
// a manifest rewritten from a parsed one loses nothing.
import { limitError, LIMITS, type LimitName } from '../format/limits.js';
import { NydusError } from '../errors.js';
import { badDigest, quote, type Digest } from './digest.js';
import { MEDIA, MANIFEST_TYPES } from './media-types.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/** A manifest or an index as fetched: its exact bytes, their digest and media type, and the parsed document. */
export type Fetched =
  | { kind: 'manifest'; mediaType: string; digest: Digest; bytes: Buffer; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; digest: Digest; bytes: Buffer; index: ImageIndex };

type Obj = Record<string, unknown>;

class Checker {
  constructor(private readonly where: string) {}

  fail(field: string, why: string): NydusError {
    return new NydusError('SOURCE', `${this.where}: ${field} ${why}`);
  }

  obj(v: unknown, field: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.fail(field, `is ${kindOf(v)}, not an object`);
    return v as Obj;
  }

  str(o: Obj, key: string, field: string, optional: true): string | undefined;
  str(o: Obj, key: string, field: string, optional?: false): string;
  str(o: Obj, key: string, field: string, optional = false): string | undefined {
    const v = o[key];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string') throw this.fail(`${field}.${key}`, `is ${kindOf(v)}, not a string`);
    return v;
  }

  arr(o: Obj, key: string, field: string, optional = false): unknown[] | undefined {
    const v = o[key];
    if (v === undefined && optional) return undefined;
    if (!Array.isArray(v)) throw this.fail(`${field}.${key}`, `is ${kindOf(v)}, not an array`);
    return v;
  }

  strings(o: Obj, key: string, field: string): void {
    const a = this.arr(o, key, field, true);
    a?.forEach((s, i) => {
      if (typeof s !== 'string') throw this.fail(`${field}.${key}[${i}]`, `is ${kindOf(s)}, not a string`);
    });
  }

  annotations(o: Obj, field: string): void {
    if (o.annotations === undefined) return;
    const a = this.obj(o.annotations, `${field}.annotations`);
    for (const [k, v] of Object.entries(a)) {
      if (typeof v !== 'string') throw this.fail(`${field}.annotations[${quote(k, 60)}]`, `is ${kindOf(v)}, not a string`);
    }
  }

  mediaType(o: Obj, field: string, optional = false): void {
    const m = this.str(o, 'mediaType', field, optional as false);
    if (m !== undefined && !MEDIA_TYPE.test(m)) throw this.fail(`${field}.mediaType`, `${quote(m)} is not a media type`);
  }

  descriptor(v: unknown, field: string): Descriptor {
    const d = this.obj(v, field);
    this.mediaType(d, field);
    const why = badDigest(d.digest);
    if (why !== undefined) throw this.fail(`${field}.digest`, why.replace(/^digest /, ''));
    if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw this.fail(`${field}.size`, `${quote(String(d.size))} is not a size in bytes`);
    this.strings(d, 'urls', field);
    this.annotations(d, field);
    this.str(d, 'artifactType', field, true);
    this.str(d, 'data', field, true);
    if (d.platform !== undefined) {
      const p = this.obj(d.platform, `${field}.platform`);
      this.str(p, 'architecture', `${field}.platform`);
      this.str(p, 'os', `${field}.platform`);
      this.str(p, 'variant', `${field}.platform`, true);
      this.str(p, 'os.version', `${field}.platform`, true);
      this.strings(p, 'os.features', `${field}.platform`);
      this.strings(p, 'features', `${field}.platform`);
    }
    return d as unknown as Descriptor;
  }

  schemaVersion(o: Obj): void {
    if (o.schemaVersion !== 2) throw this.fail('schemaVersion', `is ${quote(String(o.schemaVersion))}, not 2${o.schemaVersion === 1 ? ' (Docker schema 1 manifests are not supported)' : ''}`);
  }
}

// RFC 6838 type/subtype: restricted names of at most 127 characters each.
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v === undefined) return 'missing';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${quote(String(v), 40)}`;
}

/** Parses JSON of at most `limit` bytes; `where` names the document in the one-line error. */
export function parseJson(bytes: Uint8Array, where: string, limit: LimitName): unknown {
  if (bytes.length > LIMITS[limit].value) throw limitError(limit, where, bytes.length);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (e) {
    throw new NydusError('SOURCE', `${where}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

export function validateManifest(doc: unknown, where: string): ImageManifest {
  const c = new Checker(where);
  const o = c.obj(doc, 'manifest');
  c.schemaVersion(o);
  c.mediaType(o, 'manifest', true);
  c.str(o, 'artifactType', 'manifest', true);
  c.descriptor(o.config, 'config');
  c.arr(o, 'layers', 'manifest')!.forEach((l, i) => c.descriptor(l, `layers[${i}]`));
  if (o.subject !== undefined) c.descriptor(o.subject, 'subject');
  c.annotations(o, 'manifest');
  return o as unknown as ImageManifest;
}

export function validateIndex(doc: unknown, where: string): ImageIndex {
  const c = new Checker(where);
  const o = c.obj(doc, 'index');
  c.schemaVersion(o);
  c.mediaType(o, 'index', true);
  c.str(o, 'artifactType', 'index', true);
  c.arr(o, 'manifests', 'index')!.forEach((m, i) => c.descriptor(m, `manifests[${i}]`));
  if (o.subject !== undefined) c.descriptor(o.subject, 'subject');
  c.annotations(o, 'index');
  return o as unknown as ImageIndex;
}

export function validateConfig(doc: unknown, where: string): ImageConfig {
  const c = new Checker(where);
  const o = c.obj(doc, 'config');
  c.str(o, 'architecture', 'config');
  c.str(o, 'os', 'config');
  c.str(o, 'variant', 'config', true);
  if (o.config !== undefined && o.config !== null) c.obj(o.config, 'config.config');
  const rootfs = c.obj(o.rootfs, 'rootfs');
  if (rootfs.type !== 'layers') throw c.fail('rootfs.type', `is ${quote(String(rootfs.type))}, not "layers"`);
  c.arr(rootfs, 'diff_ids', 'rootfs')!.forEach((d, i) => {
    const why = badDigest(d);
    if (why !== undefined) throw c.fail(`rootfs.diff_ids[${i}]`, why.replace(/^digest /, ''));
  });
  c.arr(o, 'history', 'config', true)?.forEach((h, i) => {
    const e = c.obj(h, `history[${i}]`);
    for (const k of ['created', 'created_by', 'author', 'comment']) c.str(e, k, `history[${i}]`, true);
    if (e.empty_layer !== undefined && typeof e.empty_layer !== 'boolean') throw c.fail(`history[${i}].empty_layer`, `is ${kindOf(e.empty_layer)}, not a boolean`);
  });
  return o as unknown as ImageConfig;
}

/**
 * Decides what a fetched document is from the media type the registry sent (Content-Type) and the
 * one the document names, then validates it. The two must agree when both are there.
 */
export function parseManifestOrIndex(bytes: Buffer, contentType: string | undefined, digest: Digest, where: string): Fetched {
  const doc = parseJson(bytes, where, 'MANIFEST_MAX');
  const own = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Obj).mediaType : undefined;
  const header = contentType?.split(';')[0]!.trim();
  let mediaType: string | undefined;
  if (typeof own === 'string') mediaType = own;
  else if (header !== undefined && MANIFEST_TYPES.has(header)) mediaType = header;
  else if (typeof doc === 'object' && doc !== null && Array.isArray((doc as Obj).manifests)) mediaType = MEDIA.OCI_INDEX;
  else if (typeof doc === 'object' && doc !== null && Array.isArray((doc as Obj).layers)) mediaType = MEDIA.OCI_MANIFEST;
  if (mediaType === MEDIA.DOCKER_SCHEMA1 || mediaType === MEDIA.DOCKER_SCHEMA1_SIGNED || header === MEDIA.DOCKER_SCHEMA1_SIGNED) {
    throw new NydusError('UNSUPPORTED', `${where}: Docker schema 1 manifests are not supported (push the image again with a current client)`);
  }
  const kind = mediaType === undefined ? undefined : MANIFEST_TYPES.get(mediaType);
  if (kind === undefined) throw new NydusError('SOURCE', `${where}: media type ${quote(String(mediaType ?? header))} is not a manifest or an index`);
  if (header !== undefined && MANIFEST_TYPES.has(header) && typeof own === 'string' && header !== own) {
    throw new NydusError('SOURCE', `${where}: served as ${header} but the document says ${quote(own)}`);
  }
  if (kind === 'index') return { kind, mediaType: mediaType!, digest, bytes, index: validateIndex(doc, where) };
  return { kind, mediaType: mediaType!, digest, bytes, manifest: validateManifest(doc, where) };
}
