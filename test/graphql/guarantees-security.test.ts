// Issue 9, items 2 and 6: no public secret outside loopback, tokens that expire (and sockets that
// close with them), logs and errors that leak nothing.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { createLogger } from "../../src/logger.js";
import { configProblem } from "../support/config.js";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { codeOf, createAssessment, enqueue, gql, PARKED, readSse, wsClientWith } from "./helpers.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const handlers: JobHandler<any, any>[] = [{ type: "quick", run: async () => ({ ok: true }) }];

/** An HS256 token with `claims`; `exp`/`iat` in seconds since the epoch, or null to leave them out. */
function sign(secret: string, claims: Record<string, unknown>, options: { exp?: number | null; iat?: number | null } = {}) {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("mallory");
  if (options.iat !== null) jwt = jwt.setIssuedAt(options.iat ?? undefined);
  if (options.exp !== null && options.exp !== undefined) jwt = jwt.setExpirationTime(options.exp);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** Opens a raw graphql-transport-ws socket and sends connection_init; says whether it was acknowledged. */
async function openRaw(conveyor: TestConveyor, payload: Record<string, unknown>): Promise<{ socket: WebSocket; acknowledged: boolean; closed: Promise<{ code: number; reason: string; at: number }> }> {
  const socket = new WebSocket(`${conveyor.url!.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    socket.once("close", (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })),
  );
  await new Promise((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)));
  socket.send(JSON.stringify({ type: "connection_init", payload }));
  const acknowledged = await Promise.race([
    new Promise<boolean>((resolve) => socket.once("message", (data) => resolve(JSON.parse(String(data)).type === "connection_ack"))),
    closed.then(() => false),
  ]);
  return { socket, acknowledged, closed };
}

describe("item 2: no development secret outside development", () => {
  it("item 2: refuses to start on 0.0.0.0 without JWT_SECRET, naming JWT_SECRET and JWT_JWKS_URL", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.20", "example.com", ""]) {
      const problem = configProblem({ HOST: host });
      expect(problem, host).toMatch(/JWT_SECRET/);
      expect(problem, host).toMatch(/JWT_JWKS_URL/);
    }
    // The problem joins the schema's, in one message.
    const both = configProblem({ HOST: "0.0.0.0", PORT: "not-a-port" });
    expect(both).toMatch(/PORT/);
    expect(both).toMatch(/JWT_SECRET/);
    // With a secret or a JWKS, any host is fine.
    expect(configProblem({ HOST: "0.0.0.0", JWT_SECRET: "x".repeat(32) })).toBeNull();
    expect(configProblem({ HOST: "0.0.0.0", JWT_JWKS_URL: "https://issuer.test/jwks.json" })).toBeNull();
  });

  it("item 2: refuses NODE_ENV=production without JWT_SECRET, even on loopback", () => {
    expect(configProblem({ NODE_ENV: "production" })).toMatch(/JWT_SECRET or JWT_JWKS_URL must be set when NODE_ENV=production/);
    expect(configProblem({ NODE_ENV: "production", HOST: "127.0.0.1" })).toMatch(/JWT_SECRET/);
  });

  it("item 2: still starts without a secret on loopback outside production", () => {
    for (const host of ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]) {
      expect(configProblem({ HOST: host }), host).toBeNull();
      expect(configProblem({ HOST: host, NODE_ENV: "test" }), host).toBeNull();
    }
    expect(configProblem({})).toBeNull();
  });

  it("item 2: `node --import tsx src/main.ts` with HOST=0.0.0.0 and no JWT_SECRET exits non-zero, naming JWT_SECRET", async () => {
    const { JWT_SECRET: _secret, JWT_JWKS_URL: _jwks, NODE_ENV: _env, ...inherited } = process.env;
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ["--import", "tsx", "src/main.ts"],
        {
          cwd: ROOT,
          timeout: 30_000,
          // A database that is never reached: the configuration is refused before.
          env: { ...inherited, HOST: "0.0.0.0", PORT: "0", DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none" },
        },
        (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toMatch(/JWT_SECRET or JWT_JWKS_URL must be set when HOST \("0\.0\.0\.0"\) is not a loopback address/);
  });
});

describe("items 2 and 6 over a real server", () => {
  let conveyor: TestConveyor;
  let secret: string;
  let alice: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    const logger = createLogger("debug", {}, { write: (line: string) => void logLines.push(line) });
    conveyor = await startTestConveyor({ handlers, logger });
    secret = conveyor.config.auth.secret!;
    alice = await tokenFor(conveyor, "alice");
  });
  afterAll(() => conveyor?.dispose());

  describe("item 2: tokens expire, and so do the sockets they open", () => {
    it("item 2: refuses a token without exp with UNAUTHENTICATED over HTTP, on the export and over WebSocket", async () => {
      const forever = await sign(secret, { role: "operator" }, { exp: null });
      const http = await gql(conveyor, `{ me { id role } }`, {}, { token: forever });
      expect(http.status).toBe(401);
      expect(codeOf(http)).toBe("UNAUTHENTICATED");
      expect(http.errors?.[0]?.message).toMatch(/no expiry/);
      expect(http.data).toBeUndefined();

      const exported = await fetch(`${conveyor.url}/jobs/${randomUUID()}/result.csv`, { headers: { authorization: `Bearer ${forever}` } });
      expect(exported.status).toBe(401);
      expect((await exported.json()).error.code).toBe("UNAUTHENTICATED");

      // graphql-ws refuses a connection_init by closing with 4403, as for any other refused token.
      const raw = await openRaw(conveyor, { authorization: `Bearer ${forever}` });
      expect(raw.acknowledged).toBe(false);
      expect((await raw.closed).code).toBe(4403);
      const client = wsClient(conveyor, forever);
      const { events, error } = await collect(client, `subscription { queueHealthChanged { status } }`).done;
      expect(events).toEqual([]);
      expect((error as { code?: number }).code).toBe(4403);
      await client.dispose();
    });

    it("item 2: refuses a token that lives longer than JWT_MAX_LIFETIME_SECONDS, accepts one within it", async () => {
      const now = Math.floor(Date.now() / 1000);
      const tooLong = [
        await sign(secret, { role: "user" }, { exp: now + 48 * 3600 }),
        // An iat in the future does not shorten the lifetime counted.
        await sign(secret, { role: "user" }, { iat: now + 47 * 3600, exp: now + 48 * 3600 }),
        await sign(secret, { role: "user" }, { iat: null, exp: now + 48 * 3600 }),
      ];
      for (const token of tooLong) {
        const response = await gql(conveyor, `{ me { id } }`, {}, { token });
        expect(response.status).toBe(401);
        expect(codeOf(response)).toBe("UNAUTHENTICATED");
      }
      const withinLimit = await sign(secret, { role: "user" }, { exp: now + 23 * 3600 });
      expect((await gql(conveyor, `{ me { id } }`, {}, { token: withinLimit })).data.me).toEqual({ id: "mallory" });
    });

    it("item 2: closes a WebSocket with 4401 when its token expires, ending its subscriptions", async () => {
      const jobId = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      const exp = Math.floor(Date.now() / 1000) + 3;
      const shortLived = await new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));

      // A raw socket, to see the close code and reason the server sends.
      const raw = await openRaw(conveyor, { authorization: `Bearer ${shortLived}` });
      expect(raw.acknowledged).toBe(true);

      // A graphql-ws client with a live subscription on the same token.
      let closedWith: number | null = null;
      const client = wsClientWith(conveyor, { token: shortLived, onClosed: (code) => (closedWith = code) });
      const subscription = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: jobId });
      await expect.poll(() => subscription.events.length, { timeout: 2000 }).toBeGreaterThan(0);
      expect(subscription.events[0]?.data).toEqual({ jobProgress: { status: "QUEUED" } });

      const notClosed = new Promise<null>((resolve) => setTimeout(() => resolve(null), exp * 1000 - Date.now() + 3000));
      const closed = await Promise.race([raw.closed, notClosed]);
      expect(closed, "the socket outlived its token").not.toBeNull();
      expect(closed!.code).toBe(4401);
      expect(closed!.reason).toBe("Token expired");
      // At expiry: not before, and not long after.
      expect(closed!.at).toBeGreaterThanOrEqual(exp * 1000 - 50);
      expect(closed!.at).toBeLessThan(exp * 1000 + 1500);

      const { error } = await subscription.done;
      expect((error as { code?: number }).code).toBe(4401);
      expect(closedWith).toBe(4401);
      await client.dispose();
    });

    it("item 2: ends a subscription over SSE when its token expires, with UNAUTHENTICATED, then complete", async () => {
      const jobId = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      const exp = Math.floor(Date.now() / 1000) + 3;
      const shortLived = await new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));
      const response = await fetch(`${conveyor.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${shortLived}` },
        body: JSON.stringify({ query: `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, variables: { id: jobId } }),
      });
      expect(response.status).toBe(200);
      const arrivals: number[] = [];
      const notEnded = new Promise<null>((resolve) => setTimeout(() => resolve(null), exp * 1000 - Date.now() + 3000));
      const events = await Promise.race([readSse(response, () => arrivals.push(Date.now())), notEnded]);
      expect(events, "the stream outlived its token").not.toBeNull();
      expect(events!.map((event) => event.event)).toEqual(["next", "next", "complete"]);
      expect(events![0]!.data.data).toEqual({ jobProgress: { status: "QUEUED" } });
      expect(codeOf(events![1]!.data)).toBe("UNAUTHENTICATED");
      // At expiry: not before, and not long after.
      expect(arrivals[1]).toBeGreaterThanOrEqual(exp * 1000 - 50);
      expect(arrivals[1]).toBeLessThan(exp * 1000 + 1500);
    });

    it("item 2: keeps a socket whose token is still valid open", async () => {
      const raw = await openRaw(conveyor, { authorization: `Bearer ${alice}` });
      expect(raw.acknowledged).toBe(true);
      const outcome = await Promise.race([raw.closed, new Promise<"open">((resolve) => setTimeout(() => resolve("open"), 500))]);
      expect(outcome).toBe("open");
      raw.socket.close();
      expect((await raw.closed).code).toBe(1005);
    });
  });

  describe("item 6: nothing personal in logs or errors", () => {
    it("item 6: logs a resolver's unexpected error with its email scrubbed, over HTTP and WebSocket, and no raw `yoga` object", async () => {
      const assessments = conveyor.services.assessments;
      const original = assessments.find;
      assessments.find = (async () => {
        throw new Error("lookup failed for jane.doe@example.com, call +33 6 12 34 56 78, token Bearer abc.def.ghi");
      }) as unknown as typeof original;
      try {
        const before = logLines.length;
        const response = await gql(conveyor, `query($id: ID!) { assessment(id: $id) { id } }`, { id: randomUUID() }, { token: alice });
        expect(response.errors?.[0]?.message).toBe("Unexpected error.");
        expect(response.text).not.toContain("jane.doe");

        const client = wsClient(conveyor, alice);
        const overSocket = await new Promise<unknown>((resolve) => {
          client.subscribe({ query: `query($id: ID!) { assessment(id: $id) { id } }`, variables: { id: randomUUID() } }, { next: resolve, error: resolve, complete: () => undefined });
        });
        expect(JSON.stringify(overSocket)).toContain("Unexpected error.");
        expect(JSON.stringify(overSocket)).not.toContain("jane.doe");
        await client.dispose();

        const lines = logLines.slice(before);
        const logged = lines.map((line) => JSON.parse(line) as Record<string, any>).filter((line) => line.err);
        // Both requests' errors were logged, scrubbed (message, stack and the wrapped original).
        expect(logged.length).toBeGreaterThanOrEqual(2);
        for (const line of logged) {
          expect(JSON.stringify(line.err)).toContain("lookup failed for [email]");
          expect(line.err.stack).toContain("[email]");
        }
      } finally {
        assessments.find = original;
      }
    });

    it("item 6: no log line of this file carries an email, a phone number, a token or a raw `yoga` object", () => {
      expect(logLines.length).toBeGreaterThan(0);
      for (const line of logLines) {
        expect(line).not.toContain("jane.doe@example.com");
        expect(line).not.toContain("+33 6 12 34 56 78");
        expect(line).not.toContain("abc.def.ghi");
        expect(line).not.toContain(alice);
        expect(JSON.parse(line)).not.toHaveProperty("yoga");
      }
    });

    it("item 6: /jobs/<malformed id>/result.csv is 400 BAD_USER_INPUT, an unknown well-formed id is 404", async () => {
      const get = async (id: string) => {
        const response = await fetch(`${conveyor.url}/jobs/${id}/result.csv`, { headers: { authorization: `Bearer ${alice}` } });
        return { status: response.status, body: (await response.json()) as { error: { code: string; message: string } } };
      };
      for (const id of ["-".repeat(36), "0".repeat(36), "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa-", "aaaaaaaa-aaaa-aaaa-aaaaaaaaaaaaaaaaa"]) {
        const malformed = await get(id);
        expect(malformed.status, id).toBe(400);
        expect(malformed.body.error.code, id).toBe("BAD_USER_INPUT");
      }
      const unknown = await get(randomUUID().toUpperCase());
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe("NOT_FOUND");
    });

    it("item 6: answers are limited in UTF-8 bytes, not characters", async () => {
      // 25,000 "€": 25,000 characters but 75,000 bytes, over the 64,000-byte limit and under the
      // default 100 kB request body limit, so the answers reach the service.
      const heavy = { q5: "€".repeat(25_000) };
      const created = await gql(conveyor, `mutation($answers: JSON) { createAssessment(kind: "skills-check", answers: $answers) { id } }`, { answers: heavy }, { token: alice });
      expect(codeOf(created)).toBe("BAD_USER_INPUT");
      expect(created.errors?.[0]?.message).toMatch(/64000 bytes/);

      const id = await createAssessment(conveyor, alice);
      const saved = await gql(conveyor, `mutation($id: ID!, $answers: JSON!) { saveAssessmentAnswers(id: $id, answers: $answers) { id } }`, { id, answers: heavy }, { token: alice });
      expect(codeOf(saved)).toBe("BAD_USER_INPUT");

      // 60,000 ASCII characters are 60,000 bytes: still accepted.
      const light = await gql(conveyor, `mutation($answers: JSON) { createAssessment(kind: "skills-check", answers: $answers) { id } }`, { answers: { q5: "e".repeat(60_000) } }, { token: alice });
      expect(light.errors).toBeUndefined();
    });
  });
});
