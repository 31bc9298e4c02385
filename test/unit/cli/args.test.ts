import { describe, expect, it } from "vitest";
import { keyFilter, parseCommandLine } from "../../../src/cli/args.js";
import { usage } from "./fixtures.js";

describe("R30 kubectl-tde command line", () => {
  it("status with -n, -A, --kubeconfig and -o", () => {
    expect(parseCommandLine(["status"])).toEqual({ name: "status", allNamespaces: false, output: "table" });
    expect(parseCommandLine(["status", "-A", "-o", "json", "--kubeconfig", "/k"])).toEqual({
      name: "status",
      allNamespaces: true,
      output: "json",
      kubeconfig: "/k",
    });
    expect(parseCommandLine(["-n", "shop", "status", "--output=yaml"])).toMatchObject({
      name: "status",
      namespace: "shop",
      output: "yaml",
    });
  });

  it("keys DB with --filter current, --at TIME or neither", () => {
    expect(parseCommandLine(["keys", "orders"])).toMatchObject({
      database: "orders",
      filter: { kind: "all" },
    });
    expect(parseCommandLine(["keys", "orders", "--filter", "current"])).toMatchObject({
      filter: { kind: "current" },
    });
    expect(parseCommandLine(["keys", "orders", "--at", "2025-03-01T10:00:00Z"])).toMatchObject({
      filter: { kind: "at", at: new Date("2025-03-01T10:00:00Z") },
    });
  });

  it("rotate, revalidate, revert and impact take their one argument", () => {
    expect(parseCommandLine(["rotate", "edb/orders", "--to", "new-key"])).toMatchObject({
      name: "rotate",
      target: "edb/orders",
      to: "new-key",
    });
    expect(parseCommandLine(["revalidate", "shop-db"])).toMatchObject({
      name: "revalidate",
      server: "shop-db",
    });
    expect(parseCommandLine(["revert", "orders"])).toMatchObject({ name: "revert", database: "orders" });
    expect(parseCommandLine(["impact", "shop-key", "-A"])).toMatchObject({
      name: "impact",
      keyProtector: "shop-key",
      allNamespaces: true,
    });
  });

  it("help and version", () => {
    expect(parseCommandLine([])).toEqual({ name: "help" });
    expect(parseCommandLine(["--help"])).toEqual({ name: "help" });
    expect(parseCommandLine(["status", "-h"])).toEqual({ name: "help" });
    expect(parseCommandLine(["--version"])).toEqual({ name: "version" });
  });

  it.each([
    [["frobnicate"], /unknown command "frobnicate"/],
    [["keys"], /keys needs database/],
    [["keys", "a", "b"], /takes one database/],
    [["rotate", "orders"], /needs --to KEYPROTECTOR/],
    [["status", "-o", "wide"], /--output must be table, json or yaml/],
    [["status", "-n", "a", "-A"], /either -n\/--namespace or -A/],
    [
      ["keys", "orders", "--filter", "current", "--at", "2025-01-01T00:00:00Z"],
      /either --filter current or --at/,
    ],
    [["keys", "orders", "--at", "yesterday"], /--at must be a time/],
    [["keys", "orders", "--filter", "old"], /--filter must be current or all/],
    [["status", "--to", "k"], /--to is only for rotate/],
    [["status", "--at", "2025-01-01T00:00:00Z"], /--at is only for keys/],
    [["rotate", "orders", "--to", "k", "-A"], /-A\/--all-namespaces is only for status, impact/],
    [["status", "--bogus"], /bogus/],
    [["status", "extra"], /status takes no arguments/],
  ])("refuses %j with a sentence", (argv, message) => {
    expect(usage(argv as string[])).toMatch(message as RegExp);
  });

  it("keyFilter reads RFC 3339 times", () => {
    expect(keyFilter(undefined, "2025-01-31T12:00:00+01:00")).toEqual({
      kind: "at",
      at: new Date("2025-01-31T11:00:00Z"),
    });
    expect(keyFilter("all", undefined)).toEqual({ kind: "all" });
  });
});
