import { parse, type ExecutionResult } from "graphql";
import { describe, expect, it } from "vitest";
import { FinishedJobCache } from "../../src/server/finished-job-cache.js";

const QUERY = `query Job($id: ID!) { job(id: $id) { id status } }`;
const document = parse(QUERY);
const result = (status: string): ExecutionResult => ({ data: { job: { id: "j1", status } } });

/** Runs one request through the plugin's hooks; `during` runs while the operation "executes". */
function request(cache: FinishedJobCache, options: { status?: string; during?: () => void; token?: string } = {}) {
  const plugin = cache.plugin() as any;
  const httpRequest = new Request("http://localhost/graphql", { method: "POST", headers: { authorization: `Bearer ${options.token ?? "t1"}` } });
  let replayed: ExecutionResult | undefined;
  plugin.onParams({ params: { query: QUERY, variables: { id: "j1" }, operationName: "Job" }, request: httpRequest, setResult: (value: ExecutionResult) => (replayed = value) });
  if (replayed) return { replayed };
  const status = options.status ?? "COMPLETED";
  const context = { request: httpRequest, viewer: { id: "alice", role: "user" }, jobsRead: [{ id: "j1", status }] };
  const hooks = plugin.onExecute({ args: { document, operationName: "Job", contextValue: context } });
  options.during?.();
  hooks.onExecuteDone({ result: result(status) });
  return { replayed };
}

describe("FinishedJobCache", () => {
  it("replays a finished job's answer; never a running one's", () => {
    const cache = new FinishedJobCache({ maxEntries: 10, ttlMs: 60_000 });
    expect(request(cache).replayed).toBeUndefined();
    expect(request(cache).replayed).toEqual(result("COMPLETED"));
    const running = new FinishedJobCache({ maxEntries: 10, ttlMs: 60_000 });
    request(running, { status: "PROCESSING" });
    expect(request(running, { status: "PROCESSING" }).replayed).toBeUndefined();
  });

  it("does not keep an answer computed before its job was reopened", () => {
    const cache = new FinishedJobCache({ maxEntries: 10, ttlMs: 60_000 });
    request(cache, { during: () => cache.reopened("j1") });
    expect(request(cache).replayed).toBeUndefined();
    // An answer computed after the reopening is kept again.
    expect(request(cache).replayed).toEqual(result("COMPLETED"));
  });

  it("does not keep an answer computed before a deletion, and forgets every answer at one", () => {
    const cache = new FinishedJobCache({ maxEntries: 10, ttlMs: 60_000 });
    request(cache, { during: () => cache.deleted() });
    expect(cache.size).toBe(0);
    request(cache);
    expect(cache.size).toBe(1);
    cache.deleted();
    expect(request(cache).replayed).toBeUndefined();
  });

  it("ends an answer at its TTL, and keeps at most maxEntries and maxBytes", () => {
    let now = 0;
    const cache = new FinishedJobCache({ maxEntries: 2, ttlMs: 1000, now: () => now });
    request(cache);
    now = 1001;
    expect(request(cache).replayed).toBeUndefined();
    request(cache, { token: "t2" });
    request(cache, { token: "t3" });
    expect(cache.size).toBe(2);
    const tiny = new FinishedJobCache({ maxEntries: 10, ttlMs: 1000, maxBytes: 100 });
    request(tiny);
    expect(tiny.size).toBe(0);
  });
});
