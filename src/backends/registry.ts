// registry (spec §4.1, §4.4): blobs in a repository by digest "sha256:<blob id>", through our
// registry client. An upload's digest is computed as it streams and the registry commits it only
// under that digest, so nothing partial is ever readable; commit checks it is the blob id.
import { PassThrough, type Readable } from 'node:stream';
import { NydusError } from '../errors.js';
import { RegistryClient } from '../oci/registry.js';
import type { Credentials } from '../oci/credentials.js';
import type { Digest } from '../oci/digest.js';
import { str, type BackendConfig } from './config.js';
import type { Backend, BlobUpload } from './types.js';

export class RegistryBackend implements Backend {
  readonly type = 'registry' as const;
  readonly client: RegistryClient;
  private readonly repo: string;

  constructor(config: BackendConfig, role: 'source' | 'target' = 'source') {
    this.repo = str(config, 'repo');
    let credentials: Credentials | null | undefined;
    const auth = str(config, 'auth');
    if (auth) {
      const plain = Buffer.from(auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon < 0) throw new NydusError('USAGE', 'backend config (registry): field "auth" must be base64 of "user:password"');
      credentials = { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
    } else if (str(config, 'registry_token')) {
      credentials = { username: '<token>', password: str(config, 'registry_token') };
    }
    this.client = new RegistryClient(str(config, 'host'), {
      plainHttp: str(config, 'scheme', 'https') === 'http', insecure: config.skip_verify === true, role,
      ...(credentials !== undefined ? { credentials } : {}),
      ...(typeof config.retry_limit === 'number' ? { retries: config.retry_limit } : {}),
    });
  }

  private digest(id: string): Digest {
    return (id.startsWith('sha256:') ? id : `sha256:${id}`) as Digest;
  }

  where(id: string): string {
    return `${this.client.host}/${this.repo}@${this.digest(id)}`;
  }

  size(id: string): Promise<number | undefined> {
    return this.client.headBlob(this.repo, this.digest(id));
  }

  async exists(id: string): Promise<boolean> {
    return (await this.size(id)) !== undefined;
  }

  get(id: string): Promise<Readable> {
    return this.client.getBlob(this.repo, this.digest(id));
  }

  rangeGet(id: string, offset: number, length: number): Promise<Buffer> {
    return this.client.readBlobRange(this.repo, this.digest(id), offset, length);
  }

  put(): BlobUpload {
    const stream = new PassThrough({ highWaterMark: 4 << 20 });
    const pushed = this.client.pushBlob(this.repo, stream);
    pushed.catch(() => undefined);
    return {
      stream,
      async commit(id: string) {
        const r = await pushed;
        const want = id.startsWith('sha256:') ? id : `sha256:${id}`;
        if (r.digest !== want) {
          throw new NydusError('USAGE', `the registry backend stores a blob under its sha256 (${r.digest}), which is not its blob id ${id}: build without --features blob-toc`);
        }
        return { size: r.size, skipped: false };
      },
      async abort(reason?: unknown) {
        if (!stream.destroyed) stream.destroy(reason instanceof Error ? reason : new NydusError('OUTPUT', 'upload aborted'));
        await pushed.catch(() => undefined);
      },
    };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
