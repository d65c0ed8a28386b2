// Loads pipeline stages from plugin modules: `--plugin MODULE[?key=value&key=value]`.
// A plugin's default export is a function (options) => StageDef | StageDef[].
// A plugin is code we did not write: whatever it throws (from its factory, its create(), its
// stage, or later from a timer of its own) ends the build with one line naming it, exit 1.
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NydusError } from '../errors.js';
import type { StageDef } from '../pipeline/stage.js';

/** Loaded plugins: the name given on the command line and the file its code is in. */
const loaded: Array<{ mod: string; files: string[] }> = [];

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

const pluginError = (mod: string, what: string, e: unknown) =>
  new NydusError('SOURCE', `plugin ${mod}: ${what}: ${firstLine(e)}`, { cause: e });

/**
 * The plugin whose code an error was thrown from (its file is in the error's stack), if any:
 * for errors that reach no stage, such as a throw in a plugin's own timer.
 */
export function pluginOf(e: unknown): string | undefined {
  const stack = e instanceof Error ? e.stack ?? '' : '';
  return loaded.find((p) => p.files.some((f) => stack.includes(f)))?.mod;
}

/** Errors that reached a stage from the stages before it: not the stage's doing. */
const fromUpstream = new WeakSet<object>();

async function* markUpstream<T>(input: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* input;
  } catch (e) {
    if (e !== null && typeof e === 'object') fromUpstream.add(e);
    throw e;
  }
}

async function* blameStage<T>(mod: string, stage: string, output: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* output;
  } catch (e) {
    if (e instanceof NydusError || (e !== null && typeof e === 'object' && fromUpstream.has(e))) throw e;
    throw pluginError(mod, `stage ${stage} failed`, e);
  }
}

/** The stage with its create() and its output guarded: a throw names the plugin and the stage. */
function guard(mod: string, s: StageDef): StageDef {
  return {
    name: s.name,
    kind: s.kind,
    create(state) {
      let transform: (input: AsyncIterable<any>) => AsyncIterable<any>;
      try {
        transform = s.create(state);
      } catch (e) {
        throw pluginError(mod, `stage ${s.name}: create() failed`, e);
      }
      if (typeof transform !== 'function') throw new NydusError('SOURCE', `plugin ${mod}: stage ${s.name}: create() must return a function (input) => output`);
      return (input) => {
        let out: AsyncIterable<any>;
        try {
          out = transform(markUpstream(input));
        } catch (e) {
          throw pluginError(mod, `stage ${s.name} failed`, e);
        }
        if (out === null || typeof out !== 'object' || typeof (out as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
          throw new NydusError('SOURCE', `plugin ${mod}: stage ${s.name} must return an async iterable`);
        }
        return blameStage(mod, s.name, out);
      };
    },
  };
}

export async function loadPlugins(specs: string[]): Promise<StageDef[]> {
  const stages: StageDef[] = [];
  if (specs.length === 0) return stages;
  // Every command loads this module (for pluginOf): the pipeline only when a plugin is given.
  const { validateStages } = await import('../pipeline/compose.js');
  for (const spec of specs) {
    const q = spec.indexOf('?');
    const mod = q < 0 ? spec : spec.slice(0, q);
    const options = Object.fromEntries(new URLSearchParams(q < 0 ? '' : spec.slice(q + 1)));
    const url = mod.startsWith('.') || path.isAbsolute(mod) ? pathToFileURL(path.resolve(mod)).href : mod;
    let module: { default?: unknown };
    try {
      module = await import(url);
    } catch (e) {
      throw new NydusError('USAGE', `cannot load plugin ${mod}: ${firstLine(e)}`);
    }
    // A stack names the module by its URL (or its path, for a CommonJS one).
    const files: string[] = [];
    try {
      const resolved = import.meta.resolve(url);
      files.push(resolved);
      if (resolved.startsWith('file:')) files.push(fileURLToPath(resolved));
    } catch {
      // Not resolvable again: errors from it are simply not attributed.
    }
    loaded.push({ mod, files });
    if (typeof module.default !== 'function') throw new NydusError('USAGE', `plugin ${mod}: its default export must be a function (options) => stage`);
    let made: StageDef | StageDef[];
    try {
      made = (module.default as (o: Record<string, string>) => StageDef | StageDef[])(options);
    } catch (e) {
      throw pluginError(mod, 'its factory failed', e);
    }
    const list = Array.isArray(made) ? made : [made];
    try {
      validateStages(list);
    } catch (e) {
      throw new NydusError('USAGE', `plugin ${mod}: ${firstLine(e)}`);
    }
    stages.push(...list.map((s) => guard(mod, s)));
  }
  return stages;
}
