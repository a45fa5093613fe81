import { request as httpRequest } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { devTokensAllowed } from "../../src/server/dashboard.js";
import { startTestConveyor, testEnvironment, type TestConveyor } from "../support/conveyor.js";
import { graphql } from "../support/graphql-client.js";

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
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${conveyor.url}/dashboard/dev-token`, {
        method: "POST",
        headers: { host: "attacker.example:4000", "x-conveyor-dev-token": "1", "content-length": "0" },
      });
      request.on("response", (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on("error", reject);
      request.end();
    });
    expect(status).toBe(403);
  });

  it("mints nothing in production or on an address others can reach", () => {
    const secret = "a-production-secret-of-at-least-32-characters";
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "production", JWT_SECRET: secret })))).toBe(false);
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "development", HOST: "0.0.0.0", JWT_SECRET: secret })))).toBe(false);
    expect(devTokensAllowed(loadConfig(testEnvironment({ NODE_ENV: "development" })))).toBe(true);
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
