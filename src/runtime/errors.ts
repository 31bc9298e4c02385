/** The request an ApiError answers: which verb on which object (R32: what the operator could not write). */
export interface ApiRequest {
  verb: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** A non-2xx answer of the API server, carrying its HTTP code and `Status.reason`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
    /** the Retry-After header of a 429 or 503, as sent */
    readonly retryAfter?: string,
    /** the request refused, when the client knows it */
    readonly request?: ApiRequest,
  ) {
    super(message);
  }
}

function codeOf(err: unknown): number | undefined {
  if (err instanceof ApiError) return err.statusCode;
  if (typeof err === "object" && err !== null) {
    const e = err as { statusCode?: unknown; code?: unknown };
    if (typeof e.statusCode === "number") return e.statusCode;
    if (typeof e.code === "number") return e.code;
  }
  return undefined;
}

export const isNotFound = (err: unknown): boolean => codeOf(err) === 404;
export const isConflict = (err: unknown): boolean => codeOf(err) === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  codeOf(err) === 409 && err instanceof ApiError && err.reason === "AlreadyExists";
/** 410 Gone: a watch or list asked for a resourceVersion older than etcd keeps. */
export const isGone = (err: unknown): boolean => codeOf(err) === 410;

/**
 * A failure that retrying cannot fix (a spec that can never work). The controller records it
 * and does not retry the key until the object (or something mapped to it) changes again.
 */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  constructor(
    message: string,
    /** A short CamelCase reason for a condition or an event. */
    readonly reason = "TerminalError",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const isTerminal = (err: unknown): err is TerminalError => err instanceof TerminalError;

/**
 * How long the remote asked to wait before a retry, if it said: a KMS error's `retryAfterMs`
 * (a vault's Retry-After, classified by the adapter) or an API server's Retry-After in seconds.
 */
export function retryAfterMsOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const ms = (err as { retryAfterMs?: unknown }).retryAfterMs;
  if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) return ms;
  if (err instanceof ApiError && err.retryAfter && /^\d+$/.test(err.retryAfter.trim()))
    return Number(err.retryAfter.trim()) * 1000;
  return undefined;
}
