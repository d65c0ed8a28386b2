import * as Flags from '@oclif/core/flags';
import { BaseCommand, onInterrupt, parseNumber } from '../../cli/base.js';
import { readPrefetchList } from '../../cli/prefetch-list.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { NydusError } from '../../errors.js';
import { pathToFileURL } from 'node:url';
import * as path from 'node:path';
import { parseChunkDictFlag } from '../../oci/chunk-dict.js';
import { convert, type ConvertEvent, type ConvertHooks } from '../../oci/convert.js';
import type { CompressorName } from '../../algo/index.js';
import { backendFromFlags } from '../../backends/index.js';

/** Upstream's flags that this convert does not do yet: refused by name, never ignored. */
const NOT_YET: Array<[flag: string, why: string]> = [
  ['reverse', 'nydus → OCI conversion (--reverse) is not supported yet'],
  ['build-cache', 'the build cache (--build-cache) is not supported yet'],
  ['build-cache-tag', 'the build cache (--build-cache-tag) is not supported yet'],
  ['build-cache-version', 'the build cache (--build-cache-version) is not supported yet'],
  ['build-cache-insecure', 'the build cache (--build-cache-insecure) is not supported yet'],
  ['build-cache-max-records', 'the build cache (--build-cache-max-records) is not supported yet'],
  ['source-backend-type', 'model sources (--source-backend-type) are not supported yet'],
  ['source-backend-config', 'model sources (--source-backend-config) are not supported yet'],
];

/** A Go duration as upstream's flags take it ("5s", "500ms", "1m30s", "2h"); a bare number is seconds. */
export function parseDuration(flag: string, value: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let seen = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    ms += Number(m[1]) * unit[m[2]!]!;
    seen = re.lastIndex;
  }
  if (v.length === 0 || seen !== v.length) throw new NydusError('USAGE', `invalid value ${JSON.stringify(value)} for --${flag}: expected a duration such as 5s, 500ms or 1m`);
  return ms;
}

const env = (name: string) => ({ env: name });

export default class Convert extends BaseCommand {
  static override summary = 'Convert an OCI image in a registry to a Nydus image in a registry';
  static override description =
    'Each source layer streams from the source registry through decompression into an in-process tar-rafs build whose blob is ' +
    'uploaded to the target as it is made; the per-layer bootstraps are merged into the bootstrap layer, and the manifest is ' +
    'pushed last, once every blob it names is in the target.';
  static override examples = [
    'nydusify convert --source myregistry/repo:tag --target myregistry/repo:tag-nydus',
    'nydusify convert --source localhost:5000/app:v1 --target-suffix -nydus --plain-http',
  ];

