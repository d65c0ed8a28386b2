// S3 (spec §4.2): path-style addressing, "<scheme>://<endpoint>", keys "<object_prefix><blob id>".
// Uploads are multipart from the stream (multipart.ts); reads are ranged GETs. The SDK (about
// 0.2 CPU-s to load) is loaded in the background, so a build starts while it loads.
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import type { S3Client, ChecksumAlgorithm } from '@aws-sdk/client-s3';
import { NydusError } from '../errors.js';
import { str, type BackendConfig } from './config.js';
import type { MultipartApi, PartDone } from './multipart.js';
import type { Backend, BlobUpload } from './types.js';
import { quietSdkWarning } from './quiet.js';
import { ObjectStore } from './object-store.js';

/** CopyObject copies at most 5 GiB; larger objects are copied part by part. */
const COPY_MAX = 5 * 1024 ** 3;
const COPY_PART = 1024 ** 3;

const CHECKSUMS: Record<string, ChecksumAlgorithm> = { crc32: 'CRC32', crc32c: 'CRC32C', sha1: 'SHA1', sha256: 'SHA256', crc64nvme: 'CRC64NVME' };

/**
 * A part's checksum computed natively: the SDK computes CRC32 in JavaScript on the thread that
 * also runs the build, which costs the streamed build about a second per 200 MB; given the
 * header, it computes nothing. Algorithms without a native routine are left to the SDK.
 */
export function precomputed(algo: ChecksumAlgorithm, body: Buffer): Record<string, string> {
  if (algo === 'CRC32' && typeof zlib.crc32 === 'function') {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(zlib.crc32(body) >>> 0);
    return { ChecksumCRC32: b.toString('base64') };
  }
  if (algo === 'SHA256' || algo === 'SHA1') return { [`Checksum${algo}`]: createHash(algo.toLowerCase()).update(body).digest('base64') };
  return {};
}

type Sdk = typeof import('@aws-sdk/client-s3');

/**
 * The SigV4 payload hash of a part's body: "UNSIGNED-PAYLOAD" when a checksum header covers the
 * body (as the SDK itself does for streamed bodies, whose checksum travels in a trailer), so the
 * SDK does not hash every part once more with SHA-256 on the thread that runs the build.
 */
const unsignedPayload = (next: (a: unknown) => Promise<unknown>) => async (args: unknown) => {
  (args as { request: { headers: Record<string, string> } }).request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  return next(args);
};

export class S3Backend extends ObjectStore implements Backend {
  readonly type = 's3' as const;
  /** The SDK and the client, once loaded. */
  private readonly ready: Promise<{ sdk: Sdk; client: S3Client }>;
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
    const options = {
      region: str(config, 'region'),
      endpoint: `${str(config, 'scheme', 'https')}://${str(config, 'endpoint', 's3.amazonaws.com')}`,
      forcePathStyle: true,
      // No keys: the SDK's default chain (environment, profile), as upstream falls back to.
      ...(id || secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}),
      maxAttempts: typeof config.retry_limit === 'number' ? config.retry_limit + 1 : 3,
      requestChecksumCalculation: this.checksum ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    } as const;
    this.ready = import('@aws-sdk/client-s3').then((sdk) => ({ sdk, client: new sdk.S3Client(options) }));
    // Awaited by every call; a failure to load surfaces there.
    this.ready.catch(() => undefined);
  }

  protected async sizeOf(key: string): Promise<number | undefined> {
    const { sdk, client } = await this.ready;
    try {
      const r = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength ?? 0;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (e as Error).name === 'NotFound' || (e as Error).name === 'NoSuchKey') return undefined;
      throw this.fail('HEAD', key, e);
    }
  }

  async get(id: string): Promise<Readable> {
    const { sdk, client } = await this.ready;
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(id) }));
      return r.Body as Readable;
    } catch (e) {
      throw this.fail('GET', this.key(id), e);
    }
  }

  async rangeGet(id: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const { sdk, client } = await this.ready;
    let bytes: Uint8Array;
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(id), Range: `bytes=${offset}-${offset + length - 1}` }));
      bytes = await r.Body!.transformToByteArray();
    } catch (e) {
      throw this.fail(`GET bytes ${offset}+${length}`, this.key(id), e);
    }
    if (bytes.length !== length) throw new NydusError('SOURCE', `${this.where(id)}: asked for ${length} bytes at ${offset}, got ${bytes.length}`);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  put(knownId?: string): BlobUpload {
    const ready = this.ready;
    const Bucket = this.bucket;
    const ChecksumAlgorithm = this.checksum;
    const sumField = ChecksumAlgorithm ? (`Checksum${ChecksumAlgorithm}` as const) : undefined;
    const api: MultipartApi = {
      where: (key) => this.url(key),
      create: async (Key) => {
        const { sdk, client: c } = await ready;
        try {
          return (await c.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key, ...(ChecksumAlgorithm ? { ChecksumAlgorithm } : {}) }))).UploadId!;
        } catch (e) {
          throw this.fail('starting the multipart upload', Key, e);
        }
      },
      part: async (Key, UploadId, PartNumber, Body): Promise<PartDone> => {
        const { sdk, client: c } = await ready;
        const command = new sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.length, ...(ChecksumAlgorithm ? { ChecksumAlgorithm, ...precomputed(ChecksumAlgorithm, Body) } : {}) });
        if (ChecksumAlgorithm) command.middlewareStack.add(unsignedPayload as never, { step: 'build', name: 'nydusUnsignedPayload' });
        try {
          const r = await c.send(command);
          const sum = sumField ? (r as unknown as Record<string, unknown>)[sumField] : undefined;
          return { n: PartNumber, etag: r.ETag!, ...(typeof sum === 'string' ? { extra: { [sumField!]: sum } } : {}) };
        } catch (e) {
          throw this.fail(`uploading part ${PartNumber}`, Key, e);
        }
      },
      complete: async (Key, UploadId, parts) => {
        const { sdk, client: c } = await ready;
        try {
          await c.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ...p.extra })) } }));
        } catch (e) {
          throw this.fail('completing the multipart upload', Key, e);
        }
      },
      abort: async (Key, UploadId) => {
        const { sdk, client: c } = await ready;
        await c.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      },
      size: (key) => this.sizeOf(key),
      copy: async (from, Key, size) => {
        const { sdk, client: c } = await ready;
        const CopySource = `${Bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
        try {
          if (size <= COPY_MAX) {
            await c.send(new sdk.CopyObjectCommand({ Bucket, Key, CopySource }));
            return;
          }
          const UploadId = (await c.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }))).UploadId!;
          const Parts: Array<{ PartNumber: number; ETag: string }> = [];
          try {
            for (let off = 0, PartNumber = 1; off < size; off += COPY_PART, PartNumber++) {
              const r = await c.send(new sdk.UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber, CopySource, CopySourceRange: `bytes=${off}-${Math.min(size, off + COPY_PART) - 1}` }));
              Parts.push({ PartNumber, ETag: r.CopyPartResult!.ETag! });
            }
            await c.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
          } catch (e) {
            await c.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
            throw e;
          }
        } catch (e) {
          throw this.fail(`copying from ${from}`, Key, e);
        }
      },
      remove: async (Key) => {
        const { sdk, client: c } = await ready;
        await c.send(new sdk.DeleteObjectCommand({ Bucket, Key }));
      },
    };
    return this.multipart(api, knownId);
  }

  async close(): Promise<void> {
    (await this.ready.catch(() => undefined))?.client.destroy();
  }
}
