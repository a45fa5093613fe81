import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTVerifyGetKey } from "jose";
import { storableText } from "../jobs/storable-text.js";

export type Role = "user" | "operator";

/** The longest token subject (`sub`) taken. */
export const MAX_SUBJECT_LENGTH = 255;

/** Who is calling: the token's subject and role. */
export interface Viewer {
  id: string;
  role: Role;
}

export interface AuthSettings {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Longest accepted lifetime: exp minus iat (or minus now, whichever is earlier). */
  maxLifetimeSeconds?: number;
}

/** A verified caller, with when the token stops being valid (seconds since the epoch). */
export interface VerifiedViewer extends Viewer {
  expiresAt: number;
}

export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;

export class InvalidTokenError extends Error {
  override name = "InvalidTokenError";
}

/**
 * Verifies Bearer tokens: HS256 with a shared secret, or any JWKS-published key. A token must
 * expire, and within the maximum lifetime: a leaked token without `exp` would work forever, and a
 * WebSocket authenticated by it is only closed when it expires.
 */
export function createTokenVerifier(settings: AuthSettings): (token: string) => Promise<VerifiedViewer> {
  const maxLifetime = settings.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  const key: Uint8Array | JWTVerifyGetKey = settings.jwksUrl
    ? createRemoteJWKSet(new URL(settings.jwksUrl))
    : new TextEncoder().encode(settings.secret ?? "");
  // A client sends the same token with every request: a signature verified once stays verified
  // until the token expires, so only tokens that passed are remembered, and never past their exp.
  const verified = new Map<string, VerifiedViewer>();
  return async (token) => {
    const known = verified.get(token);
    if (known) {
      if (known.expiresAt * 1000 > Date.now()) return known;
      verified.delete(token);
    }
    const viewer = await verify(token);
    if (verified.size >= VERIFIED_TOKENS_KEPT) verified.delete(verified.keys().next().value!);
    verified.set(token, viewer);
    return viewer;
  };

  async function verify(token: string): Promise<VerifiedViewer> {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: settings.jwksUrl ? undefined : ["HS256"],
      });
      if (typeof payload.sub !== "string" || payload.sub.length === 0) throw new InvalidTokenError("The token has no subject");
      // The subject becomes the owner of what the caller creates, in rows and in the notifications
      // that carry job changes to other instances (whole under 8 kB, or not sent at all).
      if (payload.sub.length > MAX_SUBJECT_LENGTH) throw new InvalidTokenError(`The token's subject is longer than ${MAX_SUBJECT_LENGTH} characters`);
      if (storableText(payload.sub) !== payload.sub) throw new InvalidTokenError("The token's subject holds a character that cannot be stored (NUL or an unpaired surrogate)");
      const role = payload.role ?? "user";
      if (role !== "user" && role !== "operator") throw new InvalidTokenError("The token's role must be user or operator");
      if (typeof payload.exp !== "number") throw new InvalidTokenError("The token has no expiry (exp)");
      // An iat in the future must not stretch the lifetime, hence the earlier of iat and now.
      const now = Math.floor(Date.now() / 1000);
      const start = Math.min(typeof payload.iat === "number" ? payload.iat : now, now);
      if (payload.exp - start > maxLifetime) throw new InvalidTokenError(`The token's lifetime exceeds ${maxLifetime} seconds`);
      return { id: payload.sub, role, expiresAt: payload.exp };
    } catch (error) {
      if (error instanceof InvalidTokenError) throw error;
      throw new InvalidTokenError("The token is invalid or expired");
    }
  }
}

/** Verified tokens remembered at most; the oldest make room. */
const VERIFIED_TOKENS_KEPT = 10_000;

/** The token from an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(header?.trim() ?? "");
  return match?.[1] ?? null;
}

/** Mints an HS256 token, for development and tests. */
export function signToken(secret: string, viewer: Viewer, options: { expiresIn?: string; issuer?: string; audience?: string } = {}): Promise<string> {
  let jwt = new SignJWT({ role: viewer.role }).setProtectedHeader({ alg: "HS256" }).setSubject(viewer.id).setIssuedAt().setExpirationTime(options.expiresIn ?? "12h");
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