  static override flags = {
    source: Flags.string({ description: 'source image reference', required: true, ...env('SOURCE') }),
    target: Flags.string({ description: 'target (Nydus) image reference', exclusive: ['target-suffix'], ...env('TARGET') }),
    'target-suffix': Flags.string({ description: 'append this to the source tag to name the target, e.g. -nydus', ...env('TARGET_SUFFIX') }),
    'source-archive': Flags.string({ description: 'read the source image from this OCI-layout tar instead of pulling it (--source still names it)', ...env('SOURCE_ARCHIVE') }),
    'target-archive': Flags.string({ description: 'write the Nydus image to this OCI-layout tar instead of pushing it (--target still names it)', ...env('TARGET_ARCHIVE') }),
    'source-insecure': Flags.boolean({ description: 'skip verifying the source registry\'s TLS certificate' }),
    'target-insecure': Flags.boolean({ description: 'skip verifying the target registry\'s TLS certificate' }),
    'plain-http': Flags.boolean({ description: 'speak plain HTTP to the registries', ...env('PLAIN_HTTP') }),
    platform: Flags.string({ description: 'os/arch[/variant] to convert from a multi-platform source, comma list (default linux/<host arch>)' }),
    'all-platforms': Flags.boolean({ description: 'convert every platform of a multi-platform source', exclusive: ['platform'] }),
    'chunk-dict': Flags.string({ description: 'a Nydus image whose chunks are referenced, not stored again: bootstrap:registry:REF', ...env('CHUNK_DICT') }),
    'chunk-dict-insecure': Flags.boolean({ description: 'skip verifying the chunk dict registry\'s TLS certificate' }),
    'merge-platform': Flags.boolean({ aliases: ['multi-platform'], description: 'push an OCI index holding the source manifests and the Nydus ones beside them', ...env('MERGE_PLATFORM') }),
    oci: Flags.boolean({ description: 'write OCI media types even for a Docker source', ...env('OCI') }),
    'docker-v2-format': Flags.boolean({ hidden: true, description: 'deprecated; does nothing' }),
    'oci-ref': Flags.boolean({ description: 'zran image: index each gzip layer (targz-ref) instead of converting it; the original layers stay in the target repository', ...env('OCI_REF') }),
    'with-referrer': Flags.boolean({ description: 'set the target manifest\'s subject to the source manifest', ...env('WITH_REFERRER') }),
    'fs-version': Flags.string({ description: 'RAFS version of the Nydus image: 5 or 6', default: '6', ...env('FS_VERSION') }),
    compressor: Flags.string({ description: 'chunk compression: none, lz4_block or zstd', default: 'zstd', ...env('COMPRESSOR') }),
    'fs-chunk-size': Flags.string({ aliases: ['chunk-size'], description: 'chunk size, a power of two from 0x1000 to 0x1000000', default: '0x100000', ...env('FS_CHUNK_SIZE') }),
    'fs-align-chunk': Flags.boolean({ description: 'align chunk data to 4 KiB in the blob (RAFS v5; v6 always aligns)', ...env('FS_ALIGN_CHUNK') }),
    'backend-aligned-chunk': Flags.boolean({ hidden: true, description: 'deprecated: --fs-align-chunk', ...env('BACKEND_ALIGNED_CHUNK') }),
    'batch-size': Flags.string({ description: 'batch size for merging small chunks: 0 (off), or a power of two from 0x1000 to the chunk size (RAFS v6)', default: '0', ...env('BATCH_SIZE') }),
    'prefetch-patterns': Flags.boolean({ description: 'read the paths to prefetch from stdin, one per line', ...env('PREFETCH_PATTERNS') }),
    'prefetch-dir': Flags.string({ description: 'an absolute path to prefetch', ...env('PREFETCH_DIR') }),
    'work-dir': Flags.string({ description: 'directory for the per-layer bootstraps (removed afterwards if this run made it)', default: './tmp', ...env('WORK_DIR') }),
    'output-json': Flags.string({ description: 'write the conversion metrics as JSON to this file', ...env('OUTPUT_JSON') }),
    'push-retry-count': Flags.integer({ description: 'retries of each push step after the first attempt', default: 3, min: 0 }),
    'push-retry-delay': Flags.string({ description: 'delay before the first push retry (doubled for each next)', default: '5s' }),
    'nydus-image': Flags.string({ description: 'build with this nydus-image program, exec\'d with the converter\'s argv (default: build in-process)', ...env('NYDUS_IMAGE') }),
    concurrency: Flags.integer({ description: 'layers converted at once (default: the number of cores)', min: 1 }),
    'backend-type': Flags.string({ description: 'put the blobs in this storage backend instead of the target registry: oss, s3, localfs', ...env('BACKEND_TYPE') }),
    'backend-config': Flags.string({ description: 'the backend\'s config as JSON', ...env('BACKEND_CONFIG') }),
    'backend-config-file': Flags.string({ description: 'file holding the backend\'s config JSON', ...env('BACKEND_CONFIG_FILE') }),
    'backend-force-push': Flags.boolean({ description: 'upload a blob to the backend even when an object of its id is there' }),
    ...Object.fromEntries(NOT_YET.map(([flag]) => [flag, Flags.string({ hidden: true, description: 'not supported yet' })])),
  };

