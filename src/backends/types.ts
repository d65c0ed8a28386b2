// The one interface every storage backend implements (spec oci-and-converters.md §4).
import type { Readable, Writable } from 'node:stream';
import type { BackendType } from './config.js';

export interface Backend {
  readonly type: BackendType;
  /** Where an object lives, for messages: "s3://bucket/prefix<id>". */
  where(id: string): string;
  /** The object's size, or undefined when there is none. */
  size(id: string): Promise<number | undefined>;
  exists(id: string): Promise<boolean>;
  /** The whole object as a stream. */
  get(id: string): Promise<Readable>;
  /** Exactly `length` bytes at `offset` (fails when the object holds fewer). */
  rangeGet(id: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Starts writing an object whose name is known only once all of it is written (a blob id is
   * the hash of its bytes): bytes go to `stream`, then commit names it, or abort drops it.
   * `knownId`: the id when it is known before the bytes (the object then goes straight there).
   */
  put(knownId?: string): BlobUpload;
  close(): Promise<void>;
}

export interface PutResult {
  size: number;
  /** The object was there already and was kept (no --backend-force-push). */
  skipped: boolean;
}

export interface BlobUpload {
  readonly stream: Writable;
  /** After `stream` has ended: the object becomes visible as `id`, whole, or not at all. */
  commit(id: string, force: boolean): Promise<PutResult>;
  /** Drops everything written (the server's multipart upload too); safe to call more than once. */
  abort(reason?: unknown): Promise<void>;
}
