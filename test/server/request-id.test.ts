import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createLogger } from "../../src/logger.js";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";

type Line = Record<string, unknown> & { msg?: string; requestId?: string };

describe("item 4: a request id on every request-scoped log line", () => {
  let conveyor: TestConveyor;
  const lines: Line[] = [];
  const linesOf = (requestId: string) => lines.filter((line) => line.requestId === requestId);

  beforeAll(async () => {
    // Debug: graphql-yoga logs each request's steps there, which gives request-scoped lines to check.
    const logger = createLogger("debug", {}, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
    conveyor = await startTestConveyor({ logger });
  });

  afterAll(async () => {
    await conveyor?.dispose();
  });

  const post = (headers: Record<string, string>) =>
    fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ query: "query RequestIdProbe { assessmentKinds }" }),
    });

  it("item 4: the client's x-request-id is echoed and on each line the request leads to", async () => {
    const before = lines.length;
    const response = await post({ "x-request-id": "client-req-42.a" });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe("client-req-42.a");
    await response.text();
    const scoped = linesOf("client-req-42.a");
    expect(scoped.length).toBeGreaterThan(0);
    expect(scoped.map((line) => line.msg)).toContain("Processing GraphQL Parameters");
    // Every yoga line of that request carries it, and nothing logged meanwhile carries another.
    const during = lines.slice(before).filter((line) => line.source === "graphql-yoga");
    expect(during.every((line) => line.requestId === "client-req-42.a")).toBe(true);
  });

  it("item 4: without a sane x-request-id, a fresh one is made, echoed and logged", async () => {
    const variants: Record<string, string>[] = [{}, { "x-request-id": "has spaces and \"quotes\"" }, { "x-request-id": "x".repeat(200) }];
    for (const headers of variants) {
      const response = await post(headers);
      const requestId = response.headers.get("x-request-id");
      await response.text();
      expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(linesOf(requestId!).length).toBeGreaterThan(0);
    }
    expect(lines.some((line) => String(line.requestId).includes("spaces"))).toBe(false);
  });

  it("item 4: other routes and WebSocket upgrades get one as well", async () => {
    const health = await fetch(`${conveyor.url}/health`, { headers: { "x-request-id": "health-1" } });
    expect(health.headers.get("x-request-id")).toBe("health-1");
    const socket = new WebSocket(`${conveyor.url!.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws", { headers: { "x-request-id": "socket-7" } });
    const echoed = await new Promise<string | undefined>((resolve, reject) => {
      socket.once("upgrade", (response) => resolve(response.headers["x-request-id"] as string | undefined));
      socket.once("error", reject);
    });
    socket.close();
    expect(echoed).toBe("socket-7");
  });

  it("item 4: lines outside any request carry no request id", () => {
    const started = lines.find((line) => line.msg === "Conveyor is listening");
    expect(started).toBeDefined();
    expect(started).not.toHaveProperty("requestId");
  });
});
