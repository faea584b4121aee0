/**
 * The `pull` and `cancel` of a stream that relays what it reads from
 * `reader`: a pull that fails cancels the reader (the consumer gets the
 * error), and a consumer's cancel goes on to the reader.
 */
export function relayFrom<C>(
  reader: { cancel(reason?: unknown): Promise<void> },
  pull: (controller: C) => Promise<void>,
): { pull(controller: C): Promise<void>; cancel(reason?: unknown): Promise<void> } {
  return {
    async pull(controller) {
      try {
        await pull(controller);
      } catch (e) {
        reader.cancel(e).catch(() => {});
        throw e;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  };
}
