// Alibaba Cloud OSS (spec §4.2): through ali-oss; keys "<object_prefix><blob id>"; multipart
// uploads from the stream (multipart.ts); reads are ranged GETs. An endpoint whose host is an IP
// address is addressed path-style (/bucket/key), as servers on an IP cannot route by host name.
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import OSS from 'ali-oss';
import { NydusError } from '../errors.js';
import { str, type BackendConfig } from './config.js';
import { oneLine, type MultipartApi } from './multipart.js';
import type { Backend, BlobUpload } from './types.js';
import { ObjectStore } from './object-store.js';

/** CopyObject copies at most 1 GiB on OSS; larger objects are copied part by part. */
const COPY_MAX = 1024 ** 3;

interface OssError {
  status?: number;
  code?: string;
  name?: string;
  message?: string;
}

/** Transient failures (5xx, connection trouble) are tried again, this many times in all. */
const ATTEMPTS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function retried<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const s = (e as OssError).status;
      const transient = s === undefined || s === -1 || s === -2 || s >= 500 || s === 429;
      if (!transient || attempt >= ATTEMPTS) throw e;
      await sleep(100 * 2 ** attempt);
    }
  }
}

export class OssBackend extends ObjectStore implements Backend {
  readonly type = 'oss' as const;
  private readonly client: OSS;

  constructor(config: BackendConfig, prefix = str(config, 'object_prefix')) {
    super('oss', str(config, 'bucket_name'), prefix);
    const raw = str(config, 'endpoint');
    const endpoint = /^https?:\/\//i.test(raw) ? raw : `${str(config, 'scheme', 'https')}://${raw}`;
    try {
      this.client = new OSS({
        endpoint, bucket: this.bucket,
        accessKeyId: str(config, 'access_key_id'), accessKeySecret: str(config, 'access_key_secret'),
        secure: endpoint.startsWith('https:'), timeout: 300_000,
      });
    } catch (e) {
      throw new NydusError('USAGE', `backend config (oss): ${oneLine(e)}`);
    }
    if (isIP(new URL(endpoint).hostname) !== 0) (this.client as unknown as { setSLDEnabled(b: boolean): void }).setSLDEnabled(true);
  }




  protected async sizeOf(key: string): Promise<number | undefined> {
    try {
      const r = await retried(() => this.client.head(key));
      return Number((r.res.headers as Record<string, string>)['content-length'] ?? 0);
    } catch (e) {
      if ((e as OssError).status === 404) return undefined;
      throw this.fail('HEAD', key, e);
    }
  }


  async get(id: string): Promise<Readable> {
    try {
      return (await this.client.getStream(this.key(id))).stream as Readable;
    } catch (e) {
      throw this.fail('GET', this.key(id), e);
    }
  }

  async rangeGet(id: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    let got: Buffer;
    try {
      const r = await retried(() => this.client.get(this.key(id), undefined, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } }));
      got = r.content as Buffer;
    } catch (e) {
      throw this.fail(`GET bytes ${offset}+${length}`, this.key(id), e);
    }
    if (got.length !== length) throw new NydusError('SOURCE', `${this.where(id)}: asked for ${length} bytes at ${offset}, got ${got.length}`);
    return got;
  }

  put(knownId?: string): BlobUpload {
    const c = this.client as unknown as {
      initMultipartUpload(name: string): Promise<{ uploadId: string }>;
      _uploadPart(name: string, uploadId: string, partNo: number, data: { stream: Readable; size: number }): Promise<{ etag: string }>;
      completeMultipartUpload(name: string, uploadId: string, parts: Array<{ number: number; etag: string }>): Promise<unknown>;
      abortMultipartUpload(name: string, uploadId: string): Promise<unknown>;
      copy(name: string, source: string): Promise<unknown>;
      multipartUploadCopy(name: string, source: { sourceKey: string; sourceBucketName: string }, options?: object): Promise<unknown>;
      delete(name: string): Promise<unknown>;
    };
    const api: MultipartApi = {
      where: (key) => this.url(key),
      create: async (key) => {
        try {
          return (await retried(() => c.initMultipartUpload(key))).uploadId;
        } catch (e) {
          throw this.fail('starting the multipart upload', key, e);
        }
      },
      part: async (key, uploadId, n, content) => {
        try {
          // Each attempt sends the part anew from its buffer (ali-oss reads a stream in Node).
          const r = await retried(() => c._uploadPart(key, uploadId, n, { stream: Readable.from([content]), size: content.length }));
          return { n, etag: r.etag };
        } catch (e) {
          throw this.fail(`uploading part ${n}`, key, e);
        }
      },
      complete: async (key, uploadId, parts) => {
        try {
          await retried(() => c.completeMultipartUpload(key, uploadId, parts.map((p) => ({ number: p.n, etag: p.etag }))));
        } catch (e) {
          throw this.fail('completing the multipart upload', key, e);
        }
      },
      abort: async (key, uploadId) => {
        await c.abortMultipartUpload(key, uploadId);
      },
      size: (key) => this.sizeOf(key),
      copy: async (from, to, size) => {
        try {
          if (size <= COPY_MAX) await retried(() => c.copy(to, from));
          else await c.multipartUploadCopy(to, { sourceKey: from, sourceBucketName: this.bucket });
        } catch (e) {
          throw this.fail(`copying from ${from}`, to, e);
        }
      },
      remove: async (key) => {
        await c.delete(key);
      },
    };
    return this.multipart(api, knownId);
  }

  async close(): Promise<void> {}
}
