// S3 (spec §4.2): path-style addressing, "<scheme>://<endpoint>", keys "<object_prefix><blob id>".
// Uploads are multipart from the stream (multipart.ts); reads are ranged GETs.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  S3Client, HeadObjectCommand, GetObjectCommand, CreateMultipartUploadCommand, UploadPartCommand,
  CompleteMultipartUploadCommand, AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectCommand,
  UploadPartCopyCommand, type ChecksumAlgorithm,
} from '@aws-sdk/client-s3';
import { NydusError } from '../errors.js';
import { str, type BackendConfig } from './config.js';
import { multipartUpload, PART_CONCURRENCY, PART_SIZE, type MultipartApi, type PartDone } from './multipart.js';
import type { Backend, BlobUpload } from './types.js';
import { quietSdkWarning } from './quiet.js';
import { ObjectStore } from './object-store.js';

/** CopyObject copies at most 5 GiB; larger objects are copied part by part. */
const COPY_MAX = 5 * 1024 ** 3;
const COPY_PART = 1024 ** 3;

const CHECKSUMS: Record<string, ChecksumAlgorithm> = { crc32: 'CRC32', crc32c: 'CRC32C', sha1: 'SHA1', sha256: 'SHA256', crc64nvme: 'CRC64NVME' };

export class S3Backend extends ObjectStore implements Backend {
  readonly type = 's3' as const;
  private readonly client: S3Client;
  private readonly checksum?: ChecksumAlgorithm;

  constructor(config: BackendConfig, prefix = str(config, 'object_prefix')) {
    super('s3', str(config, 'bucket_name'), prefix);
    quietSdkWarning();
    const algo = config.checksum_algorithm === undefined ? 'crc32' : String(config.checksum_algorithm).toLowerCase();
    if (algo !== '' && !CHECKSUMS[algo]) {
      throw new NydusError('USAGE', `backend config (s3): field "checksum_algorithm" must be one of ${Object.keys(CHECKSUMS).join(', ')} or "", not ${JSON.stringify(config.checksum_algorithm)}`);
    }
    this.checksum = algo === '' ? undefined : CHECKSUMS[algo];
    const id = str(config, 'access_key_id');
    const secret = str(config, 'access_key_secret');
    this.client = new S3Client({
      region: str(config, 'region'),
      endpoint: `${str(config, 'scheme', 'https')}://${str(config, 'endpoint', 's3.amazonaws.com')}`,
      forcePathStyle: true,
      // No keys: the SDK's default chain (environment, profile), as upstream falls back to.
      ...(id || secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}),
      maxAttempts: typeof config.retry_limit === 'number' ? config.retry_limit + 1 : 3,
      requestChecksumCalculation: this.checksum ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }




  protected async sizeOf(key: string): Promise<number | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength ?? 0;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (e as Error).name === 'NotFound' || (e as Error).name === 'NoSuchKey') return undefined;
      throw this.fail('HEAD', key, e);
    }
  }


  async get(id: string): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(id) }));
      return r.Body as Readable;
    } catch (e) {
      throw this.fail('GET', this.key(id), e);
    }
  }

  async rangeGet(id: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    let bytes: Uint8Array;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(id), Range: `bytes=${offset}-${offset + length - 1}` }));
      bytes = await r.Body!.transformToByteArray();
    } catch (e) {
      throw this.fail(`GET bytes ${offset}+${length}`, this.key(id), e);
    }
    if (bytes.length !== length) throw new NydusError('SOURCE', `${this.where(id)}: asked for ${length} bytes at ${offset}, got ${bytes.length}`);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  put(knownId?: string): BlobUpload {
    const c = this.client;
    const Bucket = this.bucket;
    const ChecksumAlgorithm = this.checksum;
    const sumField = ChecksumAlgorithm ? (`Checksum${ChecksumAlgorithm}` as const) : undefined;
    const api: MultipartApi = {
      where: (key) => this.url(key),
      create: async (Key) => {
        try {
          return (await c.send(new CreateMultipartUploadCommand({ Bucket, Key, ...(ChecksumAlgorithm ? { ChecksumAlgorithm } : {}) }))).UploadId!;
        } catch (e) {
          throw this.fail('starting the multipart upload', Key, e);
        }
      },
      part: async (Key, UploadId, PartNumber, Body): Promise<PartDone> => {
        try {
          const r = await c.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.length, ...(ChecksumAlgorithm ? { ChecksumAlgorithm } : {}) }));
          const sum = sumField ? (r as unknown as Record<string, unknown>)[sumField] : undefined;
          return { n: PartNumber, etag: r.ETag!, ...(typeof sum === 'string' ? { extra: { [sumField!]: sum } } : {}) };
        } catch (e) {
          throw this.fail(`uploading part ${PartNumber}`, Key, e);
        }
      },
      complete: async (Key, UploadId, parts) => {
        try {
          await c.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ...p.extra })) } }));
        } catch (e) {
          throw this.fail('completing the multipart upload', Key, e);
        }
      },
      abort: async (Key, UploadId) => {
        await c.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      },
      size: (key) => this.sizeOf(key),
      copy: async (from, Key, size) => {
        const CopySource = `${Bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
        try {
          if (size <= COPY_MAX) {
            await c.send(new CopyObjectCommand({ Bucket, Key, CopySource }));
            return;
          }
          const UploadId = (await c.send(new CreateMultipartUploadCommand({ Bucket, Key }))).UploadId!;
          const Parts: Array<{ PartNumber: number; ETag: string }> = [];
          try {
            for (let off = 0, PartNumber = 1; off < size; off += COPY_PART, PartNumber++) {
              const r = await c.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber, CopySource, CopySourceRange: `bytes=${off}-${Math.min(size, off + COPY_PART) - 1}` }));
              Parts.push({ PartNumber, ETag: r.CopyPartResult!.ETag! });
            }
            await c.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
          } catch (e) {
            await c.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
            throw e;
          }
        } catch (e) {
          throw this.fail(`copying from ${from}`, Key, e);
        }
      },
      remove: async (Key) => {
        await c.send(new DeleteObjectCommand({ Bucket, Key }));
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

  async close(): Promise<void> {
    this.client.destroy();
  }
}
