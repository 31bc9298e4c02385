import {
  type ConditionInput,
  ConditionType,
  type EncryptedDatabaseStatus,
  type KeyListEntry,
  Reason,
  shortThumbprint,
} from "../api/index.js";
import { type CurrentKey, reconcileKeyList } from "./key-history.js";
import type { ProtectorChoice, ProtectorDecision } from "./protector-choice.js";

/**
 * R13-R15, R18: a database's effective protector as its status records it, the condition that
 * says whether a requested change is in effect, and the protector and key list recorded once the
 * DEK is wrapped. Pure.
 */

type Effective = EncryptedDatabaseStatus["effectiveProtector"];

/** The protector choice the status records (the key the DEK was last put under), if any. */
export function effectiveChoice(effective: Effective): ProtectorChoice | undefined {
  if (!effective) return undefined;
  return {
    source: effective.source,
    type: effective.type,
    ...(effective.keyProtectorName ? { keyProtectorName: effective.keyProtectorName } : {}),
  };
}

/** R15: ProtectorChangeAccepted: False with the refusal (the current key stays), else which level is in effect. */
export function protectorChangeCondition(decision: ProtectorDecision): ConditionInput {
  if (decision.refusal)
    return {
      type: ConditionType.ProtectorChangeAccepted,
      status: "False",
      reason: decision.refusal.reason,
      message: decision.refusal.message,
    };
  return {
    type: ConditionType.ProtectorChangeAccepted,
    status: "True",
    reason: Reason.ProtectorAccepted,
    message: `the ${decision.choice.source === "Database" ? "database's own" : "server's"} protector is in effect`,
  };
}

/**
 * R13, R16, R18: what the status records from the wrap that protects the DEK: the target's choice
 * once the DEK is under the target's key, else the one recorded before (a re-wrap pending, blocked
 * or failed); and the key history, with the protector first and the extra keys after it.
 */
export function recordedProtector(o: {
  wrap: { keyID: string; thumbprint: string };
  target: { thumbprint: string; choice: ProtectorChoice };
  recorded: ProtectorChoice | undefined;
  extra: readonly CurrentKey[];
  keyList: readonly KeyListEntry[] | undefined;
  now: Date;
}): { effectiveProtector: NonNullable<Effective>; keyList: KeyListEntry[] } {
  const { wrap } = o;
  const effective =
    wrap.thumbprint === o.target.thumbprint ? o.target.choice : (o.recorded ?? o.target.choice);
  const name = effective.keyProtectorName ? { keyProtectorName: effective.keyProtectorName } : {};
  const protectorKey: CurrentKey = {
    keyID: wrap.keyID,
    thumbprint: wrap.thumbprint,
    role: "protector",
    ...name,
  };
  return {
    effectiveProtector: {
      source: effective.source,
      type: effective.type,
      ...name,
      keyID: wrap.keyID,
      thumbprint: wrap.thumbprint,
      thumbprintShort: shortThumbprint(wrap.thumbprint),
    },
    keyList: reconcileKeyList(o.keyList ?? [], [protectorKey, ...o.extra], o.now),
  };
}
