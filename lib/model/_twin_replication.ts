/** A replication for model tests: a cluster's paths over one store. */
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";

/** This node and a twin that holds what it holds (the same metadata): every tombstone is everywhere. */
export class Twins extends LocalReplication {
  override readonly nodeId: string = "this-node";
  override readSet(): string[] {
    return [this.nodeId, "twin"];
  }
  override writeSets(): string[][] {
    return [[this.nodeId, "twin"]];
  }
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    // The twin's key locks (key_commit_locks.ts) are this node's, which the writer holds already.
    if (node === "twin" && path.startsWith("objects/key-")) return Promise.resolve({ body: null });
    return super.call(node === "twin" ? this.nodeId : node, path, message);
  }
}
