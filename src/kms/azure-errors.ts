/**
 * Pure classification of Azure Key Vault / Entra ID failures into KeyAccessReasons (R10).
 *
 * Azure and Lowkey Vault differ (see docs/key-management.md): Azure answers 403 to a crypto
 * operation on a disabled key, Lowkey Vault answers 500. Both are "ambiguous": the provider
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
}

export interface AzureClassification {
  reason: KeyAccessReason;
  /** true when describing the key could give a more precise reason (disabled, expired, not yet active). */
  confirmByDescribe: boolean;
  retryAfterMs?: number;
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
  const facts: AzureErrorFacts = { network: false };
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
    const c = cur as { code?: unknown; name?: string; cause?: unknown };
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
  if (/disabled/i.test(text)) return "KeyDisabled";
  if (/expired/i.test(text)) return "KeyExpired";
  if (/can't be used before|cannot be used before|not yet (valid|active)|\bnbf\b|notBefore/i.test(text))
    return "KeyNotYetActive";
  return undefined;
}

/** The KeyAccessReason for an error, or undefined when it is not a key-access failure (a bug, bad input). */
export function classifyAzureError(facts: AzureErrorFacts): AzureClassification | undefined {
  const retry = facts.retryAfterMs === undefined ? {} : { retryAfterMs: facts.retryAfterMs };
  if (facts.name && AUTH_ERROR_NAMES.has(facts.name))
    return { reason: "AuthenticationFailed", confirmByDescribe: false };
  const status = facts.statusCode;
  if (status === 401) return { reason: "AuthenticationFailed", confirmByDescribe: false };
  if (status === 429 || facts.code === "Throttled" || facts.code === "TooManyRequests") {
    return { reason: "Throttled", confirmByDescribe: false, ...retry };
  }
  if (status === 404 || facts.code === "KeyNotFound")
    return { reason: "KeyNotFound", confirmByDescribe: false };
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
