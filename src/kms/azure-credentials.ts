/**
 * How the operator and the agent authenticate to Key Vault: one @azure/identity credential per
 * KeyProtector identity (spec.identity), for the public cloud or a sovereign one (authority
 * host, token-exchange audience), through a proxy or a private CA when the platform needs them.
 */
import { readFile } from "node:fs/promises";
// Types only: @azure/identity is loaded on the first Azure key.
import type { TokenCredential, TokenCredentialOptions } from "@azure/identity";
import { type IdentitySpec, KeyAccessError } from "./provider.js";

export type ReadSecret = (namespace: string, name: string, key: string) => Promise<string>;

/** Entra ID's audience for federated assertions, by cloud (workload identity federation). */
export const TOKEN_EXCHANGE_AUDIENCES = {
  public: "api://AzureADTokenExchange",
  usGovernment: "api://AzureADTokenExchangeUSGov",
  china: "api://AzureADTokenExchangeChina",
} as const;

export interface AzureCredentialOptions {
  /** Reads a client secret (ClientSecret identities). */
  readSecret?: ReadSecret;
  /** The projected service-account token (cross-tenant keys with WorkloadIdentity). Default $AZURE_FEDERATED_TOKEN_FILE. */
  federatedTokenFile?: string;
  /** Entra ID's host for a sovereign cloud (e.g. https://login.microsoftonline.us). Default: the SDK's ($AZURE_AUTHORITY_HOST, else the public cloud). */
  authorityHost?: string;
  /** The audience of the federated assertion for a cross-tenant key. Default: the public cloud's. */
  tokenExchangeAudience?: string;
  /** TLS and proxy settings shared with the vault's client (a private CA, HTTPS_PROXY). */
  clientOptions?: Pick<TokenCredentialOptions, "tlsOptions" | "proxyOptions">;
}

/** Makes the credential an identity spec names. Errors are KeyAccessErrors that say what to fix. */
export async function makeAzureCredential(
  identity: IdentitySpec,
  namespace: string,
  options: AzureCredentialOptions,
): Promise<TokenCredential> {
  const common: TokenCredentialOptions = {
    ...options.clientOptions,
    ...(options.authorityHost ? { authorityHost: options.authorityHost } : {}),
  };
  const home = await homeCredential(identity, namespace, options, common);
  if (!identity.federatedClientID) return home;
  // A key in another tenant: a multi-tenant app there trusts our workload identity.
  if (!identity.tenantID) {
    throw new KeyAccessError(
      "AuthenticationFailed",
      "a cross-tenant key needs identity.tenantID with identity.federatedClientID",
    );
  }
  const scope = `${options.tokenExchangeAudience ?? TOKEN_EXCHANGE_AUDIENCES.public}/.default`;
  const tokenFile = options.federatedTokenFile ?? process.env.AZURE_FEDERATED_TOKEN_FILE;
  const assertion =
    identity.type === "WorkloadIdentity" && tokenFile
      ? async () => (await readFile(tokenFile, "utf8")).trim()
      : async () => {
          const token = await home.getToken(scope);
          if (!token) throw new Error("the home identity returned no token for the federated assertion");
          return token.token;
        };
  const { ClientAssertionCredential } = await import("@azure/identity");
  return new ClientAssertionCredential(identity.tenantID, identity.federatedClientID, assertion, common);
}

async function homeCredential(
  identity: IdentitySpec,
  namespace: string,
  options: AzureCredentialOptions,
  common: TokenCredentialOptions,
): Promise<TokenCredential> {
  const {
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
  } = await import("@azure/identity");
  switch (identity.type) {
    case "WorkloadIdentity":
      return new WorkloadIdentityCredential({
        ...common,
        ...(identity.clientID ? { clientId: identity.clientID } : {}),
        ...(identity.tenantID && !identity.federatedClientID ? { tenantId: identity.tenantID } : {}),
      });
    case "ManagedIdentity":
      // without a client id: the system-assigned identity of the node or pod
      return identity.clientID
        ? new ManagedIdentityCredential({ ...common, clientId: identity.clientID })
        : new ManagedIdentityCredential(common);
    case "ClientSecret": {
      const ref = identity.clientSecretRef;
      if (!ref || !identity.clientID || !identity.tenantID) {
        throw new KeyAccessError(
          "AuthenticationFailed",
          "a ClientSecret identity needs clientID, tenantID and clientSecretRef",
        );
      }
      if (!options.readSecret) {
        throw new KeyAccessError(
          "AuthenticationFailed",
          "this operator was started without a way to read client secrets",
        );
      }
      let secret: string;
      try {
        secret = await options.readSecret(namespace, ref.name, ref.key);
      } catch {
        throw new KeyAccessError(
          "AuthenticationFailed",
          `the client secret ${namespace}/${ref.name} (key ${ref.key}) could not be read; check that it exists and the operator may read it`,
        );
      }
      return new ClientSecretCredential(identity.tenantID, identity.clientID, secret, common);
    }
    default:
      return new DefaultAzureCredential({
        ...common,
        ...(identity.clientID ? { managedIdentityClientId: identity.clientID } : {}),
      });
  }
}
