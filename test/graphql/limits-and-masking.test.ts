import { createConnection } from "node:net";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { codeOf, completeAssessment, createAssessment, errorCodes, expectNoInternals, gql, ok, PARKED, readSse } from "./helpers.js";

const PRODUCTION = {
  NODE_ENV: "production",
  JWT_SECRET: "a-test-secret-that-is-long-enough-1234567890",
  GRAPHQL_INTROSPECTION: "false",
  // Large enough for the 1,000-alias query (about 50 kB): that one must meet the query limits.
  GRAPHQL_MAX_BODY_BYTES: "80000",
  ALLOWED_ORIGINS: "https://app.example",
};

/** A query `levels` fields deep, cycling job → assessment → jobs → edges → node → assessment … */
function deepSelection(root: string, levels: number): string {
  const cycle = ["assessment", "jobs", "edges", "node"];
  const fields = [root];
  while (fields.length < levels) fields.push(cycle[(fields.length - 1) % cycle.length]!);
  const last = fields.at(-1);
  const leaf = last === "jobs" ? "pageInfo { hasNextPage }" : last === "edges" ? "cursor" : "id";
  return `${fields.map((field) => `${field} {`).join(" ")} ${leaf} ${"}".repeat(fields.length)}`;
}

/** Tries a WebSocket upgrade; resolves "open" or the HTTP status that refused it. */
function upgrade(url: string, options: { origin?: string } = {}): Promise<"open" | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, "graphql-transport-ws", options.origin ? { origin: options.origin } : {});
    socket.once("open", () => {
      socket.close();
      resolve("open");
    });
    socket.once("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once("error", (error) => {
      if (!/Unexpected server response/.test(String(error))) reject(error);
    });
  });
}

/** Writes `request` as it is to the server at `url` and returns all it answers until it closes the connection. */
function rawExchange(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    const socket = createConnection({ host: hostname, port: Number(port) }, () => socket.end(request));
    socket.on("data", (chunk) => received.push(chunk));
    socket.once("error", reject);
    socket.once("close", () => resolve(Buffer.concat(received).toString("utf8")));
  });
}

