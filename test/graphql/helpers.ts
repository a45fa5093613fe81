// Helpers shared by the GraphQL integration tests in this folder (not a test file itself).
import { createClient, type Client, type FormattedExecutionResult } from "graphql-ws";
import { expect } from "vitest";
import WebSocket from "ws";
import type { Conveyor } from "../../src/app.js";
import { WorkerPool } from "../../src/jobs/worker-pool.js";
import type { TestConveyor } from "../support/conveyor.js";
import { postOperation } from "../support/graphql-client.js";

export const VALID_ANSWERS = { q1: "HAVING", q2: "SKIP LOCKED", q3: "201", q4: 4 };

export interface ApiError {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
  path?: (string | number)[];
}

export interface ApiResponse<T = any> {
  status: number;
  data?: T;
  errors?: ApiError[];
  text: string;
}

// What a leaked internal error looks like: stack frames, a serialized stack, the wrapped original.
const STACK_FRAME = /\bat\s+\S+\s+\([^)]*:\d+:\d+\)|\bat\s+(file:\/\/|\/)[^\s"]*:\d+:\d+/;
const INTERNALS = /"stack"|originalError|prisma\.|invocation in|node_modules/i;

/** Fails the test if `text` carries a stack trace or other internals. */
export function expectNoInternals(text: string): void {
  expect(text).not.toMatch(STACK_FRAME);
  expect(text).not.toMatch(INTERNALS);
}

/**
 * A job's `error.details` is the one place that may hold a handler's stack frames: raw details,
 * shown to operators only, by design. Everything else is checked.
 */
function withoutJobErrorDetails(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutJobErrorDetails);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value).map(([key, inner]) => [key, key === "details" && "category" in value ? null : withoutJobErrorDetails(inner)]);
  return Object.fromEntries(entries);
}

/**
 * POSTs one operation over real HTTP and checks that the raw response carries no stack trace,
 * whatever it is; returns the status with the parsed body.
 */
export async function gql<T = any>(
  conveyor: Conveyor,
  query: string,
  variables: Record<string, unknown> = {},
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const { status, text } = await postOperation(conveyor, query, variables, options);
  const body = JSON.parse(text) as { data?: T; errors?: ApiError[] };
  expectNoInternals(JSON.stringify(withoutJobErrorDetails(body)));
  return { status, data: body.data, errors: body.errors, text };
}

/** The first error's code, or undefined. */
export const codeOf = (response: { errors?: ApiError[] }) => response.errors?.[0]?.extensions?.code;

/** Asserts a successful response and returns its data. */
export function ok<T>(response: ApiResponse<T>): T {
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return response.data as T;
}

/** A graphql-ws client whose upgrade request carries `headers` (Accept-Language, Origin…). */
export function wsClientWith(conveyor: Conveyor, options: { token?: string; headers?: Record<string, string>; params?: Record<string, unknown>; onClosed?: (code: number) => void } = {}): Client {
  const headers = options.headers ?? {};
  class HeaderWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  return createClient({
    url: `${conveyor.url!.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: HeaderWebSocket,
    connectionParams: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.params },
    retryAttempts: 0,
    lazy: true,
    on: options.onClosed ? { closed: (event) => options.onClosed!((event as { code: number }).code) } : undefined,
  });
}

export type Event<T = any> = FormattedExecutionResult<T, unknown>;

/** The codes of the errors a graphql-ws `error` callback received. */
export function errorCodes(error: unknown): (string | undefined)[] {
  expect(Array.isArray(error), `expected GraphQL errors, got ${String(error)}`).toBe(true);
  return (error as ApiError[]).map((item) => item.extensions?.code);
}

/** A worker pool on the conveyor's engine, for tests that start the conveyor with the pool off. */
export async function startWorkerPool(conveyor: TestConveyor, concurrency = 2): Promise<WorkerPool> {
  const pool = new WorkerPool({
    lifecycle: conveyor.lifecycle,
    registry: conveyor.registry,
    logger: conveyor.logger,
    connectionString: conveyor.databaseUrl,
    concurrency,
    pollIntervalMs: 100,
    heartbeatIntervalMs: 1000,
    jobTimeoutMs: 20_000,
    shutdownGraceMs: 1000,
  });
  await pool.start();
  return pool;
}

/** A far-future run time: the job stays QUEUED whatever the pool does. */
export const PARKED = "2999-01-01T00:00:00.000Z";

const ENQUEUE = `mutation($input: EnqueueJobInput!) { enqueueJob(input: $input) { created job { id status owner type createdAt } } }`;

/** Enqueues through the API; returns the job's id. */
export async function enqueue(conveyor: Conveyor, token: string, input: Record<string, unknown>): Promise<string> {
  const data = ok(await gql(conveyor, ENQUEUE, { input }, { token }));
  return data.enqueueJob.job.id as string;
}

/** Creates an assessment through the API; returns its id. */
export async function createAssessment(conveyor: Conveyor, token: string, answers: Record<string, unknown> = VALID_ANSWERS, kind = "skills-check"): Promise<string> {
  const data = ok(await gql(conveyor, `mutation($kind: String!, $answers: JSON) { createAssessment(kind: $kind, answers: $answers) { id } }`, { kind, answers }, { token }));
  return data.createAssessment.id as string;
}

/** Completes an assessment through the API; returns its job's id. */
export async function completeAssessment(conveyor: Conveyor, token: string, id: string): Promise<string> {
  const data = ok(await gql(conveyor, `mutation($id: ID!) { completeAssessment(id: $id) { job { id } } }`, { id }, { token }));
  return data.completeAssessment.job.id as string;
}

/** The job's row status straight from the database. */
export async function statusOf(conveyor: Conveyor, jobId: string): Promise<string | undefined> {
  return (await conveyor.jobs.find(jobId))?.status;
}

/**
 * Parses a text/event-stream body into its events, reading until `event: complete` or the end;
 * `onEvent` sees each event as it arrives.
 */
export async function readSse(response: Response, onEvent: (event: { event: string; data: any }, index: number) => void = () => {}): Promise<{ event: string; data: any }[]> {
  const events: { event: string; data: any }[] = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      // Keep-alive comments (":") carry neither.
      if (event === "message" && data.length === 0) continue;
      expectNoInternals(data.join("\n"));
      events.push({ event, data: data.length && data.join("\n") ? JSON.parse(data.join("\n")) : null });
      onEvent(events.at(-1)!, events.length - 1);
      if (event === "complete") {
        await reader.cancel();
        return events;
      }
    }
    if (done) return events;
  }
}
