/**
 * The DEK envelope (R2): the DEK's id, its KCV and one wrap per KEK, stored as the data of a
 * Kubernetes Secret of type `tde.dev/envelope`. Every function here is pure and returns a new,
 * frozen value; nothing here ever holds a plaintext DEK except `verifyUnwrapped`, which only
 * checks the bytes it is given.
 */
import { isDekLength } from "./dek.js";
import { isKcv, kcvMatches } from "./kcv.js";
import { isThumbprint } from "./thumbprint.js";

export const ENVELOPE_SECRET_TYPE = "tde.dev/envelope";
/** The one Secret data key holding the envelope document. */
export const ENVELOPE_DATA_KEY = "envelope.json";
export const ENVELOPE_VERSION = 1;
export const WRAP_ALGORITHM = "RSA-OAEP-256";

export type WrapAlgorithm = typeof WRAP_ALGORITHM;
export type WrapRole = "protector" | "retained";
export const WRAP_ROLES: readonly WrapRole[] = ["protector", "retained"];

export interface Wrap {
  /** The KEK's full id, with its version. */
  readonly keyID: string;
  /** R3 thumbprint of the KEK's public key: decides whether two wraps are under the same key. */
  readonly thumbprint: string;
  readonly algorithm: WrapAlgorithm;
  /** The wrapped DEK, base64. */
  readonly wrapped: string;
  /** RFC 3339 time the wrap was added. */
  readonly addedAt: string;
  readonly role: WrapRole;
  /** RFC 3339 time a wrap stopped being the protector (R16's retention window starts there). */
  readonly retainedAt?: string;
}

/** Who an envelope was made for (R31): a kind, its namespace and its name (not its uid, R25). */
export interface EnvelopeOwner {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * The envelope's owner, in clear, and a tag that authenticates it (see binding.ts): an
 * HMAC-SHA256 of the owner under a key derived from the DEK. Anyone can write the clear part;
 * only someone holding the DEK can make a matching tag.
 */
export interface OwnerBinding extends EnvelopeOwner {
  /** 64 lowercase hex characters */
  readonly tag: string;
}

export interface Envelope {
  readonly version: 1;
  readonly dekID: string;
  readonly kcv: string;
  readonly wraps: readonly Wrap[];
  /** absent on envelopes written before owner binding existed */
  readonly ownerBinding?: OwnerBinding;
}

/** A wrap to add: the wrapped bytes may be raw; the time defaults to now; the role to `retained`. */
export interface NewWrap {
  keyID: string;
  thumbprint: string;
  wrapped: Uint8Array | string;
  addedAt?: Date | string;
  role?: WrapRole;
  algorithm?: WrapAlgorithm;
}

/** A malformed envelope or a misuse of one. Messages never contain key bytes. */
export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";
}

/** The unwrapped bytes are not this envelope's DEK (R2: an unwrap is correct only if the KCV matches). */
export class KcvMismatchError extends Error {
  override readonly name = "KcvMismatchError";
  constructor(
    readonly dekID: string,
    readonly thumbprint: string | undefined,
  ) {
    super(
      `the key unwrapped for DEK ${dekID}${thumbprint ? ` with the key ${thumbprint}` : ""} does not match the envelope's key check value: the wrap is corrupt or was made for another DEK`,
    );
  }
}

function freezeEnvelope(
  dekID: string,
  kcv: string,
  wraps: readonly Wrap[],
  ownerBinding?: OwnerBinding,
): Envelope {
  return Object.freeze({
    version: 1 as const,
    dekID,
    kcv,
    wraps: Object.freeze(wraps.map((w) => Object.freeze({ ...w }))),
    ...(ownerBinding ? { ownerBinding: Object.freeze({ ...ownerBinding }) } : {}),
  });
}

const TAG_PATTERN = /^[0-9a-f]{64}$/;

/** A part of an owner (kind, namespace, name): non-empty, and without "/" (the separator). */
export function isOwnerPart(value: string): boolean {
  return value.length > 0 && value.length <= 253 && !value.includes("/") && value.trim() === value;
}

/**
 * The envelope with this owner binding (replacing any). Structural only: the tag is made by
 * `bindEnvelope` (binding.ts), which holds the DEK.
 */
export function withOwnerBinding(envelope: Envelope, binding: OwnerBinding): Envelope {
  if (!isOwnerPart(binding.kind) || !isOwnerPart(binding.namespace) || !isOwnerPart(binding.name)) {
    throw new EnvelopeError(
      "an owner binding needs a kind, a namespace and a name, none empty or with a '/'",
    );
  }
  if (!TAG_PATTERN.test(binding.tag))
    throw new EnvelopeError("an owner binding tag must be 64 lowercase hex characters");
  const { kind, namespace, name, tag } = binding;
  return freezeEnvelope(envelope.dekID, envelope.kcv, envelope.wraps, { kind, namespace, name, tag });
}

