// What a pipeline-stage plugin may use: the stage types and a typed helper. Plugins import
// "<package>/plugin" only, never src/ internals.
export type { StageDef, EntryStage, BatchStage, SourceEntry, Batch, PendingChunk, BuildState, ContentReader } from './pipeline/stage.js';
export type { TreeNode } from './tree/node.js';
import type { BatchStage, EntryStage } from './pipeline/stage.js';

/** Identity helper that type-checks a stage definition. */
export function defineStage<S extends EntryStage | BatchStage>(stage: S): S {
  return stage;
}
