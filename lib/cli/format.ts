/**
 * Readable CLI output: aligned tables with a header line, aligned
 * "Label:  value" blocks, timestamps in ISO-8601, sizes for people.
 *
 * @module
 */
import { formatMeasuredByteSize } from "../util/byte_size.ts";

/** Spaces between two table columns. */
const COLUMN_GAP = "  ";

/**
 * Replaces control characters (a newline in a key name, an escape sequence)
 * with visible escapes, so that a value cannot break a table or the terminal.
 */
export function printable(value: string): string {
  // deno-lint-ignore no-control-regex
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const escaped = JSON.stringify(c);
    return escaped.slice(1, -1);
  });
}

/**
 * A table: the header line, then one line per row, columns aligned and
 * separated by two spaces, with no trailing spaces. Ends with a newline.
 */
export function formatTable(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((row) => row.map(printable));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
  return cells
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join(COLUMN_GAP)
        .trimEnd()
    )
    .join("\n") + "\n";
}

/** Lines of "Label:  value", values aligned. Ends with a newline. */
export function formatFields(fields: [string, string][]): string {
  const width = Math.max(...fields.map(([label]) => label.length + 1));
  return fields
    .map(([label, value]) =>
      `${(label + ":").padEnd(width)}${COLUMN_GAP}${printable(value)}`.trimEnd()
    )
    .join("\n") + "\n";
}

/** A timestamp (ISO-8601 string or epoch milliseconds) as ISO-8601 UTC, to the second. */
export function formatTime(value: string | number): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A byte count for people: "512 B", "1.5 MiB (1572864 bytes)". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  return `${formatMeasuredByteSize(bytes)} (${bytes} bytes)`;
}

/** "yes" or "no". */
export function yesNo(value: boolean): string {
  return value ? "yes" : "no";
}

/** A value of an arbitrary JSON document, on one line. */
export function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return JSON.stringify(value);
}
