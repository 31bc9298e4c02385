/** R32: a write the API server refuses is reported on Ready, naming the object; other errors are not. */
import { describe, expect, it } from "vitest";
import { writeRefusal } from "../../../src/controllers/write-refusal.js";
import { ApiError, type ApiRequest } from "../../../src/runtime/index.js";

const secret: ApiRequest = { verb: "create", resource: "secrets", namespace: "shop", name: "tde-edb-orders" };
const refused = (code: number, reason: string, request: ApiRequest | undefined = secret) =>
  new ApiError(code, reason, `${reason} message`, undefined, undefined, request);

describe("writeRefusal (R32)", () => {
  it.each([
    ["422 Invalid on a create", refused(422, "Invalid"), true],
    ["403 Forbidden on a patch", refused(403, "Forbidden", { ...secret, verb: "patch" }), true],
    [
      "400 BadRequest on a status update",
      refused(400, "BadRequest", { ...secret, verb: "update", subresource: "status" }),
      true,
    ],
    ["409 Conflict: retried quietly", refused(409, "Conflict"), false],
    ["404 NotFound: not a refusal", refused(404, "NotFound"), false],
    ["429 TooManyRequests: throttling", refused(429, "TooManyRequests"), false],
    ["503: an outage", refused(503, "ServiceUnavailable"), false],
    ["403 on a read: not a write", refused(403, "Forbidden", { ...secret, verb: "get" }), false],
    ["an ApiError without its request", new ApiError(422, "Invalid", "Invalid message"), false],
    ["not an ApiError", new Error("boom"), false],
  ])("%s", (_what, error, reported) => {
    expect(writeRefusal(error) !== undefined).toBe(reported);
  });

  it("names the verb, the object, the API server's reason and what to do", () => {
    const r = writeRefusal(refused(403, "Forbidden"));
    expect(r?.reason).toBe("WriteRefused");
    expect(r?.message).toContain(
      "refused to create secrets shop/tde-edb-orders (403 Forbidden): Forbidden message",
    );
    expect(r?.message).toContain("ServiceAccount");
  });
});
