/**
 * The V8 flags remise runs with. The deno.json tasks, the compiled
 * executables (`deno compile --v8-flags`) and the benchmark's nodes pass
 * them; with the bundle, `deno run` takes them on its command line (README).
 * A node without them works the same, only slower.
 *
 * `--external-memory-max-growing-factor=2`: V8 starts a full collection
 * whenever the memory held by ArrayBuffers has grown by its limit since the
 * last one, and by default that limit grows by at most 1.1x, whatever the
 * heap's own growth factor. A 1 MiB buffer per block sent made large GETs
 * pay for one full collection per ~64 MiB (64 in six 256 MiB GETs, a third
 * of a core on V8's marking threads). With the heap's factor (up to 4x)
 * there were 7, and single-stream GETs went from ~1,200 to ~1,450 MiB/s;
 * with 2 they are as fast. But the limit scales with the ArrayBuffers alive
 * at the last collection: 40 slow downloads hold ~4 MiB each, and with 4x
 * the node reached ~700 MiB of RSS, with 2x ~440. Small requests allocate
 * little outside the heap and did not change.
 */
const V8_FLAGS = "--external-memory-max-growing-factor=2";

/** The `deno run` / `deno compile` option that passes V8_FLAGS. */
export const V8_FLAGS_OPTION = `--v8-flags=${V8_FLAGS}`;
