/** Small fixture builders for the controllers' pure deciders: objects as the informer caches hold them. */
import type { EncryptedDatabase, KeyListEntry, KeyProtector } from "../../../src/api/index.js";
import type { Kube } from "../../../src/controllers/resources.js";
import { addWrap, createEnvelope, envelopeSecret } from "../../../src/crypto/index.js";
import { type KubeObject, Store } from "../../../src/runtime/index.js";

export const tp = (c: string) => c.repeat(64).slice(0, 64);
export const T = (h: number) => new Date(Date.UTC(2026, 0, 1, h)).toISOString();

export function database(
  namespace: string,
  name: string,
  spec: Partial<EncryptedDatabase["spec"]> = {},
  status?: EncryptedDatabase["status"],
): Kube<EncryptedDatabase> {
  return {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedDatabase",
    metadata: { namespace, name, generation: 1 },
    spec: { serverRef: { name: "srv" }, autoRotation: true, deletionPolicy: "Retain", ...spec },
    ...(status ? { status } : {}),
  } as Kube<EncryptedDatabase>;
}

export function keyProtector(
  namespace: string,
  name: string,
  status?: Partial<NonNullable<KeyProtector["status"]>> & {
    accessible?: "True" | "False";
    requirements?: "True" | "False";
  },
): Kube<KeyProtector> {
  const { accessible, requirements, ...rest } = status ?? {};
  const conditions = [
    ...(accessible
      ? [
          {
            type: "Accessible",
            status: accessible,
            reason: accessible === "True" ? "KeyAccessible" : "KeyDisabled",
            message: "m",
            lastTransitionTime: T(0),
          },
        ]
      : []),
    ...(requirements
      ? [
          {
            type: "RequirementsMet",
            status: requirements,
            reason: "RequirementsMet",
            message: "r",
            lastTransitionTime: T(0),
          },
        ]
      : []),
  ];
  return {
    apiVersion: "tde.dev/v1alpha1",
    kind: "KeyProtector",
    metadata: { namespace, name, generation: 1 },
    spec: { provider: "Local", local: { secretRef: { name } } },
    ...(status ? { status: { ...rest, conditions } } : {}),
  } as Kube<KeyProtector>;
}

export function storeOf<T extends KubeObject>(...objs: T[]): Store<T> {
  const s = new Store<T>();
  for (const o of objs) s.upsert(o);
  return s;
}

/** An envelope Secret with one wrap per thumbprint, added at the given times. */
export function envelopeOf(namespace: string, name: string, wraps: { thumbprint: string; at: string }[]) {
  let e = createEnvelope("dek-1", "0123456789abcdef");
  for (const w of wraps)
    e = addWrap(e, {
      keyID: `local://${namespace}/k/${w.thumbprint.slice(0, 4)}`,
      thumbprint: w.thumbprint,
      wrapped: "AAAA",
      addedAt: w.at,
      role: "protector",
    });
  return envelopeSecret(namespace, name, e) as unknown as KubeObject;
}

export const keyEntry = (
  thumbprint: string,
  since: string,
  until?: string,
  role: "protector" | "additional" = "protector",
): KeyListEntry =>
  ({
    keyID: `k-${thumbprint.slice(0, 4)}`,
    thumbprint,
    role,
    since,
    ...(until ? { until } : {}),
  }) as KeyListEntry;