export function createEnvelope(dekID: string, kcv: string): Envelope {
  if (dekID.trim() === "") throw new EnvelopeError("an envelope needs a non-empty DEK id");
  if (!isKcv(kcv)) throw new EnvelopeError("the KCV must be 16 lowercase hex characters (8 bytes)");
  return freezeEnvelope(dekID, kcv, []);
}

function toIso(value: Date | string | undefined): string {
  const date = value === undefined ? new Date() : typeof value === "string" ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new EnvelopeError("addedAt must be a valid time");
  return date.toISOString();
}

function toBase64(value: Uint8Array | string): string {
  if (typeof value === "string") {
    if (!isBase64(value)) throw new EnvelopeError("a wrapped key given as text must be base64");
    return value;
  }
  if (value.length === 0) throw new EnvelopeError("a wrapped key cannot be empty");
  return Buffer.from(value).toString("base64");
}

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function isBase64(value: string): boolean {
  return value.length > 0 && BASE64_PATTERN.test(value);
}

/**
 * Adds a wrap. A wrap under the same key (same thumbprint) is replaced. With role `protector`
 * the previous protector becomes `retained`.
 */
export function addWrap(envelope: Envelope, wrap: NewWrap): Envelope {
  if (!isThumbprint(wrap.thumbprint))
    throw new EnvelopeError("a wrap's thumbprint must be 64 lowercase hex characters");
  if (wrap.keyID.trim() === "") throw new EnvelopeError("a wrap needs the KEK's key id");
  const algorithm = wrap.algorithm ?? WRAP_ALGORITHM;
  if (algorithm !== WRAP_ALGORITHM) throw new EnvelopeError(`the only wrap algorithm is ${WRAP_ALGORITHM}`);
  const role = wrap.role ?? "retained";
  const addedAt = toIso(wrap.addedAt);
  const entry: Wrap = {
    keyID: wrap.keyID,
    thumbprint: wrap.thumbprint,
    algorithm,
    wrapped: toBase64(wrap.wrapped),
    addedAt,
    role,
  };
  const others = envelope.wraps
    .filter((w) => w.thumbprint !== wrap.thumbprint)
    .map((w) => (role === "protector" && w.role === "protector" ? demoted(w, addedAt) : w));
  return freezeEnvelope(envelope.dekID, envelope.kcv, [...others, entry], envelope.ownerBinding);
}

/** The wrap as `retained` from `at`: a wrap that stops being the protector starts its retention window. */
function demoted(w: Wrap, at: string): Wrap {
  return { ...w, role: "retained", retainedAt: at };
}

/** Makes the wrap with this thumbprint the protector; the previous protector becomes `retained`. */
export function setProtector(envelope: Envelope, thumbprint: string, at: Date = new Date()): Envelope {
  if (!findWrapByThumbprint(envelope, thumbprint)) {
    throw new EnvelopeError(
      `the envelope of DEK ${envelope.dekID} has no wrap under the key ${thumbprint}: add the wrap first`,
    );
  }
  return freezeEnvelope(
    envelope.dekID,
    envelope.kcv,
    envelope.wraps.map((w) => {
      if (w.thumbprint !== thumbprint) return w.role === "protector" ? demoted(w, at.toISOString()) : w;
      if (w.role === "protector") return w;
      const { retainedAt: _released, ...promoted } = w;
      return { ...promoted, role: "protector" as const };
    }),
    envelope.ownerBinding,
  );
}

/**
 * Removes the wrap under this key. Removing the protector is refused unless `evenProtector`
 * (shredding): otherwise a slip would leave a DEK that its protector cannot unwrap.
 */
export function dropWrap(
  envelope: Envelope,
  thumbprint: string,
  options: { evenProtector?: boolean } = {},
): Envelope {
  const wrap = findWrapByThumbprint(envelope, thumbprint);
  if (!wrap) return envelope;
  if (wrap.role === "protector" && !options.evenProtector) {
    throw new EnvelopeError(
      `the key ${thumbprint} is the protector of DEK ${envelope.dekID}: set another protector before dropping its wrap`,
    );
  }
  return freezeEnvelope(
    envelope.dekID,
    envelope.kcv,
    envelope.wraps.filter((w) => w.thumbprint !== thumbprint),
    envelope.ownerBinding,
  );
}

export function protectorWrap(envelope: Envelope): Wrap | undefined {
  return envelope.wraps.find((w) => w.role === "protector");
}

