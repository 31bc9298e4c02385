import { describe, expect, it } from "vitest";
import {
  API_VERSION,
  DEFAULTS,
  ENCRYPTED_DATABASE_RESOURCE,
  KEY_PROTECTOR_RESOURCE,
  resolveRequirements,
  shortThumbprint,
} from "../../../src/api/index.js";

describe("R5 resolveRequirements", () => {
  it("fills the defaults: 2048 and 3072, no expiry, recoverable for 90 days", () => {
    expect(resolveRequirements(undefined)).toEqual({
      allowedKeySizes: [2048, 3072],
      allowExpiry: false,
      requireRecoverable: true,
      minimumRecoverableDays: 90,
    });
  });
  it("keeps what is set", () => {
    expect(resolveRequirements({ allowedKeySizes: [4096], requireRecoverable: false })).toMatchObject({
      allowedKeySizes: [4096],
      requireRecoverable: false,
    });
  });
  it("does not share the default array", () => {
    resolveRequirements(undefined).allowedKeySizes.push(4096);
    expect(DEFAULTS.allowedKeySizes).toEqual([2048, 3072]);
  });
});

describe("constants", () => {
  it("names the API", () => {
    expect(API_VERSION).toBe("tde.dev/v1alpha1");
    expect(KEY_PROTECTOR_RESOURCE).toEqual({
      group: "tde.dev",
      version: "v1alpha1",
      plural: "keyprotectors",
      kind: "KeyProtector",
      namespaced: true,
    });
    expect(ENCRYPTED_DATABASE_RESOURCE.plural).toBe("encrypteddatabases");
    expect(shortThumbprint("0123456789abcdef0123")).toBe("0123456789ab");
  });
});