  async run(): Promise<void> {
    // Boolean flags of upstream among NOT_YET would swallow the next argument as a value: spot them first.
    for (const [flag, why] of NOT_YET) if (this.argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`))) throw new NydusError('UNSUPPORTED', why);
    const { flags } = await this.parse(Convert);
    const log = this.initLogger(flags);
    for (const [flag, why] of NOT_YET) if ((flags as Record<string, unknown>)[flag] !== undefined) throw new NydusError('UNSUPPORTED', why);
    const fsVersion = parseNumber('fs-version', flags['fs-version']);
    if (fsVersion !== 5 && fsVersion !== 6) throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags['fs-version'])} for --fs-version: must be 5 or 6`);
    if (!['none', 'lz4_block', 'zstd'].includes(flags.compressor)) throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags.compressor)} for --compressor: must be none, lz4_block or zstd`);
    if (flags['prefetch-dir'] !== undefined && !flags['prefetch-dir'].startsWith('/')) throw new NydusError('USAGE', `--prefetch-dir ${JSON.stringify(flags['prefetch-dir'])} is not an absolute path`);
    // Upstream's getPrefetchPatterns: one or the other, "/" when neither gives a path.
    if (flags['prefetch-patterns'] && flags['prefetch-dir'] !== undefined) throw new NydusError('USAGE', '--prefetch-dir conflicts with --prefetch-patterns');
    const listed = flags['prefetch-patterns'] ? readPrefetchList() : flags['prefetch-dir'] !== undefined ? [flags['prefetch-dir']] : [];
    const prefetch = listed.length > 0 ? listed : ['/'];

    const backend = backendFromFlags(flags['backend-type'], flags['backend-config'], flags['backend-config-file']);
    const progress = progressLine(log.enabled('info') && process.stderr.isTTY === true);
    const result = await convert({
      source: flags.source,
      target: flags.target,
      targetSuffix: flags['target-suffix'],
      sourceInsecure: flags['source-insecure'],
      targetInsecure: flags['target-insecure'],
      plainHttp: flags['plain-http'],
      sourceArchive: flags['source-archive'],
      targetArchive: flags['target-archive'],
      platform: flags.platform,
      allPlatforms: flags['all-platforms'],
      oci: flags.oci,
      mergePlatform: flags['merge-platform'],
      chunkDict: flags['chunk-dict'] !== undefined ? parseChunkDictFlag(flags['chunk-dict']) : undefined,
      chunkDictInsecure: flags['chunk-dict-insecure'],
      withReferrer: flags['with-referrer'],
      ociRef: flags['oci-ref'],
      fsVersion,
      compressor: flags.compressor as CompressorName,
      chunkSize: parseNumber('fs-chunk-size', flags['fs-chunk-size']),
      batchSize: parseNumber('batch-size', flags['batch-size']),
      // Upstream ORs the two into FsAlignChunk, which the converter passes as --aligned-chunk.
      alignedChunk: flags['fs-align-chunk'] || flags['backend-aligned-chunk'],
      workDir: flags['work-dir'],
      prefetchPatterns: prefetch,
      concurrency: flags.concurrency,
      nydusImage: flags['nydus-image'],
      pushRetryCount: flags['push-retry-count'],
      pushRetryDelayMs: parseDuration('push-retry-delay', flags['push-retry-delay']),
      onProgress: progress,
      hooks: await loadHooks(process.env.NYDUS_HOOK_PLUGIN_PATH),
      ...(backend ? { backend } : {}),
      backendForcePush: flags['backend-force-push'],
      onUploadAbort: onInterrupt,
    });
    log.info(`converted ${flags.source} to ${result.target}@${result.digest}`);
    if (flags['output-json']) await writeFileAtomic(flags['output-json'], Buffer.from(JSON.stringify(result.metrics)));
  }
}

/** One line per layer step on a TTY (pulling, pushed), nothing when piped. */
function progressLine(enabled: boolean): ((e: ConvertEvent) => void) | undefined {
  if (!enabled) return undefined;
  return (e) => {
    const who = `${e.platform ? `${e.platform} ` : ''}${e.layer >= 0 ? `layer ${e.layer + 1}/${e.layers}` : 'image'}`;
    const what = e.stage === 'pull' ? `pulling and converting ${e.digest}` : e.stage === 'pushed' ? `pushed blob ${e.digest}` : e.stage === 'bootstrap' ? `pushed bootstrap ${e.digest}` : `pushed manifest ${e.digest}`;
    process.stderr.write(`${who}: ${what}\n`);
  };
}

/**
 * NYDUS_HOOK_PLUGIN_PATH: a JS module exporting beforePushManifest and/or afterPushManifest (named,
 * or on its default export), called with the manifest in hand (upstream documents these hooks).
 */
async function loadHooks(file: string | undefined): Promise<ConvertHooks | undefined> {
  if (file === undefined || file === '') return undefined;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
  } catch (e) {
    throw new NydusError('USAGE', `NYDUS_HOOK_PLUGIN_PATH ${JSON.stringify(file)}: cannot load the module: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
  }
  const from = (name: keyof ConvertHooks) => {
    const f = mod[name] ?? (mod.default as Record<string, unknown> | undefined)?.[name];
    if (f !== undefined && typeof f !== 'function') throw new NydusError('USAGE', `NYDUS_HOOK_PLUGIN_PATH ${JSON.stringify(file)}: ${name} is not a function`);
    return f as ConvertHooks[typeof name];
  };
  const hooks: ConvertHooks = { beforePushManifest: from('beforePushManifest'), afterPushManifest: from('afterPushManifest') };
  if (!hooks.beforePushManifest && !hooks.afterPushManifest) throw new NydusError('USAGE', `NYDUS_HOOK_PLUGIN_PATH ${JSON.stringify(file)}: exports neither beforePushManifest nor afterPushManifest`);
  return hooks;
}
