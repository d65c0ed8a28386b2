import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { BaseCommand, parseNumber } from '../cli/base.js';
import { BUILD_COMPRESSORS, DIGESTER_NAMES, type CompressorName, type DigesterName } from '../algo/index.js';
import { CONVERSION_NAMES, conversionByName } from '../builder/conversions.js';
import { create } from '../builder/create.js';
import { NydusError } from '../errors.js';
import { progressReporter } from '../cli/progress.js';
import { loadPlugins } from '../cli/plugins.js';
import { WHITEOUT_SPEC_NAMES, type WhiteoutSpec } from '../tree/overlay.js';
import { checkNoCollision } from '../io/collide.js';
import { backendFlags, backendSpecOf } from '../cli/backend-flags.js';
import { openBackend, withUpload, type BlobUpload } from '../backends/index.js';
import { onInterrupt } from '../cli/base.js';

export default class Create extends BaseCommand {
  static override summary = 'Create a RAFS filesystem from a directory, tar or stargz source';
  static override description =
    'Builds a RAFS v6 bootstrap and a data blob from a directory (--type dir-rafs) or a tar stream (--type tar-rafs, targz-rafs, estargz-rafs), a bootstrap and a meta-only ref blob over a .tar.gz or an eStargz layer left as it is (--type targz-ref, estargz-ref), or a bootstrap over an eStargz layer from its TOC (--type stargz_index).';
  static override examples = [
    '<%= config.bin %> create -t dir-rafs -B out/bootstrap -b out/blob rootfs/',
    '<%= config.bin %> create -B boot --blob-cache-dir cache/ rootfs/',
    '<%= config.bin %> create --blob-inline-meta --features blob-toc -b out/blob rootfs/',
  ];

  static override args = {
    source: Args.string({ description: 'source directory (or tar/stargz file for those types)', required: true }),
  };

