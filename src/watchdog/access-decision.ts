import { evaluateGrace, formatRemaining } from "./grace.js";

/**
 * R10, R11, R23: the pure decision of the key-access watchdog for one server or database. It
 * reads what the KeyProtector last saw of the key and the resource's own state, and says what the
 * KeyAccessible condition should say, which state the resource is in, and what must be done:
 * nothing, enforce (the grace period ran out), or revalidate (the way back from Inaccessible).
 */
export type State = "Provisioning" | "Available" | "Inaccessible" | "Revalidating" | "Deleting";

export interface AccessInput {
  state: State | undefined;
  /** the protector's key answered its last probe */
  accessible: boolean;
  /**
   * R33: nothing has probed the key within the probe interval (its KeyProtector is gone, or its
   * probes stopped): what is known is only what was known before. Wins over `accessible`.
   */
  unknown?: { reason: string; message: string };
  /** why not (an R10 reason), when not accessible */
  reason?: string;
  detail?: string;
  /** when access was first lost (the KeyProtector's keyAccessLostSince) */
  lostSince?: string;
  gracePeriodMs: number;
  revalidation: "Automatic" | "Manual";
  revalidationToken?: string;
  lastRevalidatedToken?: string;
  /** something else holds the resource Inaccessible (its server is; it is a copy not yet revalidated) */
  heldInaccessible?: { reason: string; message: string };
  now: Date;
}

export type AccessAction = "none" | "enforce" | "revalidate";

export interface AccessDecision {
  condition: { status: "True" | "False" | "Unknown"; reason: string; message: string };
  state: State;
  action: AccessAction;
  keyAccessLostSince?: string;
  /** look again at the grace deadline */
  requeueAfterMs?: number;
}

export function decideAccess(input: AccessInput): AccessDecision {
  const current = input.state ?? "Provisioning";
  if (input.unknown) return decideUnknown(input, input.unknown, current);
  if (input.accessible) {
    const condition = {
      status: "True" as const,
      reason: "KeyAccessible",
      message: "the protector's key answered its last probe",
    };
    if (input.heldInaccessible) {
      return {
        condition,
        state: "Inaccessible",
        action: current === "Inaccessible" ? "none" : "enforce",
      };
    }
    if (current === "Inaccessible" || current === "Revalidating") {
      const asked =
        input.revalidation === "Automatic" ||
        (input.revalidationToken !== undefined && input.revalidationToken !== input.lastRevalidatedToken);
      return asked
        ? { condition, state: current, action: "revalidate" }
        : {
            condition: {
              ...condition,
              message:
                "the key is reachable again; revalidation is Manual: change spec.revalidationToken (kubectl tde revalidate) to bring the server back",
            },
            state: current,
            action: "none",
          };
    }
    return { condition, state: current === "Provisioning" ? "Available" : current, action: "none" };
  }

  const lostSince = input.lostSince ?? input.now.toISOString();
  const verdict = evaluateGrace(new Date(lostSince), input.gracePeriodMs, input.now);
  const reason = input.reason ?? "KeyInaccessible";
  const why = `${reason}${input.detail ? `: ${input.detail}` : ""}`;
  const advice = adviceFor(reason, input.detail);
  if (current === "Inaccessible" || verdict.expired || input.heldInaccessible) {
    const cause = verdict.expired
      ? "the grace period has run out and the resource is Inaccessible"
      : `the resource is Inaccessible (${input.heldInaccessible?.message ?? "not revalidated since access was lost"})`;
    const back =
      input.revalidation === "Automatic"
        ? "it is revalidated automatically at the next successful probe"
        : "then revalidate: change spec.revalidationToken (kubectl tde revalidate)";
    return {
      condition: {
        status: "False",
        reason,
        message: `key access lost since ${lostSince} (${why}); ${cause}. ${advice}; ${back}.`,
      },
      state: "Inaccessible",
      action: current === "Inaccessible" ? "none" : "enforce",
      keyAccessLostSince: lostSince,
    };
  }
  return {
    condition: {
      status: "False",
      reason,
      // no countdown here: a message that changed at every probe would rewrite the status of every
      // dependant at every probe for the whole outage; the deadline is fixed, clients count down to it
      message: `key access lost since ${lostSince} (${why}); the resource becomes Inaccessible at ${verdict.deadline.toISOString()} (grace period ${formatRemaining(input.gracePeriodMs)}) unless access returns. ${advice}.`,
    },
    state: current,
    action: "none",
    keyAccessLostSince: lostSince,
    requeueAfterMs: verdict.remainingMs,
  };
}

