// Where a built bootstrap goes, for create, tar-tarfs and merge alike: to -B, or else into the
// blob dir named by the sha256 of its bytes (a file of that name already holds them and is kept).
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { OutputFile } from '../io/atomic.js';

/**
 * Writes the bootstrap and returns its path; a failed write leaves nothing under the final name.
 * With `after` (a backend committing the blob the bootstrap names), the bytes go to the temporary
 * file meanwhile and take the final name only once `after` has succeeded; a FIFO or device, which
 * a reader sees at once, is written only then.
 */
export async function writeBootstrap(bootstrap: Buffer, to: { bootstrap?: string; blobDir?: string }, after?: Promise<unknown>): Promise<string> {
  const named = to.bootstrap;
  if (!named && !to.blobDir) throw new Error('writeBootstrap needs a bootstrap path or a blob dir');
  const finalPath = named ?? path.join(to.blobDir!, createHash('sha256').update(bootstrap).digest('hex'));
  const out = named ? OutputFile.open(named) : OutputFile.temp(to.blobDir!);
  try {
    if (!out.staged) await after;
    out.write(bootstrap);
    await out.drain();
    await after;
    await out.commit(finalPath, !named);
  } catch (e) {
    await out.abort();
    throw e;
  }
  return finalPath;
}
