import { createHmac, hkdfSync } from "node:crypto";
import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bindEnvelope,
  computeOwnerTag,
  OWNER_BINDING_LABEL,
  OwnerBindingError,
  ownerSubject,
  precheckOwnerBinding,
  verifyOwnerBinding,
} from "../../../src/crypto/binding.js";
import { generateDek } from "../../../src/crypto/dek.js";
import {
  addWrap,
  createEnvelope,
  decodeEnvelope,
  dropWrap,
  type Envelope,
  EnvelopeError,
  type EnvelopeOwner,
  encodeEnvelope,
  envelopeFromDocument,
  setProtector,
} from "../../../src/crypto/envelope.js";
import { computeKcv } from "../../../src/crypto/kcv.js";

const dekArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
const part = fc
  .string({ minLength: 1, maxLength: 30 })
  .filter((s) => !s.includes("/") && s.trim() === s && s.length > 0);
const ownerArb: fc.Arbitrary<EnvelopeOwner> = fc.record({
  kind: fc.constantFrom("EncryptedServer", "EncryptedDatabase"),
  namespace: part,
  name: part,
});
const tp = (c: string) => c.repeat(64);

/** An envelope of `dek`, wrapped once (the wrap's bytes do not matter here), bound to `owner`. */
function boundEnvelope(dek: Buffer, owner: EnvelopeOwner): Envelope {
  const env = addWrap(createEnvelope("dek-1", computeKcv(dek)), {
    keyID: "local://ns/k/1",
    thumbprint: tp("a"),
    wrapped: Buffer.from([1, 2, 3]),
    role: "protector",
  });
  return bindEnvelope(env, dek, owner);
}

function refusal(run: () => unknown): OwnerBindingError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(OwnerBindingError);
    return error as OwnerBindingError;
  }
  throw new Error("expected an OwnerBindingError");
}

describe("R31 owner binding (properties)", () => {
  it("R31 the tag is HMAC-SHA256('kind/namespace/name') under HKDF-SHA256(DEK, purpose label)", () => {
    fc.assert(
      fc.property(dekArb, ownerArb, (dek, owner) => {
        const key = Buffer.from(hkdfSync("sha256", dek, Buffer.alloc(0), OWNER_BINDING_LABEL, 32));
        const expected = createHmac("sha256", key)
          .update(`${owner.kind}/${owner.namespace}/${owner.name}`)
          .digest("hex");
        expect(computeOwnerTag(dek, owner)).toBe(expected);
        expect(computeOwnerTag(dek, owner)).toMatch(/^[0-9a-f]{64}$/);
      }),
    );
  });

  it("R1 the tag reveals nothing of the DEK: not the DEK, not its KCV, not an HMAC keyed by the DEK itself", () => {
    fc.assert(
      fc.property(dekArb, ownerArb, (dek, owner) => {
        const tag = computeOwnerTag(dek, owner);
        expect(tag).not.toContain(dek.toString("hex"));
        expect(tag).not.toContain(computeKcv(dek));
        expect(tag).not.toBe(createHmac("sha256", dek).update(ownerSubject(owner)).digest("hex"));
        const env = boundEnvelope(dek, owner);
        const document = Buffer.from(encodeEnvelope(env)["envelope.json"]!, "base64").toString("utf8");
        expect(document).not.toContain(dek.toString("hex"));
        expect(document).not.toContain(dek.toString("base64"));
      }),
    );
  });

  it("R31 an envelope bound to its owner is accepted for that owner, recorded or not", () => {
    fc.assert(
      fc.property(dekArb, ownerArb, fc.boolean(), (dek, owner, recorded) => {
        const env = boundEnvelope(dek, owner);
        expect(precheckOwnerBinding(env, owner, recorded)).toBe("verify");
        const copy = Buffer.from(dek);
        expect(verifyOwnerBinding(env, copy, owner, recorded)).toBe(copy);
        expect(copy.equals(dek)).toBe(true);
      }),
    );
  });

  it("R31 a copy planted for any other owner is refused before the unwrap, and its relabelled copy after it", () => {
    fc.assert(
      fc.property(dekArb, ownerArb, ownerArb, fc.boolean(), (dek, owner, other, recorded) => {
        fc.pre(ownerSubject(owner) !== ownerSubject(other));
        const env = boundEnvelope(dek, owner);
        // as copied: the clear owner is someone else's, refused with no DEK at all
        expect(refusal(() => precheckOwnerBinding(env, other, recorded)).problem).toBe("OtherOwner");
        // relabelled to the new owner in clear: passes the precheck, fails on the tag, DEK zeroed
        const relabelled = envelopeFromDocument({
          ...JSON.parse(Buffer.from(encodeEnvelope(env)["envelope.json"]!, "base64").toString("utf8")),
          ownerBinding: { ...other, tag: env.ownerBinding!.tag },
        });
        expect(precheckOwnerBinding(relabelled, other, recorded)).toBe("verify");
        const copy = Buffer.from(dek);
        expect(refusal(() => verifyOwnerBinding(relabelled, copy, other, recorded)).problem).toBe(
          "TagMismatch",
        );
        expect(copy.every((b) => b === 0)).toBe(true);
      }),
    );
  });

  it("R31 a tag made with another DEK does not match, even for the right owner", () => {
    fc.assert(
      fc.property(dekArb, dekArb, ownerArb, (dek, other, owner) => {
        fc.pre(!dek.equals(other));
        expect(computeOwnerTag(dek, owner)).not.toBe(computeOwnerTag(other, owner));
      }),
    );
  });

  it("R31 an unbound envelope is accepted only when the owner's status already records its DEK", () => {
    fc.assert(
      fc.property(dekArb, ownerArb, (dek, owner) => {
        const legacy = createEnvelope("dek-1", computeKcv(dek));
        expect(precheckOwnerBinding(legacy, owner, true)).toBe("legacy");
        expect(verifyOwnerBinding(legacy, Buffer.from(dek), owner, true).equals(dek)).toBe(true);
        expect(refusal(() => precheckOwnerBinding(legacy, owner, false)).problem).toBe("Unbound");
        const copy = Buffer.from(dek);
        expect(refusal(() => verifyOwnerBinding(legacy, copy, owner, false)).problem).toBe("Unbound");
        expect(copy.every((b) => b === 0)).toBe(true);
      }),
    );
  });

  it("R2 the binding survives encoding and every envelope operation", () => {
    fc.assert(
      fc.property(dekArb, ownerArb, (dek, owner) => {
        const env = boundEnvelope(dek, owner);
        expect(decodeEnvelope(encodeEnvelope(env))).toEqual(env);
        const two = addWrap(env, { keyID: "k2", thumbprint: tp("b"), wrapped: Buffer.from([9]) });
        expect(two.ownerBinding).toEqual(env.ownerBinding);
        expect(setProtector(two, tp("b")).ownerBinding).toEqual(env.ownerBinding);
        expect(dropWrap(two, tp("b")).ownerBinding).toEqual(env.ownerBinding);
      }),
    );
  });
});

