/**
 * Which connection carries the traffic to each peer, and the peers' addresses.
 *
 * One connection per pair of nodes: when two exist (both nodes dialled at
 * once, or one dialled twice by different addresses), both ends keep the one
 * with the smaller key `dialler id + ":" + dialler nonce` — a rule both ends
 * evaluate alike whatever order the connections came up in — and retire the
 * other, which closes after its requests drain. A connection the peer has
 * not been heard on for two ping intervals (half-open after a crash) always
 * gives way to a new one.
 *
 * Each process greets with an instance id of its own. A connection from a
 * peer id already connected from another process that still answers is two
 * nodes sharing one certificate (a copied node.key): the later one is
 * refused, since the cluster would count them as one node and keep fewer
 * copies than it says.
 */
import { log } from "../util/log.ts";
import type { Connection } from "./_connection.ts";
import { debug, LOG } from "./_stream_host.ts";
import { shortNodeId } from "./node_id.ts";

interface Entry {
  conn: Connection;
  key: string;
  addr: string;
  /** The peer process's instance id (absent from older nodes' greetings). */
  instance?: string;
}

export class PeerRegistry {
  #registered = new Map<string, Entry>();
  #keys = new Map<Connection, string>();
  #instances = new Map<Connection, string | undefined>();
  /** Dialable address of each node met (dialled addresses, or announced by the peer). */
  readonly addresses = new Map<string, string>();
  /** Which node answered at a dialled address. */
  readonly idAtAddress = new Map<string, string>();
  #connected: ((id: string, addr: string) => void)[] = [];
  #disconnected: ((id: string) => void)[] = [];

  onConnected(cb: (id: string, addr: string) => void): void {
    this.#connected.push(cb);
  }

  onDisconnected(cb: (id: string) => void): void {
    this.#disconnected.push(cb);
  }

  get(id: string): Connection | undefined {
    return this.#registered.get(id)?.conn;
  }

  peers(): { id: string; addr: string }[] {
    return [...this.#registered].map(([id, e]) => ({ id, addr: e.addr }));
  }

  /**
   * A connection finished its greeting: use it, unless the peer already has
   * a preferred one. Returns the address of the other live process when the
   * connection comes from a second process with the same id (not added).
   */
  add(
    conn: Connection,
    key: string,
    addr: string,
    instance: string | undefined,
  ): { duplicateOf: string } | undefined {
    if (conn.closed) return;
    const existing = this.#registered.get(conn.peerId);
    if (
      existing && instance !== undefined && existing.instance !== undefined &&
      existing.instance !== instance && !existing.conn.closed && !existing.conn.retiring &&
      existing.conn.heardFromLately // not a connection left half-open by a crash
    ) {
      return { duplicateOf: existing.addr };
    }
    this.#keys.set(conn, key);
    this.#instances.set(conn, instance);
    this.addresses.set(conn.peerId, addr);
    if (!existing) {
      this.#registered.set(conn.peerId, { conn, key, addr, instance });
      debug(`connected to ${shortNodeId(conn.peerId)} at ${addr}`);
      for (const cb of this.#connected) safely(() => cb(conn.peerId, addr));
      return;
    }
    // A connection the peer no longer answers on (left half-open by a crash) is not one both
    // ends know of: the new one replaces it, whatever the keys say.
    if (key < existing.key || !existing.conn.heardFromLately) {
      this.#registered.set(conn.peerId, { conn, key, addr, instance });
      debug(`duplicate connection to ${shortNodeId(conn.peerId)}: retiring the older one`);
      existing.conn.retire();
    } else {
      debug(`duplicate connection to ${shortNodeId(conn.peerId)}: retiring the newer one`);
      conn.retire();
    }
  }

  /** The peer retires this connection: stop using it. */
  unregister(conn: Connection): void {
    const entry = this.#registered.get(conn.peerId);
    if (entry?.conn !== conn) return;
    this.#registered.delete(conn.peerId);
    // Another live connection to the peer takes over, if there is one.
    for (const [other, key] of this.#keys) {
      if (other !== conn && other.peerId === conn.peerId && !other.closed && !other.retiring) {
        this.#registered.set(conn.peerId, {
          conn: other,
          key,
          addr: entry.addr,
          instance: this.#instances.get(other),
        });
        return;
      }
    }
    this.#reportDown(conn.peerId);
  }

  /** The connection closed. */
  remove(conn: Connection): void {
    this.#keys.delete(conn);
    this.#instances.delete(conn);
    const entry = this.#registered.get(conn.peerId);
    if (entry?.conn === conn) {
      this.#registered.delete(conn.peerId);
      this.#reportDown(conn.peerId);
    }
  }

  #reportDown(id: string): void {
    debug(`disconnected from ${shortNodeId(id)}`);
    for (const cb of this.#disconnected) safely(() => cb(id));
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log(LOG, "warn", `a peer event callback threw: ${e}`);
  }
}
