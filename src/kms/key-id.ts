/**
 * The key a full key id names, without its version: AzureKeyVault's
 * `https://VAULT/keys/NAME/VERSION` and Local's `local://NAMESPACE/NAME/VERSION` both end in their
 * version, so two ids name versions of one key when the rest is the same. Anything else (an id
 * without a version, a shape no provider makes) is returned as it is: it names only itself.
 */
export function keyWithoutVersion(keyID: string): string {
  const m = /^([a-z]+):\/\/(.+)$/.exec(keyID);
  if (!m) return keyID;
  const parts = m[2]!.split("/");
  const versioned =
    m[1] === "local" ? parts.length === 3 : parts.length === 4 && parts[1]!.toLowerCase() === "keys";
  return versioned && parts.every((p) => p !== "") ? keyID.slice(0, keyID.lastIndexOf("/")) : keyID;
}

/** Whether two full key ids are two versions of one key (a rotation), not two keys. */
export function sameKeyOtherVersion(a: string, b: string): boolean {
  return a !== b && keyWithoutVersion(a) === keyWithoutVersion(b);
}
