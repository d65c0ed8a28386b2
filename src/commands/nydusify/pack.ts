import { readFileSync } from 'node:fs';
import * as Flags from '@oclif/core/flags';
import { BaseCommand, onInterrupt, parseNumber } from '../../cli/base.js';
import { NydusError, fsError } from '../../errors.js';
import { BUILD_COMPRESSORS, type CompressorName } from '../../algo/index.js';
import { DEFAULT_OUTPUT_DIR, pack, type PackCompact } from '../../oci/pack.js';
import { openPackTarget } from '../../oci/pack-backend.js';

const env = (name: string) => ({ env: name });

/** --backend-config or the file of --backend-config-file (upstream's parseBackendConfig), and how messages name it. */
function backendConfigText(json: string | undefined, file: string | undefined): { text: string; where: string } {
  if (json && file) throw new NydusError('USAGE', '--backend-config conflicts with --backend-config-file');
  if (!file) return { text: json ?? '', where: '--backend-config' };
  try {
    return { text: readFileSync(file, 'utf8'), where: `backend config file ${file}` };
  } catch (e) {
    throw fsError('USAGE', file, e);
  }
}

/** upstream's rawBlobBackendCfg: the pack config's blob side, blob_prefix as object_prefix (what compact is given). */
function blobBackendConfig(text: string): string {
  const { meta_prefix: _meta, blob_prefix: blobPrefix, ...rest } = JSON.parse(text) as Record<string, unknown>;
  return JSON.stringify({ ...rest, object_prefix: typeof blobPrefix === 'string' ? blobPrefix : '' });
}

export default class Pack extends BaseCommand {
  static override aliases = ['nydusify:build'];
  static override summary = 'Build a Nydus filesystem (bootstrap and data blob) from a source directory';
  static override description =
    'Writes <output-dir>/<name>.meta, the data blob and output.json. On --parent-bootstrap the directory is a layer over that ' +
    'image; with --chunk-dict chunks found in that bootstrap are referenced, not stored again. The new blob (the one neither ' +
    'the parent nor the dict has) is renamed to <output-dir>/<its sha256> when layering or pushing. --backend-push uploads ' +
    'the parent\'s blobs and the new blob under blob_prefix, then the bootstrap as meta_prefix + <name>. ' +
    'With --compact (and a backend configuration, as upstream requires) the parent bootstrap is first compacted into ' +
    '<parent>.compact (blobs read from and written to blobs_dir, by default the output directory; settings from ' +
    '--compact-config-file) and the layer is built on the compacted parent, whose blobs are the ones pushed.';
  static override examples = [
    'nydusify pack --source-dir rootfs/ --name app --output-dir out/',
    'nydusify pack --source-dir layer2/ --name app-v2 --parent-bootstrap out/app.meta -o out/',
    'nydusify pack --source-dir rootfs/ --name app --backend-push --backend-type s3 --backend-config-file s3.json',
    'nydusify pack --source-dir layer41/ --name app --parent-bootstrap out/app40.meta -o out/ --compact --compact-config-file compact.json --backend-push --backend-config-file s3.json --backend-type s3',
  ];

