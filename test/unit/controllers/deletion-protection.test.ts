/** R33: the protection of keys and envelopes in use, as a table of what is observed and what is done. */
import { describe, expect, it } from "vitest";
import {
  deletionBlockedMessage,
  type ProtectionInput,
  protectionStep,
} from "../../../src/controllers/deletion-protection.js";

const input = (o: Partial<ProtectionInput> = {}): ProtectionInput => ({
  deleting: false,
  protected: true,
  dependants: [],
  ...o,
});

describe("protectionStep (R33)", () => {
  it.each([
    ["a new object gets the finalizer, used or not", input({ protected: false }), "add"],
    [
      "a protected object not being deleted: nothing to do (no write)",
      input({ dependants: ["EncryptedServer a/s"] }),
      "none",
    ],
    [
      "a deletion with dependants waits",
      input({ deleting: true, dependants: ["EncryptedServer a/s"] }),
      "wait",
    ],
    ["a deletion with no dependants is released", input({ deleting: true }), "release"],
    [
      "a deletion of an object that was never protected is not ours",
      input({ deleting: true, protected: false }),
      "none",
    ],
  ])("%s", (_what, observed, step) => {
    expect(protectionStep(observed)).toBe(step);
  });
});

describe("deletionBlockedMessage (R33)", () => {
  it("names the subject and its dependants, sorted, and what to do", () => {
    const m = deletionBlockedMessage(
      "KeyProtector a/kp",
      ["EncryptedServer a/z", "EncryptedDatabase a/b"],
      "Point them at another key",
    );
    expect(m).toBe(
      "the deletion of KeyProtector a/kp waits (R33): 2 dependants use it: EncryptedDatabase a/b, EncryptedServer a/z. Point them at another key; it is deleted as soon as nothing uses it, and stays usable until then",
    );
  });

  it("names ten and counts the rest, the same for any order", () => {
    const many = Array.from({ length: 13 }, (_, i) => `EncryptedDatabase a/db-${String(i).padStart(2, "0")}`);
    const m = deletionBlockedMessage("KeyProtector a/kp", many, "x");
    expect(m).toContain("13 dependants use it");
    expect(m).toContain("db-09 and 3 more");
    expect(deletionBlockedMessage("KeyProtector a/kp", [...many].reverse(), "x")).toBe(m);
  });
});
