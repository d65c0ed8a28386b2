// The registry client (OCI distribution API over undici): manifests and indexes by tag and
// digest, blobs pulled as streams that verify their digest, blobs pushed by streamed upload or
// cross-repository mount. Every request goes through send(): authorization, the one retry after
// a 401 challenge, and retries with backoff for steps that can be repeated safely.
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { NydusError, type ErrorCode } from '../errors.js';
import { LIMITS, limitError } from '../format/limits.js';
import { Authenticator, scopeOf } from './auth.js';
import { dockerCredentials, type Credentials } from './credentials.js';
import { checkDigest, DigestingStream, isDigest, quote, sha256Of, type Digest } from './digest.js';
import {
  backoff, defaultDispatcher, discard, makeDispatcher, networkError, readBody, readErrorBody, RegistryError,
  registrySays, retriesOf, retryableError, retryableStatus, sleep, statusError, type TransportOptions,
} from './http.js';
import { parseJson, parseManifestOrIndex, validateConfig, type Descriptor, type Fetched, type ImageConfig } from './manifest.js';
import { MANIFEST_ACCEPT, MANIFEST_TYPES } from './media-types.js';
import { apiHost, checkRepository } from './reference.js';

export interface RegistryClientOptions extends TransportOptions {
  /** Credentials to use; undefined looks them up in the Docker config, null stays anonymous. */
  credentials?: Credentials | null;
  /** Environment for DOCKER_CONFIG and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Whether this registry is read from (errors are SOURCE errors) or written to (OUTPUT). Default source. */
  role?: 'source' | 'target';
  userAgent?: string;
}

/** A blob's content: a stream (sent once), or a factory that opens it anew for each upload attempt. */
export type BlobBody = Readable | (() => Readable | Promise<Readable>);

export interface PushBlobOptions {
  /** The digest the content must have; the upload fails before committing when it has another. */
  digest?: Digest;
  /** The exact size the content must have. */
  size?: number;
  /** Try a cross-repository mount from this repository of the same registry first (needs digest). */
  mountFrom?: string;
  /** Send the content in PATCHes of this many bytes (each one held in memory) instead of one streamed PATCH. */
  chunkSize?: number;
}

export interface PushBlobResult {
  digest: Digest;
  size: number;
  /** True when the registry mounted the blob from `mountFrom`; the body was then not read. */
  mounted: boolean;
}

export interface ManifestHead {
  mediaType: string;
  digest: Digest;
  size: number;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'PUT';

interface Req {
  method: Method;
  url: string;
  scopes: string[];
  /** What is being done, for messages: "GET manifest foo:bar". */
  what: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** Statuses returned to the caller; any other is an error. */
  ok: number[];
  /** Safe to repeat (GET, HEAD, a POST that only opens a session, a PUT of a whole manifest). */
  retry: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const TAG = /^[\w][\w.-]{0,127}$/;

export class RegistryClient {
  /** host[:port] whose /v2/ API this client talks to. */
  readonly host: string;
  readonly base: string;
  private readonly dispatcher: Dispatcher;
  private readonly auth: Authenticator;
  private readonly code: ErrorCode;
  private readonly userAgent: string;

