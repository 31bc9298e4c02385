import { createHash, randomBytes } from "node:crypto";
import type { Logger } from "../observability/logger.js";
import { isNotFound } from "./errors.js";
import type { KubeClient } from "./kube-client.js";
import { boundedName } from "./names.js";
import { type KubeObject, keyOf, type ResourceKind } from "./resource.js";

/** Room for ".<ms hex><4 hex>" (at most 17 characters) after the object's name, within 253. */
const EVENT_NAME_PREFIX_LENGTH = 230;

export type EventType = "Normal" | "Warning";

export const CoreEventKind: ResourceKind = { group: "", version: "v1", plural: "events", kind: "Event" };

export interface EventRecorderOptions {
  /** `source.component` and `reportingComponent`, e.g. "tde-operator". */
  component: string;
  /** `reportingInstance`, e.g. the pod name. */
  instance?: string;
  /** An identical event within this window bumps the count of the first instead of adding one. Default 10 min. */
  dedupWindowMs?: number;
  /** Entries remembered for de-duplication. Default 4096. */
  maxTracked?: number;
  now?: () => Date;
  /** Told when an event could not be written (events never fail a reconcile). */
  onError?: (err: unknown) => void;
  /**
   * R28: every Event is also a log line here, Normal at info and Warning at warn, with the
   * object and the reason (messages name keys by id and thumbprint, never key material), so the
   * log tells on-call what the Events tell `kubectl describe`. Repeats are logged too.
   */
  log?: Logger;
}

interface Tracked {
  namespace: string;
  name: string;
  count: number;
  firstSeen: number;
}

/**
 * Records core/v1 Events about an object. Events are best effort: failures go to `onError`, never
 * to the caller. Repeats of one (object, type, reason, message) within the window increment the
 * existing Event's `count` and `lastTimestamp`.
 */
export class EventRecorder {
  private readonly seen = new Map<string, Tracked>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly windowMs: number;
  private readonly now: () => Date;

  constructor(
    private readonly client: KubeClient,
    private readonly options: EventRecorderOptions,
  ) {
    this.windowMs = options.dedupWindowMs ?? 600_000;
    this.now = options.now ?? (() => new Date());
  }

  /** Records one event; identical events are written one after another so repeats are counted. */
  event(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    this.options.log?.[type === "Warning" ? "warn" : "info"](message, {
      event: reason,
      kind: obj.kind,
      namespace: obj.metadata?.namespace,
      name: obj.metadata?.name,
    });
    // a digest, not the message: the entries are kept for the window (up to maxTracked of them)
    const key = createHash("sha256")
      .update([obj.metadata?.uid ?? keyOf(obj), type, reason, message].join("\u0000"))
      .digest("base64");
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const next = previous.then(() =>
      this.record(key, obj, type, reason, message).catch((err) => this.options.onError?.(err)),
    );
    this.inFlight.set(key, next);
    void next.then(() => {
      if (this.inFlight.get(key) === next) this.inFlight.delete(key);
    });
    return next;
  }

  normal(obj: KubeObject, reason: string, message: string): Promise<void> {
    return this.event(obj, "Normal", reason, message);
  }

  warning(obj: KubeObject, reason: string, message: string): Promise<void> {
    return this.event(obj, "Warning", reason, message);
  }

  private async record(
    key: string,
    obj: KubeObject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const meta = obj.metadata ?? {};
    const namespace = meta.namespace || "default";
    const now = this.now();
    const tracked = this.seen.get(key);
    if (tracked && now.getTime() - tracked.firstSeen < this.windowMs) {
      try {
        const count = tracked.count + 1;
        await this.client.patch(CoreEventKind, tracked.namespace, tracked.name, {
          count,
          lastTimestamp: now.toISOString(),
        });
        tracked.count = count;
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // expired or deleted: fall through and create a new one.
      }
    }
    message = message.length > 1024 ? `${message.slice(0, 1021)}...` : message;
    // R32: the object's name may take all 253 characters; the Event's keeps room for its suffix
    const name = `${boundedName("", meta.name ?? "object", EVENT_NAME_PREFIX_LENGTH)}.${now.getTime().toString(16)}${randomBytes(2).toString("hex")}`;
    const ts = now.toISOString();
    await this.client.create(CoreEventKind, namespace, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: ts,
      lastTimestamp: ts,
      source: { component: this.options.component },
      reportingComponent: this.options.component,
      reportingInstance: this.options.instance ?? "",
    });
    this.seen.delete(key);
    this.seen.set(key, { namespace, name, count: 1, firstSeen: now.getTime() });
    this.evict(now.getTime());
  }

  private evict(now: number): void {
    // kept in the order first seen (record deletes before it sets): the first one still inside the window ends the walk
    for (const [k, t] of this.seen) {
      if (now - t.firstSeen < this.windowMs) break;
      this.seen.delete(k);
    }
    const max = this.options.maxTracked ?? 4096;
    for (const k of this.seen.keys()) {
      if (this.seen.size <= max) break;
      this.seen.delete(k);
    }
  }
}
