/** Values shaped like remise's metadata entries, for the tests of the V8 format's reader and writer. */

/** An object entry with an aborted version and a complete one holding 16 bytes inline. */
export function objectEntry(key: string) {
  return {
    bucketId: "b".repeat(64),
    key,
    versions: [
      { uuid: "u1", timestampMs: 1_700_000_000_123, state: { state: "aborted" } },
      {
        uuid: "u2",
        timestampMs: 1_700_000_000_456,
        state: {
          state: "complete",
          data: {
            type: "inline",
            meta: { size: 16, etag: "e", headers: [["content-type", "text/plain"]] },
            bytes: new Uint8Array(16).fill(7),
          },
        },
      },
    ],
  };
}
