/**
 * Pure classification of Azure Key Vault / Entra ID failures into KeyAccessReasons (R10).
 *
 * Azure and Lowkey Vault differ (see docs/key-management.md): Azure answers 403 to a crypto
 * operation on a disabled key, Lowkey Vault answers 500 (and 404 "not allowed on a disabled
 * entity" to `get`). 403 and 500 are "ambiguous": the provider
 * confirms by describing the key before choosing between KeyDisabled/KeyExpired/KeyNotYetActive
 * and PermissionDenied/VaultUnreachable.
 */
import { parseRetryAfter } from "./kube-errors.js";
import type { KeyAccessReason } from "./provider.js";

export interface AzureErrorFacts {
  name?: string;
  statusCode?: number;
  /** error.code of the REST body (or the RestError code). */
  code?: string;
  /** error.innererror.code of the REST body. */
  innerCode?: string;
  message?: string;
  retryAfterMs?: number;
  /** a transport failure: no response at all */
  network: boolean;
  /** the vault's certificate did not verify against the trusted CAs */
  tlsTrust?: boolean;
}

export interface AzureClassification {
  reason: KeyAccessReason;
  /** true when describing the key could give a more precise reason (disabled, expired, not yet active). */
  confirmByDescribe: boolean;
  retryAfterMs?: number;
  /** what to change in the operator's own configuration, when that is the cause */
  advice?: string;
}

const AUTH_ERROR_NAMES = new Set([
  "AuthenticationError",
  "AggregateAuthenticationError",
  "CredentialUnavailableError",
  "AuthenticationRequiredError",
]);
const NETWORK_CODES = new Set([
  "REQUEST_SEND_ERROR",
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
]);

const TLS_TRUST_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
]);
const TLS_ADVICE =
  "the vault's TLS certificate is not trusted by the operator: give it the issuing CA with --azure-ca-file (env TDE_AZURE_CA_FILE, chart azure.caBundle)";
const CHALLENGE_ADVICE =
  "the vault's authentication challenge names a resource outside the vault's domain (an emulator or a vault behind custom DNS): start the operator with --azure-disable-challenge-resource-verification (env TDE_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=true, chart azure.disableChallengeResourceVerification)";

type HeaderBag = { get?: (name: string) => string | undefined } | Record<string, string> | undefined;
function header(headers: HeaderBag, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get: (n: string) => string | undefined }).get(name) ?? undefined;
  }
  const bag = headers as Record<string, string>;
  return bag[name] ?? bag[name.toLowerCase()];
}

/** Reads what classification needs from any error the SDKs throw (duck-typed: no SDK import). */
export function azureErrorFacts(error: unknown, now: number = Date.now()): AzureErrorFacts {
  const e = (error ?? {}) as {
    name?: string;
    statusCode?: number;
    code?: unknown;
    message?: string;
    details?: unknown;
    response?: { status?: number; headers?: HeaderBag; bodyAsText?: string };
    cause?: unknown;
  };
  const facts: AzureErrorFacts = { network: false, tlsTrust: false };
  if (typeof e.name === "string") facts.name = e.name;
  if (typeof e.message === "string") facts.message = e.message;
  const status = typeof e.statusCode === "number" ? e.statusCode : e.response?.status;
  if (typeof status === "number") facts.statusCode = status;
  const details = e.details as
    | { error?: { code?: string; innererror?: { code?: string } }; code?: string }
    | undefined;
  const body = details?.error ?? (details as { code?: string; innererror?: { code?: string } } | undefined);
  const code = body?.code ?? (typeof e.code === "string" ? e.code : undefined);
  if (code) facts.code = code;
  const innerCode = body?.innererror?.code;
  if (innerCode) facts.innerCode = innerCode;
  const headers = e.response?.headers;
  const retryAfterMsHeader = header(headers, "retry-after-ms") ?? header(headers, "x-ms-retry-after-ms");
  const retryAfter = header(headers, "retry-after");
  if (retryAfterMsHeader && /^\d+$/.test(retryAfterMsHeader.trim()))
    facts.retryAfterMs = Number(retryAfterMsHeader);
  else if (retryAfter) {
    const ms = parseRetryAfter(retryAfter, now);
    if (ms !== undefined) facts.retryAfterMs = ms;
  }
  for (let cur: unknown = error, depth = 0; cur && depth < 5; depth++) {
    const c = cur as { code?: unknown; name?: string; cause?: unknown; message?: unknown };
    if (
      (typeof c.code === "string" && TLS_TRUST_CODES.has(c.code)) ||
      (typeof c.message === "string" &&
        /self[- ]signed certificate|unable to verify the first certificate/i.test(c.message))
    ) {
      facts.tlsTrust = true;
      facts.network = true;
      break;
    }
    if (
      (typeof c.code === "string" && NETWORK_CODES.has(c.code)) ||
      c.name === "AbortError" ||
      c.name === "TimeoutError"
    ) {
      facts.network = true;
      break;
    }
    cur = c.cause;
  }
  return facts;
}