  static override flags = {
    'source-dir': Flags.string({ aliases: ['target-dir'], description: 'source directory to build the Nydus filesystem from', required: true, ...env('SOURCE_DIR') }),
    'output-dir': Flags.string({ char: 'o', description: `output directory for the built artifacts (default ${DEFAULT_OUTPUT_DIR})`, ...env('OUTPUT_DIR') }),
    name: Flags.string({ aliases: ['meta', 'bootstrap'], description: 'image name: the bootstrap is <output-dir>/<name>.meta and is pushed as meta_prefix + <name>', required: true, ...env('BOOTSTRAP') }),
    'backend-push': Flags.boolean({ description: 'push the bootstrap and blobs to the storage backend', ...env('BACKEND_PUSH') }),
    'backend-type': Flags.string({ description: 'storage backend type: oss or s3', default: 'oss', ...env('BACKEND_TYPE') }),
    'backend-config': Flags.string({ description: 'storage backend configuration as a JSON string', ...env('BACKEND_CONFIG') }),
    'backend-config-file': Flags.string({ description: 'storage backend configuration JSON file', ...env('BACKEND_CONFIG_FILE') }),
    'chunk-dict': Flags.string({ description: 'a chunk dict whose chunks are referenced, not stored again: bootstrap=PATH', ...env('CHUNK_DICT') }),
    'parent-bootstrap': Flags.string({ description: 'a parent bootstrap: the source directory is built as a layer over it', ...env('PARENT_BOOTSTRAP') }),
    'fs-version': Flags.string({ description: 'RAFS version of the Nydus image: 5 or 6', default: '6', ...env('FS_VERSION') }),
    compressor: Flags.string({ description: 'chunk compression: none, lz4_block or zstd', default: 'zstd', ...env('COMPRESSOR') }),
    'chunk-size': Flags.string({ description: 'chunk size, a power of two from 0x1000 to 0x1000000', default: '0x100000', ...env('CHUNK_SIZE') }),
    'nydus-image': Flags.string({ description: 'build with this nydus-image program, exec\'d with upstream\'s argv (default: build in-process)', ...env('NYDUS_IMAGE') }),
    compact: Flags.boolean({ description: 'compact the parent bootstrap before building the image when needed (needs a backend configuration)', ...env('COMPACT') }),
    'compact-config-file': Flags.string({
      description: 'compact configuration file, default configuration is {"min_used_ratio": 5, "compact_blob_size": 10485760, "max_compact_size": 104857600, "layers_to_compact": 32}; "blobs_dir" defaults to the output directory',
      ...env('COMPACT_CONFIG_FILE'),
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Pack);
    const log = this.initLogger(flags);
    const fsVersion = parseNumber('fs-version', flags['fs-version']);
    if (fsVersion !== 5 && fsVersion !== 6) throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags['fs-version'])} for --fs-version: must be 5 or 6`);
    if (!(BUILD_COMPRESSORS as readonly string[]).includes(flags.compressor)) {
      throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags.compressor)} for --compressor: must be ${BUILD_COMPRESSORS.join(', ')}`);
    }
    const chunkSize = parseNumber('chunk-size', flags['chunk-size']);
    if (flags['compact-config-file'] !== undefined && !flags.compact) log.warn('--compact-config-file is not used without --compact');
    let push: Awaited<ReturnType<typeof openPackTarget>> | undefined;
    let compact: PackCompact | undefined;
    if (flags['backend-push'] || flags.compact) {
      // As upstream, --compact needs the backend configuration too: compact is told where the blobs live.
      const { text, where } = backendConfigText(flags['backend-config'], flags['backend-config-file']);
      const target = await openPackTarget(flags['backend-type'], text, where, onInterrupt);
      if (flags['backend-push']) push = target;
      else await target.close();
      if (flags.compact) compact = { configFile: flags['compact-config-file'], backendType: flags['backend-type'], backendConfig: blobBackendConfig(text) };
    } else if (flags['backend-config'] !== undefined || flags['backend-config-file'] !== undefined) {
      log.warn('the backend configuration is not used without --backend-push or --compact');
    }
    const result = await pack({
      sourceDir: flags['source-dir'],
      outputDir: flags['output-dir'],
      name: flags.name,
      fsVersion,
      compressor: flags.compressor as CompressorName,
      chunkSize,
      chunkDict: flags['chunk-dict'],
      parentBootstrap: flags['parent-bootstrap'],
      nydusImage: flags['nydus-image'],
      push,
      compact,
      onLog: (line) => log.info(line),
    }).finally(() => push?.close());
    const meta = result.remoteMeta ?? result.bootstrap;
    const blob = result.remoteBlob ?? result.blob;
    log.info(`successfully built Nydus image (bootstrap:'${meta}', blob:'${blob}')`);
  }
}
