/** The first 16 hex digits of a node id (64 in all), as logs, messages and the CLI show it. */
export function shortNodeId(id: string): string {
  return id.slice(0, 16);
}
