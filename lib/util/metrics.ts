/**
 * Metrics in Prometheus's text exposition format (0.0.4): families of
 * counters and gauges, each sample with its labels.
 */

export interface MetricSample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  /** Lowercase, underscores; counters end in `_total`. */
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: MetricSample[];
}

/** The media type of the text format, for the response's Content-Type. */
export const PROMETHEUS_TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** The families as one text document; a family without samples is left out. */
export function prometheusText(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const { labels, value } of family.samples) {
      const pairs = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      const labelText = pairs.length > 0 ? `{${pairs.join(",")}}` : "";
      lines.push(`${family.name}${labelText} ${formatValue(value)}`);
    }
  }
  return lines.join("\n") + "\n";
}
