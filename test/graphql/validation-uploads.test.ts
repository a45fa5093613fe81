import { request as httpRequest } from "node:http";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { billingCsv } from "../support/billing-lines-csv.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { CREATE_VALIDATION_RUN, streamUpload, uploadValidationFile } from "../support/uploads.js";
import { codeOf, expectNoInternals, gql } from "./helpers.js";

const LIMIT = 1024 * 1024;

describe("createValidationRun's multipart uploads: limits, refusals, retention", () => {
  let conveyor: TestConveyor;
  let db: pg.Client;
  let alice: string;
  const count = async (table: string) => Number((await db.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: { VALIDATION_MAX_UPLOAD_BYTES: String(LIMIT) } });
    db = new pg.Client({ connectionString: conveyor.databaseUrl });
    await db.connect();
    alice = await tokenFor(conveyor, "alice");
  });
  afterAll(async () => {
    await db?.end();
    await conveyor?.dispose();
  });

  it("refuses an upload whose declared length is over the limit before reading its body", async () => {
    const answer = await streamUpload(conveyor, alice, { fileBytes: 50 * LIMIT, declareLength: true });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.text).errors[0].extensions).toEqual({ code: "FILE_TOO_LARGE", maxBytes: LIMIT });
    // Answered after the first piece: the other 49 MB were never sent.
    expect(answer.bytesWritten).toBeLessThan(LIMIT);
    expect(await count("validation_files")).toBe(0);
  });

  it("refuses a streamed upload as soon as it passes the limit, and keeps nothing of it", async () => {
    const answer = await streamUpload(conveyor, alice, { fileBytes: 50 * LIMIT, declareLength: false });
    expect(answer.status).toBe(413);
    expectNoInternals(answer.text);
    expect(JSON.parse(answer.text).errors[0].extensions.code).toBe("FILE_TOO_LARGE");
    expect(answer.bytesWritten).toBeLessThan(answer.bodyBytes / 2);
    await eventually(async () => (await count("validation_files")) === 0 && (await count("validation_file_chunks")) === 0);
  });

  it("accepts a file of exactly the limit", async () => {
    const line = "invoice_id\r\n";
    const file = Buffer.alloc(LIMIT, "a");
    file.write(line);
    const response = await uploadValidationFile(conveyor, alice, file);
    expect(response.status).toBe(200);
    expect(response.body.data.createValidationRun.run.fileBytes).toBe(LIMIT);
  });

  it("refuses multipart requests without the CSRF header, or without a valid token, before storing anything", async () => {
    const before = await count("validation_files");
    const noCsrf = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}` },
      body: (() => {
        const form = new FormData();
        form.set("operations", JSON.stringify({ query: CREATE_VALIDATION_RUN, variables: { file: null, ruleSet: "billing-lines" } }));
        form.set("map", JSON.stringify({ 0: ["variables.file"] }));
        form.set("0", new Blob(["a,b\n"]), "x.csv");
        return form;
      })(),
    });
    expect(noCsrf.status).toBe(403);
    expect(((await noCsrf.json()) as any).errors[0].extensions.code).toBe("CSRF_HEADER_REQUIRED");
    const anonymous = await uploadValidationFile(conveyor, undefined, "a,b\n");
    expect([anonymous.status, anonymous.body.errors?.[0]?.extensions?.code]).toEqual([401, "UNAUTHENTICATED"]);
    const badToken = await uploadValidationFile(conveyor, "not-a-token", "a,b\n");
    expect([badToken.status, badToken.body.errors?.[0]?.extensions?.code]).toEqual([401, "UNAUTHENTICATED"]);
    expect(await count("validation_files")).toBe(before);
  });

  it("answers malformed multipart requests and bad arguments with stable codes, deleting the file", async () => {
    const before = await count("validation_files");
    const wrongPath = await uploadValidationFile(conveyor, alice, "a,b\n", {}, { query: "{ __typename }" });
    expect(wrongPath.status).toBe(200);
    const badCorrelation = await uploadValidationFile(conveyor, alice, billingCsv({ rows: 1 }), { correlationId: "   " });
    expect(codeOf(badCorrelation.body)).toBe("BAD_USER_INPUT");
    const form = new FormData();
    form.set("operations", "{not json");
    form.set("map", JSON.stringify({ 0: ["variables.file"] }));
    form.set("0", new Blob(["a,b\n"]), "x.csv");
    const garbled = await fetch(`${conveyor.url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${alice}`, "x-graphql-yoga-csrf": "1" }, body: form });
    expect(garbled.status).toBe(400);
    expect(((await garbled.json()) as any).errors[0].extensions.code).toBe("BAD_REQUEST");
    // A placeholder string in a JSON request names no file.
    const json = await gql(conveyor, CREATE_VALIDATION_RUN, { file: "upload:0", ruleSet: "billing-lines" }, { token: alice });
    expect(codeOf(json)).toBe("BAD_USER_INPUT");
    await eventually(async () => (await count("validation_files")) === before);
  });

  it("refuses a map path that does not name a variable set to null, and no prototype is touched", async () => {
    const send = async (path: string, variables: Record<string, unknown> = { file: null, ruleSet: "billing-lines" }) => {
      const form = new FormData();
      form.set("operations", JSON.stringify({ query: CREATE_VALIDATION_RUN, variables }));
      form.set("map", JSON.stringify({ 0: [path] }));
      form.set("0", new Blob(["a,b\n"]), "x.csv");
      const response = await fetch(`${conveyor.url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${alice}`, "x-graphql-yoga-csrf": "1" }, body: form });
      return { status: response.status, body: (await response.json()) as any };
    };
    for (const path of ["variables.__proto__.variables", "variables.constructor.prototype.x", "variables.missing", "variables.ruleSet"]) {
      const refused = await send(path);
      expect([refused.status, refused.body.errors[0].extensions.code]).toEqual([400, "BAD_REQUEST"]);
    }
    expect(({} as Record<string, unknown>).variables).toBeUndefined();
    // The server still answers everyone as before.
    expect((await gql(conveyor, `{ __typename }`, {}, { token: alice })).data).toEqual({ __typename: "Query" });
  });

  it("deletes a file stored whole before the request was refused (a part after it)", async () => {
    const before = await count("validation_files");
    const chunksBefore = await count("validation_file_chunks");
    const boundary = "conveyor-refused-after-file";
    const operations = JSON.stringify({ query: CREATE_VALIDATION_RUN, variables: { file: null, ruleSet: "billing-lines" } });
    const request = httpRequest(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}`, "x-graphql-yoga-csrf": "1", "content-type": `multipart/form-data; boundary=${boundary}` },
    });
    const answered = new Promise<number>((resolve, reject) => {
      request.on("response", (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on("error", reject);
    });
    request.write(
      `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="a.csv"\r\n\r\n`,
    );
    request.write(Buffer.alloc(300_000, "a"));
    // The file's part ends with the next boundary; the whole file is stored before anything follows.
    request.write(`\r\n--${boundary}\r\n`);
    await eventually(async () => (await db.query(`SELECT count(*)::int AS n FROM validation_files WHERE byte_size = 300000`)).rows[0].n > 0 ? true : undefined);
    request.end(`Content-Disposition: form-data; name="extra"\r\n\r\nx\r\n--${boundary}--\r\n`);
    expect(await answered).toBe(400);
    await eventually(async () => ((await count("validation_files")) === before && (await count("validation_file_chunks")) === chunksBefore ? true : undefined));
  });

  // The refusal came while the file's row was being created, before the store read the stream: its
  // error had no listener, and the process exited on it (one request from any user).
  it("survives a second file or a field after the file, refusing them with BAD_REQUEST and keeping nothing", async () => {
    const before = await count("validation_files");
    const send = async (extra: (form: FormData) => void) => {
      const form = new FormData();
      form.set("operations", JSON.stringify({ query: CREATE_VALIDATION_RUN, variables: { file: null, ruleSet: "billing-lines" } }));
      form.set("map", JSON.stringify({ 0: ["variables.file"] }));
      form.set("0", new Blob([billingCsv({ rows: 2 })]), "lines.csv");
      extra(form);
      const response = await fetch(`${conveyor.url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${alice}`, "x-graphql-yoga-csrf": "1" }, body: form });
      return { status: response.status, body: (await response.json()) as any };
    };
    for (let round = 0; round < 3; round++) {
      const twoFiles = await send((form) => form.set("1", new Blob([billingCsv({ rows: 2 })]), "again.csv"));
      expect([twoFiles.status, twoFiles.body.errors[0].extensions.code]).toEqual([400, "BAD_REQUEST"]);
      const fieldAfter = await send((form) => form.set("extra", "1"));
      expect([fieldAfter.status, fieldAfter.body.errors[0].extensions.code]).toEqual([400, "BAD_REQUEST"]);
    }
    // Still serving, and nothing of the refused uploads kept.
    expect((await gql(conveyor, `{ __typename }`, {}, { token: alice })).data).toEqual({ __typename: "Query" });
    await eventually(async () => ((await count("validation_files")) === before ? true : undefined));
  });

  it("lists the rule sets, the shipped one documented column by column", async () => {
    const data = (await gql(conveyor, `{ ruleSets { id title columns { name type required severity allowedValues } crossFieldRules { id kind columns } } }`)).data!;
    const billing = data.ruleSets.find((set: any) => set.id === "billing-lines");
    expect(billing.columns.find((column: any) => column.name === "currency")).toEqual({ name: "currency", type: "enum", required: true, severity: "ERROR", allowedValues: ["EUR", "USD", "GBP", "CHF"] });
    expect(billing.crossFieldRules.map((rule: any) => rule.id)).toEqual(["due_date_not_before_issue_date", "line_total_matches"]);
  });

  it("deletes a finished run's file with its job, and uploads that never became a run", async () => {
    // Jobs here never run (no worker): mark the latest finished, as an old one would be.
    await db.query("UPDATE processing_jobs SET status = 'COMPLETED', completed_at = now() - interval '30 days' WHERE type = 'validation-run'");
    await db.query("INSERT INTO validation_files (id, owner, created_at) VALUES (gen_random_uuid(), 'alice', now() - interval '2 days')");
    expect(await count("validation_runs")).toBeGreaterThan(0);
    await conveyor.maintenance.cleanup(7 * 24 * 3600_000);
    expect(await count("validation_runs")).toBe(0);
    expect(await count("validation_files")).toBe(0);
    expect(await count("validation_file_chunks")).toBe(0);
  });
});
