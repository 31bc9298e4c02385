/** R2 R16: what the cache keeps of an envelope Secret, and that a summary is never unwrapped or written. */
import { describe, expect, it } from "vitest";
import { envelopeOwnerName } from "../../../src/controllers/envelope-owner.js";
import { envelopeCacheForm, envelopeFromCache } from "../../../src/controllers/envelope-summary.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  type Envelope,
  EnvelopeError,
  encodeEnvelope,
  envelopeSecret,
  envelopeSummary,
  generateDek,
  isEnvelopeSummary,
  setProtector,
  withOwnerBinding,
  wrappedBytes,
} from "../../../src/crypto/index.js";
import type { KubeObject } from "../../../src/runtime/index.js";
import { cacheForm } from "../../../src/runtime/informer.js";

const A = "a".repeat(64);
const B = "b".repeat(64);

/** An envelope with one wrap, its protector's. */
function protectorOnly(dekID: string): Envelope {
  return addWrap(createEnvelope(dekID, computeKcv(generateDek())), {
    keyID: "local://ns/k/1",
    thumbprint: A,
    wrapped: Buffer.alloc(256, 1),
    role: "protector",
  });
}

function rotated(): Envelope {
  let e = protectorOnly("dek-1");
  e = addWrap(e, { keyID: "local://ns/k/2", thumbprint: B, wrapped: Buffer.alloc(256, 2), role: "retained" });
  e = setProtector(e, B, new Date("2026-01-01T00:00:00Z"));
  return withOwnerBinding(e, { kind: "EncryptedDatabase", namespace: "ns", name: "db", tag: "0".repeat(64) });
}

const secretOf = (e: Envelope) =>
  envelopeSecret("ns", "tde-edb-db", e, {
    labels: { "tde.dev/owner-kind": "EncryptedDatabase" },
  }) as unknown as KubeObject;

describe("envelope summaries in the cache (R2 R16)", () => {
  it("keeps every id, thumbprint, role, time and the owner binding, and the protector's bytes only", () => {
    const whole = rotated();
    const summary = envelopeSummary(whole);
    expect(isEnvelopeSummary(summary)).toBe(true);
    expect(summary.wraps.map(({ wrapped: _w, ...rest }) => rest)).toEqual(
      whole.wraps.map(({ wrapped: _w, ...rest }) => rest),
    );
    expect(summary.ownerBinding).toEqual(whole.ownerBinding);
    const protector = summary.wraps.find((w) => w.role === "protector")!;
    expect(protector.wrapped).toBe(whole.wraps.find((w) => w.role === "protector")!.wrapped);
    expect(summary.wraps.find((w) => w.role === "retained")!.wrapped).toBe("");
  });

  it("an envelope with no retained wrap is its own summary", () => {
    const e = protectorOnly("dek-2");
    expect(envelopeSummary(e)).toBe(e);
    expect(isEnvelopeSummary(e)).toBe(false);
  });

  it("takes the strings that repeat across envelopes through the cache's table, and no envelope's own", () => {
    const whole = rotated();
    const given: string[] = [];
    const summary = envelopeSummary(whole, (v) => {
      given.push(v);
      return v;
    });
    expect(summary).toEqual(envelopeSummary(whole));
    expect(new Set(given)).toEqual(
      new Set([
        "local://ns/k/1",
        "local://ns/k/2",
        A,
        B,
        "RSA-OAEP-256",
        "protector",
        "retained",
        "EncryptedDatabase",
        "ns",
      ]),
    );
    // a wrap under no retained key is still whole: shared strings, all bytes
    const e = protectorOnly("dek-4");
    const shared = envelopeSummary(e, (v) => v);
    expect(shared).toEqual(e);
    expect(isEnvelopeSummary(shared)).toBe(false);
  });

  it("a summary's retained wrap cannot be unwrapped, and a summary cannot be encoded for a write", () => {
    const summary = envelopeSummary(rotated());
    expect(() => wrappedBytes(summary.wraps.find((w) => w.role === "retained")!)).toThrow(EnvelopeError);
    expect(() => encodeEnvelope(summary)).toThrow(EnvelopeError);
  });

  it("the cache form drops the data, leaves the Secret it was given untouched, and gives the summary back as partial", () => {
    const whole = rotated();
    const secret = secretOf(whole);
    const data = { ...(secret.data as Record<string, string>) };
    const cached = envelopeCacheForm(secret);
    expect(cached).not.toHaveProperty("data");
    expect(secret.data).toEqual(data);
    expect(JSON.stringify(cached)).not.toContain("envelope.json");
    const read = envelopeFromCache(cached);
    expect(read.partial).toBe(true);
    expect(read.envelope).toEqual(envelopeSummary(whole));
    // R32: the owner binding still names the owner
    expect(envelopeOwnerName(cached, "EncryptedDatabase")).toBe("db");
  });

  it("an envelope with only its protector is cached whole (not partial); one that does not decode is kept as it is", () => {
    const e = protectorOnly("dek-3");
    const read = envelopeFromCache(envelopeCacheForm(secretOf(e)));
    expect(read.partial).toBeUndefined();
    expect(read.envelope).toEqual(e);
    const broken = { ...secretOf(e), data: { "envelope.json": "bm90IGpzb24=" } } as KubeObject;
    expect(envelopeCacheForm(broken)).toBe(broken);
    expect(() => envelopeFromCache(broken)).toThrow(EnvelopeError);
  });
});

describe("the informer's cache form (cache transforms)", () => {
  it("drops managedFields and the last-applied annotation without changing the object given, then applies the transform", () => {
    const obj: KubeObject = {
      metadata: {
        name: "x",
        managedFields: [{ manager: "kubectl" }],
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", keep: "me" },
      },
      spec: { a: 1 },
    };
    const cached = cacheForm(obj, (o) => ({ ...o, marked: true }));
    expect(cached).toEqual({
      metadata: { name: "x", annotations: { keep: "me" } },
      spec: { a: 1 },
      marked: true,
    });
    expect(obj.metadata).toHaveProperty("managedFields");
    expect(obj.metadata?.annotations).toHaveProperty(["kubectl.kubernetes.io/last-applied-configuration"]);
    const plain: KubeObject = { metadata: { name: "y" } };
    expect(cacheForm(plain)).toBe(plain);
  });
});
