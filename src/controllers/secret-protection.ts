import {
  addFinalizer,
  type EventRecorder,
  hasFinalizer,
  type Informer,
  type KubeClient,
  type KubeObject,
  type ObjectKey,
  type Reconciler,
  type Result,
  removeFinalizer,
} from "../runtime/index.js";
import { deletionBlockedMessage, IN_USE_FINALIZER, protectionStep } from "./deletion-protection.js";
import { SecretKind } from "./resources.js";

export interface SecretProtectionDeps {
  client: KubeClient;
  secrets: Informer<KubeObject>;
  events: EventRecorder;
  /** how a message names the Secret ("the Local KEK Secret shop/orders-kek") */
  subject: (secret: KubeObject) => string;
  /** who depends on it now (read from the caches) */
  dependants: (secret: KubeObject) => string[];
  /** what a person does about a waiting deletion */
  advice: string;
  /** whether a Secret not being deleted is to be protected (default: every one) */
  protects?: (secret: KubeObject) => boolean;
}

/** How often a waiting deletion looks at its dependants again (their changes also wake it). */
export const WAITING_RECHECK_MS = 30_000;

/**
 * R33: holds a kind of Secret (Local KEK Secrets, envelope Secrets) with IN_USE_FINALIZER, added
 * once, and releases a deletion once nothing depends on the Secret. While it waits, a Warning
 * event on the Secret names the dependants (the dependants' own conditions say it too).
 */
export class SecretProtectionReconciler implements Reconciler {
  /** the last waiting message per Secret, so the event is sent when it changes, not every pass */
  private readonly warned = new Map<string, string>();

  constructor(private readonly deps: SecretProtectionDeps) {}

  async reconcile(key: ObjectKey): Promise<Result | undefined> {
    const { client, secrets } = this.deps;
    const id = `${key.namespace}/${key.name}`;
    const secret = secrets.store.get(key.namespace, key.name);
    if (!secret) {
      this.warned.delete(id);
      return undefined;
    }
    const deleting = Boolean(secret.metadata?.deletionTimestamp);
    const dependants = deleting ? this.deps.dependants(secret) : [];
    const step = protectionStep({ deleting, protected: hasFinalizer(secret, IN_USE_FINALIZER), dependants });
    if (step === "add" && (this.deps.protects?.(secret) ?? true))
      await addFinalizer(client, SecretKind, secret, IN_USE_FINALIZER);
    if (step === "release") {
      await removeFinalizer(client, SecretKind, secret, IN_USE_FINALIZER);
      this.warned.delete(id);
    }
    if (step !== "wait") return undefined;
    const message = deletionBlockedMessage(this.deps.subject(secret), dependants, this.deps.advice);
    if (this.warned.get(id) !== message) {
      this.warned.set(id, message);
      void this.deps.events.warning({ ...secret, apiVersion: "v1", kind: "Secret" }, "InUse", message);
    }
    return { requeueAfterMs: WAITING_RECHECK_MS };
  }
}
