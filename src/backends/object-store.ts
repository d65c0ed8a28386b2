// What S3 and OSS share: keys "<prefix><blob id>" in one bucket, names "<scheme>://bucket/key" in
// messages, existence by HEAD, multipart uploads under a temporary key beside the prefix.
import { randomUUID } from 'node:crypto';
import { NydusError } from '../errors.js';
import { multipartUpload, oneLine, PART_CONCURRENCY, PART_SIZE, type MultipartApi } from './multipart.js';
import type { BlobUpload } from './types.js';

export abstract class ObjectStore {
  protected constructor(protected readonly scheme: 's3' | 'oss', protected readonly bucket: string, protected readonly prefix: string) {}

  protected key(id: string): string {
    return `${this.prefix}${id}`;
  }

  protected url(key: string): string {
    return `${this.scheme}://${this.bucket}/${key}`;
  }

  where(id: string): string {
    return this.url(this.key(id));
  }

  protected fail(what: string, key: string, e: unknown): NydusError {
    const code = (e as { code?: unknown }).code;
    return new NydusError('OUTPUT', `${this.url(key)}: ${what} failed: ${typeof code === 'string' && this.scheme === 'oss' ? `${code}: ` : ''}${oneLine(e)}`, { cause: e });
  }

  /** The size of the object at `key`, or undefined when there is none. */
  protected abstract sizeOf(key: string): Promise<number | undefined>;

  size(id: string): Promise<number | undefined> {
    return this.sizeOf(this.key(id));
  }

  async exists(id: string): Promise<boolean> {
    return (await this.size(id)) !== undefined;
  }

  /** An upload over the store's multipart calls: straight to the key of a known id, else under a temporary key until commit names it. */
  protected multipart(api: MultipartApi, knownId?: string): BlobUpload {
    return multipartUpload(api, {
      tempKey: `${this.prefix}.nydus-upload-${randomUUID()}`,
      ...(knownId !== undefined ? { knownKey: this.key(knownId) } : {}),
      finalKey: (id) => this.key(id),
      partSize: PART_SIZE,
      concurrency: PART_CONCURRENCY,
    });
  }
}
