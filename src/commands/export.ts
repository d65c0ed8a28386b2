import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../cli/base.js';
import { NydusError } from '../errors.js';
import { exportBlock } from '../builder/export.js';
import { verityLayout, verityOptionsLine } from '../builder/verity.js';
import { backendFlags, backendSpecOf } from '../cli/backend-flags.js';
import { SyncBlobReader } from '../backends/sync-reader.js';

export default class Export extends BaseCommand {
  static override summary = 'Export RAFS filesystems as raw block disk images';
  static override description =
    'Writes a RAFS v6 bootstrap and its data blobs as one raw EROFS disk image that the kernel mounts alone ' +
    '(mount -t erofs -o ro,loop DISK DIR). With --verity, a dm-verity hash tree follows the data and the options ' +
    'for veritysetup are printed on stdout.';
  static override examples = [
    '<%= config.bin %> export --block -B out/bootstrap -D out/blobs',
    '<%= config.bin %> export --block -B out/bootstrap -D out/blobs -O disk.img --verity',
  ];

  static override flags = {
    block: Flags.boolean({ description: '(required) export RAFS filesystems as raw block disk images' }),
    bootstrap: Flags.string({ char: 'B', description: 'bootstrap of the RAFS filesystem to be exported' }),
    'localfs-dir': Flags.string({ char: 'D', aliases: ['blob-dir'], description: 'directory holding the data blobs, named by their id (the localfs backend)' }),
    config: Flags.string({ char: 'C', description: 'configuration file containing a BlobCacheEntry object (not supported yet)' }),
    output: Flags.string({ char: 'O', description: 'file path for the disk image [default: <localfs-dir>/<bootstrap name>.disk]' }),
    threads: Flags.string({ default: '4', description: 'worker threads, 1-1024 as upstream accepts (taken for compatibility: the export is one sequential pass)' }),
    verity: Flags.boolean({ description: 'generate dm-verity data for the block device' }),
    ...backendFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Export);
    this.initLogger(flags);
    // Checked here rather than by oclif, whose messages span lines.
    if (!flags.block) throw new NydusError('USAGE', 'missing --block: raw block disk images are the only export type');
    const threads = /^[0-9]+$/.test(flags.threads) ? Number(flags.threads) : NaN;
    if (Number.isNaN(threads)) throw new NydusError('USAGE', `invalid thread number configuration: ${flags.threads}`);
    if (threads < 1 || threads > 1024) throw new NydusError('USAGE', `invalid thread number ${threads}, valid range: [1-1024]`);
    if (flags.config) throw new NydusError('UNSUPPORTED', '-C/--config is not supported yet; use -B BOOTSTRAP -D DIR');
    const dir = flags['localfs-dir'];
    const spec = backendSpecOf(flags);
    if (spec) {
      if (dir !== undefined) throw new NydusError('USAGE', '--backend-type cannot be used with -D/--localfs-dir');
      if (!flags.bootstrap) throw new NydusError('USAGE', '--backend-type needs -B/--bootstrap');
      if (!flags.output) throw new NydusError('USAGE', '--backend-type needs -O/--output (there is no localfs dir to put the disk in)');
    }
    if (!spec && !flags.bootstrap && !dir) throw new NydusError('USAGE', 'both option `-C/--config` and `-D/--localfs-dir` are missing');
    if (!flags.bootstrap) throw new NydusError('USAGE', '-D/--localfs-dir needs -B/--bootstrap');
    if (!dir && !spec) throw new NydusError('USAGE', '-B/--bootstrap needs -D/--localfs-dir');
    const backend = spec ? new SyncBlobReader(spec) : undefined;
    let r: Awaited<ReturnType<typeof exportBlock>>;
    try {
      r = await exportBlock({ bootstrap: flags.bootstrap, blobDir: dir ?? '.', output: flags.output, verity: flags.verity, ...(backend ? { backend } : {}) });
    } finally {
      backend?.close();
    }
    this.logger.info(`exported ${flags.bootstrap} to ${r.output}: ${r.dataBlocks} blocks of ${r.blockSize} bytes`);
    if (r.verity) process.stdout.write(`${verityOptionsLine(verityLayout(r.dataBlocks, r.blockSize), r.verity.root)}\n`);
  }
}
