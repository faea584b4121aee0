/**
 * Keys recently found absent from the metadata store, so that reading one
 * again skips SQLite: a PUT of a new key reads it twice (for its timestamp,
 * then to merge), and a read from Deno KV costs ~30 us on its one SQLite
 * thread, more under commits. Bounded, oldest out.
 *
 * Only absences are kept: caching values too cost ~250 MiB of RSS while
 * 100,000 keys were written (the entries outlive V8's young generation).
 *
 * It stays exact because the server process is the only writer of its
 * metadata store: every commit tells what it wrote once durable. A read in
 * flight while a commit wrote its key may return the older state, so such a
 * read records nothing.
 */
export class AbsentKeys {
  readonly #absent = new Set<string>();
  /** Reads from the store in flight, by key id; `overtaken` once a commit wrote the key. */
  readonly #reading = new Map<string, { count: number; overtaken: boolean }>();

  constructor(private readonly max: number) {}

  has(id: string): boolean {
    return this.#absent.has(id);
  }

  /**
   * Marks a read from the store starting; call the function returned with
   * whether it found the key (undefined when the read failed).
   */
  beginRead(id: string): (found: boolean | undefined) => void {
    let reading = this.#reading.get(id);
    if (reading === undefined) {
      reading = { count: 0, overtaken: false };
      this.#reading.set(id, reading);
    }
    reading.count++;
    const state = reading;
    return (found) => {
      if (--state.count === 0) this.#reading.delete(id);
      if (found === false && !state.overtaken) this.#add(id);
    };
  }

  /** Records a committed write: whether the key now has a value. */
  written(id: string, present: boolean): void {
    const reading = this.#reading.get(id);
    if (reading !== undefined) reading.overtaken = true;
    if (present) this.#absent.delete(id);
    else this.#add(id);
  }

  #add(id: string): void {
    this.#absent.delete(id);
    this.#absent.add(id);
    if (this.#absent.size > this.max) {
      this.#absent.delete(this.#absent.values().next().value!);
    }
  }
}
