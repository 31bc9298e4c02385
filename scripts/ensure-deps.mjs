// Installs what the README commands need on a fresh machine, before anything imports a package:
// the npm dependencies (from the lockfile) and the cached control-plane binaries.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const say = (line) => process.stderr.write(`[ensure-deps] ${line}\n`);

if (!existsSync(join(root, "node_modules", ".package-lock.json"))) {
  say("installing npm dependencies (npm ci)");
  // The lockfile lists every platform's optional packages (biome, esbuild, rollup), so `npm ci`
  // accepts it on any machine; errors are shown, the install-scripts notices of npm 11 are not.
  execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
}

if (!process.env.TDE_SKIP_BINARIES) {
  const folder = execFileSync("bash", [join(root, "test/harness/assets/build-binaries.sh")], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  }).trim();
  say(`control-plane binaries: ${folder}`);
}

const forTests = process.argv.includes("--tests");
if (forTests && !process.env.TDE_SKIP_BINARIES) {
  // built here, before the tests, so no test worker spends minutes compiling beside timed tests
  const helm = execFileSync("bash", [join(root, "test/harness/assets/build-helm.sh")], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  }).trim();
  say(`helm: ${helm}`);
  // the real health and alerting tools (test/harness/health-tools.ts): kstatus and Argo CD's Lua
  // runtime over our health.lua, and promtool; built one after the other (two cores)
  for (const script of ["build-health-tools.sh", "build-promtool.sh"]) {
    const built = execFileSync("bash", [join(root, "test/harness/assets", script)], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    }).trim();
    say(`${script.replace(/^build-|\.sh$/g, "")}: ${built}`);
  }
}

// Debian packages the tests run for real, installed when missing (root with apt-get only): MariaDB
// for the data-plane journey. (Argo CD's health checks run in gopher-lua, built above.)
const has = (bin) => {
  try {
    execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const missing = [];
if (!["mariadbd", "mysqld"].some(has) && !existsSync("/usr/sbin/mariadbd"))
  missing.push("mariadb-server", "mariadb-client");
if (forTests && missing.length > 0 && !process.env.TDE_SKIP_BINARIES && process.getuid?.() === 0) {
  try {
    say(`installing ${missing.join(", ")} with apt-get`);
    const apt = (args) =>
      execFileSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    apt(["update", "-qq"]);
    apt(["install", "-y", "-qq", ...missing]);
  } catch (error) {
    say(`could not install ${missing.join(", ")} (${error.message}); the tests that need them say why`);
  }
}