export function findWrapByThumbprint(envelope: Envelope, thumbprint: string): Wrap | undefined {
  return envelope.wraps.find((w) => w.thumbprint === thumbprint);
}

/** The wrapped DEK bytes of a wrap. Throws on a summary's wrap (see envelopeSummary): it has none. */
export function wrappedBytes(wrap: Wrap): Buffer {
  if (wrap.wrapped === "")
    throw new EnvelopeError(
      `the wrap under ${wrap.keyID} is a summary's (no wrapped bytes): read the envelope before unwrapping`,
    );
  return Buffer.from(wrap.wrapped, "base64");
}

/**
 * The envelope without its retained wraps' bytes (their `wrapped` is ""), for a cache that decides
 * with it: every id, thumbprint, role, time and the owner binding, and the protector's bytes (what
 * a rotation unwraps), so that what it holds does not grow with the rotations an envelope has been
 * through. An envelope with retained wraps is then a summary: whatever unwraps or rewrites it
 * reads it whole first. One with no retained wrap keeps its wraps as they are.
 *
 * `share` gives the strings that repeat across envelopes (key ids, thumbprints, the algorithm and
 * role, the owner's kind and namespace) a cache's shared copy: a decoded envelope is frozen, so a
 * cache cannot share them afterwards. Times, ids, tags and bytes are each envelope's own.
 */
export function envelopeSummary(envelope: Envelope, share?: (s: string) => string): Envelope {
  const retained = envelope.wraps.some((w) => w.role === "retained");
  if (!retained && !share) return envelope;
  const s = share ?? ((v: string) => v);
  const binding = envelope.ownerBinding;
  return freezeEnvelope(
    envelope.dekID,
    envelope.kcv,
    envelope.wraps.map((w) => ({
      ...w,
      keyID: s(w.keyID),
      thumbprint: s(w.thumbprint),
      algorithm: s(w.algorithm) as WrapAlgorithm,
      role: s(w.role) as WrapRole,
      ...(w.role === "retained" ? { wrapped: "" } : {}),
    })),
    binding && { ...binding, kind: s(binding.kind), namespace: s(binding.namespace) },
  );
}

/** Whether `envelope` is a summary (envelopeSummary): some wrap carries no bytes. */
export function isEnvelopeSummary(envelope: Envelope): boolean {
  return envelope.wraps.some((w) => w.wrapped === "");
}

/**
 * Checks bytes an unwrap returned against the envelope's KCV and returns them. On a mismatch the
 * bytes are zeroed and a KcvMismatchError (which carries no key bytes) is thrown.
 */
export function verifyUnwrapped(envelope: Envelope, unwrapped: Buffer, thumbprint?: string): Buffer {
  if (!isDekLength(unwrapped) || !kcvMatches(unwrapped, envelope.kcv)) {
    unwrapped.fill(0);
    throw new KcvMismatchError(envelope.dekID, thumbprint);
  }
  return unwrapped;
}

// ---- Secret encoding ----

/** The envelope as a Secret's `data` map (values base64, as the API server stores them). */
export function encodeEnvelope(envelope: Envelope): Record<string, string> {
  if (isEnvelopeSummary(envelope))
    throw new EnvelopeError(
      "an envelope summary has no wrapped bytes and is never written: read the envelope first",
    );
  const document = {
    version: envelope.version,
    dekID: envelope.dekID,
    kcv: envelope.kcv,
    wraps: envelope.wraps.map((w) => ({
      keyID: w.keyID,
      thumbprint: w.thumbprint,
      algorithm: w.algorithm,
      wrapped: w.wrapped,
      addedAt: w.addedAt,
      role: w.role,
      ...(w.retainedAt ? { retainedAt: w.retainedAt } : {}),
    })),
    ...(envelope.ownerBinding
      ? {
          ownerBinding: {
            kind: envelope.ownerBinding.kind,
            namespace: envelope.ownerBinding.namespace,
            name: envelope.ownerBinding.name,
            tag: envelope.ownerBinding.tag,
          },
        }
      : {}),
  };
  return { [ENVELOPE_DATA_KEY]: Buffer.from(JSON.stringify(document), "utf8").toString("base64") };
}

/** A Secret object (structurally a V1Secret) holding the envelope. */
export function envelopeSecret(
  namespace: string,
  name: string,
  envelope: Envelope,
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
) {
  return {
    apiVersion: "v1" as const,
    kind: "Secret" as const,
    type: ENVELOPE_SECRET_TYPE,
    metadata: { namespace, name, ...metadata },
    data: encodeEnvelope(envelope),
  };
}

function fail(message: string): never {
  throw new EnvelopeError(`invalid envelope: ${message}`);
}

