// Base command: shared flags, the logger, and errors turned into one line and an exit code
// (a stack trace only at debug/trace level).
import { Command } from '@oclif/core/command';
import * as Flags from '@oclif/core/flags';
import { NydusError, fsError } from '../errors.js';
import { LEVELS, Logger, type Level } from './log.js';
import { removeTemporaries } from '../io/atomic.js';
import { pluginOf } from './plugins.js';

let handlersInstalled = false;

/** How long an interrupted command may spend aborting remote uploads before it ends. */
const INTERRUPT_CLEANUP_MS = 20_000;
const interruptCleanups = new Set<() => Promise<void>>();

/** Runs `fn` (an upload's abort) if the process is interrupted; returns the unregister function. */
export function onInterrupt(fn: () => Promise<void>): () => void {
  interruptCleanups.add(fn);
  return () => interruptCleanups.delete(fn);
}

/**
 * Once per process: SIGINT and SIGTERM remove every temporary output, then end the process by
 * that same signal (its default action), so the shell reports 130 / 143 and a calling script
 * knows it was interrupted. process.exit() cannot be used: it joins libuv's threads, and one may
 * be blocked reading a FIFO that no writer will ever feed again. An error that escapes every
 * await (a plugin's timer) also removes them and ends with one line: exit 1 when a plugin's code
 * threw it, else 70 (our bug).
 */
export function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      removeTemporaries();
      writeError(`interrupted by ${signal}`);
      process.exitCode = code;
      process.removeAllListeners(signal);
      // Remote uploads in progress are aborted first (bounded), so no server keeps their parts.
      const cleanups = [...interruptCleanups].map((f) => f().catch(() => undefined));
      const end = () => process.kill(process.pid, signal);
      if (cleanups.length === 0) return end();
      const timer = setTimeout(end, INTERRUPT_CLEANUP_MS);
      void Promise.all(cleanups).then(() => {
        clearTimeout(timer);
        end();
      });
    });
  }
  const fatal = (e: unknown) => {
    removeTemporaries();
    const plugin = pluginOf(e);
    const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    if (e instanceof NydusError) {
      writeError(`${e.message}`);
      process.exit(e.exit);
    }
    if (plugin !== undefined) {
      writeError(`plugin ${plugin}: ${message}`);
      process.exit(1);
    }
    writeError(`${message}`);
    if (process.env.NYDUS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(70);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    help: Flags.help({ char: 'h', description: 'show help' }),
    'log-level': Flags.option({ char: 'l', options: [...LEVELS], default: 'info' as Level, description: 'log level' })(),
    'log-file': Flags.string({ char: 'L', description: 'also write the log to this file (".log" appended when it has no extension)' }),
  };

  protected logger = new Logger('info');

  override async init(): Promise<void> {
    installExitHandlers();
    await super.init();
  }

  protected initLogger(flags: { 'log-level'?: string; 'log-file'?: string }): Logger {
    this.logger = new Logger((flags['log-level'] ?? 'info') as Level, flags['log-file']);
    return this.logger;
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    // --help and friends end by "failing" with exit 0 once they have printed.
    if (err.oclif?.exit === 0) {
      // Help did parse the command line; tell oclif so it does not warn in test environments.
      this.parsed = true;
      return;
    }
    if (err instanceof NydusError) {
      writeError(`${err.message}`);
      if (this.logger.enabled('debug') && err.stack) process.stderr.write(`${err.stack}\n`);
      process.exitCode = err.exit;
      return;
    }
    // oclif's own parse errors (unknown flag, missing argument) are usage errors.
    if (err.oclif || /Unexpected argument|Nonexistent flag|Missing required|Expected --|must also be provided|cannot also be provided|Parsing --/.test(err.message)) {
      // oclif's validation errors put the reason on the line after "The following error(s) occurred:".
      const lines = err.message.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
      const reason = /following error/.test(lines[0] ?? '') && lines[1] ? lines[1].replace(/^[^\w-]+/, '') : lines[0];
      writeError(`${reason}`);
      process.exitCode = err.oclif?.exit ?? 2;
      return;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code && e.path) {
      writeError(`${fsError('SOURCE', e.path, e).message.split('\n')[0]}`);
      process.exitCode = 1;
      return;
    }
    const plugin = pluginOf(err);
    if (plugin !== undefined) {
      writeError(`plugin ${plugin}: ${err.message.split('\n')[0]}`);
      process.exitCode = 1;
      return;
    }
    writeError(`${err.message}`);
    if (this.logger.enabled('debug') || process.env.NYDUS_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 70;
  }
}

/** Parses upstream's numbers: 0x-prefixed hex or decimal. */
export function parseNumber(flag: string, value: string): number {
  const v = value.trim();
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v.slice(2), 16) : /^[0-9]+$/.test(v) ? parseInt(v, 10) : NaN;
  if (!Number.isSafeInteger(n)) throw new NydusError('USAGE', `invalid value ${JSON.stringify(value)} for --${flag}: expected a decimal or 0x-prefixed hex number`);
  return n;
}

/**
 * Prints `Error: <message>` as exactly one line: names and ids from hostile input may hold
 * newlines or other control bytes, which are shown escaped rather than breaking the line.
 */
export function writeError(message: string): void {
  // eslint-disable-next-line no-control-regex
  const line = message.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  process.stderr.write(`Error: ${line}\n`);
}
