import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTokenVerifier, InvalidTokenError } from "../../src/graphql/auth.js";

const secret = "token-verifier-test-secret-0123456789abcdef";
const sign = (claims: { sub: string; exp: number; iat: number }) =>
  new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject(claims.sub).setIssuedAt(claims.iat).setExpirationTime(claims.exp).sign(new TextEncoder().encode(secret));

describe("token verification", () => {
  afterEach(() => vi.useRealTimers());

  it("remembers a verified token only until it expires, and never a refused one", async () => {
    const verify = createTokenVerifier({ secret });
    const now = Math.floor(Date.now() / 1000);
    vi.useFakeTimers({ now: now * 1000, toFake: ["Date"] });
    const token = await sign({ sub: "alice", iat: now, exp: now + 60 });
    expect(await verify(token)).toMatchObject({ id: "alice", expiresAt: now + 60 });
    expect(await verify(token)).toMatchObject({ id: "alice" });
    vi.setSystemTime((now + 61) * 1000);
    await expect(verify(token)).rejects.toBeInstanceOf(InvalidTokenError);

    const forged = `${token.slice(0, -4)}AAAA`;
    await expect(verify(forged)).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(verify(forged)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it("refuses a subject that could not be the owner of rows and notifications: longer than 255 characters, or with a NUL or an unpaired surrogate", async () => {
    const verify = createTokenVerifier({ secret });
    const now = Math.floor(Date.now() / 1000);
    const subject = async (sub: string) => verify(await sign({ sub, iat: now, exp: now + 60 })).then((viewer) => viewer.id, (error: Error) => error.message);
    expect(await subject("a".repeat(255))).toBe("a".repeat(255));
    expect(await subject("a".repeat(256))).toBe("The token's subject is longer than 255 characters");
    expect(await subject("al\u0000ice")).toBe("The token's subject holds a character that cannot be stored (NUL or an unpaired surrogate)");
    expect(await subject("alice\ud800")).toBe("The token's subject holds a character that cannot be stored (NUL or an unpaired surrogate)");
  });
});
