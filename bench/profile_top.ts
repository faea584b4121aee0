/**
 * Prints the functions with the most self time in V8 CPU profiles (the
 * `.cpuprofile` files `deno run --cpu-prof` writes), for example those of
 * `deno task bench --server-flags "--cpu-prof --cpu-prof-dir=/tmp/prof"`.
 *
 *   deno run -A bench/profile_top.ts /tmp/prof/*.cpuprofile [--top 25]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

if (import.meta.main) {
  const args = [...Deno.args];
  let top = 25;
  const at = args.indexOf("--top");
  if (at >= 0) {
    top = Number(args[at + 1]);
    args.splice(at, 2);
  }
  if (args.length === 0) {
    console.error("usage: deno run -A bench/profile_top.ts FILE.cpuprofile... [--top N]");
    Deno.exit(2);
  }
  const root = new URL("..", import.meta.url).href;
  for (const file of args) {
    const profile = JSON.parse(await Deno.readTextFile(file)) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    // sample i lasts timeDeltas[i + 1] (µs); the last one is dropped
    for (let i = 0; i < profile.samples.length - 1; i++) {
      const node = byId.get(profile.samples[i])!;
      const dt = profile.timeDeltas[i + 1];
      const f = node.callFrame;
      const where = f.url ? `${f.url.replace(root, "")}:${f.lineNumber + 1}` : "";
      const name = `${f.functionName || "(anonymous)"} ${where}`.trim();
      self.set(name, (self.get(name) ?? 0) + dt);
      total += dt;
    }
    const idle = ["(idle)", "(program)", "(garbage collector)"]
      .map((n) => self.get(n) ?? 0);
    console.log(
      `${file}: ${(total / 1e6).toFixed(1)} s sampled, idle ${
        (idle[0] / total * 100).toFixed(0)
      }%, program ${(idle[1] / total * 100).toFixed(0)}%, GC ${
        (idle[2] / total * 100).toFixed(0)
      }%`,
    );
    const busy = total - idle[0];
    const rows = [...self.entries()].filter(([n]) => n !== "(idle)").sort((a, b) => b[1] - a[1])
      .slice(0, top);
    for (const [name, us] of rows) {
      console.log(
        `${(us / 1000).toFixed(0).padStart(8)} ms ${
          (us / busy * 100).toFixed(1).padStart(5)
        }% of busy  ${name}`,
      );
    }
  }
}
