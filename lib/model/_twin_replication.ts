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
    return super.call(node === "twin" ? this.nodeId : node, path, message);
  }
}
