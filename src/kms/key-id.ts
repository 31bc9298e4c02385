import { parseKeyID } from "./azure-key-vault.js";
import { parseLocalKeyID } from "./local-key-format.js";

/**
 * The key a full key id names, without its version, read by each provider's own parser: two ids
 * name versions of one key when these are equal. An id without a version, or one no provider
 * makes, is returned as it is: it names only itself.
 */
export function keyWithoutVersion(keyID: string): string {
  const local = parseLocalKeyID(keyID);
  if (local) return `local://${local.namespace}/${local.name}`;
  const azure = parseKeyID(keyID);
  return azure?.version ? `${azure.vaultURL}/keys/${azure.name}` : keyID;
}

/** Whether two full key ids are two versions of one key (a rotation), not two keys. */
export function sameKeyOtherVersion(a: string, b: string): boolean {
  return a !== b && keyWithoutVersion(a) === keyWithoutVersion(b);
}
