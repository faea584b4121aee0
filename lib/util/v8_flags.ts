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
 *
 * `--max-semi-space-size=4`: V8's young generation, where new objects live
 * until a scavenge, may grow to 16 MiB a semi-space by default. Each
 * scavenge also frees the ArrayBuffers that died young (a replica's
 * socket reads), so a smaller young generation holds less of both: with 4
 * parallel 256 MiB uploads through a 3-node cluster, the peers peaked at
 * 221-252 MiB of RSS against 272-302 with the default. Single-node requests
 * ran as fast; the cluster's small PUTs lost 2-10%, their objects living
 * across RPC round trips (2 MiB cost single-node small requests 6-8%).
 */
const V8_FLAGS = "--external-memory-max-growing-factor=2,--max-semi-space-size=4";

/** The `deno run` / `deno compile` option that passes V8_FLAGS. */
export const V8_FLAGS_OPTION = `--v8-flags=${V8_FLAGS}`;
