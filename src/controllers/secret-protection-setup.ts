import type { KeyProtector } from "../api/index.js";
import { Controller, type ControllerOptions, type Informer, type KubeObject } from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import { envelopeDependants, localKeyDependants } from "./dependants.js";
import { envelopeSecretName, type Kube } from "./resources.js";
import { SecretProtectionReconciler } from "./secret-protection.js";

/**
 * R33: the controllers that hold envelope Secrets and Local KEK Secrets while something depends
 * on them (kubebuilder's SetupWithManager: each with the watches it relies on). A deletion of
 * such a Secret waits, says which dependants it waits for, and goes once they are gone.
 */

type Options = Pick<ControllerOptions, "observer"> & { workers: number };

/** Envelope Secrets are held while their owner uses them; a retained envelope whose owner was deleted is not. */
export function setupEnvelopeProtection(
  ctx: ControllerContext,
  options: Options & { name: string },
): Controller {
  const { servers, databases } = ctx;
  return (
    new Controller({
      name: options.name,
      ...(options.observer ? { observer: options.observer } : {}),
      concurrency: Math.max(1, Math.min(options.workers, 4)),
      reconciler: new SecretProtectionReconciler({
        client: ctx.client,
        secrets: ctx.envelopes,
        events: ctx.events,
        subject: (secret) => `the envelope Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`,
        dependants: (secret) => envelopeDependants(secret, servers.store, databases.store),
        // an envelope retained after its owner was deleted is not held (a person may delete it)
        protects: (secret) => envelopeDependants(secret, servers.store, databases.store).length > 0,
        advice:
          "Delete the resource that uses it (its deletionPolicy then decides), or leave the envelope in place",
      }),
    })
      .watchPrimary(ctx.envelopes)
      // an owner that goes (or starts going) lets its envelope go; its other changes do not matter here
      .watch(servers, (s) => [envelopeKey(s, "EncryptedServer")], ownerLeaving)
      .watch(databases, (d) => [envelopeKey(d, "EncryptedDatabase")], ownerLeaving)
  );
}

/** Local KEK Secrets are held while a KeyProtector names them or an envelope holds a wrap under them. */
export function setupLocalKeyProtection(
  ctx: ControllerContext,
  localKeys: Informer<KubeObject>,
  options: Options & { name: string },
): Controller {
  return new Controller({
    name: options.name,
    ...(options.observer ? { observer: options.observer } : {}),
    concurrency: 1,
    reconciler: new SecretProtectionReconciler({
      client: ctx.client,
      secrets: localKeys,
      events: ctx.events,
      subject: (secret) => `the Local KEK Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`,
      dependants: (secret) => localKeyDependants(secret, ctx.keyProtectors.store, ctx.envelopes.store),
      advice:
        "Point the KeyProtectors at another key and let their dependants re-wrap, delete them, or delete the envelopes; deleting the key material would make those DEKs undecryptable",
    }),
  })
    .watchPrimary(localKeys)
    .watch(ctx.keyProtectors, (kp) => localKeyOf(kp))
    .watch(ctx.envelopes, () => deletingSecrets(localKeys));
}

function envelopeKey(
  o: { metadata: { namespace?: string; name?: string } },
  kind: "EncryptedServer" | "EncryptedDatabase",
) {
  return { namespace: o.metadata.namespace ?? "", name: envelopeSecretName(kind, o.metadata.name ?? "") };
}

function ownerLeaving({ type, obj }: { type: string; obj: KubeObject }): boolean {
  return type === "delete" || Boolean(obj.metadata?.deletionTimestamp);
}

function localKeyOf(kp: Kube<KeyProtector>) {
  return kp.spec.provider === "Local" && kp.spec.local
    ? [{ namespace: kp.metadata.namespace ?? "", name: kp.spec.local.secretRef.name }]
    : [];
}

/** Local KEK Secrets being deleted: an envelope's change may release them. */
function deletingSecrets(localKeys: Informer<KubeObject>) {
  return localKeys.store
    .list()
    .filter((s) => s.metadata?.deletionTimestamp)
    .map((s) => ({ namespace: s.metadata?.namespace ?? "", name: s.metadata?.name ?? "" }));
}
