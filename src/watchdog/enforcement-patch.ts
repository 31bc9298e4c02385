/**
 * R10/R11 Patch enforcement, pure: the platform declares a JSON merge patch to hold on the
 * workload while the server is Inaccessible (CloudNativePG's `cnpg.io/hibernation: "on"`,
 * Percona's `spec.pause: true`). Before it is applied, the value of every field it sets is
 * recorded (or that the field was absent), so that giving back restores exactly what was there
 * and touches nothing else.
 */
import type { EnforcementPatch } from "../api/index.js";
import { deepEqual } from "../runtime/index.js";

/** One field the patch sets, and what it held before: `value` absent means the field was absent. */
export interface PreviousValue {
  path: string[];
  value?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Every field a merge patch sets (a value that is not an object; null deletes), by path. */
export function patchLeaves(patch: unknown, prefix: string[] = []): { path: string[]; value: unknown }[] {
  if (!isObject(patch)) return [{ path: prefix, value: patch }];
  return Object.entries(patch).flatMap(([k, v]) =>
    isObject(v) ? patchLeaves(v, [...prefix, k]) : [{ path: [...prefix, k], value: v }],
  );
}

function valueAt(object: unknown, path: readonly string[]): { found: boolean; value?: unknown } {
  let current: unknown = object;
  for (const key of path) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return { found: false };
    current = current[key];
  }
  return { found: true, value: current };
}

/** What the object holds at every field the patch sets. */
export function previousValues(object: unknown, patch: EnforcementPatch): PreviousValue[] {
  return patchLeaves(patch).map(({ path }) => {
    const at = valueAt(object, path);
    return at.found ? { path, value: at.value } : { path };
  });
}

/** The merge patch that puts every recorded field back: its old value, or removed if it was absent. */
export function restoringPatch(previous: readonly PreviousValue[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const entry of previous) {
    let node = patch;
    for (const key of entry.path.slice(0, -1)) {
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[entry.path.at(-1) as string] = "value" in entry && entry.value !== undefined ? entry.value : null;
  }
  return patch;
}

/** Whether the object holds what the patch sets (so holding it needs no write). */
export function patchHolds(object: unknown, patch: EnforcementPatch): boolean {
  return patchLeaves(patch).every(({ path, value }) => {
    const at = valueAt(object, path);
    return value === null ? !at.found : at.found && deepEqual(at.value, value);
  });
}

/** The record kept in the annotation, and read back; undefined for anything that is not one. */
export function encodePrevious(previous: readonly PreviousValue[]): string {
  return JSON.stringify(previous);
}

export function decodePrevious(text: string | undefined): PreviousValue[] | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) return undefined;
    const valid = parsed.every(
      (p) =>
        isObject(p) &&
        Array.isArray(p.path) &&
        p.path.length > 0 &&
        p.path.every((k) => typeof k === "string"),
    );
    return valid ? (parsed as PreviousValue[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a patch may not do, in a sentence; undefined when it is fine. The CRD schema refuses most
 * of this already; this guards what it cannot see (the open `spec`).
 */
export function patchProblem(patch: EnforcementPatch | undefined): string | undefined {
  if (!patch || patchLeaves(patch).length === 0 || (!patch.metadata && !patch.spec))
    return "spec.enforcementPatch sets nothing: give metadata.annotations, metadata.labels or spec fields";
  const annotations = Object.keys(patch.metadata?.annotations ?? {});
  if (annotations.some((k) => k.startsWith("tde.dev/")))
    return "spec.enforcementPatch cannot set tde.dev/ annotations: the operator keeps its records there";
  return undefined;
}
