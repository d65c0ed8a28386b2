import { Flags } from '@oclif/core';
import { BaseCommand, parseNumber } from '../../cli/base.js';
import { NydusError } from '../../errors.js';
import { pack } from '../../oci/pack.js';
import { backendFromFlags } from '../../backends/index.js';
import type { CompressorName } from '../../algo/index.js';

export default class Pack extends BaseCommand {
  static override aliases = ['nydusify:build'];
  static override summary = 'Build a Nydus bootstrap and blob from a directory, and push them to OSS or S3';
  static override description =
    'Builds <output-dir>/<name>.meta and the blob (named by its id when pushed or layered) from --source-dir, optionally on ' +
    '--parent-bootstrap and with --chunk-dict; with --backend-push the blob goes to blob_prefix + <id> and the bootstrap to ' +
    'meta_prefix + <name> in the backend.';
  static override examples = [
    'nydusify pack --source-dir rootfs/ --output-dir out/ --name app',
    'nydusify pack --source-dir rootfs/ --name app --backend-push --backend-type s3 --backend-config-file s3.json',
  ];

  static override flags = {
    'source-dir': Flags.string({ aliases: ['target-dir'], description: '(required) the directory to pack' }),
    'output-dir': Flags.string({ char: 'o', default: './.nydus-build-output', description: 'where the bootstrap and blob go' }),
    name: Flags.string({ aliases: ['meta', 'bootstrap'], description: '(required) the bootstrap\'s name: <output-dir>/<name>.meta' }),
    'backend-push': Flags.boolean({ description: 'push the blob and the bootstrap to the backend' }),
    'backend-type': Flags.string({ default: 'oss', description: 'oss or s3' }),
    'backend-config': Flags.string({ description: 'the backend\'s config JSON (meta_prefix, blob_prefix, …)' }),
    'backend-config-file': Flags.string({ description: 'file holding the backend\'s config JSON' }),
    'chunk-dict': Flags.string({ description: 'a chunk dict bootstrap: bootstrap=PATH' }),
    'parent-bootstrap': Flags.string({ description: 'build this layer on that bootstrap' }),
    compact: Flags.boolean({ description: 'compact the blobs (not supported yet)' }),
    'compact-config-file': Flags.string({ description: 'compaction config (not supported yet)' }),
    'fs-version': Flags.string({ default: '6', description: 'RAFS version: 5 or 6' }),
    compressor: Flags.string({ default: 'zstd', description: 'none, lz4_block or zstd' }),
    'chunk-size': Flags.string({ default: '0x100000', description: 'chunk size, a power of two from 0x1000 to 0x1000000' }),
    'nydus-image': Flags.string({ description: 'build with this nydus-image program (default: in-process)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Pack);
    const log = this.initLogger(flags);
    if (flags.compact || flags['compact-config-file'] !== undefined) throw new NydusError('UNSUPPORTED', 'compaction (--compact, --compact-config-file) is not supported yet');
    if (flags['source-dir'] === undefined) throw new NydusError('USAGE', 'missing --source-dir: the directory to pack');
    if (flags.name === undefined) throw new NydusError('USAGE', 'missing --name: the bootstrap\'s name');
    if (!['none', 'lz4_block', 'zstd'].includes(flags.compressor)) throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags.compressor)} for --compressor: must be none, lz4_block or zstd`);
    const fsVersion = parseNumber('fs-version', flags['fs-version']);
    if (fsVersion === 5) throw new NydusError('UNSUPPORTED', 'RAFS v5 output (--fs-version 5) is not supported yet; use --fs-version 6');
    if (fsVersion !== 6) throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags['fs-version'])} for --fs-version: must be 5 or 6`);
    const hasConfig = flags['backend-config'] !== undefined || flags['backend-config-file'] !== undefined;
    if (!['oss', 's3'].includes(flags['backend-type'])) throw new NydusError('USAGE', `invalid value ${JSON.stringify(flags['backend-type'])} for --backend-type: must be oss or s3`);
    const backend = hasConfig ? backendFromFlags(flags['backend-type'], flags['backend-config'], flags['backend-config-file']) : undefined;
    const r = await pack({
      sourceDir: flags['source-dir'], outputDir: flags['output-dir'], name: flags.name,
      backendPush: flags['backend-push'], ...(backend ? { backend } : {}),
      ...(flags['chunk-dict'] !== undefined ? { chunkDict: flags['chunk-dict'] } : {}),
      ...(flags['parent-bootstrap'] !== undefined ? { parentBootstrap: flags['parent-bootstrap'] } : {}),
      fsVersion, compressor: flags.compressor as CompressorName, chunkSize: parseNumber('chunk-size', flags['chunk-size']),
      ...(flags['nydus-image'] !== undefined ? { nydusImage: flags['nydus-image'] } : {}),
    });
    log.info(`bootstrap: ${r.bootstrap}`);
    log.info(r.blobId ? `blob: ${r.blobId} (${r.blobPath})` : 'blob: none (every chunk is in the parent or the chunk dict)');
    for (const p of r.pushed) log.info(`pushed: ${p}`);
  }
}
