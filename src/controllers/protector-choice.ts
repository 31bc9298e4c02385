/**
 * R13-R15: which protector a database's DEK should be wrapped by, and which changes are refused.
 * Pure: it reads specs and the current status, and decides.
 */
export type ProtectorType = "ServiceManaged" | "CustomerManaged";
export type ProtectorSource = "Database" | "Server";

export interface ProtectorChoice {
  source: ProtectorSource;
  type: ProtectorType;
  /** the KeyProtector in the resource's namespace; absent for the service-managed key */
  keyProtectorName?: string;
}

export interface ProtectorSpec {
  type: ProtectorType;
  keyProtectorRef?: { name: string };
}

export interface ProtectorDecision {
  /** the protector to use now; when a change is refused, the one in use stays */
  choice: ProtectorChoice;
  refusal?: { reason: ProtectorRefusalReason; message: string };
}

export type ProtectorRefusalReason = "ServiceManagedKeyNotAllowed" | "RevertToServerKeyNotAllowed";

function fromSpec(source: ProtectorSource, spec: ProtectorSpec): ProtectorChoice {
  return spec.type === "CustomerManaged" && spec.keyProtectorRef
    ? { source, type: "CustomerManaged", keyProtectorName: spec.keyProtectorRef.name }
    : { source, type: "ServiceManaged" };
}

/**
 * @param server the server's spec.protector
 * @param database the database's spec.encryptionProtector (absent: inherit the server's)
 * @param current the effective protector recorded in status (absent before the first wrap)
 */
export function chooseProtector(
  server: ProtectorSpec,
  database: ProtectorSpec | undefined,
  current: ProtectorChoice | undefined,
): ProtectorDecision {
  const serverChoice = fromSpec("Server", server);
  const keep = current ?? serverChoice;
  if (database) {
    if (database.type === "ServiceManaged" && server.type === "CustomerManaged") {
      return {
        choice: keep,
        refusal: {
          reason: "ServiceManagedKeyNotAllowed",
          message:
            "R15: the server uses a customer-managed key, so a database cannot choose the service-managed key; " +
            "set spec.encryptionProtector to a CustomerManaged keyProtectorRef or remove it to inherit the server's key. " +
            "The database keeps its current key.",
        },
      };
    }
    return { choice: fromSpec("Database", database) };
  }
  if (current?.source === "Database" && server.type === "CustomerManaged") {
    return {
      choice: current,
      refusal: {
        reason: "RevertToServerKeyNotAllowed",
        message:
          "R15: a database with its own protector cannot be reverted to the server level while the server uses a " +
          "customer-managed key; restore spec.encryptionProtector (or switch the server to the service-managed key first). " +
          "The database keeps its current key.",
      },
    };
  }
  return { choice: serverChoice };
}

export function sameChoice(a: ProtectorChoice | undefined, b: ProtectorChoice | undefined): boolean {
  return a?.source === b?.source && a?.type === b?.type && a?.keyProtectorName === b?.keyProtectorName;
}
