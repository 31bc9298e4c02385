import { describe, expect, it } from "vitest";
import { chooseProtector } from "../../../src/controllers/protector-choice.js";

const cmk = (name: string) => ({ type: "CustomerManaged" as const, keyProtectorRef: { name } });
const smk = { type: "ServiceManaged" as const };

describe("chooseProtector", () => {
  it("R13 inherits the server's protector when the database sets none", () => {
    expect(chooseProtector(cmk("server-key"), undefined, undefined)).toEqual({
      choice: { source: "Server", type: "CustomerManaged", keyProtectorName: "server-key" },
    });
    expect(chooseProtector(smk, undefined, undefined).choice).toEqual({
      source: "Server",
      type: "ServiceManaged",
    });
  });

  it("R13/R14 a database-level protector overrides the server's and ignores later server changes", () => {
    const first = chooseProtector(cmk("server-a"), cmk("db-key"), undefined);
    expect(first.choice).toEqual({ source: "Database", type: "CustomerManaged", keyProtectorName: "db-key" });
    const afterServerChange = chooseProtector(cmk("server-b"), cmk("db-key"), first.choice);
    expect(afterServerChange.choice).toEqual(first.choice);
  });

  it("R15 refuses the service-managed key for a database on a customer-managed server and keeps the key", () => {
    const current = {
      source: "Server" as const,
      type: "CustomerManaged" as const,
      keyProtectorName: "server-key",
    };
    const d = chooseProtector(cmk("server-key"), smk, current);
    expect(d.refusal?.reason).toBe("ServiceManagedKeyNotAllowed");
    expect(d.refusal?.message).toMatch(/spec\.encryptionProtector/);
    expect(d.choice).toEqual(current);
  });

  it("R15 refuses a revert to the server level while the server is customer-managed", () => {
    const current = {
      source: "Database" as const,
      type: "CustomerManaged" as const,
      keyProtectorName: "db-key",
    };
    const d = chooseProtector(cmk("server-key"), undefined, current);
    expect(d.refusal?.reason).toBe("RevertToServerKeyNotAllowed");
    expect(d.choice).toEqual(current);
  });

  it("R15 allows the revert when the server uses the service-managed key", () => {
    const current = {
      source: "Database" as const,
      type: "CustomerManaged" as const,
      keyProtectorName: "db-key",
    };
    const d = chooseProtector(smk, undefined, current);
    expect(d.refusal).toBeUndefined();
    expect(d.choice).toEqual({ source: "Server", type: "ServiceManaged" });
  });
});
