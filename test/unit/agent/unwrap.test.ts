import { describe, expect, it } from "vitest";
import {
  AgentUnwrapError,
  adviceFor,
  unwrapDek,
  type WrapUnwrapper,
  wrapOrder,
} from "../../../src/agent/unwrap.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  type Envelope,
  generateDek,
  newDekID,
} from "../../../src/crypto/index.js";
import { KEY_ACCESS_REASONS, KeyAccessError, type KeyAccessReason } from "../../../src/kms/provider.js";

const tp = (c: string) => c.repeat(64);

/** An envelope whose wraps are fake: the wrapped bytes are the key's letter; the fake KMS answers per key. */
function fixture(): { dek: Buffer; envelope: Envelope } {
  const dek = generateDek();
  let envelope = createEnvelope(newDekID(), computeKcv(dek));
  envelope = addWrap(envelope, {
    keyID: "kv/a/1",
    thumbprint: tp("a"),
    wrapped: Buffer.from("a"),
    addedAt: "2026-01-01T00:00:00Z",
  });
  envelope = addWrap(envelope, {
    keyID: "kv/b/1",
    thumbprint: tp("b"),
    wrapped: Buffer.from("b"),
    addedAt: "2026-02-01T00:00:00Z",
  });
  envelope = addWrap(envelope, {
    keyID: "kv/c/1",
    thumbprint: tp("c"),
    wrapped: Buffer.from("c"),
    addedAt: "2026-03-01T00:00:00Z",
    role: "protector",
  });
  return { dek, envelope };
}

type Behaviour = "ok" | "wrong" | KeyAccessReason | "boom";
function fakeKms(dek: Buffer, behaviour: Record<string, Behaviour>, calls: string[] = []): WrapUnwrapper {
  return async (wrap, wrapped) => {
    calls.push(wrap.keyID);
    const b = behaviour[wrapped.toString()] ?? "ok";
    if (b === "ok") return Buffer.from(dek);
    if (b === "wrong") return generateDek();
    if (b === "boom") throw new Error("socket hang up");
    throw new KeyAccessError(b, `${wrap.keyID}: ${b}`);
  };
}

describe("R26 agent unwrap order and KCV (R2)", () => {
  it("tries the protector, then retained wraps newest first", () => {
    expect(wrapOrder(fixture().envelope).map((w) => w.keyID)).toEqual(["kv/c/1", "kv/b/1", "kv/a/1"]);
  });

  it("unwraps with the protector and checks the KCV", async () => {
    const { dek, envelope } = fixture();
    const calls: string[] = [];
    const out = await unwrapDek(envelope, fakeKms(dek, {}, calls));
    expect(out.dek.equals(dek)).toBe(true);
    expect(out.wrap.role).toBe("protector");
    expect(calls).toEqual(["kv/c/1"]);
  });

  it("falls back to retained wraps only when the protector's key is not found", async () => {
    const { dek, envelope } = fixture();
    const calls: string[] = [];
    const out = await unwrapDek(envelope, fakeKms(dek, { c: "KeyNotFound", b: "KeyNotFound" }, calls));
    expect(out.wrap.keyID).toBe("kv/a/1");
    expect(out.attempts.map((a) => a.outcome)).toEqual(["KeyNotFound", "KeyNotFound", "success"]);
    expect(calls).toEqual(["kv/c/1", "kv/b/1", "kv/a/1"]);
  });

  it.each(KEY_ACCESS_REASONS.filter((r) => r !== "KeyNotFound"))(
    "fails at once, without falling back, when the protector is %s (revocation must hold)",
    async (reason) => {
      const { dek, envelope } = fixture();
      const calls: string[] = [];
      const error = await unwrapDek(envelope, fakeKms(dek, { c: reason }, calls)).catch((e) => e);
      expect(error).toBeInstanceOf(AgentUnwrapError);
      expect((error as AgentUnwrapError).reason).toBe(reason);
      expect((error as Error).message).toContain(`cannot unwrap DEK ${envelope.dekID}: ${reason}`);
      expect(calls).toEqual(["kv/c/1"]);
      expect(adviceFor(reason)).not.toBe(adviceFor("Error"));
    },
  );

  it("reports the protector's reason when every fallback fails too", async () => {
    const { dek, envelope } = fixture();
    const error = (await unwrapDek(envelope, fakeKms(dek, { c: "KeyNotFound", b: "KeyDisabled" })).catch(
      (e) => e,
    )) as AgentUnwrapError;
    expect(error.reason).toBe("KeyNotFound");
    expect(error.attempts.map((a) => a.outcome)).toEqual(["KeyNotFound", "KeyDisabled"]);
    expect(error.message).toMatch(/protector kv\/c\/1: KeyNotFound.*retained kv\/b\/1: KeyDisabled/);
  });

  it("refuses bytes whose KCV does not match and never reveals them", async () => {
    const { dek, envelope } = fixture();
    const error = (await unwrapDek(envelope, fakeKms(dek, { c: "wrong" })).catch(
      (e) => e,
    )) as AgentUnwrapError;
    expect(error.reason).toBe("KcvMismatch");
    expect(error.message).not.toContain(dek.toString("hex"));
    expect(error.message).not.toContain(dek.toString("base64"));
  });

  it("classifies an unexpected failure as Error and an empty envelope as NoWraps", async () => {
    const { dek, envelope } = fixture();
    const error = (await unwrapDek(envelope, fakeKms(dek, { c: "boom" })).catch(
      (e) => e,
    )) as AgentUnwrapError;
    expect(error.reason).toBe("Error");
    const empty = createEnvelope(newDekID(), computeKcv(dek));
    await expect(unwrapDek(empty, fakeKms(dek, {}))).rejects.toMatchObject({ reason: "NoWraps" });
  });
});
