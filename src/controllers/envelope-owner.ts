import type { KubeObject } from "../runtime/index.js";
import { envelopeFromCache } from "./envelope-summary.js";
import { OWNER_KIND_LABEL, OWNER_NAME_ANNOTATION, OWNER_NAME_LABEL } from "./resources.js";

/**
 * R32: the full name of the server or database of kind `kind` an envelope Secret belongs to, or
 * undefined when it is another kind's. The owner-name label may be shortened (a label value holds
 * 63 characters), so it is never the answer for a new envelope: the annotation is, then the
 * envelope's owner binding; the label only for an envelope written before the annotation existed
 * (when the label had to be the whole name, or the Secret could not be written at all).
 */
export function envelopeOwnerName(secret: KubeObject, kind: string): string | undefined {
  const meta = secret.metadata ?? {};
  if (meta.labels?.[OWNER_KIND_LABEL] !== kind) return undefined;
  const annotated = meta.annotations?.[OWNER_NAME_ANNOTATION];
  if (annotated) return annotated;
  try {
    const bound = envelopeFromCache(secret).envelope.ownerBinding;
    if (bound?.kind === kind && bound.name) return bound.name;
  } catch {
    // an unreadable envelope: its label still wakes its owner, which reports it (R2)
  }
  return meta.labels?.[OWNER_NAME_LABEL] || undefined;
}