  /** `registry` is host[:port] as a reference names it ("docker.io" for Docker Hub). */
  constructor(registry: string, private readonly opts: RegistryClientOptions = {}) {
    this.host = apiHost(registry);
    this.base = `${opts.plainHttp ? 'http' : 'https'}://${this.host}`;
    this.dispatcher = makeDispatcher(opts.insecure ?? false);
    this.code = opts.role === 'target' ? 'OUTPUT' : 'SOURCE';
    this.userAgent = opts.userAgent ?? 'nydus-ts';
    const creds = opts.credentials;
    this.auth = new Authenticator({
      host: this.host,
      dispatcher: this.dispatcher,
      transport: opts,
      userAgent: this.userAgent,
      credentials: async () => (creds === null ? undefined : (creds ?? dockerCredentials(registry, opts.env ?? process.env))),
    });
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  // ---- manifests and indexes ----

  /** Fetches a manifest or an index by tag or digest; its bytes are checked against the digest. */
  async getManifest(repository: string, ref: string): Promise<Fetched> {
    const what = `manifest ${repository}${refSuffix(ref)}`;
    const where = `${this.host}: ${what}`;
    let res: Dispatcher.ResponseData;
    let bytes: Buffer;
    for (let attempt = 0; ; attempt++) {
      res = await this.send({
        method: 'GET', url: this.manifestUrl(repository, ref), what, ok: [200], retry: true,
        scopes: [scopeOf(repository, 'pull')], headers: { accept: MANIFEST_ACCEPT },
      });
      const length = Number(res.headers['content-length']);
      if (Number.isFinite(length) && length > LIMITS.MANIFEST_MAX.value) {
        res.body.destroy();
        throw limitError('MANIFEST_MAX', where, length);
      }
      try {
        bytes = await readBody(res.body, where, 'MANIFEST_MAX');
        break;
      } catch (e) {
        // A connection lost in the middle of the document: ask again, as for a failed request.
        const err = networkError(this.host, `reading ${what}`, e, this.code, this.opts);
        if (!(err instanceof RegistryError && err.transient) || attempt >= retriesOf(this.opts)) throw err;
        await sleep(backoff(attempt, this.opts));
      }
    }
    const digest = sha256Of(bytes);
    if (isDigest(ref) && digest !== ref) throw new RegistryError(this.code, `${where}: content has digest ${digest}`, res.statusCode, false);
    const said = header(res.headers['docker-content-digest']);
    if (said !== undefined && isDigest(said) && said !== digest) {
      throw new RegistryError(this.code, `${where}: content has digest ${digest} but the registry says ${said}`, res.statusCode, false);
    }
    return parseManifestOrIndex(bytes, header(res.headers['content-type']), digest, where);
  }

  /** The media type, digest and size of a manifest or index, or undefined when the registry has none. */
  async headManifest(repository: string, ref: string): Promise<ManifestHead | undefined> {
    const what = `manifest ${repository}${refSuffix(ref)}`;
    const res = await this.send({
      method: 'HEAD', url: this.manifestUrl(repository, ref), what, ok: [200, 404], retry: true,
      scopes: [scopeOf(repository, 'pull')], headers: { accept: MANIFEST_ACCEPT },
    });
    await discard(res.body);
    if (res.statusCode === 404) return undefined;
    const mediaType = header(res.headers['content-type'])?.split(';')[0]!.trim();
    const said = header(res.headers['docker-content-digest']);
    const size = Number(res.headers['content-length']);
    if (mediaType === undefined || !MANIFEST_TYPES.has(mediaType) || !isDigest(said ?? ref) || !Number.isSafeInteger(size)) {
      // Registries need not send all of these on HEAD: ask for the document itself.
      const f = await this.getManifest(repository, ref);
      return { mediaType: f.mediaType, digest: f.digest, size: f.bytes.length };
    }
    if (isDigest(ref) && said !== undefined && said !== ref) throw new RegistryError(this.code, `${this.host}: ${what}: the registry says its digest is ${quote(said)}`, 200, false);
    return { mediaType, digest: (said ?? ref) as Digest, size };
  }

  /** Puts a manifest or an index under a tag or its digest; returns its digest. */
  async putManifest(repository: string, ref: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const digest = sha256Of(bytes);
    const what = `PUT manifest ${repository}${refSuffix(ref)}`;
    if (isDigest(ref) && ref !== digest) throw new NydusError('INTERNAL', `${what}: the manifest has digest ${digest}`);
    const res = await this.send({
      method: 'PUT', url: this.manifestUrl(repository, ref), what, ok: [200, 201], retry: true,
      scopes: [scopeOf(repository, 'pull,push')], headers: { 'content-type': mediaType }, body: bytes,
    });
    await discard(res.body);
    const said = header(res.headers['docker-content-digest']);
    if (said !== undefined && said !== digest) throw new RegistryError(this.code, `${this.host}: ${what}: the registry stored it as ${quote(said)}, not ${digest}`, res.statusCode, false);
    return digest;
  }

  // ---- blobs ----

  /** The size of a blob in the repository, or undefined when it has none. */
  async headBlob(repository: string, digest: Digest): Promise<number | undefined> {
    const res = await this.send({
      method: 'HEAD', url: this.blobUrl(repository, digest), what: `blob ${digest} in ${repository}`, ok: [200, 404], retry: true,
      scopes: [scopeOf(repository, 'pull')],
    });
    await discard(res.body);
    if (res.statusCode === 404) return undefined;
    const size = Number(header(res.headers['content-length']) ?? NaN);
    // The distribution spec makes Content-Length part of a blob HEAD's answer.
    if (!Number.isSafeInteger(size) || size < 0) throw new RegistryError(this.code, `${this.host}: blob ${digest} in ${repository}: HEAD answered without a usable Content-Length`, res.statusCode, false);
    return size;
  }

  /**
   * A blob as a stream. Redirects are followed (without the Authorization header when the host
   * changes); a connection lost midway is resumed with a Range request; the stream errors at its
   * end when the bytes do not have `digest` (or as soon as they pass `size`).
   */
  async getBlob(repository: string, digest: Digest, size?: number): Promise<Readable> {
    checkDigest(digest, `${this.host}: blob in ${repository}`, this.code);
    const what = `blob ${digest} in ${repository}`;
    const mismatch = (why: string) => new RegistryError(this.code, `${this.host}: ${what}: ${why}`, undefined, false);
    let res = await this.openBlob(repository, digest, 0);
    const retries = retriesOf(this.opts);
    const self = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      let received = 0;
      let skip = 0;
      for (let attempt = 0; ; ) {
        try {
          for await (const c of res.body as AsyncIterable<Buffer>) {
            let chunk = c;
            if (skip > 0) {
              // The server ignored our Range and started over: drop what we already passed on.
              const n = Math.min(skip, chunk.length);
              skip -= n;
              chunk = chunk.subarray(n);
              if (chunk.length === 0) continue;
            }
            received += chunk.length;
            yield chunk;
          }
          return;
        } catch (e) {
          if (!retryableError(e) || attempt >= retries) throw networkError(self.host, `reading ${what}`, e, self.code, self.opts);
          await sleep(backoff(attempt++, self.opts));
          res = await self.openBlob(repository, digest, received);
          skip = res.statusCode === 206 ? 0 : received;
        }
      }
    }
    const verify = new DigestingStream({ expect: digest, size, mismatch });
    const source = Readable.from(chunks(), { objectMode: false });
    source.on('error', (e) => verify.destroy(e));
    verify.on('close', () => source.destroy());
    return source.pipe(verify);
  }

