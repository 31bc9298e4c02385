#!/usr/bin/env node
/**
 * tde-agent: the data-plane command for an init container of a database pod (R26).
 * `tde-agent unwrap --envelope DIR --out FILE --format raw|hex|mariadb`; see args.ts for the flags.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runAgent } from "./run.js";

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "tde-operator") return pkg.version ?? "unknown";
    } catch {
      // keep looking upwards
    }
    dir = dirname(dir);
  }
  return "unknown";
}

const code = await runAgent(
  process.argv.slice(2),
  {
    err: (line) => process.stderr.write(`${line}\n`),
    out: (line) => process.stdout.write(`${line}\n`),
    env: process.env,
  },
  { version: packageVersion() },
);
// Exit at once: SDK clients may hold sockets or timers open, and an init container must end.
process.stderr.write("", () => process.exit(code));
