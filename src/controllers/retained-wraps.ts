/**
 * R16: when a retained wrap goes. A rotation keeps the old protector's wrap as `retained` so a
 * crash or a lagging reader can still reach the DEK; kept for ever it would also keep every old
 * key version able to unwrap the DEK, so revoking an old version would revoke nothing. A retained
 * wrap is pruned once nothing depends on it and its retention window has passed. Pure: no I/O.
 */
import type { Envelope, Wrap } from "../crypto/index.js";
import type { KeyListEntry } from "./key-history.js";

/** R16's default retention window of a retained wrap. */
export const DEFAULT_RETAINED_WRAP_RETENTION_MS = 2 * 60 * 60 * 1000;

export interface RetainedWrapInput {
  envelope: Envelope;
  /** the resource's key history after this pass (R18): open entries are keys in use */
  keyList: readonly KeyListEntry[];
  /** thumbprints something else still depends on: a secondary's protector (R17), a pending rotation */
  inUse: Iterable<string | undefined>;
  retentionMs: number;
  now: Date;
}

export interface RetainedWrapPlan {
  /** retained wraps to drop now */
  prune: Wrap[];
  /** when the next retained wrap's window ends, if one is waiting only for time */
  nextAt?: Date;
}

/**
 * Which retained wraps may go. A wrap is kept while an open key-list entry names its key (an
 * extra key, a key a geo-primary uses), while `inUse` names it, and until `retentionMs` after it
 * stopped being used.
 */
export function planRetainedWraps(input: RetainedWrapInput): RetainedWrapPlan {
  const inUse = new Set<string>();
  for (const t of input.inUse) if (t) inUse.add(t);
  for (const e of input.keyList) if (e.until === undefined) inUse.add(e.thumbprint);
  const prune: Wrap[] = [];
  let nextAt: number | undefined;
  for (const wrap of input.envelope.wraps) {
    if (wrap.role !== "retained" || inUse.has(wrap.thumbprint)) continue;
    const endsAt = releasedAt(wrap, input) + input.retentionMs;
    if (endsAt <= input.now.getTime()) prune.push(wrap);
    else nextAt = Math.min(nextAt ?? endsAt, endsAt);
  }
  return { prune, ...(nextAt === undefined ? {} : { nextAt: new Date(nextAt) }) };
}

/**
 * When a wrap stopped being used: when it was demoted (`retainedAt`), else (an envelope written
 * before that was recorded) its key's last key-list `until`, else the envelope's newest wrap, the
 * last change known; a time that cannot be read counts as now, so the window starts over.
 */
function releasedAt(wrap: Wrap, input: RetainedWrapInput): number {
  const demotedAt = Date.parse(wrap.retainedAt ?? "");
  if (Number.isFinite(demotedAt)) return demotedAt;
  const latest = (times: (string | undefined)[]) =>
    Math.max(...times.map((t) => Date.parse(t ?? "")).filter(Number.isFinite));
  const until = latest(input.keyList.filter((e) => e.thumbprint === wrap.thumbprint).map((e) => e.until));
  if (Number.isFinite(until)) return until;
  const changed = latest(input.envelope.wraps.map((w) => w.addedAt));
  return Number.isFinite(changed) ? changed : input.now.getTime();
}
