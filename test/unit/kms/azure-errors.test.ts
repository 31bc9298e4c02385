import { describe, expect, it } from "vitest";
import { type AzureErrorFacts, azureErrorFacts, classifyAzureError } from "../../../src/kms/azure-errors.js";
import { classifyKubeError, kubeErrorFacts, parseRetryAfter } from "../../../src/kms/kube-errors.js";

const f = (facts: Partial<AzureErrorFacts>): AzureErrorFacts => ({ network: false, ...facts });

describe("R10 Azure error classification", () => {
  const table: Array<[string, Partial<AzureErrorFacts>, string | undefined, boolean?]> = [
    ["an Entra ID AuthenticationError", { name: "AuthenticationError" }, "AuthenticationFailed"],
    ["a CredentialUnavailableError", { name: "CredentialUnavailableError" }, "AuthenticationFailed"],
    ["401", { statusCode: 401, code: "Unauthorized" }, "AuthenticationFailed"],
    ["429", { statusCode: 429, retryAfterMs: 3000 }, "Throttled"],
    ["404 KeyNotFound", { statusCode: 404, code: "KeyNotFound" }, "KeyNotFound"],
    ["409 a key being deleted", { statusCode: 409, code: "ObjectIsBeingDeleted" }, "KeyNotFound"],
    ["409 another conflict", { statusCode: 409, code: "Conflict", message: "busy" }, "VaultUnreachable"],
    [
      "Azure 403 on a disabled key",
      { statusCode: 403, code: "Forbidden", innerCode: "KeyDisabled" },
      "KeyDisabled",
    ],
    [
      "Azure 403 'Operation get is not allowed on a disabled key'",
      { statusCode: 403, code: "Forbidden", message: "Operation get is not allowed on a disabled key." },
      "KeyDisabled",
    ],
    [
      "Azure 403 on an expired key",
      { statusCode: 403, message: "Operation wrapKey is not allowed on an expired key." },
      "KeyExpired",
    ],
    [
      "403 with no hint (access policy / RBAC)",
      { statusCode: 403, code: "Forbidden", innerCode: "ForbiddenByRbac" },
      "PermissionDenied",
      true,
    ],
    ["Lowkey Vault 500 on a disabled key", { statusCode: 500 }, "VaultUnreachable", true],
    [
      "Lowkey Vault 500 'key:... is not enabled.' on a wrap with a disabled key",
      { statusCode: 500, message: "key:https://127.0.0.1:8443/k/0d24 is not enabled." },
      "KeyDisabled",
    ],
    [
      "Lowkey Vault 404 'Operation get is not allowed on a disabled entity' (R6: revocation holds)",
      { statusCode: 404, code: "NotFound", message: "Operation get is not allowed on a disabled entity." },
      "KeyDisabled",
    ],
    [
      "404 on a deleted key",
      { statusCode: 404, message: "A key with (name/id) k was not found" },
      "KeyNotFound",
    ],
    [
      "an untrusted TLS certificate (a private CA, an emulator)",
      { network: true, tlsTrust: true },
      "VaultUnreachable",
    ],
    [
      "a challenge resource outside the vault's domain",
      {
        message:
          "The challenge resource '127.0.0.1' does not match the requested domain. Set disableChallengeResourceVerification to true in your client options to disable.",
      },
      "AuthenticationFailed",
    ],
    ["503", { statusCode: 503 }, "VaultUnreachable"],
    ["a network failure", { network: true, code: "ECONNREFUSED" }, "VaultUnreachable"],
    [
      "the SDK's client-side nbf check",
      { message: "Key https://v/keys/k/1 can't be used before 2030-01-01T00:00:00.000Z" },
      "KeyNotYetActive",
    ],
    [
      "the SDK's client-side expiry check",
      { message: "Key https://v/keys/k/1 expired at 2020-01-01T00:00:00.000Z" },
      "KeyExpired",
    ],
    [
      "a key without wrapKey in its operations",
      { message: "Operation wrapKey is not supported on key https://v/keys/k/1" },
      "PermissionDenied",
    ],
    ["400 bad ciphertext (not an access failure)", { statusCode: 400, code: "BadParameter" }, undefined],
    ["a programming error", { name: "TypeError", message: "x is not a function" }, undefined],
  ];
  for (const [what, facts, reason, confirm] of table) {
    it(`R10 ${what} -> ${reason ?? "not a key-access failure"}`, () => {
      const result = classifyAzureError(f(facts));
      expect(result?.reason).toBe(reason);
      if (confirm !== undefined) expect(result?.confirmByDescribe).toBe(confirm);
    });
  }

  it("R10 a 429 carries Retry-After as retryAfterMs", () => {
    const headers = new Map([["retry-after", "7"]]);
    const facts = azureErrorFacts({
      name: "RestError",
      statusCode: 429,
      response: { status: 429, headers: { get: (n: string) => headers.get(n) } },
    });
    expect(classifyAzureError(facts)).toMatchObject({ reason: "Throttled", retryAfterMs: 7000 });
  });

  it("reads the REST body's error and inner error codes", () => {
    const facts = azureErrorFacts({
      name: "RestError",
      statusCode: 403,
      details: { error: { code: "Forbidden", innererror: { code: "KeyDisabled" } } },
    });
    expect(facts).toMatchObject({ statusCode: 403, code: "Forbidden", innerCode: "KeyDisabled" });
  });

  it("R19 a configuration cause says which operator flag fixes it", () => {
    const tls = classifyAzureError(
      azureErrorFacts(new Error("request failed", { cause: { code: "SELF_SIGNED_CERT_IN_CHAIN" } })),
    );
    expect(tls).toMatchObject({ reason: "VaultUnreachable" });
    expect(tls?.advice).toContain("--azure-ca-file");
    const challenge = classifyAzureError(
      f({ message: "The challenge resource 'x' does not match the requested domain." }),
    );
    expect(challenge?.advice).toContain("--azure-disable-challenge-resource-verification");
    expect(classifyAzureError(f({ statusCode: 403 }))?.advice).toBeUndefined();
  });

  it("finds a network failure in the cause chain, and a timeout abort", () => {
    expect(azureErrorFacts({ name: "RestError", code: "REQUEST_SEND_ERROR" }).network).toBe(true);
    expect(azureErrorFacts(new Error("x", { cause: { code: "ECONNREFUSED" } })).network).toBe(true);
    expect(azureErrorFacts({ name: "TimeoutError" }).network).toBe(true);
  });
});

describe("R10 Kubernetes API error classification (Local provider)", () => {
  it.each([
    [401, "AuthenticationFailed"],
    [403, "PermissionDenied"],
    [404, "KeyNotFound"],
    [429, "Throttled"],
    [500, "VaultUnreachable"],
  ])("R10 HTTP %i -> %s", (status, reason) => {
    expect(classifyKubeError(kubeErrorFacts({ code: status, headers: {} }))).toBe(reason);
  });

  it("R10 an unreachable API server is VaultUnreachable", () => {
    const facts = kubeErrorFacts(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }));
    expect(facts.network).toBe(true);
    expect(classifyKubeError(facts)).toBe("VaultUnreachable");
  });

  it("parses Retry-After in seconds and as an HTTP date", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(kubeErrorFacts({ code: 429, headers: { "retry-after": "1" } }).retryAfterMs).toBe(1000);
  });
});
