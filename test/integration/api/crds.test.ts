import { describe, expect, it } from "vitest";
import { testKubeConfig } from "../../harness/kube.js";
import { installCrds } from "./install.js";

describe("the generated CRDs on a real API server", () => {
  it("R30 are accepted and become Established (CEL rules compile within the cost budget)", async () => {
    await installCrds(testKubeConfig());
  });
});
