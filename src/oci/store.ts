// Where an image is read from and written to, whatever holds it: a repository of a registry, or
// an OCI image layout (a directory or a tar; src/oci/layout.ts). convert and copy speak only to
// these two interfaces, so `--source-archive`, `--target-archive` and `file://` are a choice of
// implementation, not a second data path.
import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Descriptor, Fetched, ImageConfig } from './manifest.js';
import type { Reference } from './reference.js';
import type { BlobBody, PushBlobOptions, PushBlobResult, RegistryClient } from './registry.js';
import { refTarget } from './reference.js';

export interface ImageSource {
  /** What messages call it: "host/repository" or the layout's path. */
  readonly name: string;
  /** The image itself: the manifest or index a tag names, or the one image of a layout. */
  top(): Promise<Fetched>;
  /** A manifest or index by digest, its bytes checked against it. */
  getManifest(digest: Digest): Promise<Fetched>;
  /** A blob as a stream that errors at its end unless it has `digest` and exactly `size` bytes. */
  getBlob(digest: Digest, size: number): Promise<Readable>;
  getConfig(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<{ config: ImageConfig; bytes: Buffer }>;
  close(): Promise<void>;
}

export interface ImageSink {
  readonly name: string;
  /** The size of a blob the sink holds already, or undefined. */
  headBlob(digest: Digest): Promise<number | undefined>;
  /** Stores a blob; with opts.digest/size the content is refused unless it has them. */
  pushBlob(body: BlobBody, opts?: PushBlobOptions): Promise<PushBlobResult>;
  /** Stores a manifest or index under a tag (the image's name) or under its own digest. */
  putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<Digest>;
  /** Makes what was stored visible (a layout is renamed to its final name); a registry needs nothing. */
  commit(): Promise<void>;
  /** Releases the sink; before commit() it removes whatever it wrote. */
  close(): Promise<void>;
}

/** One repository of a registry, as a source. */
export class RegistrySource implements ImageSource {
  readonly name: string;

  constructor(readonly client: RegistryClient, readonly ref: Reference) {
    this.name = `${client.host}/${ref.repository}`;
  }

  top(): Promise<Fetched> {
    return this.client.getManifest(this.ref.repository, refTarget(this.ref));
  }

  getManifest(digest: Digest): Promise<Fetched> {
    return this.client.getManifest(this.ref.repository, digest);
  }

  getBlob(digest: Digest, size: number): Promise<Readable> {
    return this.client.getBlob(this.ref.repository, digest, size);
  }

  getConfig(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<{ config: ImageConfig; bytes: Buffer }> {
    return this.client.getConfig(this.ref.repository, desc);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** One repository of a registry, as a sink. */
export class RegistrySink implements ImageSink {
  readonly name: string;

  constructor(readonly client: RegistryClient, readonly repository: string) {
    this.name = `${client.host}/${repository}`;
  }

  headBlob(digest: Digest): Promise<number | undefined> {
    return this.client.headBlob(this.repository, digest);
  }

  pushBlob(body: BlobBody, opts?: PushBlobOptions): Promise<PushBlobResult> {
    return this.client.pushBlob(this.repository, body, opts);
  }

  putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    return this.client.putManifest(this.repository, ref, bytes, mediaType);
  }

  async commit(): Promise<void> {}

  close(): Promise<void> {
    return this.client.close();
  }
}
