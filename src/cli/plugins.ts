// Loads pipeline stages from plugin modules: `--plugin MODULE[?key=value&key=value]`.
// A plugin's default export is a function (options) => StageDef | StageDef[].
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NydusError } from '../errors.js';
import { validateStages } from '../pipeline/compose.js';
import type { StageDef } from '../pipeline/stage.js';

export async function loadPlugins(specs: string[]): Promise<StageDef[]> {
  const stages: StageDef[] = [];
  for (const spec of specs) {
    const q = spec.indexOf('?');
    const mod = q < 0 ? spec : spec.slice(0, q);
    const options = Object.fromEntries(new URLSearchParams(q < 0 ? '' : spec.slice(q + 1)));
    const url = mod.startsWith('.') || path.isAbsolute(mod) ? pathToFileURL(path.resolve(mod)).href : mod;
    let loaded: { default?: unknown };
    try {
      loaded = await import(url);
    } catch (e) {
      throw new NydusError('USAGE', `cannot load plugin ${mod}: ${(e as Error).message.split('\n')[0]}`);
    }
    if (typeof loaded.default !== 'function') throw new NydusError('USAGE', `plugin ${mod}: its default export must be a function (options) => stage`);
    const made = (loaded.default as (o: Record<string, string>) => StageDef | StageDef[])(options);
    const list = Array.isArray(made) ? made : [made];
    validateStages(list);
    stages.push(...list);
  }
  return stages;
}
