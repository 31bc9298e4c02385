/**
 * `kubectl tde keys DATABASE`: a database's key history (R18), all of it, the current keys, or the
 * keys in use at a time. Pure; the filtering is the controllers' own (key-history.ts).
 */
import type { KeyListEntry } from "../api/index.js";
import { shortThumbprint } from "../api/index.js";
import { currentKeys, keysAt } from "../controllers/key-history.js";
import type { KeyFilter } from "./args.js";
import { type Column, shortTime } from "./format.js";

export function selectKeys(history: readonly KeyListEntry[], filter: KeyFilter): KeyListEntry[] {
  switch (filter.kind) {
    case "all":
      return [...history];
    case "current":
      return currentKeys(history);
    case "at":
      return keysAt(history, filter.at);
  }
}

/** Protector first, then by start time. */
export function sortKeys(entries: readonly KeyListEntry[]): KeyListEntry[] {
  return [...entries].sort(
    (a, b) =>
      Number(b.role === "protector") - Number(a.role === "protector") ||
      Date.parse(a.since) - Date.parse(b.since),
  );
}

export function keyColumns(): Column<KeyListEntry>[] {
  return [
    { header: "ROLE", cell: (e) => e.role },
    { header: "KEYPROTECTOR", cell: (e) => e.keyProtectorName ?? "" },
    { header: "THUMBPRINT", cell: (e) => shortThumbprint(e.thumbprint) },
    { header: "SINCE", cell: (e) => shortTime(e.since) },
    { header: "UNTIL", cell: (e) => shortTime(e.until) },
    { header: "KEY-ID", cell: (e) => e.keyID },
  ];
}

export function describeFilter(filter: KeyFilter): string {
  switch (filter.kind) {
    case "all":
      return "in its history";
    case "current":
      return "current";
    case "at":
      return `in use at ${filter.at.toISOString()}`;
  }
}