  /** Reads a small blob whole (a config, say), verified, refusing more than `max` bytes. */
  async readBlob(repository: string, desc: Pick<Descriptor, 'digest' | 'size'>, limit: 'IMAGE_CONFIG_MAX' | 'MANIFEST_MAX'): Promise<Buffer> {
    const where = `${this.host}: blob ${desc.digest} in ${repository}`;
    if (desc.size > LIMITS[limit].value) throw limitError(limit, where, desc.size);
    const parts: Buffer[] = [];
    for await (const c of await this.getBlob(repository, desc.digest, desc.size)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  /** An image config, read through its descriptor and validated. */
  async getConfig(repository: string, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<{ config: ImageConfig; bytes: Buffer }> {
    const bytes = await this.readBlob(repository, desc, 'IMAGE_CONFIG_MAX');
    const where = `${this.host}: config ${desc.digest} in ${repository}`;
    return { config: validateConfig(parseJson(bytes, where, 'IMAGE_CONFIG_MAX'), where), bytes };
  }

  /**
   * Pushes a blob: POST (with ?mount=&from= when `mountFrom` is given; 201 means mounted), then
   * the content in one streamed PATCH (or PATCHes of `chunkSize`), hashed on the way, then
   * PUT ?digest= with the digest computed. A failed session is restarted from POST when the body
   * is a factory that can open the content again; a stream can be sent once only.
   */
  async pushBlob(repository: string, body: BlobBody, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    if (opts.digest !== undefined) checkDigest(opts.digest, `${this.host}: blob push to ${repository}`, 'INTERNAL');
    if (opts.mountFrom !== undefined) {
      checkRepository(opts.mountFrom, `${this.host}: mount into ${repository}`);
      if (opts.digest === undefined) throw new NydusError('INTERNAL', 'a cross-repository mount needs the blob digest');
    }
    if (opts.chunkSize !== undefined && (!Number.isSafeInteger(opts.chunkSize) || opts.chunkSize < 1)) {
      throw new NydusError('USAGE', `push chunk size ${opts.chunkSize} is not a positive number of bytes`);
    }
    const what = `blob upload to ${repository}`;
    const retries = retriesOf(this.opts);
    let stream = typeof body === 'function' ? undefined : body;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.uploadOnce(repository, opts, async () => {
          if (typeof body === 'function') return body();
          if (!stream) throw new NydusError('INTERNAL', 'blob body stream used twice');
          const s = stream;
          stream = undefined;
          return s;
        });
      } catch (e) {
        const again = e instanceof RegistryError && (e.transient || e.status === 404);
        if (!again) throw e;
        if (typeof body !== 'function') {
          throw new RegistryError(this.code, `${e.message} (the ${what} cannot be restarted: its content was a stream that can be read once)`, e.status, false, e);
        }
        if (attempt >= retries) throw e;
        await sleep(backoff(attempt, this.opts));
      }
    }
  }

  private async uploadOnce(repository: string, opts: PushBlobOptions, open: () => Promise<Readable>): Promise<PushBlobResult> {
    const what = `blob upload to ${repository}`;
    const scopes = [scopeOf(repository, 'pull,push')];
    let url = `${this.base}/v2/${repository}/blobs/uploads/`;
    if (opts.mountFrom !== undefined) {
      url += `?mount=${encodeURIComponent(opts.digest!)}&from=${encodeURIComponent(opts.mountFrom)}`;
      if (opts.mountFrom !== repository) scopes.push(scopeOf(opts.mountFrom, 'pull'));
    }
    const post = await this.send({ method: 'POST', url, what: `POST ${what}`, ok: [201, 202], retry: true, scopes, headers: { 'content-length': '0' } });
    await discard(post.body);
    if (post.statusCode === 201) return { digest: opts.digest!, size: (await this.headBlob(repository, opts.digest!)) ?? opts.size ?? 0, mounted: true };
    let location = this.location(post, url, what);

    const source = await open();
    let sourceError: unknown;
    source.once('error', (e) => (sourceError = e));
    const hasher = new DigestingStream({
      size: opts.size,
      mismatch: (why) => new NydusError(this.code, `${this.host}: ${what}: the content has ${why}`),
    });
    // Only the hasher's own verdict (size or digest) counts as ours; undici destroys it on a lost connection too.
    let hashError: unknown;
    hasher.once('error', (e) => {
      if (e instanceof NydusError && !(e instanceof RegistryError)) hashError = e;
    });
    source.on('error', (e) => hasher.destroy(e as Error));
    source.pipe(hasher);
    // A failure of our own content (the builder feeding the stream) is not the registry's.
    const own = (e: unknown) => (sourceError ?? hashError ?? e);
    try {
      if (opts.chunkSize === undefined) {
        const res = await this.send({
          method: 'PATCH', url: location, what: `PATCH ${what}`, ok: [202], retry: false, scopes,
          headers: { 'content-type': 'application/octet-stream' }, body: hasher,
        }).catch((e) => Promise.reject(own(e)));
        await discard(res.body);
        location = this.location(res, location, what);
      } else {
        let offset = 0;
        let parts: Buffer[] = [];
        let held = 0;
        const flush = async () => {
          const chunk = Buffer.concat(parts, held);
          parts = [];
          held = 0;
          const res = await this.send({
            method: 'PATCH', url: location, what: `PATCH ${what}`, ok: [202], retry: false, scopes, body: chunk,
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
          });
          await discard(res.body);
          location = this.location(res, location, what);
          offset += chunk.length;
        };
        for await (const c of hasher as AsyncIterable<Buffer>) {
          let rest = c;
          while (rest.length > 0) {
            const n = Math.min(rest.length, opts.chunkSize - held);
            parts.push(rest.subarray(0, n));
            held += n;
            rest = rest.subarray(n);
            if (held === opts.chunkSize) await flush();
          }
        }
        if (held > 0) await flush();
      }
    } catch (e) {
      source.destroy();
      throw own(e);
    }
    if (sourceError ?? hashError) throw sourceError ?? hashError;
    const digest = hasher.digest;
    if (digest === undefined) throw new RegistryError(this.code, `${this.host}: ${what}: the registry answered before the whole blob was sent`, undefined, true);
    if (opts.digest !== undefined && digest !== opts.digest) {
      throw new NydusError(this.code, `${this.host}: ${what}: the content has digest ${digest}, not ${opts.digest}`);
    }
    const put = await this.send({
      method: 'PUT', url: withQuery(location, 'digest', digest), what: `PUT ${what}`, ok: [201, 204], retry: false, scopes,
      headers: { 'content-length': '0' },
    });
    await discard(put.body);
    const said = header(put.headers['docker-content-digest']);
    if (said !== undefined && said !== digest) throw new RegistryError(this.code, `${this.host}: ${what}: the registry stored ${quote(said)}, not ${digest}`, put.statusCode, false);
    return { digest, size: hasher.bytes, mounted: false };
  }

  // ---- plumbing ----

  private manifestUrl(repository: string, ref: string): string {
    checkRepository(repository, this.host);
    if (!isDigest(ref) && !TAG.test(ref)) throw new NydusError('USAGE', `${this.host}: ${quote(ref)} is neither a tag nor a sha256 digest`);
    return `${this.base}/v2/${repository}/manifests/${ref}`;
  }

  private blobUrl(repository: string, digest: Digest): string {
    checkRepository(repository, this.host);
    checkDigest(digest, `${this.host}: blob in ${repository}`, 'INTERNAL');
    return `${this.base}/v2/${repository}/blobs/${digest}`;
  }

  /** The upload session URL a response names: Location, resolved against the request URL. */
  private location(res: Dispatcher.ResponseData, from: string, what: string): string {
    const loc = header(res.headers.location);
    let url: URL | undefined;
    try {
      url = loc === undefined ? undefined : new URL(loc, from);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new RegistryError(this.code, `${this.host}: ${what}: the registry gave no usable upload Location (${quote(String(loc))})`, res.statusCode, false);
    }
    return url.href;
  }

  /** Exactly `length` bytes of a blob at `offset`, by one ranged GET (a backend's random read). */
  async readBlobRange(repository: string, digest: Digest, offset: number, length: number): Promise<Buffer> {
    checkDigest(digest, `${this.host}: blob in ${repository}`, this.code);
    const what = `blob ${digest} in ${repository}`;
    if (length === 0) return Buffer.alloc(0);
    const res = await this.openBlob(repository, digest, offset, offset + length - 1);
    if (res.statusCode !== 206) {
      await discard(res.body);
      throw new RegistryError(this.code, `${this.host}: ${what}: the registry ignored the range ${offset}+${length} (status ${res.statusCode})`, res.statusCode, false);
    }
    const out = Buffer.alloc(length);
    let got = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      if (got + c.length > length) {
        res.body.destroy();
        throw new RegistryError(this.code, `${this.host}: ${what}: more than the ${length} bytes asked for at ${offset}`, 206, false);
      }
      c.copy(out, got);
      got += c.length;
    }
    if (got !== length) throw new RegistryError(this.code, `${this.host}: ${what}: asked for ${length} bytes at ${offset}, got ${got}`, 206, false);
    return out;
  }

