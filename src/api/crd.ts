/**
 * The CustomResourceDefinitions, built from the TypeBox schemas: the same objects that give the
 * TypeScript types give the openAPIV3Schema. scripts/generate.ts writes them to crds/.
 */
import type { TSchema } from "@sinclair/typebox";
import { stringify } from "yaml";
import {
  CATEGORY,
  GROUP,
  KINDS,
  type KindName,
  PLURALS,
  SHORT_NAMES,
  SINGULARS,
  VERSION,
} from "./constants.js";
import { type CelRule, VALIDATIONS } from "./schema/common.js";
import { EncryptedDatabaseSpecSchema, EncryptedDatabaseStatusSchema } from "./schema/encrypteddatabase.js";
import { EncryptedServerSpecSchema, EncryptedServerStatusSchema } from "./schema/encryptedserver.js";
import { KeyProtectorSpecSchema, KeyProtectorStatusSchema } from "./schema/keyprotector.js";

/** A JSON value of an OpenAPI schema, without TypeBox's symbols. */
export type JsonSchema = { [key: string]: unknown };

const DROPPED_KEYS = new Set(["$id", "$schema", "$ref", "$defs", "examples"]);
/** Keys written first in every node, so the YAML reads top-down. */
const FIRST_KEYS = ["description", "type"];

/**
 * A plain OpenAPI v3 schema from a TypeBox schema: symbol keys (TypeBox's Kind, Optional) and
 * keywords the API server does not take are dropped; key order is kept for stable output.
 */
export function toOpenAPI(schema: TSchema | JsonSchema): JsonSchema {
  return strip(schema) as JsonSchema;
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== "object") return value;
  const out: JsonSchema = {};
  const keys = Object.keys(value);
  const first = FIRST_KEYS.filter((k) => keys.includes(k));
  for (const key of [...first, ...keys.filter((k) => !FIRST_KEYS.includes(k))]) {
    if (DROPPED_KEYS.has(key)) continue;
    out[key] = strip((value as JsonSchema)[key]);
  }
  return out;
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

const conditionColumn = (
  name: string,
  type: string,
  description: string,
  priority?: number,
): PrinterColumn => ({
  name,
  type: "string",
  jsonPath: `.status.conditions[?(@.type=="${type}")].status`,
  description,
  ...(priority ? { priority } : {}),
});
const age: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
};

interface KindDefinition {
  kind: KindName;
  description: string;
  spec: TSchema;
  status: TSchema;
  columns: PrinterColumn[];
  rootRules?: CelRule[];
}

