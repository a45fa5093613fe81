import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { graphql } from "../support/graphql-client.js";

describe("tokens verified against a JWKS", () => {
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let jwksServer: Server;
  let conveyor: TestConveyor;
  const sign = (claims: Record<string, unknown>, options: { audience?: string; key?: CryptoKey } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "test-key" })
      .setSubject("carol")
      .setIssuer("https://issuer.test")
      .setAudience(options.audience ?? "conveyor")
      .setExpirationTime("5m")
      .sign(options.key ?? keys.privateKey);

  beforeAll(async () => {
    keys = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: "test-key", alg: "RS256", use: "sig" };
    jwksServer = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const { port } = jwksServer.address() as { port: number };
    conveyor = await startTestConveyor({
      environment: { JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, JWT_ISSUER: "https://issuer.test", JWT_AUDIENCE: "conveyor" },
    });
  });
  afterAll(async () => {
    await conveyor?.dispose();
    jwksServer?.close();
  });

  it("accepts a token signed by a published key, with the configured issuer and audience", async () => {
    const response = await graphql(conveyor, `{ me { id role } }`, {}, { token: await sign({ role: "operator" }) });
    expect(response.data.me).toEqual({ id: "carol", role: "OPERATOR" });
  });

  it("refuses another audience, an unknown key and an unknown role", async () => {
    const other = await generateKeyPair("RS256");
    for (const token of [await sign({}, { audience: "someone-else" }), await sign({}, { key: other.privateKey }), await sign({ role: "admin" })]) {
      const response = await graphql(conveyor, `{ me { id } }`, {}, { token });
      expect(response.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    }
  });
});
