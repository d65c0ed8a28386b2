// Starts a command line (bin/nydus-image.js, bin/nydusify.js). A command of ours with no help
// flag runs straight from its class (direct.ts), with the few things a running command asks of
// oclif's Config: loading that Config (root plugin and manifest, platform and WSL probes, shell,
// theme, user plugins) was the largest part of the start after oclif's own modules. It runs from
// the bundle the build makes of direct.ts (scripts/bundle.js), or with NYDUS_DEBUG set from the
// modules themselves, whose stacks then name our files. Everything else (help, topics, unknown
// commands, flags before the command) goes through oclif's execute, as before.
import * as fs from 'node:fs';
import { COMMANDS } from './commands.js';

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

/** The command's id (`create`, `nydusify:convert`) and the rest of the line, when the line starts with a command of ours. */
function commandOf(argv: readonly string[]): { id: string; rest: string[] } | undefined {
  const words: string[] = [];
  for (const a of argv.slice(0, 2)) {
    if (!ID_WORD.test(a)) break;
    words.push(a);
    const id = words.join(':');
    if (Object.hasOwn(COMMANDS, id)) return { id, rest: argv.slice(words.length) };
  }
  return undefined;
}

/** The bundle of direct.ts (and all it imports) the build makes, when there is one. */
const BUNDLE = new URL('../bundle/direct.js', import.meta.url);

/** Runs `argv` (the words after the bin; nydusify's start with its topic) for the bin at `binUrl`. */
export async function launch(binUrl: string, argv: string[]): Promise<void> {
  const root = new URL('..', binUrl);
  const found = asksForHelp(argv) ? undefined : commandOf(argv);
  if (!found) {
    const { execute } = await import('@oclif/core');
    await execute({ dir: binUrl, args: argv });
    return;
  }
  const bundled = !process.env.NYDUS_DEBUG && fs.existsSync(BUNDLE);
  const { runCommand } = (await import(bundled ? BUNDLE.href : './direct.js')) as typeof import('./direct.js');
  await runCommand(root, found.id, found.rest);
}