function hint(facts: AzureErrorFacts): KeyAccessReason | undefined {
  const text = `${facts.innerCode ?? ""} ${facts.code ?? ""} ${facts.message ?? ""}`;
  // Azure: "...on a disabled key"; Lowkey Vault: "...disabled entity", "key:... is not enabled."
  if (/disabled|is not enabled/i.test(text)) return "KeyDisabled";
  if (/expired/i.test(text)) return "KeyExpired";
  if (/can't be used before|cannot be used before|not yet (valid|active)|\bnbf\b|notBefore/i.test(text))
    return "KeyNotYetActive";
  return undefined;
}

/** The KeyAccessReason for an error, or undefined when it is not a key-access failure (a bug, bad input). */
export function classifyAzureError(facts: AzureErrorFacts): AzureClassification | undefined {
  const retry = facts.retryAfterMs === undefined ? {} : { retryAfterMs: facts.retryAfterMs };
  if (facts.tlsTrust) return { reason: "VaultUnreachable", confirmByDescribe: false, advice: TLS_ADVICE };
  if (/challenge resource .* does not match the requested domain/i.test(facts.message ?? ""))
    return { reason: "AuthenticationFailed", confirmByDescribe: false, advice: CHALLENGE_ADVICE };
  if (facts.name && AUTH_ERROR_NAMES.has(facts.name))
    return { reason: "AuthenticationFailed", confirmByDescribe: false };
  const status = facts.statusCode;
  if (status === 401) return { reason: "AuthenticationFailed", confirmByDescribe: false };
  if (status === 429 || facts.code === "Throttled" || facts.code === "TooManyRequests") {
    return { reason: "Throttled", confirmByDescribe: false, ...retry };
  }
  if (status === 404 || facts.code === "KeyNotFound") {
    // Lowkey Vault answers 404 "Operation get is not allowed on a disabled entity" where Azure
    // answers 403: a disabled key is KeyDisabled, never KeyNotFound (which would let a reader
    // fall back to an older wrap and so defeat a revocation).
    return {
      reason: hint(facts) === "KeyDisabled" ? "KeyDisabled" : "KeyNotFound",
      confirmByDescribe: false,
    };
  }
  if (status === 409) {
    const deleted = /delet/i.test(`${facts.code ?? ""} ${facts.innerCode ?? ""} ${facts.message ?? ""}`);
    return { reason: deleted ? "KeyNotFound" : "VaultUnreachable", confirmByDescribe: false, ...retry };
  }
  const hinted = hint(facts);
  if (status === 403)
    return { reason: hinted ?? "PermissionDenied", confirmByDescribe: hinted === undefined };
  if (status === 400 && hinted) return { reason: hinted, confirmByDescribe: false };
  // Lowkey Vault: 500 for a crypto operation on a disabled key.
  if (status === 500)
    return { reason: hinted ?? "VaultUnreachable", confirmByDescribe: hinted === undefined, ...retry };
  if (status !== undefined && (status >= 500 || status === 408))
    return { reason: "VaultUnreachable", confirmByDescribe: false, ...retry };
  if (facts.network) return { reason: "VaultUnreachable", confirmByDescribe: false };
  if (status === undefined) {
    // The SDK checks nbf/exp/key operations on the client before calling the vault.
    if (hinted) return { reason: hinted, confirmByDescribe: false };
    if (/Operation \w+ is not (supported|permitted)/i.test(facts.message ?? "")) {
      return { reason: "PermissionDenied", confirmByDescribe: false };
    }
  }
  return undefined;
}
