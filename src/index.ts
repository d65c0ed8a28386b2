// The public library API: every CLI command is a thin layer over these.
import type { ConvertOptions, ConvertResult } from './oci/convert.js';
import type { CopyOptions, CopyResult } from './oci/copy.js';
import type { CheckOptions as CheckImageOptions, CheckResult as CheckImageResult } from './oci/check.js';
import type { PackOptions, PackResult } from './oci/pack.js';
export { create, checkChunkSize, DEFAULT_CHUNK_SIZE, type CreateOptions, type CreateResult } from './builder/create.js';
export { CONVERSIONS, conversionByName } from './builder/conversions.js';
export { check, checkReport, verboseListing, verboseLines, walkImage, featureWords, type CheckResult } from './read/check.js';
export { openImage, loadBootstrap, extractInlineBootstrap } from './read/open.js';
export { BlobReader, type BlobLocation } from './read/data.js';
export { unpack, type UnpackOptions } from './read/unpack.js';
export { exportBlock, planDisk, type ExportBlockOptions, type ExportBlockResult } from './builder/export.js';
export { VerityTree, verityLayout, verityOf } from './builder/verity.js';
export type { RafsImage, ImageNode, BlobInfo, ChunkInfo, Xattr } from './read/model.js';
export { COMPRESSORS, DIGESTERS } from './algo/index.js';
export { NydusError, type ErrorCode } from './errors.js';
export type { StageDef, EntryStage, BatchStage, SourceEntry, Batch } from './pipeline/stage.js';
export type { ConvertOptions, ConvertResult, ConvertEvent, ConvertMetrics, ConvertedManifest, ConvertHooks, ManifestHookInfo } from './oci/convert.js';
export type { CopyOptions, CopyResult, CopyEvent } from './oci/copy.js';
export type { CheckOptions as CheckImageOptions, CheckResult as CheckImageResult, CheckDifference, CheckedImage, CheckRule } from './oci/check.js';
export type { PackOptions, PackResult, PackPushTarget, PackStore } from './oci/pack.js';

// The registry functions load their modules (and the HTTP client, about half of this library's
// import time) on their first call: a program that only builds or reads images never pays for them.

/** nydusify convert: an OCI image in a registry to a Nydus image (see oci/convert.ts). */
export async function convert(o: ConvertOptions): Promise<ConvertResult> {
  return (await import('./oci/convert.js')).convert(o);
}

/** nydusify copy: an image, its Nydus blobs with it, from one registry to another (see oci/copy.ts). */
export async function copy(o: CopyOptions): Promise<CopyResult> {
  return (await import('./oci/copy.js')).copy(o);
}

/** nydusify check: a Nydus image against its source image (see oci/check.ts). */
export async function checkImage(o: CheckImageOptions): Promise<CheckImageResult> {
  return (await import('./oci/check.js')).check(o);
}

/** nydusify pack: a directory to a Nydus image, pushed or kept (see oci/pack.ts). */
export async function pack(o: PackOptions): Promise<PackResult> {
  return (await import('./oci/pack.js')).pack(o);
}
