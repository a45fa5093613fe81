import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, graphql, tokenFor, wsClient } from "../support/graphql-client.js";

describe("limits, masking and transport checks", () => {
  let conveyor: TestConveyor;
  let alice: string;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      environment: { NODE_ENV: "production", JWT_SECRET: "a-test-secret-that-is-long-enough-1234567890", GRAPHQL_INTROSPECTION: "false", HEALTH_BROADCAST_INTERVAL_MS: "100" },
    });
    alice = await tokenFor(conveyor, "alice");
  });
  afterAll(() => conveyor?.dispose());

  it("refuses a depth-20 query before running it", async () => {
    let selection = "id";
    for (let depth = 0; depth < 9; depth++) selection = `assessment { jobs(first: 1) { edges { node { ${selection} } } } }`;
    const response = await graphql(conveyor, `query($id: ID!) { job(id: $id) { ${selection} } }`, { id: "00000000-0000-4000-8000-000000000000" }, { token: alice });
    expect(response.data).toBeUndefined();
    // Depth and cost both reject it; whichever Armor reports first, nothing runs.
    expect(response.errors?.[0]?.message).toMatch(/depth|cost/i);
    expect(response.errors?.[0]?.extensions?.code).toBe("QUERY_TOO_COMPLEX");
  });

  it("refuses a 1,000-alias query", async () => {
    const aliases = Array.from({ length: 1000 }, (_, index) => `a${index}: me { id }`).join(" ");
    const response = await graphql(conveyor, `{ ${aliases} }`, {}, { token: alice });
    expect(response.data).toBeUndefined();
    expect(response.errors?.some((error) => /alias|token/i.test(error.message))).toBe(true);
  });

  it("refuses too many aliases even under the token limit, and too many directives", async () => {
    const aliases = Array.from({ length: 40 }, (_, index) => `a${index}: me { id }`).join(" ");
    const response = await graphql(conveyor, `{ ${aliases} }`, {}, { token: alice });
    expect(response.errors?.[0]?.message).toMatch(/alias/i);
    expect(response.errors?.[0]?.extensions?.code).toBe("QUERY_TOO_COMPLEX");
    const directives = Array.from({ length: 30 }, () => "@include(if: true)").join(" ");
    const withDirectives = await graphql(conveyor, `{ me ${directives} { id } }`, {}, { token: alice });
    expect(withDirectives.errors?.[0]?.message).toMatch(/directive/i);
  });

  it("answers 413 to a body over the limit", async () => {
    const response = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ me { id } }`, variables: { padding: "x".repeat(200_000) } }),
    });
    expect(response.status).toBe(413);
    expect((await response.json()).error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("hides field suggestions and introspection in production", async () => {
    const typo = await graphql(conveyor, `{ me { idd } }`, {}, { token: alice });
    expect(typo.errors?.[0]?.message).not.toMatch(/Did you mean/);
    const introspection = await graphql(conveyor, `{ __schema { types { name } } }`, {}, { token: alice });
    expect(introspection.data).toBeUndefined();
    expect(introspection.errors?.length).toBeGreaterThan(0);
  });

  it("requires a CSRF header on GET requests", async () => {
    const query = encodeURIComponent("{ assessmentKinds }");
    const bare = await fetch(`${conveyor.url}/graphql?query=${query}`);
    expect(bare.status).toBe(403);
    const withHeader = await fetch(`${conveyor.url}/graphql?query=${query}`, { headers: { "x-graphql-yoga-csrf": "1", accept: "application/json" } });
    expect((await withHeader.json()).data.assessmentKinds).toContain("skills-check");
  });

  it("refuses a WebSocket upgrade from a foreign Origin and accepts its own", async () => {
    const url = `${conveyor.url!.replace("http", "ws")}/graphql`;
    const foreign = new WebSocket(url, "graphql-transport-ws", { origin: "https://evil.example" });
    const refused = await new Promise<string>((resolve) => {
      foreign.once("open", () => resolve("open"));
      foreign.once("error", () => resolve("refused"));
    });
    expect(refused).toBe("refused");
    const own = new WebSocket(url, "graphql-transport-ws", { origin: conveyor.url! });
    await new Promise((resolve, reject) => (own.once("open", resolve), own.once("error", reject)));
    own.close();
  });

  it("masks unexpected errors: no stack, no internal message", async () => {
    // A JSON literal with a variable inside is a parse-level surprise the scalar rejects with a code;
    // a broken database call is the real unexpected case, on either of job(id)'s two paths: the
    // jobs layer's read of the row alone, and Prisma's when a relation is asked for.
    const failure = () => Promise.reject(new Error("relation \"secret_table\" does not exist at /srv/app.ts:1"));
    const rowAlone = conveyor.services.jobs.findRecord;
    const withRelations = conveyor.services.prisma.processingJob.findUnique;
    conveyor.services.jobs.findRecord = failure as never;
    conveyor.services.prisma.processingJob.findUnique = failure as never;
    try {
      for (const selection of ["id", "id events { id }"]) {
        const response = await graphql(conveyor, `{ job(id: "00000000-0000-4000-8000-000000000000") { ${selection} } }`, {}, { token: alice });
        const text = JSON.stringify(response);
        expect(response.errors?.[0]?.message).toBe("Unexpected error.");
        expect(text).not.toMatch(/secret_table|\/srv|stack|at /);
      }
    } finally {
      conveyor.services.jobs.findRecord = rowAlone;
      conveyor.services.prisma.processingJob.findUnique = withRelations;
    }
  });

  it("starts queueHealthChanged with the current status and reports a change", async () => {
    const olga = await tokenFor(conveyor, "olga", "operator");
    const client = wsClient(conveyor, olga);
    const stream = collect(client, `subscription { queueHealthChanged { status previousStatus reasons } }`, {}, (event) => (event.data as any)?.queueHealthChanged.previousStatus !== null);
    await eventually(() => stream.events.length >= 1);
    expect((stream.events[0]!.data as any).queueHealthChanged).toMatchObject({ status: "HEALTHY", previousStatus: null, reasons: [] });
    await conveyor.database.pool.query(
      `INSERT INTO processing_jobs (id, type, owner, correlation_id) SELECT gen_random_uuid(), 'parked', 'olga', 'c' FROM generate_series(1, 101)`,
    );
    const { events } = await stream.done;
    expect((events.at(-1)!.data as any).queueHealthChanged).toMatchObject({ status: "DEGRADED", previousStatus: "HEALTHY", reasons: ["101 jobs waiting (more than 100)"] });
    await client.dispose();
  });

  it("serves /health and /ready", async () => {
    expect(await (await fetch(`${conveyor.url}/health`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${conveyor.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", database: "ok" });
  });
});
