/**
 * The defaults the API server writes into objects, in one place: the CRD schemas take them from
 * here, and code that reads a spec built client-side (before defaulting) can apply them too.
 */
export const KEY_SIZES = [2048, 3072, 4096] as const;
export type KeySize = (typeof KEY_SIZES)[number];

export const DEFAULTS = {
  identityType: "Default",
  allowedKeySizes: [2048, 3072] as KeySize[],
  allowExpiry: false,
  requireRecoverable: true,
  minimumRecoverableDays: 90,
  autoRotationWindow: "24h",
  keyAccessGracePeriod: "10m",
  revalidation: "Manual",
  enforcement: "ScaleToZero",
  deletionPolicy: "Retain",
  autoRotation: true,
} as const;

/** R5 requirements with every default filled in. */
export interface ResolvedRequirements {
  allowedKeySizes: KeySize[];
  allowExpiry: boolean;
  requireRecoverable: boolean;
  minimumRecoverableDays: number;
}

export function resolveRequirements(
  requirements:
    | {
        allowedKeySizes?: KeySize[];
        allowExpiry?: boolean;
        requireRecoverable?: boolean;
        minimumRecoverableDays?: number;
      }
    | undefined,
): ResolvedRequirements {
  return {
    allowedKeySizes: [...(requirements?.allowedKeySizes ?? DEFAULTS.allowedKeySizes)],
    allowExpiry: requirements?.allowExpiry ?? DEFAULTS.allowExpiry,
    requireRecoverable: requirements?.requireRecoverable ?? DEFAULTS.requireRecoverable,
    minimumRecoverableDays: requirements?.minimumRecoverableDays ?? DEFAULTS.minimumRecoverableDays,
  };
}
