// Starts a command line (bin/nydus-image.js, bin/nydusify.js). A command of ours with no help
// flag runs straight from its class, with the few things a running command asks of oclif's
// Config: loading that Config (root plugin and manifest, platform and WSL probes, shell, theme,
// user plugins) was the largest part of the start after oclif's own modules. Everything else
// (help, topics, unknown commands, flags before the command) goes through oclif's execute,
// as before.
import * as fs from 'node:fs';
import type { Config } from '@oclif/core';

/** A command class as oclif's Command.run uses it (_run is the entry point it calls). */
interface RunnableCommand {
  id: string;
  new (argv: string[], config: Config): { _run(): Promise<unknown> };
}

/** Words that may be a command (or topic) id: what oclif would find in dist/commands/. */
const ID_WORD = /^[a-z][a-z0-9-]*$/;

/** A help flag anywhere before `--`, or a short-flag group that may hold -h: oclif's help handles those. */
function asksForHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || /^-[^-]*h/.test(a)) return true;
  }
  return false;
}

/**
 * The command's id (`create`, `nydusify:convert`), its module and the rest of the line, when the
 * line starts with a command of ours; undefined otherwise.
 */
function commandOf(root: URL, argv: readonly string[]): { id: string; file: URL; rest: string[] } | undefined {
  const words: string[] = [];
  for (const a of argv.slice(0, 2)) {
    if (!ID_WORD.test(a)) break;
    words.push(a);
    const file = new URL(`dist/commands/${words.join('/')}.js`, root);
    if (fs.existsSync(file)) return { id: words.join(':'), file, rest: argv.slice(words.length) };
  }
  return undefined;
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

/** Runs `argv` (the words after the bin; nydusify's start with its topic) for the bin at `binUrl`. */
export async function launch(binUrl: string, argv: string[]): Promise<void> {
  const root = new URL('..', binUrl);
  const found = asksForHelp(argv) ? undefined : commandOf(root, argv);
  if (!found) {
    const { execute } = await import('@oclif/core');
    await execute({ dir: binUrl, args: argv });
    return;
  }
  // What oclif's Command.run does once it has a Config: the class knows its id, an instance runs.
  const C = ((await import(found.file.href)) as { default: RunnableCommand }).default;
  C.id = found.id;
  try {
    await new C(found.rest, runConfig(root, found.id))._run();
  } catch (e) {
    // What the command's own catch() rethrew: oclif's handler prints it and sets the exit code.
    const { handle } = await import('@oclif/core');
    await handle(e as Error);
  }
}
