import { describe, expect, it } from "vitest";
import { customResourceDefinitions, type JsonSchema } from "../../../src/api/crd.js";

type Node = { path: string; schema: JsonSchema; inCel: boolean };

/** Every schema node of a CRD, with its path; `inCel` when a CEL rule at or above it may read it. */
function walk(schema: JsonSchema, path: string, inCel: boolean, out: Node[]): Node[] {
  const here = inCel || Array.isArray(schema["x-kubernetes-validations"]);
  out.push({ path, schema, inCel: here });
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) walk(v, `${path}.${k}`, here, out);
  if (schema.items) walk(schema.items as JsonSchema, `${path}[]`, here, out);
  return out;
}

const crds = customResourceDefinitions().map(({ fileName, crd }) => {
  const spec = crd.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[]; names: JsonSchema };
  const root = spec.versions[0]!.schema.openAPIV3Schema;
  return { fileName, crd, spec, nodes: walk(root, "", false, []) };
});

describe("the generated CRDs are structural and readable (R29, R30)", () => {
  for (const { fileName, spec, nodes } of crds) {
    describe(fileName, () => {
      it("names: group tde.dev, namespaced, category tde, one short name", () => {
        expect(spec.names.categories).toEqual(["tde"]);
        expect((spec.names.shortNames as string[]).length).toBe(1);
      });

      it("types every node and uses no anyOf/oneOf/allOf or TypeBox leftovers", () => {
        for (const { path, schema } of nodes) {
          expect(typeof schema.type, `${path} has no type`).toBe("string");
          for (const k of ["anyOf", "oneOf", "allOf", "not", "$id", "$ref", "const"])
            expect(schema[k], `${path}.${k}`).toBeUndefined();
        }
      });

      it("describes every field under spec and status for kubectl explain", () => {
        for (const { path, schema } of nodes.filter((n) => /^\.(spec|status)/.test(n.path))) {
          expect(typeof schema.description, `${path} has no description`).toBe("string");
          expect((schema.description as string).length, `${path} description is too short`).toBeGreaterThan(
            5,
          );
        }
      });

      it("bounds every list and string a CEL rule can read (cost estimation)", () => {
        // the only root rule reads spec.replication, never apiVersion, kind or status
        for (const { path, schema, inCel } of nodes.filter((n) => n.path.startsWith(".spec"))) {
          if (!inCel) continue;
          if (schema.type === "array") expect(schema.maxItems, `${path} needs maxItems`).toBeTypeOf("number");
          if (schema.type === "string" && !schema.enum)
            expect(schema.maxLength, `${path} needs maxLength`).toBeTypeOf("number");
        }
      });

      it("gives every CEL rule a message that names a field", () => {
        for (const { path, schema } of nodes) {
          for (const rule of (schema["x-kubernetes-validations"] as
            | { message?: string; messageExpression?: string }[]
            | undefined) ?? []) {
            // a messageExpression says the same, with the offending value in it
            expect(rule.message ?? rule.messageExpression, `${path}: a rule without a message`).toBeTypeOf(
              "string",
            );
          }
        }
      });

      it("has a status subresource and printer columns with Age last", () => {
        const version = (spec.versions as unknown as JsonSchema[])[0]!;
        expect(version.subresources).toEqual({ status: {} });
        const columns = version.additionalPrinterColumns as { name: string }[];
        expect(columns.at(-1)?.name).toBe("Age");
      });
    });
  }

  it("shows state, protector source, short thumbprint and key access for servers and databases", () => {
    const cols = (file: string) =>
      (
        (crds.find((c) => c.fileName === file)!.spec.versions as unknown as JsonSchema[])[0]!
          .additionalPrinterColumns as { name: string; jsonPath: string; priority?: number }[]
      )
        .filter((c) => !c.priority)
        .map((c) => c.name);
    expect(cols("tde.dev_encryptedservers.yaml")).toEqual([
      "State",
      "Protector",
      "Thumbprint",
      "Key Access",
      "Age",
    ]);
    expect(cols("tde.dev_encrypteddatabases.yaml")).toEqual([
      "Server",
      "State",
      "Source",
      "Thumbprint",
      "Key Access",
      "Age",
    ]);
    expect(cols("tde.dev_keyprotectors.yaml")).toEqual([
      "Provider",
      "Ready",
      "Accessible",
      "Thumbprint",
      "Age",
    ]);
  });
});
