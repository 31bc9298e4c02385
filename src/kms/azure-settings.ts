/**
 * The platform's settings for reaching Azure Key Vault (flags, environment, chart values), turned
 * into the provider's options once at start-up: shared by the operator and tde-agent.
 */
import { readFileSync } from "node:fs";
import type { AzureKeyVaultProviderOptions } from "./azure-key-vault.js";

export interface AzureSettings {
  /** emulators and vaults behind custom DNS: accept a challenge resource outside the vault's domain */
  disableChallengeResourceVerification: boolean;
  /** PEM file of CA certificates trusted besides the public roots */
  caFile?: string;
  /** Entra ID's host for a sovereign cloud */
  authorityHost?: string;
  /** the federated assertion's audience for cross-tenant keys in a sovereign cloud */
  tokenExchangeAudience?: string;
}

/** The flags of the operator and the agent that carry these settings. */
export const AZURE_SETTING_FLAGS = {
  "azure-ca-file": { type: "string" },
  "azure-disable-challenge-resource-verification": { type: "boolean" },
  "azure-authority-host": { type: "string" },
  "azure-token-exchange-audience": { type: "string" },
} as const;

/** The usage lines of those flags. */
export const AZURE_SETTINGS_USAGE = `  --azure-ca-file PATH       PEM CA certificates to trust besides the public roots (TDE_AZURE_CA_FILE)
  --azure-disable-challenge-resource-verification
                             accept a vault outside the cloud's vault domain: emulators, custom DNS
                             (TDE_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION; off)
  --azure-authority-host URL Entra ID for a sovereign cloud (AZURE_AUTHORITY_HOST; the public cloud)
  --azure-token-exchange-audience A
                             cross-tenant keys: the federated assertion's audience
                             (TDE_AZURE_TOKEN_EXCHANGE_AUDIENCE; api://AzureADTokenExchange)
  HTTPS_PROXY and NO_PROXY are honoured as usual.`;

/**
 * Reads the settings from parsed flags and the environment (flags win). Pure; a bad value
 * throws an Error naming the flag, its variable and the fix.
 */
export function parseAzureSettings(
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
): AzureSettings {
  const text = (flag: string, name: string) => {
    const given = flags[flag];
    const value = (typeof given === "string" ? given : env[name])?.trim();
    return value ? value : undefined;
  };
  const flag = flags["azure-disable-challenge-resource-verification"];
  const envFlag = env.TDE_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION?.trim();
  if (envFlag !== undefined && !["", "true", "false"].includes(envFlag))
    throw new Error(
      `TDE_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION must be true or false, got "${envFlag}"`,
    );
  const authorityHost = text("azure-authority-host", "AZURE_AUTHORITY_HOST");
  if (authorityHost && !/^https:\/\/[^/\s]+\/?$/.test(authorityHost))
    throw new Error(
      `--azure-authority-host (AZURE_AUTHORITY_HOST) must be an https URL with no path, such as https://login.microsoftonline.us, got "${authorityHost}"`,
    );
  const caFile = text("azure-ca-file", "TDE_AZURE_CA_FILE");
  const audience = text("azure-token-exchange-audience", "TDE_AZURE_TOKEN_EXCHANGE_AUDIENCE");
  return {
    disableChallengeResourceVerification: flag === true || (flag === undefined && envFlag === "true"),
    ...(caFile ? { caFile } : {}),
    ...(authorityHost ? { authorityHost } : {}),
    ...(audience ? { tokenExchangeAudience: audience } : {}),
  };
}

type SettingsOptions = Pick<
  AzureKeyVaultProviderOptions,
  "disableChallengeResourceVerification" | "caCertificates" | "authorityHost" | "tokenExchangeAudience"
>;

/** The provider options for these settings; a CA file that cannot be used fails with what to fix. */
export function azureProviderOptions(settings: AzureSettings | undefined): SettingsOptions {
  if (!settings) return {};
  let caCertificates: string | undefined;
  if (settings.caFile) {
    try {
      caCertificates = readFileSync(settings.caFile, "utf8");
    } catch (error) {
      throw new Error(
        `--azure-ca-file ${settings.caFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): mount the CA bundle there or unset it`,
      );
    }
    if (!caCertificates.includes("-----BEGIN CERTIFICATE-----"))
      throw new Error(
        `--azure-ca-file ${settings.caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA certificates in PEM`,
      );
  }
  return {
    disableChallengeResourceVerification: settings.disableChallengeResourceVerification,
    ...(caCertificates ? { caCertificates } : {}),
    ...(settings.authorityHost ? { authorityHost: settings.authorityHost } : {}),
    ...(settings.tokenExchangeAudience ? { tokenExchangeAudience: settings.tokenExchangeAudience } : {}),
  };
}
