import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../cli/base.js';
import { NydusError } from '../errors.js';
import { openImage } from '../read/open.js';
import { EXIT_REQUESTS, InspectSession, inspectReport, inspectRequest, inspectUsage, parseRequest, renderAnswer } from '../read/inspect.js';
import type { RafsImage } from '../read/model.js';

export default class Inspect extends BaseCommand {
  static override summary = 'Inspect RAFS filesystem metadata in interactive or request mode';
  static override description = [
    'With -R, answers one request as compact JSON on stdout (no trailing newline): stats, ls, cd DIR, stat FILE, blobs, prefetch, chunk OFFSET, icheck INO.',
    'Without -R, prints a report (superblock, blob table, file tree) when stdin is not a terminal, and starts an interactive prompt accepting the same requests when it is.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> inspect out/bootstrap -R blobs',
    '<%= config.bin %> inspect -B out/bootstrap --request "stat lib.rs"',
    '<%= config.bin %> inspect out/bootstrap < /dev/null',
  ];

  static override args = { bootstrap: Args.string({ description: 'bootstrap file (or a data blob with an inline bootstrap)' }) };
  static override flags = {
    bootstrap: Flags.string({ char: 'B', description: 'bootstrap file (deprecated: give it as the argument)' }),
    'blob-dir': Flags.string({ char: 'D', exclusive: ['config'], description: 'directory holding the data blobs (not needed: inspect reads metadata only)' }),
    config: Flags.string({ char: 'C', description: 'nydusd configuration file (not needed: inspect reads metadata only)' }),
    request: Flags.string({ char: 'R', description: 'answer one request: stats, ls, cd DIR, stat FILE, blobs, prefetch, chunk OFFSET, icheck INO' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Inspect);
    this.initLogger(flags);
    if (args.bootstrap && flags.bootstrap) throw new NydusError('USAGE', 'give the bootstrap either as the argument or with -B, not both');
    const file = args.bootstrap ?? flags.bootstrap;
    if (!file) throw new NydusError('USAGE', 'missing bootstrap: inspect BOOTSTRAP');
    // Metadata is all inspect reads; a named config or blob dir must still exist, as upstream loads it.
    for (const given of [flags.config, flags['blob-dir']]) {
      if (given !== undefined && !fs.existsSync(given)) throw new NydusError('USAGE', 'no such file or directory', { path: given });
    }
    const image = openImage(file);

    if (flags.request !== undefined) {
      process.stdout.write(renderAnswer(inspectRequest(image, flags.request)));
    } else if (process.stdin.isTTY) {
      await prompt(image);
    } else {
      process.stdout.write(inspectReport(image));
    }
  }
}

/** Upstream's interactive loop: the same requests, with `cd` remembered between them. */
async function prompt(image: RafsImage): Promise<void> {
  const session = new InspectSession(image);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: 'Inspecting RAFS :> ' });
  rl.prompt();
  for await (const line of rl) {
    const { cmd } = parseRequest(line);
    if (cmd !== undefined && EXIT_REQUESTS.includes(cmd)) break;
    if (cmd === 'help') {
      process.stdout.write(inspectUsage());
    } else {
      try {
        const a = session.run(line);
        process.stdout.write(a.text + (a.value === null ? '' : `${JSON.stringify(a.value)}\n`));
      } catch (e) {
        if (!(e instanceof NydusError)) throw e;
        process.stdout.write(`${e.message}\n`);
      }
    }
    rl.prompt();
  }
  rl.close();
}
