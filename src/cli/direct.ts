// Runs one of our commands straight from its class (launch.ts decides when), with the few things
// a running command asks of oclif's Config. `npm run build` bundles this module with all it
// imports, oclif included, into dist/bundle/ (scripts/bundle.js): the bins then load a few files
// instead of ~180 modules, ~40 ms of every start.
import * as fs from 'node:fs';
import type { Config } from '@oclif/core/config';
import { COMMANDS } from './commands.js';

export { COMMANDS };

/** A command class as oclif's Command.run uses it (_run is the entry point it calls). */
interface RunnableCommand {
  id: string;
  new (argv: string[], config: Config): { _run(): Promise<unknown> };
}

/** What a running command reads of oclif's Config (bin, hooks, env keys, ids), without loading one. */
function runConfig(root: URL, id: string): Config {
  const pjson = JSON.parse(fs.readFileSync(new URL('package.json', root), 'utf8')) as { name: string; version: string; oclif: { bin: string } };
  const bin = pjson.oclif.bin;
  const scopedEnvVarKey = (k: string) => `${bin.replaceAll('@', '').replaceAll(/[/-]/g, '_')}_${k}`.toUpperCase();
  return {
    bin,
    name: pjson.name,
    version: pjson.version,
    topicSeparator: ' ',
    commandIDs: [id],
    userAgent: `${pjson.name}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}`,
    scopedEnvVarKey,
    scopedEnvVarKeys: (k: string) => [scopedEnvVarKey(k)],
    scopedEnvVar: (k: string) => process.env[scopedEnvVarKey(k)],
    // The package declares no oclif hooks, and no oclif plugins can be installed.
    runHook: async () => ({ successes: [], failures: [] }),
    findCommand: () => undefined,
  } as unknown as Config;
}

/** Runs command `id` (a key of COMMANDS) with the rest of the line; `root` is the package root. What oclif's Command.run does once it has a Config. */
export async function runCommand(root: URL, id: string, rest: string[]): Promise<void> {
  const C = (await COMMANDS[id]()).default as RunnableCommand;
  C.id = id;
  try {
    await new C(rest, runConfig(root, id))._run();
  } catch (e) {
    // What the command's own catch() rethrew: oclif's handler prints it and sets the exit code.
    // It loads here, on the way out (with oclif's help, which it may print): not at every start.
    const { handle } = await import('@oclif/core/handle');
    await handle(e as Error);
  }
}