const DEFINITIONS: KindDefinition[] = [
  {
    kind: "KeyProtector",
    description:
      "KeyProtector names a key-encryption key (KEK) in Azure Key Vault or in a Kubernetes Secret (Local), how the operator authenticates to it, and what the key must satisfy. Its status proves the key usable: Ready, Accessible and RequirementsMet.",
    spec: KeyProtectorSpecSchema,
    status: KeyProtectorStatusSchema,
    columns: [
      {
        name: "Provider",
        type: "string",
        jsonPath: ".spec.provider",
        description: "AzureKeyVault or Local.",
      },
      conditionColumn("Ready", "Ready", "Whether the key may protect DEKs."),
      conditionColumn("Accessible", "Accessible", "Whether the last probe of the key succeeded."),
      {
        name: "Thumbprint",
        type: "string",
        jsonPath: ".status.thumbprintShort",
        description: "Short thumbprint of the key material.",
      },
      {
        name: "Version",
        type: "string",
        jsonPath: ".status.keyVersion",
        description: "The resolved key version.",
        priority: 1,
      },
      age,
    ],
  },
  {
    kind: "EncryptedServer",
    description:
      "EncryptedServer holds a database server's data-encryption key (DEK), wrapped by a service-managed or customer-managed key, and enforces loss of key access on the server's workload after a grace period.",
    spec: EncryptedServerSpecSchema,
    status: EncryptedServerStatusSchema,
    columns: [
      { name: "State", type: "string", jsonPath: ".status.state", description: "The server's state." },
      {
        name: "Protector",
        type: "string",
        jsonPath: ".status.protector.type",
        description: "ServiceManaged or CustomerManaged.",
      },
      {
        name: "Thumbprint",
        type: "string",
        jsonPath: ".status.protector.thumbprintShort",
        description: "Short thumbprint of the protector.",
      },
      conditionColumn("Key Access", "KeyAccessible", "Whether the protector can unwrap the DEK."),
      conditionColumn("Ready", "Ready", "Whether the server is Available.", 1),
      {
        name: "KeyProtector",
        type: "string",
        jsonPath: ".status.protector.keyProtectorName",
        description: "The KeyProtector of a customer-managed protector.",
        priority: 1,
      },
      age,
    ],
  },
  {
    kind: "EncryptedDatabase",
    description:
      "EncryptedDatabase holds one database's own data-encryption key (DEK), wrapped by the database's protector or its server's, with its key history, geo-replication and restore source.",
    spec: EncryptedDatabaseSpecSchema,
    status: EncryptedDatabaseStatusSchema,
    columns: [
      {
        name: "Server",
        type: "string",
        jsonPath: ".spec.serverRef.name",
        description: "The EncryptedServer.",
      },
      { name: "State", type: "string", jsonPath: ".status.state", description: "The database's state." },
      {
        name: "Source",
        type: "string",
        jsonPath: ".status.effectiveProtector.source",
        description: "Where the protector comes from: Database or Server.",
      },
      {
        name: "Thumbprint",
        type: "string",
        jsonPath: ".status.effectiveProtector.thumbprintShort",
        description: "Short thumbprint of the effective protector.",
      },
      conditionColumn("Key Access", "KeyAccessible", "Whether the protector can unwrap the DEK."),
      {
        name: "Type",
        type: "string",
        jsonPath: ".status.effectiveProtector.type",
        description: "ServiceManaged or CustomerManaged.",
        priority: 1,
      },
      {
        name: "Role",
        type: "string",
        jsonPath: ".spec.replication.role",
        description: "Replication role.",
        priority: 1,
      },
      conditionColumn("Ready", "Ready", "Whether the database is Available.", 1),
      age,
    ],
    rootRules: [
      {
        rule: "!has(self.spec.replication) || !has(self.spec.replication.primaryRef) || has(self.spec.replication.primaryRef.namespace) || has(self.spec.replication.primaryRef.cluster) || self.spec.replication.primaryRef.name != self.metadata.name",
        message:
          "spec.replication.primaryRef names this database itself: a secondary's primary must be another EncryptedDatabase",
        fieldPath: ".spec.replication.primaryRef",
        reason: "FieldValueInvalid",
      },
    ],
  },
];

function rootSchema(def: KindDefinition): JsonSchema {
  const schema: JsonSchema = {
    description: def.description,
    type: "object",
    required: ["spec"],
    properties: {
      apiVersion: {
        description:
          "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
        type: "string",
      },
      kind: {
        description:
          "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.",
        type: "string",
      },
      metadata: { type: "object" },
      spec: toOpenAPI(def.spec),
      status: toOpenAPI(def.status),
    },
  };
  if (def.rootRules) schema[VALIDATIONS] = def.rootRules;
  return schema;
}

/** The CRD of one kind, as a plain object ready for YAML or the API. */
export function customResourceDefinition(kind: KindName): JsonSchema {
  const def = DEFINITIONS.find((d) => d.kind === kind);
  if (!def) throw new Error(`no definition for kind ${kind}`);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURALS[kind]}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind,
        listKind: `${kind}List`,
        plural: PLURALS[kind],
        singular: SINGULARS[kind],
        shortNames: [SHORT_NAMES[kind]],
        categories: [CATEGORY],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.columns,
          schema: { openAPIV3Schema: rootSchema(def) },
        },
      ],
    },
  };
}

/** Every CRD, with the file name it is written to under crds/. */
export function customResourceDefinitions(): { fileName: string; crd: JsonSchema }[] {
  return (Object.keys(KINDS) as KindName[]).map((kind) => ({
    fileName: `${GROUP}_${PLURALS[kind]}.yaml`,
    crd: customResourceDefinition(kind),
  }));
}

/** The header of every generated CRD file. */
export const GENERATED_HEADER =
  "# Generated by `npm run generate` from src/api/schema/*.ts. Do not edit: change the schema and regenerate.\n";

/** The exact text of a generated CRD file. */
export function renderCustomResourceDefinition(crd: JsonSchema): string {
  return `${GENERATED_HEADER}${stringify(crd, { lineWidth: 0 })}`;
}
