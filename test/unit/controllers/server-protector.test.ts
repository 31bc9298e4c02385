import { describe, expect, it } from "vitest";
import { serverChoice, serverProtectorStatus } from "../../../src/controllers/server-protector.js";
import { tp } from "./fixtures.js";

const A = tp("a");
const B = tp("b");
const recorded = {
  type: "CustomerManaged" as const,
  keyProtectorName: "old",
  keyID: "k-a",
  thumbprint: A,
  thumbprintShort: "a",
};

describe("R9 R16 R33 a server's status.protector (server-protector.ts)", () => {
  it.each<[string, Parameters<typeof serverProtectorStatus>, Record<string, unknown>]>([
    [
      "R9 the DEK under the resolved key: its KeyProtector is named",
      [
        recorded,
        { type: "CustomerManaged", keyProtectorName: "new" },
        false,
        { thumbprint: B, keyProtectorName: "new" },
        { keyID: "k-b", thumbprint: B },
      ],
      { type: "CustomerManaged", keyProtectorName: "new", keyID: "k-b", thumbprint: B },
    ],
    [
      "R16 a re-wrap pending or failed: the recorded KeyProtector and the wrap that still protects",
      [
        recorded,
        { type: "CustomerManaged", keyProtectorName: "new" },
        false,
        { thumbprint: B, keyProtectorName: "new" },
        { keyID: "k-a", thumbprint: A },
      ],
      { type: "CustomerManaged", keyProtectorName: "old", keyID: "k-a", thumbprint: A },
    ],
    [
      "R33 watching the recorded key (the KeyProtector asked for is gone): the recorded type stays",
      [
        recorded,
        { type: "ServiceManaged" },
        true,
        { thumbprint: A, keyProtectorName: "old" },
        { keyID: "k-a", thumbprint: A },
      ],
      { type: "CustomerManaged", keyProtectorName: "old" },
    ],
    [
      "R7 R9 the service-managed key names no KeyProtector",
      [undefined, { type: "ServiceManaged" }, false, { thumbprint: B }, { keyID: "k-b", thumbprint: B }],
      { type: "ServiceManaged", keyID: "k-b" },
    ],
  ])("%s", (_n, args, want) => {
    const status = serverProtectorStatus(...args);
    expect(status).toMatchObject(want);
    expect(status.thumbprintShort).toBe(args[4].thumbprint.slice(0, status.thumbprintShort.length));
    if (!("keyProtectorName" in want)) expect(status.keyProtectorName).toBeUndefined();
  });

  it("R9 the choice a server's spec asks for", () => {
    expect(serverChoice({ spec: { protector: { type: "ServiceManaged" } } })).toEqual({
      type: "ServiceManaged",
    });
    expect(
      serverChoice({ spec: { protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp" } } } }),
    ).toEqual({ type: "CustomerManaged", keyProtectorName: "kp" });
  });
});
