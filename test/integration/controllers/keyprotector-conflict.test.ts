import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KekProvider } from "../../../src/kms/provider.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { type Api, api, cond, type KeyProtector, kc, suffix, waitFor } from "./helpers.js";

const id = suffix();
const ns = `int-${id}`;
const opNs = `int-op-${id}`;
const name = "kp";
const [first, second] = ["k-first", "k-second"];
let a: Api;
let op: TestOperator | undefined;
let watch: { abort(): void } | undefined;

/** Every state of the KeyProtector the API server held, in order, as its watch delivered them. */
const seen: KeyProtector[] = [];

/**
 * The Local provider, with one hook: while the first probe of `first` is in flight, the
 * KeyProtector is pointed at `second`, so the status decided from that probe is decided from an
 * object that is no longer the latest when it is written.
 */
function repointingDuringProbe(state: { repointed: boolean }) {
  return (inner: KekProvider): KekProvider => ({
    name: inner.name,
    describe: async (r) => {
      if (r.keyName === first && !state.repointed) {
        state.repointed = true;
        await a.patch("KeyProtector", ns, name, { spec: { local: { secretRef: { name: second } } } });
      }
      return inner.describe(r);
    },
    listVersions: (r) => inner.listVersions(r),
    wrap: (r, d) => inner.wrap(r, d),
    unwrap: (r, w) => inner.unwrap(r, w),
  });
}

beforeAll(async () => {
  a = api(kc());
  const state = { repointed: false };
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    wrapLocal: repointingDuringProbe(state),
  });
  for (const k of [first, second]) await a.local.createKey(ns, k, { size: 2048 });
  watch = await new k8s.Watch(kc()).watch(
    `/apis/tde.dev/v1alpha1/namespaces/${ns}/keyprotectors`,
    {},
    (_type, obj: KeyProtector) => seen.push(obj),
    () => {},
  );
});

afterAll(async () => {
  watch?.abort();
  await op?.stop();
});

describe("R27 a KeyProtector status decided from an object that changed meanwhile", () => {
  it("is never written over the newer spec: the 409 makes the operator probe and decide again", async () => {
    await a.create("KeyProtector", ns, name, { provider: "Local", local: { secretRef: { name: first } } });
    const done = await waitFor(
      "the KeyProtector Accessible on the key it now names",
      () => a.get<KeyProtector>("KeyProtector", ns, name),
      (kp) =>
        cond(kp, "Accessible")?.status === "True" &&
        kp.status?.observedGeneration === kp.metadata?.generation &&
        (kp.status?.keyID ?? "").startsWith(`local://${ns}/${second}/`),
    );
    expect(done.metadata?.generation).toBe(2);
    // the watch has caught up with what the API server holds now
    await waitFor(
      "the watch to deliver the last state",
      async () => seen.at(-1)?.metadata?.resourceVersion,
      (rv) => rv === done.metadata?.resourceVersion,
    );
    const repointedAt = seen.findIndex((kp) => kp.spec?.local?.secretRef?.name === second);
    expect(repointedAt).toBeGreaterThanOrEqual(0);
    // the probe of the first key was decided, but its status never landed over the second
    const afterRepoint = seen.slice(repointedAt);
    for (const kp of afterRepoint) expect(kp.status?.keyID ?? "").not.toContain(`/${first}/`);
    // nor before it: the status decided from the first key conflicted and was dropped
    for (const kp of seen.slice(0, repointedAt)) expect(kp.status?.keyID).toBeUndefined();
    expect(afterRepoint.filter((kp) => kp.status?.keyID !== undefined).length).toBeGreaterThan(0);
  });
});
