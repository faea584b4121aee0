/**
 * A small min-cost max-flow solver for the partition assignment
 * (`layout_assignment.ts`). Private to `lib/rpc`.
 *
 * Successive shortest paths in the primal-dual style: Bellman-Ford (queue
 * based) distances from the source, then as many augmentations as fit along
 * edges that lie on a shortest path, then distances again. Costs must leave no
 * negative cycle in the empty flow (true when every cost is >= 0). The graphs
 * built here have a few thousand vertices and path costs of 0..3, so a handful
 * of distance rounds suffice.
 *
 * @module
 */

/** A directed graph with capacities and costs on its edges, and a flow on it. */
export class FlowGraph {
  readonly vertexCount: number;
  #head: Int32Array;
  #to: number[] = [];
  #next: number[] = [];
  #residual: number[] = [];
  #cost: number[] = [];

  constructor(vertexCount: number) {
    this.vertexCount = vertexCount;
    this.#head = new Int32Array(vertexCount).fill(-1);
  }

  /** Adds an edge and returns its index, for {@linkcode FlowGraph.flowOn}. */
  addEdge(from: number, to: number, capacity: number, cost = 0): number {
    const edge = this.#to.length;
    this.#push(from, to, capacity, cost);
    this.#push(to, from, 0, -cost);
    return edge;
  }

  /** The flow currently carried by the edge `edge` returned by `addEdge`. */
  flowOn(edge: number): number {
    return this.#residual[edge ^ 1];
  }

  /**
   * Pushes as much flow as possible from `source` to `sink`, and of all
   * maximum flows, one of least total cost.
   */
  minCostMaxFlow(source: number, sink: number): { flow: number; cost: number } {
    const distance = new Float64Array(this.vertexCount);
    const visited = new Uint8Array(this.vertexCount);
    let flow = 0;
    let cost = 0;
    while (this.#shortestDistances(source, distance)[sink] < Infinity) {
      for (;;) {
        visited.fill(0);
        const pushed = this.#augment(source, sink, Infinity, distance, visited);
        if (pushed === 0) break;
        flow += pushed;
        cost += pushed * distance[sink];
      }
    }
    return { flow, cost };
  }

  #push(from: number, to: number, capacity: number, cost: number): void {
    this.#to.push(to);
    this.#residual.push(capacity);
    this.#cost.push(cost);
    this.#next.push(this.#head[from]);
    this.#head[from] = this.#to.length - 1;
  }

  /** Fills `distance` with the costs of the cheapest residual paths from `source`. */
  #shortestDistances(source: number, distance: Float64Array): Float64Array {
    const n = this.vertexCount;
    distance.fill(Infinity);
    distance[source] = 0;
    const queued = new Uint8Array(n);
    const queue = new Int32Array(n + 1); // circular: each vertex is queued at most once at a time
    let read = 0;
    let write = 0;
    queue[write++] = source;
    queued[source] = 1;
    while (read !== write) {
      const u = queue[read];
      read = (read + 1) % (n + 1);
      queued[u] = 0;
      for (let e = this.#head[u]; e !== -1; e = this.#next[e]) {
        if (this.#residual[e] <= 0) continue;
        const v = this.#to[e];
        const d = distance[u] + this.#cost[e];
        if (d < distance[v]) {
          distance[v] = d;
          if (!queued[v]) {
            queued[v] = 1;
            queue[write] = v;
            write = (write + 1) % (n + 1);
          }
        }
      }
    }
    return distance;
  }

  /** Depth-first augmentation along edges on shortest paths (reduced cost 0). */
  #augment(
    u: number,
    sink: number,
    limit: number,
    distance: Float64Array,
    visited: Uint8Array,
  ): number {
    if (u === sink) return limit;
    visited[u] = 1;
    let pushed = 0;
    for (let e = this.#head[u]; e !== -1 && pushed < limit; e = this.#next[e]) {
      const v = this.#to[e];
      if (
        this.#residual[e] <= 0 || visited[v] || distance[v] !== distance[u] + this.#cost[e]
      ) continue;
      const f = this.#augment(
        v,
        sink,
        Math.min(limit - pushed, this.#residual[e]),
        distance,
        visited,
      );
      if (f > 0) {
        this.#residual[e] -= f;
        this.#residual[e ^ 1] += f;
        pushed += f;
      }
    }
    return pushed;
  }
}
