/**
 * Reading the envelope the way a pod sees it. Three shapes are accepted:
 *
 * 1. the Secret mounted as a volume: a directory with one file per data key (`envelope.json`),
 *    plus the kubelet's `..data` links, which are skipped;
 * 2. a Secret manifest file, JSON or YAML (`data` base64, `stringData` plain), type checked;
 * 3. the envelope document itself (a single key mounted with `subPath` or `items`).
 */
import { promises as fs } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  decodeEnvelope,
  decodeEnvelopeSecret,
  ENVELOPE_DATA_KEY,
  type Envelope,
  EnvelopeError,
  envelopeFromDocument,
} from "../crypto/index.js";

/** The envelope could not be found or read: exit code 65 with this message. */
export class EnvelopeSourceError extends Error {
  override readonly name = "EnvelopeSourceError";
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The data map (base64 values) of a Secret mounted as a directory. */
async function readMountedSecret(dir: string): Promise<Record<string, string>> {
  const data: Record<string, string> = {};
  for (const name of await fs.readdir(dir)) {
    // The kubelet's atomic-writer keeps `..data` and `..<timestamp>` beside the key links.
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    const stat = await fs.stat(path).catch(() => undefined);
    if (!stat?.isFile()) continue;
    data[name] = (await fs.readFile(path)).toString("base64");
  }
  return data;
}

function fromManifest(document: Record<string, unknown>, path: string): Envelope {
  const data: Record<string, string> = {};
  if (document.data !== undefined) {
    if (!isRecord(document.data)) throw new EnvelopeSourceError(`${path}: the Secret's data is not a map`);
    for (const [k, v] of Object.entries(document.data)) if (typeof v === "string") data[k] = v;
  }
  if (isRecord(document.stringData)) {
    for (const [k, v] of Object.entries(document.stringData)) {
      if (typeof v === "string") data[k] = Buffer.from(v, "utf8").toString("base64");
    }
  }
  return decodeEnvelopeSecret({ type: typeof document.type === "string" ? document.type : undefined, data });
}

/** Reads and validates the envelope at `path` (directory, Secret manifest or envelope document). */
export async function readEnvelope(path: string): Promise<Envelope> {
  const stat = await fs.stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new EnvelopeSourceError(
      `cannot read the envelope at ${path}: ${error.code === "ENOENT" ? "no such file or directory" : error.message}. ` +
        "Mount the envelope Secret named in the resource's status (status.envelopeSecretName) there",
    );
  });
  try {
    if (stat.isDirectory()) {
      const data = await readMountedSecret(path);
      if (data[ENVELOPE_DATA_KEY] === undefined) {
        const found = Object.keys(data);
        throw new EnvelopeSourceError(
          `${path} has no ${ENVELOPE_DATA_KEY} (found: ${found.length ? found.join(", ") : "nothing"}): ` +
            "mount the envelope Secret (type tde.dev/envelope) itself",
        );
      }
      return decodeEnvelope(data);
    }
    const text = await fs.readFile(path, "utf8");
    let document: unknown;
    try {
      document = text.trimStart().startsWith("{") ? JSON.parse(text) : parseYaml(text);
    } catch (error) {
      throw new EnvelopeSourceError(`${path} is neither JSON nor YAML: ${(error as Error).message}`);
    }
    if (!isRecord(document)) throw new EnvelopeSourceError(`${path} does not hold an object`);
    if (document.kind === "Secret") return fromManifest(document, path);
    if ("wraps" in document && "kcv" in document) return envelopeFromDocument(document);
    throw new EnvelopeSourceError(
      `${path} is neither a Secret manifest nor an envelope document (it has no "kind: Secret" nor "wraps")`,
    );
  } catch (error) {
    if (error instanceof EnvelopeError) throw new EnvelopeSourceError(`${path}: ${error.message}`);
    throw error;
  }
}
