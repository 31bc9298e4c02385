import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateDek } from "../../../src/crypto/dek.js";
import {
  addWrap,
  createEnvelope,
  decodeEnvelope,
  decodeEnvelopeSecret,
  dropWrap,
  type Envelope,
  EnvelopeError,
  encodeEnvelope,
  envelopeFromDocument,
  envelopeSecret,
  findWrapByThumbprint,
  KcvMismatchError,
  protectorWrap,
  setProtector,
  verifyUnwrapped,
} from "../../../src/crypto/envelope.js";
import { computeKcv } from "../../../src/crypto/kcv.js";

const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });
const thumbprintArb = hex(64);
const wrapArb = fc.record({
  keyID: fc.string({ minLength: 1, maxLength: 80 }).filter((s) => s.trim() !== ""),
  thumbprint: thumbprintArb,
  wrapped: fc.uint8Array({ minLength: 1, maxLength: 512 }),
  addedAt: fc.date({
    min: new Date("2000-01-01T00:00:00Z"),
    max: new Date("2100-01-01T00:00:00Z"),
    noInvalidDate: true,
  }),
  protector: fc.boolean(),
});
const envelopeArb = fc
  .record({
    dekID: fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== ""),
    kcv: hex(16),
    wraps: fc.array(wrapArb, { maxLength: 6 }),
  })
  .map(({ dekID, kcv, wraps }) =>
    wraps.reduce<Envelope>(
      (env, w) => addWrap(env, { ...w, role: w.protector ? "protector" : "retained" }),
      createEnvelope(dekID, kcv),
    ),
  );

const protectors = (env: Envelope) => env.wraps.filter((w) => w.role === "protector").length;

describe("R2 envelope format (properties)", () => {
  it("R2 encode then decode gives back the same envelope", () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        expect(decodeEnvelope(encodeEnvelope(env))).toEqual(env);
      }),
    );
  });

  it("R2 an envelope never has two protectors or two wraps under one key", () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        expect(protectors(env)).toBeLessThanOrEqual(1);
        expect(new Set(env.wraps.map((w) => w.thumbprint)).size).toBe(env.wraps.length);
      }),
    );
  });

  it("R16 setProtector leaves exactly one protector, the chosen key, and keeps every other wrap as retained", () => {
    fc.assert(
      fc.property(
        envelopeArb.filter((e) => e.wraps.length > 0),
        fc.nat(),
        (env, pick) => {
          const chosen = env.wraps[pick % env.wraps.length]!;
          const next = setProtector(env, chosen.thumbprint);
          expect(protectors(next)).toBe(1);
          expect(protectorWrap(next)?.thumbprint).toBe(chosen.thumbprint);
          expect(next.wraps.map((w) => w.thumbprint).sort()).toEqual(
            env.wraps.map((w) => w.thumbprint).sort(),
          );
          for (const w of next.wraps) {
            if (w.thumbprint !== chosen.thumbprint) expect(w.role).toBe("retained");
          }
        },
      ),
    );
  });

  it("R2 addWrap then findWrapByThumbprint finds it; dropWrap of a retained wrap removes only it", () => {
    fc.assert(
      fc.property(envelopeArb, wrapArb, (env, w) => {
        const added = addWrap(env, { ...w, role: "retained" });
        expect(findWrapByThumbprint(added, w.thumbprint)?.wrapped).toBe(
          Buffer.from(w.wrapped).toString("base64"),
        );
        const dropped = dropWrap(added, w.thumbprint);
        expect(findWrapByThumbprint(dropped, w.thumbprint)).toBeUndefined();
        expect(dropped.wraps.length).toBe(added.wraps.length - 1);
      }),
    );
  });

  it("R2 decoding arbitrary data fails only with a clear EnvelopeError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.string()), (value) => {
        const data = {
          "envelope.json": Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString(
            "base64",
          ),
        };
        try {
          decodeEnvelope(data);
        } catch (error) {
          expect(error).toBeInstanceOf(EnvelopeError);
          expect((error as Error).message).toMatch(/^invalid envelope: /);
        }
      }),
    );
  });

  it("envelopes are immutable values", () => {
    const env = createEnvelope("d", "0123456789abcdef");
    expect(Object.isFrozen(env)).toBe(true);
    expect(Object.isFrozen(env.wraps)).toBe(true);
  });
});

describe("R2 envelope rules", () => {
  const tpA = "a".repeat(64);
  const tpB = "b".repeat(64);
  const base = createEnvelope("dek-1", "0123456789abcdef");

  it("R2 names what is wrong in a malformed envelope", () => {
    expect(() => decodeEnvelope({})).toThrow("invalid envelope: the Secret has no envelope.json entry");
    expect(() => envelopeFromDocument({ version: 2 })).toThrow(/version 2 is not supported/);
    expect(() => envelopeFromDocument({ version: 1, dekID: "x", kcv: "zz", wraps: [] })).toThrow(
      /kcv must be/,
    );
    const twoProtectors = {
      version: 1,
      dekID: "x",
      kcv: "0123456789abcdef",
      wraps: [tpA, tpB].map((thumbprint) => ({
        keyID: "k",
        thumbprint,
        algorithm: "RSA-OAEP-256",
        wrapped: "AAAA",
        addedAt: "2024-01-01T00:00:00.000Z",
        role: "protector",
      })),
    };
    expect(() => envelopeFromDocument(twoProtectors)).toThrow(/more than one wrap is the protector/);
    expect(() => decodeEnvelopeSecret({ type: "Opaque", data: {} })).toThrow(
      /type "Opaque", not tde.dev\/envelope/,
    );
  });

  it("R2 adding a protector demotes the previous one to retained", () => {
    const one = addWrap(base, { keyID: "k1", thumbprint: tpA, wrapped: Buffer.from([1]), role: "protector" });
    const two = addWrap(one, { keyID: "k2", thumbprint: tpB, wrapped: Buffer.from([2]), role: "protector" });
    expect(findWrapByThumbprint(two, tpA)?.role).toBe("retained");
    expect(protectorWrap(two)?.keyID).toBe("k2");
  });

  it("R25 dropping the protector's wrap needs evenProtector", () => {
    const one = addWrap(base, { keyID: "k1", thumbprint: tpA, wrapped: Buffer.from([1]), role: "protector" });
    expect(() => dropWrap(one, tpA)).toThrow(/is the protector/);
    expect(dropWrap(one, tpA, { evenProtector: true }).wraps).toHaveLength(0);
  });

  it("R16 setProtector refuses a key the envelope has no wrap under", () => {
    expect(() => setProtector(base, tpA)).toThrow(/has no wrap under the key/);
  });

  it("R2 verifyUnwrapped accepts the right DEK and rejects another without revealing it", () => {
    const dek = generateDek();
    const env = createEnvelope("dek-2", computeKcv(dek));
    expect(verifyUnwrapped(env, Buffer.from(dek))).toEqual(dek);
    const wrong = generateDek();
    const wrongHex = wrong.toString("hex");
    let caught: unknown;
    try {
      verifyUnwrapped(env, wrong, tpA);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(KcvMismatchError);
    expect(String((caught as Error).message)).not.toContain(wrongHex);
    expect(String((caught as Error).message)).not.toContain(dek.toString("hex"));
    expect(wrong.every((b) => b === 0)).toBe(true);
  });

  it("R2 envelopeSecret builds a Secret of type tde.dev/envelope", () => {
    const secret = envelopeSecret("ns", "db-envelope", base, { labels: { a: "b" } });
    expect(secret.type).toBe("tde.dev/envelope");
    expect(decodeEnvelopeSecret(secret)).toEqual(base);
  });
});
