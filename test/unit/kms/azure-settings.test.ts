import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { azureProviderOptions } from "../../../src/kms/azure-settings.js";

describe("R19 the platform's Azure settings become provider options", () => {
  const dir = mkdtempSync(join(tmpdir(), "tde-azure-settings-"));

  it("reads a PEM CA bundle into the trusted CAs, and passes the sovereign-cloud settings on", () => {
    const file = join(dir, "ca.crt");
    writeFileSync(file, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    expect(
      azureProviderOptions({
        disableChallengeResourceVerification: true,
        caFile: file,
        authorityHost: "https://login.chinacloudapi.cn",
        tokenExchangeAudience: "api://AzureADTokenExchangeChina",
      }),
    ).toEqual({
      disableChallengeResourceVerification: true,
      caCertificates: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      authorityHost: "https://login.chinacloudapi.cn",
      tokenExchangeAudience: "api://AzureADTokenExchangeChina",
    });
  });

  it("a CA file that is missing or holds no certificate is refused with what to fix", () => {
    expect(() =>
      azureProviderOptions({ disableChallengeResourceVerification: false, caFile: join(dir, "none") }),
    ).toThrow(/--azure-ca-file .*none cannot be read \(ENOENT\): mount the CA bundle/);
    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "hello");
    expect(() =>
      azureProviderOptions({ disableChallengeResourceVerification: false, caFile: notPem }),
    ).toThrow(/holds no PEM certificate/);
  });
});
