// The public library API: every CLI command is a thin layer over these.
export { create, checkChunkSize, DEFAULT_CHUNK_SIZE, type CreateOptions, type CreateResult } from './build/create.js';
export { CONVERSIONS, conversionByName } from './build/conversions.js';
export { check, checkReport, verboseListing, verboseLines, walkImage, featureWords, type CheckResult } from './read/check.js';
export { openImage, loadBootstrap, extractInlineBootstrap } from './read/open.js';
export { BlobReader, type BlobLocation } from './read/data.js';
export { unpack, type UnpackOptions } from './read/unpack.js';
export { exportBlock, planDisk, type ExportBlockOptions, type ExportBlockResult } from './build/export.js';
export { VerityTree, verityLayout, verityOf } from './build/verity.js';
export type { RafsImage, ImageNode, BlobInfo, ChunkInfo, Xattr } from './read/model.js';
export { COMPRESSORS, DIGESTERS } from './algo/index.js';
export { NydusError, type ErrorCode } from './errors.js';
export type { StageDef, EntryStage, BatchStage, SourceEntry, Batch } from './pipeline/stage.js';
export { convert, type ConvertOptions, type ConvertResult, type ConvertEvent, type ConvertMetrics, type ConvertedManifest, type ConvertHooks, type ManifestHookInfo } from './oci/convert.js';
export { copy, type CopyOptions, type CopyResult, type CopyEvent } from './oci/copy.js';
export { check as checkImage, type CheckOptions as CheckImageOptions, type CheckResult as CheckImageResult, type CheckDifference, type CheckedImage, type CheckRule } from './oci/check.js';
export { pack, type PackOptions, type PackResult, type PackPushTarget, type PackStore } from './oci/pack.js';
