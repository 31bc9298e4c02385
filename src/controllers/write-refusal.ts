import { Reason } from "../api/index.js";
import { ApiError } from "../runtime/index.js";

/** What Ready says when the API server refused a write the operator needs (R32). */
export interface WriteRefusal {
  reason: typeof Reason.WriteRefused;
  message: string;
}

const WRITES: ReadonlySet<string> = new Set(["create", "update", "patch", "delete"]);
/** Refusals that retrying the same request cannot fix: bad request, forbidden, too large, invalid. */
const REFUSED: ReadonlySet<number> = new Set([400, 403, 413, 422]);

const ADVICE: Record<number, string> = {
  403: "give the operator's ServiceAccount that permission, or lift the admission rule or quota that refuses it",
  422: "the object the operator derived is invalid: report it with this message",
};

/**
 * R32: a write the API server refused for good (not a conflict, a missing object, throttling or
 * an outage: those are retried quietly) as a Ready condition naming the verb, the object and the
 * API server's own reason. Undefined for any other error. The message carries the API server's
 * words, which name fields and values of the object's metadata, never Secret data.
 */
export function writeRefusal(error: unknown): WriteRefusal | undefined {
  if (!(error instanceof ApiError) || !REFUSED.has(error.statusCode)) return undefined;
  const request = error.request;
  if (!request || !WRITES.has(request.verb)) return undefined;
  const where = [request.namespace, request.name].filter(Boolean).join("/");
  const what = `${request.resource}${request.subresource ? `/${request.subresource}` : ""}${where ? ` ${where}` : ""}`;
  const advice = ADVICE[error.statusCode] ?? "fix what it names";
  return {
    reason: Reason.WriteRefused,
    message: `the API server refused to ${request.verb} ${what} (${error.statusCode} ${error.reason}): ${error.message}. The operator retries with backoff; ${advice}`,
  };
}
