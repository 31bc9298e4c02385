/**
 * R18: a database's key history. Each entry says which key (by thumbprint) protected or was kept
 * for the DEK, in which role, and from when until when. Pure: no I/O.
 */
export type KeyRole = "protector" | "additional";

export interface KeyListEntry {
  keyID: string;
  thumbprint: string;
  role: KeyRole;
  keyProtectorName?: string;
  since: string;
  until?: string;
}

export interface CurrentKey {
  keyID: string;
  thumbprint: string;
  role: KeyRole;
  keyProtectorName?: string;
}

const sameEntry = (e: KeyListEntry, k: CurrentKey) => e.thumbprint === k.thumbprint && e.role === k.role;

/**
 * Brings the history in line with the keys in use now: open entries for keys no longer in use are
 * closed at `now`; keys newly in use get an open entry from `now`. An unchanged set returns the
 * same array (so callers can tell nothing changed). A key id change with the same thumbprint
 * (the same material) updates the open entry's id in place.
 */
export function reconcileKeyList(
  history: readonly KeyListEntry[],
  current: readonly CurrentKey[],
  now: Date,
) {
  const at = now.toISOString();
  let changed = false;
  const next: KeyListEntry[] = history.map((entry) => {
    if (entry.until !== undefined) return entry;
    const match = current.find((k) => sameEntry(entry, k));
    if (!match) {
      changed = true;
      return { ...entry, until: at };
    }
    if (match.keyID !== entry.keyID || match.keyProtectorName !== entry.keyProtectorName) {
      changed = true;
      return withOptionalName({ ...entry, keyID: match.keyID }, match.keyProtectorName);
    }
    return entry;
  });
  for (const key of current) {
    if (!next.some((e) => e.until === undefined && sameEntry(e, key))) {
      changed = true;
      next.push(
        withOptionalName(
          { keyID: key.keyID, thumbprint: key.thumbprint, role: key.role, since: at },
          key.keyProtectorName,
        ),
      );
    }
  }
  return changed ? next : (history as KeyListEntry[]);
}

function withOptionalName(entry: KeyListEntry, name: string | undefined): KeyListEntry {
  const { keyProtectorName: _drop, ...rest } = entry;
  return name === undefined ? rest : { ...rest, keyProtectorName: name };
}

/** "Which keys are current": the open entries. */
export function currentKeys(history: readonly KeyListEntry[]): KeyListEntry[] {
  return history.filter((e) => e.until === undefined);
}

/** "Which keys were in use at time T": entries whose interval [since, until) holds T. */
export function keysAt(history: readonly KeyListEntry[], at: Date): KeyListEntry[] {
  const t = at.getTime();
  return history.filter(
    (e) => Date.parse(e.since) <= t && (e.until === undefined || t < Date.parse(e.until)),
  );
}

/** Thumbprints that protected the DEK (as protector or additional key) at time T, de-duplicated. */
export function thumbprintsAt(history: readonly KeyListEntry[], at: Date): string[] {
  return [...new Set(keysAt(history, at).map((e) => e.thumbprint))];
}