describe("R31 owner binding rules", () => {
  const owner = { kind: "EncryptedServer", namespace: "a", name: "srv" };

  it("refuses to bind with a key that is not the envelope's DEK", () => {
    const dek = generateDek();
    const env = createEnvelope("d", computeKcv(dek));
    expect(() => bindEnvelope(env, generateDek(), owner)).toThrow(EnvelopeError);
    expect(() => bindEnvelope(env, Buffer.alloc(16), owner)).toThrow(EnvelopeError);
  });

  it("refuses owners whose parts are empty or contain '/' (the subject would be ambiguous)", () => {
    const dek = generateDek();
    expect(() => computeOwnerTag(dek, { ...owner, namespace: "" })).toThrow(EnvelopeError);
    expect(() => computeOwnerTag(dek, { ...owner, namespace: "a/b" })).toThrow(EnvelopeError);
    expect(() => computeOwnerTag(dek, { ...owner, name: "x/y" })).toThrow(EnvelopeError);
  });

  it("R2 decoding names a malformed owner binding", () => {
    const base = { version: 1, dekID: "d", kcv: "0123456789abcdef", wraps: [] };
    expect(() => envelopeFromDocument({ ...base, ownerBinding: "x" })).toThrow(
      /ownerBinding is not an object/,
    );
    expect(() => envelopeFromDocument({ ...base, ownerBinding: { ...owner, tag: "zz" } })).toThrow(
      /ownerBinding.tag must be 64/,
    );
    expect(() =>
      envelopeFromDocument({ ...base, ownerBinding: { ...owner, name: "a/b", tag: tp("c") } }),
    ).toThrow(/ownerBinding.name is empty or contains/);
    expect(() => envelopeFromDocument({ ...base, ownerBinding: { kind: "K", tag: tp("c") } })).toThrow(
      /ownerBinding.namespace is missing/,
    );
    // an envelope without one (written before owner binding) still decodes, without the field
    expect(envelopeFromDocument(base)).not.toHaveProperty("ownerBinding");
  });

  it("R1 refusal messages name the DEK id and the owners, never key bytes", () => {
    const dek = generateDek();
    const env = boundEnvelope(Buffer.from(dek), owner);
    const other = { kind: "EncryptedServer", namespace: "b", name: "x" };
    const e = refusal(() => precheckOwnerBinding(env, other, false));
    expect(e.message).toContain("dek-1");
    expect(e.message).toContain("EncryptedServer a/srv");
    expect(e.message).toContain("EncryptedServer b/x");
    for (const secret of [dek.toString("hex"), dek.toString("base64"), env.ownerBinding!.tag]) {
      expect(e.message).not.toContain(secret);
    }
  });
});