  /** Opens a blob GET at `offset` (a Range request past 0, or up to `end`), following redirects. */
  private async openBlob(repository: string, digest: Digest, offset: number, end?: number): Promise<Dispatcher.ResponseData> {
    const what = `blob ${digest} in ${repository}`;
    const headers: Record<string, string> = offset > 0 || end !== undefined ? { range: `bytes=${offset}-${end ?? ''}` } : {};
    const ok = [200, 206, ...REDIRECTS];
    let res = await this.send({ method: 'GET', url: this.blobUrl(repository, digest), what, ok, retry: true, scopes: [scopeOf(repository, 'pull')], headers });
    let url = this.blobUrl(repository, digest);
    for (let hops = 0; REDIRECTS.has(res.statusCode); hops++) {
      const loc = header(res.headers.location);
      await discard(res.body);
      if (hops >= MAX_REDIRECTS || loc === undefined) throw new RegistryError(this.code, `${this.host}: ${what}: ${loc === undefined ? 'a redirect without a Location' : 'too many redirects'}`, res.statusCode, false);
      let next: URL;
      try {
        next = new URL(loc, url);
      } catch {
        throw new RegistryError(this.code, `${this.host}: ${what}: redirect to ${quote(loc)} is not a URL`, res.statusCode, false);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new RegistryError(this.code, `${this.host}: ${what}: redirect to ${quote(loc)} is not http(s)`, res.statusCode, false);
      url = next.href;
      // send() sends the registry's Authorization only to the registry's own origin.
      res = await this.send({ method: 'GET', url, what, ok, retry: true, scopes: [scopeOf(repository, 'pull')], headers });
    }
    if (offset > 0 && res.statusCode === 206) {
      const start = /^bytes (\d+)-/.exec(header(res.headers['content-range']) ?? '');
      if (!start || Number(start[1]) !== offset) {
        await discard(res.body);
        throw new RegistryError(this.code, `${this.host}: ${what}: the resumed download does not start at byte ${offset}`, 206, false);
      }
    }
    return res;
  }

  private sameOrigin(url: string): boolean {
    return new URL(url).origin === new URL(this.base).origin;
  }

  /** One request with authorization and, when `req.retry`, retries with backoff. */
  private async send(req: Req): Promise<Dispatcher.ResponseData> {
    const own = this.sameOrigin(req.url);
    const dispatcher = own ? this.dispatcher : defaultDispatcher();
    // A stream body can be sent once: no retry, and no second try after a 401.
    const replayable = !(req.body instanceof Readable);
    const retries = req.retry && replayable ? retriesOf(this.opts) : 0;
    let authRetried = false;
    for (let attempt = 0; ; ) {
      const authorization = own ? await this.auth.header(req.scopes, this.code) : undefined;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
      if (authorization !== undefined) headers.authorization = authorization;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(req.url, { method: req.method, headers, body: req.body, dispatcher });
      } catch (e) {
        if (attempt < retries && retryableError(e)) {
          await sleep(backoff(attempt++, this.opts));
          continue;
        }
        throw networkError(this.host, req.what, e, this.code, this.opts);
      }
      const status = res.statusCode;
      if (status === 401 && own && replayable && !authRetried) {
        authRetried = true;
        await discard(res.body);
        if (await this.auth.unauthorized(res.headers['www-authenticate'], req.scopes, authorization !== undefined)) continue;
        throw await this.unauthorized(req.what);
      }
      if (req.ok.includes(status)) return res;
      if (attempt < retries && retryableStatus(status)) {
        await discard(res.body);
        await sleep(backoff(attempt++, this.opts, res.headers['retry-after']));
        continue;
      }
      if (status === 401) {
        await discard(res.body);
        throw await this.unauthorized(req.what);
      }
      const said = req.method === 'HEAD' ? '' : registrySays(await readErrorBody(res.body));
      if (req.method === 'HEAD') await discard(res.body);
      throw statusError(this.host, status, req.what, said, this.code);
    }
  }

  private async unauthorized(what: string): Promise<RegistryError> {
    const hint = (await this.auth.hasCredentials()) ? undefined : 'no credentials for this registry: log in with docker login or give them in the Docker config';
    return statusError(this.host, 401, what, '', this.code, hint);
  }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function refSuffix(ref: string): string {
  return isDigest(ref) ? `@${ref}` : `:${ref}`;
}

/** Adds one query parameter, leaving the session's own parameters byte for byte as the registry wrote them. */
function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}${u.search === '' ? '?' : `${u.search}&`}${key}=${encodeURIComponent(value)}`;
}
