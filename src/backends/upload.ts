// The one way an object goes to a backend (nydus-image create, nydusify convert and pack): put,
// fill (a pipe, or a build that writes as it goes), commit — and on any failure, or on an
// interrupt meanwhile, abort, so no object and no multipart upload stay behind.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { NydusError } from '../errors.js';
import type { Backend, BlobUpload, PutResult } from './types.js';

/** Registers an abort to run if the process is interrupted; returns its unregister (src/cli/base.ts onInterrupt). */
export type InterruptHook = (abort: () => Promise<void>) => () => void;

export interface UploadOptions {
  /** The object's id when known before its bytes: it then goes straight to its key. */
  knownId?: string | undefined;
  onInterrupt?: InterruptHook;
}

/**
 * Opens an upload and runs `fill` with it; fill writes the bytes to up.stream and commits. If
 * fill fails (or the process is interrupted meanwhile) the upload is aborted; an abort that fails
 * too is told in the same line.
 */
export async function withUpload<T>(backend: Backend, o: UploadOptions, fill: (up: BlobUpload) => Promise<T>): Promise<T> {
  const up = backend.put(o.knownId);
  const unhook = o.onInterrupt?.(() => up.abort());
  try {
    return await fill(up);
  } catch (e) {
    try {
      await up.abort(e);
    } catch (abortError) {
      throw new NydusError((e as NydusError).code ?? 'OUTPUT', `${String((e as Error).message ?? e).split('\n')[0]}; and ${(abortError as Error).message}`, { cause: e });
    }
    throw e;
  } finally {
    unhook?.();
  }
}

/** A local file uploaded whole as `id` (an object already there is kept unless `force`). */
export function putFile(backend: Backend, id: string, file: string, force: boolean, onInterrupt?: InterruptHook): Promise<PutResult> {
  return withUpload(backend, { knownId: id, ...(onInterrupt ? { onInterrupt } : {}) }, async (up) => {
    await pipeline(createReadStream(file), up.stream);
    return up.commit(id, force);
  });
}
