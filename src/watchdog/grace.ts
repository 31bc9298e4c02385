/**
 * R10: the key-access grace period. Pure: given when access was lost, the grace period and now,
 * it says whether the server must be Inaccessible, and when to look again (exactly at the
 * deadline, not by polling).
 */
export interface GraceVerdict {
  /** access lost for at least the grace period */
  expired: boolean;
  /** when the grace period runs (ran) out */
  deadline: Date;
  /** ms until the deadline (0 when expired) */
  remainingMs: number;
}

export function evaluateGrace(lostSince: Date, gracePeriodMs: number, now: Date): GraceVerdict {
  const deadline = new Date(lostSince.getTime() + gracePeriodMs);
  const remainingMs = Math.max(0, deadline.getTime() - now.getTime());
  return { expired: remainingMs === 0, deadline, remainingMs };
}

/** "9m 58s", "42s": how long until the server becomes Inaccessible, for condition messages. */
export function formatRemaining(ms: number): string {
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return [h ? `${h}h` : "", m ? `${m}m` : "", s || (!h && !m) ? `${s}s` : ""].filter(Boolean).join(" ");
}
