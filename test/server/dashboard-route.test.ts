import { request as httpRequest } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { devTokensAllowed } from "../../src/server/dashboard.js";
import { startTestConveyor, testEnvironment, type TestConveyor } from "../support/conveyor.js";
import { graphql } from "../support/graphql-client.js";

const A_REAL_SECRET = "a-real-secret-of-at-least-32-characters-long";

/** An address of this machine that is not loopback, to send requests from; undefined without one. */
const OUTSIDE_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((address) => address && address.family === "IPv4" && !address.internal)?.address;

/**
 * A request to /dashboard/dev-token over node:http, which, unlike fetch, may set Host and the
 * local address it is sent from. Resolves the status and the parsed body.
 */
function devTokenRequest(
  conveyor: TestConveyor,
  options: { method?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; body: { token?: string; error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${conveyor.url}/dashboard/dev-token`, {
      method: options.method ?? "POST",
      headers: { "x-conveyor-dev-token": "1", "content-length": "0", ...options.headers },
      localAddress: options.localAddress,
    });
    request.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
    });
    request.on("error", reject);
    request.end();
  });
}

// /dashboard's static files and the development token endpoint, over real HTTP, on a stand-in build.
describe("/dashboard", () => {
  let conveyor: TestConveyor;
  let directory: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), "conveyor-dashboard-route-"));
    mkdirSync(join(directory, "assets"));
    writeFileSync(join(directory, "index.html"), "<!doctype html><title>dashboard</title>");
    writeFileSync(join(directory, "assets", "index-abc123.js"), "console.log('dashboard')");
    writeFileSync(join(directory, "..", "outside-the-build.txt"), "secret");
    conveyor = await startTestConveyor({ dashboardDirectory: directory });
  });
  afterAll(async () => {
    await conveyor?.dispose();
    rmSync(directory, { recursive: true, force: true });
    rmSync(join(directory, "..", "outside-the-build.txt"), { force: true });
  });

  const get = (path: string, init?: RequestInit) => fetch(`${conveyor.url}${path}`, { redirect: "manual", ...init });

  it("serves hashed assets for good and the page for revalidation, with a Content-Security-Policy", async () => {
    const asset = await get("/dashboard/assets/index-abc123.js");
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(asset.headers.get("content-type")).toContain("text/javascript");
    const page = await get("/dashboard/");
    expect(page.status).toBe(200);
    expect(page.headers.get("cache-control")).toBe("no-cache");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(await page.text()).toContain("<title>dashboard</title>");
  });

  it("answers the page for the dashboard's own routes, 404 for a missing asset, and never a file outside the build", async () => {
    const route = await get("/dashboard/jobs/2b1c6a9e-6f0e-4a55-9e39-3f4d1c2b7a10");
    expect(await route.text()).toContain("<title>dashboard</title>");
    expect((await get("/dashboard/assets/index-old999.js")).status).toBe(404);
    for (const path of ["/dashboard/..%2foutside-the-build.txt", "/dashboard/%2e%2e/outside-the-build.txt"]) {
      const response = await get(path);
      expect(await response.text()).not.toContain("secret");
    }
    const bare = await get("/dashboard");
    expect(bare.status).toBe(308);
    expect(bare.headers.get("location")).toBe("/dashboard/");
    expect((await get("/dashboard/", { method: "POST", headers: { "content-length": "0" } })).status).toBe(405);
  });

  it("mints a working development operator token on POST with its header, outside production", async () => {
    expect((await get("/dashboard/dev-token")).status).toBe(200);
    expect((await get("/dashboard/dev-token", { method: "POST", headers: { "content-length": "0" } })).status).toBe(400);
    const minted = await get("/dashboard/dev-token", { method: "POST", headers: { "x-conveyor-dev-token": "1", "content-length": "0" } });
    expect(minted.status).toBe(200);
    const { token } = (await minted.json()) as { token: string };
    const me = await graphql(conveyor, `{ me { id role } queueHealth { status } }`, {}, { token });
    expect(me.errors).toBeUndefined();
    expect(me.data.me).toEqual({ id: "dev-operator", role: "OPERATOR" });
  });

  it("mints nothing for a request addressed to another name (DNS rebinding)", async () => {
    const refused = await devTokenRequest(conveyor, { headers: { host: "attacker.example:4000" } });
    expect(refused.status).toBe(403);
    expect(refused.body.error?.code).toBe("FORBIDDEN");
  });

  // A reverse proxy on this machine connects from loopback, and may address it by a loopback name.
  it("mints nothing, and offers nothing, for a request a proxy relayed", async () => {
    for (const header of ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip"]) {
      const value = header === "forwarded" ? "for=203.0.113.7" : header === "x-forwarded-host" ? "conveyor.example" : "203.0.113.7";
      for (const method of ["POST", "GET"]) {
        const refused = await devTokenRequest(conveyor, { method, headers: { host: "127.0.0.1:4000", [header]: value } });
        expect(refused.status, `${method} with ${header}`).toBe(403);
        expect(refused.body.error?.code, `${method} with ${header}`).toBe("FORBIDDEN");
        expect(refused.body.token).toBeUndefined();
      }
    }
  });

  it.skipIf(!OUTSIDE_ADDRESS)("mints nothing for a request from an address that is not loopback, whatever its Host", async () => {
    const refused = await devTokenRequest(conveyor, { headers: { host: "127.0.0.1:4000" }, localAddress: OUTSIDE_ADDRESS });
    expect(refused.status).toBe(403);
    expect(refused.body.error?.code).toBe("FORBIDDEN");
    expect(refused.body.error?.message).toMatch(/this machine/);
    expect(refused.body.token).toBeUndefined();
  });

  it("mints nothing in production or on an address others can reach", () => {
    const secret = "a-production-secret-of-at-least-32-characters";
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "production", JWT_SECRET: secret })))).toBe(false);
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "development", HOST: "0.0.0.0", JWT_SECRET: secret })))).toBe(false);
    // A real secret is trusted elsewhere too (other instances, other environments sharing it).
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "development", JWT_SECRET: secret })))).toBe(false);
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "development" })))).toBe(true);
  });
});

describe("/dashboard with a real JWT_SECRET, outside production, on loopback", () => {
  let conveyor: TestConveyor;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: { NODE_ENV: "development", JWT_SECRET: A_REAL_SECRET } });
  });
  afterAll(() => conveyor?.dispose());

  // A token signed with it would be an operator's on every instance that shares the secret.
  it("mints no development token, and offers none, even for a direct loopback request", async () => {
    const refused = await devTokenRequest(conveyor, { headers: { host: "127.0.0.1:4000" } });
    expect(refused.status).toBe(404);
    expect(refused.body.error?.code).toBe("NOT_FOUND");
    expect(refused.body.error?.message).toMatch(/npm run token/);
    expect(refused.body.token).toBeUndefined();
    expect((await devTokenRequest(conveyor, { method: "GET" })).status).toBe(404);
  });
});

describe("/dashboard in production", () => {
  let conveyor: TestConveyor;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: { NODE_ENV: "production", JWT_SECRET: "a-production-secret-of-at-least-32-characters" } });
  });
  afterAll(() => conveyor?.dispose());

  it("has no development token endpoint", async () => {
    const response = await fetch(`${conveyor.url}/dashboard/dev-token`, { method: "POST", headers: { "x-conveyor-dev-token": "1", "content-length": "0" } });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
  });
});
