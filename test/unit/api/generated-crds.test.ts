import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { customResourceDefinitions, renderCustomResourceDefinition } from "../../../src/api/crd.js";

const root = join(import.meta.dirname, "..", "..", "..");

describe("R30 the committed CRDs are the generated ones", () => {
  for (const folder of ["crds", join("charts", "tde-operator", "crds")]) {
    for (const { fileName, crd } of customResourceDefinitions()) {
      it(`${join(folder, fileName)} matches src/api/schema`, () => {
        let committed = "";
        try {
          committed = readFileSync(join(root, folder, fileName), "utf8");
        } catch {
          // reported below
        }
        const fresh = renderCustomResourceDefinition(crd);
        expect(
          committed === fresh,
          `${join(folder, fileName)} is missing or differs from src/api/schema: run \`npm run generate\` and commit the result`,
        ).toBe(true);
      });
    }
  }
});
