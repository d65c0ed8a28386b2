// What S3 and OSS share: keys "<prefix><blob id>" in one bucket, names "<scheme>://bucket/key" in
// messages, existence by HEAD.
import { NydusError } from '../errors.js';
import { oneLine } from './multipart.js';

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
}
