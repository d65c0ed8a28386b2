// A custom pipeline stage to copy: a batch stage (it runs after dedup, before compression)
// that counts fresh and duplicate chunks and reports them when the build ends.
//   nydus-image create --plugin ./examples/custom-stage.js -B boot -b blob rootfs/
// A stage is { name, kind: 'entry' | 'batch', create(state) => (input) => output }, where input
// and output are async iterables of entries (before the chunker) or batches (after dedup).
export default function chunkCounter() {
  return {
    name: 'chunk-counter',
    kind: 'batch',
    create() {
      return async function* (batches) {
        let fresh = 0;
        let dup = 0;
        for await (const batch of batches) {
          for (const c of batch.chunks) c.fresh ? fresh++ : dup++;
          yield batch;
        }
        process.stderr.write(`chunk-counter: ${fresh} new chunks, ${dup} deduplicated\n`);
      };
    },
  };
}
