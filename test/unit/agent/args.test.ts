import { describe, expect, it } from "vitest";
import { parseAgentArgs, type UnwrapCommand, USAGE, UsageError } from "../../../src/agent/args.js";

const base = ["unwrap", "--envelope", "/envelope", "--out", "/keys/keyfile"];

function unwrap(args: string[], env: Record<string, string> = {}): UnwrapCommand {
  const command = parseAgentArgs(args, env);
  if (command.command !== "unwrap") throw new Error(`expected unwrap, got ${command.command}`);
  return command;
}

describe("R26 tde-agent arguments", () => {
  it("parses the issue's command line with defaults", () => {
    expect(unwrap([...base, "--format", "mariadb"])).toEqual({
      command: "unwrap",
      envelope: "/envelope",
      out: "/keys/keyfile",
      format: "mariadb",
      keyIDs: [1],
      kubeconfig: undefined,
      identity: { type: "Default" },
      allowDisk: false,
      timeoutMs: 60_000,
      azureSettings: { disableChallengeResourceVerification: false },
    });
  });

  it("R19 takes the Azure settings from flags or the environment, and refuses a bad one by name", () => {
    const c = unwrap(
      [
        ...base,
        "--format",
        "raw",
        "--azure-ca-file",
        "/etc/tde/ca/ca.crt",
        "--azure-authority-host",
        "https://login.microsoftonline.us",
      ],
      { TDE_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "true" },
    );
    expect(c.azureSettings).toEqual({
      disableChallengeResourceVerification: true,
      caFile: "/etc/tde/ca/ca.crt",
      authorityHost: "https://login.microsoftonline.us",
    });
    expect(() =>
      parseAgentArgs([...base, "--format", "raw", "--azure-authority-host", "login.microsoftonline.us"]),
    ).toThrow(/--azure-authority-host .* must be an https URL/);
    expect(() =>
      parseAgentArgs([...base, "--format", "raw"], {
        TDE_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "yes",
      }),
    ).toThrow(/must be true or false/);
  });

  it("accepts every format, --format=value, repeated --key-id and the optional flags", () => {
    expect(unwrap([...base, "--format=raw"]).format).toBe("raw");
    expect(unwrap([...base, "--format", "hex"]).format).toBe("hex");
    const c = unwrap([
      ...base,
      "--format",
      "mariadb",
      "--key-id",
      "1",
      "--key-id=7",
      "--kubeconfig",
      "/kc",
      "--identity",
      "WorkloadIdentity",
      "--client-id",
      "cid",
      "--tenant-id",
      "tid",
      "--allow-disk",
      "--timeout",
      "2m",
    ]);
    expect(c.keyIDs).toEqual([1, 7]);
    expect(c.kubeconfig).toBe("/kc");
    expect(c.identity).toEqual({ type: "WorkloadIdentity", clientID: "cid", tenantID: "tid" });
    expect(c.allowDisk).toBe(true);
    expect(c.timeoutMs).toBe(120_000);
  });

  it("takes the kubeconfig and Azure identity from the environment, flags winning", () => {
    const env = { TDE_AGENT_KUBECONFIG: "/env-kc", AZURE_CLIENT_ID: "env-cid", AZURE_TENANT_ID: "env-tid" };
    const fromEnv = unwrap([...base, "--format", "hex"], env);
    expect(fromEnv.kubeconfig).toBe("/env-kc");
    expect(fromEnv.identity).toEqual({ type: "Default", clientID: "env-cid", tenantID: "env-tid" });
    const flags = unwrap(
      [...base, "--format", "hex", "--kubeconfig", "/flag-kc", "--client-id", "flag-cid"],
      env,
    );
    expect(flags.kubeconfig).toBe("/flag-kc");
    expect(flags.identity.clientID).toBe("flag-cid");
  });

  it("shows help and version", () => {
    expect(parseAgentArgs([])).toEqual({ command: "help" });
    expect(parseAgentArgs(["--help"])).toEqual({ command: "help" });
    expect(parseAgentArgs(["unwrap", "-h"])).toEqual({ command: "help" });
    expect(parseAgentArgs(["--version"])).toEqual({ command: "version" });
    expect(USAGE).toContain("--format FORMAT");
  });

  it.each([
    [["wrap"], /unknown command "wrap"/],
    [["unwrap"], /missing --envelope, --out, --format/],
    [["unwrap", "--out", "/k", "--format", "raw"], /missing --envelope/],
    [[...base], /missing --format/],
    [[...base, "--format", "pem"], /--format must be one of raw, hex, mariadb, got "pem"/],
    [[...base, "--format", "raw", "--key-id", "2"], /--key-id applies to --format mariadb only/],
    [[...base, "--format", "mariadb", "--key-id", "0"], /between 1 and 4294967295/],
    [[...base, "--format", "mariadb", "--key-id", "4294967296"], /between 1 and 4294967295/],
    [[...base, "--format", "mariadb", "--key-id", "one"], /whole number/],
    [[...base, "--format", "mariadb", "--key-id", "1", "--key-id", "1"], /same id twice/],
    [[...base, "--format", "raw", "--identity", "ClientSecret"], /--identity must be one of/],
    [[...base, "--format", "raw", "--timeout", "5"], /--timeout must be/],
    [[...base, "--format", "raw", "--timeout", "0s"], /longer than zero/],
    [[...base, "--format", "raw", "--bogus"], /bogus/],
    [[...base, "--format", "raw", "extra"], /unexpected argument "extra"/],
    [[...base, "--format", "raw", "--envelope"], /envelope/],
  ])("refuses %j with a message that says what to write", (args, message) => {
    expect(() => parseAgentArgs(args)).toThrow(UsageError);
    expect(() => parseAgentArgs(args)).toThrow(message);
  });
});
