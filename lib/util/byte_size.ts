/**
 * Byte sizes written by people: `"1M"`, `"512KiB"`, `"4MB"`, `"1048576"`.
 *
 * K, M, G, T alone or followed by "iB" are powers of 1024; KB, MB, GB, TB are
 * powers of 1000 (as on disk labels). A bare number or a "B" suffix is bytes.
 * Letters are case-insensitive; a space may separate number and unit.
 *
 * @module
 */

const BINARY_UNIT_BYTES: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * The number of bytes a size string stands for, or undefined when the string
 * is not a size or does not come to a whole number of bytes.
 *
 * @example parseByteSize("1M") === 1048576; parseByteSize("4MB") === 4000000
 */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const unitBytes = BINARY_UNIT_BYTES[match[2].toLowerCase()];
  if (unitBytes === undefined) return undefined;
  const bytes = Number(match[1]) * unitBytes;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const MEASURED_UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * A measured byte count (free space, a size), rounded for people to three
 * digits: 81120411648 -> "75.5 GiB", 1000 -> "1000 B".
 */
export function formatMeasuredByteSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < MEASURED_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = value >= 100 ? value.toFixed(0) : value.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${MEASURED_UNITS[unit]}`;
}

/** A byte count in the largest binary unit that divides it: 65536 -> "64 KiB", 1000 -> "1000 B". */
export function formatByteSize(bytes: number): string {
  const units = [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], [
    "KiB",
    1024,
  ]] as const;
  for (const [unit, size] of units) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}
