import * as Flags from '@oclif/core/flags';
import { BaseCommand, parseNumber } from '../cli/base.js';
import { COMPACT_DEFAULTS, compactAndReport, readCompactConfig, type CompactConfig } from '../builder/compact.js';
import { NydusError } from '../errors.js';
import { checkNoCollision } from '../io/collide.js';

export default class Compact extends BaseCommand {
  static override summary = '(experimental)Compact specific nydus image, remove unused chunks in blobs, merge small blobs';
  static override description =
    'Drops blobs the image no longer references, rebuilds blobs whose used ratio is under min_used_ratio from the chunks still used, ' +
    'and merges blobs smaller than compact_blob_size (up to max_compact_size), then writes the bootstrap over the new blob table. ' +
    'The settings come from --config (a JSON file with min_used_ratio, compact_blob_size, max_compact_size, layers_to_compact, blobs_dir) ' +
    'and the flags of the same names, which win.';
  static override examples = [
    '<%= config.bin %> compact --bootstrap image.boot --config compact.json --output-bootstrap image.compact --output-json out.json',
    '<%= config.bin %> compact -B image.boot -D blobs/ --min-used-ratio 50 --compact-blob-size 10485760',
  ];

  static override flags = {
    bootstrap: Flags.string({ char: 'B', description: 'bootstrap to compact', required: true }),
    config: Flags.string({ char: 'C', description: 'compact config file (JSON: min_used_ratio, compact_blob_size, max_compact_size, layers_to_compact, blobs_dir)' }),
    'blob-dir': Flags.string({ char: 'D', description: 'Local blobs dir for blobs not in backend, also for output blobs (blobs_dir)' }),
    'min-used-ratio': Flags.string({ description: 'Lower bound of used ratio for blobs to be kept, possible values: 0-99, 0 means disable' }),
    'compact-blob-size': Flags.string({ description: 'Upper bound of blob size for blobs to be compacted, in bytes' }),
    'max-compact-size': Flags.string({ description: 'Upper bound of compacted blob size, in bytes' }),
    'layers-to-compact': Flags.string({ description: 'If number of blobs >= layers_to_compact, do compact. 0 means always compact' }),
    'chunk-dict': Flags.string({ description: 'chunk dictionary: bootstrap=PATH (or PATH); its blobs are kept as they are' }),
    'backend-type': Flags.string({ description: 'Type of backend; blobs are read from blobs_dir only (a blob missing there is an error)' }),
    'backend-config': Flags.string({ description: 'Config string of backend' }),
    'backend-config-file': Flags.string({ description: 'Config file of backend', exclusive: ['backend-config'] }),
    'output-bootstrap': Flags.string({ char: 'O', description: 'bootstrap to output, default is source bootstrap add suffix .compact' }),
    'output-json': Flags.string({ char: 'J', description: 'write the results as JSON to this file' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Compact);
    const log = this.initLogger(flags);
    const fromFile = flags.config ? readCompactConfig(flags.config)! : {};
    const fromFlags: Partial<CompactConfig> = {};
    const num = (flag: 'min-used-ratio' | 'compact-blob-size' | 'max-compact-size' | 'layers-to-compact', field: keyof typeof COMPACT_DEFAULTS) => {
      const v = flags[flag];
      if (v !== undefined) fromFlags[field] = parseNumber(flag, v);
    };
    num('min-used-ratio', 'min_used_ratio');
    num('compact-blob-size', 'compact_blob_size');
    num('max-compact-size', 'max_compact_size');
    num('layers-to-compact', 'layers_to_compact');
    if ((fromFlags.min_used_ratio ?? 0) > 99) throw new NydusError('USAGE', `invalid --min-used-ratio ${fromFlags.min_used_ratio}: must be from 0 to 99`);
    const blobsDir = flags['blob-dir'] ?? fromFile.blobs_dir;
    if (!blobsDir) throw new NydusError('USAGE', 'missing blobs dir: give --blob-dir or blobs_dir in --config');
    const config: CompactConfig = { ...COMPACT_DEFAULTS, ...fromFile, ...fromFlags, blobs_dir: blobsDir };
    checkNoCollision([['--bootstrap', flags.bootstrap], ['--chunk-dict', flags['chunk-dict']?.replace(/^bootstrap=/, '')]], [['--output-bootstrap', flags['output-bootstrap']], ['--output-json', flags['output-json']]]);
    await compactAndReport({
      bootstrap: flags.bootstrap, config, chunkDict: flags['chunk-dict'], outputBootstrap: flags['output-bootstrap'], backendType: flags['backend-type'],
      log: (line) => log.info(line),
    }, flags['output-json']);
  }
}
