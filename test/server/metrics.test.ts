import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { PermanentJobError } from "../../src/jobs/job-errors.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, graphql, tokenFor, wsClient } from "../support/graphql-client.js";

// The Prometheus text parser (CommonJS, no types): what a scraper would make of the page. It folds
// a histogram's samples into one unlabelled set, so histograms are read from the raw samples below.
type Sample = { labels?: Record<string, string>; value?: string };
type Family = { name: string; help: string; type: string; metrics: Sample[] };
const parsePrometheusTextFormat = createRequire(import.meta.url)("parse-prometheus-text-format") as (text: string) => Family[];

const TOKEN = "metrics-test-token-0123456789";
const COMPLETED_JOBS = 5;

const handlers: JobHandler<any, any>[] = [
  { type: "metrics-ok", run: async () => ({ ok: true }) },
  {
    type: "metrics-flaky",
    maxAttempts: 2,
    run: async () => {
      throw new Error("upstream unavailable");
    },
  },
  {
    type: "metrics-permanent",
    run: async () => {
      throw new PermanentJobError("input can never work");
    },
  },
];

// The exposition format, line by line: comments, then samples `name{labels} value [timestamp]`.
const METRIC_NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:\\\\.|[^"\\\\\\n])*"`;
const VALUE = "(?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|NaN|[-+]Inf)";
const SAMPLE_LINE = new RegExp(`^${METRIC_NAME}(?:\\{(?:${LABEL}(?:,${LABEL})*,?)?\\})? ${VALUE}(?: -?\\d+)?$`);
const HELP_LINE = new RegExp(`^# HELP ${METRIC_NAME} .*$`);
const TYPE_LINE = new RegExp(`^# TYPE ${METRIC_NAME} (?:counter|gauge|histogram|summary|untyped)$`);

/** Every sample line as name, labels and value, per the grammar above. */
function samplesOf(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split("\n")
    .filter((line) => SAMPLE_LINE.test(line))
    .map((line) => {
      const name = /^[^{ ]+/.exec(line)![0];
      const labels: Record<string, string> = {};
      const labelText = /^[^{ ]+\{(.*)\} /.exec(line)?.[1] ?? "";
      for (const match of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"/g)) labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      return { name, labels, value: Number(line.slice(line.lastIndexOf(" ") + 1).replace("+Inf", "Infinity")) };
    });
}

describe("item 3: /metrics", () => {
  let conveyor: TestConveyor;
  let text: string;
  let families: Map<string, Family>;

  const scrape = (headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => fetch(`${conveyor.url}/metrics`, { headers });
  const family = (name: string) => {
    const found = families.get(name);
    expect(found, `${name} is exported`).toBeDefined();
    return found!;
  };
  const sample = (name: string, labels: Record<string, string> = {}) => {
    const matching = samplesOf(text).filter((entry) => entry.name === name && Object.entries(labels).every(([key, wanted]) => entry.labels[key] === wanted));
    expect(matching, `one ${name} sample for ${JSON.stringify(labels)}`).toHaveLength(1);
    return matching[0]!.value;
  };
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = family(name).metrics.find((metric) => Object.entries(labels).every(([key, wanted]) => metric.labels?.[key] === wanted));
    return found === undefined ? undefined : Number(found.value);
  };

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers,
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", METRICS_TOKEN: TOKEN, RETRY_INITIAL_DELAY_MS: "10", RETRY_JITTER: "0" },
    });
    const ids: string[] = [];
    for (let index = 0; index < COMPLETED_JOBS; index++) ids.push((await conveyor.jobs.enqueue({ type: "metrics-ok", owner: "metrics" }, "metrics")).job.id);
    ids.push((await conveyor.jobs.enqueue({ type: "metrics-flaky", owner: "metrics" }, "metrics")).job.id);
    ids.push((await conveyor.jobs.enqueue({ type: "metrics-permanent", owner: "metrics" }, "metrics")).job.id);
    await eventually(async () => {
      const jobs = await Promise.all(ids.map((id) => conveyor.jobs.find(id)));
      return jobs.every((job) => job && ["COMPLETED", "FAILED"].includes(job.status));
    });
    // GraphQL traffic: a named query that succeeds and one refused for want of a token.
    expect((await graphql(conveyor, "query MetricsProbe { assessmentKinds }")).errors).toBeUndefined();
    expect((await graphql(conveyor, "query MetricsDenied { jobs(first: 1) { edges { cursor } } }")).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");

    const response = await scrape();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await response.text();
    families = new Map(parsePrometheusTextFormat(text).map((parsed) => [parsed.name, parsed]));
  });

  afterAll(async () => {
    await conveyor?.dispose();
  });

  it("item 3: METRICS_TOKEN guards the page: 401 without it or with another, 200 with it", async () => {
    const missing = await scrape({});
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await scrape({ authorization: "Bearer not-the-token" })).status).toBe(401);
    expect((await scrape({ authorization: TOKEN })).status).toBe(401);
    expect((await scrape()).status).toBe(200);
  });

  it("item 3: the page is valid exposition text, line by line", () => {
    const lines = text.split("\n");
    const bad = lines.filter((line) => line !== "" && !SAMPLE_LINE.test(line) && !HELP_LINE.test(line) && !TYPE_LINE.test(line));
    expect(bad).toEqual([]);
    // Every family is declared once with its type before its samples.
    const declared = lines.filter((line) => line.startsWith("# TYPE ")).map((line) => line.split(" ")[2]);
    expect(new Set(declared).size).toBe(declared.length);
    expect(families.size).toBe(declared.length);
  });

  it("item 3: engine counters moved with the jobs that ran", () => {
    expect(value("conveyor_job_completions_total", { type: "metrics-ok" })).toBeGreaterThanOrEqual(COMPLETED_JOBS);
    // One claim per attempt: the flaky job ran twice.
    expect(value("conveyor_job_claims_total", { type: "metrics-ok" })).toBeGreaterThanOrEqual(COMPLETED_JOBS);
    expect(value("conveyor_job_claims_total", { type: "metrics-flaky" })).toBe(2);
    expect(value("conveyor_job_failures_total", { type: "metrics-flaky", category: "WORKER_ERROR" })).toBe(2);
    expect(value("conveyor_job_failures_total", { type: "metrics-permanent", category: "PERMANENT_ERROR" })).toBe(1);
    expect(value("conveyor_job_retries_total", { type: "metrics-flaky" })).toBe(1);
    expect(value("conveyor_job_transitions_total", { from: "PROCESSING", to: "COMPLETED" })).toBeGreaterThanOrEqual(COMPLETED_JOBS);
    expect(value("conveyor_job_transitions_total", { from: "RETRYING", to: "PROCESSING" })).toBe(1);
    expect(family("conveyor_job_stalled_recoveries_total").type).toBe("COUNTER");
  });

  it("item 3: histograms count every attempt, by type", () => {
    for (const name of ["conveyor_job_processing_seconds", "conveyor_job_queue_seconds", "conveyor_job_start_latency_seconds", "conveyor_graphql_request_duration_seconds"]) {
      expect(family(name).type).toBe("HISTOGRAM");
    }
    const completed = { type: "metrics-ok", status: "COMPLETED" };
    expect(sample("conveyor_job_processing_seconds_count", completed)).toBeGreaterThanOrEqual(COMPLETED_JOBS);
    expect(sample("conveyor_job_processing_seconds_bucket", { ...completed, le: "+Inf" })).toBe(sample("conveyor_job_processing_seconds_count", completed));
    expect(sample("conveyor_job_processing_seconds_sum", completed)).toBeGreaterThanOrEqual(0);
    expect(sample("conveyor_job_processing_seconds_count", { type: "metrics-flaky", status: "RETRYING" })).toBe(1);
    expect(sample("conveyor_job_processing_seconds_count", { type: "metrics-flaky", status: "FAILED" })).toBe(1);
    expect(sample("conveyor_job_processing_seconds_count", { type: "metrics-permanent", status: "FAILED" })).toBe(1);
    expect(sample("conveyor_job_queue_seconds_count", { type: "metrics-ok" })).toBeGreaterThanOrEqual(COMPLETED_JOBS);
    expect(sample("conveyor_job_queue_seconds_count", { type: "metrics-flaky" })).toBe(2);
    // First attempts only: 7 jobs, the flaky one's second attempt not counted.
    expect(sample("conveyor_job_start_latency_seconds_count")).toBe(COMPLETED_JOBS + 2);
    // Buckets are cumulative.
    const buckets = samplesOf(text).filter((entry) => entry.name === "conveyor_job_start_latency_seconds_bucket").map((entry) => entry.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
  });

  it("item 3: job gauges come from the health aggregates", () => {
    expect(value("conveyor_jobs", { type: "metrics-ok", status: "COMPLETED" })).toBe(COMPLETED_JOBS);
    expect(value("conveyor_jobs", { type: "metrics-flaky", status: "FAILED" })).toBe(1);
    expect(value("conveyor_jobs_stalled")).toBe(0);
    expect(value("conveyor_queue_success_ratio")).toBeCloseTo(COMPLETED_JOBS / (COMPLETED_JOBS + 2), 5);
    const health = family("conveyor_queue_health").metrics;
    expect(health.filter((metric) => metric.value === "1")).toHaveLength(1);
  });

  it("item 3: worker pool, database pools, connections, event bus and process metrics", () => {
    expect(value("conveyor_worker_slots")).toBe(4);
    expect(value("conveyor_worker_busy_slots")).toBe(0);
    expect(value("conveyor_worker_saturation_ratio")).toBe(0);
    expect(value("conveyor_worker_prefetched_jobs")).toBeGreaterThanOrEqual(0);
    expect(value("conveyor_worker_abandoned_handlers")).toBe(0);
    for (const pool of ["api", "worker", "outcome"]) {
      expect(value("conveyor_db_pool_connections", { pool })).toBeGreaterThanOrEqual(0);
      expect(value("conveyor_db_pool_max_connections", { pool })).toBeGreaterThan(0);
      expect(value("conveyor_db_pool_waiting_clients", { pool })).toBe(0);
    }
    expect(value("conveyor_db_pool_connections", { pool: "outcome" })).toBeGreaterThan(0);
    expect(value("conveyor_websocket_connections")).toBe(0);
    expect(value("conveyor_websocket_subscriptions")).toBe(0);
    expect(value("conveyor_sse_subscriptions")).toBe(0);
    expect(value("conveyor_event_publish_failures_total")).toBe(0);
    expect(value("process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(family("nodejs_eventloop_lag_seconds").type).toBe("GAUGE");
  });

  it("item 3: GraphQL requests and errors by operation", () => {
    expect(sample("conveyor_graphql_request_duration_seconds_count", { operation: "MetricsProbe", operation_type: "query" })).toBe(1);
    expect(sample("conveyor_graphql_request_duration_seconds_count", { operation: "MetricsDenied", operation_type: "query" })).toBe(1);
    const errors = family("conveyor_graphql_errors_total").metrics;
    const denied = errors.find((metric) => metric.labels?.code === "UNAUTHENTICATED");
    expect(Number(denied?.value)).toBe(1);
    expect(errors.some((metric) => metric.labels?.operation === "MetricsProbe")).toBe(false);
  });

  it("item 3: open WebSocket connections and subscriptions, over WebSocket and SSE", async () => {
    const token = await tokenFor(conveyor, "olga", "operator");
    const current = async () => {
      const page = parsePrometheusTextFormat(await (await scrape()).text());
      const read = (name: string) => Number(page.find((parsed) => parsed.name === name)?.metrics[0]?.value);
      return { webSockets: read("conveyor_websocket_connections"), overWebSocket: read("conveyor_websocket_subscriptions"), overSse: read("conveyor_sse_subscriptions") };
    };
    const client = wsClient(conveyor, token);
    const stream = collect(client, "subscription { queueHealthChanged { status } }");
    await eventually(() => stream.events.length > 0);
    expect(await current()).toEqual({ webSockets: 1, overWebSocket: 1, overSse: 0 });

    const abort = new AbortController();
    const sse = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      signal: abort.signal,
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: "subscription { queueHealthChanged { status } }" }),
    });
    const reader = sse.body!.getReader();
    await reader.read();
    expect(await current()).toEqual({ webSockets: 1, overWebSocket: 1, overSse: 1 });

    stream.stop();
    await client.dispose();
    abort.abort();
    await reader.cancel().catch(() => undefined);
    await eventually(async () => {
      const now = await current();
      return now.webSockets === 0 && now.overWebSocket === 0 && now.overSse === 0;
    });
  });

  it("item 3: each Conveyor keeps its own registry", async () => {
    const other = await startTestConveyor({ environment: { WORKER_ENABLED: "false" } });
    try {
      const page = await (await fetch(`${other.url}/metrics`)).text();
      expect(page).toContain("conveyor_worker_slots 0");
      expect(page).not.toContain('type="metrics-ok"');
    } finally {
      await other.dispose();
    }
  });
});
