// Storage backends: one interface (types.ts), one module per type, configured by upstream's JSON
// (config.ts). openBackend is the only place the types meet.
import type { BackendSpec } from './config.js';
import type { Backend } from './types.js';

export { BACKEND_TYPES, backendFromFlags, parseBackendConfig, type BackendSpec, type BackendType } from './config.js';
export type { Backend, BlobUpload, PutResult } from './types.js';
export { putFile, withUpload, type InterruptHook, type UploadOptions } from './upload.js';

export interface OpenOptions {
  /** Written to (errors name the output) or read from. */
  role?: 'read' | 'write';
  /** Key prefix instead of `object_prefix` (nydusify pack's meta_prefix / blob_prefix). */
  prefix?: string;
}

/** A backend from a parsed config; the SDK of a type is loaded only when that type is used. */
export async function openBackend(spec: BackendSpec, o: OpenOptions = {}): Promise<Backend> {
  const c = spec.config;
  switch (spec.type) {
    case 'localfs':
      return new (await import('./localfs.js')).LocalFsBackend(c, o.role ?? 'read');
    case 'registry':
      return new (await import('./registry.js')).RegistryBackend(c, o.role === 'write' ? 'target' : 'source');
    case 's3': {
      const { S3Backend } = await import('./s3.js');
      return o.prefix !== undefined ? new S3Backend(c, o.prefix) : new S3Backend(c);
    }
    case 'oss': {
      const { OssBackend } = await import('./oss.js');
      return o.prefix !== undefined ? new OssBackend(c, o.prefix) : new OssBackend(c);
    }
    case 'http-proxy':
      return new (await import('./http-proxy.js')).HttpProxyBackend(c);
  }
}
