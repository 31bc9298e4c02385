/** R32: derived names and label values stay within Kubernetes' limits and never collide. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { envelopeSecretName } from "../../../src/controllers/resources.js";
import { boundedName, labelValueFor } from "../../../src/runtime/names.js";
import { networkPolicyName } from "../../../src/watchdog/enforcement.js";
import { validName } from "../../fixtures/valid-names.js";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const long = (n: number, c = "a") => c.repeat(n);

describe("boundedName (R32)", () => {
  it.each([
    ["short names are kept as they are", "tde-edb-", "orders", "tde-edb-orders"],
    ["a name that just fits is kept", "tde-edb-", long(245), `tde-edb-${long(245)}`],
  ])("%s", (_what, prefix, name, expected) => {
    expect(boundedName(prefix, name)).toBe(expected);
  });

  it("a name one character too long is shortened to exactly 253, with a readable prefix", () => {
    const out = boundedName("tde-edb-", long(246));
    expect(out).toHaveLength(253);
    expect(out.startsWith(`tde-edb-${long(100)}`)).toBe(true);
    expect(out).toMatch(DNS_SUBDOMAIN);
  });

  it("two long names sharing their first 252 characters get different envelope names", () => {
    const common = long(252, "x");
    const a = envelopeSecretName("EncryptedDatabase", `${common}a`);
    const b = envelopeSecretName("EncryptedDatabase", `${common}b`);
    expect(a).not.toBe(b);
    expect(a).toHaveLength(253);
  });

  it("a shortened prefix never ends in '.' or '-' before the hash", () => {
    const name = `${long(229)}.${long(30)}`; // the cut falls right after the dot
    expect(boundedName("tde-esrv-", name)).toMatch(DNS_SUBDOMAIN);
  });

  it("label values: at most 63 characters, valid, and distinct for distinct names", () => {
    expect(labelValueFor("orders")).toBe("orders");
    expect(labelValueFor(long(63))).toBe(long(63));
    const a = labelValueFor(`${long(63)}.a`);
    const b = labelValueFor(`${long(63)}.b`);
    expect(a).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(LABEL_VALUE);
  });

  it("the generator reaches every length, long names included", () => {
    const lengths = fc.sample(validName, 2000).map((n) => n.length);
    expect(Math.max(...lengths)).toBeGreaterThan(245);
    expect(lengths.filter((l) => l > 63).length).toBeGreaterThan(500);
    for (const n of fc.sample(validName, 500)) expect(n).toMatch(DNS_SUBDOMAIN);
  });

  it("property: every valid name gives valid, bounded, injective envelope and policy names and label values", () => {
    fc.assert(
      fc.property(validName, validName, (x, y) => {
        for (const n of [x, y]) {
          for (const derived of [
            envelopeSecretName("EncryptedServer", n),
            envelopeSecretName("EncryptedDatabase", n),
            networkPolicyName(n),
          ]) {
            expect(derived.length).toBeLessThanOrEqual(253);
            expect(derived).toMatch(DNS_SUBDOMAIN);
          }
          expect(labelValueFor(n).length).toBeLessThanOrEqual(63);
          expect(labelValueFor(n)).toMatch(LABEL_VALUE);
        }
        if (x !== y) {
          expect(envelopeSecretName("EncryptedDatabase", x)).not.toBe(
            envelopeSecretName("EncryptedDatabase", y),
          );
          expect(labelValueFor(x)).not.toBe(labelValueFor(y));
          expect(networkPolicyName(x)).not.toBe(networkPolicyName(y));
        }
      }),
      { numRuns: 500 },
    );
  });
});
