/** Replications for model tests: a cluster's paths over one store. */
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import type { ValuePick } from "../db/db.ts";
import { pickValue } from "../db/v8_pick.ts";
import { type ObjectEntry, objectSchema } from "./object_table.ts";

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

/**
 * This node and a replica that is down: reads and writes need this node
 * alone (quorums of one, as consistency mode "dangerous" has), but it is not
 * alone.
 */
export class ReplicaDown extends LocalReplication {
  override readonly nodeId: string = "this-node";
  override readSet(): string[] {
    return [this.nodeId, "down"];
  }
  override writeSets(): string[][] {
    return [[this.nodeId, "down"]];
  }
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node === "down") return Promise.reject(new Error("connection refused"));
    return super.call(node, path, message);
  }
}

/**
 * This node and two replicas "a" and "b" that share its metadata, as Twins
 * does; reads and writes need 2 of the 3. Subclasses change what the two
 * answer.
 */
class ThreeSharing extends LocalReplication {
  override readonly nodeId: string = "this-node";
  override readSet(): string[] {
    return [this.nodeId, "a", "b"];
  }
  override writeSets(): string[][] {
    return [[this.nodeId, "a", "b"]];
  }
  override writeQuorum(): number {
    return 2;
  }
  override readQuorum(): number {
    return 2;
  }
  override call(_node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    return super.call(this.nodeId, path, message);
  }
}

/**
 * Three replicas sharing the metadata, except while `lagging` is set: then
 * "a" and "b" answer that entry as their copy of any object entry (they
 * missed a write that reached this node alone).
 */
export class LaggingReplicas extends ThreeSharing {
  lagging?: unknown;
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node !== this.nodeId && this.lagging !== undefined && path === "table/object/get") {
      return Promise.resolve({ body: { entry: this.lagging } });
    }
    return super.call(node, path, message);
  }
}

/**
 * Three replicas sharing the metadata, "a" and "b" of which grant key locks
 * for conditional writes; while `locksEnded` is set, they say they ended
 * those leases (they saw this node down meanwhile).
 */
export class LocksEnded extends ThreeSharing {
  locksEnded = false;
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node !== this.nodeId && path.startsWith("objects/key-")) {
      const held = path === "objects/key-lock-held" ? { held: !this.locksEnded } : null;
      return Promise.resolve({ body: held });
    }
    return super.call(node, path, message);
  }
}

/**
 * Three replicas sharing the metadata, except that "a" also holds `aheadOnA`
 * (a write that failed after it reached "a" alone) until it reaches this
 * node's store. Reads ask this node and "b" first, so they miss it.
 */
export class OneReplicaAhead extends ThreeSharing {
  aheadOnA?: ObjectEntry;
  /** While set, "a" answers no read of an object entry (hung, or behind a dead link). */
  aHangs = false;
  override readSet(): string[] {
    return [this.nodeId, "b", "a"];
  }
  override async call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node !== this.nodeId && path.startsWith("objects/key-")) {
      // "a" and "b" grant key locks: this node's own lease stands for theirs.
      return { body: path === "objects/key-lock-held" ? { held: true } : null };
    }
    if (node === "a" && this.aHangs && path === "table/object/get") return new Promise(() => {});
    const answer = await super.call(node, path, message);
    const ahead = this.aheadOnA;
    if (node !== "a" || ahead === undefined) return answer;
    if (path === "table/object/get") {
      const { pk, sk } = message.body as { pk: string; sk: string };
      const held = (answer.body as { entry: ObjectEntry | null }).entry;
      if (pk !== ahead.bucketId || sk !== ahead.key) return answer;
      return { body: { entry: held === null ? ahead : objectSchema().merge(held, ahead) } };
    }
    const pick = (message.body as { seen?: ValuePick | null }).seen;
    if (path === "table/object/update" && pick) {
      // What "a" held before the write: this node's copy, and the version only it has.
      const seen = (answer.body as { seen: (Pick<ObjectEntry, "versions"> | null)[] }).seen;
      const aheadSeen = pickValue(ahead, pick) as Pick<ObjectEntry, "versions">;
      return {
        body: {
          seen: seen.map((s) => ({ versions: [...(s?.versions ?? []), ...aheadSeen.versions] })),
        },
      };
    }
    return answer;
  }
}
