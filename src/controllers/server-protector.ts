import { type EncryptedServer, type EncryptedServerStatus, shortThumbprint } from "../api/index.js";
import type { Kek } from "./dek-operations.js";

type Choice = { type: "ServiceManaged" | "CustomerManaged"; keyProtectorName?: string };

/** R9: the protector a server's spec asks for. */
export function serverChoice(server: { spec: Pick<EncryptedServer["spec"], "protector"> }): Choice {
  return {
    type: server.spec.protector.type,
    ...(server.spec.protector.keyProtectorRef
      ? { keyProtectorName: server.spec.protector.keyProtectorRef.name }
      : {}),
  };
}

/**
 * R9, R16, R33: `status.protector` from the wrap that protects the DEK. The KeyProtector is named
 * once the wrap is under the resolved key; until then (a re-wrap pending or failed) the status
 * keeps the one it recorded. While the watchdog watches the key it last knew (`watchingRecorded`,
 * the KeyProtector asked for does not resolve), the recorded type stays too.
 */
export function serverProtectorStatus(
  recorded: EncryptedServerStatus["protector"] | undefined,
  choice: Choice,
  watchingRecorded: boolean,
  resolved: Pick<Kek, "thumbprint" | "keyProtectorName">,
  wrap: { keyID: string; thumbprint: string },
): NonNullable<EncryptedServerStatus["protector"]> {
  const name =
    resolved.keyProtectorName && wrap.thumbprint === resolved.thumbprint
      ? resolved.keyProtectorName
      : recorded?.keyProtectorName;
  return {
    type: watchingRecorded ? (recorded?.type ?? choice.type) : choice.type,
    ...(name ? { keyProtectorName: name } : {}),
    keyID: wrap.keyID,
    thumbprint: wrap.thumbprint,
    thumbprintShort: shortThumbprint(wrap.thumbprint),
  };
}
