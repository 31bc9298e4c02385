import {
  ConditionType,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  type EncryptedServer,
  Reason,
} from "../api/index.js";
import { zeroize } from "../crypto/index.js";
import { type AccessDecision, decideAccess, type State } from "../watchdog/access-decision.js";
import { accessInput, answeredToken, readyCondition } from "./access-state.js";
import { copyStart, databaseCopy, inaccessibleMessage } from "./copy-start.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import { reportsEnvelopeLoss } from "./envelope-stall.js";
import type { KekResolution } from "./kek-resolution.js";
import { type PassFrame, recordAccess } from "./owner-pass.js";
import { revalidationFailed } from "./pass.js";
import type { Kube } from "./resources.js";
import type { ReadyBlock } from "./rewrap.js";

type Database = Kube<EncryptedDatabase>;
type Frame = PassFrame<EncryptedDatabaseStatus, Database>;
type Resolved = Extract<KekResolution, { ok: true }>;

/**
 * R10, R12: a database is held Inaccessible while its server is (the server's key protects
 * nothing of this database, but its workload is locked out); a server whose own envelope is lost
 * (R2) holds its own DEK back, not this database's. Pure.
 */
export function heldByServer(server: Kube<EncryptedServer>): { reason: string; message: string } | undefined {
  const inaccessible =
    server.status?.state === "Inaccessible" && !reportsEnvelopeLoss(server.status?.conditions);
  return inaccessible
    ? { reason: "ServerInaccessible", message: `server ${server.metadata.name} is Inaccessible` }
    : undefined;
}

/**
 * R10, R11, R23: the database's key-access state, decided from its effective protector's key and
 * its server's state and settings, with what it asks for (the Inaccessible event, a revalidation
 * on the way back), the answered revalidation token and Ready (`block` first). Returns the
 * decision, for when to look again.
 */
export async function decideDatabaseAccess(
  frame: Frame,
  o: {
    server: Kube<EncryptedServer>;
    resolved: Resolved;
    envelope: EnvelopeSecret;
    envelopeReturned: boolean;
    block: ReadyBlock | undefined;
  },
): Promise<AccessDecision> {
  const { ctx, obj: db, draft } = frame;
  const { prev, next } = draft;
  const { server } = o;
  const held = heldByServer(server);
  // R23: a copy (restore or secondary) is held by what it is until a revalidation proves it
  const copy = copyStart(databaseCopy(db), prev, server.spec.revalidation);
  const access = decideAccess(
    accessInput({
      state: prev.state as State | undefined,
      access: o.resolved.access,
      server: server.spec,
      lastRevalidatedToken: prev.lastRevalidatedToken,
      envelopeReturned: o.envelopeReturned,
      heldInaccessible: held ?? copy?.held,
      now: frame.now,
    }),
  );
  recordAccess(draft, access);
  let state: State = access.state;
  if (access.action === "enforce") {
    next.inaccessibleSince = frame.now.toISOString();
    if (copy) draft.set(copy.waiting.type, copy.waiting.status, copy.waiting.reason, copy.waiting.message);
    void ctx.events.warning(
      db,
      "Inaccessible",
      held?.message ?? copy?.held.message ?? access.condition.message,
    );
  } else if (
    access.action === "revalidate" &&
    (await revalidate(frame, o.envelope, server.spec.revalidationToken))
  ) {
    state = "Available";
    delete next.inaccessibleSince;
  }
  next.state = state;
  // R11: as for servers, only a server token set while this database is Inaccessible asks for a
  // revalidation; one it already had is recorded as answered.
  const answered = answeredToken(server.spec.revalidationToken, state, access.action);
  if (answered !== undefined) next.lastRevalidatedToken = answered;
  const ready = readyCondition({
    block: o.block,
    state,
    inaccessibleMessage: held?.message ?? inaccessibleMessage(draft.conditions, access.condition.message),
    access: access.condition,
    availableMessage: "the database DEK is wrapped by its effective protector and the key is accessible",
  });
  draft.set(ready.type, ready.status, ready.reason, ready.message);
  return access;
}

/** R11: the DEK unwraps with the keys of its namespace and its KCV matches: the database may be Available again. */
async function revalidate(
  frame: Frame,
  envelope: EnvelopeSecret,
  token: string | undefined,
): Promise<boolean> {
  const { ctx, obj: db, draft } = frame;
  // the cache holds no wrapped bytes: read the envelope (a failure to read is the pass's, retried)
  const whole = await ctx.dek.whole(envelope);
  try {
    const { dek, wrap } = await ctx.dek.unwrap(whole.envelope, frame.candidates(), frame.check);
    zeroize(dek);
    if (token !== undefined) draft.next.lastRevalidatedToken = token;
    draft.set(
      ConditionType.Revalidated,
      "True",
      Reason.Revalidated,
      `the DEK unwrapped with ${wrap.keyID} and its key check value matched`,
    );
    void ctx.events.normal(db, "Revalidated", `the DEK unwrapped with ${wrap.keyID}, KCV matched`);
    return true;
  } catch (error) {
    const failed = revalidationFailed(error, "database");
    draft.set(ConditionType.Revalidated, "False", failed.reason, failed.message);
    draft.outcome = failed.outcome;
    return false;
  }
}
