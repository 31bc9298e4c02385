/**
 * Writes the CRDs generated from src/api/schema to crds/, the Helm chart's crds/ and the kustomize
 * base's crds/ (kustomize reads only inside its folder, so the base keeps a copy).
 * Usage: npm run generate
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { customResourceDefinitions, renderCustomResourceDefinition } from "../src/api/crd.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Every folder that holds a copy of the CRDs. */
export const CRD_FOLDERS = ["crds", join("charts", "tde-operator", "crds"), join("deploy", "base", "crds")];

for (const folder of CRD_FOLDERS) {
  mkdirSync(join(root, folder), { recursive: true });
  for (const { fileName, crd } of customResourceDefinitions()) {
    const path = join(root, folder, fileName);
    writeFileSync(path, renderCustomResourceDefinition(crd));
    process.stdout.write(`wrote ${join(folder, fileName)}\n`);
  }
}