function field<T>(
  object: Record<string, unknown>,
  key: string,
  where: string,
  check: (v: unknown) => v is T,
): T {
  const value = object[key];
  if (!check(value)) fail(`${where}${key} is missing or has the wrong type`);
  return value;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Validates a parsed envelope document. */
export function envelopeFromDocument(document: unknown): Envelope {
  if (!isRecord(document)) fail("the document is not a JSON object");
  if (document.version !== ENVELOPE_VERSION) {
    fail(`version ${JSON.stringify(document.version)} is not supported (expected ${ENVELOPE_VERSION})`);
  }
  const dekID = field(document, "dekID", "", isString);
  if (dekID.trim() === "") fail("dekID is empty");
  const kcv = field(document, "kcv", "", isString);
  if (!isKcv(kcv)) fail("kcv must be 16 lowercase hex characters");
  const rawWraps = document.wraps;
  if (!Array.isArray(rawWraps)) fail("wraps must be a list");
  const wraps: Wrap[] = rawWraps.map((raw, i) => {
    const where = `wraps[${i}].`;
    if (!isRecord(raw)) fail(`wraps[${i}] is not an object`);
    const keyID = field(raw, "keyID", where, isString);
    if (keyID.trim() === "") fail(`${where}keyID is empty`);
    const thumbprint = field(raw, "thumbprint", where, isString);
    if (!isThumbprint(thumbprint)) fail(`${where}thumbprint must be 64 lowercase hex characters`);
    const algorithm = field(raw, "algorithm", where, isString);
    if (algorithm !== WRAP_ALGORITHM)
      fail(`${where}algorithm ${JSON.stringify(algorithm)} is not ${WRAP_ALGORITHM}`);
    const wrapped = field(raw, "wrapped", where, isString);
    if (!isBase64(wrapped)) fail(`${where}wrapped is not base64`);
    const addedAt = field(raw, "addedAt", where, isString);
    if (Number.isNaN(Date.parse(addedAt))) fail(`${where}addedAt is not a time`);
    const role = field(raw, "role", where, isString);
    if (role !== "protector" && role !== "retained") fail(`${where}role must be "protector" or "retained"`);
    const retainedAt = raw.retainedAt;
    if (retainedAt !== undefined && (typeof retainedAt !== "string" || Number.isNaN(Date.parse(retainedAt))))
      fail(`${where}retainedAt is not a time`);
    return {
      keyID,
      thumbprint,
      algorithm: WRAP_ALGORITHM,
      wrapped,
      addedAt,
      role,
      ...(role === "retained" && retainedAt ? { retainedAt } : {}),
    };
  });
  if (wraps.filter((w) => w.role === "protector").length > 1) fail("more than one wrap is the protector");
  const seen = new Set<string>();
  for (const w of wraps) {
    if (seen.has(w.thumbprint)) fail(`two wraps under the same key ${w.thumbprint}`);
    seen.add(w.thumbprint);
  }
  let ownerBinding: OwnerBinding | undefined;
  if (document.ownerBinding !== undefined) {
    const raw = document.ownerBinding;
    if (!isRecord(raw)) fail("ownerBinding is not an object");
    const part = (key: string): string => {
      const value = field(raw, key, "ownerBinding.", isString);
      if (!isOwnerPart(value)) fail(`ownerBinding.${key} is empty or contains a '/'`);
      return value;
    };
    const kind = part("kind");
    const namespace = part("namespace");
    const name = part("name");
    const tag = field(raw, "tag", "ownerBinding.", isString);
    if (!TAG_PATTERN.test(tag)) fail("ownerBinding.tag must be 64 lowercase hex characters");
    ownerBinding = { kind, namespace, name, tag };
  }
  return freezeEnvelope(dekID, kcv, wraps, ownerBinding);
}

/** Decodes and validates a Secret's `data` map (base64 values). */
export function decodeEnvelope(data: Record<string, string> | undefined): Envelope {
  const encoded = data?.[ENVELOPE_DATA_KEY];
  if (encoded === undefined) fail(`the Secret has no ${ENVELOPE_DATA_KEY} entry`);
  if (!isBase64(encoded)) fail(`${ENVELOPE_DATA_KEY} is not base64`);
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
  } catch {
    fail(`${ENVELOPE_DATA_KEY} is not JSON`);
  }
  return envelopeFromDocument(document);
}

/** Decodes a whole Secret, checking its type first. */
export function decodeEnvelopeSecret(secret: { type?: string; data?: Record<string, string> }): Envelope {
  if (secret.type !== ENVELOPE_SECRET_TYPE) {
    fail(`the Secret has type ${JSON.stringify(secret.type ?? "")}, not ${ENVELOPE_SECRET_TYPE}`);
  }
  return decodeEnvelope(secret.data);
}
