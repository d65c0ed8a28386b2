// The only place stages meet: source -> entry stages -> chunker -> digest -> dedup ->
// batch stages -> compress -> sink. The chain is checked before any byte moves.
import { NydusError } from '../errors.js';
import type { Batch, BuildState, Sink, SourceEntry, StageDef } from './stage.js';
import type { TreeAssembler } from '../tree/assemble.js';
import { UNREAD, chunker } from './stages/chunk.js';
import { ahead } from './window.js';
import { digester } from './stages/digest.js';
import { dedup } from './stages/dedup.js';
import { compressor } from './stages/compress.js';
import { ChunkPool } from './pool.js';

export interface PipelineSpec {
  source: AsyncIterable<SourceEntry>;
  /** Extra stages from plugins, in order; entry stages run before the chunker, batch stages after dedup. */
  stages?: StageDef[];
  sink: Sink;
  state: BuildState;
  assembler: TreeAssembler;
  /** Called once the source is exhausted (the tree is whole), while the last batches are still in flight. */
  onWalkEnd?: () => void;
  /** Called with each batch once dedup has given every chunk its record, in order (before any batch stage). */
  onDeduped?: (b: Batch) => void;
  /**
   * A build whose chunks come to fewer bytes than this runs on this thread alone: its worker pool
   * is never started (unset: the pool runs whatever the size). Starting the threads and loading
   * their code takes ~0.1 s of a 2-core machine, more than they save on a small tree. The source
   * is read ahead to find out: a walk for at most INLINE_LOOKAHEAD_MS (a tree still being walked
   * then gets the pool, which has waited no longer than that to start), a stream up to the mark.
   */
  inlineBelow?: number;
  /** Called when the build runs on this thread alone (see inlineBelow), before its first batch. */
  onInline?: () => void;
  /**
   * A pool the caller started and ends, shared with its other builds (nydusify's concurrent
   * layers): used instead of one of the build's own, and left running at the end.
   */
  pool?: ChunkPool;
}

/**
 * Batches of planned reads the walk may have ready before the workers take them: enough that the
 * walk ends while the workers still have ~100 ms of work (the tree is laid out meanwhile), few
 * enough that their records stay small (a batch is at most 512 chunks and a path each).
 */
const WALK_AHEAD = 64;

/**
 * How long a build with inlineBelow reads a walk ahead before it takes the pool anyway: the walks
 * of trees of 4-20 MB took 10-23 ms here, and the pool of a large tree starts this much later.
 */
const INLINE_LOOKAHEAD_MS = 30;

export function validateStages(stages: StageDef[]): void {
  for (const s of stages) {
    if (!s || typeof s.name !== 'string' || typeof s.create !== 'function') {
      throw new NydusError('USAGE', 'a pipeline stage needs a name and a create() function');
    }
    if (s.kind !== 'entry' && s.kind !== 'batch') {
      throw new NydusError('USAGE', `stage ${s.name}: kind must be "entry" or "batch", not ${JSON.stringify(s.kind)}`);
    }
  }
}

/**
 * The first batches, pulled until the source ends, their chunks reach `limit` bytes or, while
 * every batch is `cheap` (a walk's planned reads), `ms` milliseconds have passed since the first
 * came; and all the batches (those, then the rest of the source's). A batch whose bytes the main
 * thread has read (a stream) lifts the time limit: a stream's bytes come at the pace of its
 * producer (a registry, a FIFO, several layers at once), and its size is the only sure sign.
 */
async function firstBatches(batches: AsyncIterable<Batch>, limit: number, ms: number, cheap: (b: Batch) => boolean): Promise<{ ended: boolean; all: AsyncIterable<Batch> }> {
  const it = batches[Symbol.asyncIterator]();
  const head: Batch[] = [];
  let bytes = 0;
  let ended = false;
  let until = Infinity;
  try {
    while (bytes < limit && performance.now() < until) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      if (!cheap(r.value)) until = Infinity;
      else if (head.length === 0) until = performance.now() + ms;
      head.push(r.value);
      for (const c of r.value.chunks) bytes += c.size;
    }
  } catch (e) {
    await it.return?.();
    throw e;
  }
  async function* all(): AsyncGenerator<Batch> {
    try {
      yield* head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      // A pipeline stopped early closes the source as a for-await would.
      await it.return?.();
    }
  }
  return { ended, all: all() };
}

/** The batches, each shown to `see` as it passes. */
async function* tap(batches: AsyncIterable<Batch>, see: (b: Batch) => void): AsyncGenerator<Batch> {
  for await (const b of batches) {
    see(b);
    yield b;
  }
}

/**
 * Runs the pipeline to its end. The worker pool then shuts down in the background (its threads
 * tear down their heaps on other cores while the caller lays out and writes the bootstrap):
 * `closed` settles when it is gone. On failure the pool is gone before the error is thrown.
 */
export async function runPipeline(spec: PipelineSpec): Promise<{ closed: Promise<void> }> {
  const stages = spec.stages ?? [];
  validateStages(stages);
  const state = spec.state;
  try {
    let entries: AsyncIterable<SourceEntry> = spec.source;
    for (const s of stages.filter((x) => x.kind === 'entry')) entries = s.create(state)(entries);
    const batchStages = stages.filter((x) => x.kind === 'batch');
    // The workers compress every chunk with its digest unless a batch stage sits between dedup and
    // compression, or a chunk dict or parent already holds chunks (most may then be duplicates,
    // and compressing them would be wasted).
    const early = batchStages.length === 0 && state.dict.size === 0 && !state.batched;
    // Batches of planned reads may wait (they hold no buffer): the walk runs ahead of the workers.
    const cheap = (b: Batch) => b.data === UNREAD;
    let planned: AsyncIterable<Batch> = ahead(chunker(state, spec.assembler, spec.onWalkEnd)(entries), WALK_AHEAD, cheap);
    if (state.threads > 0 && spec.inlineBelow !== undefined) {
      const first = await firstBatches(planned, spec.inlineBelow, INLINE_LOOKAHEAD_MS, cheap);
      planned = first.all;
      if (first.ended) {
        state.threads = 0;
        spec.onInline?.();
      }
    }
    // Piscina loads only for a build that runs workers (ChunkPool requires it on first use).
    if (state.threads > 0) state.pool = spec.pool ?? new ChunkPool(state.threads);
    let batches: AsyncIterable<Batch> = dedup(state)(digester(state, early)(planned));
    if (spec.onDeduped) batches = tap(batches, spec.onDeduped);
    for (const s of batchStages) batches = s.create(state)(batches);
    await spec.sink.consume(compressor(state, early)(batches), state);
  } catch (e) {
    if (state.pool !== spec.pool) await state.pool?.destroy();
    state.pool = undefined;
    throw e;
  }
  const closed = state.pool && state.pool !== spec.pool ? state.pool.destroy() : Promise.resolve();
  state.pool = undefined;
  // Awaited by the caller; never an unhandled rejection meanwhile.
  closed.catch(() => undefined);
  return { closed };
}
