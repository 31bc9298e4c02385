import { describe, expect, it } from "vitest";
import { parseConfig, USAGE, wantsHelp } from "../../../src/config.js";

describe("operator flags", () => {
  it("--help and -h ask for the usage text, not a run", () => {
    expect(wantsHelp(["--help"])).toBe(true);
    expect(wantsHelp(["--workers", "8", "-h"])).toBe(true);
    expect(wantsHelp(["--workers", "8"])).toBe(false);
  });

  it("the usage text names every flag parseConfig accepts", () => {
    const flags = [...USAGE.matchAll(/--(\[no-\])?([a-z-]+)/g)].map((m) => m[2]);
    for (const flag of [
      "kubeconfig",
      "operator-namespace",
      "watch-namespaces",
      "probe-interval",
      "workers",
      "kms-concurrency",
      "kms-rate-limit",
      "local-kms-latency",
      "log-level",
      "metrics-port",
      "leader-election",
      "lease-name",
      "identity",
      "retained-wrap-retention",
      "service-managed-key",
      "azure-ca-file",
      "azure-disable-challenge-resource-verification",
      "azure-authority-host",
      "azure-token-exchange-audience",
    ]) {
      expect(flags).toContain(flag);
    }
  });

  it("the defaults in the usage text are the defaults parseConfig applies", () => {
    const config = parseConfig([]);
    const defaultOf = (flag: string) => new RegExp(`--${flag} .*; ([^)]+)\\)`).exec(USAGE)?.[1];
    expect(defaultOf("workers")).toBe(String(config.workers));
    expect(defaultOf("kms-concurrency")).toBe(String(config.kmsConcurrency));
    expect(defaultOf("metrics-port")).toBe(String(config.metricsPort));
    expect(defaultOf("probe-interval")).toBe(`${config.probeIntervalMs / 1000}s`);
  });

  it("an unknown flag is refused by name", () => {
    expect(() => parseConfig(["--wrokers", "4"])).toThrow(/wrokers/);
  });

  it("R16 R19 the retention window and the Azure settings, with their defaults", () => {
    const defaults = parseConfig([]);
    expect(defaults.retainedWrapRetentionMs).toBe(2 * 3_600_000);
    expect(defaults.azure).toEqual({ disableChallengeResourceVerification: false });
    const c = parseConfig([
      "--retained-wrap-retention",
      "30m",
      "--azure-disable-challenge-resource-verification",
      "--azure-token-exchange-audience",
      "api://AzureADTokenExchangeUSGov",
    ]);
    expect(c.retainedWrapRetentionMs).toBe(30 * 60_000);
    expect(c.azure).toEqual({
      disableChallengeResourceVerification: true,
      tokenExchangeAudience: "api://AzureADTokenExchangeUSGov",
    });
  });

  describe("R7 --service-managed-key: the KeyProtector serving as the service-managed key", () => {
    it("absent by default: the operator's own Local key", () => {
      expect(parseConfig([]).serviceManagedKey).toBeUndefined();
    });

    it.each<[string, string[], Record<string, string>, { namespace: string; name: string }]>([
      [
        "a name: in the operator's namespace",
        ["--service-managed-key", "platform-kek"],
        {},
        { namespace: "tde-system", name: "platform-kek" },
      ],
      [
        "a name with --operator-namespace",
        ["--operator-namespace", "ops", "--service-managed-key", "platform-kek"],
        {},
        { namespace: "ops", name: "platform-kek" },
      ],
      [
        "NAMESPACE/NAME",
        ["--service-managed-key=keys/vault.kek"],
        {},
        { namespace: "keys", name: "vault.kek" },
      ],
      [
        "from the environment",
        [],
        { TDE_SERVICE_MANAGED_KEY: "keys/vault-kek" },
        { namespace: "keys", name: "vault-kek" },
      ],
      [
        "the flag wins over the environment",
        ["--service-managed-key", "flag-kek"],
        { TDE_SERVICE_MANAGED_KEY: "env-kek" },
        { namespace: "tde-system", name: "flag-kek" },
      ],
      [
        "a watched namespace",
        ["--watch-namespaces", "shop,keys", "--service-managed-key", "keys/kek"],
        {},
        { namespace: "keys", name: "kek" },
      ],
    ])("%s", (_n, argv, env, want) => {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        expect(parseConfig(argv).serviceManagedKey).toEqual(want);
      } finally {
        process.env = saved;
      }
    });

    it.each<[string, string[], RegExp]>([
      [
        "not a reference",
        ["--service-managed-key", "a/b/c"],
        /--service-managed-key: "a\/b\/c" is not a KeyProtector reference: name a KeyProtector as NAME/,
      ],
      ["an upper-case name", ["--service-managed-key", "Platform"], /is not a KeyProtector reference/],
      ["an empty namespace", ["--service-managed-key", "/kek"], /is not a KeyProtector reference/],
      [
        "a namespace longer than 63",
        ["--service-managed-key", `${"n".repeat(64)}/kek`],
        /is not a KeyProtector reference/,
      ],
      [
        "a namespace the operator does not watch",
        ["--watch-namespaces", "shop", "--service-managed-key", "keys/kek"],
        /namespace keys, which the operator does not watch: add keys to --watch-namespaces, or keep the KeyProtector in the operator's namespace tde-system/,
      ],
    ])("refused with the flag and the fix: %s", (_n, argv, error) => {
      expect(() => parseConfig(argv)).toThrow(error);
    });
  });
});
