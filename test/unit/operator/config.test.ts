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
});