/**
 * R33: access that nothing has probed lately is Unknown, never a stale True. The watchdog keeps
 * its clock: a loss known before (`lostSince`) still runs out at its deadline and the resource
 * goes Inaccessible then, since nothing shows that access came back; with no loss known, the
 * state stays as it is and nothing is enforced.
 */
function decideUnknown(
  input: AccessInput,
  unknown: { reason: string; message: string },
  current: State,
): AccessDecision {
  if (!input.lostSince && input.heldInaccessible) {
    // R23: what holds the resource (a copy not yet revalidated, its server) holds it whatever the probes say
    return {
      condition: {
        status: "Unknown",
        reason: unknown.reason,
        message: `${unknown.message}; its access is unknown until it is probed again (R33), and the resource is Inaccessible (${input.heldInaccessible.message})`,
      },
      state: "Inaccessible",
      action: current === "Inaccessible" ? "none" : "enforce",
    };
  }
  if (!input.lostSince) {
    return {
      condition: {
        status: "Unknown",
        reason: unknown.reason,
        message: `${unknown.message}; its access is unknown until it is probed again (R33)`,
      },
      state: current,
      action: "none",
    };
  }
  const verdict = evaluateGrace(new Date(input.lostSince), input.gracePeriodMs, input.now);
  const inaccessible = current === "Inaccessible" || verdict.expired;
  return {
    condition: {
      status: "Unknown",
      reason: unknown.reason,
      message: inaccessible
        ? `${unknown.message}; key access was lost since ${input.lostSince} and nothing has shown it back: the grace period has run out and the resource is Inaccessible (R10, R33)`
        : `${unknown.message}; key access was lost since ${input.lostSince} and nothing has shown it back: the resource becomes Inaccessible at ${verdict.deadline.toISOString()} unless the key is probed and answers (R10, R33)`,
    },
    state: inaccessible ? "Inaccessible" : current,
    action: inaccessible && current !== "Inaccessible" ? "enforce" : "none",
    keyAccessLostSince: input.lostSince,
    ...(inaccessible ? {} : { requeueAfterMs: verdict.remainingMs }),
  };
}

/** What a KeyNotFound's detail says when the key was soft-deleted (Local: "deleted at ...; recover it"; Azure: "soft-deleted"). */
const SOFT_DELETED = /deleted at|soft-deleted|recover it/i;

/**
 * R10: what the person on call does about each cause, for condition messages (the runbook,
 * docs/runbook-inaccessible.md, says more). Pure and keyed by the bounded R10 reasons.
 */
export function adviceFor(reason: string, detail?: string): string {
  switch (reason) {
    case "KeyDisabled":
      return "Enable the key (or its current version) in the vault";
    case "KeyNotFound":
      // R33: a key whose Secret (or vault key) is gone for good was not soft-deleted: say so
      return detail !== undefined && !SOFT_DELETED.test(detail)
        ? "The key does not exist and nothing says it was soft-deleted (its Local KEK Secret or its vault key is gone): restore it from a backup (the Secret, or the vault's key backup), or point the KeyProtector at a key that exists"
        : "Recover the soft-deleted key (it is kept for its recoverable days), or point the KeyProtector at a key that exists";
    case "KeyExpired":
      return "Extend the key's expiry date, or rotate to a new version";
    case "KeyNotYetActive":
      return "Move the key's activation date (notBefore) back, or use a version that is active";
    case "PermissionDenied":
      return "Give the KeyProtector's identity get, wrapKey and unwrapKey on the key (access policy or a Key Vault Crypto role)";
    case "AuthenticationFailed":
      return "Fix the KeyProtector's identity: its federated credential, client secret or managed identity assignment";
    case "VaultUnreachable":
      return "Check the operator's network path to the vault (DNS, firewall, private endpoint) and the vault's health";
    case "Throttled":
      return "The vault is throttling requests: access returns when it stops; lower the request rate or raise the vault's limits";
    default:
      return "Restore the key (enable it, recover it, or give the identity get, wrapKey and unwrapKey)";
  }
}
