import assert from "node:assert/strict";
import { prometheusText } from "./metrics.ts";

Deno.test("prometheusText writes HELP, TYPE and samples, escapes labels, skips empty families", () => {
  const text = prometheusText([
    {
      name: "remise_things_total",
      help: "Things counted.\nTwo lines.",
      type: "counter",
      samples: [
        { labels: { kind: 'a "quoted" \\ name', at: "x\ny" }, value: 3 },
        { value: 0.5 },
      ],
    },
    { name: "remise_nothing", help: "Never reported.", type: "gauge", samples: [] },
    { name: "remise_ratio", help: "A ratio.", type: "gauge", samples: [{ value: NaN }] },
  ]);
  assert.equal(
    text,
    [
      "# HELP remise_things_total Things counted.\\nTwo lines.",
      "# TYPE remise_things_total counter",
      'remise_things_total{kind="a \\"quoted\\" \\\\ name",at="x\\ny"} 3',
      "remise_things_total 0.5",
      "# HELP remise_ratio A ratio.",
      "# TYPE remise_ratio gauge",
      "remise_ratio NaN",
      "",
    ].join("\n"),
  );
});
