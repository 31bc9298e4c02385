/** Classifies a failure of a Kubernetes API call (the Local provider's "vault") into a KeyAccessReason. */
import type { KeyAccessReason } from "./provider.js";

export interface KubeErrorFacts {
  status?: number;
  retryAfterMs?: number;
  network: boolean;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** Reads the status, Retry-After and whether it was a network failure, from an ApiException, our ApiError or a socket error. */
export function kubeErrorFacts(error: unknown): KubeErrorFacts {
  const e = error as {
    code?: unknown;
    statusCode?: unknown;
    retryAfter?: string;
    headers?: Record<string, string>;
    cause?: unknown;
    name?: string;
    type?: string;
  };
  // client-node's ApiException has `code` and `headers`; our ApiError `statusCode` and `retryAfter`
  const status =
    typeof e?.code === "number" ? e.code : typeof e?.statusCode === "number" ? e.statusCode : undefined;
  const retryAfter = e?.headers?.["retry-after"] ?? e?.headers?.["Retry-After"] ?? e?.retryAfter;
  const retryAfterMs = retryAfter !== undefined ? parseRetryAfter(retryAfter) : undefined;
  let network = false;
  for (let cur: unknown = error, depth = 0; cur && depth < 5; depth++) {
    const c = cur as { code?: unknown; name?: string; type?: string; cause?: unknown };
    if (
      (typeof c.code === "string" && NETWORK_CODES.has(c.code)) ||
      c.name === "AbortError" ||
      c.name === "TimeoutError" ||
      c.type === "system"
    ) {
      network = true;
      break;
    }
    cur = c.cause;
  }
  return {
    ...(status === undefined ? {} : { status }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    network,
  };
}

export function classifyKubeError(facts: KubeErrorFacts): KeyAccessReason {
  if (facts.status === 401) return "AuthenticationFailed";
  if (facts.status === 403) return "PermissionDenied";
  if (facts.status === 404 || facts.status === 410) return "KeyNotFound";
  if (facts.status === 429) return "Throttled";
  return "VaultUnreachable";
}

/** Retry-After as seconds or an HTTP date; undefined when unreadable. */
export function parseRetryAfter(value: string, now: number = Date.now()): number | undefined {
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
