import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * `npm ci` refuses a lockfile that lacks an optional dependency of a package it lists (npm 11
 * drops other platforms' binaries when it rewrites the lockfile with `npm install`), and the
 * first thing a newcomer sees is a screen of EUSAGE errors. Refresh it with
 * `npm install --package-lock-only` from the existing lockfile.
 */
describe("the lockfile npm ci installs from", () => {
  const root = join(import.meta.dirname, "..", "..", "..");
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { optionalDependencies?: Record<string, string> }>;
  };

  it("lists every optional dependency of every package it holds (every platform's binaries)", () => {
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        const nested = `${path}/node_modules/${name}`;
        if (!(nested in lock.packages) && !(`node_modules/${name}` in lock.packages))
          missing.push(`${name} (optional dependency of ${path || "the project"})`);
      }
    }
    expect(missing, "run `npm install --package-lock-only` and commit package-lock.json").toEqual([]);
  });
});
