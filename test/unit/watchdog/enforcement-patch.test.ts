import { describe, expect, it } from "vitest";
import {
  decodePrevious,
  encodePrevious,
  patchHolds,
  patchLeaves,
  patchProblem,
  previousValues,
  restoringPatch,
} from "../../../src/watchdog/enforcement-patch.js";
import { selectorFromString, servedKinds } from "../../../src/watchdog/scale-client.js";

const hibernate = { metadata: { annotations: { "cnpg.io/hibernation": "on" } } };

describe("R10 R11 Patch enforcement gives back exactly what was there", () => {
  it("lists every field a merge patch sets", () => {
    expect(
      patchLeaves({ metadata: { annotations: { a: "1" } }, spec: { pause: true, tags: ["x"] } }),
    ).toEqual([
      { path: ["metadata", "annotations", "a"], value: "1" },
      { path: ["spec", "pause"], value: true },
      { path: ["spec", "tags"], value: ["x"] },
    ]);
  });

  it.each([
    [
      "an absent annotation is removed again",
      { metadata: {} },
      { metadata: { annotations: { "cnpg.io/hibernation": null } } },
    ],
    [
      "a present annotation gets its old value back",
      { metadata: { annotations: { "cnpg.io/hibernation": "off" } } },
      { metadata: { annotations: { "cnpg.io/hibernation": "off" } } },
    ],
  ])("%s", (_why, object, restore) => {
    const previous = previousValues(object, hibernate);
    expect(restoringPatch(decodePrevious(encodePrevious(previous)) ?? [])).toEqual(restore);
  });

  it("a spec field that held an object gets the whole object back", () => {
    const previous = previousValues({ spec: { backup: { schedule: "daily" } } }, {
      spec: { backup: "off" },
    } as never);
    expect(restoringPatch(previous)).toEqual({ spec: { backup: { schedule: "daily" } } });
  });

  it("knows when the patch already holds, so holding it writes nothing", () => {
    expect(patchHolds({ metadata: { annotations: { "cnpg.io/hibernation": "on" } } }, hibernate)).toBe(true);
    expect(patchHolds({ metadata: { annotations: { "cnpg.io/hibernation": "off" } } }, hibernate)).toBe(
      false,
    );
    expect(patchHolds({}, hibernate)).toBe(false);
  });

  it("reads back only a record it wrote", () => {
    expect(decodePrevious(undefined)).toBeUndefined();
    expect(decodePrevious("not json")).toBeUndefined();
    expect(decodePrevious('[{"path":[]}]')).toBeUndefined();
    expect(decodePrevious('{"path":["a"]}')).toBeUndefined();
  });

  it("refuses a patch that sets nothing or writes the operator's own annotations", () => {
    expect(patchProblem(undefined)).toContain("sets nothing");
    expect(patchProblem({ metadata: { annotations: { "tde.dev/previous-values": "x" } } })).toContain(
      "tde.dev/",
    );
    expect(patchProblem(hibernate)).toBeUndefined();
  });
});

describe("R10 discovery and /scale", () => {
  it("a kind serves /scale when its group/version lists <plural>/scale", () => {
    const kinds = servedKinds("postgresql.cnpg.io/v1", [
      { name: "clusters", kind: "Cluster", namespaced: true },
      { name: "clusters/scale", kind: "Scale", namespaced: true },
      { name: "clusters/status", kind: "Cluster", namespaced: true },
      { name: "backups", kind: "Backup", namespaced: true },
    ]);
    expect(kinds.get("Cluster")).toEqual({
      resource: {
        group: "postgresql.cnpg.io",
        version: "v1",
        plural: "clusters",
        kind: "Cluster",
        namespaced: true,
      },
      servesScale: true,
    });
    expect(kinds.get("Backup")?.servesScale).toBe(false);
    expect(
      servedKinds("v1", [{ name: "pods", kind: "Pod", namespaced: true }]).get("Pod")?.resource.group,
    ).toBe("");
  });

  it.each([
    ["app=pg", { matchLabels: { app: "pg" } }],
    ["cnpg.io/cluster=pg,role==primary", { matchLabels: { "cnpg.io/cluster": "pg", role: "primary" } }],
    ["app in (a,b)", undefined],
    ["!app", undefined],
    ["", undefined],
  ])("the selector %j becomes %j", (selector, expected) => {
    expect(selectorFromString(selector)).toEqual(expected);
  });
});
