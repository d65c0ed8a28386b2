import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../cli/base.js';
import { NydusError } from '../errors.js';
import { unpack } from '../read/unpack.js';
import { checkNoCollision } from '../io/collide.js';
import { backendSpecOf } from '../cli/backend-flags.js';
import { SyncBlobReader } from '../backends/sync-reader.js';

export default class Unpack extends BaseCommand {
  static override summary = 'Unpack a RAFS filesystem to a tar file';
  static override description = [
    'Writes every entry of the bootstrap (but the root and sockets) as a tar stream: ustar headers, PAX records for long names and xattrs, file data read from the data blobs.',
    'OUTPUT may be a FIFO, written in place; a regular file appears only once complete.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> unpack out/bootstrap --blob-dir out/blobs --output layer.tar',
    '<%= config.bin %> unpack -B image.boot --blob image.blob --output oci.tar',
  ];

  static override args = { bootstrap: Args.string({ description: 'File path of RAFS metadata' }) };
  static override flags = {
    bootstrap: Flags.string({ char: 'B', description: '[Deprecated] File path of RAFS meta blob/bootstrap' }),
    // One of --blob, --blob-dir, --backend-type; checked in run() so the error is one clear line.
    blob: Flags.string({ char: 'b', description: 'Path to RAFS data blob file (an image with one blob)' }),
    'blob-dir': Flags.string({ char: 'D', description: 'Directory holding the data blobs, each named by its id' }),
    'backend-type': Flags.string({ aliases: ['backend_type'], description: 'Type of backend: registry, s3, oss, http-proxy (localfs: use --blob-dir)' }),
    'backend-config': Flags.string({ aliases: ['backend_config'], description: 'Config string of backend' }),
    'backend-config-file': Flags.string({ aliases: ['backend_config_file'], description: 'Config file of backend' }),
    output: Flags.string({ description: '(required) Path for output tar file' }),
    verify: Flags.boolean({ description: 'check every chunk against its digest while reading (upstream does not)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Unpack);
    this.initLogger(flags);
    if (args.bootstrap && flags.bootstrap) throw new NydusError('USAGE', 'give the bootstrap either as the argument or with -B, not both');
    const bootstrap = args.bootstrap ?? flags.bootstrap;
    if (!bootstrap) throw new NydusError('USAGE', 'missing parameter `bootstrap` or `BOOTSTRAP`');
    if (flags.output === undefined) throw new NydusError('USAGE', 'missing --output: the path for the output tar file');
    if (flags.output === '') throw new NydusError('USAGE', 'invalid empty --output option');
    const given = (['blob', 'blob-dir', 'backend-type'] as const).filter((f) => flags[f] !== undefined);
    if (given.length > 1) throw new NydusError('USAGE', `--${given[0]} cannot be used with --${given[1]}`);
    if (flags['backend-config'] !== undefined && flags['backend-config-file'] !== undefined) {
      throw new NydusError('USAGE', '--backend-config cannot be used with --backend-config-file');
    }
    const backendType = flags['backend-type'];
    if (backendType !== undefined) {
      if (flags['backend-config'] === undefined && flags['backend-config-file'] === undefined) {
        throw new NydusError('USAGE', '--backend-config or --backend-config-file must be specified');
      }
      if (backendType === 'localfs') throw new NydusError('USAGE', 'Use --blob-dir to specify localfs backend');
    }
    const spec = backendSpecOf(flags);
    if (flags.blob === undefined && flags['blob-dir'] === undefined && !spec) {
      throw new NydusError('USAGE', 'invalid backend configuration, --blob, --blob-dir or --backend-type must be specified');
    }
    checkNoCollision([[args.bootstrap ? 'BOOTSTRAP' : '--bootstrap', bootstrap], ['--blob', flags.blob]], [['--output', flags.output]]);
    const backend = spec ? new SyncBlobReader(spec) : undefined;
    try {
      await unpack({ bootstrap, output: flags.output, blob: flags.blob, blobDir: flags['blob-dir'], verify: flags.verify, ...(backend ? { backend } : {}) });
    } finally {
      backend?.close();
    }
  }
}
