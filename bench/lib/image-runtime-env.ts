import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

const ROOT = join(import.meta.dirname, "..", "..");

/** The environment that sets how the operator's process uses memory: V8's heap flags, glibc's arenas. */
export const RUNTIME_ENV_NAMES = ["NODE_OPTIONS", "MALLOC_ARENA_MAX"] as const;
export type RuntimeEnv = Record<(typeof RUNTIME_ENV_NAMES)[number], string>;

/**
 * The runtime environment the operator runs with when installed: the chart's Deployment sets it
 * (the Dockerfile and deploy/base carry the same, test/unit/project/runtime-env.test.ts). The
 * benchmark starts the operator with it, so its memory figures are those users get.
 */
export function chartRuntimeEnv(root = ROOT): RuntimeEnv {
  const chart = join(root, "charts", "tde-operator");
  return runtimeEnvOfManifest(
    withDefaults(
      readFileSync(join(chart, "templates", "deployment.yaml"), "utf8"),
      parse(readFileSync(join(chart, "values.yaml"), "utf8")) as Record<string, unknown>,
    ),
  );
}

/** A template's `{{ .Values.a.b }}` references as the chart's defaults render them (the heap limit). */
export function withDefaults(template: string, values: Record<string, unknown>): string {
  return template.replace(/\{\{\s*\.Values\.([\w.]+)\s*\}\}/g, (ref, path: string) => {
    const value = path
      .split(".")
      .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], values);
    if (value === undefined || typeof value === "object")
      throw new Error(`values.yaml has no value for ${ref}`);
    return String(value);
  });
}

/** The runtime entries of a Deployment manifest or template's env list. */
export function runtimeEnvOfManifest(text: string): RuntimeEnv {
  return pick((name) => new RegExp(`- name: ${name}\\s*\\n\\s*value:\\s*(.+)`).exec(text)?.[1]?.trim());
}

/** The runtime entries of a Dockerfile's ENV. */
export function runtimeEnvOfDockerfile(text: string): RuntimeEnv {
  return pick((name) => new RegExp(`\\b${name}=("[^"]*"|\\S+)`).exec(text)?.[1]);
}

function pick(find: (name: string) => string | undefined): RuntimeEnv {
  const out: Partial<RuntimeEnv> = {};
  for (const name of RUNTIME_ENV_NAMES) {
    const value = find(name);
    if (value === undefined) throw new Error(`no ${name} env entry`);
    out[name] = unquote(value);
  }
  return out as RuntimeEnv;
}

function unquote(s: string): string {
  return /^(["']).*\1$/.test(s) ? s.slice(1, -1) : s;
}
