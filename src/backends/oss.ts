// Alibaba Cloud OSS (spec §4.2): through ali-oss; keys "<object_prefix><blob id>"; multipart
// uploads from the stream (multipart.ts); reads are ranged GETs. An endpoint whose host is an IP
// address is addressed path-style (/bucket/key), as servers on an IP cannot route by host name.
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import OSS from 'ali-oss';
import { NydusError } from '../errors.js';
import { str, type BackendConfig } from './config.js';
import { multipartUpload, oneLine, PART_CONCURRENCY, PART_SIZE, type MultipartApi } from './multipart.js';
import type { Backend, BlobUpload } from './types.js';

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

export class OssBackend implements Backend {
  readonly type = 'oss' as const;
  private readonly client: OSS;
  private readonly bucket: string;

  constructor(config: BackendConfig, private readonly prefix = str(config, 'object_prefix')) {
    this.bucket = str(config, 'bucket_name');
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

  private key(id: string): string {
    return `${this.prefix}${id}`;
  }

  where(id: string): string {
    return `oss://${this.bucket}/${this.key(id)}`;
  }

  private fail(what: string, key: string, e: unknown): NydusError {
    const err = e as OssError;
    return new NydusError('OUTPUT', `oss://${this.bucket}/${key}: ${what} failed: ${err.code ? `${err.code}: ` : ''}${oneLine(e)}`, { cause: e });
  }

  private async sizeOf(key: string): Promise<number | undefined> {
    try {
      const r = await retried(() => this.client.head(key));
      return Number((r.res.headers as Record<string, string>)['content-length'] ?? 0);
    } catch (e) {
      if ((e as OssError).status === 404) return undefined;
      throw this.fail('HEAD', key, e);
    }
  }

  size(id: string): Promise<number | undefined> {
    return this.sizeOf(this.key(id));
  }

  async exists(id: string): Promise<boolean> {
    return (await this.size(id)) !== undefined;
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
      _uploadPart(name: string, uploadId: string, partNo: number, data: { content: Buffer; size: number }): Promise<{ etag: string }>;
      completeMultipartUpload(name: string, uploadId: string, parts: Array<{ number: number; etag: string }>): Promise<unknown>;
      abortMultipartUpload(name: string, uploadId: string): Promise<unknown>;
      copy(name: string, source: string): Promise<unknown>;
      multipartUploadCopy(name: string, source: { sourceKey: string; sourceBucketName: string }, options?: object): Promise<unknown>;
      delete(name: string): Promise<unknown>;
    };
    const api: MultipartApi = {
      where: (key) => `oss://${this.bucket}/${key}`,
      create: async (key) => {
        try {
          return (await retried(() => c.initMultipartUpload(key))).uploadId;
        } catch (e) {
          throw this.fail('starting the multipart upload', key, e);
        }
      },
      part: async (key, uploadId, n, content) => {
        try {
          const r = await retried(() => c._uploadPart(key, uploadId, n, { content, size: content.length }));
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
    return multipartUpload(api, {
      tempKey: `${this.prefix}.nydus-upload-${randomUUID()}`,
      ...(knownId !== undefined ? { knownKey: this.key(knownId) } : {}),
      finalKey: (id) => this.key(id),
      partSize: PART_SIZE,
      concurrency: PART_CONCURRENCY,
    });
  }

  async close(): Promise<void> {}
}
