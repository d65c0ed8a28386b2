// nydusify pack's push target (spec §4.3): one oss or s3 config whose meta_prefix keys the
// bootstrap and blob_prefix the blobs, as upstream makes two backends of it (packer/backend.go).
import { openBackend, parseBackendConfig, putFile, type Backend, type InterruptHook } from '../backends/index.js';
import { NydusError } from '../errors.js';
import type { PackPushTarget, PackStore } from './pack.js';

/** A file uploaded whole or not at all: the upload is aborted when reading or sending fails, or on an interrupt. */
function storeOf(b: Backend, force: boolean, onInterrupt?: InterruptHook): PackStore {
  return {
    exists: (name) => b.exists(name),
    url: (name) => b.where(name),
    async putFile(name, file) {
      await putFile(b, name, file, force, onInterrupt);
    },
  };
}

/**
 * Parses pack's backend JSON (--backend-type oss|s3) and opens its two sides for writing;
 * onInterrupt registers each upload's abort with the command's signal handling.
 */
export async function openPackTarget(type: string, text: string, where: string, onInterrupt?: InterruptHook): Promise<PackPushTarget & { close(): Promise<void> }> {
  if (type !== 'oss' && type !== 's3') throw new NydusError('USAGE', `unsupported backend type ${JSON.stringify(type)} for pack: must be oss or s3`);
  if (text.trim() === '') throw new NydusError('USAGE', 'backend configuration is empty, please specify option \'--backend-config\'');
  const spec = parseBackendConfig(type, text, where);
  // Upstream's pack reads only these two: an object_prefix there would be ignored, the objects landing elsewhere.
  if (spec.config.object_prefix !== undefined) throw new NydusError('USAGE', `${where}: pack puts objects under "meta_prefix" and "blob_prefix", not "object_prefix"`);
  const prefix = (k: string) => (typeof spec.config[k] === 'string' ? (spec.config[k] as string) : '');
  const metaBackend = await openBackend(spec, { role: 'write', prefix: prefix('meta_prefix') });
  const blobBackend = await openBackend(spec, { role: 'write', prefix: prefix('blob_prefix') });
  return {
    // The bootstrap is replaced every time (upstream pushes it with forcePush); a blob already there is kept.
    meta: storeOf(metaBackend, true, onInterrupt),
    blobs: storeOf(blobBackend, false, onInterrupt),
    close: async () => {
      await metaBackend.close();
      await blobBackend.close();
    },
  };
}