  static override flags = {
    type: Flags.string({ char: 't', aliases: ['source-type'], options: CONVERSION_NAMES, default: 'dir-rafs', description: 'conversion type' }),
    bootstrap: Flags.string({ char: 'B', description: 'path to write the RAFS metadata blob (bootstrap) to' }),
    blob: Flags.string({ char: 'b', description: 'path (file or FIFO) to write the data blob to' }),
    'blob-dir': Flags.string({ char: 'D', description: 'directory to store blobs in, named by their id' }),
    'blob-inline-meta': Flags.boolean({ aliases: ['inline-bootstrap'], description: 'append the bootstrap to the data blob' }),
    features: Flags.string({ options: ['blob-toc'], description: 'blob features: blob-toc (append a TOC and chunk digests)' }),
    'blob-id': Flags.string({ description: 'blob id to use instead of the blob digest' }),
    'blob-offset': Flags.string({ hidden: true, default: '0', description: 'offset of the chunk data in the blob' }),
    'blob-data-size': Flags.string({ description: 'hex size of the eStargz blob\'s chunk data (estargztoc-ref / stargz_index): bounds the last chunk' }),
    'blob-cache-dir': Flags.string({ description: 'write <id>.blob.data (uncompressed chunks at their device offsets) and <id>.blob.meta into this directory' }),
    'chunk-size': Flags.string({ description: 'chunk size: a power of two from 0x1000 to 0x1000000 [default: 0x100000; 0x400000 for estargztoc-ref]' }),
    'batch-size': Flags.string({ default: '0', description: 'Set the batch size to merge small chunks, must be power of two, between 0x1000-0x1000000 or be zero:' }),
    compressor: Flags.string({ options: [...BUILD_COMPRESSORS], description: 'chunk compressor [default: zstd]' }),
    digester: Flags.string({ options: DIGESTER_NAMES, default: 'blake3', description: 'chunk digest algorithm' }),
    config: Flags.string({ char: 'C', description: 'nydusd configuration file' }),
    'fs-version': Flags.string({ char: 'v', options: ['5', '6'], default: '6', description: 'RAFS version' }),
    'chunk-dict': Flags.string({ description: 'chunk dictionary: bootstrap=PATH (or PATH); chunks found there are referenced, not stored again' }),
    'parent-bootstrap': Flags.string({ description: 'build this layer on top of that bootstrap (OCI overlay rules)' }),
    'aligned-chunk': Flags.boolean({ description: 'align chunks to 4 KiB (v5 only; v6 always aligns)' }),
    repeatable: Flags.boolean({ description: 'do not store host uid/gid, for repeatable builds' }),
    'disable-check': Flags.boolean({ hidden: true, description: 'no effect' }),
    'whiteout-spec': Flags.string({ options: [...WHITEOUT_SPEC_NAMES], default: 'oci', description: 'whiteout spec for layers built on a parent (oci, overlayfs, none)' }),
    'prefetch-policy': Flags.string({ options: ['fs', 'blob', 'none'], default: 'none', description: 'prefetch policy; with fs or blob, paths to prefetch are read from stdin' }),
    'output-json': Flags.string({ char: 'J', description: 'write build results as JSON to this file' }),
    encrypt: Flags.boolean({ char: 'E', description: 'Encrypt the generated RAFS metadata and data blobs' }),
    attributes: Flags.string({ description: '.nydusattributes file (not supported yet)' }),
    plugin: Flags.string({ multiple: true, description: 'add pipeline stages from a plugin module: MODULE[?key=value&...]' }),
    threads: Flags.integer({ min: 0, max: 64, description: 'compression worker threads [default: one per core; none for a build under 32 MiB of chunks]' }),
    ...backendFlags,
    'backend-force-push': Flags.boolean({ description: 'upload the blob to the backend even when an object of its id is there' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Create);
    const log = this.initLogger(flags);
    const refuse = (flag: string, why = 'is not supported yet') => {
      throw new NydusError('UNSUPPORTED', `--${flag} ${why}`);
    };
    if (flags.attributes) refuse('attributes');
    // The seed's create-time spelling of compaction (upstream's docs/nydus-image.md): --config names
    // a compact config, and the image at --bootstrap is compacted as `nydus-image compact` does.
    if (flags.config !== undefined) {
      const { compactAndReport, readCompactConfig, COMPACT_DEFAULTS } = await import('../builder/compact.js');
      const compactConfig = readCompactConfig(flags.config, true);
      if (compactConfig) {
        if (!flags.bootstrap) throw new NydusError('USAGE', `missing --bootstrap: the image that ${flags.config} compacts`);
        if (!compactConfig.blobs_dir) throw new NydusError('USAGE', `missing blobs_dir in ${flags.config}: where the blobs to compact are`);
        log.warn(`--config ${flags.config} is a compact config: compacting ${flags.bootstrap}; source ${args.source} is not read`);
        checkNoCollision([['--bootstrap', flags.bootstrap], ['--chunk-dict', flags['chunk-dict']?.replace(/^bootstrap=/, '')]], [['--output-json', flags['output-json']]]);
        await compactAndReport({
          bootstrap: flags.bootstrap, config: { ...COMPACT_DEFAULTS, ...compactConfig, blobs_dir: compactConfig.blobs_dir }, chunkDict: flags['chunk-dict'],
          backendType: flags['backend-type'], log: (line) => log.info(line),
        }, flags['output-json']);
        return;
      }
    }
    if (parseNumber('blob-offset', flags['blob-offset']) !== 0) refuse('blob-offset', 'other than 0 is not supported yet');

    const blobDataSize = flags['blob-data-size'] === undefined ? undefined : parseBlobDataSize(flags['blob-data-size']);
    if (blobDataSize !== undefined && conversionByName(flags.type)?.source !== 'stargz') refuse('blob-data-size', 'only applies to --type estargztoc-ref (stargz_index)');
    checkNoCollision(
      [['source', args.source], ['--parent-bootstrap', flags['parent-bootstrap']], ['--chunk-dict', flags['chunk-dict']?.replace(/^bootstrap=/, '')]],
      [['--bootstrap', flags.bootstrap], ['--blob', flags.blob], ['--output-json', flags['output-json']]],
    );
    const spec = backendSpecOf(flags);
    if (!spec && flags['backend-force-push']) throw new NydusError('USAGE', '--backend-force-push needs --backend-type');
    if (spec) {
      for (const [k, v] of [['blob', flags.blob], ['blob-dir', flags['blob-dir']], ['blob-cache-dir', flags['blob-cache-dir']]] as const) {
        if (v !== undefined) throw new NydusError('USAGE', `--backend-type cannot be used with --${k}`);
      }
      if (spec.type === 'http-proxy') throw new NydusError('USAGE', 'the http-proxy backend is read-only: it cannot store a blob');
      if (flags.type === 'tar-tarfs') throw new NydusError('UNSUPPORTED', '--backend-type with --type tar-tarfs is not supported yet');
      if (spec.type === 'registry' && flags.features === 'blob-toc') {
        throw new NydusError('USAGE', 'the registry backend stores a blob under its sha256, which with --features blob-toc is not its blob id: build without blob-toc');
      }
      if (!flags.bootstrap && !flags['blob-inline-meta']) throw new NydusError('USAGE', 'missing --bootstrap: the bootstrap stays local when the blob goes to a backend');
    }
    const prefetch = flags['prefetch-policy'] === 'none' ? [] : (await import('../cli/prefetch-list.js')).readPrefetchList();
    const stages = await loadPlugins(flags.plugin ?? []);
    const progress = progressReporter(log.enabled('info'));
    const backend = spec ? await openBackend(spec, { role: 'write' }) : undefined;
    let stored = '';
    const build = (upload?: BlobUpload) => create({
      source: args.source,
      type: flags.type,
      bootstrap: flags.bootstrap,
      blob: flags.blob,
      blobDir: flags['blob-dir'],
      blobCacheDir: flags['blob-cache-dir'],
      blobInlineMeta: flags['blob-inline-meta'],
      blobToc: flags.features === 'blob-toc',
      blobId: flags['blob-id'],
      fsVersion: Number(flags['fs-version']),
      compressor: flags.compressor as CompressorName | undefined,
      digester: flags.digester as DigesterName,
      chunkSize: flags['chunk-size'] === undefined ? undefined : parseNumber('chunk-size', flags['chunk-size']),
      blobDataSize,
      batchSize: parseNumber('batch-size', flags['batch-size']),
      encrypt: flags.encrypt,
      alignedChunk: flags['aligned-chunk'],
      repeatable: flags.repeatable,
      whiteoutSpec: flags['whiteout-spec'] as WhiteoutSpec,
      parentBootstrap: flags['parent-bootstrap'],
      chunkDict: flags['chunk-dict'],
      prefetch,
      stages,
      threads: flags.threads,
      onProgress: (p) => progress.update(p),
      ...(upload ? {
        blobOut: upload.stream,
        blobEnd: async (id: string) => {
          const r = await upload.commit(id, flags['backend-force-push']);
          stored = `${backend!.where(id)}${r.skipped ? ' (already there: kept)' : ''}`;
        },
      } : {}),
    });
    let result: Awaited<ReturnType<typeof build>>;
    try {
      // The upload goes too when the build fails or is interrupted: no object and no multipart upload stay behind.
      result = backend ? await withUpload(backend, { knownId: flags['blob-id'], onInterrupt }, build) : await build();
    } finally {
      await backend?.close();
    }
    progress.done();
    if (flags['output-json']) {
      const { outputJson, writeOutputJson } = await import('../builder/output-json.js');
      await writeOutputJson(flags['output-json'], outputJson({ bootstrap: result.bootstrap, blobs: result.blobs, trace: result.trace, fsVersion: result.fsVersion, compressor: result.compressor }), true);
    }
    log.info(
      'successfully built RAFS filesystem: \n' +
        `meta blob path: ${result.bootstrap || '<none>'}\n` +
        `data blob size: 0x${result.blobSize.toString(16)}\n` +
        (stored ? `data blob stored at: ${stored}\n` : '') +
        `data blobs: [${result.blobs.map((b) => JSON.stringify(b)).join(', ')}]`,
    );
  }
}

/** Upstream reads --blob-data-size as hex, with or without 0x (main.rs get_blob_size). */
function parseBlobDataSize(v: string): number {
  const hex = v.trim().replace(/^0[xX]/, '');
  const n = /^[0-9a-fA-F]+$/.test(hex) ? parseInt(hex, 16) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new NydusError('USAGE', `invalid blob data size ${JSON.stringify(v)}: expected a non-zero hex number`);
  return n;
}
