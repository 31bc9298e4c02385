/** R32: an envelope's owner is found by its full name, never by the (possibly shortened) label. */
import { describe, expect, it } from "vitest";
import { envelopeOwnerName } from "../../../src/controllers/envelope-owner.js";
import {
  computeKcv,
  createEnvelope,
  envelopeSecret,
  generateDek,
  withOwnerBinding,
} from "../../../src/crypto/index.js";
import type { KubeObject } from "../../../src/runtime/index.js";
import { labelValueFor } from "../../../src/runtime/names.js";

const longName = `${"a".repeat(70)}.orders`;

function secret(opts: { label?: string; annotation?: string; bound?: string; kind?: string }): KubeObject {
  let envelope = createEnvelope("dek-1", computeKcv(generateDek()));
  if (opts.bound)
    envelope = withOwnerBinding(envelope, {
      kind: "EncryptedDatabase",
      namespace: "a",
      name: opts.bound,
      tag: "0".repeat(64),
    });
  return envelopeSecret("a", "tde-edb-x", envelope, {
    labels: {
      "tde.dev/owner-kind": opts.kind ?? "EncryptedDatabase",
      ...(opts.label ? { "tde.dev/owner-name": opts.label } : {}),
    },
    ...(opts.annotation ? { annotations: { "tde.dev/owner-name": opts.annotation } } : {}),
  }) as unknown as KubeObject;
}

describe("envelopeOwnerName (R32)", () => {
  it.each([
    [
      "the annotation wins over a shortened label",
      { label: labelValueFor(longName), annotation: longName },
      longName,
    ],
    [
      "without an annotation, the owner binding",
      { label: labelValueFor(longName), bound: longName },
      longName,
    ],
    ["an envelope from before both: the label", { label: "orders" }, "orders"],
    ["another kind's envelope is not this kind's", { label: "orders", kind: "EncryptedServer" }, undefined],
  ])("%s", (_what, opts, expected) => {
    expect(envelopeOwnerName(secret(opts), "EncryptedDatabase")).toBe(expected);
  });
});