describe("limits and masking (production settings)", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let olga: string;
  const count = async (sql: string, params: unknown[] = []) => (await conveyor.database.pool.query<{ n: number }>(sql, params)).rows[0]!.n;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: PRODUCTION });
    [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  describe("query limits", () => {
    it("refuses a depth-20 mutation before running any of it", async () => {
      const id = await createAssessment(conveyor, alice);
      const selection = deepSelection("job", 19);
      const response = await gql(conveyor, `mutation($id: ID!) { completeAssessment(id: $id) { ${selection} } }`, { id }, { token: alice });
      expect(response.data).toBeUndefined();
      expect(codeOf(response)).toBe("QUERY_TOO_COMPLEX");
      expect(response.errors?.[0]?.message).toMatch(/depth|cost/i);
      expect((await conveyor.services.assessments.find(id))?.status).toBe("IN_PROGRESS");
      expect(await count(`SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1`, [id])).toBe(0);
    });

    it("refuses a query over the depth limit whatever its cost, even inside a fragment named __schema", async () => {
      const id = "00000000-0000-4000-8000-000000000000";
      // Within the limit: it runs (and finds nothing).
      expect(codeOf(await gql(conveyor, `query($id: ID!) { ${deepSelection("job(id: $id)", 10)} }`, { id }, { token: alice }))).toBe("NOT_FOUND");
      const deep = await gql(conveyor, `query($id: ID!) { ${deepSelection("job(id: $id)", 17)} }`, { id }, { token: alice });
      expect(codeOf(deep)).toBe("QUERY_TOO_COMPLEX");
      expect(deep.errors?.[0]?.message).toMatch(/depth limit of 15/);
      // Older max-depth rules skipped fragments named like introspection when ignoring it.
      const disguised = await gql(conveyor, `query($id: ID!) { ...__schema } fragment __schema on Query { ${deepSelection("job(id: $id)", 17)} }`, { id }, { token: alice });
      expect(codeOf(disguised)).toBe("QUERY_TOO_COMPLEX");
      expect(disguised.errors?.[0]?.message).toMatch(/depth/);
    });

    it("refuses a 1,000-alias mutation without creating anything", async () => {
      const before = await count(`SELECT count(*)::int AS n FROM assessments`);
      const aliases = Array.from({ length: 1000 }, (_, index) => `a${index}: createAssessment(kind: "skills-check") { id }`).join(" ");
      const response = await gql(conveyor, `mutation { ${aliases} }`, {}, { token: alice });
      expect(response.data).toBeUndefined();
      expect(codeOf(response)).toBe("QUERY_TOO_COMPLEX");
      expect(response.errors?.[0]?.message).toMatch(/alias|token/i);
      // Just over the alias limit, well under the token limit: the alias rule alone refuses it.
      const few = Array.from({ length: 31 }, (_, index) => `a${index}: createAssessment(kind: "skills-check") { id }`).join(" ");
      const overAliases = await gql(conveyor, `mutation { ${few} }`, {}, { token: alice });
      expect(codeOf(overAliases)).toBe("QUERY_TOO_COMPLEX");
      expect(overAliases.errors?.[0]?.message).toMatch(/Aliases limit of 30/);
      expect(await count(`SELECT count(*)::int AS n FROM assessments`)).toBe(before);
      // At the limit it runs.
      const thirty = Array.from({ length: 30 }, (_, index) => `a${index}: me { id }`).join(" ");
      expect(Object.keys(ok(await gql(conveyor, `{ ${thirty} }`, {}, { token: alice })))).toHaveLength(30);
    });

    it("refuses too many tokens, directives and too much cost", async () => {
      const tokens = await gql(conveyor, `{ me { ${Array.from({ length: 2100 }, () => "id").join(" ")} } }`, {}, { token: alice });
      expect(codeOf(tokens)).toBe("QUERY_TOO_COMPLEX");
      expect(tokens.errors?.[0]?.message).toMatch(/Token limit of 2000/);
      const directives = await gql(conveyor, `{ me ${Array.from({ length: 21 }, () => "@include(if: true)").join(" ")} { id } }`, {}, { token: alice });
      expect(codeOf(directives)).toBe("QUERY_TOO_COMPLEX");
      expect(directives.errors?.[0]?.message).toMatch(/Directives limit of 20/);
      const costly = await gql(conveyor, `{ jobs(first: 100) { edges { node { events { id } assessment { jobs(first: 100) { edges { node { id events { id } } } } } } } } }`, {}, { token: alice });
      expect(codeOf(costly)).toBe("QUERY_TOO_COMPLEX");
      expect(costly.errors?.[0]?.message).toMatch(/cost limit/i);
    });

    it("applies the same limits over WebSocket, refusing that subscription only", async () => {
      // Assessment jobs are enqueued by operators or completeAssessment, not by users through enqueueJob.
      const jobId = (await conveyor.jobs.enqueue({ type: "assessment", owner: "alice", payload: { assessmentId: await createAssessment(conveyor, alice) }, runAt: new Date(PARKED) }, "alice")).job.id;
      const client = wsClient(conveyor, alice);
      try {
        const alive = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: jobId });
        // Running before the refused ones arrive: its first state is read before the cancel below.
        await eventually(() => alive.events.length === 1);
        const deep = await collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { ${deepSelection("job", 14)} } }`, { id: jobId }).done;
        expect(deep.events).toEqual([]);
        expect(errorCodes(deep.error)).toEqual(["QUERY_TOO_COMPLEX"]);
        const aliases = Array.from({ length: 1000 }, (_, index) => `a${index}: jobProgress(jobId: $id) { status }`).join(" ");
        const wide = await collect(client, `subscription($id: ID!) { ${aliases} }`, { id: jobId }).done;
        expect(errorCodes(wide.error)).toEqual(["QUERY_TOO_COMPLEX"]);
        // The socket survived both: the first subscription still runs and ends normally.
        ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: jobId }, { token: alice }));
        const { events, error } = await alive.done;
        expect(error).toBeUndefined();
        expect(events.map((event) => (event.data as any).jobProgress.status)).toEqual(["QUEUED", "CANCELLED"]);
      } finally {
        await client.dispose();
      }
    });
  });

  describe("subscriptions per WebSocket", () => {
    it("refuses one live subscription more than GRAPHQL_MAX_SUBSCRIPTIONS_PER_SOCKET with TOO_MANY_SUBSCRIPTIONS, and takes one again once another completes", async () => {
      const capped = await startTestConveyor({ environment: { ...PRODUCTION, GRAPHQL_MAX_SUBSCRIPTIONS_PER_SOCKET: "5" } });
      const token = await tokenFor(capped, "alice");
      const jobId = await completeAssessment(capped, token, await createAssessment(capped, token));
      const client = wsClient(capped, token);
      // Distinct documents, which the server cannot share between subscriptions.
      const follow = (name: string) => collect(client, `subscription ${name}($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: jobId });
      const live = Array.from({ length: 5 }, (_, index) => follow(`Live${index}`));
      try {
        await eventually(() => live.every((subscription) => subscription.events.length > 0));
        const oneTooMany = follow("OneTooMany");
        live.push(oneTooMany);
        const refused = await Promise.race([oneTooMany.done, new Promise<{ error: string }>((resolve) => setTimeout(() => resolve({ error: "not refused" }), 5000))]);
        expect((refused.error as { extensions?: { code?: string } }[])[0]?.extensions?.code, JSON.stringify(refused.error)).toBe("TOO_MANY_SUBSCRIPTIONS");
        live.pop();
        live.shift()!.stop();
        const again = follow("AfterOneEnded");
        live.push(again);
        await eventually(() => again.events.length > 0);
        expect(again.events[0]!.data).toEqual({ jobProgress: { status: "QUEUED" } });
      } finally {
        for (const subscription of live) subscription.stop();
        await client.dispose();
        await capped.dispose();
      }
    });
  });

  describe("request size", () => {
    it("answers 413 to a body over GRAPHQL_MAX_BODY_BYTES and runs a body under it", async () => {
      const post = (size: number) =>
        fetch(`${conveyor.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${alice}` },
          body: JSON.stringify({ query: `mutation($answers: JSON) { createAssessment(kind: "skills-check", answers: $answers) { id } }`, variables: { answers: { q5: "x".repeat(size) } } }),
        });
      const before = await count(`SELECT count(*)::int AS n FROM assessments`);
      const tooLarge = await post(90_000);
      expect(tooLarge.status).toBe(413);
      expect(await tooLarge.json()).toEqual({ error: { code: "PAYLOAD_TOO_LARGE", message: "Request bodies are limited to 80000 bytes" } });
      expect(await count(`SELECT count(*)::int AS n FROM assessments`)).toBe(before);
      const fits = await post(60_000);
      expect(fits.status).toBe(200);
      expect((await fits.json()).errors).toBeUndefined();
      expect(await count(`SELECT count(*)::int AS n FROM assessments`)).toBe(before + 1);
    });

    it("answers 411 to a body of undeclared length", async () => {
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(JSON.stringify({ query: "{ me { id } }" })));
          controller.close();
        },
      });
      const response = await fetch(`${conveyor.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
      expect(response.status).toBe(411);
      expect((await response.json()).error.code).toBe("LENGTH_REQUIRED");
    });

    // The server leaves body limits to http-server.ts (yoga's maxRequestBodySize is off): its check
    // of the declared length holds only because no byte past it is ever read as the body.
    it("reads no byte of a body past its declared length", async () => {
      const mutation = JSON.stringify({ query: `mutation { createAssessment(kind: "skills-check", answers: { q1: "a" }) { id } }` });
      const before = await count(`SELECT count(*)::int AS n FROM assessments`);
      const head = (length: number, extra = "") =>
        `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${alice}\r\n${extra}Content-Length: ${length}\r\n\r\n`;

      // A short query declared, another request sent after it: the query runs on exactly its
      // declared bytes (with more, its JSON would not parse), and what follows is a request of its own.
      const short = JSON.stringify({ query: "{ __typename }" });
      const answered = await rawExchange(conveyor.url!, head(short.length) + short + "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
      expect(answered).toMatch(/^HTTP\/1\.1 200 /);
      expect(answered).toContain(`{"data":{"__typename":"Query"}}`);
      expect(answered).toContain(`{"status":"ok"}`);

      // Chunked encoding beside a length: refused whole.
      const chunked = `${mutation.length.toString(16)}\r\n${mutation}\r\n0\r\n\r\n`;
      expect(await rawExchange(conveyor.url!, head(10, "Transfer-Encoding: chunked\r\n") + chunked)).toMatch(/^HTTP\/1\.1 400 Bad Request/);

      expect(await count(`SELECT count(*)::int AS n FROM assessments`)).toBe(before);
    });

    it("closes a WebSocket that sends a message over the limit with 1009", async () => {
      const socket = new WebSocket(`${conveyor.url!.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
      await new Promise((resolve) => socket.once("open", resolve));
      const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
      socket.on("error", () => {});
      socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${alice}`, padding: "x".repeat(90_000) } }));
      expect(await closed).toBe(1009);
    });
  });

  describe("what production hides", () => {
    it("answers an unknown field without suggestions", async () => {
      const typo = await gql(conveyor, `{ me { idd } }`, {}, { token: alice });
      expect(codeOf(typo)).toBe("GRAPHQL_VALIDATION_FAILED");
      expect(typo.errors?.[0]?.message).toMatch(/Cannot query field "idd"/);
      expect(typo.text).not.toMatch(/Did you mean/i);
      const enumTypo = await gql(conveyor, `{ jobs(filter: { status: [QUEUD] }) { edges { cursor } } }`, {}, { token: alice });
      expect(codeOf(enumTypo)).toBe("GRAPHQL_VALIDATION_FAILED");
      expect(enumTypo.text).not.toMatch(/Did you mean|"QUEUED"/i);
      const variableTypo = await gql(conveyor, `query($s: [JobStatus!]) { jobs(filter: { status: $s }) { edges { cursor } } }`, { s: ["QUEUD"] }, { token: alice });
      expect(codeOf(variableTypo)).toBe("BAD_USER_INPUT");
      expect(variableTypo.text).not.toMatch(/Did you mean|"QUEUED"/i);
      const inputTypo = await gql(conveyor, `{ jobs(filter: { statuss: [QUEUED] }) { edges { cursor } } }`, {}, { token: alice });
      expect(inputTypo.text).not.toMatch(/Did you mean|"status"/i);
    });

    it("refuses introspection when GRAPHQL_INTROSPECTION=false, keeping __typename", async () => {
      for (const query of [`{ __schema { types { name } } }`, `{ __type(name: "Job") { fields { name } } }`]) {
        const response = await gql(conveyor, query, {}, { token: olga });
        expect(response.data).toBeUndefined();
        expect(codeOf(response)).toBe("GRAPHQL_VALIDATION_FAILED");
        expect(response.text).toMatch(/introspection has been disabled/);
        expect(response.text).not.toMatch(/"Job"|ProcessingJob|"fields":\[/);
      }
      expect(ok(await gql(conveyor, `{ __typename }`)).__typename).toBe("Query");
    });

    // graphql-ws runs documents outside yoga's HTTP request handling: the refusal must not depend on it.
    it("refuses introspection over WebSocket and SSE as over HTTP, with or without a token", async () => {
      const queries = [`{ __schema { types { name } } }`, `{ __type(name: "Mutation") { fields { name } } }`];
      for (const token of [undefined, olga]) {
        const client = wsClient(conveyor, token);
        try {
          for (const query of queries) {
            const overHttp = await gql(conveyor, query, {}, { token });
            const { events, error } = await collect(client, query).done;
            expect(events, query).toEqual([]);
            expect(errorCodes(error).every((code) => code === "GRAPHQL_VALIDATION_FAILED"), JSON.stringify(error)).toBe(true);
            expect(JSON.stringify(error)).toMatch(/introspection has been disabled/);
            expect(JSON.stringify(error)).not.toMatch(/createAssessment|"http"/);
            // The same errors, word for word, as over HTTP.
            expect(error, query).toEqual(overHttp.errors);
          }
          const typename = await collect(client, `{ __typename }`).done;
          expect(typename.events).toEqual([{ data: { __typename: "Query" } }]);
        } finally {
          await client.dispose();
        }
      }
      for (const query of queries) {
        const sse = await fetch(`${conveyor.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream" },
          body: JSON.stringify({ query }),
        });
        const events = await readSse(sse);
        expect(events[0]!.data.data, query).toBeUndefined();
        expect(events[0]!.data.errors, query).toEqual((await gql(conveyor, query)).errors);
        expect(events[0]!.data.errors[0].extensions.code).toBe("GRAPHQL_VALIDATION_FAILED");
        expect(JSON.stringify(events)).not.toMatch(/createAssessment/);
      }
    });

    it("serves no GraphiQL page", async () => {
      const page = await fetch(`${conveyor.url}/graphql`, { headers: { accept: "text/html" } });
      expect(await page.text()).not.toMatch(/graphiql/i);
    });
  });

  describe("CSRF and Origin", () => {
    it("refuses requests a browser could send cross-site without the CSRF header", async () => {
      const query = encodeURIComponent(`{ assessmentKinds }`);
      const bare = await fetch(`${conveyor.url}/graphql?query=${query}`);
      expect(bare.status).toBe(403);
      expect(await bare.text()).toMatch(/CSRF/);
      const withHeader = await fetch(`${conveyor.url}/graphql?query=${query}`, { headers: { "x-graphql-yoga-csrf": "1", accept: "application/json" } });
      expect(withHeader.status).toBe(200);
      expect((await withHeader.json()).data.assessmentKinds).toContain("skills-check");
      // Simple cross-site POSTs (no preflight) are refused before anything runs.
      const before = await count(`SELECT count(*)::int AS n FROM assessments`);
      const mutation = `mutation { createAssessment(kind: "skills-check") { id } }`;
      const form = new FormData();
      form.set("operations", JSON.stringify({ query: mutation }));
      form.set("map", "{}");
      for (const init of <{ body: string | FormData; headers: Record<string, string> }[]>[
        { body: JSON.stringify({ query: mutation }), headers: { "content-type": "text/plain" } },
        { body: `query=${encodeURIComponent(mutation)}`, headers: { "content-type": "application/x-www-form-urlencoded" } },
        { body: form, headers: {} },
      ]) {
        const response = await fetch(`${conveyor.url}/graphql`, { method: "POST", body: init.body, headers: { ...init.headers, authorization: `Bearer ${alice}` } });
        expect(response.status).toBe(403);
      }
      expect(await count(`SELECT count(*)::int AS n FROM assessments`)).toBe(before);
      // A GET never runs a mutation, even with the header.
      const getMutation = await fetch(`${conveyor.url}/graphql?query=${encodeURIComponent(mutation)}`, { headers: { "x-graphql-yoga-csrf": "1", accept: "application/json", authorization: `Bearer ${alice}` } });
      expect(getMutation.status).toBe(405);
      expect(await count(`SELECT count(*)::int AS n FROM assessments`)).toBe(before);
    });

    it("gives the CSRF refusal a stable code, over plain HTTP and SSE, keeping its 403", async () => {
      const refusal = [{ message: "Required CSRF header not present: send an x-graphql-yoga-csrf (or apollo-require-preflight) header", extensions: { code: "CSRF_HEADER_REQUIRED" } }];
      const get = await fetch(`${conveyor.url}/graphql?query=${encodeURIComponent(`{ assessmentKinds }`)}`, { headers: { accept: "application/json" } });
      expect(get.status).toBe(403);
      expect((await get.json()).errors).toEqual(refusal);
      const post = await fetch(`${conveyor.url}/graphql`, { method: "POST", body: JSON.stringify({ query: `{ assessmentKinds }` }), headers: { "content-type": "text/plain" } });
      expect(post.status).toBe(403);
      expect((await post.json()).errors).toEqual(refusal);
      const subscription = encodeURIComponent(`subscription { queueHealthChanged { status } }`);
      const sse = await fetch(`${conveyor.url}/graphql?query=${subscription}`, { headers: { accept: "text/event-stream", authorization: `Bearer ${olga}` } });
      expect(sse.status).toBe(403);
      const events = await readSse(sse);
      expect(events[0]!.data.errors).toEqual(refusal);
    });

    it("refuses a WebSocket upgrade from a foreign Origin, or on another path", async () => {
      const url = `${conveyor.url!.replace(/^http/, "ws")}/graphql`;
      expect(await upgrade(url, { origin: "https://evil.example" })).toBe(403);
      expect(await upgrade(url, { origin: "null" })).toBe(403);
      expect(await upgrade(url, { origin: conveyor.url! })).toBe("open");
      expect(await upgrade(url, { origin: "https://app.example" })).toBe("open");
      // Clients that are not browsers send no Origin.
      expect(await upgrade(url)).toBe("open");
      expect(await upgrade(`${conveyor.url!.replace(/^http/, "ws")}/elsewhere`)).toBe(403);
    });
  });

  describe("errors", () => {
    it("masks an unexpected error in a query: 'Unexpected error.', no SQL, no stack", async () => {
      const health = conveyor.services.jobs.health;
      conveyor.services.jobs.health = () =>
        Promise.reject(
          Object.assign(new Error('relation "secret_table" does not exist'), {
            code: "42P01",
            query: "SELECT * FROM secret_table WHERE owner = 'jane@example.com'",
            stack: "error: relation \"secret_table\" does not exist\n    at Parser.parseErrorMessage (/srv/node_modules/pg-protocol/dist/parser.js:283:98)",
          }),
        );
      try {
        const response = await gql(conveyor, `{ queueHealth { status } }`, {}, { token: olga });
        expect(response.errors).toEqual([{ message: "Unexpected error.", locations: [{ line: 1, column: 3 }], path: ["queueHealth"], extensions: { code: "INTERNAL_SERVER_ERROR" } }]);
        expect(response.text).not.toMatch(/secret_table|SELECT|42P01|jane@|parser\.js|\/srv/);
      } finally {
        conveyor.services.jobs.health = health;
      }
    });

    it("masks an unexpected error in a mutation and at subscribe time, over HTTP, WebSocket and SSE", async () => {
      const id = await createAssessment(conveyor, alice);
      const jobId = (await conveyor.jobs.enqueue({ type: "assessment", owner: "alice", payload: { assessmentId: id }, runAt: new Date(PARKED) }, "alice")).job.id;
      const leak = () => Promise.reject(new Error("could not connect to server: Connection refused (10.1.2.3:5432) at /srv/db.ts:7:1"));
      const complete = conveyor.services.assessments.complete;
      const find = conveyor.services.jobs.find;
      conveyor.services.assessments.complete = leak as never;
      conveyor.services.jobs.find = leak as never;
      const client = wsClient(conveyor, alice);
      try {
        const mutation = await gql(conveyor, `mutation($id: ID!) { completeAssessment(id: $id) { alreadyCompleted } }`, { id }, { token: alice });
        expect(mutation.errors?.[0]).toMatchObject({ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR" } });
        expect(mutation.text).not.toMatch(/10\.1\.2\.3|Connection refused|db\.ts/);

        const subscription = await collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: jobId }).done;
        expect(subscription.events).toEqual([]);
        expect(subscription.error).toEqual([{ message: "Unexpected error.", locations: [{ line: 1, column: 26 }], path: ["jobProgress"], extensions: { code: "INTERNAL_SERVER_ERROR" } }]);

        const sse = await fetch(`${conveyor.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${alice}` },
          body: JSON.stringify({ query: `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, variables: { id: jobId } }),
        });
        const events = await readSse(sse);
        expect(events[0]!.data.errors[0]).toMatchObject({ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR" } });
        expect(JSON.stringify(events)).not.toMatch(/10\.1\.2\.3|Connection refused|db\.ts/);
      } finally {
        conveyor.services.assessments.complete = complete;
        conveyor.services.jobs.find = find;
        await client.dispose();
      }
    });

    it("answers a body that is not JSON with BAD_REQUEST, and nothing of the parser's own error", async () => {
      await expectInvalidJsonRefused(conveyor);
    });

    it("answers bad input with BAD_USER_INPUT rather than an internal error", async () => {
      // A valid assessment payload, so that only the part under test is wrong.
      const payload = { assessmentId: await createAssessment(conveyor, alice) };
      const before = await count(`SELECT count(*)::int AS n FROM processing_jobs`);
      const cases: [string, string, Record<string, unknown>][] = [
        ["malformed id", `query($id: ID!) { job(id: $id) { id } }`, { id: "1; DROP TABLE processing_jobs" }],
        ["missing variable", `query($id: ID!) { job(id: $id) { id } }`, {}],
        ["unknown enum value", `query($s: [JobStatus!]) { jobs(filter: { status: $s }) { edges { cursor } } }`, { s: ["SOMETIMES"] }],
        ["NUL in a JSON key", `mutation($p: JSON) { enqueueJob(input: { type: "assessment", payload: $p }) { created } }`, { p: { "a\u0000": 1 } }],
        ["NUL in a string literal", `mutation { createAssessment(kind: "skills-check", answers: { q5: "a\\u0000b" }) { id } }`, {}],
        ["NUL in an idempotency key", `mutation($p: JSON, $k: String) { enqueueJob(input: { type: "assessment", payload: $p, idempotencyKey: $k }) { created } }`, { p: payload, k: "k\u0000" }],
        ["unpaired surrogate in a payload", `mutation($p: JSON) { enqueueJob(input: { type: "assessment", payload: $p }) { created } }`, { p: { a: "\ud800" } }],
        ["unpaired surrogate in an idempotency key", `mutation($p: JSON, $k: String) { enqueueJob(input: { type: "assessment", payload: $p, idempotencyKey: $k }) { created } }`, { p: payload, k: "k\udc00" }],
        ["year 275760", `mutation($p: JSON) { enqueueJob(input: { type: "assessment", payload: $p, runAt: "+275760-01-01T00:00:00.000Z" }) { created } }`, { p: payload }],
        ["year -271821", `query { jobs(filter: { createdAfter: "-271821-04-20T00:00:00.000Z" }) { edges { cursor } } }`, {}],
        ["garbled cursor", `query { jobs(after: "%%%") { edges { cursor } } }`, {}],
        ["forged cursor", `query($c: String) { jobs(after: $c) { edges { cursor } } }`, { c: Buffer.from("GPC:S:' OR 1=1 --").toString("base64") }],
        ["negative first", `query { jobs(first: -5) { edges { cursor } } }`, {}],
      ];
      for (const [name, query, variables] of cases) {
        const response = await gql(conveyor, query, variables, { token: alice });
        expect(codeOf(response), name).toBe("BAD_USER_INPUT");
        expect(response.text, name).not.toMatch(/Unexpected error/);
      }
      expect(await count(`SELECT count(*)::int AS n FROM processing_jobs`)).toBe(before);
      const parse = await gql(conveyor, `{ me { id }`, {}, { token: alice });
      expect(parse.status).toBe(400);
      expect(codeOf(parse)).toBe("GRAPHQL_PARSE_FAILED");
    });
  });
});

/** Truncated, garbled and empty JSON bodies: the same answer, without the parser's SyntaxError. */
async function expectInvalidJsonRefused(conveyor: TestConveyor): Promise<void> {
  for (const body of [`{"query": "{ me { id } }"`, "not json", ""]) {
    const response = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
      body,
    });
    const text = await response.text();
    expect(response.status, body).toBe(400);
    expect(JSON.parse(text).errors, body).toEqual([{ message: "POST body sent invalid JSON.", extensions: { code: "BAD_REQUEST" } }]);
    expectNoInternals(text);
    expect(text).not.toMatch(/SyntaxError|Unexpected (end|token)/);
  }
}

describe("outside production", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: { NODE_ENV: "development" } });
  });
  afterAll(() => conveyor?.dispose());

  it("suggests fields and allows introspection, but still masks unexpected errors", async () => {
    const alice = await tokenFor(conveyor, "alice");
    expect((await gql(conveyor, `{ me { idd } }`, {}, { token: alice })).text).toMatch(/Did you mean \\"id\\"\?/);
    const types = ok(await gql(conveyor, `{ __schema { types { name } } }`)).__schema.types.map((type: { name: string }) => type.name);
    expect(types).toEqual(expect.arrayContaining(["Job", "Assessment", "QueueHealth"]));
    const find = conveyor.services.assessments.find;
    conveyor.services.assessments.find = (() => Promise.reject(new Error("SELECT secret FROM vault"))) as never;
    try {
      const response = await gql(conveyor, `{ assessment(id: "00000000-0000-4000-8000-000000000000") { id } }`, {}, { token: alice });
      expect(response.errors?.[0]).toEqual({ message: "Unexpected error.", locations: [{ line: 1, column: 3 }], path: ["assessment"], extensions: { code: "INTERNAL_SERVER_ERROR" } });
      expectNoInternals(response.text);
      expect(response.text).not.toMatch(/vault/);
    } finally {
      conveyor.services.assessments.find = find;
    }
    const page = await fetch(`${conveyor.url}/graphql`, { headers: { accept: "text/html" } });
    expect(await page.text()).toMatch(/graphiql/i);
  });

  it("never sends the parser's error for a body that is not JSON, in development either", async () => {
    await expectInvalidJsonRefused(conveyor);
  });
});
