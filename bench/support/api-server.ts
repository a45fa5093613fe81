// The server side of bench/api-latency.ts: one Conveyor (configured from the environment, no worker
// pool) in a process of its own, so the load generator's CPU is not on the server's event loop.
// With BENCH_SQL_LOG=<file>, every statement sent to PostgreSQL (Prisma's and the raw ones) is
// recorded with its first parameters, call count and round-trip time, and written there on SIGTERM.
import { writeFileSync } from "node:fs";
import pg from "pg";
import { createConveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";

interface Statement {
  text: string;
  values: unknown[];
  calls: number;
  totalMs: number;
}
const statements = new Map<string, Statement>();
let recording = false;

if (process.env.BENCH_SQL_LOG) {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text?: string; values?: unknown[] };
    const text = typeof first === "string" ? first : first?.text;
    if (!recording || typeof text !== "string") return original.apply(this, args);
    const values = (typeof first === "object" && first.values) || (Array.isArray(args[1]) ? (args[1] as unknown[]) : []);
    const entry = statements.get(text) ?? { text, values, calls: 0, totalMs: 0 };
    statements.set(text, entry);
    entry.calls++;
    const began = performance.now();
    const done = () => (entry.totalMs += performance.now() - began);
    const last = args[args.length - 1];
    if (typeof last === "function") {
      args[args.length - 1] = (...callbackArgs: unknown[]) => {
        done();
        return (last as (...a: unknown[]) => unknown)(...callbackArgs);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === "function") (result as Promise<unknown>).then(done, done);
    return result;
  };
}

const conveyor = await createConveyor({ config: loadConfig() });
await conveyor.start();
recording = true;
console.log(`listening ${conveyor.url}`);
process.on("SIGTERM", () => {
  recording = false;
  if (process.env.BENCH_SQL_LOG) writeFileSync(process.env.BENCH_SQL_LOG, JSON.stringify([...statements.values()]));
  void conveyor.stop().then(() => process.exit(0));
});
